package pipeline

// Prometheus metrics of the processor and the label consumer. Nothing here
// runs on the hot path: the collectors read, at scrape time, the atomic
// Counters the partitions keep anyway and the gauges each partition
// publishes every publishEvery messages (and whenever it waits for input).
// The application registers Collector() on its registry; the names are
// documented in docs/METRICS.md.

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DeadLetterReason is the class of a message sent to the dead-letter topic:
// a small fixed set, for the reason label of the dead-letter metric (the
// vigil-error header has the full message).
type DeadLetterReason uint8

// The dead-letter reasons.
const (
	// DeadLetterInvalidJSON: a JSON message that does not parse or breaks
	// the contract (a field missing or of the wrong type, no prediction).
	DeadLetterInvalidJSON DeadLetterReason = iota
	// DeadLetterInvalidArrow: an Arrow IPC message that does not decode or
	// breaks the contract.
	DeadLetterInvalidArrow
	// DeadLetterUnknownEncoding: a vigil-encoding header other than
	// arrow or json.
	DeadLetterUnknownEncoding
	numDeadLetterReasons
)

var deadLetterReasonNames = [numDeadLetterReasons]string{"invalid_json", "invalid_arrow", "unknown_encoding"}

// String is the reason's label value.
func (r DeadLetterReason) String() string { return deadLetterReasonNames[r] }

// publishEvery is how many messages a partition handles between two
// publications of its gauges while it is busy.
const publishEvery = 64

// partitionGauges is what one partition publishes for the metrics: written
// by the partition's goroutine, read by scrapes.
type partitionGauges struct {
	partition     int
	next          atomic.Int64 // offset after the last handled message, -1 before one
	checkpoint    atomic.Int64 // next offset of the last durable checkpoint, -1 before one
	checkpointAt  atomic.Int64 // Unix ms of the last durable checkpoint, 0 before one
	highWatermark atomic.Int64 // as of the last fetched message, 0 before one
	watermarkMs   atomic.Int64 // noWatermark before the first event
	states        atomic.Int64 // window states held
	heldBytes     atomic.Int64 // bytes held for the next checkpoint
	published     atomic.Bool
}

func (g *partitionGauges) checkpointed(next int64) {
	g.checkpoint.Store(next)
	g.checkpointAt.Store(time.Now().UnixMilli())
}

// observed publishes the gauges if publishEvery messages were handled since
// the last time, or if the partition is about to wait for input.
func (p *partition) observed(idle bool) {
	p.sincePublish++
	if idle || p.sincePublish >= publishEvery {
		p.publish()
	}
}

// publish publishes the partition's gauges.
func (p *partition) publish() {
	p.sincePublish = 0
	g := p.gauges
	g.next.Store(p.nextOffset)
	g.highWatermark.Store(p.highWatermark)
	g.watermarkMs.Store(p.wm.Value())
	g.states.Store(int64(len(p.states)))
	g.heldBytes.Store(p.heldBytes)
	g.published.Store(true)
}

func (p *Processor) track(g *partitionGauges) {
	p.gaugesMu.Lock()
	defer p.gaugesMu.Unlock()
	p.gauges[g.partition] = g
}

func (p *Processor) untrack(g *partitionGauges) {
	p.gaugesMu.Lock()
	defer p.gaugesMu.Unlock()
	if p.gauges[g.partition] == g {
		delete(p.gauges, g.partition)
	}
}

// checkpointBuckets are the buckets, in seconds, of the checkpoint duration:
// from a quick local INSERT to the retries of a ClickHouse outage.
var checkpointBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

func newCheckpointHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "vigil_processor_checkpoint_duration_seconds",
		Help:    "Time from the start of a checkpoint (dead letters, window states, late and raw events, the checkpoint row) to its being durable, retries included.",
		Buckets: checkpointBuckets,
	})
}

// Collector is the processor's metrics, to register on the application's
// registry: counters from Counters, leadership, the checkpoint duration and
// the gauges of each partition this member owns now (lag, watermark delay,
// window states and bytes held). Registering it costs the hot path nothing.
func (p *Processor) Collector() prometheus.Collector { return processorCollector{p} }

type processorCollector struct{ p *Processor }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descMessages       = desc("vigil_processor_messages_total", "Kafka messages of the prediction topic handled.")
	descEvents         = desc("vigil_processor_events_total", "Events decoded from handled messages (consumed).")
	descCounted        = desc("vigil_processor_events_counted_total", "Events counted into their window's state.")
	descSkipped        = desc("vigil_processor_events_skipped_total", "Events not counted because they were counted already: replay (a restored window state includes them) or duplicate_id (--dedup-event-ids).", "reason")
	descDuplicateMsgs  = desc("vigil_processor_duplicate_messages_total", "SDK messages skipped because their producer wrote them again (a retry; producer id and sequence headers).")
	descLate           = desc("vigil_processor_late_events_total", "Events whose window had closed (watermark passed its end): stored in vigil_late_events, not counted.")
	descDeadLetters    = desc("vigil_processor_dead_letters_total", "Malformed messages sent to the dead-letter topic, by reason.", "reason")
	descDLTruncated    = desc("vigil_processor_dead_letters_truncated_total", "Dead letters written truncated because the dead-letter topic refused them whole.")
	descDLDropped      = desc("vigil_processor_dead_letters_dropped_total", "Dead letters the dead-letter topic refused even truncated: logged, not written.")
	descDedupOverflow  = desc("vigil_processor_dedup_overflow_total", "Events not remembered for --dedup-event-ids because a partition holds its maximum of ids.")
	descQuarantined    = desc("vigil_processor_quarantined_states_total", "Stored window states left out of a restore because they do not decode.")
	descFetchErrors    = desc("vigil_processor_fetch_errors_total", "Failed fetches from Kafka, retried inside the partition.")
	descCheckpoints    = desc("vigil_processor_checkpoints_total", "Durable checkpoints written.")
	descCheckpointErrs = desc("vigil_processor_checkpoint_failures_total", "Failed checkpoint attempts (dead letters or ClickHouse writes), each retried.")
	descRestoreErrs    = desc("vigil_processor_restore_failures_total", "Failed attempts to restore a partition from ClickHouse, each retried.")
	descLeader         = desc("vigil_processor_leader", "1 while this member consumes partition 0 and runs the group's alert job, else 0.")
	descGeneration     = desc("vigil_processor_generation", "Id of the consumer-group generation this member is in; -1 when it is in none (joining, rebalancing).")
	descPartitions     = desc("vigil_processor_partitions", "Partitions of the prediction topic this member consumes in the current generation (0: a standby member).")
	descLag            = desc("vigil_processor_partition_lag_messages", "High watermark of the partition (as of the last fetch) minus the offset after the last handled message.", "partition")
	descCheckpointLag  = desc("vigil_processor_partition_checkpoint_lag_messages", "High watermark of the partition minus the next offset of its last durable checkpoint (what a restart would read again or has not read).", "partition")
	descWatermarkDelay = desc("vigil_processor_partition_watermark_delay_seconds", "Now minus the partition's watermark (largest event time seen minus the allowed lateness).", "partition")
	descCheckpointAge  = desc("vigil_processor_partition_last_checkpoint_timestamp_seconds", "Unix time of the partition's last durable checkpoint.", "partition")
	descStates         = desc("vigil_processor_partition_window_states", "Window states the partition holds in memory (open windows, and closed ones until their final checkpoint), segments included.", "partition")
	descHeldBytes      = desc("vigil_processor_partition_held_bytes", "Bytes the partition holds for its next checkpoint (decoded rows, late rows, dead letters); it checkpoints early at its share of --max-held-bytes.", "partition")
	processorDescs     = []*prometheus.Desc{descMessages, descEvents, descCounted, descSkipped, descDuplicateMsgs, descLate, descDeadLetters, descDLTruncated, descDLDropped, descDedupOverflow, descQuarantined, descFetchErrors, descCheckpoints, descCheckpointErrs, descRestoreErrs, descLeader, descGeneration, descPartitions, descLag, descCheckpointLag, descWatermarkDelay, descCheckpointAge, descStates, descHeldBytes}
	labelMessagesDesc  = desc("vigil_labels_messages_total", "Kafka messages of the label topic handled.")
	labelStoredDesc    = desc("vigil_labels_stored_total", "Labels stored in vigil_labels.")
	labelRejectedDesc  = desc("vigil_labels_rejected_total", "Label messages (or Arrow rows' messages) sent to the label dead-letter topic: malformed, or refused by the store as bad data.")
	labelWriteErrDesc  = desc("vigil_labels_write_failures_total", "Failed label inserts (or dead-letter writes), each retried.")
	labelDLTruncated   = desc("vigil_labels_dead_letters_truncated_total", "Label dead letters written truncated.")
	labelDLDropped     = desc("vigil_labels_dead_letters_dropped_total", "Label dead letters refused even truncated: logged, not written.")
	labelConsumerDescs = []*prometheus.Desc{labelMessagesDesc, labelStoredDesc, labelRejectedDesc, labelWriteErrDesc, labelDLTruncated, labelDLDropped}
	skippedReplay      = "replay"
	skippedDuplicateID = "duplicate_id"
	_                  = prometheus.Collector(processorCollector{})
	_                  = prometheus.Collector(labelCollector{})
)

func (c processorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range processorDescs {
		ch <- d
	}
	c.p.checkpointSeconds.Describe(ch)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v *atomic.Uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v.Load()), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (c processorCollector) Collect(ch chan<- prometheus.Metric) {
	p, n := c.p, &c.p.Counters
	counter(ch, descMessages, &n.Messages)
	counter(ch, descEvents, &n.Events)
	counter(ch, descCounted, &n.Counted)
	counter(ch, descSkipped, &n.Skipped, skippedReplay)
	counter(ch, descSkipped, &n.DuplicateEvents, skippedDuplicateID)
	counter(ch, descDuplicateMsgs, &n.Duplicates)
	counter(ch, descLate, &n.Late)
	for r := range numDeadLetterReasons {
		counter(ch, descDeadLetters, &n.DeadLetters[r], r.String())
	}
	counter(ch, descDLTruncated, &n.DeadLettersTruncated)
	counter(ch, descDLDropped, &n.DeadLettersDropped)
	counter(ch, descDedupOverflow, &n.DedupOverflow)
	counter(ch, descQuarantined, &n.Quarantined)
	counter(ch, descFetchErrors, &n.FetchErrors)
	counter(ch, descCheckpoints, &n.Checkpoints)
	counter(ch, descCheckpointErrs, &n.CheckpointErrors)
	counter(ch, descRestoreErrs, &n.RestoreErrors)
	p.checkpointSeconds.Collect(ch)

	leader := 0.0
	if p.Leader() {
		leader = 1
	}
	gauge(ch, descLeader, leader)
	gauge(ch, descGeneration, float64(p.generation.Load()))
	gauge(ch, descPartitions, float64(p.Partitions()))

	p.gaugesMu.Lock()
	parts := make([]*partitionGauges, 0, len(p.gauges))
	for _, g := range p.gauges {
		parts = append(parts, g)
	}
	p.gaugesMu.Unlock()
	now := time.Now()
	for _, g := range parts {
		if !g.published.Load() {
			continue // restoring: nothing known yet
		}
		part := strconv.Itoa(g.partition)
		hw := g.highWatermark.Load()
		gauge(ch, descLag, float64(max(hw-max(g.next.Load(), 0), 0)), part)
		gauge(ch, descCheckpointLag, float64(max(hw-max(g.checkpoint.Load(), 0), 0)), part)
		if wm := g.watermarkMs.Load(); wm != noWatermark {
			gauge(ch, descWatermarkDelay, now.Sub(time.UnixMilli(wm)).Seconds(), part)
		}
		if at := g.checkpointAt.Load(); at > 0 {
			gauge(ch, descCheckpointAge, float64(at)/1000, part)
		}
		gauge(ch, descStates, float64(g.states.Load()), part)
		gauge(ch, descHeldBytes, float64(g.heldBytes.Load()), part)
	}
}

// Collector is the label consumer's metrics, to register on the
// application's registry.
func (c *LabelConsumer) Collector() prometheus.Collector { return labelCollector{c} }

type labelCollector struct{ c *LabelConsumer }

func (c labelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range labelConsumerDescs {
		ch <- d
	}
}

func (c labelCollector) Collect(ch chan<- prometheus.Metric) {
	n := &c.c.Counters
	counter(ch, labelMessagesDesc, &n.Messages)
	counter(ch, labelStoredDesc, &n.Labels)
	counter(ch, labelRejectedDesc, &n.Malformed)
	counter(ch, labelWriteErrDesc, &n.WriteErrors)
	counter(ch, labelDLTruncated, &n.DeadLettersTruncated)
	counter(ch, labelDLDropped, &n.DeadLettersDropped)
}
