package drift_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
)

// buildReference builds a profile of model "m" from xs (and cs).
func buildReference(t *testing.T, xs []float64, cs []string, opts reference.BuilderOptions) *reference.Profile {
	t.Helper()
	rb, err := reference.NewBuilder(reference.Meta{Model: "m", ID: 1}, opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := record(t, xs, cs)
	defer rec.Release()
	if err := rb.Add(rec); err != nil {
		t.Fatal(err)
	}
	ref, err := rb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func windowOf(t *testing.T, xs []float64, cs []string) *stats.WindowState {
	t.Helper()
	st := stats.NewWindowState(stats.Key{Model: "m"}, 60000)
	rec := record(t, xs, cs)
	defer rec.Release()
	st.AddRange(rec, 0, len(xs))
	return st
}

func featureOf(t *testing.T, w drift.WindowDrift, name string) drift.FeatureDrift {
	t.Helper()
	for _, d := range w.Features {
		if d.Feature == name {
			return d
		}
	}
	t.Fatalf("no feature %s", name)
	return drift.FeatureDrift{}
}

// TestThresholdFromReferenceExact: a reference of 4 chunks of 2 rows whose
// (stub) psi scores are the chunk means 0.05, 0.01, 0.01, 0.01: mean 0.02,
// sample std sqrt((0.03^2 + 3*0.01^2)/3) = 0.02, threshold 0.02 + 3*0.02 =
// 0.08.
func TestThresholdFromReferenceExact(t *testing.T) {
	xs := []float64{0.05, 0.05, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01}
	cs := []string{"a", "a", "a", "a", "b", "b", "b", "b"}
	ref := buildReference(t, xs, cs, reference.BuilderOptions{ChunkRows: 2,
		ChunkScorer: func(p *reference.FeatureProfile, chunk *stats.FeatureState) map[string]float64 {
			return map[string]float64{string(drift.MethodPSI): chunk.Num.Mean()}
		}})
	cs0 := ref.Feature("x").ChunkScores[string(drift.MethodPSI)]
	if cs0.Chunks != 4 || !near(cs0.Mean, 0.02) || math.Abs(cs0.Std-0.02) > 1e-15 {
		t.Fatalf("chunk scores %+v, want 4 chunks, mean 0.02, std 0.02", cs0)
	}
	st := windowOf(t, []float64{0.01, 0.05, 0.05, 0.05}, []string{"a", "a", "b", "b"})
	def := featureOf(t, drift.EvaluateWindow(ref, st), "x")

	tests := []struct {
		name     string
		ov       drift.Override
		wantThr  float64
		fromRef  bool
		wantMeth drift.Method
	}{
		{"psi from reference", drift.Override{Feature: "x", Method: drift.MethodPSI, FromReference: true}, 0.08, true, drift.MethodPSI},
		{"explicit threshold is the fallback only", drift.Override{Feature: "x", Method: drift.MethodPSI, Threshold: 0.5, FromReference: true}, 0.08, true, drift.MethodPSI},
		{"no chunk scores for hellinger", drift.Override{Feature: "x", Method: drift.MethodHellinger, FromReference: true}, 0.1, false, drift.MethodHellinger},
		{"fallback threshold", drift.Override{Feature: "x", Method: drift.MethodHellinger, Threshold: 0.3, FromReference: true}, 0.3, false, drift.MethodHellinger},
		{"p-value method", drift.Override{Feature: "x", Method: drift.MethodKS, FromReference: true}, 0.05, false, drift.MethodKS},
		{"without FromReference", drift.Override{Feature: "x", Method: drift.MethodPSI}, 0.1, false, drift.MethodPSI},
		// The default for 8 reference values is KS: a p-value, so no change.
		{"default method", drift.Override{Feature: "x", FromReference: true}, 0.05, false, def.Method},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := featureOf(t, drift.EvaluateWindowWith(ref, st, drift.Options{Overrides: []drift.Override{tt.ov}}), "x")
			if d.Method != tt.wantMeth || !near(d.Threshold, tt.wantThr) || d.ThresholdFromReference != tt.fromRef ||
				d.Drifted != tt.wantMeth.Drifted(d.Score, d.Threshold) {
				t.Errorf("got %s threshold %v from reference %v drifted %v (score %v); want %s %v %v",
					d.Method, d.Threshold, d.ThresholdFromReference, d.Drifted, d.Score, tt.wantMeth, tt.wantThr, tt.fromRef)
			}
		})
	}
}

// TestThresholdFromReferenceNaturalVariation: the data has day-to-day
// variation (each day of 5000 rows is offset by N(0, 0.05)), as real data
// has. A new day of 50000 rows offset by 0.05, one standard deviation of
// that variation, is normal; KS on a window that large flags it, and so
// would any fixed small distance threshold, but the threshold derived from
// the reference's days (chunks) does not. A real shift is still flagged.
func TestThresholdFromReferenceNaturalVariation(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 14))
	const day, days = 5000, 10
	var refX []float64
	var refC []string
	for range days {
		xs, cs := sample(rng, day, 0)
		off := 0.05 * rng.NormFloat64()
		for i := range xs {
			xs[i] += off
		}
		refX, refC = append(refX, xs...), append(refC, cs...)
	}
	ref := buildReference(t, refX, refC, reference.BuilderOptions{ChunkRows: day, ChunkScorer: drift.ChunkScorer})
	x := ref.Feature("x")
	for _, m := range []drift.Method{drift.MethodPSI, drift.MethodJensenShannon, drift.MethodHellinger, drift.MethodKL, drift.MethodWasserstein} {
		if cs, ok := x.ChunkScores[string(m)]; !ok || cs.Chunks != days {
			t.Fatalf("x chunk scores of %s: %+v, want %d chunks", m, cs, days)
		}
	}
	if _, ok := x.ChunkScores[string(drift.MethodKS)]; ok {
		t.Fatal("chunk scores of a p-value method")
	}

	// ChunkScorer's scores are EvaluateFeature's.
	first := windowOf(t, refX[:day], refC[:day])
	d, _ := drift.EvaluateFeature(x, first.Features["x"])
	if got := drift.ChunkScorer(x, first.Features["x"]); got["psi"] != d.PSI || got["wasserstein"] != d.WassersteinNorm || got["jensenshannon"] != d.JensenShannon {
		t.Fatalf("ChunkScorer %v, EvaluateFeature psi %v wasserstein %v js %v", got, d.PSI, d.WassersteinNorm, d.JensenShannon)
	}

	ov := []drift.Override{{Feature: "x", Method: drift.MethodWasserstein, FromReference: true}}
	evaluate := func(shift float64) (ks, derived drift.FeatureDrift) {
		xs, cs := sample(rng, 50000, 0)
		for i := range xs {
			xs[i] += shift
		}
		st := windowOf(t, xs, cs)
		ks = featureOf(t, drift.EvaluateWindowWith(ref, st, drift.Options{Overrides: []drift.Override{{Feature: "x", Method: drift.MethodKS}}}), "x")
		derived = featureOf(t, drift.EvaluateWindowWith(ref, st, drift.Options{Overrides: ov}), "x")
		return ks, derived
	}
	ks, derived := evaluate(0.05)
	if !ks.Drifted {
		t.Errorf("KS p-value %v on a normal day: want drift (the problem reference thresholds solve)", ks.Score)
	}
	if !derived.ThresholdFromReference || derived.Drifted {
		t.Errorf("wasserstein %v, threshold %v from reference %v: want no drift", derived.Score, derived.Threshold, derived.ThresholdFromReference)
	}
	t.Logf("normal day: KS p %.3g; wasserstein %.4f, derived threshold %.4f (chunks: %+v)", ks.Score, derived.Score, derived.Threshold, x.ChunkScores["wasserstein"])
	if _, derived := evaluate(0.5); !derived.Drifted {
		t.Errorf("shift of 0.5 std: wasserstein %v below derived threshold %v", derived.Score, derived.Threshold)
	}
}
