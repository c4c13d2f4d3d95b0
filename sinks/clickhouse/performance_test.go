package clickhouse

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/processors/performance"
)

// Performance rows of each task go in and their states come back equal; the
// metric columns hold the states' metrics; a rewrite replaces the row.
func TestIntegrationPerformance(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	w0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	bin := performance.NewState(performance.TaskBinary, 0.5)
	for i, sc := range []float64{0.9, 0.8, 0.3, 0.6, 0.1} {
		bin.AddPrediction()
		bin.AddBinary(sc, i != 3 && i != 4, float64(3600+i))
	}
	bin.AddPrediction() // unlabelled
	multi := performance.NewState(performance.TaskMulticlass, 0.5)
	multi.AddPrediction()
	multi.AddMulticlass("a", "b", []string{"a", "b"}, []float64{0.7, 0.3}, 10)
	multi.AddPrediction()
	multi.AddMulticlass("b", "b", []string{"a", "b"}, []float64{0.2, 0.8}, 10)
	reg := performance.NewState(performance.TaskRegression, 0.5)
	reg.AddPrediction()
	reg.AddRegression(3, 2, 1)
	reg.AddPrediction()
	reg.AddRegression(5, 6, 1)
	windows := []PerformanceWindow{
		{Model: "m", ModelVersion: "v1", Start: w0, End: w0.Add(time.Minute), State: bin},
		{Model: "m", ModelVersion: "v1", Segment: "region=eu", Start: w0, End: w0.Add(time.Minute), State: multi},
		{Model: "m", ModelVersion: "v2", Start: w0.Add(time.Minute), End: w0.Add(2 * time.Minute), State: reg},
	}
	if last, err := s.Labels().LastPerformanceWrite(ctx); err != nil || !last.IsZero() {
		t.Fatalf("last write of an empty table = %v, %v", last, err)
	}
	before := time.Now().Add(-time.Second)
	if err := s.Labels().WritePerformance(ctx, windows); err != nil {
		t.Fatal(err)
	}
	if last, err := s.Labels().LastPerformanceWrite(ctx); err != nil || last.Before(before.Truncate(time.Second)) || last.After(time.Now()) {
		t.Fatalf("last write = %v, %v; want about now", last, err)
	}
	got, err := s.Labels().PerformanceStates(ctx, "m", "*", "*", w0, w0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d windows", len(got))
	}
	for i, g := range got {
		if fmt.Sprintf("%+v", g.State.Metrics()) == "" || g.State.Metrics().Labeled != windows[i].State.Metrics().Labeled ||
			g.Segment != windows[i].Segment || g.ModelVersion != windows[i].ModelVersion || !g.Start.Equal(windows[i].Start) {
			t.Errorf("window %d = %+v, want %+v", i, g, windows[i])
		}
	}
	var acc, auc, coverage float64
	var tp, labeled uint64
	var confusion [][]uint64
	if err := s.Conn().QueryRow(ctx, fmt.Sprintf(`SELECT accuracy, roc_auc, label_coverage, tp, labeled, confusion FROM %s.vigil_performance FINAL
WHERE model = 'm' AND model_version = 'v1' AND segment = ''`, s.Database())).Scan(&acc, &auc, &coverage, &tp, &labeled, &confusion); err != nil {
		t.Fatal(err)
	}
	m := bin.Metrics().Binary
	if acc != m.Accuracy || auc != m.ROCAUC || tp != m.TP || labeled != 5 || coverage != 5.0/6 || fmt.Sprint(confusion) != fmt.Sprint([][]uint64{{m.TN, m.FP}, {m.FN, m.TP}}) {
		t.Errorf("columns: accuracy %v auc %v tp %v labeled %v coverage %v confusion %v; want %+v", acc, auc, tp, labeled, coverage, confusion, m)
	}
	// Rewritten with one more labelled pair: the newest row wins.
	bin.AddPrediction()
	bin.AddBinary(0.95, true, 10)
	if err := s.Labels().WritePerformance(ctx, windows[:1]); err != nil {
		t.Fatal(err)
	}
	got, err = s.Labels().PerformanceStates(ctx, "m", "v1", "", w0, w0.Add(time.Hour))
	if err != nil || len(got) != 1 || got[0].State.Metrics().Labeled != 6 {
		t.Fatalf("after rewrite: %+v, %v", got, err)
	}
}
