package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// `vigil query performance` prints the stored windows, and with --every
// merges them: the hour of two windows has the accuracy of all their pairs.
func TestQueryPerformanceCommand(t *testing.T) {
	sink, db := startTestSink(t, "vigil_qperf")
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	w1 := performance.NewState(performance.TaskBinary, 0.5)
	for _, p := range []struct {
		score float64
		pos   bool
	}{{0.9, true}, {0.8, true}, {0.2, false}, {0.7, false}} { // 3 of 4 right
		w1.AddPrediction()
		w1.AddBinary(p.score, p.pos, 600)
	}
	w2 := performance.NewState(performance.TaskBinary, 0.5)
	for _, p := range []struct {
		score float64
		pos   bool
	}{{0.9, false}, {0.1, true}} { // 0 of 2 right
		w2.AddPrediction()
		w2.AddBinary(p.score, p.pos, 1200)
	}
	w2.AddPrediction() // unlabelled
	if err := sink.Labels().WritePerformance(ctx, []clickhouse.PerformanceWindow{
		{Model: "m", ModelVersion: "v1", Start: t0, End: t0.Add(time.Minute), State: w1},
		{Model: "m", ModelVersion: "v1", Start: t0.Add(time.Minute), End: t0.Add(2 * time.Minute), State: w2},
	}); err != nil {
		t.Fatal(err)
	}
	args := []string{"query", "performance", "--clickhouse", testenv.ClickHouse(t), "--clickhouse-database", db, "--model", "m",
		"--from", "2026-03-01T11:00:00Z", "--to", "2026-03-01T13:00:00Z"}
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "accuracy") ||
		!strings.Contains(lines[1], "2026-03-01 12:00:00") || !strings.Contains(lines[1], " 0.750 ") ||
		!strings.Contains(lines[2], "2026-03-01 12:01:00") || !strings.Contains(lines[2], " 0.000 ") {
		t.Errorf("per window:\n%s", out)
	}
	out, err = runCLI(t, append(args, "--every", "1h")...)
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	// 7 predictions, 6 labelled, 3 right.
	if len(lines) != 2 || !strings.Contains(lines[1], "2026-03-01 12:00:00") || !strings.Contains(lines[1], " 7 ") ||
		!strings.Contains(lines[1], " 6 ") || !strings.Contains(lines[1], " 0.500 ") {
		t.Errorf("hourly:\n%s", out)
	}
}
