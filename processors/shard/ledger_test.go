package shard_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/shard"
)

// fixed is an Owner with a fixed assignment.
type fixed shard.Assignment

func (f fixed) Assignment() (shard.Assignment, bool) { return shard.Assignment(f), true }

// The ledger on the real ClickHouse: an unchanged window is not computed
// again (by the same member, or by the next owner in a later generation),
// two members computing the same input at once count one computation and
// one recomputation, and a new owner resumes from the newest pass over
// its partitions.
func TestIntegrationLedger(t *testing.T) {
	sink, _ := testsink.Start(t, "vigil_shard")
	ledger := sink.Windows()
	ctx := context.Background()
	counters := shard.NewCounters("drift")
	a := fixed{Generation: 5, Member: "a", Partitions: []int{0, 1}, Total: 2}
	b := fixed{Generation: 6, Member: "b", Partitions: []int{0, 1}, Total: 2}
	sa := shard.New("drift", a, ledger, counters)
	sb := shard.New("drift", b, ledger, counters)
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w1, w2 := from.Add(time.Minute), from.Add(2*time.Minute)
	want := func(step string, computed, unchanged, recomputed float64) {
		t.Helper()
		got := [3]float64{counters.Value("drift", shard.Computed), counters.Value("drift", shard.Unchanged), counters.Value("drift", shard.Recomputed)}
		if got != [3]float64{computed, unchanged, recomputed} {
			t.Fatalf("%s: computed, unchanged, recomputed = %v, want %v", step, got, [3]float64{computed, unchanged, recomputed})
		}
	}
	begin := func(s *shard.Shard) *shard.Round {
		t.Helper()
		r, err := s.Begin(ctx, from)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	commit := func(r *shard.Round, began time.Time) {
		t.Helper()
		if err := r.Commit(ctx, began); err != nil {
			t.Fatal(err)
		}
	}

	r := begin(sa)
	if !r.Changed("fraud", "1", w1, 11) {
		t.Fatal("a window never computed is not changed")
	}
	r.Done("fraud", "1", w1, 11)
	commit(r, time.Time{})
	want("first computation", 1, 0, 0)

	r = begin(sa)
	if r.Changed("fraud", "1", w1, 11) {
		t.Fatal("the same input again is changed")
	}
	if !r.Changed("fraud", "2", w1, 11) || !r.Changed("fraud", "1", w2, 11) || !r.Changed("fraud", "1", w1, 12) {
		t.Fatal("another version, window or input is unchanged")
	}
	commit(r, time.Time{})
	want("same member, same input", 1, 1, 0)

	// The next owner, in a later generation, finds it computed.
	r = begin(sb)
	if r.Changed("fraud", "1", w1, 11) {
		t.Fatal("the next owner recomputes an unchanged window")
	}
	commit(r, time.Time{})
	want("next owner", 1, 2, 0)

	// Both members in a handover: they read the ledger before either
	// recorded, both compute; the one that recorded second counts it.
	ra, rb := begin(sa), begin(sb)
	for _, r := range []*shard.Round{ra, rb} {
		if !r.Changed("fraud", "1", w2, 21) {
			t.Fatal("a new input is unchanged")
		}
		r.Done("fraud", "1", w2, 21)
	}
	commit(ra, time.Time{})
	commit(rb, time.Time{})
	want("two members", 2, 2, 1)

	// Resume: the newest pass over every owned partition, the oldest of them.
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	r = begin(sa)
	commit(r, t0)
	r = begin(shard.New("drift", fixed{Generation: 7, Member: "c", Partitions: []int{1}, Total: 2}, ledger, counters))
	if got, err := r.Resume(ctx); err != nil || !got.Equal(t0) {
		t.Fatalf("Resume of partition 1 = %v, %v; want %v", got, err, t0)
	}
	r = begin(shard.New("drift", fixed{Generation: 7, Member: "c", Partitions: []int{0}, Total: 2}, ledger, counters))
	commit(r, t0.Add(time.Hour))
	r = begin(sb)
	if got, err := r.Resume(ctx); err != nil || !got.Equal(t0) {
		t.Fatalf("Resume of partitions 0 (at +1h) and 1 = %v, %v; want the older %v", got, err, t0)
	}
	r = begin(shard.New("drift", fixed{Generation: 8, Member: "d", Partitions: []int{0, 2}, Total: 3}, ledger, counters))
	if got, err := r.Resume(ctx); err != nil || !got.IsZero() {
		t.Fatalf("Resume with a partition never passed = %v, %v; want zero", got, err)
	}
	want("after the resumes", 2, 2, 1)

	// A nil shard owns and computes everything, records nothing.
	var none *shard.Shard
	r, err := none.Begin(ctx, from)
	if err != nil || !r.Owns("x") || !r.Changed("fraud", "1", w1, 11) || r.Commit(ctx, t0) != nil {
		t.Fatal("a nil shard does not own and compute everything")
	}
}
