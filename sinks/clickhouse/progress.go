package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ml/vigil/schemas/ddl"
)

// CheckpointedOffsets returns the sum over partitions of the next offsets
// checkpointed for group on topic: how far the processor got, comparable with
// the sum of the topic's end offsets.
func (ws *WindowStore) CheckpointedOffsets(ctx context.Context, group, topic string) (int64, error) {
	conn, _, err := ws.s.connection()
	if err != nil {
		return 0, fmt.Errorf("read checkpoints: %w", err)
	}
	var n int64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT toInt64(sum(next_offset)) FROM %s.%s FINAL WHERE consumer_group = ? AND topic = ?",
		ws.s.cfg.Database, ddl.TableCheckpoints), group, topic).Scan(&n); err != nil {
		return 0, fmt.Errorf("read checkpoints of %s on %s: %w", group, topic, err)
	}
	return n, nil
}

// StoredLabels returns how many label messages of topic vigil_labels holds.
func (ls *LabelStore) StoredLabels(ctx context.Context, topic string) (uint64, error) {
	conn, _, err := ls.s.connection()
	if err != nil {
		return 0, fmt.Errorf("count labels: %w", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s WHERE topic = ?", ls.s.cfg.Database, ddl.TableLabels), topic).Scan(&n); err != nil {
		return 0, fmt.Errorf("count labels of %s: %w", topic, err)
	}
	return n, nil
}

// LateEventCount returns how many late events of a model version
// vigil_late_events holds.
func (ws *WindowStore) LateEventCount(ctx context.Context, model, version string) (uint64, error) {
	conn, _, err := ws.s.connection()
	if err != nil {
		return 0, fmt.Errorf("count late events: %w", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s FINAL WHERE model = ? AND model_version = ?", ws.s.cfg.Database, ddl.TableLateEvents),
		model, version).Scan(&n); err != nil {
		return 0, fmt.Errorf("count late events of %s %s: %w", model, version, err)
	}
	return n, nil
}

// FeatureNames returns the names of the features of a model version's
// stored windows (all events, not per segment) that started at or after
// since, sorted: what the production events carry.
func (ws *WindowStore) FeatureNames(ctx context.Context, model, version string, since time.Time) ([]string, error) {
	conn, _, err := ws.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read feature names: %w", err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT feature FROM %s.%s WHERE model = ? AND model_version = ? AND segment = '' AND window_start >= ? ORDER BY feature",
		ws.s.cfg.Database, ddl.TableFeatureWindows), model, version, since.UTC())
	if err != nil {
		return nil, fmt.Errorf("read feature names of %s %s: %w", model, version, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("read feature names of %s %s: %w", model, version, err)
		}
		out = append(out, name)
	}
	return out, rows.Err()
}
