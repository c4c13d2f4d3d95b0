package multivariate_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/processors/multivariate"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// batch builds one record of events with the production batch builder.
func batch(t testing.TB, evs []schemas.Event) arrow.Record {
	t.Helper()
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	for i := range evs {
		if err := b.Append(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return b.NewRecord()
}

func event(i int, fs ...schemas.Feature) schemas.Event {
	return schemas.Event{ID: fmt.Sprint("e", i), Model: "m", ModelVersion: "1", Time: t0, Features: fs, Prediction: schemas.Score(0.5)}
}

// correlated returns n events whose x and y are strongly correlated (y = 2x
// + noise), with a categorical c and a flag b.
func correlated(rng *rand.Rand, n int, broken bool) []schemas.Event {
	evs := make([]schemas.Event, n)
	for i := range evs {
		x := rng.NormFloat64()
		y := 2*x + 0.1*rng.NormFloat64()
		if broken {
			y = 2*rng.NormFloat64() + 0.1*rng.NormFloat64()
		}
		evs[i] = event(i, schemas.Num("x", x), schemas.Num("y", y), schemas.Str("c", []string{"a", "b", "b"}[i%3]), schemas.Flag("b", i%4 == 0))
	}
	return evs
}

func fit(t testing.TB, opts multivariate.FitOptions, recs ...arrow.Record) *multivariate.Model {
	t.Helper()
	f, err := multivariate.NewFitter(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := f.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	m, err := f.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFitColumns: what each kind of column becomes (imputation and
// encoding as NannyML's SimpleImputer and CountEncoder).
func TestFitColumns(t *testing.T) {
	evs := []schemas.Event{
		event(0, schemas.Num("x", 1), schemas.Str("c", "b"), schemas.Flag("b", true), schemas.Num("k", 5)),
		event(1, schemas.Num("x", 3), schemas.Str("c", "a"), schemas.Flag("b", true), schemas.Num("k", 5)),
		event(2, schemas.Missing("x"), schemas.Str("c", "b"), schemas.Missing("b"), schemas.Num("k", 5)),
		event(3, schemas.Num("x", math.NaN()), schemas.Str("c", "a"), schemas.Flag("b", false), schemas.Num("k", 5), schemas.Missing("gone")),
		event(4, schemas.Num("x", 8), schemas.Missing("c"), schemas.Flag("b", false), schemas.Num("k", 5)),
	}
	m := fit(t, multivariate.FitOptions{}, batch(t, evs))
	if len(m.Columns) != 4 {
		t.Fatalf("columns %+v, want b, c, k, x (gone has no value)", m.Columns)
	}
	tests := []struct {
		name        string
		categorical bool
		impute      float64
		freq        map[string]float64
		mean, scale float64
	}{
		// b: true 2, false 2, missing 1 -> the tie goes to the smallest, "false".
		{"b", true, 0.6, map[string]float64{"false": 0.6, "true": 0.4}, 0.52, math.Sqrt(0.0096)},
		// c: a 2, b 2, missing 1 -> "a".
		{"c", true, 0.6, map[string]float64{"a": 0.6, "b": 0.4}, 0.52, math.Sqrt(0.0096)},
		// k: constant: scale 1.
		{"k", false, 5, nil, 5, 1},
		// x: 1, 3, 8 and two missing (null and NaN) -> mean 4.
		{"x", false, 4, nil, 4, math.Sqrt((9 + 1 + 0 + 0 + 16) / 5.0)},
	}
	for i, tt := range tests {
		c := m.Columns[i]
		if c.Name != tt.name || c.Categorical != tt.categorical {
			t.Errorf("column %d: %s categorical %v, want %s %v", i, c.Name, c.Categorical, tt.name, tt.categorical)
			continue
		}
		if math.Abs(c.Impute-tt.impute) > 1e-12 || math.Abs(c.Mean-tt.mean) > 1e-12 || math.Abs(c.Scale-tt.scale) > 1e-12 {
			t.Errorf("%s: impute %v mean %v scale %v, want %v %v %v", c.Name, c.Impute, c.Mean, c.Scale, tt.impute, tt.mean, tt.scale)
		}
		for k, v := range tt.freq {
			if math.Abs(c.Freq[k]-v) > 1e-12 {
				t.Errorf("%s: share of %q %v, want %v", c.Name, k, c.Freq[k], v)
			}
		}
	}
}

// TestErrorsImpute: a row missing every value is the imputed row; a
// category the reference lacks encodes as 0; a value of another kind is
// imputed.
func TestErrorsImpute(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := fit(t, multivariate.FitOptions{}, batch(t, correlated(rng, 400, false)))
	ref := correlated(rng, 1, false)[0]
	tests := []struct {
		name string
		a, b schemas.Event
		same bool
	}{
		{"absent and null are imputed alike", event(0), event(1, schemas.Missing("x"), schemas.Missing("y"), schemas.Missing("c"), schemas.Missing("b")), true},
		{"NaN is missing", event(0, schemas.Num("x", math.NaN())), event(1), true},
		{"a string for a numeric column is missing", event(0, schemas.Str("x", "oops")), event(1), true},
		{"an unseen category is not the imputed one", event(0, schemas.Str("c", "zz")), event(1), false},
		{"values count", ref, event(1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ea := m.Errors(nil, batch(t, []schemas.Event{tt.a}), 0, 1)[0]
			eb := m.Errors(nil, batch(t, []schemas.Event{tt.b}), 0, 1)[0]
			if (ea == eb) != tt.same {
				t.Errorf("errors %v and %v, want same=%v", ea, eb, tt.same)
			}
		})
	}
}

// TestDriftSeen: breaking the correlation of x and y (same marginals)
// raises the window's mean error above the upper threshold; data like the
// reference stays within the thresholds.
func TestDriftSeen(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m := fit(t, multivariate.FitOptions{ChunkRows: 500}, batch(t, correlated(rng, 5000, false)))
	if m.Chunks != 10 || math.IsNaN(m.Upper) {
		t.Fatalf("chunks %d, upper %v", m.Chunks, m.Upper)
	}
	sc := multivariate.NewScorer(nil, nopLog())
	sc.SetModel("m", "1", 9, m)
	for _, broken := range []bool{false, true} {
		st := stats.NewWindowState(stats.Key{Model: "m", ModelVersion: "1"}, 60000)
		rec := batch(t, correlated(rng, 500, broken))
		st.AddRange(rec, 0, 500)
		sc.AddRange(st, rec, 0, 500)
		r := multivariate.Evaluate(m, 9, st)
		if r.Drifted != broken || r.N != 500 || r.Events != 500 {
			t.Errorf("broken=%v: score %v (thresholds %v..%v) drifted %v, n %d", broken, r.Score, r.Lower, r.Upper, r.Drifted, r.N)
		}
		if fs := st.Features[multivariate.ErrorFeature(9)]; fs.Num.Missing != 0 || fs.Values.Count() != 500 {
			t.Errorf("error feature: missing %d, %d values", fs.Num.Missing, fs.Values.Count())
		}
		// Another reference's errors are not this one's.
		if r := multivariate.Evaluate(m, 10, st); r.N != 0 || !math.IsNaN(r.Score) || r.Drifted {
			t.Errorf("reference 10: %+v", r)
		}
	}
}

// TestMergeExact: the errors of a window split over partitions and
// batches merge to those of the whole (count and sum exactly, the mean to
// rounding), and AddRange leaves the derived feature's missing count alone.
func TestMergeExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	m := fit(t, multivariate.FitOptions{}, batch(t, correlated(rng, 1000, false)))
	sc := multivariate.NewScorer(nil, nopLog())
	sc.SetModel("m", "1", 1, m)
	evs := correlated(rng, 900, false)
	key := stats.Key{Model: "m", ModelVersion: "1"}
	whole := stats.NewWindowState(key, 60000)
	rec := batch(t, evs)
	whole.AddRange(rec, 0, 900)
	sc.AddRange(whole, rec, 0, 900)
	var parts []*stats.WindowState
	for p := range 3 {
		st := stats.NewWindowState(key, 60000)
		for lo := p * 300; lo < (p+1)*300; lo += 100 {
			r := batch(t, evs[lo:lo+100])
			st.AddRange(r, 0, 100)
			sc.AddRange(st, r, 0, 100)
		}
		parts = append(parts, st)
	}
	merged := multivariate.MergeWindows(parts)
	if len(merged) != 1 {
		t.Fatalf("%d merged windows", len(merged))
	}
	a, b := multivariate.Evaluate(m, 1, whole), multivariate.Evaluate(m, 1, merged[0])
	if a.N != b.N || math.Abs(a.Score-b.Score) > 1e-12 || math.Abs(a.SamplingError-b.SamplingError) > 1e-12 {
		t.Errorf("whole %+v, merged %+v", a, b)
	}
	if fs := merged[0].Features[multivariate.ErrorFeature(1)]; fs.Num.Missing != 0 {
		t.Errorf("merged error feature has %d missing", fs.Num.Missing)
	}
}

// TestVarianceShare: the number of components follows sklearn's rule for
// a float n_components (the fewest whose cumulative ratio exceeds it).
func TestVarianceShare(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	// Four independent standard normals: each component explains about 1/4.
	evs := make([]schemas.Event, 4000)
	for i := range evs {
		evs[i] = event(i, schemas.Num("a", rng.NormFloat64()), schemas.Num("b", rng.NormFloat64()), schemas.Num("c", rng.NormFloat64()), schemas.Num("d", rng.NormFloat64()))
	}
	rec := batch(t, evs)
	for _, tt := range []struct {
		share float64
		want  int
	}{{0.1, 1}, {0.4, 2}, {0.65, 3}, {0.9, 4}, {1, 4}} {
		m := fit(t, multivariate.FitOptions{VarianceShare: tt.share}, rec)
		if len(m.Components) != tt.want || m.Explained <= min(tt.share, 0.999) {
			t.Errorf("share %v: %d components explaining %v, want %d", tt.share, len(m.Components), m.Explained, tt.want)
		}
	}
	for _, bad := range []multivariate.FitOptions{{VarianceShare: -0.1}, {VarianceShare: 1.5}, {ChunkRows: -1}} {
		if _, err := multivariate.NewFitter(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestThresholdRules: NannyML's alert rule (not lower < v < upper) and a
// missing lower threshold.
func TestThresholdRules(t *testing.T) {
	m := &multivariate.Model{Lower: 1, Upper: 2}
	none := &multivariate.Model{Lower: math.NaN(), Upper: 2}
	for _, tt := range []struct {
		m    *multivariate.Model
		v    float64
		want bool
	}{{m, 1.5, false}, {m, 1, true}, {m, 0.5, true}, {m, 2, true}, {m, math.NaN(), false}, {none, 0, false}, {none, 2.1, true}} {
		if got := tt.m.Drifted(tt.v); got != tt.want {
			t.Errorf("lower %v upper %v: Drifted(%v) = %v", tt.m.Lower, tt.m.Upper, tt.v, got)
		}
	}
}

func TestModelEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	m := fit(t, multivariate.FitOptions{}, batch(t, correlated(rng, 300, false)))
	data, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var q multivariate.Model
	if err := q.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	again, _ := q.MarshalBinary()
	if !bytes.Equal(data, again) {
		t.Fatal("re-encoding a decoded model gives other bytes")
	}
	rec := batch(t, correlated(rng, 20, true))
	a, b := m.Errors(nil, rec, 0, 20), q.Errors(nil, rec, 0, 20)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("row %d: error %v, decoded model %v", i, a[i], b[i])
		}
	}
	for n := 0; n < len(data); n++ {
		if err := new(multivariate.Model).UnmarshalBinary(data[:n]); !errors.Is(err, multivariate.ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	if err := new(multivariate.Model).UnmarshalBinary(append(bytes.Clone(data), 0)); !errors.Is(err, multivariate.ErrCorrupt) {
		t.Errorf("trailing byte: %v", err)
	}
	t.Logf("model of %d columns, %d components: %d bytes", len(m.Columns), len(m.Components), len(data))
}

func FuzzUnmarshalModel(f *testing.F) {
	rng := rand.New(rand.NewPCG(11, 12))
	m := fit(f, multivariate.FitOptions{}, batch(f, correlated(rng, 50, false)))
	data, err := m.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("VMVR\x01"))
	rec := batch(f, correlated(rng, 3, true))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m multivariate.Model
		if err := m.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, multivariate.ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded model does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatal("encoding not stable")
		}
		m.Errors(nil, rec, 0, 3) // a decoded model scores without panicking
	})
}
