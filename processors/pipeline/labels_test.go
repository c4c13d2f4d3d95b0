package pipeline_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

func TestLabelConfig(t *testing.T) {
	c := pipeline.LabelConfig{Brokers: []string{"b"}}.WithDefaults()
	if c.Topic != "vigil.predictions.labels" || c.DeadLetterTopic != "vigil.predictions.labels.dlq" || c.Group != pipeline.DefaultLabelGroup {
		t.Errorf("defaults: %+v", c)
	}
	for _, bad := range []pipeline.LabelConfig{
		{},
		{Brokers: []string{"b"}, Topic: "t", DeadLetterTopic: "t"},
		{Brokers: []string{"b"}, BatchSize: -1},
	} {
		if err := bad.WithDefaults().Validate(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// Labels in JSON and Arrow, an Arrow batch with one invalid row and broken
// messages, through the real Kafka into the real ClickHouse: every valid
// label is stored, every bad message is in the dead-letter topic, and a
// restarted consumer does not store anything twice.
func TestIntegrationLabelConsumer(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic := "vigil-labels-" + suffix
	db := "vigil_labels_" + suffix
	sink := testsink.Open(t, db, nil)
	if err := kafkatopic.Ensure(ctx, brokers, topic, 2); err != nil {
		t.Fatal(err)
	}

	at := time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	jsonHdr := []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte(wire.EncodingJSON)}}
	for i := range 10 {
		l := schemas.ValueLabel(fmt.Sprintf("e%d", i), "m", float64(i%2), at.Add(time.Duration(i)*time.Second))
		msgs = append(msgs, kafka.Message{Key: []byte("m"), Value: wire.AppendLabelJSON(nil, &l), Headers: jsonHdr})
	}
	b := wire.NewLabelBatchBuilder(memory.DefaultAllocator)
	for i := range 5 {
		l := schemas.ClassLabel(fmt.Sprintf("a%d", i), "m", "cat", at)
		if err := b.Append(&l); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecord()
	arrowMsg, err := wire.NewArrowEncoder(wire.CompressionZSTD).Encode(nil, rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	arrowHdr := []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte(wire.EncodingArrow)}}
	partial := partialLabelBatch(t, at) // rows p0, p2 valid; row 1 without event id
	msgs = append(msgs,
		kafka.Message{Key: []byte("m"), Value: arrowMsg, Headers: arrowHdr},
		kafka.Message{Key: []byte("m"), Value: partial, Headers: arrowHdr},
		kafka.Message{Key: []byte("m"), Value: []byte(`{"event_id": "x", "model": "m", "label": null, "label_time": 1}`), Headers: jsonHdr},
		kafka.Message{Key: []byte("m"), Value: []byte("not arrow"), Headers: arrowHdr},
		kafka.Message{Key: []byte("m"), Value: []byte(`{}`), Headers: []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte("avro")}}},
	)
	conns := &kafka.Transport{} // its own, so that goleak sees it closed
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, Transport: conns}
	defer conns.CloseIdleConnections()
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	cfg := pipeline.LabelConfig{Brokers: brokers, Topic: topic, Group: "g-" + suffix, FlushInterval: 100 * time.Millisecond}
	stored := func() (rows, distinct uint64) {
		_ = sink.Conn().QueryRow(ctx, fmt.Sprintf("SELECT count(), uniqExact(event_id) FROM %s.vigil_labels FINAL", db)).Scan(&rows, &distinct)
		return
	}
	run := func(wait func() bool) *pipeline.LabelConsumer {
		t.Helper()
		c, err := pipeline.NewLabelConsumer(cfg, sink.Labels(), zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for !wait() {
			if time.Now().After(deadline) {
				rows, _ := stored()
				t.Fatalf("timed out: %d labels stored, counters %d messages %d malformed", rows, c.Counters.Messages.Load(), c.Counters.Malformed.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := c.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := run(func() bool { rows, _ := stored(); return rows == 17 })
	if c.Counters.Malformed.Load() != 4 {
		t.Errorf("malformed %d, want 4", c.Counters.Malformed.Load())
	}
	var cls string
	var hasClass uint8
	if err := sink.Conn().QueryRow(ctx, fmt.Sprintf("SELECT label_class, has_class FROM %s.vigil_labels WHERE event_id = 'a3'", db)).Scan(&cls, &hasClass); err != nil || cls != "cat" || hasClass != 1 {
		t.Errorf("arrow label a3: %q %d %v", cls, hasClass, err)
	}
	// Restarted: the offsets were committed, nothing is read again.
	began := time.Now()
	c = run(func() bool { return time.Since(began) > 3*time.Second })
	if n := c.Counters.Messages.Load(); n != 0 {
		t.Errorf("restarted consumer read %d messages again", n)
	}
	if rows, distinct := stored(); rows != 17 || distinct != 17 {
		t.Errorf("after restart: %d rows, %d ids; want 17, 17", rows, distinct)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic + ".dlq", MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for i := range 4 {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		m, err := r.ReadMessage(rctx)
		cancel()
		if err != nil {
			t.Fatalf("dead letter %d: %v", i, err)
		}
		if kafkaHeader(&m, pipeline.HeaderError) == "" || kafkaHeader(&m, pipeline.HeaderSourceTopic) != topic {
			t.Errorf("dead letter %d headers %v", i, m.Headers)
		}
	}
}

// partialLabelBatch is an Arrow label batch of three rows whose second has
// no event id: the other two are stored, the message dead-lettered.
func partialLabelBatch(t *testing.T, at time.Time) []byte {
	t.Helper()
	mem := memory.DefaultAllocator
	ids, models := array.NewStringBuilder(mem), array.NewStringBuilder(mem)
	times := array.NewTimestampBuilder(mem, schemas.EventTimeType)
	classes, values := array.NewStringBuilder(mem), array.NewFloat64Builder(mem)
	for i, id := range []string{"p0", "", "p2"} {
		ids.Append(id)
		models.Append("m")
		times.Append(arrow.Timestamp(at.UnixMilli() + int64(i)))
		classes.AppendNull()
		values.Append(1)
	}
	cols := []arrow.Array{ids.NewArray(), models.NewArray(), times.NewArray(), classes.NewArray(), values.NewArray()}
	rec := array.NewRecord(schemas.NewLabelSchema(), cols, 3)
	defer rec.Release()
	for _, c := range cols {
		c.Release()
	}
	data, err := wire.NewArrowEncoder(wire.CompressionZSTD).Encode(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func kafkaHeader(msg *kafka.Message, key string) string {
	for _, h := range msg.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// On the real Kafka the label consumer's readiness check fails before
// Start, passes once it joined its group (an idle label topic: no message
// needed), and fails again after Shutdown.
func TestIntegrationLabelConsumerReady(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	sink := testsink.Open(t, "vigil_labels_ready_"+suffix, nil)
	cfg := pipeline.LabelConfig{Brokers: brokers, Topic: "vigil-labels-ready-" + suffix, Group: "g-ready-" + suffix, FlushInterval: 100 * time.Millisecond}
	c, err := pipeline.NewLabelConsumer(cfg, sink.Labels(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ready(ctx); err == nil || err.Error() != "label consumer not started" {
		t.Errorf("before Start: %v", err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	var detail string
	for deadline := began.Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if detail, err = c.Ready(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 60s: %v", err)
		}
	}
	t.Logf("ready after %v", time.Since(began).Round(time.Millisecond))
	if want := "member of consumer group " + cfg.Group + ", reading topic " + cfg.Topic; detail != want {
		t.Errorf("ready: %q, want %q", detail, want)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ready(ctx); err == nil || err.Error() != "label consumer stopped" {
		t.Errorf("after Shutdown: %v", err)
	}
}
