package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

func benchPairs(n int) ([]clickhouse.PredictionRow, map[string]clickhouse.StoredLabel, time.Time) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	preds := make([]clickhouse.PredictionRow, n)
	labels := make(map[string]clickhouse.StoredLabel, n)
	for i := range preds {
		score := rng.Float64()
		id := "e" + strconv.Itoa(i)
		preds[i] = clickhouse.PredictionRow{EventID: id, ModelVersion: "v1", Time: start.Add(time.Duration(i) * time.Millisecond),
			Score: &score, SegmentKeys: []string{"region"}, SegmentValues: []string{[]string{"eu", "us"}[i%2]}}
		if i%10 != 0 {
			y := 0.0
			if rng.Float64() < score {
				y = 1
			}
			labels[id] = clickhouse.StoredLabel{Time: preds[i].Time.Add(time.Hour), HasValue: true, Value: y, Copies: 1}
		}
	}
	return preds, labels, start
}

// BenchmarkJoinPerformance is the in-process part of recomputing one window:
// joining 100k binary predictions with 90k labels into states for the
// whole window and two region segments.
func BenchmarkJoinPerformance(b *testing.B) {
	const n = 100_000
	preds, labels, start := benchPairs(n)
	b.ReportAllocs()
	for b.Loop() {
		rows := joinPerformance("m", start, start.Add(time.Minute), preds, labels, 7*24*time.Hour, 0.5, []string{"region"})
		if len(rows) != 3 {
			b.Fatal(len(rows))
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "predictions/s")
}

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
	preds, labels, start := benchPairs(n)
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
	cfg := defaultConfig()
	cfg.SegmentKeys = []string{"region"}
	j := newPerformanceJob(sink, cfg, zerolog.Nop())
	for b.Loop() {
		rows, err := j.compute(ctx, "m", start)
		if err != nil {
			b.Fatal(err)
		}
		if err := sink.Labels().WritePerformance(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "predictions/s")
}
