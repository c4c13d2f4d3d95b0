package wire

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/vigil-ml/vigil/schemas"
)

// MetaTypeMismatchPrefix starts the schema metadata key that counts, per
// feature, the values stored as null because their kind differed from the
// kind of the feature's column: "vigil.type_mismatch.<feature>" = decimal count.
const MetaTypeMismatchPrefix = "vigil.type_mismatch."

// BatchBuilder accumulates events of one model and builds an arrow.Record in
// the layout of schemas/arrow.go: the fixed columns, then proba.<class>,
// f.<feature> and s.<segment> columns, each group sorted by name.
//
// Columns appear as events bring them: a feature first seen at row 5 is null
// in rows 0..4, and a feature absent from an event is null in that row. The
// first non-null value of a feature in a batch fixes its column's kind; a
// later value of another kind is stored as null and counted (see
// TypeMismatches). A feature only ever null is an all-null float64 column. A
// name repeated within one event keeps its first value. A Vector feature is
// a fixed_size_list<float64> column whose length is that of the batch's
// first vector; a vector of another length is stored as null and counted
// as a type mismatch too, under the name its window state counts them
// (VectorMismatchName).
//
// The builder keeps its columns, and the map from name to column, across
// records, and reserves each column's capacity from the previous record.
// It is not safe for concurrent use.
type BatchBuilder struct {
	mem   memory.Allocator
	model string
	rows  int
	last  int    // rows of the previous record, to reserve capacity
	lastB [4]int // string bytes of the previous record, per fixed string column

	eventID      *array.StringBuilder
	modelCol     *array.StringBuilder
	modelVersion *array.StringBuilder
	eventTime    *array.TimestampBuilder
	latency      *array.Float64Builder
	predScore    *array.Float64Builder
	predLabel    *array.StringBuilder
	predValue    *array.Float64Builder

	probas, features, segments columnGroup
}

// column is one dynamic column (proba.*, f.* or s.*).
type column struct {
	name  string // class, feature or segment name
	field string // column name, with prefix
	kind  schemas.Kind
	rows  int    // rows appended in the current batch, values and nulls
	used  bool   // appeared in the current batch
	batch uint64 // the last record it was in
	last  int    // rows in the previous record it was in
	lastB int    // string bytes in the previous record it was in

	mismatches int64

	f64 *array.Float64Builder
	str *array.StringBuilder
	bl  *array.BooleanBuilder
	vec *array.FixedSizeListBuilder // Vector, of length dim
	dim int
	vf  *array.Float64Builder // vec's items
}

// columnGroup is the set of columns under one prefix.
type columnGroup struct {
	prefix string
	byName map[string]*column
	active []*column // used in the current batch
	hints  []*column // column of the i-th name of the previous event
	batch  uint64    // records built so far
}

// maxIdleColumns bounds the columns a group keeps beyond those in use.
const maxIdleColumns = 1024

// NewBatchBuilder returns an empty builder that allocates from mem.
func NewBatchBuilder(mem memory.Allocator) *BatchBuilder {
	b := &BatchBuilder{
		mem:          mem,
		eventID:      array.NewStringBuilder(mem),
		modelCol:     array.NewStringBuilder(mem),
		modelVersion: array.NewStringBuilder(mem),
		eventTime:    array.NewTimestampBuilder(mem, schemas.EventTimeType),
		latency:      array.NewFloat64Builder(mem),
		predScore:    array.NewFloat64Builder(mem),
		predLabel:    array.NewStringBuilder(mem),
		predValue:    array.NewFloat64Builder(mem),
	}
	b.probas = columnGroup{prefix: schemas.PrefixProba, byName: map[string]*column{}}
	b.features = columnGroup{prefix: schemas.PrefixFeature, byName: map[string]*column{}}
	b.segments = columnGroup{prefix: schemas.PrefixSegment, byName: map[string]*column{}}
	return b
}

// Len returns the number of events in the current batch.
func (b *BatchBuilder) Len() int { return b.rows }

// Model returns the model of the current batch ("" while it is empty).
func (b *BatchBuilder) Model() string { return b.model }

// Append adds e as the next row. It rejects, with an error wrapping
// ErrMalformed, an event that fails e.Validate() or whose model differs from
// the batch's. It copies what it needs from e and keeps no reference to e's
// slices.
func (b *BatchBuilder) Append(e *schemas.Event) error {
	if b.rows > 0 && e.Model != b.model {
		return malformed("model %q in a batch of model %q", e.Model, b.model)
	}
	if err := e.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if b.rows == 0 {
		b.model = e.Model
		b.reserveFixed()
	}
	r := b.rows

	appendStr(b.eventID, e.ID)
	appendStr(b.modelCol, e.Model)
	appendStr(b.modelVersion, e.ModelVersion)
	b.eventTime.Append(arrow.Timestamp(e.Time.UnixMilli()))
	if e.Latency != 0 {
		b.latency.Append(float64(e.Latency) / 1e6)
	} else {
		b.latency.AppendNull()
	}
	p := &e.Prediction
	appendOptFloat(b.predScore, p.Score, p.HasScore)
	if p.Label != "" {
		appendStr(b.predLabel, p.Label)
	} else {
		b.predLabel.AppendNull()
	}
	appendOptFloat(b.predValue, p.Value, p.HasValue)

	for i := range p.Probabilities {
		cp := &p.Probabilities[i]
		c := b.probas.column(b.mem, i, cp.Class, r)
		if c.rows > r {
			continue // class repeated in this event
		}
		if c.kind == schemas.Null {
			c.setKind(b.mem, schemas.Number)
		}
		c.fillNulls(r)
		c.f64.Append(cp.P)
		c.rows++
	}
	for i := range e.Features {
		f := &e.Features[i]
		c := b.features.column(b.mem, i, f.Name, r)
		if c.rows > r || f.Value.Kind == schemas.Null {
			continue // repeated in this event, or null: filled in later
		}
		if c.kind == schemas.Null {
			c.setKind(b.mem, f.Value.Kind)
			if f.Value.Kind == schemas.Vector {
				c.setDim(b.mem, len(f.Value.Vec))
			}
		} else if c.kind != f.Value.Kind || (c.kind == schemas.Vector && len(f.Value.Vec) != c.dim) {
			c.mismatches++
			continue
		}
		c.fillNulls(r)
		switch f.Value.Kind {
		case schemas.Number:
			c.f64.Append(f.Value.Num)
		case schemas.String:
			appendStr(c.str, f.Value.Str)
		case schemas.Bool:
			c.bl.Append(f.Value.Bool)
		case schemas.Vector:
			c.vec.Append(true)
			c.vf.AppendValues(f.Value.Vec, nil)
		}
		c.rows++
	}
	for i := range e.Segments {
		t := &e.Segments[i]
		c := b.segments.column(b.mem, i, t.Key, r)
		if c.rows > r {
			continue
		}
		if c.kind == schemas.Null {
			c.setKind(b.mem, schemas.String)
		}
		c.fillNulls(r)
		appendStr(c.str, t.Value)
		c.rows++
	}
	b.rows++
	return nil
}

// NewRecord returns the record of the events appended since the last call
// and resets the builder for the next batch. The caller must Release it.
func (b *BatchBuilder) NewRecord() arrow.Record {
	rows := b.rows
	for i, sb := range b.fixedStrings() {
		b.lastB[i] = sb.DataLen()
	}
	cols := make([]arrow.Array, 0, len(schemas.FixedFields)+len(b.probas.active)+len(b.features.active)+len(b.segments.active))
	cols = append(cols,
		b.eventID.NewArray(), b.modelCol.NewArray(), b.modelVersion.NewArray(), b.eventTime.NewArray(),
		b.latency.NewArray(), b.predScore.NewArray(), b.predLabel.NewArray(), b.predValue.NewArray())

	fields := make([]arrow.Field, 0, cap(cols))
	fields = append(fields, schemas.FixedFields...)
	mdKeys := []string{schemas.MetaSchemaVersion}
	mdValues := []string{strconv.Itoa(schemas.SchemaVersion)}
	for _, g := range [...]*columnGroup{&b.probas, &b.features, &b.segments} {
		slices.SortFunc(g.active, func(x, y *column) int { return strings.Compare(x.name, y.name) })
		for _, c := range g.active {
			if c.kind == schemas.Null {
				c.setKind(b.mem, schemas.Number) // only ever null
			}
			c.fillNulls(rows)
			var arr arrow.Array
			switch c.kind {
			case schemas.Number:
				arr = c.f64.NewArray()
			case schemas.String:
				c.lastB = c.str.DataLen()
				arr = c.str.NewArray()
			case schemas.Bool:
				arr = c.bl.NewArray()
			case schemas.Vector:
				arr = c.vec.NewArray()
			}
			cols = append(cols, arr)
			fields = append(fields, arrow.Field{Name: c.field, Type: arr.DataType(), Nullable: true})
			if c.mismatches > 0 {
				name := c.name
				if c.kind == schemas.Vector {
					name = VectorMismatchName(name)
				}
				mdKeys = append(mdKeys, MetaTypeMismatchPrefix+name)
				mdValues = append(mdValues, strconv.FormatInt(c.mismatches, 10))
			}
			c.last, c.rows, c.used, c.kind, c.mismatches, c.batch = rows, 0, false, schemas.Null, 0, g.batch
		}
		g.active = g.active[:0]
		g.evictIdle()
	}
	md := arrow.NewMetadata(mdKeys, mdValues)
	rec := array.NewRecord(arrow.NewSchema(fields, &md), cols, int64(rows))
	for _, c := range cols {
		c.Release()
	}
	b.last, b.rows, b.model = rows, 0, ""
	return rec
}

// TypeMismatches returns, per feature, how many values a record stored as
// null because their kind differed from the column's (nil when none). It
// reads the schema metadata BatchBuilder writes, so it survives Arrow IPC.
func TypeMismatches(s *arrow.Schema) map[string]int64 {
	var m map[string]int64
	md := s.Metadata()
	for i, k := range md.Keys() {
		name, ok := strings.CutPrefix(k, MetaTypeMismatchPrefix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(md.Values()[i], 10, 64)
		if err != nil || n <= 0 {
			continue
		}
		if m == nil {
			m = make(map[string]int64)
		}
		m[name] += n
	}
	return m
}

func (b *BatchBuilder) fixedStrings() [4]*array.StringBuilder {
	return [...]*array.StringBuilder{b.eventID, b.modelCol, b.modelVersion, b.predLabel}
}

func (b *BatchBuilder) reserveFixed() {
	if b.last == 0 {
		return
	}
	for i, sb := range b.fixedStrings() {
		sb.Reserve(b.last)
		sb.ReserveData(b.lastB[i])
	}
	for _, fb := range [...]*array.Float64Builder{b.latency, b.predScore, b.predValue} {
		fb.Reserve(b.last)
	}
	b.eventTime.Reserve(b.last)
}

// column returns the column of name for the i-th name of an event at row r,
// marking it used in the current batch.
func (g *columnGroup) column(mem memory.Allocator, i int, name string, r int) *column {
	var c *column
	if i < len(g.hints) && g.hints[i].name == name {
		c = g.hints[i]
	} else {
		c = g.byName[name]
		if c == nil {
			c = &column{name: name, field: g.prefix + name}
			g.byName[name] = c
		}
		if i < len(g.hints) {
			g.hints[i] = c
		} else {
			g.hints = append(g.hints, c)
		}
	}
	if !c.used {
		c.used = true
		c.rows = 0
		g.active = append(g.active, c)
	}
	return c
}

// evictIdle drops, once the group holds many columns, those that were not
// in the record just built, so that ever-new names cannot grow it forever.
func (g *columnGroup) evictIdle() {
	if len(g.byName) > maxIdleColumns {
		for name, c := range g.byName {
			if c.batch != g.batch {
				delete(g.byName, name)
			}
		}
		g.hints = g.hints[:0]
	}
	g.batch++
}

// setKind fixes the column's kind for the current batch, creating its
// builder on first use and reserving the previous record's capacity.
func (c *column) setKind(mem memory.Allocator, k schemas.Kind) {
	c.kind = k
	switch k {
	case schemas.Number:
		if c.f64 == nil {
			c.f64 = array.NewFloat64Builder(mem)
		}
		c.f64.Reserve(c.last)
	case schemas.String:
		if c.str == nil {
			c.str = array.NewStringBuilder(mem)
		}
		c.str.Reserve(c.last)
		c.str.ReserveData(c.lastB)
	case schemas.Bool:
		if c.bl == nil {
			c.bl = array.NewBooleanBuilder(mem)
		}
		c.bl.Reserve(c.last)
	}
}

// setDim sets a Vector column's length for the current batch, creating its
// builder when the length differs from the last batch's.
func (c *column) setDim(mem memory.Allocator, dim int) {
	if c.vec == nil || c.dim != dim {
		if c.vec != nil {
			c.vec.Release()
		}
		c.vec = array.NewFixedSizeListBuilder(mem, int32(dim), arrow.PrimitiveTypes.Float64)
		c.vf = c.vec.ValueBuilder().(*array.Float64Builder)
		c.dim = dim
	}
	c.vec.Reserve(c.last)
	c.vf.Reserve(c.last * dim)
}

// VectorMismatchName is the feature under which the window state counts the
// type mismatches of vector feature name: its header feature (see
// processors/stats, "__embedding.<name>").
func VectorMismatchName(name string) string { return schemas.VectorHeaderPrefix + name }

// fillNulls appends nulls up to row r (exclusive).
func (c *column) fillNulls(r int) {
	n := r - c.rows
	if n <= 0 {
		return
	}
	switch c.kind {
	case schemas.Number:
		c.f64.AppendNulls(n)
	case schemas.String:
		c.str.AppendNulls(n)
	case schemas.Bool:
		c.bl.AppendNulls(n)
	case schemas.Vector:
		// Null rows get zero items (not null ones): the items column has no
		// nulls, only the list's validity says which rows are missing.
		for range n {
			c.vec.Append(false)
		}
		c.vf.AppendEmptyValues(n * c.dim)
	}
	c.rows = r
}

func appendOptFloat(fb *array.Float64Builder, v float64, ok bool) {
	if ok {
		fb.Append(v)
	} else {
		fb.AppendNull()
	}
}

// appendStr appends s without the []byte conversion StringBuilder.Append
// makes (the builder only copies the bytes).
func appendStr(sb *array.StringBuilder, s string) {
	sb.BinaryBuilder.Append(unsafe.Slice(unsafe.StringData(s), len(s)))
}
