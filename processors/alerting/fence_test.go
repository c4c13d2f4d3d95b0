package alerting_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/alerting"
)

// member is the leadership the test gives one process.
type member struct{ gen atomic.Int64 } // -1: not leading

func (m *member) leadership() (int32, bool) {
	g := m.gen.Load()
	return int32(g), g >= 0
}

// Two fences on the real ClickHouse: the one that takes over waits, the one
// taken over from is fenced at its next check (even while its processor
// still says it leads), a process that holds the lease takes it again in a
// new generation without waiting, and one that stops leading is fenced.
func TestIntegrationFence(t *testing.T) {
	ctx := context.Background()
	db := "vigil_fence_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	sink := testsink.Open(t, db, nil)
	const wait = time.Second // long enough for a fenced(a) query to complete on a loaded machine
	var ma, mb member
	ma.gen.Store(-1)
	mb.gen.Store(-1)
	a := alerting.NewFence(sink.Leases(), "g", ma.leadership, wait, zerolog.Nop())
	b := alerting.NewFence(sink.Leases(), "g", mb.leadership, wait, zerolog.Nop())
	fenced := func(f *alerting.Fence) bool { return errors.Is(f.Hold(ctx), alerting.ErrFenced) }
	acquire := func(f *alerting.Fence) time.Duration {
		t.Helper()
		began := time.Now()
		if err := f.Acquire(ctx); err != nil {
			t.Fatalf("Acquire: %v", err)
		}
		return time.Since(began)
	}

	if err := a.Acquire(ctx); !errors.Is(err, alerting.ErrFenced) || !fenced(a) {
		t.Fatalf("Acquire while not leading = %v", err)
	}
	ma.gen.Store(1)
	if took := acquire(a); took < wait || fenced(a) {
		t.Fatalf("first holder: took %s (want >= %s), fenced %v", took, wait, fenced(a))
	}
	// b leads generation 2 while a has not noticed it lost: a is fenced as
	// soon as b's lease is written, before b acts.
	mb.gen.Store(2)
	done := make(chan time.Duration)
	go func() { began := time.Now(); _ = b.Acquire(ctx); done <- time.Since(began) }()
	// Poll until b's Acquire returns (it waits out the wait after writing
	// its lease): a must be seen fenced while b still waits. Under load the
	// lease write itself may take longer than the wait, so no deadline of
	// our own.
	var took time.Duration
	aFencedAfterTakeover := false
	for got := false; !got; {
		if fenced(a) {
			aFencedAfterTakeover = true
			took, got = <-done, true
			break
		}
		select {
		case took = <-done:
			got = true
		case <-time.After(5 * time.Millisecond):
		}
	}
	if !aFencedAfterTakeover || took < wait || fenced(b) {
		t.Fatalf("takeover by b: a fenced within the wait %v, b took %s (want >= %s), b fenced %v", aFencedAfterTakeover, took, wait, fenced(b))
	}
	// a, expelled but still believing it leads generation 1, does not take
	// the lease back.
	if err := a.Acquire(ctx); !errors.Is(err, alerting.ErrFenced) || !fenced(a) || fenced(b) {
		t.Fatalf("a again in generation 1 = %v; a fenced %v, b fenced %v", err, fenced(a), fenced(b))
	}
	// b leads generation 3 too: it holds the lease, no write, no wait.
	mb.gen.Store(3)
	if took := acquire(b); took >= wait || fenced(b) {
		t.Errorf("b again in generation 3: took %s, fenced %v", took, fenced(b))
	}
	if h, err := sink.Leases().Holder(ctx, "alerts/g"); err != nil || h.Epoch != 2 || h.Member != b.Member() || h.Generation != 2 {
		t.Errorf("holder = %+v, %v; want b at epoch 2 from generation 2", h, err)
	}
	// b's generation ends: fenced locally at once; a leads generation 4 and
	// takes over (waiting).
	mb.gen.Store(-1)
	if !fenced(b) || !fenced(a) {
		t.Errorf("after b's generation: b fenced %v, a fenced %v", fenced(b), fenced(a))
	}
	ma.gen.Store(4)
	if took := acquire(a); took < wait || fenced(a) {
		t.Errorf("a in generation 4: took %s, fenced %v", took, fenced(a))
	}
	if h, err := sink.Leases().Holder(ctx, "alerts/g"); err != nil || h.Epoch != 3 || h.Member != a.Member() || h.Generation != 4 {
		t.Errorf("holder = %+v, %v; want a at epoch 3 from generation 4", h, err)
	}
}
