package clickhouse

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/processors/alerting"
)

func TestIntegrationRecentMetrics(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	db := s.Database()
	for _, q := range []string{
		// Two partitions of one window: merged.
		`INSERT INTO vigil.vigil_model_windows (model, model_version, segment, window_start, topic, kafka_partition, window_end, events, latency_sketch, last_offset)
SELECT 'm', 'v1', '', '2026-03-01 12:00:00', 't', 0, '2026-03-01 12:01:00', 3, '', 1`,
		`INSERT INTO vigil.vigil_model_windows (model, model_version, segment, window_start, topic, kafka_partition, window_end, events, latency_sketch, last_offset)
SELECT 'm', 'v1', '', '2026-03-01 12:00:00', 't', 1, '2026-03-01 12:01:00', 4, '', 1`,
		`INSERT INTO vigil.vigil_feature_windows (model, model_version, segment, feature, window_start, topic, kafka_partition, window_end, kind, count, missing, sum, last_offset)
SELECT 'm', 'v1', '', 'amount', '2026-03-01 12:00:00', 't', 0, '2026-03-01 12:01:00', 'number', 3, 1, 30, 1`,
		// Two versions in one window: the one with more values wins.
		`INSERT INTO vigil.vigil_drift (model, model_version, segment, window_start, window_end, feature, n_cur, psi, score, dataset_share, computed_at)
SELECT 'm', 'v1', '', '2026-03-01 12:00:00', '2026-03-01 12:01:00', 'amount', 10, 0.5, 0.5, 1, now()`,
		`INSERT INTO vigil.vigil_drift (model, model_version, segment, window_start, window_end, feature, n_cur, psi, score, dataset_share, computed_at)
SELECT 'm', 'v2', '', '2026-03-01 12:00:00', '2026-03-01 12:01:00', 'amount', 90, 0.1, 0.1, 0, now()`,
		// A coarser range is not a window.
		`INSERT INTO vigil.vigil_drift (model, model_version, segment, window_start, window_end, feature, n_cur, psi, computed_at)
SELECT 'm', 'v1', '', '2026-03-01 11:00:00', '2026-03-01 12:01:00', 'amount', 10, 0.9, now()`,
		`INSERT INTO vigil.vigil_performance (model, model_version, segment, window_start, window_end, labeled, accuracy, roc_auc, version)
SELECT 'm', 'v1', '', '2026-03-01 12:00:00', '2026-03-01 12:01:00', 5, 0.8, nan, 1`,
	} {
		if err := s.Conn().Exec(ctx, strings.ReplaceAll(q, "vigil.", db+".")); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	from := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	all := map[string]bool{alerting.SourceDrift: true, alerting.SourceModelWindows: true, alerting.SourceFeatureWindows: true, alerting.SourcePerformance: true}
	got, err := s.Alerts().RecentMetrics(ctx, time.Minute, from, from.Add(time.Minute), all, "")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]alerting.Observation{}
	for _, m := range got {
		if _, dup := byName[m.Metric+m.Feature]; dup {
			t.Errorf("metric %s of %q twice", m.Metric, m.Feature)
		}
		byName[m.Metric+m.Feature] = m
		if err := s.Conn().Exec(ctx, m.SQL); err != nil {
			t.Errorf("SQL of %s does not run: %v\n%s", m.Metric, err, m.SQL)
		}
	}
	want := map[string]float64{
		"event_count": 7, "meanamount": 10, "null_rateamount": 0.25, "psiamount": 0.1, "drift_scoreamount": 0.1,
		"drift_share": 0, "accuracy": 0.8,
	}
	for k, v := range want {
		if m, ok := byName[k]; !ok || m.Value != v {
			t.Errorf("%s = %+v, want %v", k, m, v)
		}
	}
	if _, ok := byName["roc_auc"]; ok {
		t.Errorf("NaN roc_auc reported")
	}
	if m := byName["psiamount"]; !m.WindowStart.Equal(from) || !m.WindowEnd.Equal(from.Add(time.Minute)) {
		t.Errorf("psi window %v..%v", m.WindowStart, m.WindowEnd)
	}
	if got, _ := s.Alerts().RecentMetrics(ctx, time.Minute, from.Add(time.Minute), from.Add(time.Hour), all, ""); len(got) != 0 {
		t.Errorf("metrics of later windows: %+v", got)
	}
	v1, err := s.Alerts().RecentMetrics(ctx, time.Minute, from, from.Add(time.Minute), map[string]bool{alerting.SourceDrift: true}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range v1 {
		if m.Metric == "psi" && m.Value != 0.5 {
			t.Errorf("psi of version v1 = %v, want 0.5", m.Value)
		}
	}
	seen, err := s.Alerts().LastSeen(ctx)
	if err != nil || !seen["m"].Equal(from.Add(time.Minute)) {
		t.Errorf("LastSeen = %v, %v", seen, err)
	}
}
