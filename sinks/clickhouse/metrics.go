package clickhouse

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

// metricValue is one stored statistic of one window, as the alert evaluator
// reads it (an alerting.Observation): a drift metric of a feature, a
// feature's mean or null rate, a model's event count or latency, or a
// performance metric.
type metricValue struct {
	Metric                 string
	Model, Feature         string // Feature "" for model-level metrics
	Segment                string
	WindowStart, WindowEnd time.Time
	Value                  float64
	SQL                    string // reproduces the value
	weight                 uint64 // events behind the value; of several model versions the heaviest wins
}

// driftMetricColumns maps drift metric names to vigil_drift columns.
var driftMetricColumns = [][2]string{
	{"drift_score", "score"}, {"drifted", "drifted"}, {"psi", "psi"}, {"kl", "kl"}, {"js", "js"},
	{"hellinger", "hellinger"}, {"wasserstein", "wasserstein"}, {"wasserstein_norm", "wasserstein_norm"},
	{"ks_stat", "ks_stat"}, {"ks_pvalue", "ks_pvalue"}, {"chi2_stat", "chi2_stat"}, {"chi2_pvalue", "chi2_pvalue"},
	{"missing_rate", "missing_rate"}, {"out_of_range_rate", "out_of_range_rate"},
	{"new_category_rate", "new_category_rate"}, {"type_mismatch_rate", "type_mismatch_rate"},
}

// PerformanceMetrics are the vigil_performance columns alerts can use.
var PerformanceMetrics = []string{
	"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier", "macro_f1", "weighted_f1",
	"mae", "rmse", "mape", "r2", "mean_error", "label_coverage", "label_delay_p50", "label_delay_p95",
}

// RecentMetrics returns the metrics of the stored windows of size window
// that ended in (from, to], from the sources asked for (alerting.Source*), of model version
// version ("" for every version). Event count and latency are those of the
// model, all versions together; for the other metrics, when several model
// versions of a model share a window, the value of the version with the most
// events (values, labelled predictions) is returned. They come as alerting Observations, Reference NaN (the
// evaluator's caller knows the references).
func (as *AlertStore) RecentMetrics(ctx context.Context, window time.Duration, from, to time.Time, sources map[string]bool, version string) ([]alerting.Observation, error) {
	out, err := as.recentMetrics(ctx, window, from, to, sources, version)
	if err != nil {
		return nil, err
	}
	obs := make([]alerting.Observation, len(out))
	for i, m := range out {
		obs[i] = alerting.Observation{Metric: m.Metric, Model: m.Model, Feature: m.Feature, Segment: m.Segment,
			WindowStart: m.WindowStart, WindowEnd: m.WindowEnd, Value: m.Value, Reference: math.NaN(), SQL: m.SQL}
	}
	return obs, nil
}

func (as *AlertStore) recentMetrics(ctx context.Context, window time.Duration, from, to time.Time, sources map[string]bool, version string) ([]metricValue, error) {
	conn, _, err := as.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	sec := int64(window / time.Second)
	db := as.s.cfg.Database
	span := func(table string) string {
		return fmt.Sprintf(`FROM %s.%s FINAL WHERE window_end > ? AND window_end <= ? AND (? = '' OR model_version = ?)
  AND toUInt32(toDateTime(window_end)) - toUInt32(toDateTime(window_start)) = %d`, db, table, sec)
	}
	var out []metricValue
	best := map[string]int{} // series and window -> index in out
	add := func(m metricValue) {
		if math.IsNaN(m.Value) {
			return
		}
		k := m.Metric + "\x00" + m.Model + "\x00" + m.Feature + "\x00" + m.Segment + "\x00" + m.WindowStart.String()
		if i, ok := best[k]; ok {
			if m.weight > out[i].weight {
				out[i] = m
			}
			return
		}
		best[k] = len(out)
		out = append(out, m)
	}
	sqlFor := func(table, col, model, feature, segment string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "SELECT window_start, model_version, %s FROM %s.%s FINAL WHERE model = %s", col, db, table, quote(model))
		if feature != "" {
			fmt.Fprintf(&b, " AND feature = %s", quote(feature))
		}
		fmt.Fprintf(&b, " AND segment = %s", quote(segment))
		if strings.Contains(col, "(") { // an aggregate
			b.WriteString(" GROUP BY window_start, model_version")
		}
		b.WriteString(" ORDER BY window_start DESC LIMIT 20")
		return b.String()
	}

	if sources[alerting.SourceDrift] {
		cols := make([]string, len(driftMetricColumns))
		for i, mc := range driftMetricColumns {
			cols[i] = "toFloat64(" + mc[1] + ")"
		}
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT model, feature, segment, window_start, window_end, n_cur, dataset_share, %s %s`,
			strings.Join(cols, ", "), span(ddl.TableDrift)), from.UTC(), to.UTC(), version, version)
		if err != nil {
			return nil, fmt.Errorf("read drift metrics: %w", err)
		}
		vals := make([]float64, len(driftMetricColumns))
		dst := make([]any, 0, 7+len(vals))
		var (
			model, feature, segment string
			start, end              time.Time
			n                       uint64
			share                   float64
		)
		dst = append(dst, &model, &feature, &segment, &start, &end, &n, &share)
		for i := range vals {
			dst = append(dst, &vals[i])
		}
		for rows.Next() {
			if err := rows.Scan(dst...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read drift metrics: %w", err)
			}
			for i, mc := range driftMetricColumns {
				add(metricValue{Metric: mc[0], Model: model, Feature: feature, Segment: segment, WindowStart: start, WindowEnd: end,
					Value: vals[i], weight: n, SQL: sqlFor(ddl.TableDrift, mc[1], model, feature, segment)})
			}
			add(metricValue{Metric: "drift_share", Model: model, Segment: segment, WindowStart: start, WindowEnd: end,
				Value: share, weight: n, SQL: sqlFor(ddl.TableDrift, "any(dataset_share)", model, "", segment)})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read drift metrics: %w", err)
		}
	}

	if sources[alerting.SourceModelWindows] {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT model, model_version, segment, window_start, window_end, events, latency_sketch %s`,
			span(ddl.TableModelWindows)), from.UTC(), to.UTC(), version, version)
		if err != nil {
			return nil, fmt.Errorf("read model window metrics: %w", err)
		}
		type acc struct {
			model, segment string
			start, end     time.Time
			events         uint64
			latency        stats.Sketch
		}
		merged := map[string]*acc{}
		var order []string
		for rows.Next() {
			var (
				model, version, segment, sketch string
				start, end                      time.Time
				events                          uint64
			)
			if err := rows.Scan(&model, &version, &segment, &start, &end, &events, &sketch); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read model window metrics: %w", err)
			}
			// Summed over partitions and model versions: the model's traffic.
			k := model + "\x00" + segment + "\x00" + start.String()
			a := merged[k]
			if a == nil {
				a = &acc{model: model, segment: segment, start: start, end: end}
				merged[k] = a
				order = append(order, k)
			}
			a.events += events
			if sketch != "" {
				var sk stats.Sketch
				if err := sk.UnmarshalBinary([]byte(sketch)); err == nil {
					a.latency.Merge(&sk)
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read model window metrics: %w", err)
		}
		for _, k := range order {
			a := merged[k]
			base := metricValue{Model: a.model, Segment: a.segment, WindowStart: a.start, WindowEnd: a.end, weight: a.events}
			m := base
			m.Metric, m.Value, m.SQL = "event_count", float64(a.events), sqlFor(ddl.TableModelWindows, "sum(events)", a.model, "", a.segment)
			add(m)
			if a.latency.Count() > 0 {
				for _, q := range []struct {
					name string
					q    float64
				}{{"latency_p50", 0.5}, {"latency_p95", 0.95}, {"latency_p99", 0.99}} {
					m := base
					m.Metric, m.Value, m.SQL = q.name, a.latency.Quantile(q.q), sqlFor(ddl.TableModelWindows, q.name, a.model, "", a.segment)
					add(m)
				}
			}
		}
	}

	if sources[alerting.SourceFeatureWindows] {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT model, model_version, feature, segment, window_start, window_end,
  sum(count), sum(missing), sum(nan_count) + sum(inf_count), sum(sum)
%s
GROUP BY model, model_version, feature, segment, window_start, window_end`, span(ddl.TableFeatureWindows)), from.UTC(), to.UTC(), version, version)
		if err != nil {
			return nil, fmt.Errorf("read feature window metrics: %w", err)
		}
		for rows.Next() {
			var (
				model, version, feature, segment string
				start, end                       time.Time
				count, missing, nonFinite        uint64
				sum                              float64
			)
			if err := rows.Scan(&model, &version, &feature, &segment, &start, &end, &count, &missing, &nonFinite, &sum); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read feature window metrics: %w", err)
			}
			total := count + missing + nonFinite
			base := metricValue{Model: model, Feature: feature, Segment: segment, WindowStart: start, WindowEnd: end, weight: total}
			if count > 0 {
				m := base
				m.Metric, m.Value = "mean", sum/float64(count)
				m.SQL = sqlFor(ddl.TableFeatureWindows, "sum(sum) / sum(count)", model, feature, segment)
				add(m)
			}
			if total > 0 {
				m := base
				m.Metric, m.Value = "null_rate", float64(missing)/float64(total)
				m.SQL = sqlFor(ddl.TableFeatureWindows, "sum(missing) / (sum(count) + sum(missing) + sum(nan_count) + sum(inf_count))", model, feature, segment)
				add(m)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read feature window metrics: %w", err)
		}
	}

	if sources[alerting.SourcePerformance] {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT model, segment, window_start, window_end, labeled, %s %s`,
			strings.Join(PerformanceMetrics, ", "), span(ddl.TablePerformance)), from.UTC(), to.UTC(), version, version)
		if err != nil {
			return nil, fmt.Errorf("read performance metrics: %w", err)
		}
		vals := make([]float64, len(PerformanceMetrics))
		var (
			model, segment string
			start, end     time.Time
			labeled        uint64
		)
		dst := []any{&model, &segment, &start, &end, &labeled}
		for i := range vals {
			dst = append(dst, &vals[i])
		}
		for rows.Next() {
			if err := rows.Scan(dst...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read performance metrics: %w", err)
			}
			for i, name := range PerformanceMetrics {
				add(metricValue{Metric: name, Model: model, Segment: segment, WindowStart: start, WindowEnd: end, Value: vals[i],
					weight: labeled, SQL: sqlFor(ddl.TablePerformance, name, model, "", segment)})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read performance metrics: %w", err)
		}
	}
	return out, nil
}

// LastSeen returns, per model, the end of its newest stored window with
// events (for "no data" alerts).
func (as *AlertStore) LastSeen(ctx context.Context) (map[string]time.Time, error) {
	conn, _, err := as.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read last windows: %w", err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT model, max(window_end) FROM %s.%s WHERE events > 0 GROUP BY model", as.s.cfg.Database, ddl.TableModelWindows))
	if err != nil {
		return nil, fmt.Errorf("read last windows: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var (
			m string
			t time.Time
		)
		if err := rows.Scan(&m, &t); err != nil {
			return nil, fmt.Errorf("read last windows: %w", err)
		}
		out[m] = t
	}
	return out, rows.Err()
}

// quote returns s as a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
