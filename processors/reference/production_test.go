package reference

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// windowsOf returns one window state per record, windows a minute apart.
func windowsOf(t *testing.T, evs []schemas.Event, per int) []*stats.WindowState {
	t.Helper()
	var states []*stats.WindowState
	for i, r := range records(t, evs, per) {
		st := stats.NewWindowState(stats.Key{Model: "fraud", ModelVersion: "3", WindowStart: int64(i) * 60_000}, int64(i+1)*60_000)
		st.AddRange(r, 0, int(r.NumRows()))
		states = append(states, st)
	}
	return states
}

// TestBuildFromWindowsExact: while the union holds at most stats.ExactCap
// values of a feature, the profile built from windows is byte for byte the
// one the file Builder makes from the same events.
func TestBuildFromWindowsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	evs := fraudEvents(2000)
	for i := range evs {
		// Ties, negatives and a NaN; no -0, which value sketches store as +0.
		evs[i].Features[0] = schemas.Num("amount", math.Round(rng.NormFloat64()*20)/4+0)
	}
	evs[17].Features[0] = schemas.Num("amount", math.NaN())
	for _, bins := range []int{0, 1, 7, 100} {
		for _, per := range []int{2000, 300} {
			t.Run(fmt.Sprint(bins, " bins, ", per, " per window"), func(t *testing.T) {
				meta := Meta{Model: "fraud", ModelVersion: "3", ID: 7, CreatedAt: testTime, Source: "test"}
				got, err := BuildFromWindowsOptions(meta, BuilderOptions{Bins: bins}, windowsOf(t, evs, per))
				if err != nil {
					t.Fatal(err)
				}
				want := build(t, records(t, evs, len(evs)), BuilderOptions{Bins: bins})
				if a := got.Feature("amount"); !a.Exact || len(a.Quantiles) != 1999 || a.Edges == nil {
					t.Errorf("amount = %+v", a)
				}
				if per < len(evs) {
					// Merged moments may differ from one pass over the
					// values in the last bits (float rounding of the merge
					// order); everything else must not.
					for i := range want.Features {
						g, w := &got.Features[i], &want.Features[i]
						if !closeTo(g.Mean, w.Mean) || !closeTo(g.Std, w.Std) {
							t.Errorf("%s: mean %v std %v; file Builder: %v %v", w.Name, g.Mean, g.Std, w.Mean, w.Std)
						}
						g.Mean, g.Std = w.Mean, w.Std
					}
				}
				gb, err := got.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				wb, _ := want.MarshalBinary()
				if !bytes.Equal(gb, wb) {
					for i := range want.Features {
						g, w := &got.Features[i], &want.Features[i]
						t.Errorf("%s: edges %v hist %v, %d quantiles exact %v; file Builder: edges %v hist %v, %d quantiles exact %v",
							w.Name, g.Edges, g.Hist, len(g.Quantiles), g.Exact, w.Edges, w.Hist, len(w.Quantiles), w.Exact)
					}
					t.Fatal("profile from windows differs from the file Builder's")
				}
			})
		}
	}
}

func closeTo(a, b float64) bool {
	return a == b || math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) <= 1e-12*max(math.Abs(a), math.Abs(b))
}

// TestBuildFromWindowsSketched: 10^5 values in 50 windows (each exact, their
// union sketched) give edges, counts and quantiles within the documented
// bounds of the exact ones.
func TestBuildFromWindowsSketched(t *testing.T) {
	const n = 100_000
	rng := rand.New(rand.NewPCG(3, 4))
	evs := fraudEvents(n)
	vals := make([]float64, n)
	for i := range evs {
		v := math.Round(math.Exp(rng.NormFloat64())*1000) / 1000 // skewed, with ties
		evs[i].Features[0] = schemas.Num("amount", v)
		vals[i] = v
	}
	slices.Sort(vals)
	states := windowsOf(t, evs, n/50)
	union := stats.NewWindowState(stats.Key{Model: "fraud", ModelVersion: "3"}, 0)
	for _, st := range states {
		o := *st
		o.Key, o.WindowEnd = union.Key, 0
		union.Merge(&o)
	}
	sk := &union.Features["amount"].Values
	eps := sk.RankErrorBound()
	if sk.Exact() || eps == 0 || eps > 0.01 {
		t.Fatalf("merged sketch: exact %v, rank error bound %v", sk.Exact(), eps)
	}
	p, err := BuildFromWindows(Meta{}, states)
	if err != nil {
		t.Fatal(err)
	}
	a := p.Feature("amount")
	if a.Exact || a.Count != n || len(a.Quantiles) != QuantileSummarySize {
		t.Fatalf("amount: exact %v, count %d, %d quantiles", a.Exact, a.Count, len(a.Quantiles))
	}
	// F and F- of the exact values.
	cdf := func(x float64) float64 { return float64(sort.Search(n, func(i int) bool { return vals[i] > x })) / n }
	below := func(x float64) float64 { return float64(sort.SearchFloat64s(vals, x)) / n }

	e := a.Edges
	if len(e) != DefaultBins+1 || e[0] != vals[0] || e[len(e)-1] != vals[n-1] || !slices.IsSorted(e) {
		t.Fatalf("edges = %v (min %v, max %v)", e, vals[0], vals[n-1])
	}
	for i := 1; i < len(e)-1; i++ {
		q := float64(i) / DefaultBins
		if cdf(e[i]) < q-eps-1.0/n || below(e[i]) > q+eps+1.0/n {
			t.Errorf("edge %d = %v: F = %v, F- = %v, want around %v ± %v", i, e[i], cdf(e[i]), below(e[i]), q, eps)
		}
	}
	exact := histogram(vals, e)
	var sum uint64
	for i, c := range a.Hist {
		sum += c
		if d := math.Abs(float64(c) - float64(exact[i])); d > 2*eps*n {
			t.Errorf("bin %d: %d, exactly %d: off by more than 2εn = %v", i, c, exact[i], 2*eps*n)
		}
	}
	if sum != n || a.Hist[0] != 0 || a.Hist[len(a.Hist)-1] != 0 {
		t.Errorf("hist = %v", a.Hist)
	}

	qs := a.Quantiles
	if !slices.IsSorted(qs) || qs[len(qs)-1] != vals[n-1] {
		t.Fatalf("quantiles not sorted or not ending at max")
	}
	// Both CDFs are step functions jumping at values of vals: the largest
	// gap is at one of them or just below it.
	m := float64(len(qs))
	ks := 0.0
	for i, v := range vals {
		if i > 0 && v == vals[i-1] {
			continue
		}
		at := float64(sort.Search(len(qs), func(j int) bool { return qs[j] > v })) / m
		left := float64(sort.SearchFloat64s(qs, v)) / m
		ks = max(ks, math.Abs(at-cdf(v)), math.Abs(left-below(v)))
	}
	if bound := 1/m + eps; ks > bound {
		t.Errorf("KS(summary, values) = %v, more than 1/M + ε = %v", ks, bound)
	}
	t.Logf("ε = %.5f; KS(summary, values) = %.5f (bound %.5f)", eps, ks, 1/m+eps)
}

// TestBuildFromWindowsIncompleteValues: a feature whose stored states have
// no value sketch keeps moments only; the others get their bins.
func TestBuildFromWindowsIncompleteValues(t *testing.T) {
	evs := fraudEvents(100)
	states := windowsOf(t, evs, 40)
	states[1].Features["amount"].Values = stats.ValueSketch{} // as decoded from an old encoding
	p, err := BuildFromWindows(Meta{}, states)
	if err != nil {
		t.Fatal(err)
	}
	if a := p.Feature("amount"); a.Count != 100 || a.Max != 100 || a.Edges != nil || a.Hist != nil || a.Quantiles != nil || a.Exact {
		t.Errorf("amount = %+v, want moments only", *a)
	}
	if s := p.Feature(schemas.PredictionScoreFeature); s.Edges == nil || !s.Exact || len(s.Quantiles) != 100 {
		t.Errorf("score = %+v, want bins and exact quantiles", *s)
	}
	if _, err := BuildFromWindowsOptions(Meta{}, BuilderOptions{Bins: MaxBins + 1}, states); err == nil {
		t.Error("too many bins accepted")
	}
}
