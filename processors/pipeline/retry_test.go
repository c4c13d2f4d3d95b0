package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// A producer retry on the real Kafka and ClickHouse: messages the SDK wrote
// are written again, byte for byte with their headers, into their partition
// (as kafka-go's retry does after a lost acknowledgement) while no processor
// runs; the processor restarted on the same group and database counts each
// event once in both window tables, and counts the copies as Duplicates.
// Copies without the SDK headers, as another producer's retry would be,
// count once with DedupEventIDs (as DuplicateEvents).
func TestIntegrationProducerRetry(t *testing.T) {
	for _, enc := range []string{wire.EncodingArrow, wire.EncodingJSON} {
		t.Run(enc, func(t *testing.T) { producerRetry(t, enc, false) })
	}
	t.Run("json without sdk headers, dedup event ids", func(t *testing.T) { producerRetry(t, wire.EncodingJSON, true) })
}

func producerRetry(t *testing.T, encoding string, plain bool) {
	brokers := []string{testenv.Kafka(t)}
	ctx := context.Background()
	suffix := encoding + "_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	if plain {
		suffix = "plain_" + suffix
	}
	topic, db, group := "vigil-retry-"+suffix, "vigil_retry_"+suffix, "g-"+suffix
	const partitions = 2
	sink := testsink.Open(t, db, func(c *clickhouse.Config) { c.RawEvents = true })
	if err := kafkatopic.Ensure(ctx, brokers, topic, partitions); err != nil {
		t.Fatal(err)
	}

	// 3 models x 25 events over 3 one-minute windows, by the SDK.
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	want := map[string]uint64{} // "model@window start (Unix s)" -> events
	prod, err := ingest.NewProducer(brokers, topic, ingest.WithEncoding(encoding), ingest.WithBatchSize(10), ingest.WithLinger(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"fraud", "churn", "ranker"} {
		for i := range 25 {
			at := base.Add(time.Duration(i*5) * time.Second)
			e := schemas.Event{
				ID: fmt.Sprintf("%s-%d", model, i), Model: model, ModelVersion: "v1", Time: at,
				Features:   []schemas.Feature{schemas.Num("x", float64(i))},
				Prediction: schemas.Score(0.5),
			}
			if err := prod.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
			want[fmt.Sprintf("%s@%d", model, at.Truncate(time.Minute).Unix())]++
		}
	}
	if err := prod.Close(ctx); err != nil {
		t.Fatal(err)
	}

	conns := &kafka.Transport{} // its own, so that goleak sees it closed
	defer conns.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: conns}
	endOffsets := func() int64 {
		t.Helper()
		var reqs []kafka.OffsetRequest
		for p := range partitions {
			reqs = append(reqs, kafka.LastOffsetOf(p))
		}
		resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, po := range resp.Topics[topic] {
			if po.Error != nil {
				t.Fatal(po.Error)
			}
			sum += po.LastOffset
		}
		return sum
	}
	checkpointed := func() int64 {
		var n int64
		_ = sink.Conn().QueryRow(ctx, fmt.Sprintf("SELECT toInt64(sum(next_offset)) FROM %s.vigil_checkpoints FINAL WHERE consumer_group = ? AND topic = ?", db), group, topic).Scan(&n)
		return n
	}
	process := func() *pipeline.Processor {
		t.Helper()
		end := endOffsets()
		p, err := pipeline.New(pipeline.Config{Brokers: brokers, Topic: topic, Group: group, CheckpointInterval: 200 * time.Millisecond,
			// One model's events follow another's in a partition: none is late.
			Window:        window.Config{Size: time.Minute, AllowedLateness: time.Hour},
			DedupEventIDs: plain}, sink.Windows(), zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(90 * time.Second)
		for checkpointed() != end {
			if time.Now().After(deadline) {
				t.Fatalf("timed out: checkpointed %d of %d offsets", checkpointed(), end)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := p.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := process(); p.Counters.Duplicates.Load() != 0 || p.Counters.Events.Load() != 75 {
		t.Fatalf("first run: %d duplicates, %d events; want 0, 75", p.Counters.Duplicates.Load(), p.Counters.Events.Load())
	}

	// The copies: of each partition's first and last message, the last one
	// twice (so one copy is recognised from the restored state, the other
	// from the state of this run), each into the partition of the original.
	var copies []kafka.Message
	for part := range partitions {
		msgs := readPartition(t, brokers, topic, part)
		if len(msgs) == 0 {
			continue
		}
		first, last := msgs[0], msgs[len(msgs)-1]
		if first.Offset == last.Offset {
			copies = append(copies, first, first)
		} else {
			copies = append(copies, first, last, last)
		}
	}
	for i := range copies {
		m := &copies[i]
		if kafkaHeader(m, wire.HeaderProducer) != prod.ID() || kafkaHeader(m, wire.HeaderSequence) == "" {
			t.Fatalf("message %d/%d has headers %v, want the producer id %s and a sequence", m.Partition, m.Offset, m.Headers, prod.ID())
		}
		*m = kafka.Message{Partition: m.Partition, Key: m.Key, Value: m.Value, Headers: m.Headers}
		if plain {
			m.Headers = []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte(wire.EncodingJSON)}}
		}
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, Transport: conns,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition })}
	if err := w.WriteMessages(ctx, copies...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	p := process() // a restart between the originals and the copies
	if plain {
		if got, want := p.Counters.DuplicateEvents.Load(), uint64(len(copies)); got != want || p.Counters.Duplicates.Load() != 0 {
			t.Errorf("second run: %d duplicate events, %d duplicate messages; want %d, 0", got, p.Counters.Duplicates.Load(), want)
		}
	} else {
		if got := p.Counters.Duplicates.Load(); got != uint64(len(copies)) {
			t.Errorf("second run: %d duplicates, want %d", got, len(copies))
		}
		if got := p.Counters.Events.Load(); got != 0 {
			t.Errorf("second run decoded %d events, want 0 (every message a copy)", got)
		}
	}

	for table, q := range map[string]string{
		"vigil_model_windows":   "SELECT model, toUnixTimestamp(window_start), sum(events) FROM %s.vigil_model_windows FINAL WHERE segment = '' GROUP BY model, window_start",
		"vigil_feature_windows": "SELECT model, toUnixTimestamp(window_start), sum(count) FROM %s.vigil_feature_windows FINAL WHERE segment = '' AND feature = 'x' GROUP BY model, window_start",
	} {
		got := map[string]uint64{}
		rows, err := sink.Conn().Query(ctx, fmt.Sprintf(q, db))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var model string
			var window uint32
			var n uint64
			if err := rows.Scan(&model, &window, &n); err != nil {
				t.Fatal(err)
			}
			got[fmt.Sprintf("%s@%d", model, window)] = n
		}
		rows.Close()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s, events per window summed over partitions:\n got %v\nwant %v", table, got, want)
		}
	}
	var raw, distinct uint64
	if err := sink.Conn().QueryRow(ctx, fmt.Sprintf("SELECT count(), uniqExact(event_id) FROM %s.vigil_events FINAL", db)).Scan(&raw, &distinct); err != nil || raw != 75 || distinct != 75 {
		t.Errorf("vigil_events: %d rows, %d ids, %v; want 75, 75", raw, distinct, err)
	}
}

// readPartition returns every message of topic's partition part.
func readPartition(t *testing.T, brokers []string, topic string, part int) []kafka.Message {
	t.Helper()
	conn, err := kafka.DialLeader(context.Background(), "tcp", brokers[0], topic, part)
	if err != nil {
		t.Fatal(err)
	}
	first, last, err := conn.ReadOffsets()
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: part, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var msgs []kafka.Message
	for int64(len(msgs)) < last-first {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			t.Fatalf("read %s/%d: %v", topic, part, err)
		}
		msgs = append(msgs, m)
	}
	return slices.Clip(msgs)
}
