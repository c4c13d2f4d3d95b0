package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/schemas"
)

// TestPrintDrift: `vigil query drift` shows every number with its bound
// ("exact" when there is none), the KS method, and the features that could
// not be evaluated with their reason.
func TestPrintDrift(t *testing.T) {
	nan := math.NaN()
	b := drift.Bucket{Model: "m", Start: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), Drift: drift.WindowDrift{
		Features: []drift.FeatureDrift{
			{Feature: "amount", Kind: schemas.Number, Method: drift.MethodWasserstein, Score: 0.05, Threshold: 0.1,
				PSI: 0.012, JensenShannon: 0.03, KSPValue: 0.2, KSMethod: "limit", WassersteinNorm: 0.05, OutOfRangeRate: 0.001, NewCategoryRate: nan,
				Bounds: drift.Bounds{Score: 0.004, PSI: 0.015, JensenShannon: 0.033, WassersteinNorm: 0.004, OutOfRangeRate: 0.01}},
			{Feature: "country", Kind: schemas.String, Method: drift.MethodJensenShannon, Score: 0.2, Threshold: 0.1, Drifted: true,
				PSI: 0.3, JensenShannon: 0.2, KSPValue: nan, WassersteinNorm: nan, OutOfRangeRate: nan, NewCategoryRate: 0.1, Exact: true},
		},
		Skipped: []drift.FeatureDrift{{Feature: "zip", Reason: drift.ReasonNoValues, MissingRate: 1}},
		Share:   0.5, Drifted: true,
	}}
	var out bytes.Buffer
	printDrift(&out, []drift.Bucket{b}, nil)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	for i, want := range [][]string{
		{"±bound", "ks_method"},
		{"amount", "wasserstein", "0.05", "±0.004", "0.012±0.015", "0.03±0.033", "limit", "0.001±0.01"},
		{"country", "jensenshannon", "exact", "DRIFT"},
		{"zip", "(not evaluated: no values in the window)", "1"},
		{"(dataset)", "share", "0.5", "DRIFT"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d lacks %q: %s", i, w, lines[i])
			}
		}
	}
}
