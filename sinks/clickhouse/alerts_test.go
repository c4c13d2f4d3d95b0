package clickhouse

import (
	"math"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/processors/alerting"
)

func TestIntegrationAlertStates(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	w := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	first := alerting.SeriesState{Rule: "R", Fingerprint: "fp", Model: "m", Metric: "psi", Feature: "amount",
		Status: "pending", Consecutive: 1, LastWindow: w, Previous: math.NaN(), Value: 0.3, Threshold: 0.2, UpdatedAt: w.Add(time.Minute)}
	if err := s.Alerts().SaveAlertStates(ctx, []alerting.SeriesState{first}); err != nil {
		t.Fatal(err)
	}
	second := first
	second.Status, second.Consecutive, second.LastWindow, second.Previous, second.StartsAt = "firing", 2, w.Add(time.Minute), 0.3, w.Add(time.Minute)
	if err := s.Alerts().SaveAlertStates(ctx, []alerting.SeriesState{second}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Alerts().LoadAlertStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("states = %+v, want one", got)
	}
	g := got[0]
	if g.Status != "firing" || g.Consecutive != 2 || !g.LastWindow.Equal(second.LastWindow) || !g.StartsAt.Equal(second.StartsAt) ||
		g.Previous != 0.3 || g.Feature != "amount" || !g.UpdatedAt.Equal(second.UpdatedAt) {
		t.Errorf("loaded %+v, want %+v", g, second)
	}
	if err := s.Alerts().SaveAlertStates(ctx, []alerting.SeriesState{first}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Alerts().LoadAlertStates(ctx)
	if len(got) != 1 || got[0].Status != "pending" || !got[0].StartsAt.IsZero() || !math.IsNaN(got[0].Previous) {
		t.Errorf("after saving the first again: %+v", got)
	}
}
