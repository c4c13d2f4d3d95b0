package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-ml/vigil/internal/report"
	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

var (
	_ report.WindowStore      = (*WindowStore)(nil)
	_ report.PerformanceStore = (*LabelStore)(nil)
	_ report.AlertStore       = (*AlertStore)(nil)
)

// ModelVersions lists every model version with stored windows of all
// events: first window start, last window end, events and windows.
func (ws *WindowStore) ModelVersions(ctx context.Context) ([]report.ModelVersion, error) {
	conn, _, err := ws.s.connection()
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT model, model_version, min(window_start), max(window_end), sum(events), uniqExact(window_start)
FROM %s.%s FINAL
WHERE segment = ''
GROUP BY model, model_version
ORDER BY model, model_version`, ws.s.cfg.Database, ddl.TableModelWindows))
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	defer rows.Close()
	var out []report.ModelVersion
	for rows.Next() {
		var m report.ModelVersion
		if err := rows.Scan(&m.Model, &m.Version, &m.First, &m.Last, &m.Events, &m.Windows); err != nil {
			return nil, fmt.Errorf("list models: %w", err)
		}
		m.First, m.Last = m.First.UTC(), m.Last.UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// LateEvents counts the late events of a model version (every version when
// version is "") per window start in [from, to).
func (ws *WindowStore) LateEvents(ctx context.Context, model, version string, from, to time.Time) ([]report.LateCount, error) {
	conn, _, err := ws.s.connection()
	if err != nil {
		return nil, fmt.Errorf("count late events of %s: %w", model, err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT window_start, count()
FROM %s.%s FINAL
WHERE model = ? AND (? = '' OR model_version = ?) AND window_start >= ? AND window_start < ?
GROUP BY window_start
ORDER BY window_start`, ws.s.cfg.Database, ddl.TableLateEvents), model, version, version, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("count late events of %s: %w", model, err)
	}
	defer rows.Close()
	var out []report.LateCount
	for rows.Next() {
		var c report.LateCount
		if err := rows.Scan(&c.WindowStart, &c.Events); err != nil {
			return nil, fmt.Errorf("count late events of %s: %w", model, err)
		}
		c.WindowStart = c.WindowStart.UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// AlertTransitions returns the alerts of model carried by the
// notifications created in [from, to) (vigil_notifications), each
// transition once (by alert id, or fingerprint, status and start when the
// id is empty), oldest first.
func (as *AlertStore) AlertTransitions(ctx context.Context, model string, from, to time.Time) ([]alerting.Alert, error) {
	conn, _, err := as.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read alert transitions of %s: %w", model, err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT alerts FROM %s.%s
WHERE has(models, ?) AND created_at >= ? AND created_at < ?
ORDER BY created_at, id`, as.s.cfg.Database, ddl.TableNotifications), model, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read alert transitions of %s: %w", model, err)
	}
	defer rows.Close()
	var out []alerting.Alert
	seen := map[string]bool{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("read alert transitions of %s: %w", model, err)
		}
		var alerts []alerting.Alert
		if err := json.Unmarshal([]byte(body), &alerts); err != nil {
			return nil, fmt.Errorf("read alert transitions of %s: decode a notification's alerts: %w", model, err)
		}
		for _, a := range alerts {
			id := a.ID
			if id == "" {
				id = a.Key() + "/" + a.Status + "/" + a.StartsAt.String()
			}
			if a.Model != model || seen[id] {
				continue
			}
			seen[id] = true
			out = append(out, a)
		}
	}
	return out, rows.Err()
}
