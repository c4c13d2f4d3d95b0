package reference

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/vigil-ml/vigil/schemas"
)

// ReadParquet reads a Parquet file and emits its rows as records in the
// layout of schemas.NewSchema, BatchRows at a time; each record is released
// after emit returns. name is the file's name for error messages.
//
// Every top-level column is a feature, except prediction_score,
// prediction_label and prediction_value (the prediction) and those in
// opts.Exclude: float and integer columns are numbers, string columns
// (plain or dictionary-encoded) strings, boolean columns bools, and nulls
// are missing values. A column declared a String in opts.Kinds takes
// numbers and booleans as their text (as does prediction_label). Other
// column types (times, decimals, binary, nested) are an error: exclude them.
func ReadParquet(ctx context.Context, r parquet.ReaderAtSeeker, name string, opts ReadOptions, emit func(arrow.Record) error) error {
	opts = opts.withDefaults()
	pf, err := file.NewParquetReader(r)
	if err != nil {
		return fmt.Errorf("%w: %s: not a Parquet file: %v", ErrBadInput, name, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(opts.BatchRows)}, opts.Mem)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadInput, name, err)
	}
	sc, err := fr.Schema()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadInput, name, err)
	}
	cs := newColumns(opts)
	defer cs.release()
	type source struct {
		idx    int
		dst    *fileColumn
		asText bool
	}
	var srcs []source
	var indices []int
	for i, f := range sc.Fields() {
		if opts.excluded(f.Name) {
			continue
		}
		if f.Name == "" || len(f.Name) > schemas.MaxNameLen {
			return fmt.Errorf("%w: %s: column %d: a feature name has 1 to %d bytes", ErrBadInput, name, i+1, schemas.MaxNameLen)
		}
		k, ok := parquetKind(f.Type)
		if !ok {
			return fmt.Errorf("%w: %s: column %q has type %s, which is not a feature type (numbers, strings, booleans, lists of float32 or float64); exclude it", ErrBadInput, name, f.Name, f.Type)
		}
		dst := cs.fileColumn(f.Name)
		asText := false
		switch {
		case k == schemas.Null || dst.kind == schemas.Null || dst.kind == k:
		case dst.kind == schemas.String && dst.declared:
			asText = true
		default:
			return fmt.Errorf("%w: %s: column %q holds %s values, but it is declared %s", ErrBadInput, name, f.Name, k, dst.kind)
		}
		srcs = append(srcs, source{idx: len(indices), dst: dst, asText: asText})
		indices = append(indices, i)
	}
	if len(indices) == 0 {
		return fmt.Errorf("%w: %s: no columns to read", ErrBadInput, name)
	}
	rr, err := fr.GetRecordReader(ctx, indices, nil)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.Record()
		for row := range int(rec.NumRows()) {
			for _, s := range srcs {
				a := rec.Column(s.idx)
				if a.IsNull(row) {
					continue
				}
				var v value
				if l, isList := a.(array.ListLike); isList {
					vec, err := listVector(l, row)
					if err != nil {
						return fmt.Errorf("%w: %s: column %q row %d: %v", ErrBadInput, name, rec.ColumnName(s.idx), row+1, err)
					}
					v = value{kind: schemas.Vector, vec: vec}
				} else {
					v = arrowCell(a, row, s.asText)
				}
				if err := cs.set(s.dst, v); err != nil {
					return fmt.Errorf("%w: %s: column %q: %v", ErrBadInput, name, rec.ColumnName(s.idx), err)
				}
			}
			if err := cs.endRow(emit); err != nil {
				return err
			}
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: %v", ErrBadInput, name, err)
	}
	return cs.flush(emit)
}

// parquetKind returns the feature kind of a column type as pqarrow reads it.
func parquetKind(t arrow.DataType) (schemas.Kind, bool) {
	switch t.ID() {
	case arrow.FLOAT64, arrow.FLOAT32, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return schemas.Number, true
	case arrow.STRING, arrow.LARGE_STRING:
		return schemas.String, true
	case arrow.BOOL:
		return schemas.Bool, true
	case arrow.NULL:
		return schemas.Null, true
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST:
		// A vector feature (an embedding): every row one length.
		if e := t.(arrow.ListLikeType).Elem().ID(); e == arrow.FLOAT64 || e == arrow.FLOAT32 {
			return schemas.Vector, true
		}
	case arrow.DICTIONARY:
		if dt := t.(*arrow.DictionaryType); dt.ValueType.ID() == arrow.STRING || dt.ValueType.ID() == arrow.LARGE_STRING {
			return schemas.String, true
		}
	}
	return schemas.Null, false
}

// arrowCell returns the non-null value at row i of a (a type parquetKind
// accepts), as text when asText.
func arrowCell(a arrow.Array, i int, asText bool) value {
	num := func(f float64) value {
		if asText {
			return value{kind: schemas.String, str: strconv.FormatFloat(f, 'g', -1, 64)}
		}
		return value{kind: schemas.Number, num: f}
	}
	integer := func(n int64) value {
		if asText {
			return value{kind: schemas.String, str: strconv.FormatInt(n, 10)}
		}
		return value{kind: schemas.Number, num: float64(n)}
	}
	switch a := a.(type) {
	case *array.Float64:
		return num(a.Value(i))
	case *array.Float32:
		return num(float64(a.Value(i)))
	case *array.Int8:
		return integer(int64(a.Value(i)))
	case *array.Int16:
		return integer(int64(a.Value(i)))
	case *array.Int32:
		return integer(int64(a.Value(i)))
	case *array.Int64:
		return integer(a.Value(i))
	case *array.Uint8:
		return integer(int64(a.Value(i)))
	case *array.Uint16:
		return integer(int64(a.Value(i)))
	case *array.Uint32:
		return integer(int64(a.Value(i)))
	case *array.Uint64:
		if asText {
			return value{kind: schemas.String, str: strconv.FormatUint(a.Value(i), 10)}
		}
		return value{kind: schemas.Number, num: float64(a.Value(i))}
	case *array.String:
		return value{kind: schemas.String, str: a.Value(i)}
	case *array.LargeString:
		return value{kind: schemas.String, str: a.Value(i)}
	case *array.Boolean:
		if asText {
			return value{kind: schemas.String, str: strconv.FormatBool(a.Value(i))}
		}
		return value{kind: schemas.Bool, b: a.Value(i)}
	case *array.Dictionary:
		return arrowCell(a.Dictionary(), a.GetValueIndex(i), asText)
	}
	panic(fmt.Sprintf("BUG: arrowCell of %s, which parquetKind rejects", a.DataType()))
}

// listVector returns row i of a list column of float64 or float32 items as
// a vector: 1 to schemas.MaxVectorDim finite numbers.
func listVector(l array.ListLike, i int) ([]float64, error) {
	start, end := l.ValueOffsets(i)
	n := int(end - start)
	if n < 1 || n > schemas.MaxVectorDim {
		return nil, fmt.Errorf("a vector has 1 to %d numbers, not %d", schemas.MaxVectorDim, n)
	}
	items := l.ListValues()
	vec := make([]float64, n)
	for j := range vec {
		k := int(start) + j
		if items.IsNull(k) {
			return nil, fmt.Errorf("vector element %d is null", j)
		}
		switch a := items.(type) {
		case *array.Float64:
			vec[j] = a.Value(k)
		case *array.Float32:
			vec[j] = float64(a.Value(k))
		}
		if math.IsNaN(vec[j]) || math.IsInf(vec[j], 0) {
			return nil, fmt.Errorf("vector element %d is not finite", j)
		}
	}
	return vec, nil
}
