package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/schemas"
)

// benchRecord builds a record of rows events shaped like the throughput
// program's 20-feature events: 16 numeric, 3 categorical and 1 boolean
// feature, a score, a latency and a segment; every 10th numeric value is
// null. Event ids start at first; the model is "bench".
func benchRecord(tb testing.TB, rows, first int) arrow.Record {
	tb.Helper()
	return benchRecordOf(tb, rows, first, "bench")
}

// benchRecordOf is benchRecord with events of model.
func benchRecordOf(tb testing.TB, rows, first int, model string) arrow.Record {
	tb.Helper()
	var extra []arrow.Field
	for i := 0; i < 16; i++ {
		extra = append(extra, arrow.Field{Name: fmt.Sprintf("%snum_%02d", schemas.PrefixFeature, i), Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	for i := 0; i < 3; i++ {
		extra = append(extra, arrow.Field{Name: fmt.Sprintf("%scat_%02d", schemas.PrefixFeature, i), Type: arrow.BinaryTypes.String, Nullable: true})
	}
	extra = append(extra,
		arrow.Field{Name: schemas.PrefixFeature + "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		arrow.Field{Name: schemas.PrefixSegment + "region", Type: arrow.BinaryTypes.String, Nullable: true})
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.NewSchema(extra))
	defer b.Release()
	for fi, f := range b.Schema().Fields() {
		for r := 0; r < rows; r++ {
			switch fb := b.Field(fi).(type) {
			case *array.StringBuilder:
				switch f.Name {
				case schemas.ColEventID:
					fb.Append(fmt.Sprintf("ev-%09d", first+r))
				case schemas.ColModel:
					fb.Append(model)
				case schemas.ColModelVersion:
					fb.Append("v1")
				case schemas.ColPredLabel:
					fb.AppendNull()
				default:
					fb.Append(fmt.Sprintf("value_%d", (r*7+fi)%20))
				}
			case *array.Float64Builder:
				if f.Name == schemas.ColPredValue || (r+fi)%10 == 0 {
					fb.AppendNull()
					continue
				}
				fb.Append(float64(r)*0.001 + float64(fi))
			case *array.BooleanBuilder:
				fb.Append(r%3 == 0)
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(t0 + int64(first+r)))
			default:
				tb.Fatalf("column %s: no generator for %T", f.Name, fb)
			}
		}
	}
	return b.NewRecord()
}

// BenchmarkRawEventsInsert measures the raw-event INSERTs of a checkpoint
// of 24 records of 1000 events (20 features; a catch-up checkpoints up to
// 100k) into vigil_events of the real
// ClickHouse (VIGIL_CLICKHOUSE): building the driver's columns, sending
// and the server's insert. ns/op is per checkpoint of 24000 events;
// events/cpu-s counts this process's CPU only (not the server's), which
// is what the processor pays.
func BenchmarkRawEventsInsert(b *testing.B) {
	benchRawEventsInsert(b, startSink(b, nil), 1)
}

// BenchmarkRawEventsInsertCluster is BenchmarkRawEventsInsert through the
// Distributed vigil_events of the local cluster (testenv.ClickHouseCluster),
// from a sink on its first server: the records are of 8 models, so that
// both shards take rows, and each INSERT returns once its rows are on their
// shards (insert_distributed_sync). events/s is the cluster's insert rate
// from one writer.
func BenchmarkRawEventsInsertCluster(b *testing.B) {
	addrs, cluster := testenv.ClickHouseCluster(b)
	s := startSink(b, func(c *Config) { c.Addr, c.Cluster = addrs[0], cluster })
	b.Cleanup(func() {
		_ = s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.cfg.Database+" ON CLUSTER "+cluster)
	})
	benchRawEventsInsert(b, s, 8)
}

func benchRawEventsInsert(b *testing.B, s *Sink, models int) {
	const benchRecords = 24
	ctx := testContext(b)
	conn, _, err := s.connection()
	if err != nil {
		b.Fatal(err)
	}
	var raw []pipeline.RawBatch
	for i := 0; i < benchRecords; i++ {
		rec := benchRecordOf(b, 1000, i*1000, fmt.Sprintf("bench-%d", i%models))
		defer rec.Release()
		raw = append(raw, pipeline.RawBatch{Offset: int64(i), Record: rec})
	}
	w := writer{conn: conn, db: s.cfg.Database, src: pipeline.Source{Group: "g", Topic: "bench", Partition: 0}, rawInserts: s.rawInserts}
	now := time.Now().UTC()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		if _, err := w.rawEvents(ctx, raw, now); err != nil {
			b.Fatal(err)
		}
	}
	cpu = processCPU() - cpu
	b.ReportMetric(float64(benchRecords*1000*b.N)/b.Elapsed().Seconds(), "events/s")
	// the client's CPU (this process, all threads): ClickHouse runs on the
	// same cores, so events/s counts the server's insert work too
	b.ReportMetric(float64(benchRecords*1000*b.N)/cpu.Seconds(), "events/cpu-s")
}
