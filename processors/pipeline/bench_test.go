package pipeline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// benchEvents makes n events of one model with 20 features (16 numeric, 3
// categorical, 1 boolean), one millisecond apart. Numbers have full float64
// precision (17 significant digits in JSON), the slow case of float parsing.
func benchEvents(n int) []schemas.Event { return benchEventsRounded(n, 0) }

// benchEventsRounded rounds numbers to the given decimals when > 0, as
// amounts, counts and ratios usually are in real events.
func benchEventsRounded(n, decimals int) []schemas.Event {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]schemas.Event, n)
	for i := range out {
		fs := make([]schemas.Feature, 0, 20)
		for j := 0; j < 16; j++ {
			v := rng.NormFloat64()
			if decimals > 0 {
				p := math.Pow10(decimals)
				v = math.Round(v*100*p) / p
			}
			fs = append(fs, schemas.Num(fmt.Sprintf("num_%02d", j), v))
		}
		for j := 0; j < 3; j++ {
			fs = append(fs, schemas.Str(fmt.Sprintf("cat_%d", j), []string{"a", "b", "c", "d"}[rng.IntN(4)]))
		}
		fs = append(fs, schemas.Flag("flag", rng.IntN(2) == 0))
		out[i] = schemas.Event{
			ID: fmt.Sprintf("e-%d", i), Model: "bench", ModelVersion: "1",
			Time:       t0.Add(time.Duration(i) * time.Millisecond),
			Features:   fs,
			Prediction: schemas.Score(rng.Float64()),
			Latency:    time.Duration(rng.IntN(10)+1) * time.Millisecond,
		}
	}
	return out
}

// BenchmarkProcessArrow measures the processor's per-event cost from Arrow
// messages of 1000 events (decode, window assignment, statistics), without
// Kafka or ClickHouse I/O.
func BenchmarkProcessArrow(b *testing.B) {
	events := benchEvents(10000)
	var msgs []*kafka.Message
	enc := wire.NewArrowEncoder(wire.CompressionZSTD)
	for i := 0; i < len(events); i += 1000 {
		bb := wire.NewBatchBuilder(memory.DefaultAllocator)
		for j := i; j < i+1000; j++ {
			if err := bb.Append(&events[j]); err != nil {
				b.Fatal(err)
			}
		}
		rec := bb.NewRecord()
		data, err := enc.Encode(nil, rec)
		rec.Release()
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, &kafka.Message{Offset: int64(len(msgs)), Value: data,
			Headers: []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte(wire.EncodingArrow)}}})
	}
	b.Run("value_sketches=on", func(b *testing.B) { benchProcess(b, msgs, 1000, false) })
	b.Run("value_sketches=off", func(b *testing.B) { benchProcess(b, msgs, 1000, true) })
}

// BenchmarkProcessJSON measures the same from one JSON event per message.
func BenchmarkProcessJSON(b *testing.B) { benchProcessJSON(b, benchEvents(10000)) }

// BenchmarkProcessJSONRounded is BenchmarkProcessJSON with numbers of two
// decimals (like 123.45).
func BenchmarkProcessJSONRounded(b *testing.B) { benchProcessJSON(b, benchEventsRounded(10000, 2)) }

func benchProcessJSON(b *testing.B, events []schemas.Event) {
	msgs := make([]*kafka.Message, len(events))
	for i := range events {
		msgs[i] = &kafka.Message{Offset: int64(i), Value: wire.AppendJSON(nil, &events[i])}
	}
	benchProcess(b, msgs, 1, false)
}

func benchProcess(b *testing.B, msgs []*kafka.Message, eventsPerMsg int, noValues bool) {
	p := testPartition(b)
	p.cfg.NoValueSketches = noValues
	b.ReportAllocs()
	b.ResetTimer()
	var bytes int64
	for i := 0; i < b.N; i++ {
		m := msgs[i%len(msgs)]
		// Offsets keep growing as on a real partition.
		m.Offset = int64(i)
		p.handle(m)
		p.observed(false) // as consume does: the metrics' gauges every publishEvery messages
		bytes += int64(len(m.Value))
		if i%len(msgs) == len(msgs)-1 {
			p.done(p.prepare())
		}
	}
	b.StopTimer()
	b.SetBytes(bytes / int64(max(b.N, 1)))
	b.ReportMetric(float64(b.N*eventsPerMsg)/b.Elapsed().Seconds(), "events/s")
}
