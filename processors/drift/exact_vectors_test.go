package drift_test

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
)

// lcgValues is gen_exact_vectors.py's lcg_values, bit for bit: the sum of
// three uniforms from a 64-bit LCG, centred and scaled (the conversions
// keep each operation rounded, as Python's).
func lcgValues(seed uint64, n int, shift, scale float64) []float64 {
	state := seed
	out := make([]float64, n)
	for i := range out {
		s := 0.0
		for range 3 {
			state = state*6364136223846793005 + 1442695040888963407
			s += float64(state>>11) / 9007199254740992.0
		}
		out[i] = float64(float64(s-1.5)*scale) + shift
	}
	return out
}

// TestExactCapsScipy: with a reference that keeps up to 50,000 values
// whole and windows that keep up to their configured cap whole, a window
// against a reference of more than 10,000 values, or a window of more than
// 2,048 values, gets scipy's ks_2samp (method 'auto': exact or the finite-n
// kstwo, stated in KSMethod) and wasserstein_distance, and is exact
// (testdata/drift/exact_vectors.json, from gen_exact_vectors.py).
func TestExactCapsScipy(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/drift/exact_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	type side struct {
		Seed         uint64
		N            int
		Shift, Scale float64
	}
	var vectors struct {
		Cases []struct {
			Name           string
			Ref, Cur       side
			ExactCap       int     `json:"exact_cap"`
			KSStat         float64 `json:"ks_stat"`
			KSPValue       float64 `json:"ks_pvalue"`
			KSMethod       string  `json:"ks_method"`
			Wasserstein    float64
			FirstRefValues []float64 `json:"first_ref_values"`
		}
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors.Cases) < 5 {
		t.Fatalf("%d cases", len(vectors.Cases))
	}
	defer stats.SetExactCap(stats.ExactCap)
	rel := func(got, want float64) float64 { return math.Abs(got-want) / math.Max(math.Abs(want), 1e-300) }
	for _, tc := range vectors.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			refX := lcgValues(tc.Ref.Seed, tc.Ref.N, tc.Ref.Shift, tc.Ref.Scale)
			curX := lcgValues(tc.Cur.Seed, tc.Cur.N, tc.Cur.Shift, tc.Cur.Scale)
			for i, v := range tc.FirstRefValues {
				if refX[i] != v {
					t.Fatalf("generated value %d = %v, the script's %v", i, refX[i], v)
				}
			}
			cs := make([]string, len(refX))
			for i := range cs {
				cs[i] = "a"
			}
			ref := buildReference(t, refX, cs, reference.BuilderOptions{ExactValues: reference.DefaultExactValues})
			if err := stats.SetExactCap(tc.ExactCap); err != nil {
				t.Fatal(err)
			}
			d, ok := drift.EvaluateFeature(ref.Feature("x"), windowFeature(curX, 4, false))
			if !ok || !d.Exact || d.Approx || d.Bounds != (drift.Bounds{}) {
				t.Fatalf("ok %v exact %v approx %v bounds %+v", ok, d.Exact, d.Approx, d.Bounds)
			}
			if d.KSMethod != tc.KSMethod || rel(d.KSStat, tc.KSStat) > 1e-12 || rel(d.KSPValue, tc.KSPValue) > 1e-9 || rel(d.Wasserstein, tc.Wasserstein) > 1e-9 {
				t.Errorf("KS %v p %v (%s) W %v; scipy %v %v (%s) %v", d.KSStat, d.KSPValue, d.KSMethod, d.Wasserstein, tc.KSStat, tc.KSPValue, tc.KSMethod, tc.Wasserstein)
			}
			t.Logf("KS p %v (%s), scipy %v: relative difference %.2g", d.KSPValue, d.KSMethod, tc.KSPValue, rel(d.KSPValue, tc.KSPValue))
		})
	}
}
