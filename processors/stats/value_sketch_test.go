package stats

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/schemas"
)

// valueData returns n values of a named distribution in the order the test
// feeds them.
func valueData(name string, n int) []float64 {
	r := rand.New(rand.NewPCG(3, uint64(len(name))))
	vs := make([]float64, n)
	for i := range vs {
		switch name {
		case "normal", "sorted", "reversed", "zigzag":
			vs[i] = 100 + 15*r.NormFloat64()
		case "lognormal":
			vs[i] = math.Exp(2 + 2*r.NormFloat64())
		case "negative heavy tail":
			vs[i] = -math.Exp(5*r.NormFloat64()) * float64(1-2*(i&1))
		case "discrete":
			vs[i] = float64(r.IntN(7)) - 2 // ties: -2 .. 4
		case "mostly one value":
			vs[i] = 0
			if r.IntN(10) == 0 {
				vs[i] = r.Float64()
			}
		}
	}
	switch name {
	case "sorted":
		slices.Sort(vs)
	case "reversed":
		slices.Sort(vs)
		slices.Reverse(vs)
	case "zigzag": // sorted runs alternating up and down, hostile to compactors fed in order
		slices.Sort(vs)
		const run = 3000
		for i := 0; i < len(vs); i += run {
			if i/run%2 == 1 {
				slices.Reverse(vs[i:min(i+run, len(vs))])
			}
		}
	}
	return vs
}

// maxCDFError returns max over all x of |s.CDF(x) - F(x)|, F the empirical
// CDF of sorted. Both are step functions that move only at data values, so
// it checks every distinct data value.
func maxCDFError(s *ValueSketch, sorted []float64) float64 {
	vs, ws := s.WeightedValues()
	n := float64(len(sorted))
	worst := 0.0
	j, cum := 0, uint64(0)
	for i := 0; i < len(sorted); {
		x := sorted[i]
		for i < len(sorted) && sorted[i] == x {
			i++
		}
		for j < len(vs) && vs[j] <= x {
			cum += ws[j]
			j++
		}
		worst = max(worst, math.Abs(float64(cum)/float64(s.Count())-float64(i)/n))
	}
	return worst
}

func TestValueSketchExact(t *testing.T) {
	vs := []float64{3, -1, 2, 2, math.NaN(), math.Copysign(0, -1), math.Inf(1), 0, 10, -7.5}
	var s ValueSketch
	s.AddFloat64s(vs[:4])
	for _, v := range vs[4:] {
		s.Add(v)
	}
	if s.Count() != 8 || !s.Exact() || s.RankErrorBound() != 0 {
		t.Fatalf("Count %d Exact %v bound %v, want 8 true 0", s.Count(), s.Exact(), s.RankErrorBound())
	}
	gotV, gotW := s.WeightedValues()
	wantV, wantW := []float64{-7.5, -1, 0, 2, 3, 10}, []uint64{1, 1, 2, 2, 1, 1}
	if !slices.Equal(gotV, wantV) || !slices.Equal(gotW, wantW) || math.Signbit(gotV[2]) {
		t.Fatalf("WeightedValues = %v %v, want %v %v (+0, not -0)", gotV, gotW, wantV, wantW)
	}
	for _, c := range []struct{ x, want float64 }{
		{-8, 0}, {-7.5, 1.0 / 8}, {math.Copysign(0, -1), 4.0 / 8}, {2.5, 6.0 / 8}, {10, 1}, {math.Inf(-1), 0}, {math.Inf(1), 1},
	} {
		if got := s.CDF(c.x); got != c.want {
			t.Errorf("CDF(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	sorted := []float64{-7.5, -1, 0, 0, 2, 2, 3, 10}
	for _, q := range testQuantiles {
		if got, want := s.Quantile(q), nearestRank(sorted, q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	var empty ValueSketch
	if !math.IsNaN(empty.CDF(1)) || !math.IsNaN(empty.Quantile(0.5)) || !math.IsNaN(s.CDF(math.NaN())) || !math.IsNaN(s.Quantile(1.5)) {
		t.Error("empty sketch or NaN argument did not give NaN")
	}
}

// TestValueSketchExactCap checks that exact sketches stay exact up to
// ExactCap values, by adds and by merges, and that the merge of exact
// states equals the state of all values.
func TestValueSketchExactCap(t *testing.T) {
	vs := valueData("normal", ExactCap+1)
	var whole ValueSketch
	whole.AddFloat64s(vs[:ExactCap])
	if !whole.Exact() {
		t.Fatal("not exact at ExactCap values")
	}
	// Sixty 1-minute windows merge into the hour exactly.
	var hour ValueSketch
	for i := range 60 {
		var minute ValueSketch
		for _, v := range vs[i*ExactCap/60 : (i+1)*ExactCap/60] {
			minute.Add(v)
		}
		hour.Merge(&minute)
	}
	var rest ValueSketch
	rest.AddFloat64s(vs[60*ExactCap/60 : ExactCap])
	hour.Merge(&rest)
	if !hour.Exact() || !sketchesEqual(&hour, &whole) {
		t.Fatal("merge of exact minutes differs from the exact hour")
	}
	whole.Add(vs[ExactCap])
	var extra ValueSketch
	extra.Add(vs[ExactCap])
	hour.Merge(&extra)
	if whole.Exact() || hour.Exact() || whole.Count() != ExactCap+1 || hour.Count() != ExactCap+1 {
		t.Fatalf("at ExactCap+1 values: Exact %v/%v, Count %d/%d", whole.Exact(), hour.Exact(), whole.Count(), hour.Count())
	}
	sorted := slices.Sorted(slices.Values(vs))
	for _, s := range []*ValueSketch{&whole, &hour} {
		if e, b := maxCDFError(s, sorted), s.RankErrorBound(); e > b {
			t.Errorf("CDF error %v above bound %v just past ExactCap", e, b)
		}
	}
}

func sketchesEqual(a, b *ValueSketch) bool {
	ea, _ := a.MarshalBinary()
	eb, _ := b.MarshalBinary()
	return bytes.Equal(ea, eb)
}

// TestValueSketchErrorBound checks the documented bound on generated data:
// max over x of |CDF - exact CDF| <= RankErrorBound, for a sketch fed value
// by value or in slices and for the merge of 60 partial sketches, and that
// the bound is near 1% or better.
func TestValueSketchErrorBound(t *testing.T) {
	sizes := []int{100_000, 1_000_000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	names := []string{"normal", "lognormal", "negative heavy tail", "discrete", "mostly one value", "sorted", "reversed", "zigzag"}
	for _, n := range sizes {
		for _, name := range names {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				vs := valueData(name, n)
				sorted := slices.Sorted(slices.Values(vs))
				var single, slices_ ValueSketch
				for _, v := range vs {
					single.Add(v)
				}
				for i := 0; i < len(vs); i += 1000 {
					slices_.AddFloat64s(vs[i:min(i+1000, len(vs))])
				}
				var merged ValueSketch
				for i := range 60 {
					var part ValueSketch
					part.AddFloat64s(vs[i*n/60 : (i+1)*n/60])
					merged.Merge(&part)
				}
				for _, c := range []struct {
					how string
					s   *ValueSketch
				}{{"Add", &single}, {"AddFloat64s", &slices_}, {"Merge of 60", &merged}} {
					if c.s.Count() != uint64(n) {
						t.Fatalf("%s: Count %d, want %d", c.how, c.s.Count(), n)
					}
					e, b := maxCDFError(c.s, sorted), c.s.RankErrorBound()
					t.Logf("%-12s max CDF error %.5f, bound %.5f, %d values kept", c.how, e, b, kept(c.s))
					if e > b {
						t.Errorf("%s: max CDF error %v above RankErrorBound %v", c.how, e, b)
					}
					if b > 0.0125 {
						t.Errorf("%s: RankErrorBound %v, want about 1%% or better", c.how, b)
					}
					// Quantile: the true CDF at Quantile(q) is within the bound of q.
					for _, q := range testQuantiles[1 : len(testQuantiles)-1] {
						x := c.s.Quantile(q)
						lo, hi := rankRange(sorted, x)
						if q < lo-b || q > hi+b {
							t.Errorf("%s: Quantile(%v) = %v has true rank [%v, %v]", c.how, q, x, lo, hi)
						}
					}
				}
			})
		}
	}
}

// rankRange returns the fractions of sorted that are < x and <= x.
func rankRange(sorted []float64, x float64) (lo, hi float64) {
	i, _ := slices.BinarySearch(sorted, x)
	j := i
	for j < len(sorted) && sorted[j] == x {
		j++
	}
	n := float64(len(sorted))
	return float64(i) / n, float64(j) / n
}

func kept(s *ValueSketch) int {
	vs, _ := s.WeightedValues()
	return len(vs)
}

// TestValueSketchHourFromMinutes merges sixty sketched 1-minute states and
// compares them with the state built from all values at once: each is within
// its bound of the exact CDF, so they are within the sum of the bounds of
// each other.
func TestValueSketchHourFromMinutes(t *testing.T) {
	const perMinute = 5000
	vs := valueData("lognormal", 60*perMinute)
	var whole, hour ValueSketch
	whole.AddFloat64s(vs)
	for i := range 60 {
		var minute ValueSketch
		minute.AddFloat64s(vs[i*perMinute : (i+1)*perMinute])
		if minute.Exact() {
			t.Fatal("minute state is exact; the test wants sketched ones")
		}
		hour.Merge(&minute)
	}
	sorted := slices.Sorted(slices.Values(vs))
	for _, c := range []struct {
		how string
		s   *ValueSketch
	}{{"all at once", &whole}, {"60 minutes merged", &hour}} {
		if e, b := maxCDFError(c.s, sorted), c.s.RankErrorBound(); e > b {
			t.Errorf("%s: max CDF error %v above bound %v", c.how, e, b)
		} else {
			t.Logf("%s: max CDF error %.5f, bound %.5f", c.how, e, b)
		}
	}
	bound := whole.RankErrorBound() + hour.RankErrorBound()
	for i := 0; i < len(sorted); i += 97 {
		if d := math.Abs(whole.CDF(sorted[i]) - hour.CDF(sorted[i])); d > bound {
			t.Fatalf("CDF(%v): hour from minutes and all at once differ by %v, bound %v", sorted[i], d, bound)
		}
	}
}

func TestValueSketchEncoding(t *testing.T) {
	states := map[string]*ValueSketch{"empty": {}}
	for _, n := range []int{1, 100, ExactCap, ExactCap + 1, 50_000} {
		s := new(ValueSketch)
		s.AddFloat64s(valueData("negative heavy tail", n))
		states[fmt.Sprint(n)] = s
	}
	for name, s := range states {
		t.Run(name, func(t *testing.T) {
			b, err := s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var got ValueSketch
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if again, _ := got.MarshalBinary(); !bytes.Equal(again, b) {
				t.Fatal("re-encoding the decoded sketch gives other bytes")
			}
			if got.Count() != s.Count() || got.Exact() != s.Exact() || got.RankErrorBound() != s.RankErrorBound() {
				t.Fatalf("decoded Count %d Exact %v bound %v, want %d %v %v", got.Count(), got.Exact(), got.RankErrorBound(), s.Count(), s.Exact(), s.RankErrorBound())
			}
			gv, gw := got.WeightedValues()
			wv, ww := s.WeightedValues()
			if !slices.Equal(gv, wv) || !slices.Equal(gw, ww) {
				t.Fatal("decoded sketch holds other values")
			}
			// A decoded sketch continues exactly as the original would.
			more := valueData("lognormal", 10_000)
			c := s.Clone()
			c.AddFloat64s(more)
			got.AddFloat64s(more)
			if !sketchesEqual(&c, &got) {
				t.Fatal("decoded sketch diverges from the original after more adds")
			}
			for n := range len(b) {
				var x ValueSketch
				if err := x.UnmarshalBinary(b[:n]); !errors.Is(err, ErrCorruptValueSketch) {
					t.Fatalf("decode of %d/%d bytes: err = %v", n, len(b), err)
				}
			}
		})
	}
	var x ValueSketch
	for _, bad := range [][]byte{
		{2, 0},                   // version
		{1, 0, 0},                // trailing byte
		{1, 2, 0, 1, 5},          // count 2, one value
		{1, 2, 0, 2, 9, 0x80, 0}, // not increasing... overlong
		{1, 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // NaN key
	} {
		if err := x.UnmarshalBinary(bad); !errors.Is(err, ErrCorruptValueSketch) {
			t.Errorf("UnmarshalBinary(%x): err = %v", bad, err)
		}
	}
}

func FuzzValueSketchUnmarshal(f *testing.F) {
	for _, n := range []int{0, 3, ExactCap + 100} {
		var s ValueSketch
		s.AddFloat64s(valueData("discrete", n))
		b, _ := s.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s ValueSketch
		if err := s.UnmarshalBinary(data); err != nil {
			return
		}
		for _, q := range testQuantiles {
			s.Quantile(q)
			s.CDF(q)
		}
		s.RankErrorBound()
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var again ValueSketch
		if err := again.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-encoded sketch does not decode: %v", err)
		}
		if b2, _ := again.MarshalBinary(); !bytes.Equal(b, b2) {
			t.Fatal("encoding is not canonical")
		}
		c := s.Clone()
		c.Merge(&again)
		c.AddFloat64s([]float64{1, 2, 3})
		if c.Count() != 2*s.Count()+3 {
			t.Fatalf("merge with itself: Count %d, want %d", c.Count(), 2*s.Count()+3)
		}
	})
}

// TestAddRangeValues checks the wiring: float64 features and numeric
// prediction columns feed Values (nulls, NaN and Inf excluded), booleans do
// not; Merge and Clone carry Values.
func TestAddRangeValues(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	rec := testRecord(t, mem)
	defer rec.Release()
	w := NewWindowState(Key{Model: "fraud"}, 60_000)
	w.AddRange(rec, 0, 6)
	want := map[string][]float64{
		"amount":                       {-20, 10, 20, 30},
		schemas.PredictionScoreFeature: {0, 0.25, 0.5, 0.75, 1},
		"__proba.fraud":                {0, 0.25, 0.5, 0.5, 1},
	}
	for name, fs := range w.Features {
		vs, ws := fs.Values.WeightedValues()
		var got []float64
		for i, v := range vs {
			for range ws[i] {
				got = append(got, v)
			}
		}
		if !slices.Equal(got, want[name]) {
			t.Errorf("%s: Values hold %v, want %v", name, got, want[name])
		}
		if complete := fs.ValuesComplete(); complete != (fs.Kind == schemas.Number) {
			t.Errorf("%s (%v): ValuesComplete = %v", name, fs.Kind, complete)
		}
	}
	c := w.Clone()
	c.Merge(w)
	if a := c.Features["amount"]; a.Values.Count() != 8 || !a.ValuesComplete() || w.Features["amount"].Values.Count() != 4 {
		t.Errorf("merged amount: %d values (complete %v), original %d", a.Values.Count(), a.ValuesComplete(), w.Features["amount"].Values.Count())
	}
	// A state decoded from an old encoding has no values: incomplete, and
	// so is every merge with it.
	old := w.Features["amount"].Clone()
	old.Values = ValueSketch{}
	if old.ValuesComplete() {
		t.Error("state without values reports complete values")
	}
	m := w.Features["amount"].Clone()
	m.Merge(old)
	if m.ValuesComplete() {
		t.Error("merge with a state without values reports complete values")
	}
}

func BenchmarkValueSketchAdd(b *testing.B) {
	vs := valueData("normal", 1<<16)
	for _, bc := range []struct {
		name string
		add  func(s *ValueSketch, i int)
	}{
		{"Add", func(s *ValueSketch, i int) { s.Add(vs[i&(1<<16-1)]) }},
		{"AddFloat64s/1000", func(s *ValueSketch, i int) {
			if i%1000 == 0 {
				s.AddFloat64s(vs[i&(1<<15-1) : i&(1<<15-1)+1000])
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var s ValueSketch
			b.ReportAllocs()
			b.SetBytes(8)
			for i := 0; b.Loop(); i++ {
				bc.add(&s, i)
			}
		})
	}
}

func BenchmarkValueSketchMerge(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var o ValueSketch
			o.AddFloat64s(valueData("normal", n))
			var s ValueSketch
			b.ReportAllocs()
			for b.Loop() {
				s.Merge(&o)
			}
		})
	}
}

// TestValueSketchSize logs the encoded size of a sketch of 10^6 values.
func TestValueSketchSize(t *testing.T) {
	for _, n := range []int{ExactCap, 100_000, 1_000_000} {
		var s ValueSketch
		s.AddFloat64s(valueData("normal", n))
		b, _ := s.MarshalBinary()
		t.Logf("%d values: %d bytes encoded, %d values kept, bound %.4f", n, len(b), kept(&s), s.RankErrorBound())
		if n == 1_000_000 && len(b) > 64<<10 {
			t.Errorf("sketch of 10^6 values encodes to %d bytes", len(b))
		}
	}
}

// BenchmarkAddRangeSmallWindows is BenchmarkAddRange with a new window every
// two batches (2000 values per feature: Values stay exact), as for 1-minute
// windows of a model at about 33 events/s per partition.
func BenchmarkAddRangeSmallWindows(b *testing.B) {
	const rows, features = 1000, 20
	rec := benchRecord(b, memory.DefaultAllocator, rows, features, 0)
	defer rec.Release()
	w := NewWindowState(Key{Model: "fraud"}, 60_000)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			w = NewWindowState(Key{Model: "fraud"}, 60_000)
		}
		w.AddRange(rec, 0, rows)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
}
