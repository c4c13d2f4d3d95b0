package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

// Restore returns the last checkpoint of src (ok is false when there is none)
// and every window state of src that is not final or has a last offset at or
// past the checkpoint's next offset: the states a replay from nextOffset must
// continue from. States come back with Dirty false.
//
// Each state is rebuilt from the newest vigil_model_windows row of its window
// alone (its feature_states column holds the feature states), so a checkpoint
// that crashed between the model and the feature inserts cannot give a torn
// state. Restore then rewrites the vigil_feature_windows rows of the states
// written after the checkpoint, which repairs such a torn write.
//
// A row whose states cannot be decoded (ErrBadInput) is left out: the other
// results come back with a *pipeline.CorruptStatesError that names it.
//
// When ok is false no states are returned: the partition never completed a
// checkpoint, so replaying it from its start rebuilds every window.
func (ws *WindowStore) Restore(ctx context.Context, src pipeline.Source) (nextOffset, watermarkMs int64, ok bool, states []*stats.WindowState, err error) {
	conn, _, err := ws.s.connection()
	if err != nil {
		return 0, 0, false, nil, fmt.Errorf("restore %s: %w", src, err)
	}
	db := ws.s.cfg.Database
	row := conn.QueryRow(ctx, fmt.Sprintf(`SELECT next_offset, watermark_ms FROM %s.%s
WHERE consumer_group = ? AND topic = ? AND kafka_partition = ?
ORDER BY next_offset DESC, written_at DESC LIMIT 1`, db, ddl.TableCheckpoints), src.Group, src.Topic, uint32(src.Partition))
	if err := row.Scan(&nextOffset, &watermarkMs); err != nil {
		if isNoRows(err) {
			return 0, 0, false, nil, nil
		}
		return 0, 0, false, nil, fmt.Errorf("restore %s: read checkpoint: %w", src, err)
	}

	// The inner query filters on key columns only, which every version of a
	// row shares, so it is right before or after FINAL; the outer one filters
	// the newest versions.
	const cols = windowStateColumns
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT %s FROM (
  SELECT %s FROM %s.%s FINAL WHERE topic = ? AND kafka_partition = ?
) WHERE is_final = 0 OR last_offset >= ?
ORDER BY model, model_version, segment, window_start`, cols, cols, db, ddl.TableModelWindows), src.Topic, uint32(src.Partition), nextOffset)
	if err != nil {
		return 0, 0, false, nil, fmt.Errorf("restore %s: read window states: %w", src, err)
	}
	defer rows.Close()
	var (
		torn    []*stats.WindowState
		corrupt *pipeline.CorruptStatesError
	)
	for rows.Next() {
		st, err := scanWindowState(rows)
		if err != nil && st != nil && errors.Is(err, ErrBadInput) {
			// One undecodable row must not wedge the partition: leave it
			// out and report it; the caller quarantines it.
			if corrupt == nil {
				corrupt = &pipeline.CorruptStatesError{Source: src}
			}
			corrupt.States = append(corrupt.States, pipeline.CorruptState{Key: st.Key, LastOffset: st.LastOffset, Err: err})
			continue
		}
		if err != nil {
			return 0, 0, false, nil, fmt.Errorf("restore %s: read window states: %w", src, err)
		}
		states = append(states, st)
		if st.LastOffset >= nextOffset {
			torn = append(torn, st)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, false, nil, fmt.Errorf("restore %s: read window states: %w", src, err)
	}
	if len(torn) > 0 {
		w := writer{conn: conn, db: db, src: src}
		if err := w.featureWindows(ctx, torn, time.Now().UTC()); err != nil {
			return 0, 0, false, nil, fmt.Errorf("restore %s: rewrite feature rows written after the checkpoint: %w", src, err)
		}
	}
	ws.s.log.Debug().Str("topic", src.Topic).Int("partition", src.Partition).Int64("next_offset", nextOffset).
		Int("states", len(states)).Int("rewritten", len(torn)).Msg("partition restored")
	if corrupt != nil {
		return nextOffset, watermarkMs, true, states, corrupt
	}
	return nextOffset, watermarkMs, true, states, nil
}

// RestoreProducers returns the producer sequences stored in the checkpoint
// row of src at nextOffset (the one Restore returned), or nil when there is
// none or it has none (written before migration 13).
func (ws *WindowStore) RestoreProducers(ctx context.Context, src pipeline.Source, nextOffset int64) ([]byte, error) {
	conn, _, err := ws.s.connection()
	if err != nil {
		return nil, fmt.Errorf("restore producer sequences of %s: %w", src, err)
	}
	var producers string
	row := conn.QueryRow(ctx, fmt.Sprintf(`SELECT producers FROM %s.%s
WHERE consumer_group = ? AND topic = ? AND kafka_partition = ? AND next_offset = ?
ORDER BY written_at DESC LIMIT 1`, ws.s.cfg.Database, ddl.TableCheckpoints), src.Group, src.Topic, uint32(src.Partition), nextOffset)
	if err := row.Scan(&producers); err != nil {
		if isNoRows(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("restore producer sequences of %s: %w", src, err)
	}
	if producers == "" {
		return nil, nil
	}
	return []byte(producers), nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
