// Package pipeline is Vigil's stream processor: a Kafka consumer-group
// member that decodes prediction events (Arrow IPC or JSON messages), assigns
// them to tumbling event-time windows, keeps the mergeable window states of
// processors/stats and checkpoints them to ClickHouse.
//
// Ownership: one goroutine per assigned partition owns all state of that
// partition (windows, watermark, pending rows); nothing on the hot path is
// shared. Several processes may run in one consumer group: Kafka spreads the
// partitions over them, and a partition's state moves through ClickHouse on a
// rebalance (the old owner checkpoints, the new one restores).
//
// Delivery: see docs/DESIGN.md. ClickHouse holds the source of truth (window
// states with the highest offset they include, and the checkpoint row); the
// Kafka offset commit mirrors it. A crash at any point neither loses an event
// nor counts one twice in what a FINAL query returns.
//
// Ports (ports.go): the processor needs a WindowStore (restore a partition,
// checkpoint it) and the label consumer a LabelStore (write labels before
// committing them). The package owns the types that cross them (Source,
// RawBatch, LateEvent, LabelRow) and imports no sink; sinks/clickhouse
// implements both ports and application wiring passes the sink in.
package pipeline
