package reference

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/valyala/fastjson"

	"github.com/vigil-ml/vigil/schemas"
)

// MaxJSONLine bounds one line of a JSON Lines file.
const MaxJSONLine = 16 << 20

// ReadJSONL reads a JSON Lines file (one JSON object per line; blank lines
// are skipped) and emits its rows as records in the layout of
// schemas.NewSchema, BatchRows at a time; each record is released after
// emit returns. name is the file's name for error messages.
//
// A line is either a v1 prediction event (it has a "features" object; its
// "prediction" gives score, label, value and probabilities; other keys such
// as "model" are ignored: the reference's model version is the caller's),
// or a flat object of feature values where the keys prediction_score,
// prediction_label and prediction_value give the prediction. Values are
// numbers, strings, booleans or null (missing); an undeclared feature takes
// the kind of its first non-null value, and a later value of another kind
// is an error.
func ReadJSONL(r io.Reader, name string, opts ReadOptions, emit func(arrow.Record) error) error {
	opts = opts.withDefaults()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxJSONLine)
	cs := newColumns(opts)
	defer cs.release()
	jr := jsonlReader{cs: cs, name: name, seen: map[string]bool{}}
	for sc.Scan() {
		jr.line++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := jr.row(line); err != nil {
			return err
		}
		if err := cs.endRow(emit); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return badInput(name, jr.line+1, "line longer than %d bytes", MaxJSONLine)
		}
		return fmt.Errorf("read %s: %w", name, err)
	}
	return cs.flush(emit)
}

type jsonlReader struct {
	cs   *columns
	name string
	line int
	p    fastjson.Parser
	seen map[string]bool // keys of the current object
}

func (jr *jsonlReader) fail(format string, args ...any) error {
	return badInput(jr.name, jr.line, format, args...)
}

func (jr *jsonlReader) row(line []byte) error {
	v, err := jr.p.ParseBytes(line)
	if err != nil {
		return jr.fail("not JSON: %v", err)
	}
	obj, err := v.Object()
	if err != nil {
		return jr.fail("not a JSON object")
	}
	if fv := obj.Get("features"); fv != nil && fv.Type() == fastjson.TypeObject {
		feats, _ := fv.Object()
		if err := jr.fields(feats, "features.", false); err != nil {
			return err
		}
		pv := obj.Get("prediction")
		if pv == nil || pv.Type() == fastjson.TypeNull {
			return nil
		}
		pred, err := pv.Object()
		if err != nil {
			return jr.fail(`"prediction" is not an object`)
		}
		return jr.prediction(pred)
	}
	return jr.fields(obj, "", true)
}

// fields sets a value per key of obj; with flat, prediction_* keys are the
// prediction.
func (jr *jsonlReader) fields(obj *fastjson.Object, path string, flat bool) (err error) {
	clear(jr.seen)
	obj.Visit(func(key []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		name := string(key)
		if jr.seen[name] {
			err = jr.fail("key %q twice", path+name)
			return
		}
		jr.seen[name] = true
		if jr.cs.opts.excluded(name) {
			return
		}
		if name == "" || len(name) > schemas.MaxNameLen {
			err = jr.fail("key %q: a feature name has 1 to %d bytes", clip(path+name), schemas.MaxNameLen)
			return
		}
		var c *fileColumn
		if flat {
			c = jr.cs.fileColumn(name)
		} else {
			c = jr.cs.column(name) // a feature of an event is never the prediction
		}
		err = jr.set(c, path+name, v)
	})
	return err
}

func (jr *jsonlReader) prediction(pred *fastjson.Object) (err error) {
	pred.Visit(func(key []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		switch string(key) {
		case "score":
			err = jr.set(jr.cs.byName[schemas.ColPredScore], "prediction.score", v)
		case "label":
			err = jr.set(jr.cs.byName[schemas.ColPredLabel], "prediction.label", v)
		case "value":
			err = jr.set(jr.cs.byName[schemas.ColPredValue], "prediction.value", v)
		case "probabilities":
			err = jr.probabilities(v)
		}
	})
	return err
}

func (jr *jsonlReader) probabilities(v *fastjson.Value) (err error) {
	if v.Type() == fastjson.TypeNull {
		return nil
	}
	obj, oerr := v.Object()
	if oerr != nil {
		return jr.fail(`"prediction.probabilities" is not an object`)
	}
	clear(jr.seen)
	obj.Visit(func(key []byte, pv *fastjson.Value) {
		if err != nil {
			return
		}
		class := string(key)
		if class == "" || len(class) > schemas.MaxNameLen || jr.seen[class] {
			err = jr.fail("prediction.probabilities: bad or repeated class %q", clip(class))
			return
		}
		jr.seen[class] = true
		err = jr.set(jr.cs.probaColumn(class), "prediction.probabilities."+class, pv)
	})
	return err
}

// set converts v to c's kind (a declared or prediction-label string column
// takes numbers and booleans as their JSON text) and sets it.
func (jr *jsonlReader) set(c *fileColumn, key string, v *fastjson.Value) error {
	var val value
	switch v.Type() {
	case fastjson.TypeNull:
		return nil
	case fastjson.TypeNumber:
		f, err := v.Float64()
		if err != nil && !math.IsInf(f, 0) {
			return jr.fail("key %q: bad number %s", clip(key), clip(v.String()))
		}
		val = value{kind: schemas.Number, num: f}
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		val = value{kind: schemas.String, str: string(b)}
	case fastjson.TypeTrue, fastjson.TypeFalse:
		val = value{kind: schemas.Bool, b: v.Type() == fastjson.TypeTrue}
	case fastjson.TypeArray:
		vec, err := vectorOf(v)
		if err != nil {
			return jr.fail("key %q: %v", clip(key), err)
		}
		val = value{kind: schemas.Vector, vec: vec}
	default:
		return jr.fail("key %q: a %s is not a feature value (use numbers, strings, booleans, arrays of numbers or null)", clip(key), v.Type())
	}
	if c.kind == schemas.String && c.declared && val.kind != schemas.String {
		val = value{kind: schemas.String, str: v.String()}
	}
	if c.rows > jr.cs.rows {
		return jr.fail("key %q: value given twice", clip(key))
	}
	if err := jr.cs.set(c, val); err != nil {
		return jr.fail("key %q: %v", clip(key), err)
	}
	return nil
}

// vectorOf reads a vector feature: an array of 1 to schemas.MaxVectorDim
// finite numbers.
func vectorOf(v *fastjson.Value) ([]float64, error) {
	items, _ := v.Array()
	if len(items) == 0 || len(items) > schemas.MaxVectorDim {
		return nil, fmt.Errorf("a vector has 1 to %d numbers, not %d", schemas.MaxVectorDim, len(items))
	}
	vec := make([]float64, len(items))
	for i, it := range items {
		f, err := it.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("vector element %d is not a finite number", i)
		}
		vec[i] = f
	}
	return vec, nil
}
