package drift_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// distribution draws one value.
type distribution func(r *rand.Rand) float64

func normal(mu, sigma float64) distribution {
	return func(r *rand.Rand) float64 { return mu + sigma*r.NormFloat64() }
}
func cauchy(loc, scale float64) distribution {
	return func(r *rand.Rand) float64 { return loc + scale*math.Tan(math.Pi*(r.Float64()-0.5)) }
}
func pareto(alpha float64) distribution {
	return func(r *rand.Rand) float64 { return math.Pow(1-r.Float64(), -1/alpha) }
}
func uniform(a, b float64) distribution {
	return func(r *rand.Rand) float64 { return a + (b-a)*r.Float64() }
}
func lognormal(mu, sigma float64) distribution {
	return func(r *rand.Rand) float64 { return math.Exp(mu + sigma*r.NormFloat64()) }
}

// atoms mixes point masses (value, probability) with a continuous rest.
func atoms(rest distribution, points ...float64) distribution {
	return func(r *rand.Rand) float64 {
		u := r.Float64()
		for i := 0; i+1 < len(points); i += 2 {
			if u < points[i+1] {
				return points[i]
			}
			u -= points[i+1]
		}
		return rest(r)
	}
}
func mixture(p float64, a, b distribution) distribution {
	return func(r *rand.Rand) float64 {
		if r.Float64() < p {
			return a(r)
		}
		return b(r)
	}
}
func rounded(step float64, d distribution) distribution {
	return func(r *rand.Rand) float64 { return math.Round(d(r)/step) * step }
}
func draw(r *rand.Rand, d distribution, n int) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = d(r)
	}
	return xs
}

// boundCases are reference and window distributions: no drift, drift,
// heavy tails (Cauchy, Pareto), atoms (point masses, also at the
// reference's edges), ties and values outside the reference's range.
var boundCases = []struct {
	name     string
	ref, cur distribution
}{
	{"normal, no drift", normal(0, 1), normal(0, 1)},
	{"normal, shifted 0.1", normal(0, 1), normal(0.1, 1)},
	{"normal, shifted 1", normal(0, 1), normal(1, 1)},
	{"normal, scaled 2", normal(0, 1), normal(0, 2)},
	{"uniform, narrowed", uniform(0, 1), uniform(0.2, 0.8)},
	{"uniform, out of range both sides", uniform(0, 1), uniform(-0.05, 1.05)},
	{"lognormal, sigma 1 vs 1.1", lognormal(0, 1), lognormal(0, 1.1)},
	{"lognormal, wide", lognormal(0, 3), lognormal(0.5, 3)},
	{"cauchy, no drift", cauchy(0, 1), cauchy(0, 1)},
	{"cauchy, shifted", cauchy(0, 1), cauchy(0.5, 1)},
	{"cauchy vs normal", cauchy(0, 1), normal(0, 1)},
	{"pareto 1.5", pareto(1.5), pareto(1.5)},
	{"pareto 0.8 vs 1.2", pareto(0.8), pareto(1.2)},
	{"student-t-like mixture", mixture(0.9, normal(0, 1), cauchy(0, 5)), normal(0, 1)},
	{"bimodal, weights change", mixture(0.5, normal(-2, 0.5), normal(2, 0.5)), mixture(0.7, normal(-2, 0.5), normal(2, 0.5))},
	{"atom at 0, half", atoms(normal(0, 1), 0, 0.5), atoms(normal(0, 1), 0, 0.5)},
	{"atom at 0 grows", atoms(normal(0, 1), 0, 0.3), atoms(normal(0, 1), 0, 0.6)},
	{"only atoms", atoms(normal(0, 1), 1, 0.3, 2, 0.3, 3, 0.4), atoms(normal(0, 1), 1, 0.2, 2, 0.5, 3, 0.3)},
	{"atoms at the reference's edges", atoms(uniform(0, 1), 0, 0.2, 1, 0.2), atoms(uniform(0, 1), 0, 0.1, 1, 0.4)},
	{"integers (ties)", rounded(1, lognormal(1, 1)), rounded(1, lognormal(1.2, 1))},
	{"rounded to 0.1", rounded(0.1, normal(0, 1)), rounded(0.1, normal(0.05, 1))},
	{"outliers 1% at 1e6", normal(0, 1), atoms(normal(0, 1), 1e6, 0.01)},
	{"negative heavy tail", func(r *rand.Rand) float64 { return -pareto(1.1)(r) }, func(r *rand.Rand) float64 { return -pareto(1.3)(r) }},
	{"disjoint", normal(0, 1), normal(10, 1)},
}

// windowFeature is the state of a numeric feature holding xs, built from
// parts merged as stored windows are (so sketches carry merge history);
// without value sketches when binned.
func windowFeature(xs []float64, parts int, binned bool) *stats.FeatureState {
	var f *stats.FeatureState
	for p := range parts {
		part := xs[p*len(xs)/parts : (p+1)*len(xs)/parts]
		g := &stats.FeatureState{Kind: schemas.Number}
		g.Num.AddFloat64s(part)
		if binned {
			for _, x := range part {
				g.Bins.Add(x)
			}
		} else {
			g.Values.AddFloat64s(part)
		}
		if f == nil {
			f = g
		} else {
			f.Merge(g)
		}
	}
	return f
}

// TestBoundsHold: on sketched windows (and with references built from
// production sketches, and windows kept without value sketches) the number
// computed from the raw values lies within the stated bound of the
// reported one, for every metric with a bound, on every case.
func TestBoundsHold(t *testing.T) {
	const nRef, nCur = 20_000, 60_000
	type worst struct{ err, bound, ratio float64 }
	worstOf := map[string]*worst{}
	note := func(metric string, err, bound float64) {
		w := worstOf[metric]
		if w == nil {
			w = &worst{}
			worstOf[metric] = w
		}
		if r := err / bound; bound > 0 && r > w.ratio {
			*w = worst{err, bound, r}
		}
	}
	for ci, tc := range boundCases {
		for _, mode := range []string{"sketch", "production reference", "bins"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(ci)+1, 42))
				refX, curX := draw(r, tc.ref, nRef), draw(r, tc.cur, nCur)
				var ref *reference.Profile
				if mode == "production reference" {
					st := stats.NewWindowState(stats.Key{Model: "m"}, 60000)
					st.Events = nRef
					st.Features["x"] = windowFeature(refX, 4, false)
					var err error
					if ref, err = reference.BuildFromWindows(reference.Meta{Model: "m", ID: 1}, []*stats.WindowState{st}); err != nil {
						t.Fatal(err)
					}
				} else {
					cs := make([]string, nRef)
					for i := range cs {
						cs[i] = "a"
					}
					ref = buildReference(t, refX, cs, reference.BuilderOptions{})
				}
				fp := ref.Feature("x")
				cur := windowFeature(curX, 6, mode == "bins")
				d, ok := drift.EvaluateFeature(fp, cur)
				if !ok {
					t.Fatalf("not evaluated: %s", d.Reason)
				}
				if d.Exact && mode != "bins" { // bins are exact when no reference edge falls inside the window's range
					t.Fatal("a sketched window reported exact")
				}

				// The true numbers, from the raw values on the reference's bins.
				refH, curH := make([]float64, len(fp.Hist)), make([]float64, len(fp.Hist))
				for _, x := range refX {
					refH[fp.Bin(x)]++
				}
				var outside float64
				for _, x := range curX {
					curH[fp.Bin(x)]++
					if x < fp.Min || x > fp.Max {
						outside++
					}
				}
				check := func(metric string, got, want, bound float64) {
					t.Helper()
					if math.IsNaN(bound) || bound < 0 {
						t.Errorf("%s: bound %v", metric, bound)
						return
					}
					err := math.Abs(got - want)
					note(metric+" ("+mode+")", err, bound)
					if !(err <= bound) {
						t.Errorf("%s = %v, true %v: error %.3g above the bound %.3g", metric, got, want, err, bound)
					}
				}
				t.Logf("bounds: psi ±%.3g kl ±%.3g js ±%.3g hellinger ±%.3g out_of_range ±%.3g ks ±%.3g", d.Bounds.PSI, d.Bounds.KL,
					d.Bounds.JensenShannon, d.Bounds.Hellinger, d.Bounds.OutOfRangeRate, d.Bounds.KSStat)
				check("psi", d.PSI, drift.PSI(refH, curH), d.Bounds.PSI)
				check("kl", d.KL, drift.KLDivergence(refH, curH), d.Bounds.KL)
				check("js", d.JensenShannon, drift.JensenShannonDistance(refH, curH), d.Bounds.JensenShannon)
				check("hellinger", d.Hellinger, drift.HellingerDistance(refH, curH), d.Bounds.Hellinger)
				check("out_of_range_rate", d.OutOfRangeRate, outside/nCur, d.Bounds.OutOfRangeRate)
				if mode == "bins" {
					if d.Source != "bins" || !math.IsNaN(d.KSStat) || !math.IsNaN(d.Wasserstein) || d.KSMethod != "" {
						t.Errorf("binned window: source %q, KS %v, W %v, ks method %q; want bins and no KS or Wasserstein", d.Source, d.KSStat, d.Wasserstein, d.KSMethod)
					}
					return
				}
				rs, cs := slices.Clone(refX), slices.Clone(curX)
				slices.Sort(rs)
				slices.Sort(cs)
				ks, _ := drift.KS2SampSorted(rs, cs, drift.KSAsymp)
				check("ks_stat", d.KSStat, ks, d.Bounds.KSStat)
				check("wasserstein", d.Wasserstein, drift.WassersteinDistanceSorted(rs, cs), d.Bounds.Wasserstein)
				if d.KSMethod != "limit" {
					t.Errorf("ks method %q on sketches, want limit", d.KSMethod)
				}
				if bs := d.Bounds.Score; !(bs >= 0) {
					t.Errorf("score bound %v", bs)
				}
			})
		}
	}
	for m, w := range worstOf {
		t.Logf("%-40s worst error %.3g within bound %.3g (%.0f%% of it)", m, w.err, w.bound, 100*w.ratio)
	}
}

// TestBoundsExact: with every value on both sides every bound is 0 and the
// row is exact; the KS p-value method follows scipy's choice.
func TestBoundsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	refX, curX := draw(r, normal(0, 1), 3000), draw(r, normal(0.2, 1), 1500)
	cs := make([]string, len(refX))
	for i := range cs {
		cs[i] = "a"
	}
	ref := buildReference(t, refX, cs, reference.BuilderOptions{})
	d, ok := drift.EvaluateFeature(ref.Feature("x"), windowFeature(curX, 3, false))
	if !ok || !d.Exact || d.Bounds != (drift.Bounds{}) || d.KSMethod != "exact" || d.Source != "values" {
		t.Fatalf("ok %v exact %v bounds %+v ks method %q source %q", ok, d.Exact, d.Bounds, d.KSMethod, d.Source)
	}
}

// TestNoValueSketches: a window kept without value sketches
// (--value-sketches=false) still gets the histogram distances, from its
// coarse histogram, with KS and Wasserstein marked unavailable, and a
// feature that cannot be evaluated is listed with its reason instead of
// dropped; the share counts evaluated features only.
func TestNoValueSketches(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	refX, refC := sample(r, 5000, 0)
	ref := buildReference(t, refX, refC, reference.BuilderOptions{})
	curX, curC := sample(r, 4000, 1)

	st := stats.NewWindowState(stats.Key{Model: "m"}, 60000)
	st.NoValues = true
	rec := record(t, curX, curC)
	st.AddRange(rec, 0, len(curX))
	rec.Release()
	// A feature of the reference whose window values are all of another
	// kind cannot be evaluated.
	st.Features["c"].Kind = schemas.Number

	w := drift.EvaluateWindow(ref, st)
	var x *drift.FeatureDrift
	for i := range w.Features {
		if w.Features[i].Feature == "x" {
			x = &w.Features[i]
		}
	}
	if x == nil {
		t.Fatalf("x dropped from drift: %+v", w)
	}
	refH, curH := make([]float64, len(ref.Feature("x").Hist)), make([]float64, len(ref.Feature("x").Hist))
	for _, v := range refX {
		refH[ref.Feature("x").Bin(v)]++
	}
	for _, v := range curX {
		curH[ref.Feature("x").Bin(v)]++
	}
	truePSI := drift.PSI(refH, curH)
	if x.Source != "bins" || !(math.Abs(x.PSI-truePSI) <= x.Bounds.PSI) || x.Bounds.PSI == 0 || !math.IsNaN(x.KSPValue) || x.KSMethod != "" ||
		!math.IsNaN(x.Wasserstein) || x.Method != drift.MethodJensenShannon || x.Score != x.JensenShannon || !x.Drifted {
		t.Errorf("x: source %q psi %v±%v (true %v) ks p %v (%q) W %v, method %s score %v drifted %v", x.Source, x.PSI, x.Bounds.PSI, truePSI,
			x.KSPValue, x.KSMethod, x.Wasserstein, x.Method, x.Score, x.Drifted)
	}
	if len(w.Skipped) != 1 || w.Skipped[0].Feature != "c" || w.Skipped[0].Reason != "kind number in the window, string in the reference" {
		t.Fatalf("skipped %+v, want c with a kind mismatch", w.Skipped)
	}
	if len(w.Features) != 2 || w.Share != 0.5 { // __prediction_score (no drift) and x (drift); c not counted
		t.Errorf("features %d share %v, want 2 and 0.5", len(w.Features), w.Share)
	}
}

// TestSegmentReference: a segment's windows are compared with the
// reference's profile of that segment when it has one, with the whole
// reference otherwise.
func TestSegmentReference(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	b, err := reference.NewBuilder(reference.Meta{Model: "m", ID: 5}, reference.BuilderOptions{Segment: "region"})
	if err != nil {
		t.Fatal(err)
	}
	// eu around 0, us around 3: the whole reference is bimodal.
	for _, region := range []string{"eu", "us"} {
		shift := 0.0
		if region == "us" {
			shift = 3
		}
		xs, cs := sample(r, 3000, 0)
		for i := range xs {
			xs[i] += shift
		}
		rec := segmentRecord(t, xs, cs, region)
		if err := b.Add(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	ref, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	euX, euC := sample(r, 1500, 0)
	window := func(segment string) drift.MergedBucket {
		st := stats.NewWindowState(stats.Key{Model: "m", Segment: segment}, 60000)
		rec := record(t, euX, euC)
		st.AddRange(rec, 0, len(euX))
		rec.Release()
		return drift.MergedBucket{Model: "m", Segment: segment, State: st}
	}
	got, err := drift.EvaluateBuckets([]drift.MergedBucket{window("region=eu"), window("region=fr")}, map[[2]string]*reference.Profile{{"m", ""}: ref}, drift.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := func(b drift.Bucket) drift.FeatureDrift {
		for _, d := range b.Drift.Features {
			if d.Feature == "x" {
				return d
			}
		}
		t.Fatalf("no x in %+v", b.Drift)
		return drift.FeatureDrift{}
	}
	eu, fr := x(got[0]), x(got[1])
	if got[0].RefSegment != "region=eu" || got[0].RefID != 5 || eu.Drifted || eu.NRef != 3000 {
		t.Errorf("eu against its segment: ref segment %q id %d, drifted %v (%s %v), n_ref %d", got[0].RefSegment, got[0].RefID, eu.Drifted, eu.Method, eu.Score, eu.NRef)
	}
	if got[1].RefSegment != "" || !fr.Drifted || fr.NRef != 6000 {
		t.Errorf("fr against the whole reference: ref segment %q, drifted %v (%s %v), n_ref %d", got[1].RefSegment, fr.Drifted, fr.Method, fr.Score, fr.NRef)
	}
}

// segmentRecord is record with every event tagged region=region.
func segmentRecord(t *testing.T, xs []float64, cs []string, region string) arrow.Record {
	t.Helper()
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	for i := range xs {
		e := schemas.Event{ID: strconv.Itoa(i), Model: "m", Time: time.UnixMilli(1000),
			Features:   []schemas.Feature{schemas.Num("x", xs[i]), schemas.Str("c", cs[i])},
			Segments:   []schemas.Tag{{Key: "region", Value: region}},
			Prediction: schemas.Score(0.5)}
		if err := b.Append(&e); err != nil {
			t.Fatal(err)
		}
	}
	return b.NewRecord()
}
