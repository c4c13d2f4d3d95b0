package alerting

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ErrFenced is returned (wrapped) by Fence.Hold and Fence.Acquire when this
// process does not hold the alert lease: another member of the group sends
// the notifications now (sinks/webhook.ErrFenced is the same error).
var ErrFenced = errors.New("another process sends the notifications now")

// Lease is one takeover of a scope; the one with the largest (Epoch,
// Member) holds it.
type Lease struct {
	Scope  string
	Epoch  uint64 // 0: nobody ever took the scope
	Member string
	// Generation is the consumer-group generation in which Member took it,
	// for the record; the order is the epoch's.
	Generation int64
}

// LeaseStore keeps the leases (sinks/clickhouse's Leases).
type LeaseStore interface {
	// Take writes member as the holder of scope with the epoch after the
	// current holder's; it returns what it wrote and the previous holder.
	Take(ctx context.Context, scope, member string, generation int64) (taken, previous Lease, err error)
	// Holder returns the current holder of scope.
	Holder(ctx context.Context, scope string) (Lease, error)
}

// Fence makes sure that of the members of a processor group, only one
// sends notifications and saves alert states, even while two of them
// believe they lead (a member expelled without knowing it yet, a pass that
// was running when the generation ended). It is a lease with a fencing
// token (the epoch) in a LeaseStore:
//
//   - Acquire, called by the pass while the processor leads: unless this
//     process holds the lease already, write the next epoch under this
//     process's member id, then, when the previous holder was another
//     process, wait TakeoverWait before doing anything. The wait lets every
//     action the previous holder checked before the takeover finish: its
//     checks are followed by at most one HTTP attempt and one outbox write,
//     each bounded by the dispatcher's timeout.
//   - Hold, before every send attempt (the dispatcher's Fence), every
//     enqueue and every save of alert states: the processor still leads and
//     the stored holder is this process's lease. A process taken over takes
//     the lease again only in a new generation it leads.
//
// What remains: ClickHouse 18.16 has no transactions, so the check and the
// action are two steps. A process paused for longer than TakeoverWait
// between its check and its action (a stop of the whole VM, a debugger) can
// still act after the new holder started, and a receiver may then get one
// notification twice; receivers deduplicate on the alert id. It assumes the
// store is one ClickHouse server (a read after a write sees it), and does
// not depend on clocks.
type Fence struct {
	store  LeaseStore
	scope  string
	member string
	leader func() (generation int32, ok bool)
	wait   time.Duration
	log    zerolog.Logger

	mu  sync.Mutex // serialises Acquire, guards gen
	gen int32      // the last generation in which Acquire found or took the lease

	heldMu sync.Mutex
	held   Lease // what this process took last; Epoch 0: nothing
}

// NewFence returns the fence of the alert job of group. leader is the
// processor's Leadership; takeoverWait is the wait after taking over from
// another process (at least twice the dispatcher's per-attempt timeout).
func NewFence(store LeaseStore, group string, leader func() (int32, bool), takeoverWait time.Duration, log zerolog.Logger) *Fence {
	return &Fence{store: store, scope: "alerts/" + group, member: memberID(), leader: leader, wait: takeoverWait,
		log: log.With().Str("component", "alerts").Logger()}
}

// Member is this process's id in the leases.
func (f *Fence) Member() string { return f.member }

// Acquire makes this process the holder, if the processor leads: at once
// when it holds the lease already, else after writing the next epoch and,
// when another process held it, waiting TakeoverWait (or until ctx ends).
// A process whose lease was taken over takes it back only in a later
// generation: within the same one it was expelled without knowing. Call it
// before every pass.
func (f *Fence) Acquire(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	gen, ok := f.leader()
	if !ok {
		return fmt.Errorf("take the alert lease: this process does not lead the group: %w", ErrFenced)
	}
	mine := f.lease()
	if mine.Epoch > 0 {
		h, err := f.store.Holder(ctx, f.scope)
		if err != nil {
			return err
		}
		if h == mine {
			f.gen = gen // still ours in this generation
			return nil
		}
		if gen == f.gen {
			// Taken over within the generation this process believes it
			// leads: it was expelled and has not noticed yet. Taking the
			// lease back would fence the real leader.
			return fmt.Errorf("the alert lease was taken by %s (epoch %d) during generation %d; waiting for a new generation: %w",
				h.Member, h.Epoch, gen, ErrFenced)
		}
	}
	taken, prev, err := f.store.Take(ctx, f.scope, f.member, int64(gen))
	if err != nil {
		return err
	}
	f.log.Info().Uint64("epoch", taken.Epoch).Int32("generation", gen).Str("member", f.member).
		Str("previous", prev.Member).Dur("wait", f.wait).Msg("took the alert lease")
	if prev.Member != f.member {
		t := time.NewTimer(f.wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("take the alert lease: %w", ctx.Err())
		}
	}
	f.setLease(taken)
	f.gen = gen
	return f.Hold(ctx)
}

// Hold returns nil while the processor leads and the stored holder is the
// lease this process took; an error wrapping ErrFenced when not, or the
// store's error when it cannot tell.
func (f *Fence) Hold(ctx context.Context) error {
	if _, ok := f.leader(); !ok {
		return fmt.Errorf("this process does not lead the group: %w", ErrFenced)
	}
	mine := f.lease()
	if mine.Epoch == 0 {
		return fmt.Errorf("this process has not taken the alert lease: %w", ErrFenced)
	}
	h, err := f.store.Holder(ctx, f.scope)
	if err != nil {
		return err
	}
	if h != mine {
		return fmt.Errorf("the alert lease is held by %s (epoch %d, generation %d), not by this process (epoch %d): %w",
			h.Member, h.Epoch, h.Generation, mine.Epoch, ErrFenced)
	}
	return nil
}

func (f *Fence) lease() Lease {
	f.heldMu.Lock()
	defer f.heldMu.Unlock()
	return f.held
}

func (f *Fence) setLease(l Lease) {
	f.heldMu.Lock()
	f.held = l
	f.heldMu.Unlock()
}

// memberID names this process: host, pid and a random suffix (a restarted
// process is another member).
func memberID() string {
	host, _ := os.Hostname()
	var b [4]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
