package reference_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// BuildFromStore profiles the stored states of all events of exactly the
// model version asked for, over partitions: not its segments, not other
// versions; and says when there are none.
func TestIntegrationBuildFromStore(t *testing.T) {
	sink, _ := testsink.Start(t, "vigil_refstore")
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	state := func(version, segment string, start time.Time, amounts ...float64) *stats.WindowState {
		st := stats.NewWindowState(stats.Key{Model: "m", ModelVersion: version, Segment: segment, WindowStart: start.UnixMilli()}, start.Add(time.Minute).UnixMilli())
		fs := &stats.FeatureState{Kind: schemas.Number}
		for _, v := range amounts {
			fs.Num.Count++
			fs.Num.Sum += v
		}
		fs.Num.Min, fs.Num.Max = amounts[0], amounts[len(amounts)-1]
		st.Features = map[string]*stats.FeatureState{"amount": fs}
		st.Events, st.Final, st.Dirty = uint64(len(amounts)), true, true
		return st
	}
	writes := []struct {
		part   int
		states []*stats.WindowState
	}{
		{0, []*stats.WindowState{state("v1", "", t0, 1, 2, 3), state("v1", "region=eu", t0, 1, 2), state("v2", "", t0, 100)}},
		{1, []*stats.WindowState{state("v1", "", t0, 4, 5), state("v1", "", t0.Add(time.Minute), 6)}},
	}
	for _, w := range writes {
		if err := sink.Windows().Checkpoint(ctx, pipeline.Source{Group: "g", Topic: "t", Partition: w.part}, nil, nil, w.states, 10, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	p, err := reference.BuildFromStore(ctx, sink.Windows(), "m", "v1", t0, t0.Add(time.Hour), reference.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := p.Feature("amount")
	if p.Model != "m" || p.ModelVersion != "v1" || p.Rows != 6 || f == nil || f.Count != 6 || f.Mean != 3.5 || p.ID == 0 {
		t.Errorf("profile %s %s rows %d, amount %+v; want 6 rows of v1 with mean 3.5", p.Model, p.ModelVersion, p.Rows, f)
	}
	_, err = reference.BuildFromStore(ctx, sink.Windows(), "m", "v1", t0.Add(time.Hour), t0.Add(2*time.Hour), reference.BuilderOptions{})
	if !errors.Is(err, reference.ErrNoWindows) || !strings.Contains(err.Error(), `of m version "v1" start in [2026-03-01T13:00:00Z, 2026-03-01T14:00:00Z)`) {
		t.Errorf("an empty range: %v", err)
	}
}
