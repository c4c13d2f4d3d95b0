package drift_test

import (
	"fmt"
	"math"
	"math/rand/v2"
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

// record builds a batch of events with a numeric feature x and a string
// feature c.
func record(t *testing.T, xs []float64, cs []string) arrow.Record {
	t.Helper()
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	for i := range xs {
		e := schemas.Event{ID: strconv.Itoa(i), Model: "m", Time: time.UnixMilli(1000),
			Features:   []schemas.Feature{schemas.Num("x", xs[i]), schemas.Str("c", cs[i])},
			Prediction: schemas.Score(0.5)}
		if err := b.Append(&e); err != nil {
			t.Fatal(err)
		}
	}
	return b.NewRecord()
}

func sample(rng *rand.Rand, n int, shift float64) ([]float64, []string) {
	xs, cs := make([]float64, n), make([]string, n)
	for i := range xs {
		xs[i] = rng.NormFloat64() + shift
		cs[i] = []string{"a", "b", "c"}[rng.IntN(3)]
		if shift > 0 && i%4 == 0 {
			cs[i] = "new"
		}
	}
	return xs, cs
}

func near(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b))
}

// TestEvaluateFeatureExact: with every value held on both sides, the
// window's drift equals the drift functions applied to the raw samples
// (themselves checked against scipy and Evidently).
func TestEvaluateFeatureExact(t *testing.T) {
	for _, tc := range []struct {
		name       string
		nRef, nCur int
		shift      float64
		wantMethod drift.Method
		wantDrift  bool
	}{
		{"small, no shift", 500, 300, 0, drift.MethodKS, false},
		{"small, shifted", 500, 300, 1, drift.MethodKS, true},
		{"large ref, shifted", 3000, 1500, 1, drift.MethodWasserstein, true},
		{"large ref, no shift", 3000, 1500, 0, drift.MethodWasserstein, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, uint64(tc.nRef)))
			refX, refC := sample(rng, tc.nRef, 0)
			curX, curC := sample(rng, tc.nCur, tc.shift)

			ref := buildReference(t, refX, refC, reference.BuilderOptions{})
			st := stats.NewWindowState(stats.Key{Model: "m"}, 60000)
			rec := record(t, curX, curC)
			// Two halves, merged as windows of partitions would be.
			st.AddRange(rec, 0, tc.nCur/2)
			other := stats.NewWindowState(stats.Key{Model: "m"}, 60000)
			other.AddRange(rec, tc.nCur/2, tc.nCur)
			st.Merge(other)
			rec.Release()

			d, ok := drift.EvaluateFeature(ref.Feature("x"), st.Features["x"])
			if !ok || d.Approx {
				t.Fatalf("numeric drift not computed exactly: ok=%v approx=%v", ok, d.Approx)
			}
			ks, p := drift.KS2Samp(refX, curX)
			w := drift.WassersteinDistance(refX, curX)
			if !near(d.KSStat, ks) || !near(d.KSPValue, p) || !near(d.Wasserstein, w) || !near(d.WassersteinNorm, drift.WassersteinNormed(refX, curX)) {
				t.Errorf("KS %v p %v W %v Wn %v; want %v %v %v %v", d.KSStat, d.KSPValue, d.Wasserstein, d.WassersteinNorm, ks, p, w, drift.WassersteinNormed(refX, curX))
			}
			// PSI on the reference's bins, counted by hand.
			fp := ref.Feature("x")
			refH, curH := make([]float64, len(fp.Hist)), make([]float64, len(fp.Hist))
			for _, x := range refX {
				refH[fp.Bin(x)]++
			}
			for _, x := range curX {
				curH[fp.Bin(x)]++
			}
			if !near(d.PSI, drift.PSI(refH, curH)) || !near(d.JensenShannon, drift.JensenShannonDistance(refH, curH)) {
				t.Errorf("PSI %v JS %v, want %v %v", d.PSI, d.JensenShannon, drift.PSI(refH, curH), drift.JensenShannonDistance(refH, curH))
			}
			if d.Method != tc.wantMethod || d.Drifted != tc.wantDrift {
				t.Errorf("verdict %s drifted=%v, want %s %v", d.Method, d.Drifted, tc.wantMethod, tc.wantDrift)
			}

			c, ok := drift.EvaluateFeature(ref.Feature("c"), st.Features["c"])
			if !ok {
				t.Fatal("categorical drift not computed")
			}
			// Category counts over the union of categories, sorted.
			cats := []string{"a", "b", "c"}
			if tc.shift > 0 {
				cats = append(cats, "new")
			}
			refV, curV := make([]float64, len(cats)), make([]float64, len(cats))
			for i, k := range cats {
				for _, v := range refC {
					if v == k {
						refV[i]++
					}
				}
				for _, v := range curC {
					if v == k {
						curV[i]++
					}
				}
			}
			stat, p := drift.ChiSquare(refV, curV)
			if !near(c.ChiSquare, stat) || !near(c.ChiSquarePValue, p) || !near(c.JensenShannon, drift.JensenShannonDistance(refV, curV)) {
				t.Errorf("categorical chi2 %v p %v JS %v, want %v %v %v", c.ChiSquare, c.ChiSquarePValue, c.JensenShannon, stat, p, drift.JensenShannonDistance(refV, curV))
			}
			if wantNew := curV[len(curV)-1] / float64(tc.nCur); tc.shift > 0 && (!near(c.NewCategoryRate, wantNew) || !c.Drifted) {
				t.Errorf("categorical: new rate %v drifted %v, want %v and drift", c.NewCategoryRate, c.Drifted, wantNew)
			}
		})
	}
}

func TestEvaluateWindowOverrides(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	refX, refC := sample(rng, 3000, 0)
	curX, curC := sample(rng, 1500, 0.05) // a small shift: the default (Wasserstein 0.1) says no drift
	ref := buildReference(t, refX, refC, reference.BuilderOptions{})
	st := windowOf(t, curX, curC)

	find := func(w drift.WindowDrift, f string) drift.FeatureDrift { return featureOf(t, w, f) }
	def := find(drift.EvaluateWindow(ref, st), "x")
	tests := []struct {
		name       string
		overrides  []drift.Override
		wantMethod drift.Method
		wantScore  float64
		wantThr    float64
		wantDrift  bool
	}{
		{"default", nil, drift.MethodWasserstein, def.WassersteinNorm, 0.1, false},
		{"threshold only", []drift.Override{{Feature: "x", Threshold: def.WassersteinNorm / 2}}, drift.MethodWasserstein, def.WassersteinNorm, def.WassersteinNorm / 2, true},
		{"method KS", []drift.Override{{Model: "m", Feature: "x", Method: drift.MethodKS}}, drift.MethodKS, def.KSPValue, 0.05, def.KSPValue <= 0.05},
		{"last match wins", []drift.Override{{Method: drift.MethodKS}, {Feature: "x", Method: drift.MethodPSI, Threshold: 1e-9}}, drift.MethodPSI, def.PSI, 1e-9, true},
		{"other model untouched", []drift.Override{{Model: "other", Method: drift.MethodPSI, Threshold: 1e-9}}, drift.MethodWasserstein, def.WassersteinNorm, 0.1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := find(drift.EvaluateWindowWith(ref, st, drift.Options{Overrides: tt.overrides}), "x")
			if d.Method != tt.wantMethod || d.Score != tt.wantScore || d.Threshold != tt.wantThr || d.Drifted != tt.wantDrift {
				t.Errorf("got %s %v threshold %v drifted %v; want %s %v %v %v", d.Method, d.Score, d.Threshold, d.Drifted, tt.wantMethod, tt.wantScore, tt.wantThr, tt.wantDrift)
			}
		})
	}
	// KS named for a string feature has no score: never drift.
	c := find(drift.EvaluateWindowWith(ref, st, drift.Options{Overrides: []drift.Override{{Feature: "c", Method: drift.MethodKS}}}), "c")
	if !math.IsNaN(c.Score) || c.Drifted {
		t.Errorf("KS on a string feature: score %v drifted %v, want NaN and no drift", c.Score, c.Drifted)
	}
}

// TestEvaluateWindowQuality: type mismatches, constant features and schema
// changes against the reference.
func TestEvaluateWindowQuality(t *testing.T) {
	build := func(events []schemas.Event) arrow.Record {
		b := wire.NewBatchBuilder(memory.DefaultAllocator)
		for i := range events {
			if err := b.Append(&events[i]); err != nil {
				t.Fatal(err)
			}
		}
		return b.NewRecord()
	}
	ev := func(i int, fs ...schemas.Feature) schemas.Event {
		return schemas.Event{ID: strconv.Itoa(i), Model: "m", Time: time.UnixMilli(1000), Features: fs, Prediction: schemas.Score(0.5)}
	}
	var refEv, curEv []schemas.Event
	for i := 0; i < 50; i++ {
		refEv = append(refEv, ev(i, schemas.Num("x", float64(i)), schemas.Str("c", []string{"a", "b"}[i%2]), schemas.Num("k", float64(i%3))))
	}
	for i := 0; i < 10; i++ {
		x := schemas.Num("x", float64(i))
		if i >= 8 { // after numbers fixed the column's type
			x = schemas.Str("x", "oops") // wrong type: a mismatch, counted missing
		}
		curEv = append(curEv, ev(i, x, schemas.Num("k", 7), schemas.Num("z", 1)))
	}
	rb, err := reference.NewBuilder(reference.Meta{Model: "m", ID: 1}, reference.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := build(refEv)
	if err := rb.Add(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	ref, err := rb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	st := stats.NewWindowState(stats.Key{Model: "m"}, 60000)
	rec = build(curEv)
	st.AddRange(rec, 0, int(rec.NumRows()))
	for f, n := range wire.TypeMismatches(rec.Schema()) {
		st.AddTypeMismatches(f, uint64(n))
	}
	rec.Release()

	w := drift.EvaluateWindow(ref, st)
	if fmt.Sprint(w.NewFeatures) != "[z]" || fmt.Sprint(w.AbsentFeatures) != "[c]" {
		t.Errorf("schema changes: new %v absent %v, want [z] and [c]", w.NewFeatures, w.AbsentFeatures)
	}
	got := map[string]drift.FeatureDrift{}
	for _, d := range w.Features {
		got[d.Feature] = d
	}
	if x := got["x"]; x.TypeMismatchRate != 0.2 || x.MissingRate != 0.2 || x.Constant {
		t.Errorf("x: mismatch %v missing %v constant %v, want 0.2 0.2 false", x.TypeMismatchRate, x.MissingRate, x.Constant)
	}
	if k := got["k"]; !k.Constant || k.TypeMismatchRate != 0 || k.OutOfRangeRate != 1 {
		t.Errorf("k: constant %v mismatch %v out of range %v, want true 0 1", k.Constant, k.TypeMismatchRate, k.OutOfRangeRate)
	}
}

// KSPValueLimit against scipy.stats.kstwobign.sf (scipy 1.17.1):
// kstwobign.sf(0.5) = 0.9639452436648751, sf(1.0) = 0.26999967167735456,
// sf(1.5) = 0.022217962616525127.
func TestKSPValueLimit(t *testing.T) {
	for _, tc := range []struct{ x, want float64 }{{0.5, 0.9639452436648751}, {1.0, 0.26999967167735456}, {1.5, 0.022217962616525127}} {
		// n1 = n2 = 200: sqrt(n1*n2/(n1+n2)) = 10.
		if got := drift.KSPValueLimit(tc.x/10, 200, 200); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("KSPValueLimit(%v/10, 200, 200) = %v, want %v", tc.x, got, tc.want)
		}
	}
}
