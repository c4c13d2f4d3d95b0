package alerting

import (
	"math"
	"testing"

	"github.com/vigil-ml/vigil/processors/reference"
)

func TestReferenceValue(t *testing.T) {
	p := &reference.Profile{Features: []reference.FeatureProfile{
		{Name: "amount", Count: 90, Missing: 5, NaN: 3, Inf: 2, Mean: 41.5},
		{Name: "empty"},
	}}
	tests := []struct {
		metric, feature string
		want            float64 // NaN: no base
	}{
		{"mean", "amount", 41.5},
		{"null_rate", "amount", 0.05},
		{"psi", "amount", math.NaN()},
		{"mean", "unknown", math.NaN()},
		{"null_rate", "empty", math.NaN()},
		{"event_count", "", math.NaN()},
	}
	for _, tt := range tests {
		got := referenceValue(p, tt.metric, tt.feature)
		if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("%s of %q = %v, want %v", tt.metric, tt.feature, got, tt.want)
		}
	}
	if got := referenceValue(nil, "mean", "amount"); !math.IsNaN(got) {
		t.Errorf("without a profile: %v", got)
	}
}
