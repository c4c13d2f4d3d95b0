package performance_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// BenchmarkPerformanceWindow recomputes one stored window of 100k
// predictions and 90k labels from the real ClickHouse (VIGIL_CLICKHOUSE):
// both reads, the join and the write.
func BenchmarkPerformanceWindow(b *testing.B) {
	addr := os.Getenv("VIGIL_CLICKHOUSE")
	if addr == "" {
		b.Skip("VIGIL_CLICKHOUSE is not set")
	}
	ctx := context.Background()
	db := "vigil_bench_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	sink, err := clickhouse.New(clickhouse.Config{Addr: addr, Database: db, User: "default"}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	if err := sink.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = sink.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+db)
		_ = sink.Shutdown(ctx)
	}()
	const n = 100_000
	preds, labels, start := performance.BenchPairs(n)
	batch, err := sink.Conn().PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.vigil_events (event_id, model, model_version, event_time, pred_score, segment_keys, segment_values, topic, kafka_partition, kafka_offset, ingested_at)", db))
	if err != nil {
		b.Fatal(err)
	}
	var lrows []pipeline.LabelRow
	for i, p := range preds {
		if err := batch.Append(p.EventID, "m", "v1", p.Time, p.Score, p.SegmentKeys, p.SegmentValues, "t", uint32(0), int64(i), time.Now()); err != nil {
			b.Fatal(err)
		}
		if l, ok := labels[p.EventID]; ok {
			lrows = append(lrows, pipeline.LabelRow{Model: "m", EventID: p.EventID, Time: l.Time, HasValue: true, Value: l.Value, Topic: "l", Offset: int64(i)})
		}
	}
	if err := batch.Send(); err != nil {
		b.Fatal(err)
	}
	if err := sink.Labels().WriteLabels(ctx, lrows); err != nil {
		b.Fatal(err)
	}
	j := performance.NewJob(sink.Labels(), performance.JobConfig{Window: time.Minute, Horizon: 7 * 24 * time.Hour, Threshold: 0.5, SegmentKeys: []string{"region"}}, zerolog.Nop())
	for b.Loop() {
		rows, err := j.Compute(ctx, "m", start)
		if err != nil {
			b.Fatal(err)
		}
		if err := sink.Labels().WritePerformance(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "predictions/s")
}
