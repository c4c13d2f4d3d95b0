package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

// WindowStates reads the newest state of every window of a model (of one
// model version, or of all when version is "") that starts in [from, to),
// one state per window, segment ("" for all events) and source partition,
// ordered by window start. Merge
// the states of one window (stats.WindowState.Merge) to get the window over
// all partitions, and the windows of an hour to get the hour.
func (ws *WindowStore) WindowStates(ctx context.Context, model, version string, from, to time.Time) ([]*stats.WindowState, error) {
	conn, _, err := ws.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read window states of %s: %w", model, err)
	}
	q := fmt.Sprintf(`SELECT `+windowStateColumns+`
FROM %s.%s FINAL
WHERE model = ? AND (? = '' OR model_version = ?) AND window_start >= ? AND window_start < ?
ORDER BY window_start, model_version, segment, topic, kafka_partition`, ws.s.cfg.Database, ddl.TableModelWindows)
	rows, err := conn.Query(ctx, q, model, version, version, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read window states of %s: %w", model, err)
	}
	defer rows.Close()
	var out []*stats.WindowState
	for rows.Next() {
		st, err := scanWindowState(rows)
		if err != nil {
			return nil, fmt.Errorf("read window states of %s: %w", model, err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read window states of %s: %w", model, err)
	}
	return out, nil
}

// windowStateColumns are the vigil_model_windows columns scanWindowState reads.
const windowStateColumns = "model, model_version, segment, window_start, window_end, events, late_events, latency_sketch, feature_states, is_final, last_offset"

// scanWindowState rebuilds a window state from a row of windowStateColumns.
// When the row's states cannot be decoded (ErrBadInput) it returns the
// state's key and last offset beside the error, for the caller to name it.
func scanWindowState(rows driver.Rows) (*stats.WindowState, error) {
	var (
		m, v, seg, sketch, features string
		start, end                  time.Time
		events, late                uint64
		final                       uint8
		last                        int64
	)
	if err := rows.Scan(&m, &v, &seg, &start, &end, &events, &late, &sketch, &features, &final, &last); err != nil {
		return nil, err
	}
	st := stats.NewWindowState(stats.Key{Model: m, ModelVersion: v, Segment: seg, WindowStart: start.UnixMilli()}, end.UnixMilli())
	st.Events, st.Late, st.Final, st.LastOffset, st.Dirty = events, late, final == 1, last, false
	if err := st.Latency.UnmarshalBinary([]byte(sketch)); err != nil {
		return st, fmt.Errorf("window %s: %w: latency sketch: %v", keyString(st.Key), ErrBadInput, err)
	}
	fs, err := decodeFeatureStates([]byte(features))
	if err != nil {
		return st, fmt.Errorf("window %s: %w: %v", keyString(st.Key), ErrBadInput, err)
	}
	st.Features = fs
	return st, nil
}
