package wire

import (
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/vigil-ml/vigil/schemas"
)

// benchEvent returns an event of model "fraud" with n features: mostly
// numbers, every fourth a string, every seventh a bool.
func benchEvent(i, n int) *schemas.Event {
	e := &schemas.Event{
		ID:           fmt.Sprintf("evt-%08d", i),
		Model:        "fraud",
		ModelVersion: "3",
		Time:         time.UnixMilli(1764151200123 + int64(i)).UTC(),
		Prediction: schemas.Prediction{
			Score: 0.93, HasScore: true, Label: "fraud",
			Probabilities: []schemas.ClassProbability{{Class: "fraud", P: 0.93}, {Class: "ok", P: 0.07}},
		},
		Latency:  4200 * time.Microsecond,
		Segments: []schemas.Tag{{Key: "region", Value: "eu"}, {Key: "channel", Value: "web"}},
	}
	for j := 0; j < n; j++ {
		name := fmt.Sprintf("feature_%02d", j)
		switch {
		case j%7 == 6:
			e.Features = append(e.Features, schemas.Flag(name, (i+j)%2 == 0))
		case j%4 == 3:
			e.Features = append(e.Features, schemas.Str(name, [...]string{"DE", "FR", "US"}[(i+j)%3]))
		default:
			e.Features = append(e.Features, schemas.Num(name, float64(i*j%1000)/7))
		}
	}
	return e
}

// recordEvents turns the rows of a record in the layout of schemas/arrow.go
// back into events: an independent reading of the layout for tests.
// Features, probabilities and segments come in column order; nulls of absent
// features are skipped (so a feature sent as JSON null is lost, as in Arrow).
func recordEvents(rec arrow.Record) []schemas.Event {
	n := int(rec.NumRows())
	out := make([]schemas.Event, n)
	str := func(i, row int) (string, bool) {
		a := rec.Column(i).(*array.String)
		return a.Value(row), a.IsValid(row)
	}
	f64 := func(i, row int) (float64, bool) {
		a := rec.Column(i).(*array.Float64)
		return a.Value(row), a.IsValid(row)
	}
	for row := range out {
		e := &out[row]
		e.ID, _ = str(0, row)
		e.Model, _ = str(1, row)
		e.ModelVersion, _ = str(2, row)
		e.Time = time.UnixMilli(int64(rec.Column(3).(*array.Timestamp).Value(row))).UTC()
		if v, ok := f64(4, row); ok {
			e.Latency = time.Duration(math.Round(v * 1e6))
		}
		e.Prediction.Score, e.Prediction.HasScore = f64(5, row)
		if !e.Prediction.HasScore {
			e.Prediction.Score = 0
		}
		if v, ok := str(6, row); ok {
			e.Prediction.Label = v
		}
		e.Prediction.Value, e.Prediction.HasValue = f64(7, row)
		if !e.Prediction.HasValue {
			e.Prediction.Value = 0
		}
		for i := len(schemas.FixedFields); i < int(rec.NumCols()); i++ {
			name := rec.ColumnName(i)
			col := rec.Column(i)
			if col.IsNull(row) {
				continue
			}
			if class, ok := schemas.ProbaClass(name); ok {
				v, _ := f64(i, row)
				e.Prediction.Probabilities = append(e.Prediction.Probabilities, schemas.ClassProbability{Class: class, P: v})
			} else if f, ok := schemas.FeatureName(name); ok {
				switch a := col.(type) {
				case *array.Float64:
					e.Features = append(e.Features, schemas.Num(f, a.Value(row)))
				case *array.String:
					e.Features = append(e.Features, schemas.Str(f, a.Value(row)))
				case *array.Boolean:
					e.Features = append(e.Features, schemas.Flag(f, a.Value(row)))
				case *array.FixedSizeList:
					// A vector with a non-finite item is not an event's
					// value (Validate refuses it); window states count it
					// as a type mismatch.
					if v, ok := vectorAt(a, row); ok {
						e.Features = append(e.Features, schemas.Vec(f, v))
					}
				}
			} else if k, ok := schemas.SegmentKey(name); ok {
				v, _ := str(i, row)
				e.Segments = append(e.Segments, schemas.Tag{Key: k, Value: v})
			}
		}
	}
	return out
}

// vectorAt returns the items of row of a vector column, ok false when one
// is null or not finite.
func vectorAt(a *array.FixedSizeList, row int) ([]float64, bool) {
	start, end := a.ValueOffsets(row)
	items := a.ListValues()
	v := make([]float64, 0, end-start)
	for k := int(start); k < int(end); k++ {
		if items.IsNull(k) {
			return nil, false
		}
		var x float64
		switch it := items.(type) {
		case *array.Float64:
			x = it.Value(k)
		case *array.Float32:
			x = float64(it.Value(k))
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		v = append(v, x)
	}
	return v, true
}

// vectorEvents are events with a vector feature "emb" of length 3: a
// missing one, one of another length (a type mismatch) and a number where
// the batch has vectors.
func vectorEvents() []schemas.Event {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	return []schemas.Event{
		{ID: "v1", Model: "ranker", Time: t0, Features: []schemas.Feature{schemas.Vec("emb", []float64{0.5, -1, 3e-7}), schemas.Num("x", 1)}, Prediction: schemas.Score(0.1)},
		{ID: "v2", Model: "ranker", Time: t0, Features: []schemas.Feature{schemas.Missing("emb"), schemas.Num("x", 2)}, Prediction: schemas.Score(0.2)},
		{ID: "v3", Model: "ranker", Time: t0, Features: []schemas.Feature{schemas.Vec("emb", []float64{1, 2})}, Prediction: schemas.Score(0.3)},
		{ID: "v4", Model: "ranker", Time: t0, Features: []schemas.Feature{schemas.Num("emb", 4), schemas.Vec("other", []float64{7})}, Prediction: schemas.Score(0.4)},
		{ID: "v5", Model: "ranker", Time: t0, Features: []schemas.Feature{schemas.Vec("emb", []float64{1e300, 0, -2.5})}, Prediction: schemas.Score(0.5)},
	}
}
