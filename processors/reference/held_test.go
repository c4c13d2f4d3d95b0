package reference

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// TestHeldValuesSorted checks heldValues against slices.Sort: nulls and
// non-finite values left out, several blocks, negatives, duplicates, a
// constant feature (every byte shared) and one scratch reused by features
// of decreasing and increasing size.
func TestHeldValuesSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 7))
	gens := []struct {
		name string
		n    int
		gen  func(i int) float64
	}{
		{"normal, 3 blocks", 2*heldBlock + 123, func(int) float64 { return rng.NormFloat64() * 1e3 }},
		{"small ints with ties", 5000, func(int) float64 { return float64(rng.IntN(20) - 10) }},
		{"constant", 700, func(int) float64 { return 42.5 }},
		{"wide range", heldBlock + 1, func(int) float64 { return math.Ldexp(rng.Float64()-0.5, rng.IntN(2000)-1000) }},
		{"one", 1, func(int) float64 { return -3 }},
	}
	var sc sortScratch
	for _, g := range gens {
		b := array.NewFloat64Builder(memory.DefaultAllocator)
		var want []float64
		for i := 0; i < g.n; i++ {
			switch i % 97 {
			case 5:
				b.AppendNull()
			case 11:
				b.Append(math.NaN())
			case 13:
				b.Append(math.Inf(-1))
			default:
				v := g.gen(i)
				b.Append(v)
				want = append(want, v)
			}
		}
		col := b.NewFloat64Array()
		b.Release()
		var h heldValues
		// in two parts, as two records
		half := col.Len() / 2
		lo, hi := array.NewSlice(col, 0, int64(half)).(*array.Float64), array.NewSlice(col, int64(half), int64(col.Len())).(*array.Float64)
		added := h.add(lo) + h.add(hi)
		lo.Release()
		hi.Release()
		col.Release()
		if added != len(want) || h.n != len(want) {
			t.Fatalf("%s: added %d (held %d), want %d", g.name, added, h.n, len(want))
		}
		slices.Sort(want)
		got := h.sorted(&sc)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: sorted values differ from slices.Sort", g.name)
		}
		if h.blocks != nil {
			t.Errorf("%s: blocks kept after sorting", g.name)
		}
	}
	// -0 and +0 are equal to slices.Sort in any order; here -0 comes first
	var h heldValues
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	b.AppendValues([]float64{0, math.Copysign(0, -1), -1, 1}, nil)
	col := b.NewFloat64Array()
	h.add(col)
	got := h.sorted(&sc)
	if got[0] != -1 || !math.Signbit(got[1]) || math.Signbit(got[2]) || got[3] != 1 {
		t.Errorf("sorted(0, -0, -1, 1) = %v (sign bits %v %v)", got, math.Signbit(got[1]), math.Signbit(got[2]))
	}
}
