package stats

import "testing"

// TestSetExactCap: a larger exact cap keeps windows and merges of them
// exact up to the cap; a sketch beyond it is sketched; exact sketches of a
// process with a larger cap decode (and stay exact) under the default one.
func TestSetExactCap(t *testing.T) {
	defer func() {
		if err := SetExactCap(ExactCap); err != nil {
			t.Fatal(err)
		}
	}()
	for _, bad := range []int{0, -1, MaxExactCap + 1} {
		if SetExactCap(bad) == nil {
			t.Errorf("SetExactCap(%d) accepted", bad)
		}
	}
	const capN = 8192
	if err := SetExactCap(capN); err != nil || ExactCapInUse() != capN {
		t.Fatalf("SetExactCap: %v, in use %d", err, ExactCapInUse())
	}
	vs := valueData("normal", capN+1)
	var whole, merged ValueSketch
	whole.AddFloat64s(vs[:capN])
	for i := range 4 {
		var part ValueSketch
		for _, v := range vs[i*capN/4 : (i+1)*capN/4] {
			part.Add(v)
		}
		merged.Merge(&part)
	}
	if !whole.Exact() || !merged.Exact() || whole.Count() != capN || merged.Count() != capN || whole.RankErrorBound() != 0 {
		t.Fatalf("at the cap: exact %v/%v, count %d/%d", whole.Exact(), merged.Exact(), whole.Count(), merged.Count())
	}
	enc, err := whole.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	whole.Add(vs[capN])
	if whole.Exact() || whole.Count() != capN+1 || whole.RankErrorBound() == 0 {
		t.Fatalf("past the cap: exact %v, count %d, bound %v", whole.Exact(), whole.Count(), whole.RankErrorBound())
	}
	for _, v := range vs {
		whole.Add(v) // flushes of the sketched intake buffer
	}
	if c := cap(whole.buf); c > 2*ExactCap {
		t.Errorf("sketched intake buffer keeps capacity %d, want at most %d", c, 2*ExactCap)
	}
	if err := SetExactCap(ExactCap); err != nil {
		t.Fatal(err)
	}
	var dec ValueSketch
	if err := dec.UnmarshalBinary(enc); err != nil || !dec.Exact() || dec.Count() != capN {
		t.Fatalf("decode under the default cap: %v, exact %v, count %d", err, dec.Exact(), dec.Count())
	}
	dec.Add(1) // beyond the cap in force: sketched, with its bound
	if dec.Exact() || dec.Count() != capN+1 || dec.RankErrorBound() == 0 {
		t.Errorf("decoded sketch grown: exact %v, count %d, bound %v", dec.Exact(), dec.Count(), dec.RankErrorBound())
	}
}
