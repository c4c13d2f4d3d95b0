package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

var testLabelTopic = DefaultLabelTopic(testTopic)

// testLabel returns label i of model: a class label for even i, a value
// label for odd i.
func testLabel(model string, i int) schemas.Label {
	id := fmt.Sprintf("%s-%04d", model, i)
	at := baseTime.Add(time.Hour + time.Duration(i)*time.Millisecond)
	if i%2 == 0 {
		return schemas.ClassLabel(id, model, [...]string{"fraud", "ok", "true"}[i%3], at)
	}
	return schemas.ValueLabel(id, model, float64(i)/4, at)
}

// labelMessage is one message of the label topic, decoded.
type labelMessage struct {
	Partition int32
	Key       string
	Headers   map[string]string
	Labels    []schemas.Label
}

// consumeLabels reads the label topic from the start until it has
// wantLabels labels, then a little longer to catch extra ones.
func consumeLabels(t *testing.T, brokers []string, topic string, wantLabels int) []labelMessage {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	var msgs []labelMessage
	var dec wire.LabelJSONDecoder
	got := 0
	deadline := time.Now().Add(15 * time.Second)
	var extra time.Time
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
		fs.EachRecord(func(r *kgo.Record) {
			m := labelMessage{Partition: r.Partition, Key: string(r.Key), Headers: map[string]string{}}
			for _, h := range r.Headers {
				m.Headers[h.Key] = string(h.Value)
			}
			switch enc := m.Headers[wire.HeaderEncoding]; enc {
			case wire.EncodingJSON:
				var l schemas.Label
				if err := dec.Decode(r.Value, &l); err != nil {
					t.Fatalf("decode json label %d/%d: %v", r.Partition, r.Offset, err)
				}
				m.Labels = []schemas.Label{l}
			case wire.EncodingArrow:
				if m.Labels, err = wire.DecodeLabelArrow(r.Value, memory.NewGoAllocator()); err != nil {
					t.Fatalf("decode arrow labels %d/%d: %v", r.Partition, r.Offset, err)
				}
			default:
				t.Fatalf("label message %d/%d: encoding header %q", r.Partition, r.Offset, enc)
			}
			got += len(m.Labels)
			msgs = append(msgs, m)
		})
		if got >= wantLabels && extra.IsZero() {
			extra = time.Now().Add(200 * time.Millisecond)
		}
	}
	if got != wantLabels {
		t.Fatalf("read %d labels in %d messages, want %d", got, len(msgs), wantLabels)
	}
	return msgs
}

func newLabelCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	return newCluster(t, kfake.SeedTopics(2, testLabelTopic))
}

// TestRecordLabel: labels arrive on the label topic, keyed by model, one
// model per partition and in order, in either encoding, next to the events
// on theirs; Flush waits for them and Stats counts them.
func TestRecordLabel(t *testing.T) {
	for _, enc := range []string{wire.EncodingArrow, wire.EncodingJSON} {
		t.Run(enc, func(t *testing.T) {
			c := newLabelCluster(t)
			p := newTestProducer(t, c.ListenAddrs(), testTopic, WithEncoding(enc), WithBatchSize(7), WithLinger(time.Hour))
			ctx := context.Background()
			models := []string{"fraud", "price"}
			const n = 20
			for i := range n {
				for _, m := range models {
					if err := p.RecordLabel(ctx, testLabel(m, i)); err != nil {
						t.Fatalf("RecordLabel: %v", err)
					}
				}
				if err := p.Record(ctx, testEvent("fraud", i)); err != nil {
					t.Fatalf("Record: %v", err)
				}
			}
			// Linger is an hour: only Flush sends the partial batches.
			if err := p.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if got, want := p.Stats(), (Stats{Recorded: 3 * n, Sent: 3 * n}); got != want {
				t.Fatalf("Stats = %+v, want %+v", got, want)
			}

			byModel := map[string][]schemas.Label{}
			partition := map[string]int32{}
			sequences := map[string]bool{} // labels and events share the producer's sequences
			for _, m := range consumeLabels(t, c.ListenAddrs(), testLabelTopic, 2*n) {
				if m.Headers[wire.HeaderEncoding] != enc || m.Headers[wire.HeaderSchemaVersion] != strconv.Itoa(schemas.LabelSchemaVersion) ||
					m.Headers[wire.HeaderProducer] != p.ID() || m.Headers[wire.HeaderSequence] == "" || sequences[m.Headers[wire.HeaderSequence]] {
					t.Fatalf("headers %v", m.Headers)
				}
				sequences[m.Headers[wire.HeaderSequence]] = true
				if enc == wire.EncodingJSON && len(m.Labels) != 1 {
					t.Fatalf("JSON message with %d labels", len(m.Labels))
				}
				if prev, ok := partition[m.Key]; ok && prev != m.Partition {
					t.Fatalf("model %q in partitions %d and %d", m.Key, prev, m.Partition)
				}
				partition[m.Key] = m.Partition
				for _, l := range m.Labels {
					if l.Model != m.Key {
						t.Fatalf("message keyed %q holds a label of model %q", m.Key, l.Model)
					}
				}
				byModel[m.Key] = append(byModel[m.Key], m.Labels...)
			}
			for _, model := range models {
				var want []schemas.Label
				for i := range n {
					l := testLabel(model, i)
					l.Time = l.Time.UTC()
					want = append(want, l)
				}
				if got := byModel[model]; !reflect.DeepEqual(got, want) {
					t.Errorf("labels of %s\ngot  %+v\nwant %+v", model, got, want)
				}
			}
			// The events topic holds the events only.
			events := consume(t, c.ListenAddrs(), testTopic, n)
			for _, m := range events {
				if m.Headers[wire.HeaderProducer] != p.ID() || sequences[m.Headers[wire.HeaderSequence]] {
					t.Fatalf("event message headers %v: another producer, or a sequence of a label message", m.Headers)
				}
			}
			rows := rowsByModel(t, events)
			if d := diffRows(rows["fraud"], wantRows("fraud", 0, n)); d != "" {
				t.Fatal(d)
			}
			if err := p.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

func TestRecordLabelLingerAndClose(t *testing.T) {
	c := newLabelCluster(t)
	p := newTestProducer(t, c.ListenAddrs(), testTopic, WithLinger(20*time.Millisecond))
	if err := p.RecordLabel(context.Background(), testLabel("fraud", 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the linger to send the label", func() bool { return p.Stats().Sent == 1 })
	if err := p.RecordLabel(context.Background(), testLabel("fraud", 1)); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil { // sends label 1
		t.Fatalf("Close: %v", err)
	}
	if err := p.RecordLabel(context.Background(), testLabel("fraud", 2)); err != ErrClosed {
		t.Fatalf("RecordLabel after Close = %v, want ErrClosed", err)
	}
	if got, want := p.Stats(), (Stats{Recorded: 2, Sent: 2, Dropped: 1}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	consumeLabels(t, c.ListenAddrs(), testLabelTopic, 2)
}

func TestRecordLabelRejectsInvalid(t *testing.T) {
	c := newLabelCluster(t)
	p := newTestProducer(t, c.ListenAddrs(), testTopic)
	at := baseTime
	for _, l := range []schemas.Label{
		{EventID: "e", Model: "fraud", Time: at}, // neither class nor value
		schemas.ValueLabel("e", "fraud", math.NaN(), at),
		schemas.ClassLabel("", "fraud", "ok", at),
		schemas.ClassLabel("e", "fraud", "ok", time.Time{}),
	} {
		if err := p.RecordLabel(context.Background(), l); !errors.Is(err, schemas.ErrInvalidLabel) {
			t.Fatalf("RecordLabel(%+v) = %v, want ErrInvalidLabel", l, err)
		}
	}
	if err := p.RecordLabel(context.Background(), testLabel("fraud", 0)); err != nil {
		t.Fatal(err)
	}
	if err := p.Record(context.Background(), testEvent("fraud", 0)); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got, want := p.Stats(), (Stats{Recorded: 2, Sent: 2, Invalid: 4}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

// TestMissingLabelTopicCostsNoEvents: when the label topic does not exist,
// the labels fail and are reported, the events still go out.
func TestMissingLabelTopicCostsNoEvents(t *testing.T) {
	c := newCluster(t) // no label topic
	p := newTestProducer(t, c.ListenAddrs(), testTopic, WithWriteAttempts(2), WithLinger(time.Hour))
	ctx := context.Background()
	for i := range 3 {
		if err := p.Record(ctx, testEvent("fraud", i)); err != nil {
			t.Fatal(err)
		}
		if err := p.RecordLabel(context.Background(), testLabel("fraud", i)); err != nil {
			t.Fatal(err)
		}
	}
	err := p.Flush(ctx)
	var loss *LossError
	if !errors.As(err, &loss) || *loss != (LossError{Failed: 3}) {
		t.Fatalf("Flush = %v, want LossError{Failed: 3}", err)
	}
	if got, want := p.Stats(), (Stats{Recorded: 6, Sent: 3, Failed: 3}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	rows := rowsByModel(t, consume(t, c.ListenAddrs(), testTopic, 3))
	if d := diffRows(rows["fraud"], wantRows("fraud", 0, 3)); d != "" {
		t.Fatal(d)
	}
}

func TestRecordLabelDropWhenFull(t *testing.T) {
	c := newLabelCluster(t)
	entered, release := blockProduce(t, c)
	p := newTestProducer(t, c.ListenAddrs(), testTopic, stalledOptions(WithMaxBufferedLabels(2))...)
	ctx := context.Background()
	// Events fill the sender (one write, one waiting) and the batcher, which
	// waits to emit event 2: labels 0 and 1 fill the label queue.
	fillUp(t, p, entered)
	for i := range 2 {
		if err := p.RecordLabel(context.Background(), testLabel("fraud", i)); err != nil {
			t.Fatalf("RecordLabel %d: %v", i, err)
		}
	}
	start := time.Now()
	if err := p.RecordLabel(context.Background(), testLabel("fraud", 2)); err != ErrBufferFull {
		t.Fatalf("RecordLabel on a full queue = %v, want ErrBufferFull", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("dropping RecordLabel took %v", took)
	}
	if got, want := p.Stats(), (Stats{Recorded: 9, Dropped: 1, Buffered: 9}); got != want {
		t.Fatalf("Stats while stalled = %+v, want %+v", got, want)
	}
	release()
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	err := p.Close(ctx)
	var loss *LossError
	if !errors.As(err, &loss) || *loss != (LossError{Dropped: 1}) {
		t.Fatalf("Close = %v, want LossError{Dropped: 1}", err)
	}
	consumeLabels(t, c.ListenAddrs(), testLabelTopic, 2)
}

func TestLabelTopicOption(t *testing.T) {
	if _, err := NewProducer([]string{"127.0.0.1:1"}, testTopic, WithLabelTopic(testTopic)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("label topic = events topic: %v", err)
	}
	if _, err := NewProducer([]string{"127.0.0.1:1"}, testTopic, WithMaxBufferedLabels(0)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("max buffered labels 0: %v", err)
	}
	c := newCluster(t, kfake.SeedTopics(1, "truth"))
	p := newTestProducer(t, c.ListenAddrs(), testTopic, WithLabelTopic("truth"), WithEncoding(wire.EncodingJSON))
	if err := p.RecordLabel(context.Background(), testLabel("fraud", 0)); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	consumeLabels(t, c.ListenAddrs(), "truth", 1)
}
