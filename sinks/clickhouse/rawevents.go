package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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
	// the values of latency, score and value (see intern)
	latencyVals, scoreVals, valueVals []float64
	label                             *array.String
	proba                             []named[*array.Float64]
	num                               []named[*array.Float64]
	str                               []named[*array.String]
	flag                              []named[*array.Boolean]
	seg                               []named[*array.String]
}

type named[A any] struct {
	name string
	a    A
	ref  *string   // the interned name (see intern)
	vals []float64 // the values of a float64 column (see intern)
}

// intern points every column's ref at the one copy of its name in names
// (adding it), and sets the vals of the float64 columns.
func (c *rawColumns) intern(names map[string]*string) {
	ref := func(name string) *string {
		p, ok := names[name]
		if !ok {
			p = &name
			names[name] = p
		}
		return p
	}
	floats := func(a *array.Float64) []float64 {
		if a == nil {
			return nil
		}
		return a.Float64Values()
	}
	c.latencyVals, c.scoreVals, c.valueVals = floats(c.latency), floats(c.score), floats(c.value)
	for k := range c.num {
		c.num[k].ref, c.num[k].vals = ref(c.num[k].name), floats(c.num[k].a)
	}
	for k := range c.proba {
		c.proba[k].ref, c.proba[k].vals = ref(c.proba[k].name), floats(c.proba[k].a)
	}
	for k := range c.str {
		c.str[k].ref = ref(c.str[k].name)
	}
	for k := range c.flag {
		c.flag[k].ref = ref(c.flag[k].name)
	}
	for k := range c.seg {
		c.seg[k].ref = ref(c.seg[k].name)
	}
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
				c.proba = append(c.proba, named[*array.Float64]{name: class, a: a})
			} else if feat, is := schemas.FeatureName(name); is {
				switch a := col.(type) {
				case *array.Float64:
					c.num = append(c.num, named[*array.Float64]{name: feat, a: a})
				case *array.String:
					c.str = append(c.str, named[*array.String]{name: feat, a: a})
				case *array.Boolean:
					c.flag = append(c.flag, named[*array.Boolean]{name: feat, a: a})
				case *array.FixedSizeList:
					// Vector features (embeddings) are not kept in the raw
					// events: only their window statistics (docs/DRIFT.md).
				default:
					ok = false
				}
			} else if key, is := schemas.SegmentKey(name); is {
				a, isS := col.(*array.String)
				ok = isS
				c.seg = append(c.seg, named[*array.String]{name: key, a: a})
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

// The driver's columns take values one at a time through an interface
// (column.Interface.AppendRow): a string or a float64 put into an
// interface is a heap allocation, and the driver's reflection over a
// [][]string column costs more still (it was 60% of the processor's CPU).
// So each row's arrays are appended with AppendRow of typed slices of
// pointers ([]*string, []*float64, []*uint8), which the driver takes
// without reflection and whose elements fit in an interface without
// allocating; whole scalar columns are appended as typed slices.
//
// A pointer identifies its value for the whole INSERT: on servers with
// LowCardinality columns the driver keys its dictionary on the interface
// value, here the pointer. Names are interned (one pointer per distinct
// name), float64 values point into the Arrow buffers, strings into an
// arena that is only appended to while the INSERT is built, booleans to
// the two entries of boolBytes.

var boolBytes = [2]uint8{0, 1}

// rawRow holds the array columns of one row; reused from row to row (the
// driver copies what it is given).
type rawRow struct {
	numNames, strNames, strVals, flagNames, nullNames, probaClasses, segKeys, segVals []*string
	numVals, probaVals                                                                []*float64
	flagVals                                                                          []*uint8
}

func (r *rawRow) reset() {
	r.numNames, r.strNames, r.strVals, r.flagNames = r.numNames[:0], r.strNames[:0], r.strVals[:0], r.flagNames[:0]
	r.nullNames, r.probaClasses, r.segKeys, r.segVals = r.nullNames[:0], r.probaClasses[:0], r.segKeys[:0], r.segVals[:0]
	r.numVals, r.probaVals, r.flagVals = r.numVals[:0], r.probaVals[:0], r.flagVals[:0]
}

// fill sets r to row i of c; string values are appended to arena (see
// above), whose new extent it returns.
func (r *rawRow) fill(c *rawColumns, i int, arena []string) []string {
	r.reset()
	for k := range c.num {
		f := &c.num[k]
		if f.a.IsNull(i) {
			r.nullNames = append(r.nullNames, f.ref)
			continue
		}
		r.numNames, r.numVals = append(r.numNames, f.ref), append(r.numVals, &f.vals[i])
	}
	for k := range c.str {
		f := &c.str[k]
		if f.a.IsNull(i) {
			r.nullNames = append(r.nullNames, f.ref)
			continue
		}
		arena = append(arena, f.a.Value(i))
		r.strNames, r.strVals = append(r.strNames, f.ref), append(r.strVals, &arena[len(arena)-1])
	}
	for k := range c.flag {
		f := &c.flag[k]
		if f.a.IsNull(i) {
			r.nullNames = append(r.nullNames, f.ref)
			continue
		}
		r.flagNames, r.flagVals = append(r.flagNames, f.ref), append(r.flagVals, &boolBytes[boolByte(f.a.Value(i))])
	}
	for k := range c.proba {
		p := &c.proba[k]
		if !p.a.IsNull(i) {
			r.probaClasses, r.probaVals = append(r.probaClasses, p.ref), append(r.probaVals, &p.vals[i])
		}
	}
	for k := range c.seg {
		s := &c.seg[k]
		if !s.a.IsNull(i) {
			arena = append(arena, s.a.Value(i))
			r.segKeys, r.segVals = append(r.segKeys, s.ref), append(r.segVals, &arena[len(arena)-1])
		}
	}
	return arena
}

func stringAt(a *array.String, i int) string {
	if a == nil || a.IsNull(i) {
		return ""
	}
	return a.Value(i)
}

// rawInsert is the scratch of one raw-event INSERT: the scalar columns of
// its rows and the string arena. Reused through rawInserts (a sync.Pool),
// so a steady stream of checkpoints allocates little besides the driver's
// own columns.
type rawInsert struct {
	ids, models, versions     []string
	times, ingested           []time.Time
	scores, values, latencies []*float64
	labels                    []*string
	topics                    []string
	partitions                []uint32
	offsets                   []int64
	arena                     []string
	row                       rawRow
}

var rawInsertPool = sync.Pool{New: func() any { return new(rawInsert) }}

func (t *rawInsert) reset() {
	t.ids, t.models, t.versions = t.ids[:0], t.models[:0], t.versions[:0]
	t.times, t.ingested = t.times[:0], t.ingested[:0]
	t.scores, t.values, t.latencies, t.labels = t.scores[:0], t.values[:0], t.latencies[:0], t.labels[:0]
	t.topics, t.partitions, t.offsets = t.topics[:0], t.partitions[:0], t.offsets[:0]
	clear(t.arena) // let the strings go
	t.arena = t.arena[:0]
}

// addScalars appends the scalar columns of row i of c.
func (t *rawInsert) addScalars(c *rawColumns, i int, topic string, partition uint32, off int64, now time.Time) {
	t.ids = append(t.ids, c.id.Value(i))
	t.models = append(t.models, stringAt(c.model, i))
	t.versions = append(t.versions, stringAt(c.version, i))
	t.times = append(t.times, c.time.Value(i).ToTime(c.timeUnit).UTC())
	t.scores = append(t.scores, floatRef(c.score, c.scoreVals, i))
	t.values = append(t.values, floatRef(c.value, c.valueVals, i))
	t.latencies = append(t.latencies, floatRef(c.latency, c.latencyVals, i))
	var label *string
	if c.label != nil && !c.label.IsNull(i) {
		t.arena = append(t.arena, c.label.Value(i))
		label = &t.arena[len(t.arena)-1]
	}
	t.labels = append(t.labels, label)
	t.topics = append(t.topics, topic)
	t.partitions = append(t.partitions, partition)
	t.offsets = append(t.offsets, off)
	t.ingested = append(t.ingested, now)
}

// floatRef points at value i of a (whose values are vals), nil when a is
// absent or the value null.
func floatRef(a *array.Float64, vals []float64, i int) *float64 {
	if a == nil || a.IsNull(i) {
		return nil
	}
	return &vals[i]
}

// Raw-event rows are sent in blocks of at most rawInsertRows rows, and at
// most rawInsertsInFlight INSERTs (lanes) are built at a time per Sink,
// because the driver's columns of one row take about 1.3 KB (20 features:
// a name array and a value array per kind), 5 times its Arrow form: a
// catch-up that checkpoints 100k events in each of 8 partitions at once
// used to build 800k such rows, over 1 GB. Now the INSERTs of a Sink hold
// at most rawInsertsInFlight*rawInsertRows rows: about 40 MB. A lane sends
// its blocks one after the other in one INSERT, reusing the driver's
// column buffers from block to block; a checkpoint of more than one block
// takes a second lane when one is free. A checkpoint whose INSERT fails is
// retried whole; rows already inserted replace themselves (vigil_events is
// a ReplacingMergeTree by event id).
const (
	rawInsertRows      = 4096
	rawInsertsInFlight = 2
)

// rawEvents inserts every row of every batch and returns the row count.
// It returns when every lane's INSERT is done.
func (w *writer) rawEvents(ctx context.Context, raw []pipeline.RawBatch, now time.Time) (int, error) {
	cols := make([]*rawColumns, len(raw))
	names := map[string]*string{}
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
		c.intern(names)
		cols[i] = c
		n += rows
	}
	if n == 0 {
		return 0, nil
	}
	blocks := rawBlocks(raw, cols)
	// The first lane waits for its place; more lanes only take free places.
	if err := w.acquireRaw(ctx); err != nil {
		return 0, err
	}
	lanes := 1
	for lanes < len(blocks) && w.tryAcquireRaw() {
		lanes++
	}
	var (
		next atomic.Int64 // index of the next block to build
		wg   sync.WaitGroup
		errs = make([]error, lanes)
	)
	for l := 0; l < lanes; l++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.releaseRaw()
			errs[l] = w.sendRaw(ctx, blocks, &next, now)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return n, nil
}

// rawSpan is rows [from, to) of one raw batch.
type rawSpan struct {
	c        *rawColumns
	rb       *pipeline.RawBatch
	from, to int
}

// rawBlocks splits the rows of raw into blocks of at most rawInsertRows.
func rawBlocks(raw []pipeline.RawBatch, cols []*rawColumns) [][]rawSpan {
	var (
		blocks [][]rawSpan
		cur    []rawSpan
		rows   int
	)
	for bi := range raw {
		c := cols[bi]
		if c == nil {
			continue
		}
		total := int(raw[bi].Record.NumRows())
		for from := 0; from < total; {
			to := min(total, from+rawInsertRows-rows)
			cur = append(cur, rawSpan{c: c, rb: &raw[bi], from: from, to: to})
			rows += to - from
			from = to
			if rows == rawInsertRows {
				blocks, cur, rows = append(blocks, cur), nil, 0
			}
		}
	}
	if rows > 0 {
		blocks = append(blocks, cur)
	}
	return blocks
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

// tryAcquireRaw takes a free place, if there is one; without a semaphore
// there is none (one lane).
func (w *writer) tryAcquireRaw() bool {
	if w.rawInserts == nil {
		return false
	}
	select {
	case w.rawInserts <- struct{}{}:
		return true
	default:
		return false
	}
}

func (w *writer) releaseRaw() {
	if w.rawInserts != nil {
		<-w.rawInserts
	}
}

// Columns of vigil_events appended row by row (the arrays), by index in
// rawEventColumns; the others are appended whole.
var rawArrayColumns = [...]int{4, 5, 6, 7, 8, 9, 10, 14, 15, 17, 18}

// sendRaw runs one INSERT into vigil_events (a lane): it takes the next
// block of blocks (next counts them out among the lanes) until none is
// left, builds it and sends it, then ends the INSERT.
func (w *writer) sendRaw(ctx context.Context, blocks [][]rawSpan, next *atomic.Int64, now time.Time) error {
	query := fmt.Sprintf("INSERT INTO %s.%s (%s)", w.db, ddl.TableEvents, strings.Join(rawEventColumns, ", "))
	b, err := w.conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("checkpoint %s: prepare insert into %s.%s: %w", w.src, w.db, ddl.TableEvents, err)
	}
	defer b.Close()
	t := rawInsertPool.Get().(*rawInsert)
	defer func() {
		t.reset()
		t.row.reset()
		rawInsertPool.Put(t)
	}()
	var arrays [len(rawArrayColumns)]driver.BatchColumn
	for k, i := range rawArrayColumns {
		arrays[k] = b.Column(i)
	}
	appendErr := func(col int, err error) error {
		_ = b.Abort()
		return fmt.Errorf("checkpoint %s: append column %s of %s.%s: %w", w.src, rawEventColumns[col], w.db, ddl.TableEvents, err)
	}
	sent := 0
	for {
		bi := int(next.Add(1) - 1)
		if bi >= len(blocks) {
			break
		}
		r := &t.row
		for _, sp := range blocks[bi] {
			for i := sp.from; i < sp.to; i++ {
				off := sp.rb.Offset
				if sp.rb.Offsets != nil {
					off = sp.rb.Offsets[i]
				}
				t.addScalars(sp.c, i, w.src.Topic, w.partition(), off, now)
				t.arena = r.fill(sp.c, i, t.arena)
				row := [len(rawArrayColumns)]any{r.numNames, r.numVals, r.strNames, r.strVals, r.flagNames, r.flagVals, r.nullNames,
					r.probaClasses, r.probaVals, r.segKeys, r.segVals}
				for k, v := range row {
					if err := arrays[k].AppendRow(v); err != nil {
						return appendErr(rawArrayColumns[k], err)
					}
				}
			}
		}
		scalars := [...]struct {
			i   int
			col any
		}{
			{0, t.ids}, {1, t.models}, {2, t.versions}, {3, t.times},
			{11, t.scores}, {12, t.labels}, {13, t.values}, {16, t.latencies},
			{19, t.topics}, {20, t.partitions}, {21, t.offsets}, {22, t.ingested},
		}
		for _, s := range scalars {
			if err := b.Column(s.i).Append(s.col); err != nil {
				return appendErr(s.i, err)
			}
		}
		// Flush sends the block within the INSERT and keeps the driver's
		// column buffers; the INSERT is durable once Send returns.
		if err := b.Flush(); err != nil {
			_ = b.Abort()
			return fmt.Errorf("checkpoint %s: send %d rows to %s.%s: %w", w.src, len(t.ids), w.db, ddl.TableEvents, err)
		}
		sent += len(t.ids)
		t.reset() // the driver copied the block; the arena's pointers may go
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("checkpoint %s: insert %d rows into %s.%s: %w", w.src, sent, w.db, ddl.TableEvents, err)
	}
	return nil
}
