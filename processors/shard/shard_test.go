package shard

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"testing"
)

// Partition is the Go SDK's partition of a model's events: Sarama's
// FNV-1a hash, as an int32, modulo the partition count, made positive.
func TestPartitionIsTheSDKsHash(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, 12, 64} {
		for i := range 200 {
			model := fmt.Sprintf("model-%d", i)
			h := fnv.New32a()
			h.Write([]byte(model))
			want := int(int32(h.Sum32()) % int32(n))
			if want < 0 {
				want = -want
			}
			if got := Partition(model, n); got != want {
				t.Fatalf("Partition(%q, %d) = %d, want %d", model, n, got, want)
			}
		}
	}
	if got := Partition("fraud", 0); got != 0 {
		t.Errorf("Partition with 0 partitions = %d, want 0", got)
	}
}

// Every model has exactly one owner among the members of a generation
// (or none when no member consumes its partition), and each member's own
// Assignment agrees with the group-wide Owners.
func TestEveryModelHasOneOwner(t *testing.T) {
	cases := []struct {
		name    string
		members map[string][]int
		total   int
	}{
		{"one member", map[string][]int{"a": {0, 1, 2, 3}}, 4},
		{"three members on four partitions", map[string][]int{"a": {0, 3}, "b": {1}, "c": {2}}, 4},
		{"after a kill", map[string][]int{"a": {0, 1}, "c": {2, 3}}, 4},
		{"a member joins", map[string][]int{"a": {0}, "c": {1}, "d": {2, 3}}, 4},
		{"a standby member", map[string][]int{"a": {0}, "b": {1}, "c": {}}, 2},
		{"one partition", map[string][]int{"a": {0}, "b": {}}, 1},
		{"many partitions", map[string][]int{"a": {0, 2, 4, 6, 8, 10}, "b": {1, 3, 5, 7, 9, 11}}, 12},
	}
	models := make([]string, 300)
	for i := range models {
		models[i] = fmt.Sprintf("m%03d", i)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			owners := Owners(c.members, c.total, models)
			per := map[string]int{}
			for _, m := range models {
				var got []string
				for member, parts := range c.members {
					a := Assignment{Member: member, Partitions: slices.Sorted(slices.Values(parts)), Total: c.total}
					if a.Owns(m) {
						got = append(got, member)
					}
				}
				if len(got) != 1 || got[0] != owners[m] {
					t.Fatalf("model %s: owned by %v, Owners says %q; want exactly one", m, got, owners[m])
				}
				per[got[0]]++
			}
			// Every member with partitions gets a share of 300 models.
			for member, parts := range c.members {
				if len(parts) > 0 && per[member] == 0 {
					t.Errorf("member %s (partitions %v) owns no model of %d", member, parts, len(models))
				}
				if len(parts) == 0 && per[member] != 0 {
					t.Errorf("standby member %s owns %d models", member, per[member])
				}
			}
		})
	}
}

// Everything owns every model.
func TestEverything(t *testing.T) {
	a, ok := Everything.Assignment()
	if !ok || !a.Owns("fraud") || !a.Owns("") {
		t.Errorf("Everything: %+v, %v", a, ok)
	}
}

// The fingerprint does not depend on the items' order and changes with
// any field of any item.
func TestInput(t *testing.T) {
	item := func(id string, off int64) Item { return NewItem().String(id).Int64(off) }
	sum := func(items ...Item) uint64 {
		var in Input
		for _, it := range items {
			in.Add(it)
		}
		return in.Sum()
	}
	base := sum(item("a", 1), item("b", 2), item("c", 3))
	if got := sum(item("c", 3), item("a", 1), item("b", 2)); got != base {
		t.Errorf("reordered: %x, want %x", got, base)
	}
	for name, other := range map[string]uint64{
		"offset":      sum(item("a", 1), item("b", 2), item("c", 4)),
		"id":          sum(item("a", 1), item("b", 2), item("d", 3)),
		"one more":    sum(item("a", 1), item("b", 2), item("c", 3), item("c", 3)),
		"one less":    sum(item("a", 1), item("b", 2)),
		"split field": sum(NewItem().String("ab").String("c"), item("b", 2), item("c", 3)),
		"empty":       sum(),
	} {
		if other == base {
			t.Errorf("%s: same fingerprint %x", name, base)
		}
	}
	if sum(NewItem().String("ab").String("c")) == sum(NewItem().String("a").String("bc")) {
		t.Error(`("ab","c") and ("a","bc") have the same hash`)
	}
}

// switching is an Owner whose generation the test moves.
type switching struct{ a *Assignment }

func (s switching) Assignment() (Assignment, bool) {
	if s.a == nil {
		return Assignment{}, false
	}
	return *s.a, true
}

// A round stops owning when its generation ends (or a new one starts)
// while it runs.
func TestRoundStopsWithItsGeneration(t *testing.T) {
	a := &Assignment{Generation: 3, Member: "a", Partitions: []int{0}, Total: 1}
	owner := &switching{a: a}
	r := &Round{s: New("drift", owner, nil, nil), a: *a}
	if !r.Owns("fraud") {
		t.Fatal("does not own in its generation")
	}
	owner.a = nil
	if r.Owns("fraud") {
		t.Error("owns between generations")
	}
	owner.a = &Assignment{Generation: 4, Member: "a", Partitions: []int{0}, Total: 1}
	if r.Owns("fraud") {
		t.Error("owns in the next generation")
	}
}

func TestChangedWindows(t *testing.T) {
	type state struct {
		start int64
		v     uint64
	}
	a := &Assignment{Generation: 3, Member: "a", Partitions: []int{0}, Total: 1}
	counters := NewCounters("drift")
	r := &Round{s: New("drift", &switching{a: a}, nil, counters), a: *a, newest: map[windowKey]Pass{
		{"fraud", "3", 60_000}:  {Input: 2},  // unchanged: states 1 + 1
		{"fraud", "3", 120_000}: {Input: 10}, // changed: now 5
	}}
	states := []state{{0, 4}, {60_000, 1}, {120_000, 5}, {60_000, 1}}
	sum := func(sts []state) uint64 {
		var n uint64
		for _, st := range sts {
			n += st.v
		}
		return n
	}
	w := ChangedWindows(r, "fraud", "3", states, func(st state) int64 { return st.start }, sum)
	got := map[int64]uint64{}
	for _, st := range w.States {
		got[st.start] += st.v
	}
	if want := map[int64]uint64{0: 4, 120_000: 5}; !maps.Equal(got, want) {
		t.Errorf("changed windows %v, want %v", got, want)
	}
	if n := counters.Value("drift", Unchanged); n != 1 {
		t.Errorf("%v unchanged windows counted, want 1", n)
	}
	w.Done(r)
	done := map[int64]uint64{}
	for _, p := range r.done {
		done[p.WindowStart.UnixMilli()] = p.Input
	}
	if want := map[int64]uint64{0: 4, 120_000: 5}; !maps.Equal(done, want) {
		t.Errorf("done %v, want %v", done, want)
	}
}
