package clickhouse

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// numFeatureWithValues is a Number feature whose Values hold the finite
// values of vs, as AddRange builds it.
func numFeatureWithValues(vs ...float64) *stats.FeatureState {
	f := numFeature(vs...)
	f.Values.AddFloat64s(vs)
	return f
}

func TestFeatureStatesValueSketchRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	big := make([]float64, 100_000)
	for i := range big {
		big[i] = math.Exp(r.NormFloat64()) - 3
	}
	fs := map[string]*stats.FeatureState{
		"sketched": numFeatureWithValues(big...),
		"exact":    numFeatureWithValues(1, -2.5, 3, math.NaN(), math.Inf(-1), 3),
		"country":  catFeature("de", "fr"),
		"is_new":   boolFeature(true, false),
		"binned":   numFeature(0.5, -3, 1e9, 0, 7),
	}
	for _, v := range []float64{0.5, -3, 1e9, 0, 7} {
		fs["binned"].Bins.Add(v) // a window kept without value sketches
	}
	if !fs["binned"].BinsComplete() {
		t.Fatal("binned feature: bins incomplete")
	}
	if fs["sketched"].Values.Exact() || !fs["exact"].Values.Exact() {
		t.Fatal("test wants one sketched and one exact value summary")
	}
	b := appendFeatureStates(nil, fs)
	got, err := decodeFeatureStates(b)
	if err != nil {
		t.Fatal(err)
	}
	if again := appendFeatureStates(nil, got); !bytes.Equal(again, b) {
		t.Fatal("re-encoding the decoded states gives other bytes")
	}
	if !featuresEqual(got, fs) {
		t.Fatalf("round trip changed the states:\n got %s\nwant %s", dumpFeatures(got), dumpFeatures(fs))
	}
	for name, f := range fs {
		g := got[name]
		want, _ := f.Values.MarshalBinary()
		have, _ := g.Values.MarshalBinary()
		if !bytes.Equal(have, want) || g.ValuesComplete() != f.ValuesComplete() {
			t.Errorf("%s: value sketch changed in the round trip (complete %v, want %v)", name, g.ValuesComplete(), f.ValuesComplete())
		}
	}
	s := &got["sketched"].Values
	if s.Count() != uint64(len(big)) || !got["sketched"].ValuesComplete() || s.RankErrorBound() == 0 || s.RankErrorBound() > 0.01 {
		t.Errorf("decoded sketch: count %d, complete %v, bound %v", s.Count(), got["sketched"].ValuesComplete(), s.RankErrorBound())
	}
	t.Logf("feature_states of 4 features with a sketch of %d values: %d bytes", len(big), len(b))
}

// TestFeatureStatesVersion1 decodes the encoding written before the value
// sketch: the state comes back whole, with empty Values that are marked
// incomplete.
func TestFeatureStatesVersion1(t *testing.T) {
	f := numFeature(1, 2, 3) // no Values
	v3 := appendFeatureStates(nil, map[string]*stats.FeatureState{"amount": f})
	if v3[0] != 3 || v3[len(v3)-1] != 0 || v3[len(v3)-2] != 0 {
		t.Fatalf("version 3 encoding %x: want version byte 3, an empty sketch and an empty coarse histogram last", v3)
	}
	// Version 2 is version 3 without the coarse histogram length.
	v2 := append([]byte{2}, v3[1:len(v3)-1]...)
	if got, err := decodeFeatureStates(v2); err != nil || !featuresEqual(got, map[string]*stats.FeatureState{"amount": f}) {
		t.Fatalf("version 2: %v %s", err, dumpFeatures(got))
	}
	// Version 1 is version 2 without the sketch length.
	v1 := append([]byte{1}, v2[1:len(v2)-1]...)
	got, err := decodeFeatureStates(v1)
	if err != nil {
		t.Fatal(err)
	}
	g := got["amount"]
	if g == nil || g.Kind != schemas.Number || g.Num.Count != 3 || g.Num.Sum != 6 || g.Values.Count() != 0 {
		t.Fatalf("decoded %s", dumpFeatures(got))
	}
	if g.ValuesComplete() {
		t.Error("a version 1 state reports complete values")
	}
	// Merged with a complete state, it stays incomplete.
	m := numFeatureWithValues(4, 5)
	m.Merge(g)
	if m.ValuesComplete() {
		t.Error("merge with a version 1 state reports complete values")
	}
}
