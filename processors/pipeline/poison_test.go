package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// produce writes msgs to topic in one call, allowing messages up to 32 MB.
func produce(t *testing.T, brokers []string, topic string, msgs ...kafka.Message) {
	t.Helper()
	conns := &kafka.Transport{}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchBytes: 32 << 20, BatchSize: len(msgs), BatchTimeout: 10 * time.Millisecond, Transport: conns}
	defer conns.CloseIdleConnections()
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

func jsonEvent(i int, at time.Time) kafka.Message {
	e := schemas.Event{
		ID: "e" + strconv.Itoa(i), Model: "fraud", ModelVersion: "1", Time: at,
		Features:   []schemas.Feature{schemas.Num("amount", float64(i))},
		Prediction: schemas.Score(0.5),
	}
	return kafka.Message{Key: []byte("fraud"), Value: wire.AppendJSON(nil, &e),
		Headers: []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte(wire.EncodingJSON)}}}
}

func headerOf(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// A malformed message larger than the broker's default limit, on an input
// topic that allows 20 MB, reaches the dead-letter topic (whole when the
// processor created that topic, truncated with its size and hash when the
// topic existed with the default 1 MB limit), and the valid events behind it
// are counted: the partition never stalls, and Shutdown is quick.
func TestIntegrationPoisonLargerThanDeadLetterLimit(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	for _, tt := range []struct {
		name          string
		precreatedDLQ bool // with the broker's default max.message.bytes
		wantTruncated bool
	}{
		{"dead-letter topic created by the processor", false, false},
		{"dead-letter topic with the default 1MB limit", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
			topic, dlq, db := "vigil-poison-"+suffix, "vigil-poison-"+suffix+".dlq", "vigil_poison_"+suffix
			sink := testsink.Open(t, db, nil)
			if err := kafkatopic.EnsureWithConfig(ctx, brokers, topic, 1, map[string]string{kafkatopic.MaxMessageBytes: strconv.Itoa(20 << 20)}); err != nil {
				t.Fatal(err)
			}
			if tt.precreatedDLQ {
				if err := kafkatopic.Ensure(ctx, brokers, dlq, 1); err != nil {
					t.Fatal(err)
				}
			}
			poison := bytes.Repeat([]byte("{not json "), 512<<10) // 5 MB
			const valid = 300
			msgs := []kafka.Message{{Key: []byte("fraud"), Value: poison,
				Headers: []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte(wire.EncodingJSON)}}}}
			at := time.Now().UTC().Truncate(time.Minute)
			for i := range valid {
				msgs = append(msgs, jsonEvent(i, at.Add(time.Duration(i)*10*time.Millisecond)))
			}
			produce(t, brokers, topic, msgs...)

			p, err := pipeline.New(pipeline.Config{Brokers: brokers, Topic: topic, Group: "g-" + suffix,
				CheckpointInterval: 100 * time.Millisecond}, sink.Windows(), zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Start(ctx); err != nil {
				t.Fatal(err)
			}
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					_ = p.Shutdown(ctx)
				}
			})
			deadline := time.Now().Add(60 * time.Second)
			for p.Counters.Events.Load() < valid || p.Counters.Checkpoints.Load() < 1 || p.Counters.Malformed.Load() < 1 {
				if time.Now().After(deadline) {
					t.Fatalf("events %d of %d, malformed %d, checkpoints %d, write errors %d after 60s: the partition stalled",
						p.Counters.Events.Load(), valid, p.Counters.Malformed.Load(), p.Counters.Checkpoints.Load(), p.Counters.WriteErrors.Load())
				}
				time.Sleep(50 * time.Millisecond)
			}
			began := time.Now()
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := p.Shutdown(sctx); err != nil {
				t.Fatal(err)
			}
			stopped = true
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("Shutdown took %v, want < 5s", took)
			}
			if got := p.Counters.Malformed.Load(); got != 1 {
				t.Errorf("malformed = %d, want 1", got)
			}
			wantTrunc := uint64(0)
			if tt.wantTruncated {
				wantTrunc = 1
			}
			if got := p.Counters.DeadLettersTruncated.Load(); got != wantTrunc {
				t.Errorf("truncated dead letters = %d, want %d", got, wantTrunc)
			}
			if got := p.Counters.DeadLettersDropped.Load(); got != 0 {
				t.Errorf("dropped dead letters = %d, want 0", got)
			}

			var counted uint64
			if err := sink.Conn().QueryRow(ctx, "SELECT sum(events) FROM "+db+".vigil_model_windows FINAL WHERE topic = ? AND segment = ''", topic).Scan(&counted); err != nil {
				t.Fatal(err)
			}
			if counted != valid {
				t.Errorf("vigil_model_windows counts %d events, want %d", counted, valid)
			}

			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: dlq, MaxBytes: 32 << 20, MaxWait: 100 * time.Millisecond})
			defer r.Close()
			rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
			defer rcancel()
			m, err := r.ReadMessage(rctx)
			if err != nil {
				t.Fatalf("read dead letter: %v", err)
			}
			if got := headerOf(m, pipeline.HeaderSourceOffset); got != "0" {
				t.Errorf("dead letter source offset %q, want 0", got)
			}
			if headerOf(m, pipeline.HeaderError) == "" {
				t.Error("dead letter without its reason")
			}
			if !tt.wantTruncated {
				if !bytes.Equal(m.Value, poison) || headerOf(m, pipeline.HeaderTruncated) != "" {
					t.Fatalf("dead letter of %d bytes (truncated %q), want the whole %d", len(m.Value), headerOf(m, pipeline.HeaderTruncated), len(poison))
				}
				return
			}
			sum := sha256.Sum256(poison)
			kept, _ := strconv.Atoi(headerOf(m, pipeline.HeaderKeptBytes))
			switch {
			case headerOf(m, pipeline.HeaderTruncated) == "":
				t.Error("truncated dead letter without the reason for truncation")
			case headerOf(m, pipeline.HeaderOriginalSize) != strconv.Itoa(len(poison)):
				t.Errorf("original size header %q, want %d", headerOf(m, pipeline.HeaderOriginalSize), len(poison))
			case headerOf(m, pipeline.HeaderOriginalSHA256) != hex.EncodeToString(sum[:]):
				t.Errorf("sha256 header %q, want %x", headerOf(m, pipeline.HeaderOriginalSHA256), sum)
			case kept != len(m.Value) || kept < 512<<10 || kept > 1<<20:
				t.Errorf("kept %q bytes, value %d bytes: want the same, between 512KB and 1MB", headerOf(m, pipeline.HeaderKeptBytes), len(m.Value))
			case !bytes.Equal(m.Value, poison[:kept]):
				t.Error("the kept bytes are not the value's first bytes")
			}
		})
	}
}

// The label consumer creates its dead-letter topic with the label topic's
// max.message.bytes: a 3 MB malformed label message is copied whole, and
// the label behind it is stored.
func TestIntegrationLabelPoisonLargerThanDefaultLimit(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic, db := "vigil-lpoison-"+suffix, "vigil_lpoison_"+suffix
	sink := testsink.Open(t, db, nil)
	if err := kafkatopic.EnsureWithConfig(ctx, brokers, topic, 1, map[string]string{kafkatopic.MaxMessageBytes: strconv.Itoa(20 << 20)}); err != nil {
		t.Fatal(err)
	}
	jsonHdr := []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte(wire.EncodingJSON)}}
	poison := bytes.Repeat([]byte("[not a label"), 256<<10) // 3 MB
	l := schemas.ValueLabel("e1", "m", 1, time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC))
	produce(t, brokers, topic,
		kafka.Message{Key: []byte("m"), Value: poison, Headers: jsonHdr},
		kafka.Message{Key: []byte("m"), Value: wire.AppendLabelJSON(nil, &l), Headers: jsonHdr})

	c, err := pipeline.NewLabelConsumer(pipeline.LabelConfig{Brokers: brokers, Topic: topic, Group: "g-" + suffix,
		FlushInterval: 100 * time.Millisecond}, sink.Labels(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for c.Counters.Labels.Load() < 1 {
		if time.Now().After(deadline) {
			_ = c.Shutdown(ctx)
			t.Fatalf("labels %d, malformed %d, write errors %d after 60s: the consumer stalled", c.Counters.Labels.Load(), c.Counters.Malformed.Load(), c.Counters.WriteErrors.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if m, tr := c.Counters.Malformed.Load(), c.Counters.DeadLettersTruncated.Load(); m != 1 || tr != 0 {
		t.Errorf("malformed %d, truncated %d; want 1 and 0", m, tr)
	}
	dlq := c.Config().DeadLetterTopic
	if n, err := kafkatopic.MaxMessageBytesOf(ctx, brokers, dlq); err != nil || n != 20<<20 {
		t.Errorf("dead-letter topic max.message.bytes %d (%v), want %d", n, err, 20<<20)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: dlq, MaxBytes: 32 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := r.ReadMessage(rctx)
	if err != nil {
		t.Fatalf("read dead letter: %v", err)
	}
	if !bytes.Equal(m.Value, poison) {
		t.Errorf("dead letter of %d bytes, want the whole %d", len(m.Value), len(poison))
	}
}
