package stats

import (
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/schemas"
)

// column is one extra column of a test record; a nil value is a null.
type column struct {
	name string
	typ  arrow.DataType
	vals []any
}

// newRecord builds a batch in the layout of schemas.NewSchema: the fixed
// columns (latency_ms and the prediction columns from the arguments) then
// the extra columns, which must be sorted as NewSchema wants.
func newRecord(t testing.TB, mem memory.Allocator, latency, score, label, value []any, extra ...column) arrow.Record {
	t.Helper()
	n := len(latency)
	var fields []arrow.Field
	for _, c := range extra {
		fields = append(fields, arrow.Field{Name: c.name, Type: c.typ, Nullable: true})
	}
	schema := schemas.NewSchema(fields)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.StringBuilder).Append("id-" + strconv.Itoa(i))
		b.Field(1).(*array.StringBuilder).Append("fraud")
		b.Field(2).(*array.StringBuilder).Append("v1")
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000 + int64(i)))
	}
	cols := append([]column{
		{schemas.ColLatencyMs, arrow.PrimitiveTypes.Float64, latency},
		{schemas.ColPredScore, arrow.PrimitiveTypes.Float64, score},
		{schemas.ColPredLabel, arrow.BinaryTypes.String, label},
		{schemas.ColPredValue, arrow.PrimitiveTypes.Float64, value},
	}, extra...)
	for j, c := range cols {
		if len(c.vals) != n {
			t.Fatalf("column %s has %d values, want %d", c.name, len(c.vals), n)
		}
		fb := b.Field(4 + j)
		for _, v := range c.vals {
			switch v := v.(type) {
			case nil:
				fb.AppendNull()
			case float64:
				fb.(*array.Float64Builder).Append(v)
			case int:
				fb.(*array.Float64Builder).Append(float64(v))
			case int64:
				fb.(*array.Int64Builder).Append(v)
			case string:
				fb.(*array.StringBuilder).Append(v)
			case bool:
				fb.(*array.BooleanBuilder).Append(v)
			default:
				t.Fatalf("column %s: value %v of type %T", c.name, v, v)
			}
		}
	}
	return b.NewRecord()
}

// testRecord is the hand-checked batch of TestAddRange.
func testRecord(t testing.TB, mem memory.Allocator) arrow.Record {
	return newRecord(t, mem,
		[]any{10, nil, 20, 40, 0, 30},                  // latency_ms
		[]any{0.5, 0.25, 0.75, nil, 1, 0},              // pred_score
		[]any{"fraud", "ok", "fraud", nil, "ok", "ok"}, // pred_label
		[]any{nil, nil, nil, nil, nil, nil},            // pred_value
		column{"proba.fraud", arrow.PrimitiveTypes.Float64, []any{0.5, 0.25, nil, 1, 0, 0.5}},
		column{"f.amount", arrow.PrimitiveTypes.Float64, []any{10, nil, 30, math.NaN(), 20, -20}},
		column{"f.country", arrow.BinaryTypes.String, []any{"US", "DE", nil, "US", "US", "FR"}},
		column{"f.is_new", arrow.FixedWidthTypes.Boolean, []any{true, false, true, nil, false, true}},
		column{"s.region", arrow.BinaryTypes.String, []any{"eu", "us", nil, "eu", "eu", "us"}},
	)
}

// stateWant is the expected content of a WindowState.
type stateWant struct {
	events   uint64
	latency  [4]float64 // count, min, max, sum
	features map[string]FeatureState
}

func num(s NumericState) FeatureState  { return FeatureState{Kind: schemas.Number, Num: s} }
func flag(s NumericState) FeatureState { return FeatureState{Kind: schemas.Bool, Num: s} }
func cat(count, missing uint64, counts map[string]uint64) FeatureState {
	return FeatureState{Kind: schemas.String, Cat: CategoricalState{Count: count, Missing: missing, Counts: counts}}
}

func checkState(t *testing.T, w *WindowState, want stateWant) {
	t.Helper()
	if w.Events != want.events || !w.Dirty || w.LastOffset != -1 {
		t.Errorf("Events %d Dirty %v LastOffset %d, want %d true -1", w.Events, w.Dirty, w.LastOffset, want.events)
	}
	l := &w.Latency
	if got := [4]float64{float64(l.Count()), l.Min(), l.Max(), l.Sum()}; got != want.latency && !(l.Count() == 0 && want.latency[0] == 0) {
		t.Errorf("latency count/min/max/sum = %v, want %v", got, want.latency)
	}
	checkFeatures(t, w.Features, want.features)
}

func checkFeatures(t *testing.T, got map[string]*FeatureState, want map[string]FeatureState) {
	t.Helper()
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected feature %q: %+v", name, *got[name])
		}
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("feature %q missing", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			if g.Kind != w.Kind || g.TypeMismatch != w.TypeMismatch {
				t.Errorf("kind %v mismatches %d, want %v %d", g.Kind, g.TypeMismatch, w.Kind, w.TypeMismatch)
			}
			checkNumeric(t, g.Num, w.Num)
			c, wc := g.Cat, w.Cat
			if c.Count != wc.Count || c.Missing != wc.Missing || c.Other != wc.Other || !mapsEqual(c.Counts, wc.Counts) {
				t.Errorf("categorical %+v, want %+v", c, wc)
			}
		})
	}
}

func TestAddRange(t *testing.T) {
	tests := []struct {
		name   string
		lo, hi int
		want   stateWant
	}{
		{
			name: "whole record", lo: 0, hi: 6,
			want: stateWant{
				events:  6,
				latency: [4]float64{5, 0, 40, 100},
				features: map[string]FeatureState{
					// 0.5 .25 .75 1 0: mean .5, M2 0+.0625+.0625+.25+.25
					schemas.PredictionScoreFeature: num(NumericState{Count: 5, Missing: 1, Sum: 2.5, M2: 0.625, Min: 0, Max: 1}),
					schemas.PredictionLabelFeature: cat(5, 1, map[string]uint64{"fraud": 2, "ok": 3}),
					// .5 .25 1 0 .5: mean .45, M2 .0025+.04+.3025+.2025+.0025
					"__proba.fraud": num(NumericState{Count: 5, Missing: 1, Sum: 2.25, M2: 0.55, Min: 0, Max: 1}),
					// 10 30 20 -20: mean 10, M2 0+400+100+900
					"amount":  num(NumericState{Count: 4, Missing: 1, NaN: 1, Sum: 40, M2: 1400, Min: -20, Max: 30}),
					"country": cat(5, 1, map[string]uint64{"US": 3, "DE": 1, "FR": 1}),
					// 1 0 1 0 1: mean .6, M2 5*.6*.4
					"is_new": flag(NumericState{Count: 5, Missing: 1, Sum: 3, M2: 1.2, Min: 0, Max: 1}),
				},
			},
		},
		{
			name: "rows 1-3", lo: 1, hi: 4,
			want: stateWant{
				events:  3,
				latency: [4]float64{2, 20, 40, 60},
				features: map[string]FeatureState{
					schemas.PredictionScoreFeature: num(NumericState{Count: 2, Missing: 1, Sum: 1, M2: 0.125, Min: 0.25, Max: 0.75}),
					schemas.PredictionLabelFeature: cat(2, 1, map[string]uint64{"fraud": 1, "ok": 1}),
					"__proba.fraud":                num(NumericState{Count: 2, Missing: 1, Sum: 1.25, M2: 0.28125, Min: 0.25, Max: 1}),
					"amount":                       num(NumericState{Count: 1, Missing: 1, NaN: 1, Sum: 30, M2: 0, Min: 30, Max: 30}),
					"country":                      cat(2, 1, map[string]uint64{"DE": 1, "US": 1}),
					"is_new":                       flag(NumericState{Count: 2, Missing: 1, Sum: 1, M2: 0.5, Min: 0, Max: 1}),
				},
			},
		},
		{
			name: "row 3: all-null prediction columns add no feature", lo: 3, hi: 4,
			want: stateWant{
				events:  1,
				latency: [4]float64{1, 40, 40, 40},
				features: map[string]FeatureState{
					"__proba.fraud": num(NumericState{Count: 1, Sum: 1, Min: 1, Max: 1}),
					"amount":        num(NumericState{NaN: 1}),
					"country":       cat(1, 0, map[string]uint64{"US": 1}),
					"is_new":        {Kind: schemas.Null, Num: NumericState{Missing: 1}},
				},
			},
		},
		{
			name: "empty range", lo: 2, hi: 2,
			want: stateWant{features: map[string]FeatureState{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			rec := testRecord(t, mem)
			defer rec.Release()

			w := NewWindowState(Key{Model: "fraud", ModelVersion: "v1", WindowStart: 60_000}, 120_000)
			w.AddRange(rec, tt.lo, tt.hi)
			checkState(t, w, tt.want)

			// The same rows through a zero-offset slice of the record.
			sl := rec.NewSlice(int64(tt.lo), int64(tt.hi))
			defer sl.Release()
			ws := NewWindowState(w.Key, w.WindowEnd)
			ws.AddRange(sl, 0, tt.hi-tt.lo)
			checkState(t, ws, tt.want)
		})
	}
}

// TestAddRangeSplits adds the record in two ranges, into one state and into
// two merged states: every split must give the whole.
func TestAddRangeSplits(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	rec := testRecord(t, mem)
	defer rec.Release()
	key := Key{Model: "fraud", ModelVersion: "v1"}
	whole := NewWindowState(key, 60_000)
	whole.AddRange(rec, 0, 6)
	want := stateWant{events: 6, latency: [4]float64{5, 0, 40, 100}, features: map[string]FeatureState{}}
	for name, f := range whole.Features {
		want.features[name] = *f
	}
	for k := 0; k <= 6; k++ {
		t.Run(fmt.Sprint("split at ", k), func(t *testing.T) {
			one := NewWindowState(key, 60_000)
			one.AddRange(rec, 0, k)
			one.AddRange(rec, k, 6)
			checkState(t, one, want)

			a, b := NewWindowState(key, 60_000), NewWindowState(key, 60_000)
			a.AddRange(rec, 0, k)
			b.AddRange(rec, k, 6)
			b.LastOffset = 42
			a.Merge(b)
			a.LastOffset = -1
			checkState(t, a, want)
		})
	}
}

func TestAddRangeKinds(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	nulls := []any{nil, nil, nil}
	recs := []arrow.Record{
		// x only null (as float64, the builder's type for such a column), y a number
		newRecord(t, mem, nulls, nulls, nulls, nulls,
			column{"f.x", arrow.PrimitiveTypes.Float64, []any{nil, nil, nil}},
			column{"f.y", arrow.PrimitiveTypes.Float64, []any{1, 2, nil}}),
		// x turns out a string; y arrives as strings: mismatch
		newRecord(t, mem, nulls, nulls, nulls, nulls,
			column{"f.x", arrow.BinaryTypes.String, []any{"a", nil, "b"}},
			column{"f.y", arrow.BinaryTypes.String, []any{"1", nil, "2"}}),
		// an unsupported column type (int64) counts as a mismatch
		newRecord(t, mem, nulls, nulls, nulls, nulls,
			column{"f.x", arrow.PrimitiveTypes.Int64, []any{int64(5), nil, nil}},
			column{"f.y", arrow.PrimitiveTypes.Float64, []any{3, nil, nil}}),
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	w := NewWindowState(Key{}, 60_000)
	for _, r := range recs {
		w.AddRange(r, 0, 3)
	}
	w.AddTypeMismatches("y", 4)
	w.AddTypeMismatches("z", 1)
	w.AddTypeMismatches("y", 0)
	checkFeatures(t, w.Features, map[string]FeatureState{
		// 3 nulls, a, null, b, then 5 as a mismatch with 2 nulls
		"x": {Kind: schemas.String, TypeMismatch: 1, Cat: CategoricalState{Count: 2, Missing: 3 + 1 + 3, Counts: map[string]uint64{"a": 1, "b": 1}}},
		// 1 2 null, then "1" null "2" as mismatches, then 3 null null; plus 4 from metadata
		"y": {Kind: schemas.Number, TypeMismatch: 2 + 4, Num: NumericState{Count: 3, Missing: 1 + 3 + 2, Sum: 6, M2: 2, Min: 1, Max: 3}},
		"z": {Kind: schemas.Null, TypeMismatch: 1},
	})
	if w.Events != 9 {
		t.Errorf("Events = %d, want 9", w.Events)
	}
}

func TestAddRangePanicsOutOfRange(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	rec := testRecord(t, mem)
	defer rec.Release()
	for _, r := range [][2]int{{-1, 2}, {3, 2}, {0, 7}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AddRange(%d, %d) did not panic", r[0], r[1])
				}
			}()
			NewWindowState(Key{}, 0).AddRange(rec, r[0], r[1])
		}()
	}
}

func TestFeatureMergeKinds(t *testing.T) {
	tests := []struct {
		name    string
		into, o FeatureState
		want    FeatureState
	}{
		{
			name: "null takes the other kind",
			into: FeatureState{Num: NumericState{Missing: 2}},
			o:    cat(3, 1, map[string]uint64{"a": 3}),
			want: cat(3, 3, map[string]uint64{"a": 3}),
		},
		{
			name: "null into string",
			into: cat(3, 1, map[string]uint64{"a": 3}),
			o:    FeatureState{TypeMismatch: 1, Num: NumericState{Missing: 2}},
			want: FeatureState{Kind: schemas.String, TypeMismatch: 1, Cat: CategoricalState{Count: 3, Missing: 3, Counts: map[string]uint64{"a": 3}}},
		},
		{
			name: "different kinds: receiver's wins",
			into: num(NumericState{Count: 1, Sum: 2, Min: 2, Max: 2}),
			o:    FeatureState{Kind: schemas.Bool, TypeMismatch: 1, Num: NumericState{Count: 2, Missing: 1, NaN: 1, Sum: 1, Min: 0, Max: 1}},
			want: FeatureState{Kind: schemas.Number, TypeMismatch: 1 + 3, Num: NumericState{Count: 1, Missing: 1 + 3, Sum: 2, Min: 2, Max: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.into.Clone()
			f.Merge(&tt.o)
			checkFeatures(t, map[string]*FeatureState{"f": f}, map[string]FeatureState{"f": tt.want})
		})
	}
}

func TestWindowMergeAndClone(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	rec := testRecord(t, mem)
	defer rec.Release()
	key := Key{Model: "fraud", ModelVersion: "v1", WindowStart: 0}

	a := NewWindowState(key, 60_000)
	a.AddRange(rec, 0, 2)
	a.LastOffset, a.Late, a.Dirty = 7, 1, false
	b := NewWindowState(key, 60_000)
	b.AddRange(rec, 2, 6)
	b.LastOffset, b.Late, b.Final = 5, 2, true

	c := a.Clone()
	c.Merge(b)
	if c.Events != 6 || c.Late != 3 || c.LastOffset != 7 || !c.Final || !c.Dirty || c.Latency.Count() != 5 {
		t.Errorf("merged Events %d Late %d LastOffset %d Final %v Dirty %v latencies %d",
			c.Events, c.Late, c.LastOffset, c.Final, c.Dirty, c.Latency.Count())
	}
	// a and b are untouched, and c shares nothing with them.
	if a.Events != 2 || a.Features["amount"].Num.Count != 1 || a.Features["country"].Cat.Counts["US"] != 1 || a.Latency.Count() != 1 {
		t.Errorf("Merge into a clone changed the original: %+v", a)
	}
	c.Features["country"].Cat.Counts["US"] = 100
	c.Features["is_new"].Num.Count = 100
	c.Latency.Add(1)
	if b.Features["country"].Cat.Counts["US"] != 2 || b.Features["is_new"].Num.Count != 3 || b.Latency.Count() != 4 {
		t.Error("merged state shares memory with its source")
	}

	clean := NewWindowState(key, 60_000)
	clean.Merge(NewWindowState(key, 60_000))
	if clean.Dirty {
		t.Error("merging an empty state set Dirty")
	}

	defer func() {
		if recover() == nil {
			t.Error("merging another window did not panic")
		}
	}()
	a.Merge(NewWindowState(Key{Model: "other"}, 60_000))
}

// benchRecord is a batch of 1000 events with 20 float64 features, latency and
// a score, none null unless nullEvery > 0.
func benchRecord(b *testing.B, mem memory.Allocator, rows, features, nullEvery int) arrow.Record {
	val := func(i, j int) any {
		if nullEvery > 0 && (i+j)%nullEvery == 0 {
			return nil
		}
		return float64((i*31+j*7)%1000) * 0.37
	}
	latency, score, label, value := make([]any, rows), make([]any, rows), make([]any, rows), make([]any, rows)
	for i := range rows {
		latency[i] = 1 + float64(i%200)*1.7
		score[i] = float64(i%100) / 100
	}
	var cols []column
	for j := range features {
		c := column{name: fmt.Sprintf("f.x%02d", j), typ: arrow.PrimitiveTypes.Float64, vals: make([]any, rows)}
		for i := range rows {
			c.vals[i] = val(i, j)
		}
		cols = append(cols, c)
	}
	return newRecord(b, mem, latency, score, label, value, cols...)
}

func BenchmarkAddRange(b *testing.B) {
	const rows, features = 1000, 20
	for _, bc := range []struct {
		name      string
		nullEvery int
	}{{"no nulls", 0}, {"10% nulls", 10}} {
		b.Run(bc.name, func(b *testing.B) {
			rec := benchRecord(b, memory.DefaultAllocator, rows, features, bc.nullEvery)
			defer rec.Release()
			w := NewWindowState(Key{Model: "fraud"}, 60_000)
			b.ReportAllocs()
			for b.Loop() {
				w.AddRange(rec, 0, rows)
			}
			perRow := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / rows
			b.ReportMetric(perRow, "ns/row")
			// Feature values: 20 features + score.
			b.ReportMetric(float64(features+1)*1e9/perRow, "values/s")
		})
	}
}

func BenchmarkAddRangeStrings(b *testing.B) {
	const rows = 1000
	mem := memory.DefaultAllocator
	nulls := make([]any, rows)
	country := column{name: "f.country", typ: arrow.BinaryTypes.String, vals: make([]any, rows)}
	for i := range rows {
		country.vals[i] = []string{"US", "DE", "FR", "GB", "BR", "IN", "JP"}[i%7]
	}
	rec := newRecord(b, mem, nulls, nulls, nulls, nulls, country)
	defer rec.Release()
	w := NewWindowState(Key{Model: "fraud"}, 60_000)
	b.ReportAllocs()
	for b.Loop() {
		w.AddRange(rec, 0, rows)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
}
