package clickhouse

import (
	"context"
	"fmt"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigil-ml/vigil/internal/report"
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

// ScanWindowStates streams the newest window states WindowStates would
// return, in the same order, to each, as they arrive, without decoding them:
// each row's key is read, its decoding is left to the caller (report.WindowRow.Decode,
// safe to call on another goroutine). Only the states of all events
// (segment "") and, when segmentKey is not "", those of its values
// ("segmentKey=...") are read.
func (ws *WindowStore) ScanWindowStates(ctx context.Context, model, version, segmentKey string, from, to time.Time, each func(report.WindowRow) error) error {
	conn, _, err := ws.s.connection()
	if err != nil {
		return fmt.Errorf("read window states of %s: %w", model, err)
	}
	q := fmt.Sprintf(`SELECT `+windowStateColumns+`
FROM %s.%s FINAL
WHERE model = ? AND (? = '' OR model_version = ?) AND window_start >= ? AND window_start < ?
  AND (segment = '' OR (? != '' AND startsWith(segment, concat(?, '='))))
ORDER BY window_start, model_version, segment, topic, kafka_partition`, ws.s.cfg.Database, ddl.TableModelWindows)
	// Small blocks: the first rows arrive (and are merged) while the rest
	// are sent, and the driver holds one block of states at a time. The
	// server sorts the range before it sends a row: beyond scanSortBytes
	// it sorts on disk rather than fail for memory.
	qctx := ch.Context(ctx, ch.WithSettings(ch.Settings{"max_block_size": scanBlockRows, "max_bytes_before_external_sort": scanSortBytes}))
	rows, err := conn.Query(qctx, q, model, version, version, from.UTC(), to.UTC(), segmentKey, segmentKey)
	if err != nil {
		return fmt.Errorf("read window states of %s: %w", model, err)
	}
	defer rows.Close()
	for rows.Next() {
		r := &rawWindowState{}
		if err := rows.Scan(&r.model, &r.version, &r.segment, &r.start, &r.end, &r.events, &r.late, &r.sketch, &r.features, &r.final, &r.last); err != nil {
			return fmt.Errorf("read window states of %s: %w", model, err)
		}
		key := stats.Key{Model: r.model, ModelVersion: r.version, Segment: r.segment, WindowStart: r.start.UnixMilli()}
		if err := each(report.WindowRow{Key: key, Decode: r.decode}); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read window states of %s: %w", model, err)
	}
	return nil
}

// scanBlockRows is the block size ScanWindowStates asks for: 256 states of
// a 50-feature model are about 4 MB.
const scanBlockRows = 256

// scanSortBytes is the memory ScanWindowStates lets the server sort in.
const scanSortBytes = 1 << 30

// rawWindowState is a row of windowStateColumns, not decoded yet.
type rawWindowState struct {
	model, version, segment, sketch, features string
	start, end                                time.Time
	events, late                              uint64
	final                                     uint8
	last                                      int64
}

// decode rebuilds the state as scanWindowState does.
func (r *rawWindowState) decode() (*stats.WindowState, error) {
	st := stats.NewWindowState(stats.Key{Model: r.model, ModelVersion: r.version, Segment: r.segment, WindowStart: r.start.UnixMilli()}, r.end.UnixMilli())
	st.Events, st.Late, st.Final, st.LastOffset, st.Dirty = r.events, r.late, r.final == 1, r.last, false
	if err := st.Latency.UnmarshalBinary([]byte(r.sketch)); err != nil {
		return st, fmt.Errorf("read window states of %s: window %s: %w: latency sketch: %v", r.model, keyString(st.Key), ErrBadInput, err)
	}
	fs, err := decodeFeatureStates([]byte(r.features))
	if err != nil {
		return st, fmt.Errorf("read window states of %s: window %s: %w: %v", r.model, keyString(st.Key), ErrBadInput, err)
	}
	st.Features = fs
	r.sketch, r.features = "", "" // the caller keeps the state, not the bytes
	return st, nil
}
