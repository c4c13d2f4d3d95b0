// Package ingest is Vigil's producer SDK: a serving service records each
// prediction it makes and the Producer publishes it to Kafka, batched per
// model, for the stream processors.
//
//	p, err := ingest.NewProducer([]string{"127.0.0.1:9092"}, "vigil.events")
//	...
//	err = p.Record(ctx, ev) // on the serving path
//	...
//	err = p.Close(ctx)      // on shutdown
//
// # What blocks
//
// Record never waits for Kafka. It validates the event
// (schemas.Event.Validate), copies it by value into a bounded in-memory queue
// (WithMaxBufferedEvents) and returns; for a valid event that fits it takes
// well under a microsecond and does not allocate. When the queue is full the
// full policy applies: DropWhenFull (the default) drops at once,
// BlockWhenFull waits at most WithBlockTimeout or until Record's ctx is done;
// either way the dropped event is counted and Record returns ErrBufferFull.
// Flush and Close block until Kafka acknowledged what they wait for, or
// until their ctx ends.
//
// # Memory ownership
//
// The Producer keeps the Event value but not a deep copy: it reads the
// slices the event points to (Features, Segments, Prediction.Probabilities)
// later, on its batching goroutine. The caller must not modify those slices,
// nor the arrays behind them, after Record; build a new event per prediction.
// The producer drops its references once the event's batch is encoded.
//
// # Batching and the wire
//
// One batching goroutine owns a buffer per model. It seals a model's buffer
// when it holds WithBatchSize events or its oldest event has waited
// WithLinger, and encodes it: with wire.EncodingArrow (the default) as one
// Kafka message holding one compressed Arrow IPC record batch, with
// wire.EncodingJSON as one message per event. Messages are keyed by model
// name and partitioned by a hash of the key, so one model's events stay in
// one partition, in the order the batcher received them. Every message
// carries the headers wire.HeaderEncoding and wire.HeaderSchemaVersion ("1"),
// and wire.HeaderProducer (the producer's random id, Producer.ID) and
// wire.HeaderSequence (a counter of the producer, one per message, in the
// order messages are written): a retried write repeats them, so the
// processor counts a message that reached Kafka twice only once.
// One sender goroutine writes sealed batches synchronously through a
// kafka-go Writer, with retries (WithWriteAttempts); at most WithMaxInFlight
// sealed batches wait for or are in a write. When they are all taken the
// batcher waits, the queue fills and Record drops: memory stays bounded.
//
// # Labels
//
// RecordLabel publishes the ground truth of an earlier prediction
// (schemas.Label, joined to the event by event id and model) to the label
// topic, by default "<topic>.labels" (DefaultLabelTopic, WithLabelTopic).
// Labels take the same path as events, with their own bounded queue
// (WithMaxBufferedLabels) and model buffers: batched per model, keyed by
// model, encoded as WithEncoding says (one Arrow record batch of one model's
// labels per message, in the layout of schemas/label.go, or one JSON label per
// message as specified by schemas/label_event.v1.schema.json), with the same
// headers (wire.HeaderSchemaVersion holds schemas.LabelSchemaVersion). The
// sender writes labels and events in separate calls, so that a missing label
// topic fails the labels only; while label writes retry, event writes wait.
// Flush, Close, Stats and LossError count labels together with events.
//
// # Delivery
//
// At least once while Kafka is reachable (a retry may write a message twice;
// its producer id and sequence let the processor skip the copy): an event is counted Sent once Kafka
// acknowledged it (WithRequiredAcks, default all in-sync replicas). An event
// Kafka keeps refusing after every attempt is counted Failed and logged (as
// counts, never contents). Stats reports every counter; Close reports any
// loss as a *LossError.
//
// # Concurrency
//
// All methods of Producer are safe for concurrent use. Close stops every
// goroutine the Producer started; kafka-go may finish abandoned writes in the
// background when Close's ctx expired first.
package ingest
