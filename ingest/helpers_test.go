package ingest

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testTopic = "t"

var baseTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testEvent returns event i of model: every field set, values derived from i.
func testEvent(model string, i int) schemas.Event {
	countries := [...]string{"de", "fr", "us"}
	return schemas.Event{
		ID:           fmt.Sprintf("%s-%04d", model, i),
		Model:        model,
		ModelVersion: "v1",
		Time:         baseTime.Add(time.Duration(i) * time.Millisecond),
		Features: []schemas.Feature{
			schemas.Num("amount", float64(i)+0.5),
			schemas.Str("country", countries[i%3]),
			schemas.Flag("new_user", i%2 == 0),
		},
		Prediction: schemas.Score(float64(i%100) / 100),
		Latency:    time.Duration(i%7) * time.Millisecond,
		Segments:   []schemas.Tag{{Key: "region", Value: "eu"}},
	}
}

// newCluster starts an in-process Kafka with topic t of 4 partitions.
func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(4, testTopic)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newTestProducer(t *testing.T, brokers []string, topic string, opts ...Option) *Producer {
	t.Helper()
	p, err := NewProducer(brokers, topic, opts...)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// row is what the tests compare of one event, as read back from Kafka.
type row struct {
	ID, Model, Version string
	TimeMs             int64
	LatencyMs          float64
	Score              float64
	Amount             float64
	Country            string
	NewUser            bool
	Region             string
}

func rowOf(e *schemas.Event) row {
	r := row{ID: e.ID, Model: e.Model, Version: e.ModelVersion, TimeMs: e.Time.UnixMilli(),
		LatencyMs: float64(e.Latency) / float64(time.Millisecond), Score: e.Prediction.Score}
	for _, f := range e.Features {
		switch f.Name {
		case "amount":
			r.Amount = f.Value.Num
		case "country":
			r.Country = f.Value.Str
		case "new_user":
			r.NewUser = f.Value.Bool
		}
	}
	for _, s := range e.Segments {
		if s.Key == "region" {
			r.Region = s.Value
		}
	}
	return r
}

// message is one Kafka message read back.
type message struct {
	Partition int32
	Offset    int64
	Key       string
	Headers   map[string]string
	Rows      []row
	Events    []schemas.Event // JSON messages only
}

// consume reads topic from the start until it has messages holding
// wantEvents events, then a little longer to catch extra ones.
func consume(t *testing.T, brokers []string, topic string, wantEvents int) []message {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	var msgs []message
	got := 0
	deadline := time.Now().Add(15 * time.Second)
	extra := time.Time{}
	for {
		wait := time.Until(deadline)
		if !extra.IsZero() {
			wait = time.Until(extra)
		}
		if wait <= 0 {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil {
				t.Errorf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			m := decodeMessage(t, r)
			got += len(m.Rows)
			msgs = append(msgs, m)
		})
		if got >= wantEvents && extra.IsZero() {
			extra = time.Now().Add(200 * time.Millisecond)
		}
	}
	if got != wantEvents {
		t.Fatalf("read %d events in %d messages, want %d events", got, len(msgs), wantEvents)
	}
	return msgs
}

func decodeMessage(t *testing.T, r *kgo.Record) message {
	t.Helper()
	m := message{Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Headers: map[string]string{}}
	for _, h := range r.Headers {
		m.Headers[h.Key] = string(h.Value)
	}
	switch enc := m.Headers[wire.HeaderEncoding]; enc {
	case wire.EncodingJSON:
		var e schemas.Event
		if err := decodeJSON(r.Value, &e); err != nil {
			t.Fatalf("decode json message %d/%d: %v", r.Partition, r.Offset, err)
		}
		m.Events = append(m.Events, e)
		m.Rows = append(m.Rows, rowOf(&e))
	case wire.EncodingArrow:
		rec, err := wire.DecodeArrow(r.Value, memory.NewGoAllocator())
		if err != nil {
			t.Fatalf("decode arrow message %d/%d: %v", r.Partition, r.Offset, err)
		}
		m.Rows = arrowRows(t, rec)
		rec.Release()
	default:
		t.Fatalf("message %d/%d: encoding header %q", r.Partition, r.Offset, enc)
	}
	return m
}

func decodeJSON(data []byte, e *schemas.Event) error {
	var d wire.JSONDecoder
	return d.Decode(data, e)
}

func arrowRows(t *testing.T, rec arrow.Record) []row {
	t.Helper()
	col := func(name string) arrow.Array {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			t.Fatalf("arrow batch has no column %q; columns: %v", name, rec.Schema())
		}
		return rec.Column(idx[0])
	}
	ids := col(schemas.ColEventID).(*array.String)
	models := col(schemas.ColModel).(*array.String)
	versions := col(schemas.ColModelVersion).(*array.String)
	times := col(schemas.ColEventTime).(*array.Timestamp)
	lat := col(schemas.ColLatencyMs).(*array.Float64)
	score := col(schemas.ColPredScore).(*array.Float64)
	amount := col(schemas.PrefixFeature + "amount").(*array.Float64)
	country := col(schemas.PrefixFeature + "country").(*array.String)
	newUser := col(schemas.PrefixFeature + "new_user").(*array.Boolean)
	region := col(schemas.PrefixSegment + "region").(*array.String)
	rows := make([]row, rec.NumRows())
	for i := range rows {
		rows[i] = row{
			ID: ids.Value(i), Model: models.Value(i), Version: versions.Value(i),
			TimeMs: int64(times.Value(i)), Score: score.Value(i), Amount: amount.Value(i),
			Country: country.Value(i), NewUser: newUser.Value(i), Region: region.Value(i),
		}
		if lat.IsValid(i) {
			rows[i].LatencyMs = lat.Value(i)
		}
	}
	return rows
}

// rowsByModel groups the rows of msgs by model, in topic order within each
// partition, and checks that each model's messages all sit in one partition
// under the model's key.
func rowsByModel(t *testing.T, msgs []message) map[string][]row {
	t.Helper()
	out := map[string][]row{}
	part := map[string]int32{}
	for _, m := range msgs {
		for _, r := range m.Rows {
			if r.Model != m.Key {
				t.Fatalf("message %d/%d keyed %q holds an event of model %q", m.Partition, m.Offset, m.Key, r.Model)
			}
		}
		if p, ok := part[m.Key]; ok && p != m.Partition {
			t.Fatalf("model %q in partitions %d and %d", m.Key, p, m.Partition)
		}
		part[m.Key] = m.Partition
		out[m.Key] = append(out[m.Key], m.Rows...)
	}
	return out
}

func wantRows(model string, from, to int) []row {
	var rs []row
	for i := from; i < to; i++ {
		e := testEvent(model, i)
		rs = append(rs, rowOf(&e))
	}
	return rs
}

func diffRows(got, want []row) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	var b strings.Builder
	for i := range got {
		if got[i] != want[i] && !(math.IsNaN(got[i].Score) && math.IsNaN(want[i].Score)) {
			fmt.Fprintf(&b, "row %d: got %+v\n\twant %+v\n", i, got[i], want[i])
			if b.Len() > 2000 {
				break
			}
		}
	}
	return b.String()
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
