package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

const alertColumns = "rule, fingerprint, model, metric, feature, segment, status, consecutive, last_window, previous, starts_at, value, threshold, updated_at, version"

// SaveAlertStates stores the state of alert series in vigil_alerts (a new
// version of each series' row).
func (as *AlertStore) SaveAlertStates(ctx context.Context, states []alerting.SeriesState) error {
	if len(states) == 0 {
		return nil
	}
	conn, _, err := as.s.connection()
	if err != nil {
		return fmt.Errorf("save alert states: %w", err)
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", as.s.cfg.Database, ddl.TableAlerts, alertColumns))
	if err != nil {
		return fmt.Errorf("save alert states: prepare insert: %w", err)
	}
	defer b.Close()
	version := uint64(time.Now().UnixNano())
	for i, st := range states {
		if err := b.Append(st.Rule, st.Fingerprint, st.Model, st.Metric, st.Feature, st.Segment, st.Status, uint32(st.Consecutive),
			dbTime(st.LastWindow), st.Previous, dbTime(st.StartsAt), st.Value, st.Threshold, dbTime(st.UpdatedAt), version+uint64(i)); err != nil {
			_ = b.Abort()
			return fmt.Errorf("save alert state of %s %s: %w", st.Rule, st.Fingerprint, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("save %d alert states: %w", len(states), err)
	}
	return nil
}

// LoadAlertStates returns the current state of every alert series.
func (as *AlertStore) LoadAlertStates(ctx context.Context) ([]alerting.SeriesState, error) {
	conn, _, err := as.s.connection()
	if err != nil {
		return nil, fmt.Errorf("load alert states: %w", err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s.%s FINAL`, alertColumns, as.s.cfg.Database, ddl.TableAlerts))
	if err != nil {
		return nil, fmt.Errorf("load alert states: %w", err)
	}
	defer rows.Close()
	var out []alerting.SeriesState
	for rows.Next() {
		var (
			st          alerting.SeriesState
			consecutive uint32
			version     uint64
		)
		if err := rows.Scan(&st.Rule, &st.Fingerprint, &st.Model, &st.Metric, &st.Feature, &st.Segment, &st.Status, &consecutive,
			&st.LastWindow, &st.Previous, &st.StartsAt, &st.Value, &st.Threshold, &st.UpdatedAt, &version); err != nil {
			return nil, fmt.Errorf("load alert states: %w", err)
		}
		st.Consecutive = int(consecutive)
		st.LastWindow, st.StartsAt, st.UpdatedAt = goTime(st.LastWindow), goTime(st.StartsAt), goTime(st.UpdatedAt)
		out = append(out, st)
	}
	return out, rows.Err()
}

// dbTime stores the zero time as the Unix epoch, which DateTime can hold.
func dbTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

// goTime reads the Unix epoch back as the zero time.
func goTime(t time.Time) time.Time {
	if t.Unix() == 0 {
		return time.Time{}
	}
	return t.UTC()
}

var _ alerting.Outbox = (*Outbox)(nil)
