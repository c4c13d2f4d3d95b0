package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

var rawEventColumns = []string{
	"event_id", "model", "model_version", "event_time",
	"num_feature_names", "num_feature_values", "str_feature_names", "str_feature_values",
	"bool_feature_names", "bool_feature_values", "null_features",
	"pred_score", "pred_label", "pred_value", "proba_classes", "proba_values", "latency_ms",
	"segment_keys", "segment_values", "topic", "kafka_partition", "kafka_offset", "ingested_at",
}

// rawColumns are the columns of one record, sorted out by role.
type rawColumns struct {
	id, model, version *array.String
	time               *array.Timestamp
	timeUnit           arrow.TimeUnit
	latency, score     *array.Float64
	value              *array.Float64
	label              *array.String
	proba              []named[*array.Float64]
	num                []named[*array.Float64]
	str                []named[*array.String]
	flag               []named[*array.Boolean]
	seg                []named[*array.String]
}

type named[A any] struct {
	name string
	a    A
}

func classify(rec arrow.Record) (*rawColumns, error) {
	c := &rawColumns{}
	sch := rec.Schema()
	for i, f := range sch.Fields() {
		col := rec.Column(i)
		var ok bool
		switch name := f.Name; name {
		case schemas.ColEventID:
			c.id, ok = col.(*array.String)
		case schemas.ColModel:
			c.model, ok = col.(*array.String)
		case schemas.ColModelVersion:
			c.version, ok = col.(*array.String)
		case schemas.ColEventTime:
			c.time, ok = col.(*array.Timestamp)
			if ok {
				c.timeUnit = f.Type.(*arrow.TimestampType).Unit
			}
		case schemas.ColLatencyMs:
			c.latency, ok = col.(*array.Float64)
		case schemas.ColPredScore:
			c.score, ok = col.(*array.Float64)
		case schemas.ColPredValue:
			c.value, ok = col.(*array.Float64)
		case schemas.ColPredLabel:
			c.label, ok = col.(*array.String)
		default:
			ok = true // columns outside the contract are ignored
			if class, is := schemas.ProbaClass(name); is {
				a, isF := col.(*array.Float64)
				ok = isF
				c.proba = append(c.proba, named[*array.Float64]{class, a})
			} else if feat, is := schemas.FeatureName(name); is {
				switch a := col.(type) {
				case *array.Float64:
					c.num = append(c.num, named[*array.Float64]{feat, a})
				case *array.String:
					c.str = append(c.str, named[*array.String]{feat, a})
				case *array.Boolean:
					c.flag = append(c.flag, named[*array.Boolean]{feat, a})
				default:
					ok = false
				}
			} else if key, is := schemas.SegmentKey(name); is {
				a, isS := col.(*array.String)
				ok = isS
				c.seg = append(c.seg, named[*array.String]{key, a})
			}
		}
		if !ok {
			return nil, fmt.Errorf("%w: column %q has unexpected type %s", ErrBadInput, f.Name, f.Type)
		}
	}
	switch {
	case c.id == nil:
		return nil, fmt.Errorf("%w: no %s column", ErrBadInput, schemas.ColEventID)
	case c.model == nil:
		return nil, fmt.Errorf("%w: no %s column", ErrBadInput, schemas.ColModel)
	case c.time == nil:
		return nil, fmt.Errorf("%w: no %s column", ErrBadInput, schemas.ColEventTime)
	}
	return c, nil
}

// rawRow holds the array columns of one row; reused from row to row (the
// driver copies what it is given).
type rawRow struct {
	numNames, strNames, strVals, flagNames, nullNames, probaClasses, segKeys, segVals []string
	numVals, probaVals                                                                []float64
	flagVals                                                                          []uint8
}

func (r *rawRow) reset() {
	r.numNames, r.strNames, r.strVals, r.flagNames = r.numNames[:0], r.strNames[:0], r.strVals[:0], r.flagNames[:0]
	r.nullNames, r.probaClasses, r.segKeys, r.segVals = r.nullNames[:0], r.probaClasses[:0], r.segKeys[:0], r.segVals[:0]
	r.numVals, r.probaVals, r.flagVals = r.numVals[:0], r.probaVals[:0], r.flagVals[:0]
}

func (r *rawRow) fill(c *rawColumns, i int) {
	r.reset()
	for _, f := range c.num {
		if f.a.IsNull(i) {
			r.nullNames = append(r.nullNames, f.name)
			continue
		}
		r.numNames, r.numVals = append(r.numNames, f.name), append(r.numVals, f.a.Value(i))
	}
	for _, f := range c.str {
		if f.a.IsNull(i) {
			r.nullNames = append(r.nullNames, f.name)
			continue
		}
		r.strNames, r.strVals = append(r.strNames, f.name), append(r.strVals, f.a.Value(i))
	}
	for _, f := range c.flag {
		if f.a.IsNull(i) {
			r.nullNames = append(r.nullNames, f.name)
			continue
		}
		r.flagNames, r.flagVals = append(r.flagNames, f.name), append(r.flagVals, boolByte(f.a.Value(i)))
	}
	for _, p := range c.proba {
		if !p.a.IsNull(i) {
			r.probaClasses, r.probaVals = append(r.probaClasses, p.name), append(r.probaVals, p.a.Value(i))
		}
	}
	for _, s := range c.seg {
		if !s.a.IsNull(i) {
			r.segKeys, r.segVals = append(r.segKeys, s.name), append(r.segVals, s.a.Value(i))
		}
	}
}

func optFloat(a *array.Float64, i int) *float64 {
	if a == nil || a.IsNull(i) {
		return nil
	}
	v := a.Value(i)
	return &v
}

func optString(a *array.String, i int) *string {
	if a == nil || a.IsNull(i) {
		return nil
	}
	v := a.Value(i)
	return &v
}

func stringAt(a *array.String, i int) string {
	if a == nil || a.IsNull(i) {
		return ""
	}
	return a.Value(i)
}

// rawTable holds the columns of vigil_events for a whole insert. Appending
// whole columns (Batch.Column(i).Append) skips the driver's per-row
// reflection, which dominated the processor's CPU time.
type rawTable struct {
	ids, models, versions                                                    []string
	times, ingested                                                          []time.Time
	numNames, strNames, strVals, flagNames, nullNames, probaClasses, segKeys [][]string
	segVals                                                                  [][]string
	numVals, probaVals                                                       [][]float64
	flagVals                                                                 [][]uint8
	scores, values, latencies                                                []*float64
	labels                                                                   []*string
	topics                                                                   []string
	partitions                                                               []uint32
	offsets                                                                  []int64
}

func newRawTable(n int) *rawTable {
	return &rawTable{
		ids: make([]string, 0, n), models: make([]string, 0, n), versions: make([]string, 0, n),
		times: make([]time.Time, 0, n), ingested: make([]time.Time, 0, n),
		numNames: make([][]string, 0, n), numVals: make([][]float64, 0, n),
		strNames: make([][]string, 0, n), strVals: make([][]string, 0, n),
		flagNames: make([][]string, 0, n), flagVals: make([][]uint8, 0, n), nullNames: make([][]string, 0, n),
		scores: make([]*float64, 0, n), labels: make([]*string, 0, n), values: make([]*float64, 0, n),
		probaClasses: make([][]string, 0, n), probaVals: make([][]float64, 0, n), latencies: make([]*float64, 0, n),
		segKeys: make([][]string, 0, n), segVals: make([][]string, 0, n),
		topics: make([]string, 0, n), partitions: make([]uint32, 0, n), offsets: make([]int64, 0, n),
	}
}

// add appends row i of a classified record. The row's slices are copied
// out of r, which the caller reuses.
func (t *rawTable) add(c *rawColumns, i int, r *rawRow, topic string, partition uint32, off int64, now time.Time) {
	r.fill(c, i)
	t.ids = append(t.ids, c.id.Value(i))
	t.models = append(t.models, stringAt(c.model, i))
	t.versions = append(t.versions, stringAt(c.version, i))
	t.times = append(t.times, c.time.Value(i).ToTime(c.timeUnit).UTC())
	t.numNames = append(t.numNames, clone(r.numNames))
	t.numVals = append(t.numVals, clone(r.numVals))
	t.strNames = append(t.strNames, clone(r.strNames))
	t.strVals = append(t.strVals, clone(r.strVals))
	t.flagNames = append(t.flagNames, clone(r.flagNames))
	t.flagVals = append(t.flagVals, clone(r.flagVals))
	t.nullNames = append(t.nullNames, clone(r.nullNames))
	t.scores = append(t.scores, optFloat(c.score, i))
	t.labels = append(t.labels, optString(c.label, i))
	t.values = append(t.values, optFloat(c.value, i))
	t.probaClasses = append(t.probaClasses, clone(r.probaClasses))
	t.probaVals = append(t.probaVals, clone(r.probaVals))
	t.latencies = append(t.latencies, optFloat(c.latency, i))
	t.segKeys = append(t.segKeys, clone(r.segKeys))
	t.segVals = append(t.segVals, clone(r.segVals))
	t.topics = append(t.topics, topic)
	t.partitions = append(t.partitions, partition)
	t.offsets = append(t.offsets, off)
	t.ingested = append(t.ingested, now)
}

// clone copies s, keeping an empty slice non-nil (an empty array, not NULL).
func clone[T any](s []T) []T { return append(make([]T, 0, len(s)), s...) }

// columns returns the column values in rawEventColumns order.
func (t *rawTable) columns() []any {
	return []any{
		t.ids, t.models, t.versions, t.times,
		t.numNames, t.numVals, t.strNames, t.strVals,
		t.flagNames, t.flagVals, t.nullNames,
		t.scores, t.labels, t.values, t.probaClasses, t.probaVals, t.latencies,
		t.segKeys, t.segVals, t.topics, t.partitions, t.offsets, t.ingested,
	}
}

// Raw-event INSERTs are built and sent in chunks of at most rawInsertRows
// rows, and at most rawInsertsInFlight of them at a time per Sink, because
// the driver's columns of one row take about 1.3 KB (20 features: a name
// array and a value array per kind), 5 times its Arrow form: a catch-up
// that checkpoints 100k events in each of 8 partitions at once used to
// build 800k such rows, over 1 GB. Now the INSERTs of a Sink hold at most
// rawInsertsInFlight*rawInsertRows rows: about 40 MB. A chunk that fails is
// retried with the whole checkpoint; rows already inserted replace
// themselves (vigil_events is a ReplacingMergeTree by event id).
const (
	rawInsertRows      = 4096
	rawInsertsInFlight = 2
)

// rawEvents inserts every row of every batch, in INSERTs of at most
// rawInsertRows rows, and returns the row count.
func (w *writer) rawEvents(ctx context.Context, raw []pipeline.RawBatch, now time.Time) (int, error) {
	cols := make([]*rawColumns, len(raw))
	n := 0
	for i := range raw {
		rb := &raw[i]
		if rb.Record == nil {
			continue
		}
		rows := int(rb.Record.NumRows())
		if rb.Offsets != nil && len(rb.Offsets) != rows {
			return 0, fmt.Errorf("checkpoint %s: raw batch at offset %d: %w: %d offsets for %d rows", w.src, rb.Offset, ErrBadInput, len(rb.Offsets), rows)
		}
		c, err := classify(rb.Record)
		if err != nil {
			return 0, fmt.Errorf("checkpoint %s: raw batch at offset %d: %w", w.src, rb.Offset, err)
		}
		cols[i] = c
		n += rows
	}
	if n == 0 {
		return 0, nil
	}
	var (
		t    *rawTable
		r    rawRow
		sent int
	)
	// A chunk takes its place among the INSERTs in flight before it is
	// built: the memory it bounds is the built table's.
	flush := func() error {
		if t == nil {
			return nil
		}
		err := w.sendRaw(ctx, t)
		w.releaseRaw()
		sent += len(t.ids)
		t = nil
		return err
	}
	defer func() {
		if t != nil {
			w.releaseRaw()
		}
	}()
	for bi := range raw {
		c, rb := cols[bi], &raw[bi]
		if c == nil {
			continue
		}
		for i := 0; i < int(rb.Record.NumRows()); i++ {
			if t == nil {
				if err := w.acquireRaw(ctx); err != nil {
					return 0, err
				}
				t = newRawTable(min(rawInsertRows, n-sent))
			}
			off := rb.Offset
			if rb.Offsets != nil {
				off = rb.Offsets[i]
			}
			t.add(c, i, &r, w.src.Topic, w.partition(), off, now)
			if len(t.ids) == rawInsertRows {
				if err := flush(); err != nil {
					return 0, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return n, nil
}

// acquireRaw takes a place among the Sink's raw-event INSERTs in flight.
func (w *writer) acquireRaw(ctx context.Context) error {
	if w.rawInserts == nil {
		return nil
	}
	select {
	case w.rawInserts <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("checkpoint %s: wait to insert into %s.%s: %w", w.src, w.db, ddl.TableEvents, ctx.Err())
	}
}

func (w *writer) releaseRaw() {
	if w.rawInserts != nil {
		<-w.rawInserts
	}
}

// sendRaw sends one INSERT of t's rows into vigil_events.
func (w *writer) sendRaw(ctx context.Context, t *rawTable) error {
	query := fmt.Sprintf("INSERT INTO %s.%s (%s)", w.db, ddl.TableEvents, strings.Join(rawEventColumns, ", "))
	b, err := w.conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("checkpoint %s: prepare insert into %s.%s: %w", w.src, w.db, ddl.TableEvents, err)
	}
	defer b.Close()
	for i, col := range t.columns() {
		if err := b.Column(i).Append(col); err != nil {
			_ = b.Abort()
			return fmt.Errorf("checkpoint %s: append column %s of %s.%s: %w", w.src, rawEventColumns[i], w.db, ddl.TableEvents, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("checkpoint %s: insert %d rows into %s.%s: %w", w.src, len(t.ids), w.db, ddl.TableEvents, err)
	}
	return nil
}
