package clickhouse

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

// Column lists of the inserts. Explicit lists are required on 18.16 and keep
// an insert valid when a later migration adds a column.
var (
	modelWindowColumns = []string{
		"model", "model_version", "segment", "window_start", "topic", "kafka_partition", "window_end",
		"events", "late_events", "latency_count", "latency_p50", "latency_p95", "latency_p99",
		"latency_sketch", "feature_states", "is_final", "last_offset", "updated_at",
	}
	featureWindowColumns = []string{
		"model", "model_version", "segment", "feature", "window_start", "topic", "kafka_partition", "window_end",
		"kind", "count", "missing", "type_mismatch", "nan_count", "inf_count",
		"sum", "m2", "mean", "variance", "min", "max",
		"categories", "category_counts", "other_count", "is_final", "last_offset", "updated_at",
	}
	lateEventColumns = []string{
		"topic", "kafka_partition", "kafka_offset", "event_id", "model", "model_version",
		"event_time", "window_start", "watermark", "received_at",
	}
	checkpointColumns = []string{
		"consumer_group", "topic", "kafka_partition", "next_offset", "watermark_ms", "written_at", "producers",
	}
)

// Checkpoint writes the raw events (when enabled; see rawEvents) and, at
// the same time, in this order and each as one batched INSERT, the late
// events, the model window rows and the feature window rows of every
// state; once all of them are durable, the checkpoint row (nextOffset,
// watermarkMs, and producers: the processor's producer sequences, stored
// as they are) of src. It returns when that is durable too, so an offset
// is committed only after everything derived from it is.
//
// It is idempotent: after an error the caller backs off and calls it again
// with the same arguments (see IsRetryable); rows already written are
// replaced, not duplicated. Errors wrapping ErrBadInput are permanent.
//
// On servers older than 22 times are stored in whole seconds, so window
// bounds must be whole seconds there (ErrBadInput otherwise).
func (ws *WindowStore) Checkpoint(ctx context.Context, src pipeline.Source, raw []pipeline.RawBatch, late []pipeline.LateEvent, states []*stats.WindowState, nextOffset, watermarkMs int64, producers []byte) error {
	conn, v, err := ws.s.connection()
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", src, err)
	}
	if err := checkStates(states, v); err != nil {
		return fmt.Errorf("checkpoint %s: %w", src, err)
	}
	began := time.Now()
	now := time.Now().UTC()
	w := writer{conn: conn, db: ws.s.cfg.Database, src: src, rawInserts: ws.s.rawInserts}
	var (
		nraw   int
		rawErr error
		done   = make(chan struct{})
	)
	if ws.s.cfg.RawEvents && len(raw) > 0 {
		// The raw rows are most of a checkpoint's work (client and server):
		// they go while the statistics are written.
		go func() {
			defer close(done)
			nraw, rawErr = w.rawEvents(ctx, raw, now)
		}()
	} else {
		close(done)
	}
	statsErr := w.statistics(ctx, late, states, now)
	<-done
	if rawErr != nil {
		return rawErr
	}
	if statsErr != nil {
		return statsErr
	}
	if err := w.checkpoint(ctx, nextOffset, watermarkMs, producers, now); err != nil {
		return err
	}
	if e := ws.s.log.Debug(); e.Enabled() {
		e.Str("topic", src.Topic).Int("partition", src.Partition).Int("raw_events", nraw).Int("late_events", len(late)).
			Int("states", len(states)).Int64("next_offset", nextOffset).Dur("took", time.Since(began)).Msg("checkpoint written")
	}
	return nil
}

// statistics writes the late events, the model window rows and the feature
// window rows, in this order.
func (w *writer) statistics(ctx context.Context, late []pipeline.LateEvent, states []*stats.WindowState, now time.Time) error {
	if err := w.lateEvents(ctx, late, now); err != nil {
		return err
	}
	if err := w.modelWindows(ctx, states, now); err != nil {
		return err
	}
	return w.featureWindows(ctx, states, now)
}

func checkStates(states []*stats.WindowState, v ddl.ServerVersion) error {
	for _, st := range states {
		if st == nil {
			return fmt.Errorf("%w: nil window state", ErrBadInput)
		}
		if !v.Modern() && (st.WindowStart%1000 != 0 || st.WindowEnd%1000 != 0) {
			return fmt.Errorf("%w: window [%d, %d) ms of model %q is not in whole seconds, which ClickHouse %s (DateTime) cannot store; use whole-second windows or ClickHouse >= %d",
				ErrBadInput, st.WindowStart, st.WindowEnd, st.Model, v, ddl.ModernMajor)
		}
	}
	return nil
}

// writer runs the inserts of one checkpoint.
type writer struct {
	conn driver.Conn
	db   string
	src  pipeline.Source
	// rawInserts, when not nil, is the Sink's semaphore of raw-event INSERTs.
	rawInserts chan struct{}
}

// insert sends one INSERT of n rows; row(b, i) appends row i.
func (w *writer) insert(ctx context.Context, table string, columns []string, n int, row func(b driver.Batch, i int) error) error {
	if n == 0 {
		return nil
	}
	query := fmt.Sprintf("INSERT INTO %s.%s (%s)", w.db, table, strings.Join(columns, ", "))
	b, err := w.conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("checkpoint %s: prepare insert into %s.%s: %w", w.src, w.db, table, err)
	}
	defer b.Close()
	for i := 0; i < n; i++ {
		if err := row(b, i); err != nil {
			_ = b.Abort()
			return fmt.Errorf("checkpoint %s: append row to %s.%s: %w", w.src, w.db, table, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("checkpoint %s: insert %d rows into %s.%s: %w", w.src, n, w.db, table, err)
	}
	return nil
}

func (w *writer) partition() uint32 { return uint32(w.src.Partition) }

func (w *writer) lateEvents(ctx context.Context, late []pipeline.LateEvent, now time.Time) error {
	return w.insert(ctx, ddl.TableLateEvents, lateEventColumns, len(late), func(b driver.Batch, i int) error {
		e := &late[i]
		return b.Append(w.src.Topic, w.partition(), e.Offset, e.EventID, e.Model, e.ModelVersion,
			e.EventTime.UTC(), e.WindowStart.UTC(), e.Watermark.UTC(), now)
	})
}

func (w *writer) modelWindows(ctx context.Context, states []*stats.WindowState, now time.Time) error {
	var buf []byte
	return w.insert(ctx, ddl.TableModelWindows, modelWindowColumns, len(states), func(b driver.Batch, i int) error {
		st := states[i]
		sketch, err := st.Latency.MarshalBinary()
		if err != nil {
			return fmt.Errorf("%w: encode latency sketch of %s: %v", ErrBadInput, keyString(st.Key), err)
		}
		buf = appendFeatureStates(buf[:0], st.Features)
		return b.Append(st.Model, st.ModelVersion, st.Segment, msTime(st.WindowStart), w.src.Topic, w.partition(), msTime(st.WindowEnd),
			st.Events, st.Late, st.Latency.Count(),
			st.Latency.Quantile(0.50), st.Latency.Quantile(0.95), st.Latency.Quantile(0.99),
			string(sketch), string(buf), boolByte(st.Final), st.LastOffset, now)
	})
}

// featureRow is one row of vigil_feature_windows.
type featureRow struct {
	st   *stats.WindowState
	name string
	f    *stats.FeatureState
}

func (w *writer) featureWindows(ctx context.Context, states []*stats.WindowState, now time.Time) error {
	var rows []featureRow
	for _, st := range states {
		for _, name := range sortedKeys(st.Features) {
			rows = append(rows, featureRow{st, name, st.Features[name]})
		}
	}
	return w.insert(ctx, ddl.TableFeatureWindows, featureWindowColumns, len(rows), func(b driver.Batch, i int) error {
		r := rows[i]
		f := r.f
		count, missing := f.Num.Count, f.Num.Missing
		mean, variance, lo, hi := math.NaN(), math.NaN(), math.NaN(), math.NaN()
		var cats []string
		var catCounts []uint64
		if f.Kind == schemas.String {
			count, missing = f.Cat.Count, f.Cat.Missing
			cats, catCounts = categories(f.Cat.Counts)
		} else if f.Num.Count > 0 {
			mean, variance, lo, hi = f.Num.Mean(), f.Num.VarianceSample(), f.Num.Min, f.Num.Max
		}
		if cats == nil {
			cats, catCounts = []string{}, []uint64{}
		}
		return b.Append(r.st.Model, r.st.ModelVersion, r.st.Segment, r.name, msTime(r.st.WindowStart), w.src.Topic, w.partition(), msTime(r.st.WindowEnd),
			f.Kind.String(), count, missing, f.TypeMismatch, f.Num.NaN, f.Num.Inf,
			f.Num.Sum, f.Num.M2, mean, variance, lo, hi,
			cats, catCounts, f.Cat.Other, boolByte(r.st.Final), r.st.LastOffset, now)
	})
}

func (w *writer) checkpoint(ctx context.Context, nextOffset, watermarkMs int64, producers []byte, now time.Time) error {
	return w.insert(ctx, ddl.TableCheckpoints, checkpointColumns, 1, func(b driver.Batch, _ int) error {
		return b.Append(w.src.Group, w.src.Topic, w.partition(), nextOffset, watermarkMs, now, string(producers))
	})
}

// categories returns the category counts by count, highest first, then by value.
func categories(m map[string]uint64) ([]string, []uint64) {
	names := sortedKeys(m)
	slices.SortStableFunc(names, func(a, b string) int {
		switch ca, cb := m[a], m[b]; {
		case ca > cb:
			return -1
		case ca < cb:
			return 1
		}
		return 0
	})
	counts := make([]uint64, len(names))
	for i, n := range names {
		counts[i] = m[n]
	}
	return names, counts
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func keyString(k stats.Key) string {
	seg := ""
	if k.Segment != "" {
		seg = "[" + k.Segment + "]"
	}
	return fmt.Sprintf("%s/%s%s@%s", k.Model, k.ModelVersion, seg, msTime(k.WindowStart).Format(time.RFC3339Nano))
}
