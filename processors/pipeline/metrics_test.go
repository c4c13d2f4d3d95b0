package pipeline

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// scrape gathers reg into "name{k=v,...}" -> value (counters, gauges,
// histogram sample counts as name_count).
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[strings.Replace(name, mf.GetName(), mf.GetName()+"_count", 1)] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func testProcessor(t *testing.T, dedup bool) (*Processor, *prometheus.Registry) {
	t.Helper()
	p, err := New(Config{Brokers: []string{"unused:9092"}, Window: window.Config{Size: time.Minute, AllowedLateness: 30 * time.Second}, DedupEventIDs: dedup}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.Collector())
	return p, reg
}

func withHeader(m *kafka.Message, k, v string) *kafka.Message {
	m.Headers = append(m.Headers, kafka.Header{Key: k, Value: []byte(v)})
	return m
}

func raw(off int64, value string) *kafka.Message {
	return &kafka.Message{Topic: "t", Offset: off, Value: []byte(value)}
}

// TestProcessorMetrics: the counters after known messages, one family at a
// time; every counter not named in want must be 0.
func TestProcessorMetrics(t *testing.T) {
	const producer = "0123456789abcdef0123456789abcdef"
	cases := []struct {
		name  string
		dedup bool
		msgs  func(t *testing.T) []*kafka.Message
		want  map[string]float64
	}{
		{"json events", false, func(t *testing.T) []*kafka.Message {
			return []*kafka.Message{jsonMsg(0, "m", 1, 1), jsonMsg(1, "m", 2, 2), jsonMsg(2, "n", 3, 3)}
		}, map[string]float64{"messages": 3, "events": 3, "events_counted": 3}},
		{"arrow events", false, func(t *testing.T) []*kafka.Message {
			return []*kafka.Message{arrowMsg(t, 0, "m", []float64{1, 2, 70}, []float64{1, 2, 3}), arrowMsg(t, 1, "m", []float64{3, 4}, []float64{1, 2})}
		}, map[string]float64{"messages": 2, "events": 5, "events_counted": 5}},
		{"late events", false, func(t *testing.T) []*kafka.Message {
			// 125s moves the watermark to 95s: window [0, 60) is closed.
			return []*kafka.Message{jsonMsg(0, "m", 10, 1), jsonMsg(1, "m", 125, 1), jsonMsg(2, "m", 20, 1), arrowMsg(t, 3, "m", []float64{5, 6, 130}, []float64{1, 2, 3})}
		}, map[string]float64{"messages": 4, "events": 6, "events_counted": 3, "late_events": 3}},
		{"dead letters by reason", false, func(t *testing.T) []*kafka.Message {
			return []*kafka.Message{
				raw(0, `{"event_id":`), raw(1, `not json`),
				raw(2, `{"event_id":"e","event_time":1767225600000,"prediction":{"score":0.5}}`), // no model
				withHeader(raw(3, `{}`), wire.HeaderEncoding, "avro"),
				withHeader(raw(4, `garbage`), wire.HeaderEncoding, wire.EncodingArrow),
				jsonMsg(5, "m", 1, 1),
			}
		}, map[string]float64{"messages": 6, "events": 1, "events_counted": 1,
			"dead_letters{reason=invalid_json}":     3,
			"dead_letters{reason=unknown_encoding}": 1, "dead_letters{reason=invalid_arrow}": 1}},
		{"producer retries", false, func(t *testing.T) []*kafka.Message {
			a, b := sdkMsg(jsonMsg(0, "m", 1, 1), producer, 1), sdkMsg(jsonMsg(1, "m", 2, 1), producer, 2)
			return []*kafka.Message{a, b, copyAt(b, 2), copyAt(a, 3)}
		}, map[string]float64{"messages": 4, "events": 2, "events_counted": 2, "duplicate_messages": 2}},
		{"duplicate event ids", true, func(t *testing.T) []*kafka.Message {
			return []*kafka.Message{jsonMsg(0, "m", 1, 1), copyAt(jsonMsg(0, "m", 1, 1), 1), copyAt(jsonMsg(0, "m", 1, 1), 2)}
		}, map[string]float64{"messages": 3, "events": 3, "events_counted": 1, "events_skipped{reason=duplicate_id}": 2}},
	}
	counters := []string{"messages", "events", "events_counted", "events_skipped{reason=replay}", "events_skipped{reason=duplicate_id}",
		"duplicate_messages", "late_events", "dead_letters{reason=invalid_json}",
		"dead_letters{reason=invalid_arrow}", "dead_letters{reason=unknown_encoding}", "dead_letters_truncated", "dead_letters_dropped",
		"dedup_overflow", "quarantined_states", "fetch_errors", "checkpoints", "checkpoint_failures", "restore_failures"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, reg := testProcessor(t, tc.dedup)
			part := newPartition(p.cfg, Source{Group: "g", Topic: "t"}, &p.Counters, zerolog.Nop())
			for _, m := range tc.msgs(t) {
				part.handle(m)
			}
			got := scrape(t, reg)
			for _, c := range counters {
				name := "vigil_processor_" + c
				if i := strings.IndexByte(name, '{'); i >= 0 {
					name = name[:i] + "_total" + name[i:]
				} else {
					name += "_total"
				}
				v, ok := got[name]
				if !ok {
					t.Errorf("%s not exported", name)
				}
				if v != tc.want[c] {
					t.Errorf("%s = %v, want %v", name, v, tc.want[c])
				}
			}
		})
	}
}

// TestProcessorReplayMetrics: events a restored state includes are skipped
// as replayed, not counted again.
func TestProcessorReplayMetrics(t *testing.T) {
	p, reg := testProcessor(t, false)
	first := newPartition(p.cfg, Source{Group: "g", Topic: "t"}, &Counters{}, zerolog.Nop())
	for off := int64(0); off < 5; off++ {
		first.handle(jsonMsg(off, "m", float64(off), 1))
	}
	cb := first.prepare()
	part := newPartition(p.cfg, Source{Group: "g", Topic: "t"}, &p.Counters, zerolog.Nop())
	part.restore(0, noWatermark, cb.states)
	for off := int64(0); off < 7; off++ {
		part.handle(jsonMsg(off, "m", float64(off), 1))
	}
	got := scrape(t, reg)
	for name, want := range map[string]float64{
		"vigil_processor_events_total": 7, "vigil_processor_events_counted_total": 2, "vigil_processor_events_skipped_total{reason=replay}": 5,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

// TestPartitionGauges: lag, checkpoint lag, watermark delay, states and held
// bytes of a partition the processor owns, before and after a checkpoint,
// and leadership.
func TestPartitionGauges(t *testing.T) {
	p, reg := testProcessor(t, false)
	part := newPartition(p.cfg, Source{Group: "g", Topic: "t", Partition: 3}, &p.Counters, zerolog.Nop())
	p.track(part.gauges)
	if _, ok := scrape(t, reg)["vigil_processor_partition_lag_messages{partition=3}"]; ok {
		t.Fatal("a partition that published nothing yet has a lag")
	}
	// Offsets 0..9 of a partition whose high watermark is 20; 2 windows.
	for off := int64(0); off < 10; off++ {
		m := jsonMsg(off, "m", float64(off*10), 1)
		m.HighWaterMark = 20
		part.handle(m)
		part.observed(off == 9)
	}
	got := scrape(t, reg)
	// The watermark is 90s - 30s = 60s after t0.
	delay := time.Since(t0.Add(60 * time.Second)).Seconds()
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"vigil_processor_partition_lag_messages{partition=3}", 10},
		{"vigil_processor_partition_checkpoint_lag_messages{partition=3}", 20},
		{"vigil_processor_partition_window_states{partition=3}", 1},
		{"vigil_processor_leader", 0},
		{"vigil_processor_generation", -1},
		{"vigil_processor_partitions", 0},
		{"vigil_processor_checkpoint_duration_seconds_count", 0},
	} {
		if got[tc.name] != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got[tc.name], tc.want)
		}
	}
	if d := got["vigil_processor_partition_watermark_delay_seconds{partition=3}"]; d < delay-1 || d > delay+5 {
		t.Errorf("watermark delay %v, want about %v", d, delay)
	}
	if b := got["vigil_processor_partition_held_bytes{partition=3}"]; b <= 0 {
		t.Errorf("held bytes %v, want > 0 before the checkpoint", b)
	}
	if _, ok := got["vigil_processor_partition_last_checkpoint_timestamp_seconds{partition=3}"]; ok {
		t.Error("a checkpoint time before any checkpoint")
	}

	// 70s and 80s closed window 0 once the watermark passed 60s: the
	// checkpoint writes it final and drops it; window 1 stays.
	part.handle(jsonMsg(10, "m", 130, 1)) // watermark 100s: window [60, 120) stays open
	before := time.Now()
	part.done(part.prepare())
	got = scrape(t, reg)
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"vigil_processor_partition_lag_messages{partition=3}", 9},
		{"vigil_processor_partition_checkpoint_lag_messages{partition=3}", 9},
		{"vigil_processor_partition_window_states{partition=3}", 2},
		{"vigil_processor_partition_held_bytes{partition=3}", 0},
		{"vigil_processor_checkpoints_total", 1},
	} {
		if got[tc.name] != tc.want {
			t.Errorf("after checkpoint: %s = %v, want %v", tc.name, got[tc.name], tc.want)
		}
	}
	if at := got["vigil_processor_partition_last_checkpoint_timestamp_seconds{partition=3}"]; at < float64(before.Unix())-1 || at > float64(time.Now().Unix())+1 {
		t.Errorf("last checkpoint at %v, want about %v", at, before.Unix())
	}

	// Leadership of generation 7 with 2 partitions, then its end.
	gen := newFakeGeneration()
	p.lead(gen, 7, true, 2)
	got = scrape(t, reg)
	if got["vigil_processor_leader"] != 1 || got["vigil_processor_generation"] != 7 || got["vigil_processor_partitions"] != 2 {
		t.Errorf("leading generation 7: leader %v generation %v partitions %v", got["vigil_processor_leader"], got["vigil_processor_generation"], got["vigil_processor_partitions"])
	}
	gen.close()
	got = scrape(t, reg)
	if got["vigil_processor_leader"] != 0 || got["vigil_processor_generation"] != -1 || got["vigil_processor_partitions"] != 0 {
		t.Errorf("after the generation: leader %v generation %v partitions %v", got["vigil_processor_leader"], got["vigil_processor_generation"], got["vigil_processor_partitions"])
	}
	p.untrack(part.gauges)
	if _, ok := scrape(t, reg)["vigil_processor_partition_lag_messages{partition=3}"]; ok {
		t.Error("a partition no longer owned is still exported")
	}
}

// TestCheckpointHistogram: each durable checkpoint is one observation.
func TestCheckpointHistogram(t *testing.T) {
	p, reg := testProcessor(t, false)
	for range 3 {
		p.checkpointSeconds.Observe(0.02)
	}
	if got := scrape(t, reg)["vigil_processor_checkpoint_duration_seconds_count"]; got != 3 {
		t.Fatalf("checkpoint duration count %v, want 3", got)
	}
}

func TestLabelConsumerMetrics(t *testing.T) {
	c, err := NewLabelConsumer(LabelConfig{Brokers: []string{"unused:9092"}}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c.Collector())
	var b labelBatch
	var dec wire.LabelJSONDecoder
	var l schemas.Label
	msgs := []*kafka.Message{
		raw(0, `{"event_id":"e1","model":"m","label_time":1767225600000,"label":"fraud"}`),
		raw(1, `{"event_id":`),
		raw(2, `{"event_id":"e2","model":"m","label_time":1767225600000,"label":"ok"}`),
		withHeader(raw(3, `x`), wire.HeaderEncoding, "avro"),
	}
	for _, m := range msgs {
		c.Counters.Messages.Add(1)
		c.decode(m, &b, &dec, &l)
	}
	c.Counters.Labels.Add(uint64(len(b.rows))) // what flush adds once stored
	got := scrape(t, reg)
	for name, want := range map[string]float64{
		"vigil_labels_messages_total": 4, "vigil_labels_stored_total": 2, "vigil_labels_rejected_total": 2, "vigil_labels_write_failures_total": 0,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

// BenchmarkPartitionObserved is what the metrics add to the handling of
// one message: the gauges published every publishEvery messages.
func BenchmarkPartitionObserved(b *testing.B) {
	part := testPartition(b)
	b.ReportAllocs()
	for b.Loop() {
		part.observed(false)
	}
}

// BenchmarkScrape is one scrape of the processor's collector with 8
// partitions.
func BenchmarkScrape(b *testing.B) {
	p, err := New(Config{Brokers: []string{"unused:9092"}}, nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 8 {
		part := newPartition(p.cfg, Source{Topic: "t", Partition: i}, &p.Counters, zerolog.Nop())
		part.publish()
		p.track(part.gauges)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collector())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
