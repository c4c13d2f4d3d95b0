package wire

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/vigil-ml/vigil/schemas"
)

// LabelBatchBuilder accumulates labels of one model and builds an
// arrow.Record in the label layout of schemas/label.go (schemas.LabelFields).
// Encode the record with an ArrowEncoder, like an event batch.
//
// It keeps its column builders across records. It is not safe for
// concurrent use.
type LabelBatchBuilder struct {
	schema *arrow.Schema
	model  string
	rows   int

	eventID   *array.StringBuilder
	modelCol  *array.StringBuilder
	labelTime *array.TimestampBuilder
	class     *array.StringBuilder
	value     *array.Float64Builder
}

// NewLabelBatchBuilder returns an empty builder that allocates from mem.
func NewLabelBatchBuilder(mem memory.Allocator) *LabelBatchBuilder {
	return &LabelBatchBuilder{
		schema:    schemas.NewLabelSchema(),
		eventID:   array.NewStringBuilder(mem),
		modelCol:  array.NewStringBuilder(mem),
		labelTime: array.NewTimestampBuilder(mem, schemas.EventTimeType),
		class:     array.NewStringBuilder(mem),
		value:     array.NewFloat64Builder(mem),
	}
}

// Len returns the number of labels in the current batch.
func (b *LabelBatchBuilder) Len() int { return b.rows }

// Model returns the model of the current batch ("" while it is empty).
func (b *LabelBatchBuilder) Model() string { return b.model }

// Append adds l as the next row. It rejects, with an error wrapping
// ErrMalformed, a label that fails l.Validate() or whose model differs from
// the batch's.
func (b *LabelBatchBuilder) Append(l *schemas.Label) error {
	if b.rows > 0 && l.Model != b.model {
		return malformed("label of model %q in a batch of model %q", clip(l.Model), clip(b.model))
	}
	if err := l.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if b.rows == 0 {
		b.model = l.Model
	}
	appendStr(b.eventID, l.EventID)
	appendStr(b.modelCol, l.Model)
	b.labelTime.Append(arrow.Timestamp(l.Time.UnixMilli()))
	if l.HasClass {
		appendStr(b.class, l.Class)
	} else {
		b.class.AppendNull()
	}
	appendOptFloat(b.value, l.Value, l.HasValue)
	b.rows++
	return nil
}

// NewRecord returns the record of the labels appended since the last call
// and resets the builder for the next batch. The caller must Release it.
func (b *LabelBatchBuilder) NewRecord() arrow.Record {
	cols := [...]arrow.Array{
		b.eventID.NewArray(), b.modelCol.NewArray(), b.labelTime.NewArray(), b.class.NewArray(), b.value.NewArray(),
	}
	rec := array.NewRecord(b.schema, cols[:], int64(b.rows))
	for _, c := range cols {
		c.Release()
	}
	b.rows, b.model = 0, ""
	return rec
}

// LabelRowsError is the error DecodeLabelArrow returns for a well-formed
// label batch some of whose rows are not valid labels (they fail
// schemas.Label.Validate: a null or empty event id, neither or both of class
// and value, a NaN value...). It wraps ErrMalformed.
type LabelRowsError struct {
	Rows int   // rows in the batch
	Bad  []int // the rows rejected, ascending
	// Errs[i] is why row Bad[i] was rejected, for the first
	// maxLabelRowErrors bad rows only.
	Errs []error
}

// maxLabelRowErrors bounds the reasons a LabelRowsError keeps, so that a
// batch of a million bad rows does not make a million errors.
const maxLabelRowErrors = 16

func (e *LabelRowsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %d of %d rows of the label batch are invalid:", ErrMalformed, len(e.Bad), e.Rows)
	for i, err := range e.Errs {
		fmt.Fprintf(&b, " row %d: %v;", e.Bad[i], err)
	}
	if n := len(e.Bad) - len(e.Errs); n > 0 {
		fmt.Fprintf(&b, " and %d more", n)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap lets errors.Is find ErrMalformed and schemas.ErrInvalidLabel.
func (e *LabelRowsError) Unwrap() []error { return append([]error{ErrMalformed}, e.Errs...) }

// DecodeLabelArrow decodes one Arrow IPC message of labels (a stream with the
// schema and exactly one record batch, as LabelBatchBuilder and ArrowEncoder
// make) into labels, in row order.
//
// It is as hardened as DecodeArrow and shares its loader: lengths are checked
// before use, the body compression is ZSTD, LZ4_FRAME or none, and the batch
// may decode to at most MaxDecodedBatchBytes (and 1024 times the message
// size). The schema must be exactly schemas.LabelFields (names and types, in
// order; schema_version metadata, when present, "1"), the batch must have at
// least one row, and every non-null model must be the same.
//
// Errors come in two kinds, both wrapping ErrMalformed:
//
//   - The message as a whole is bad (anything above): labels is nil. Send
//     the message to the dead-letter topic.
//   - The message is well-formed but some rows fail schemas.Label.Validate:
//     labels holds every valid row, in order, and err is a *LabelRowsError
//     naming the bad rows. Process the labels, and send the message to the
//     dead-letter topic with the error, which says which rows to look at. A
//     consumer that treats every error alike loses nothing: the whole
//     message, valid rows included, is in the dead-letter topic.
//
// The labels own their strings: they never alias data or memory from mem,
// and nothing needs releasing. DecodeLabelArrow never panics on corrupt
// input and keeps no state: it is safe for concurrent use. mem (nil means
// memory.DefaultAllocator) serves decompression scratch, freed before it
// returns.
func DecodeLabelArrow(data []byte, mem memory.Allocator) (labels []schemas.Label, err error) {
	rec, err := decodeOneBatch(data, mem, checkLabelSchema)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	defer func() {
		if p := recover(); p != nil { // the loader checked the buffers: a bug, but of a decoder of outside input
			labels, err = nil, malformed("arrow label batch: %v", p)
		}
	}()
	return recordLabels(rec)
}

func checkLabelSchema(s *arrow.Schema) error {
	fields := s.Fields()
	if len(fields) != len(schemas.LabelFields) {
		return malformed("arrow schema: %d columns, want the %d of a label batch", len(fields), len(schemas.LabelFields))
	}
	if err := checkLeadingFields(s, schemas.LabelFields); err != nil {
		return err
	}
	if v, ok := s.Metadata().GetValue(schemas.MetaSchemaVersion); ok && v != strconv.Itoa(schemas.LabelSchemaVersion) {
		return malformed("arrow schema: %s %q not supported (want %d)", schemas.MetaSchemaVersion, clip(v), schemas.LabelSchemaVersion)
	}
	return nil
}

// recordLabels turns the rows of a label record into labels, copying each
// string column's bytes once.
func recordLabels(rec arrow.Record) ([]schemas.Label, error) {
	n := int(rec.NumRows())
	if n == 0 {
		return nil, malformed("arrow record batch has no rows")
	}
	ids := newOwnedStrings(rec.Column(0).(*array.String))
	models := newOwnedStrings(rec.Column(1).(*array.String))
	times := rec.Column(2).(*array.Timestamp)
	classes := newOwnedStrings(rec.Column(3).(*array.String))
	values := rec.Column(4).(*array.Float64)

	model := ""
	for row := 0; row < n; row++ {
		if m := models.value(row); m != "" {
			if model != "" && m != model {
				return nil, malformed("arrow column %q: more than one model (%q, %q)", schemas.ColModel, clip(model), clip(m))
			}
			model = m
		}
	}
	labels := make([]schemas.Label, 0, n)
	var rowsErr *LabelRowsError
	for row := 0; row < n; row++ {
		l := schemas.Label{EventID: ids.value(row), Model: models.value(row)}
		if times.IsValid(row) {
			l.Time = time.UnixMilli(int64(times.Value(row))).UTC()
		}
		if classes.a.IsValid(row) {
			l.Class, l.HasClass = classes.value(row), true
		}
		if values.IsValid(row) {
			l.Value, l.HasValue = values.Value(row), true
		}
		if err := l.Validate(); err != nil {
			if rowsErr == nil {
				rowsErr = &LabelRowsError{Rows: n}
			}
			rowsErr.Bad = append(rowsErr.Bad, row)
			if len(rowsErr.Errs) < maxLabelRowErrors {
				rowsErr.Errs = append(rowsErr.Errs, err)
			}
			continue
		}
		labels = append(labels, l)
	}
	if rowsErr != nil {
		return labels, rowsErr
	}
	return labels, nil
}

// ownedStrings reads a string column through one copy of its bytes, so that
// the strings outlive the record and the message. A null reads as "".
type ownedStrings struct {
	a    *array.String
	all  string
	base int
}

func newOwnedStrings(a *array.String) ownedStrings {
	return ownedStrings{a: a, all: string(a.ValueBytes()), base: a.ValueOffset(0)}
}

func (s ownedStrings) value(row int) string {
	if s.a.IsNull(row) {
		return ""
	}
	start := s.a.ValueOffset(row) - s.base
	return s.all[start : start+s.a.ValueLen(row)]
}
