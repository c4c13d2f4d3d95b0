package benchmarks

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestThroughputSmoke runs the throughput program's code path with a few
// events per encoding against the real Kafka and ClickHouse and checks that
// each event is counted exactly once: by the processor, in the feature and
// model window tables, and in the raw events table.
func TestThroughputSmoke(t *testing.T) {
	brokers := strings.Split(testenv.Kafka(t), ",")
	chAddr := testenv.ClickHouse(t)
	const n = 2000
	for _, enc := range []string{wire.EncodingArrow, wire.EncodingJSON} {
		t.Run(enc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			defer cancel()
			res, err := RunThroughput(ctx, ThroughputConfig{
				Brokers:            brokers,
				ClickHouse:         chAddr,
				Encoding:           enc,
				Events:             n,
				CheckpointInterval: 200 * time.Millisecond,
				Timeout:            20 * time.Second,
				Log:                zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Counted != n {
				t.Errorf("processor counted %d events, want %d", res.Counted, n)
			}
			if res.FeatureCount != n {
				t.Errorf("sum(count) of %s in ClickHouse = %d, want %d", CheckedFeature, res.FeatureCount, n)
			}
			if err := res.Verify(); err != nil {
				t.Error(err)
			}
			if res.Produce.EventsPerSec() <= 0 || res.Process.EventsPerSec() <= 0 || res.Process.EventsPerCPUSec() <= 0 {
				t.Errorf("rates not measured: produce %+v, process %+v", res.Produce, res.Process)
			}
			t.Logf("%s: produce %.0f events/s; process %.0f events/s, %.0f events/CPU-s (startup %v, final checkpoint %v)",
				enc, res.Produce.EventsPerSec(), res.Process.EventsPerSec(), res.Process.EventsPerCPUSec(), res.Startup, res.FinalCheckpoint)
		})
	}
}

// BenchmarkArrowStages splits the processor's per-message Arrow cost
// (pipeline.BenchmarkProcessArrow) into its two big stages, using only public
// APIs: decoding one message of 1000 events with 20 features
// (wire.DecodeArrow, per body compression) and folding the decoded record
// into a window state (stats.WindowState.AddRange).
func BenchmarkArrowStages(b *testing.B) {
	const n = 1000
	src := newEventSource(20, []string{"bench"}, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	bb := wire.NewBatchBuilder(memory.DefaultAllocator)
	for i := range n {
		ev := src.event(i)
		if err := bb.Append(&ev); err != nil {
			b.Fatal(err)
		}
	}
	rec := bb.NewRecord()
	defer rec.Release()

	for _, c := range []wire.Compression{wire.CompressionZSTD, wire.CompressionLZ4, wire.CompressionNone} {
		data, err := wire.NewArrowEncoder(c).Encode(nil, rec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("decode/compression="+c.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			cpu0 := processCPU()
			for b.Loop() {
				r, err := wire.DecodeArrow(data, memory.DefaultAllocator)
				if err != nil {
					b.Fatal(err)
				}
				r.Release()
			}
			reportRates(b, n, processCPU()-cpu0)
			b.ReportMetric(float64(len(data))/n, "bytes/event")
		})
	}
	b.Run("stats", func(b *testing.B) {
		st := stats.NewWindowState(stats.Key{Model: "bench", ModelVersion: "1"}, time.Minute.Milliseconds())
		b.ReportAllocs()
		cpu0 := processCPU()
		for b.Loop() {
			st.AddRange(rec, 0, n)
		}
		reportRates(b, n, processCPU()-cpu0)
	})
}

// reportRates reports events/s in wall time and per CPU-second of the
// process: ns/op is wall time and hides work done on other cores (the ZSTD
// decoder's goroutines, the garbage collector).
func reportRates(b *testing.B, eventsPerOp int, cpu time.Duration) {
	b.ReportMetric(float64(b.N*eventsPerOp)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(rate(b.N*eventsPerOp, cpu), "events/cpu-s")
}

func ExampleRunThroughput() {
	res, err := RunThroughput(context.Background(), ThroughputConfig{
		Brokers:    []string{"127.0.0.1:9092"},
		ClickHouse: "127.0.0.1:9000",
		Encoding:   wire.EncodingJSON,
		Events:     300_000,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.0f events/s, %.0f events/s/core\n", res.Process.EventsPerSec(), res.Process.EventsPerCPUSec())
}
