package reference

import (
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/schemas"
)

// Names of the optional prediction columns of a reference file; they are
// summarised as schemas.PredictionScoreFeature, PredictionLabelFeature and
// PredictionValueFeature.
const (
	FilePredictionScore = "prediction_score"
	FilePredictionLabel = "prediction_label"
	FilePredictionValue = "prediction_value"
)

// DefaultBatchRows is the default of ReadOptions.BatchRows.
const DefaultBatchRows = 65536

// ReadOptions shape the file readers.
type ReadOptions struct {
	// Model and ModelVersion are written in the model columns of the records.
	Model, ModelVersion string
	// Kinds declares the kind of columns by name (as in the file). A
	// declared String column takes numbers and booleans as their text; a
	// declared Number or Bool column rejects other values. Undeclared CSV
	// columns are inferred from the whole file; undeclared JSON Lines
	// features take the kind of their first non-null value.
	Kinds map[string]schemas.Kind
	// Exclude lists columns (or JSON keys) not to read, such as ids and times.
	Exclude []string
	// BatchRows is the number of rows per record. Default DefaultBatchRows.
	BatchRows int
	// Mem allocates the records. Default memory.DefaultAllocator.
	Mem memory.Allocator
}

func (o ReadOptions) withDefaults() ReadOptions {
	if o.BatchRows <= 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.Mem == nil {
		o.Mem = memory.DefaultAllocator
	}
	return o
}

func (o ReadOptions) excluded(name string) bool { return slices.Contains(o.Exclude, name) }

// value is one cell; kind Null is a missing value.
type value struct {
	kind schemas.Kind
	num  float64
	str  string
	b    bool
	vec  []float64 // kind Vector
}

// fileColumn is one output column. Its kind is fixed by declaration, by
// the file's schema or by its first non-null value, for the whole file.
type fileColumn struct {
	field    string // Arrow column name
	kind     schemas.Kind
	rows     int // rows appended to the builder in this batch
	declared bool
	f64      *array.Float64Builder
	str      *array.StringBuilder
	bl       *array.BooleanBuilder
	vec      *array.FixedSizeListBuilder // kind Vector, of length dim
	vf       *array.Float64Builder       // vec's items
	dim      int
}

// columns accumulates the rows of a file into records in the layout of
// schemas.NewSchema.
type columns struct {
	opts   ReadOptions
	rows   int
	byName map[string]*fileColumn // by Arrow column name
}

func newColumns(opts ReadOptions) *columns {
	cs := &columns{opts: opts, byName: map[string]*fileColumn{}}
	cs.fixed(schemas.ColPredScore, schemas.Number)
	cs.fixed(schemas.ColPredLabel, schemas.String)
	cs.fixed(schemas.ColPredValue, schemas.Number)
	return cs
}

func (cs *columns) fixed(field string, k schemas.Kind) {
	c := &fileColumn{field: field, declared: true}
	c.setKind(cs.opts.Mem, k)
	cs.byName[field] = c
}

// fileColumn returns the column of a column name in a file: a prediction
// column (FilePredictionScore, ...) or the feature f.<name>.
func (cs *columns) fileColumn(name string) *fileColumn {
	switch name {
	case FilePredictionScore:
		return cs.byName[schemas.ColPredScore]
	case FilePredictionLabel:
		return cs.byName[schemas.ColPredLabel]
	case FilePredictionValue:
		return cs.byName[schemas.ColPredValue]
	}
	return cs.column(name)
}

// column returns the column of feature name. Declared kinds apply.
func (cs *columns) column(name string) *fileColumn {
	field := schemas.PrefixFeature + name
	if c := cs.byName[field]; c != nil {
		return c
	}
	c := &fileColumn{field: field}
	if k, ok := cs.opts.Kinds[name]; ok && k != schemas.Null {
		c.setKind(cs.opts.Mem, k)
		c.declared = true
	}
	c.fill(cs.opts.Mem, cs.rows)
	cs.byName[field] = c
	return c
}

// probaColumn returns the column of a class probability.
func (cs *columns) probaColumn(class string) *fileColumn {
	field := schemas.PrefixProba + class
	if c := cs.byName[field]; c != nil {
		return c
	}
	c := &fileColumn{field: field}
	c.setKind(cs.opts.Mem, schemas.Number)
	c.fill(cs.opts.Mem, cs.rows)
	cs.byName[field] = c
	return c
}

// kindError is a value whose kind differs from its column's.
type kindError struct {
	column, value schemas.Kind
	declared      bool
}

func (e *kindError) Error() string {
	how := "earlier values are"
	if e.declared {
		how = "the column is"
	}
	return fmt.Sprintf("%s value where %s %s", e.value, how, e.column)
}

// set sets the value of c in the current row. A missing value needs no call.
func (cs *columns) set(c *fileColumn, v value) error {
	if v.kind == schemas.Null {
		return nil
	}
	if c.rows > cs.rows {
		panic("BUG: column " + c.field + " set twice in one row")
	}
	if c.kind == schemas.Null {
		c.dim = len(v.vec)
		c.setKind(cs.opts.Mem, v.kind)
	}
	if c.kind != v.kind {
		return &kindError{column: c.kind, value: v.kind, declared: c.declared}
	}
	if c.kind == schemas.Vector && len(v.vec) != c.dim {
		return fmt.Errorf("vector of %d values where earlier vectors have %d", len(v.vec), c.dim)
	}
	c.fill(cs.opts.Mem, cs.rows)
	switch v.kind {
	case schemas.Number:
		c.f64.Append(v.num)
	case schemas.String:
		c.str.Append(v.str)
	case schemas.Bool:
		c.bl.Append(v.b)
	case schemas.Vector:
		c.vec.Append(true)
		c.vf.AppendValues(v.vec, nil)
	}
	c.rows++
	return nil
}

// endRow ends the current row and emits a record when BatchRows are full.
func (cs *columns) endRow(emit func(arrow.Record) error) error {
	cs.rows++
	if cs.rows >= cs.opts.BatchRows {
		return cs.flush(emit)
	}
	return nil
}

// flush emits the rows so far as one record (none when there is none) and
// releases it after emit returns.
func (cs *columns) flush(emit func(arrow.Record) error) error {
	if cs.rows == 0 {
		return nil
	}
	rec := cs.record()
	defer rec.Release()
	return emit(rec)
}

func (cs *columns) record() arrow.Record {
	mem, n := cs.opts.Mem, cs.rows
	ids := array.NewStringBuilder(mem)
	ids.AppendEmptyValues(n)
	model, version := array.NewStringBuilder(mem), array.NewStringBuilder(mem)
	for range n {
		model.Append(cs.opts.Model)
		version.Append(cs.opts.ModelVersion)
	}
	times := array.NewTimestampBuilder(mem, schemas.EventTimeType)
	times.AppendEmptyValues(n)
	latency := array.NewFloat64Builder(mem)
	latency.AppendNulls(n)
	cols := []arrow.Array{ids.NewArray(), model.NewArray(), version.NewArray(), times.NewArray(), latency.NewArray(),
		cs.byName[schemas.ColPredScore].array(mem, n), cs.byName[schemas.ColPredLabel].array(mem, n), cs.byName[schemas.ColPredValue].array(mem, n)}
	for _, b := range []array.Builder{ids, model, version, times, latency} {
		b.Release()
	}
	var extra []*fileColumn
	for field, c := range cs.byName {
		if strings.HasPrefix(field, schemas.PrefixFeature) || strings.HasPrefix(field, schemas.PrefixProba) {
			extra = append(extra, c)
		}
	}
	// proba.* sorts before f.*, each group by name: the order of NewSchema.
	slices.SortFunc(extra, func(a, b *fileColumn) int { return strings.Compare(a.field, b.field) })
	fields := make([]arrow.Field, 0, len(extra))
	for _, c := range extra {
		a := c.array(mem, n)
		cols = append(cols, a)
		fields = append(fields, arrow.Field{Name: c.field, Type: a.DataType(), Nullable: true})
	}
	rec := array.NewRecord(schemas.NewSchema(fields), cols, int64(n))
	for _, a := range cols {
		a.Release()
	}
	cs.rows = 0
	return rec
}

func (c *fileColumn) setKind(mem memory.Allocator, k schemas.Kind) {
	pending := c.rows // leading nulls counted while the kind was unknown
	c.kind = k
	switch k {
	case schemas.Number:
		c.f64 = array.NewFloat64Builder(mem)
		c.f64.AppendNulls(pending)
	case schemas.String:
		c.str = array.NewStringBuilder(mem)
		c.str.AppendNulls(pending)
	case schemas.Bool:
		c.bl = array.NewBooleanBuilder(mem)
		c.bl.AppendNulls(pending)
	case schemas.Vector:
		c.vec = array.NewFixedSizeListBuilder(mem, int32(c.dim), arrow.PrimitiveTypes.Float64)
		c.vf = c.vec.ValueBuilder().(*array.Float64Builder)
		c.appendNullVectors(pending)
	}
}

// appendNullVectors appends n missing vectors (zero items under a null row).
func (c *fileColumn) appendNullVectors(n int) {
	for range n {
		c.vec.Append(false)
	}
	c.vf.AppendEmptyValues(n * c.dim)
}

// fill appends nulls up to row (exclusive).
func (c *fileColumn) fill(mem memory.Allocator, row int) {
	if n := row - c.rows; n > 0 {
		switch c.kind {
		case schemas.Number:
			c.f64.AppendNulls(n)
		case schemas.String:
			c.str.AppendNulls(n)
		case schemas.Bool:
			c.bl.AppendNulls(n)
		case schemas.Vector:
			c.appendNullVectors(n)
		}
		c.rows = row
	}
}

// array returns the column's n rows and resets it for the next batch. A
// column of unknown kind is an all-null float64 column.
func (c *fileColumn) array(mem memory.Allocator, n int) arrow.Array {
	c.fill(mem, n)
	c.rows = 0
	switch c.kind {
	case schemas.String:
		return c.str.NewArray()
	case schemas.Bool:
		return c.bl.NewArray()
	case schemas.Number:
		return c.f64.NewArray()
	case schemas.Vector:
		return c.vec.NewArray()
	}
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.AppendNulls(n)
	return b.NewArray()
}

// release frees the builders.
func (cs *columns) release() {
	for _, c := range cs.byName {
		if c.f64 != nil {
			c.f64.Release()
		}
		if c.str != nil {
			c.str.Release()
		}
		if c.bl != nil {
			c.bl.Release()
		}
		if c.vec != nil {
			c.vec.Release()
		}
	}
}
