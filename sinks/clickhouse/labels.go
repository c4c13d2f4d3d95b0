package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

var labelColumns = []string{
	"model", "event_id", "label_time", "has_class", "label_class", "has_value", "label_value",
	"topic", "kafka_partition", "kafka_offset", "kafka_row", "received_at",
}

// WriteLabels stores labels in vigil_labels as one INSERT. Writing a message
// again (same topic, partition and offset) replaces it.
func (ls *LabelStore) WriteLabels(ctx context.Context, labels []pipeline.LabelRow) error {
	if len(labels) == 0 {
		return nil
	}
	conn, _, err := ls.s.connection()
	if err != nil {
		return fmt.Errorf("write labels: %w", err)
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", ls.s.cfg.Database, ddl.TableLabels, strings.Join(labelColumns, ", ")))
	if err != nil {
		return fmt.Errorf("write labels: prepare insert: %w", err)
	}
	defer b.Close()
	now := time.Now().UTC()
	for _, l := range labels {
		if err := b.Append(l.Model, l.EventID, l.Time.UTC(), boolByte(l.HasClass), l.Class, boolByte(l.HasValue), l.Value,
			l.Topic, uint32(l.Partition), l.Offset, uint32(l.Row), now); err != nil {
			_ = b.Abort()
			return fmt.Errorf("write label %s/%s: %w", l.Model, l.EventID, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("write labels: insert %d rows: %w", len(labels), err)
	}
	return nil
}

// PredictionRow is one stored prediction (a row of vigil_events), as the
// performance job joins it with its label.
type PredictionRow = performance.Prediction

// WindowPredictions returns the predictions of model with event time in
// [from, to), one per event id (a replayed event is stored twice), in event
// time order.
func (ls *LabelStore) WindowPredictions(ctx context.Context, model string, from, to time.Time) ([]PredictionRow, error) {
	conn, _, err := ls.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read predictions: %w", err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT event_id, model_version, event_time, pred_score, pred_label, pred_value,
  proba_classes, proba_values, segment_keys, segment_values
FROM %s.%s
WHERE model = ? AND event_time >= ? AND event_time < ?
ORDER BY event_time, event_id
LIMIT 1 BY event_id`, ls.s.cfg.Database, ddl.TableEvents), model, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read predictions of %s: %w", model, err)
	}
	defer rows.Close()
	var out []PredictionRow
	for rows.Next() {
		var p PredictionRow
		if err := rows.Scan(&p.EventID, &p.ModelVersion, &p.Time, &p.Score, &p.Label, &p.Value,
			&p.ProbaClasses, &p.ProbaValues, &p.SegmentKeys, &p.SegmentValues); err != nil {
			return nil, fmt.Errorf("read predictions of %s: %w", model, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read predictions of %s: %w", model, err)
	}
	return out, nil
}

// StoredLabel is the label in force for one event id.
type StoredLabel = performance.StoredLabel

// WindowLabels returns the labels of the predictions of model with event
// time in [from, to), by event id.
func (ls *LabelStore) WindowLabels(ctx context.Context, model string, from, to time.Time) (map[string]StoredLabel, error) {
	conn, _, err := ls.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	db := ls.s.cfg.Database
	rows, err := conn.Query(ctx, ls.s.subqueries(fmt.Sprintf(`SELECT event_id, max(label_time), argMax(has_class, label_time), argMax(label_class, label_time),
  argMax(has_value, label_time), argMax(label_value, label_time), uniqExact(topic, kafka_partition, kafka_offset, kafka_row)
FROM %s.%s
WHERE model = ? AND event_id IN (SELECT event_id FROM %s.%s WHERE model = ? AND event_time >= ? AND event_time < ?)
GROUP BY event_id`, db, ddl.TableLabels, db, ddl.TableEvents)), model, model, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read labels of %s: %w", model, err)
	}
	defer rows.Close()
	out := map[string]StoredLabel{}
	for rows.Next() {
		var (
			id               string
			l                StoredLabel
			hasClass, hasVal uint8
		)
		if err := rows.Scan(&id, &l.Time, &hasClass, &l.Class, &hasVal, &l.Value, &l.Copies); err != nil {
			return nil, fmt.Errorf("read labels of %s: %w", model, err)
		}
		l.HasClass, l.HasValue = hasClass == 1, hasVal == 1
		out[id] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read labels of %s: %w", model, err)
	}
	return out, nil
}

// ModelWindow names one prediction window of a model.
type ModelWindow = performance.ModelWindow

// ChangedPerformanceWindows returns the prediction windows (of size window,
// starting at or after notBefore) whose performance may have changed since
// since: those with predictions stored since then, and those with
// predictions whose labels were stored since then.
func (ls *LabelStore) ChangedPerformanceWindows(ctx context.Context, window time.Duration, since, notBefore time.Time) ([]ModelWindow, error) {
	conn, _, err := ls.s.connection()
	if err != nil {
		return nil, fmt.Errorf("find changed performance windows: %w", err)
	}
	sec := int64(window / time.Second)
	if sec < 1 || window%time.Second != 0 {
		return nil, fmt.Errorf("find changed performance windows: window %v is not a whole number of seconds", window)
	}
	db := ls.s.cfg.Database
	q := fmt.Sprintf(`SELECT model, w FROM (
  SELECT model, toUInt32(intDiv(toUInt32(toDateTime(event_time)), %[3]d)) AS w FROM %[1]s.%[2]s
  WHERE event_time >= ? AND ingested_at >= ?
  GROUP BY model, w
  UNION ALL
  SELECT model, toUInt32(intDiv(toUInt32(toDateTime(event_time)), %[3]d)) AS w FROM %[1]s.%[2]s
  WHERE event_time >= ? AND (model, event_id) IN (SELECT model, event_id FROM %[1]s.%[4]s WHERE received_at >= ?)
  GROUP BY model, w
) GROUP BY model, w ORDER BY model, w`, db, ddl.TableEvents, sec, ddl.TableLabels)
	rows, err := conn.Query(ctx, ls.s.subqueries(q), notBefore.UTC(), since.UTC(), notBefore.UTC(), since.UTC())
	if err != nil {
		return nil, fmt.Errorf("find changed performance windows: %w", err)
	}
	defer rows.Close()
	var out []ModelWindow
	for rows.Next() {
		var (
			m string
			w uint32
		)
		if err := rows.Scan(&m, &w); err != nil {
			return nil, fmt.Errorf("find changed performance windows: %w", err)
		}
		out = append(out, ModelWindow{Model: m, Start: time.Unix(int64(w)*sec, 0).UTC()})
	}
	return out, rows.Err()
}

// LabelAccount counts, for one model, the labels stored in a period and what
// became of them.
type LabelAccount struct {
	Model      string
	Messages   uint64 // label messages stored
	EventIDs   uint64 // distinct event ids among them
	Duplicates uint64 // Messages - EventIDs: labels sent more than once
	Matched    uint64 // event ids with a stored prediction, within the horizon
	Expired    uint64 // event ids whose label time is more than the horizon after the prediction
	Unknown    uint64 // event ids without a stored prediction (yet)
}

// LabelAccountSQL is the query behind LabelAccounts (documented in
// docs/TABLES.md): parameters are the period's start twice and the horizon
// in seconds.
const LabelAccountSQL = `SELECT model,
  sum(copies) AS messages,
  count() AS event_ids,
  toUInt64(sum(copies) - count()) AS duplicates,
  countIf(found = 1 AND toUInt32(label_time) <= toUInt32(pred_time) + {horizon}) AS matched,
  countIf(found = 1 AND toUInt32(label_time) > toUInt32(pred_time) + {horizon}) AS expired,
  countIf(found = 0) AS unknown
FROM (
  SELECT model, event_id, max(toDateTime(label_time)) AS label_time, uniqExact(topic, kafka_partition, kafka_offset, kafka_row) AS copies
  FROM {db}.vigil_labels WHERE received_at >= {since}
  GROUP BY model, event_id
) AS l ANY LEFT JOIN (
  SELECT model, event_id, toUInt8(1) AS found, min(toDateTime(event_time)) AS pred_time
  FROM {db}.vigil_events
  WHERE (model, event_id) IN (SELECT model, event_id FROM {db}.vigil_labels WHERE received_at >= {since})
  GROUP BY model, event_id
) AS p USING (model, event_id)
GROUP BY model
ORDER BY model`

// LabelAccounts counts the labels received since since, per model.
func (ls *LabelStore) LabelAccounts(ctx context.Context, since time.Time, horizon time.Duration) ([]LabelAccount, error) {
	conn, _, err := ls.s.connection()
	if err != nil {
		return nil, fmt.Errorf("count labels: %w", err)
	}
	q := strings.NewReplacer("{db}", ls.s.cfg.Database, "{since}", "?", "{horizon}", fmt.Sprint(int64(horizon/time.Second))).Replace(LabelAccountSQL)
	rows, err := conn.Query(ctx, ls.s.subqueries(q), since.UTC(), since.UTC())
	if err != nil {
		return nil, fmt.Errorf("count labels: %w", err)
	}
	defer rows.Close()
	var out []LabelAccount
	for rows.Next() {
		var a LabelAccount
		if err := rows.Scan(&a.Model, &a.Messages, &a.EventIDs, &a.Duplicates, &a.Matched, &a.Expired, &a.Unknown); err != nil {
			return nil, fmt.Errorf("count labels: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
