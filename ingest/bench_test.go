package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// benchEvent is a realistic event: 20 features (16 numeric, 3 categorical, 1 flag).
func benchEvent(model string, i int) schemas.Event {
	fs := make([]schemas.Feature, 0, 20)
	for j := range 16 {
		fs = append(fs, schemas.Num(fmt.Sprintf("num_%02d", j), float64(i*j)*0.25))
	}
	fs = append(fs,
		schemas.Str("country", [...]string{"de", "fr", "us", "br"}[i%4]),
		schemas.Str("device", [...]string{"ios", "android", "web"}[i%3]),
		schemas.Str("plan", [...]string{"free", "pro"}[i%2]),
		schemas.Flag("new_user", i%5 == 0))
	return schemas.Event{
		ID:           fmt.Sprintf("%s-%08d", model, i),
		Model:        model,
		ModelVersion: "v7",
		Time:         baseTime.Add(time.Duration(i) * time.Millisecond),
		Features:     fs,
		Prediction:   schemas.Score(float64(i%1000) / 1000),
		Latency:      time.Duration(i%13) * time.Millisecond,
		Segments:     []schemas.Tag{{Key: "region", Value: "eu"}},
	}
}

// BenchmarkRecord measures the serving path with a 20-feature event.
//
//   - sink=inline: each iteration is a Record and a receive from the queue by
//     the benchmark goroutine itself: the accept path only (drops/op is 0),
//     plus one uncontended channel receive. Serial only.
//   - sink=drain: a goroutine empties the queue as fast as it can, standing
//     in for an infinitely fast pipeline; Record and the consumer contend for
//     the queue, and Records that find it full drop.
//   - sink=kafka: the whole producer, writing to kfake which discards what
//     it receives. Record outruns the encoder (see BenchmarkBatchEncodeArrow),
//     so most events take the drop path (drops/op).
//   - sink=stalled: produce requests never complete, the queue is full,
//     every Record drops.
func BenchmarkRecord(b *testing.B) {
	for _, sink := range []string{"inline", "drain", "kafka", "stalled"} {
		for _, parallel := range []bool{false, true} {
			if sink == "inline" && parallel {
				continue // parallel receivers would steal each other's events and park
			}
			name := fmt.Sprintf("sink=%s/parallel=%v", sink, parallel)
			b.Run(name, func(b *testing.B) {
				p, stop := benchProducer(b, sink)
				defer stop()
				events := make([]schemas.Event, 64)
				for i := range events {
					events[i] = benchEvent(fmt.Sprintf("model-%d", i%4), i)
				}
				if sink == "stalled" { // fill the queue first
					for i := 0; len(p.events) < cap(p.events); i++ {
						_ = p.Record(context.Background(), events[i%len(events)])
					}
				}
				ctx := context.Background()
				inline := sink == "inline"
				before := p.Stats()
				b.ReportAllocs()
				b.ResetTimer()
				if parallel {
					b.RunParallel(func(pb *testing.PB) {
						i := 0
						for pb.Next() {
							_ = p.Record(ctx, events[i&63])
							i++
						}
					})
				} else {
					for i := 0; b.Loop(); i++ {
						_ = p.Record(ctx, events[i&63])
						if inline {
							<-p.events
						}
					}
				}
				b.StopTimer()
				after := p.Stats()
				b.ReportMetric(float64(after.Dropped-before.Dropped)/float64(b.N), "drops/op")
			})
		}
	}
}

// benchProducer returns a producer for BenchmarkRecord's sink and a function
// that stops it.
func benchProducer(b *testing.B, sink string) (*Producer, func()) {
	b.Helper()
	if sink == "inline" {
		p := &Producer{cfg: defaultConfig(), events: make(chan schemas.Event, 64), closing: make(chan struct{})}
		return p, func() {}
	}
	if sink == "drain" {
		// Only what Record touches; no batcher, no Kafka.
		p := &Producer{cfg: defaultConfig(), events: make(chan schemas.Event, 10000), closing: make(chan struct{})}
		quit, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-p.events:
				case <-quit:
					return
				}
			}
		}()
		return p, func() { close(quit); <-done }
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, testTopic), kfake.BlackholeProduce())
	if err != nil {
		b.Fatal(err)
	}
	release := func() {}
	if sink == "stalled" {
		unblock := make(chan struct{})
		c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			c.SleepControl(func() { <-unblock })
			return nil, nil, false
		})
		release = func() { close(unblock) }
	}
	p, err := NewProducer(c.ListenAddrs(), testTopic, WithMaxBufferedEvents(10000))
	if err != nil {
		b.Fatal(err)
	}
	return p, func() {
		release()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.Close(ctx)
		c.Close()
	}
}

// BenchmarkBatchEncodeArrow measures the batcher's sealing path for Arrow:
// one batch of 1000 events of one model through BatchBuilder, NewRecord and
// the ZSTD ArrowEncoder into one Kafka message.
func BenchmarkBatchEncodeArrow(b *testing.B) {
	for _, c := range []wire.Compression{wire.CompressionZSTD, wire.CompressionLZ4, wire.CompressionNone} {
		b.Run("compression="+c.String(), func(b *testing.B) { benchmarkEncode(b, wire.EncodingArrow, c) })
	}
}

// BenchmarkBatchEncodeJSON is the same for JSON: 1000 messages.
func BenchmarkBatchEncodeJSON(b *testing.B) {
	benchmarkEncode(b, wire.EncodingJSON, wire.CompressionNone)
}

func benchmarkEncode(b *testing.B, enc string, comp wire.Compression) {
	const n = 1000
	p := &Producer{cfg: defaultConfig()}
	p.cfg.encoding, p.cfg.compression = enc, comp
	out := make(chan *sealedBatch, 1)
	bt := newBatcher(p, out, memory.NewGoAllocator())
	mb := &modelBuffer{model: "fraud", key: []byte("fraud")}
	events := make([]schemas.Event, n)
	for i := range events {
		events[i] = benchEvent("fraud", i)
	}
	b.ReportAllocs()
	var bytes int
	for b.Loop() {
		mb.events = append(mb.events[:0], events...)
		var sb *sealedBatch
		if enc == wire.EncodingArrow {
			sb = bt.encodeArrow(mb)
		} else {
			sb = bt.encodeJSON(mb)
		}
		if sb.events != n {
			b.Fatalf("encoded %d events, want %d (failed %d)", sb.events, n, p.failed.Load())
		}
		bytes = len(sb.buf)
		bt.bufs <- sb.buf // recycled, as the sender does
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(bytes)/n, "bytes/event")
}
