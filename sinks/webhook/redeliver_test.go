package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestRedeliverAfter(t *testing.T) {
	cfg := DispatcherConfig{}.withDefaults()
	for round, want := range map[int]time.Duration{
		1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 4: 4 * time.Minute, 5: 5 * time.Minute, 40: 5 * time.Minute,
	} {
		if got := cfg.redeliverAfter(round); got != want {
			t.Errorf("round %d: wait %s, want %s", round, got, want)
		}
	}
}

// redeliveryConfig: two attempts a round, rounds 20ms, 40ms, then every 80ms.
func redeliveryConfig(outbox Outbox) DispatcherConfig {
	cfg := fastConfig()
	cfg.MaxAttempts = 2
	cfg.RedeliverBase, cfg.RedeliverMax = 20*time.Millisecond, 80*time.Millisecond
	cfg.Outbox = outbox
	return cfg
}

// A receiver down for longer than a round of attempts gets the notification
// once it is back, without a restart, within RedeliverMax and a round.
func TestDispatcherRedeliversWithoutRestart(t *testing.T) {
	var up atomic.Bool
	var upAt, gotAt atomic.Int64
	srv, attempts := server(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			w.WriteHeader(503)
			return
		}
		gotAt.CompareAndSwap(0, time.Now().UnixNano())
	})
	outbox := NewMemoryOutbox()
	cfg := redeliveryConfig(outbox)
	d, _ := NewDispatcher(cfg, zerolog.Nop(), slackTo(t, srv.URL))
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Enqueue(context.Background(), "slack", []Alert{firing()}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // rounds at ~20, 60, 140, 220, 300, 380ms
	upAt.Store(time.Now().UnixNano())
	up.Store(true)
	waitFor(t, "the redelivery", func() bool { return d.Stats().Sent == 1 })
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	lag := time.Duration(gotAt.Load() - upAt.Load())
	t.Logf("receiver back -> delivered in %s; %d attempts, stats %+v", lag, attempts.Load(), st)
	if lag > cfg.RedeliverMax+50*time.Millisecond {
		t.Errorf("delivered %s after the receiver came back, want within RedeliverMax %s (+50ms)", lag, cfg.RedeliverMax)
	}
	if st.Redelivered < 4 || st.Failed != st.Redelivered || st.Expired != 0 || outbox.Len() != 0 {
		t.Errorf("stats %+v, outbox %d; want >= 4 redeliveries, one failed round before each, nothing pending", st, outbox.Len())
	}
	if attempts.Load() != 2*st.Redelivered+1 {
		t.Errorf("%d attempts for %d redelivered rounds, want 2 a failed round and 1 that succeeded", attempts.Load(), st.Redelivered)
	}
}

// A delivery still failing MaxAge after it was created is given up:
// recorded as expired, counted, and not sent when the receiver is back.
func TestDispatcherExpires(t *testing.T) {
	var up atomic.Bool
	var got atomic.Int64
	srv, _ := server(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			w.WriteHeader(500)
			return
		}
		got.Add(1)
	})
	outbox := NewMemoryOutbox()
	cfg := redeliveryConfig(outbox)
	cfg.MaxAge = 150 * time.Millisecond
	logs := &syncBuffer{}
	d, _ := NewDispatcher(cfg, zerolog.New(logs), slackTo(t, srv.URL))
	_ = d.Start(context.Background())
	if err := d.EnqueueID(context.Background(), "n1", "slack", []Alert{firing()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the expiry", func() bool { return d.Stats().Expired == 1 })
	up.Store(true)
	time.Sleep(3 * cfg.RedeliverMax)
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	outbox.mu.Lock()
	result := outbox.done["n1"]
	outbox.mu.Unlock()
	if st := d.Stats(); st.Expired != 1 || st.Sent != 0 || got.Load() != 0 || !errors.Is(result, ErrExpired) || outbox.Len() != 0 {
		t.Errorf("stats %+v, receiver got %d, outbox result %v, pending %d; want 1 expired, nothing sent", st, got.Load(), result, outbox.Len())
	}
	if out := logs.String(); !strings.Contains(out, `"level":"error"`) || !strings.Contains(out, "notification expired undelivered") {
		t.Errorf("no error logged for the expiry:\n%s", logs)
	}
}

// fence is a Fence whose answer the test sets.
type fence struct {
	mu  sync.Mutex
	err error
}

func (f *fence) Hold(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fence) set(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// A fenced process sends nothing and leaves its delivery pending; one that
// cannot check the fence does not send either; once the fence holds, the
// redelivery sweep takes the pending delivery up and sends it.
func TestDispatcherFence(t *testing.T) {
	srv, attempts := server(t, func(int64, http.ResponseWriter, *http.Request) {})
	outbox := NewMemoryOutbox()
	cfg := redeliveryConfig(outbox)
	f := &fence{err: fmt.Errorf("lease taken by another member: %w", ErrFenced)}
	cfg.Fence = f
	d, _ := NewDispatcher(cfg, zerolog.Nop(), slackTo(t, srv.URL))
	_ = d.Start(context.Background())
	defer d.Shutdown(context.Background())
	if err := d.Enqueue(context.Background(), "slack", []Alert{firing()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fenced delivery", func() bool { return d.Stats().Fenced == 1 })
	time.Sleep(3 * cfg.RedeliverMax) // sweeps find the fence closed
	if attempts.Load() != 0 || outbox.Len() != 1 || d.Stats().Fenced != 1 {
		t.Fatalf("while fenced: %d requests, %d pending, stats %+v", attempts.Load(), outbox.Len(), d.Stats())
	}
	f.set(errors.New("cannot reach ClickHouse"))
	time.Sleep(3 * cfg.RedeliverMax)
	if attempts.Load() != 0 || outbox.Len() != 1 {
		t.Fatalf("while the fence cannot be checked: %d requests, %d pending, stats %+v", attempts.Load(), outbox.Len(), d.Stats())
	}
	f.set(nil)
	waitFor(t, "the delivery once the fence holds", func() bool { return d.Stats().Sent == 1 })
	if attempts.Load() != 1 || outbox.Len() != 0 {
		t.Errorf("after the fence holds: %d requests, %d pending, stats %+v", attempts.Load(), outbox.Len(), d.Stats())
	}
}

// slowReadOutbox is a MemoryOutbox whose Pending takes its snapshot at
// once but returns only when release says so, like a slow query that began
// before a delivery finished.
type slowReadOutbox struct {
	*MemoryOutbox
	release func() bool
}

func (o *slowReadOutbox) Pending(ctx context.Context) ([]Delivery, error) {
	snap, err := o.MemoryOutbox.Pending(ctx)
	for deadline := time.Now().Add(2 * time.Second); !o.release() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	return snap, err
}

// A redelivery sweep whose read of the outbox began before a delivery
// finished does not send it again.
func TestDispatcherSweepIgnoresAStaleRead(t *testing.T) {
	srv, attempts := server(t, func(int64, http.ResponseWriter, *http.Request) { time.Sleep(60 * time.Millisecond) })
	var d *Dispatcher
	outbox := &slowReadOutbox{MemoryOutbox: NewMemoryOutbox(), release: func() bool { return d.Stats().Sent == 1 }}
	cfg := redeliveryConfig(outbox)
	cfg.Timeout = time.Second
	d, _ = NewDispatcher(cfg, zerolog.Nop(), slackTo(t, srv.URL))
	_ = d.Start(context.Background())
	if err := d.Enqueue(context.Background(), "slack", []Alert{firing()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery", func() bool { return d.Stats().Sent == 1 })
	time.Sleep(4 * cfg.RedeliverBase) // sweeps that read it pending before it was delivered have returned
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); attempts.Load() != 1 || st.Sent != 1 || st.Redelivered != 0 {
		t.Errorf("%d requests, stats %+v; want 1 request, no redelivery", attempts.Load(), st)
	}
}
