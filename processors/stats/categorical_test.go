package stats

import (
	"fmt"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

func TestCategoricalTopK(t *testing.T) {
	var c CategoricalState
	for _, v := range []string{"b", "a", "c", "d", "a", "b", "d", "b", "a"} {
		c.Add(v)
	}
	c.Other = 2 // as if values beyond the cap had been seen
	tests := []struct {
		k      int
		values []string
		counts []uint64
		other  uint64
	}{
		{-1, []string{}, []uint64{}, 11},
		{0, []string{}, []uint64{}, 11},
		{1, []string{"a"}, []uint64{3}, 8},
		{2, []string{"a", "b"}, []uint64{3, 3}, 5},
		{3, []string{"a", "b", "d"}, []uint64{3, 3, 2}, 3},
		{10, []string{"a", "b", "d", "c"}, []uint64{3, 3, 2, 1}, 2},
	}
	for _, tt := range tests {
		values, counts, other := c.TopK(tt.k)
		if !slices.Equal(values, tt.values) || !slices.Equal(counts, tt.counts) || other != tt.other {
			t.Errorf("TopK(%d) = %v %v %d, want %v %v %d", tt.k, values, counts, other, tt.values, tt.counts, tt.other)
		}
	}
	if c.Count != 9 {
		t.Errorf("Count = %d, want 9", c.Count)
	}
}

func TestCategoricalCap(t *testing.T) {
	var c CategoricalState
	for i := range MaxCategories + 5 {
		c.Add(fmt.Sprint(i))
	}
	c.Add("0")    // known: counted
	c.Add("1003") // beyond the cap: Other
	if len(c.Counts) != MaxCategories || c.Counts["0"] != 2 || c.Other != 6 || c.Count != MaxCategories+7 {
		t.Fatalf("%d categories, Counts[0] = %d, Other %d, Count %d", len(c.Counts), c.Counts["0"], c.Other, c.Count)
	}
}

func TestCategoricalMerge(t *testing.T) {
	full := func(n int) CategoricalState {
		var c CategoricalState
		for i := range n {
			c.Add(fmt.Sprint("v", i))
		}
		return c
	}
	tests := []struct {
		name      string
		into      CategoricalState
		o         CategoricalState
		wantKept  []string // among o's new values
		wantOther uint64
	}{
		{
			name:     "room for all",
			into:     full(3),
			o:        CategoricalState{Count: 6, Missing: 1, Counts: map[string]uint64{"v0": 1, "x": 2, "y": 3}},
			wantKept: []string{"x", "y"},
		},
		{
			name:      "room for one: most frequent wins",
			into:      full(MaxCategories - 1),
			o:         CategoricalState{Count: 18, Counts: map[string]uint64{"x": 5, "y": 5, "z": 7, "v0": 1}},
			wantKept:  []string{"z"},
			wantOther: 10,
		},
		{
			name:      "room for two: ties by value",
			into:      full(MaxCategories - 2),
			o:         CategoricalState{Count: 18, Other: 1, Counts: map[string]uint64{"y": 5, "x": 5, "w": 4, "z": 7}},
			wantKept:  []string{"x", "z"},
			wantOther: 9, // y and w
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.into.clone()
			c.Merge(&tt.o)
			if c.Count != tt.into.Count+tt.o.Count || c.Missing != tt.into.Missing+tt.o.Missing {
				t.Errorf("Count %d Missing %d", c.Count, c.Missing)
			}
			if c.Counts["v0"] != tt.into.Counts["v0"]+tt.o.Counts["v0"] {
				t.Errorf("known value v0 counted %d", c.Counts["v0"])
			}
			for v, n := range tt.o.Counts {
				if _, known := tt.into.Counts[v]; known {
					continue
				}
				if slices.Contains(tt.wantKept, v) != (c.Counts[v] == n) {
					t.Errorf("value %q: count %d after merge, kept want %v", v, c.Counts[v], slices.Contains(tt.wantKept, v))
				}
			}
			if c.Other != tt.wantOther+tt.o.Other || len(c.Counts) > MaxCategories {
				t.Errorf("Other %d, %d categories; want Other %d", c.Other, len(c.Counts), tt.wantOther+tt.o.Other)
			}
		})
	}
}

// TestAddStringsOwnsKeys checks that no state key points into the Arrow
// buffer: overwriting the buffer afterwards must not change the state.
func TestAddStringsOwnsKeys(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	b := array.NewStringBuilder(mem)
	b.AppendValues([]string{"US", "DE", "", "US", "FR", "US"}, []bool{true, true, false, true, true, true})
	a := b.NewStringArray()
	b.Release()
	defer a.Release()

	var sc stringScratch
	var c CategoricalState
	c.Add("US") // key owned by the test: the fold must replace it with an owned copy too
	c.addStrings(a, 0, 4, &sc)
	c.addStrings(a, 3, 6, &sc)
	for i := range a.ValueBytes() {
		a.ValueBytes()[i] = 'X'
	}
	want := map[string]uint64{"US": 1 + 2 + 2, "DE": 1, "FR": 1}
	if !mapsEqual(c.Counts, want) || c.Count != 7 || c.Missing != 1 {
		t.Fatalf("Counts %v Count %d Missing %d, want %v 7 1", c.Counts, c.Count, c.Missing, want)
	}
	for _, k := range sc.keys[:cap(sc.keys)] {
		if k != "" {
			t.Fatalf("scratch still holds %q", k)
		}
	}
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
