package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

// The row-by-row build of the raw-event INSERT that rawevents.go replaced
// (it built [][]string columns, which the driver appends by reflection):
// the reference TestIntegrationRawEventsSameRows compares the column-wise
// INSERT with.

// refRow holds the array columns of one row; reused from row to row (the
// driver copies what it is given).
type refRow struct {
	numNames, strNames, strVals, flagNames, nullNames, probaClasses, segKeys, segVals []string
	numVals, probaVals                                                                []float64
	flagVals                                                                          []uint8
}

func (r *refRow) reset() {
	r.numNames, r.strNames, r.strVals, r.flagNames = r.numNames[:0], r.strNames[:0], r.strVals[:0], r.flagNames[:0]
	r.nullNames, r.probaClasses, r.segKeys, r.segVals = r.nullNames[:0], r.probaClasses[:0], r.segKeys[:0], r.segVals[:0]
	r.numVals, r.probaVals, r.flagVals = r.numVals[:0], r.probaVals[:0], r.flagVals[:0]
}

func (r *refRow) fill(c *rawColumns, i int) {
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

// refTable holds the columns of vigil_events for a whole insert. Appending
// whole columns (Batch.Column(i).Append) skips the driver's per-row
// reflection, which dominated the processor's CPU time.
type refTable struct {
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

func newRefTable(n int) *refTable {
	return &refTable{
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
func (t *refTable) add(c *rawColumns, i int, r *refRow, topic string, partition uint32, off int64, now time.Time) {
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
func (t *refTable) columns() []any {
	return []any{
		t.ids, t.models, t.versions, t.times,
		t.numNames, t.numVals, t.strNames, t.strVals,
		t.flagNames, t.flagVals, t.nullNames,
		t.scores, t.labels, t.values, t.probaClasses, t.probaVals, t.latencies,
		t.segKeys, t.segVals, t.topics, t.partitions, t.offsets, t.ingested,
	}
}

// rawEventsRef inserts the rows of raw as the old code did, in one INSERT.
func (w *writer) rawEventsRef(ctx context.Context, raw []pipeline.RawBatch, now time.Time) error {
	t := newRefTable(0)
	var r refRow
	for bi := range raw {
		rb := &raw[bi]
		if rb.Record == nil {
			continue
		}
		c, err := classify(rb.Record)
		if err != nil {
			return err
		}
		for i := 0; i < int(rb.Record.NumRows()); i++ {
			off := rb.Offset
			if rb.Offsets != nil {
				off = rb.Offsets[i]
			}
			t.add(c, i, &r, w.src.Topic, w.partition(), off, now)
		}
	}
	query := fmt.Sprintf("INSERT INTO %s.%s (%s)", w.db, ddl.TableEvents, strings.Join(rawEventColumns, ", "))
	b, err := w.conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	defer b.Close()
	for i, col := range t.columns() {
		if err := b.Column(i).Append(col); err != nil {
			return fmt.Errorf("append column %s: %w", rawEventColumns[i], err)
		}
	}
	return b.Send()
}
