package drift

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func TestHandChecked(t *testing.T) {
	ln2 := math.Ln2
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		// (0.5-0.25)ln(2) + (0.5-0.75)ln(2/3) = 0.25 ln 3
		{"PSI", PSI([]float64{1, 1}, []float64{1, 3}), 0.25 * math.Log(3)},
		{"PSI identical", PSI([]float64{2, 3}, []float64{4, 6}), 0},
		// 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75)
		{"KL", KLDivergence([]float64{1, 1}, []float64{1, 3}), 0.5*math.Log(2) + 0.5*math.Log(2.0/3)},
		{"JS disjoint", JensenShannonDistance([]float64{1, 0}, []float64{0, 1}), math.Sqrt(ln2)},
		{"JS identical", JensenShannonDistance([]float64{1, 2}, []float64{2, 4}), 0},
		{"Hellinger disjoint", HellingerDistance([]float64{1, 0}, []float64{0, 1}), 1},
		// BC = sqrt(.5*.25) + sqrt(.5*.75)
		{"Hellinger", HellingerDistance([]float64{1, 1}, []float64{1, 3}), math.Sqrt(1 - math.Sqrt(0.125) - math.Sqrt(0.375))},
		{"Wasserstein point masses", WassersteinDistance([]float64{0}, []float64{1}), 1},
		{"Wasserstein spread", WassersteinDistance([]float64{0, 2}, []float64{1}), 1},
		{"Wasserstein shift", WassersteinDistance([]float64{0, 1, 2}, []float64{5, 6, 7}), 5},
		{"WassersteinNormed constant ref", WassersteinNormed([]float64{2, 2, 2}, []float64{3, 3}), 1 / 0.001},
		// std([0,2]) = 1
		{"WassersteinNormed", WassersteinNormed([]float64{0, 2}, []float64{1, 3}), 1},
		// expected [5, 5], observed [8, 2]: 9/5 + 9/5 = 3.6, dof 1
		{"ChiSquare stat", first(ChiSquare([]float64{10, 10}, []float64{8, 2})), 3.6},
		{"ChiSquare pvalue", second(ChiSquare([]float64{10, 10}, []float64{8, 2})), math.Erfc(math.Sqrt(3.6 / 2))},
		{"DriftShare", DriftShare([]bool{true, false, false, true}), 0.5},
		{"DriftShare none", DriftShare(nil), 0},
	} {
		if !near(c.got, c.want) || math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s = %.17g, want %.17g", c.name, c.got, c.want)
		}
	}
}

func first(a, _ float64) float64  { return a }
func second(_, b float64) float64 { return b }

func TestKSSmall(t *testing.T) {
	// n1 = n2 = 3, D = 1: P = 2/C(6,3) = 0.1 exactly.
	d, p := KS2Samp([]float64{1, 2, 3}, []float64{4, 5, 6})
	if d != 1 || math.Abs(p-0.1) > 1e-15 {
		t.Errorf("KS2Samp disjoint 3 vs 3 = (%v, %v), want (1, 0.1)", d, p)
	}
	// Ties across samples: ECDFs are equal at every point.
	d, p = KS2Samp([]float64{1, 1, 2, 2}, []float64{1, 2})
	if d != 0 || p != 1 {
		t.Errorf("KS2Samp tied = (%v, %v), want (0, 1)", d, p)
	}
	ref := []float64{3, 1, 2}
	cur := []float64{9, 7, 8}
	KS2Samp(ref, cur)
	WassersteinDistance(ref, cur)
	if !slices.Equal(ref, []float64{3, 1, 2}) || !slices.Equal(cur, []float64{9, 7, 8}) {
		t.Errorf("inputs modified: %v %v", ref, cur)
	}
}

func TestEdgeCases(t *testing.T) {
	nan := math.NaN()
	isNaN := math.IsNaN
	t.Run("empty samples", func(t *testing.T) {
		for _, c := range [][2][]float64{{nil, {1}}, {{1}, nil}, {nil, nil}} {
			if d, p := KS2Samp(c[0], c[1]); !isNaN(d) || !isNaN(p) {
				t.Errorf("KS2Samp(%v, %v) = (%v, %v), want NaN", c[0], c[1], d, p)
			}
			if w := WassersteinDistance(c[0], c[1]); !isNaN(w) {
				t.Errorf("WassersteinDistance = %v, want NaN", w)
			}
			if w := WassersteinNormed(c[0], c[1]); !isNaN(w) {
				t.Errorf("WassersteinNormed = %v, want NaN", w)
			}
		}
	})
	t.Run("empty distributions", func(t *testing.T) {
		empty, some := []float64{0, 0}, []float64{1, 2}
		for name, f := range map[string]func(a, b []float64) float64{
			"PSI": PSI, "KLDivergence": KLDivergence,
			"JensenShannonDistance": JensenShannonDistance, "HellingerDistance": HellingerDistance,
			"ZTest":     ZTest,
			"ChiSquare": func(a, b []float64) float64 { _, p := ChiSquare(a, b); return p },
			"ChiSquareContingency": func(a, b []float64) float64 {
				_, p, _ := ChiSquareContingency(a, b)
				return p
			},
		} {
			if v := f(empty, some); !isNaN(v) {
				t.Errorf("%s(empty ref) = %v, want NaN", name, v)
			}
			if v := f(some, empty); !isNaN(v) {
				t.Errorf("%s(empty cur) = %v, want NaN", name, v)
			}
			if v := f([]float64{1, nan}, some); !isNaN(v) {
				t.Errorf("%s(NaN count) = %v, want NaN", name, v)
			}
			if v := f([]float64{1, -1}, some); !isNaN(v) {
				t.Errorf("%s(negative count) = %v, want NaN", name, v)
			}
			if v := f([]float64{1, math.Inf(1)}, some); !isNaN(v) {
				t.Errorf("%s(+Inf count) = %v, want NaN", name, v)
			}
		}
	})
	t.Run("single value each", func(t *testing.T) {
		if d, p := KS2Samp([]float64{1}, []float64{2}); d != 1 || p != 1 {
			t.Errorf("KS2Samp([1], [2]) = (%v, %v), want (1, 1) as scipy's exact", d, p)
		}
		if d, p := KS2SampMethod([]float64{1}, []float64{2}, KSAsymp); d != 1 || !isNaN(p) {
			t.Errorf("KS asymp 1 vs 1 = (%v, %v), want (1, NaN) as scipy (round(0.5) = 0)", d, p)
		}
	})
	t.Run("category unseen in reference", func(t *testing.T) {
		stat, p := ChiSquare([]float64{10, 10, 0}, []float64{5, 5, 1})
		if !math.IsInf(stat, 1) || p != 0 {
			t.Errorf("ChiSquare = (%v, %v), want (+Inf, 0)", stat, p)
		}
		if v := PSI([]float64{10, 10, 0}, []float64{5, 5, 1}); math.IsInf(v, 0) || isNaN(v) {
			t.Errorf("PSI = %v, want finite (zero filled)", v)
		}
		if v := KLDivergence([]float64{10, 10, 0}, []float64{5, 5, 1}); math.IsInf(v, 0) || isNaN(v) {
			t.Errorf("KLDivergence = %v, want finite (zero filled)", v)
		}
	})
	t.Run("single category", func(t *testing.T) {
		if s, p := ChiSquare([]float64{5}, []float64{3}); s != 0 || p != 1 {
			t.Errorf("ChiSquare one category = (%v, %v), want (0, 1)", s, p)
		}
		if s, p, dof := ChiSquareContingency([]float64{5, 0}, []float64{3, 0}); s != 0 || p != 1 || dof != 0 {
			t.Errorf("ChiSquareContingency one category = (%v, %v, %d), want (0, 1, 0)", s, p, dof)
		}
		if p := ZTest([]float64{0, 5}, []float64{0, 3}); p != 1 {
			t.Errorf("ZTest one category = %v, want 1", p)
		}
	})
	t.Run("length mismatch panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("PSI with 2 and 3 bins did not panic")
			}
		}()
		PSI([]float64{1, 2}, []float64{1, 2, 3})
	})
}

func TestSturgesEdges(t *testing.T) {
	for _, c := range []struct {
		xs, want []float64
	}{
		{nil, []float64{0, 1}},
		{[]float64{1, 1, 1}, []float64{0.5, 1.5}},
		// 16 values: log2(16)+1 = 5 bins of width 3
		{[]float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, []float64{0, 3, 6, 9, 12, 15}},
	} {
		if got := SturgesEdges(c.xs); !slices.Equal(got, c.want) {
			t.Errorf("SturgesEdges(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
	if got := HistogramCounts([]float64{0, 2.9, 3, 15, 16, -1}, []float64{0, 3, 6, 9, 12, 15}); !slices.Equal(got, []float64{2, 1, 0, 0, 1}) {
		t.Errorf("HistogramCounts = %v", got)
	}
}

func TestDefaultMethod(t *testing.T) {
	for _, c := range []struct {
		kind          Kind
		nRef, nUnique int
		want          Method
		threshold     float64
		score         float64
		drifted       bool
	}{
		{Numerical, 1000, 6, MethodKS, 0.05, 0.05, true},
		{Numerical, 1000, 5, MethodChiSquare, 0.05, 0.05, false},
		{Numerical, 1000, 2, MethodZ, 0.05, 0.049, true},
		{Numerical, 1001, 6, MethodWasserstein, 0.1, 0.1, true},
		{Numerical, 1001, 5, MethodJensenShannon, 0.1, 0.099, false},
		{Categorical, 10, 3, MethodChiSquare, 0.05, 0.2, false},
		{Categorical, 10, 2, MethodZ, 0.05, 0.01, true},
		{Categorical, 5000, 2, MethodJensenShannon, 0.1, 0.3, true},
	} {
		m := DefaultMethod(c.kind, c.nRef, c.nUnique)
		if m != c.want || m.DefaultThreshold() != c.threshold || m.Drifted(c.score, m.DefaultThreshold()) != c.drifted {
			t.Errorf("DefaultMethod(%d, %d, %d) = %s (threshold %v, drifted(%v) %v), want %s (%v, %v)",
				c.kind, c.nRef, c.nUnique, m, m.DefaultThreshold(), c.score, m.Drifted(c.score, m.DefaultThreshold()),
				c.want, c.threshold, c.drifted)
		}
	}
	if MethodKS.Drifted(math.NaN(), 0.05) || MethodPSI.Drifted(math.NaN(), 0.1) {
		t.Error("a NaN score counted as drift")
	}
}

// benchSamples are two normal samples of the size of one busy feature window.
func benchSamples(n int, shift float64) (ref, cur []float64) {
	r := rand.New(rand.NewPCG(1, 2))
	ref, cur = make([]float64, n), make([]float64, n)
	for i := range ref {
		ref[i] = r.NormFloat64()
		cur[i] = r.NormFloat64() + shift
	}
	return ref, cur
}

const benchN = 356_000

func BenchmarkKS2Samp(b *testing.B) {
	for _, c := range []struct {
		name  string
		shift float64
	}{{"PelzGood", 0.003}, {"Smirnov", 0.012}} {
		ref, cur := benchSamples(benchN, c.shift)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(16 * benchN))
			for b.Loop() {
				KS2Samp(ref, cur)
			}
		})
		sref, scur := sortedCopy(ref), sortedCopy(cur)
		d, p := KS2SampSorted(sref, scur, KSAuto)
		b.Run(c.name+"/sorted", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(16 * benchN))
			for b.Loop() {
				KS2SampSorted(sref, scur, KSAuto)
			}
			b.ReportMetric(d, "D")
			b.ReportMetric(p, "pvalue")
		})
	}
}

func BenchmarkWassersteinDistance(b *testing.B) {
	ref, cur := benchSamples(benchN, 0.01)
	b.Run("unsorted", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(16 * benchN))
		for b.Loop() {
			WassersteinDistance(ref, cur)
		}
	})
	sref, scur := sortedCopy(ref), sortedCopy(cur)
	b.Run("sorted", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(16 * benchN))
		for b.Loop() {
			WassersteinDistanceSorted(sref, scur)
		}
	})
}

func BenchmarkPSI(b *testing.B) {
	for _, bins := range []int{10, 30, 100} {
		r := rand.New(rand.NewPCG(3, 4))
		ref, cur := make([]float64, bins), make([]float64, bins)
		for i := range ref {
			ref[i] = float64(r.IntN(1000))
			cur[i] = float64(r.IntN(1000))
		}
		ref[0], cur[1] = 0, 0 // exercise the zero filling
		b.Run(itoa(bins)+"bins", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				PSI(ref, cur)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
