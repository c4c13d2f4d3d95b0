package reference

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// fakeStore is a load function whose answer the test changes.
type fakeStore struct {
	mu   sync.Mutex
	refs map[Key]*Profile
	err  error
}

func (s *fakeStore) set(refs map[Key]*Profile, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs, s.err = refs, err
}

func (s *fakeStore) load(ctx context.Context) (map[Key]*Profile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refs, s.err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestWatcherSwaps(t *testing.T) {
	defer goleak.VerifyNone(t)
	first := &Profile{Meta: Meta{Model: "fraud", ModelVersion: "3", ID: 1}}
	second := &Profile{Meta: Meta{Model: "fraud", ModelVersion: "3", ID: 2}}
	other := &Profile{Meta: Meta{Model: "churn", ID: 5}}
	store := &fakeStore{refs: map[Key]*Profile{{"fraud", "3"}: first}}
	w, err := NewWatcher(store.load, zerolog.New(zerolog.NewTestWriter(t)), WithPollInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if w.Current("fraud", "3") != nil {
		t.Fatal("a reference before Start")
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := w.Current("fraud", "3"); got != first {
		t.Fatalf("after Start: %+v", got)
	}

	store.set(map[Key]*Profile{{"fraud", "3"}: second, {"churn", ""}: other}, nil)
	waitFor(t, "the new reference", func() bool { return w.Current("fraud", "3") == second })
	if w.Current("churn", "") != other || w.Current("fraud", "4") != nil {
		t.Fatal("wrong references after the swap")
	}

	// A failing load keeps the references in force and is counted.
	store.set(nil, errors.New("clickhouse down"))
	failures := w.Failures()
	waitFor(t, "a failed load", func() bool { return w.Failures() > failures+1 })
	if w.Current("fraud", "3") != second {
		t.Fatal("a failed load dropped the references")
	}

	store.set(map[Key]*Profile{}, nil)
	waitFor(t, "the empty set", func() bool { return w.Current("fraud", "3") == nil })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := w.Start(ctx); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}
}

func TestWatcherLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t)
	store := &fakeStore{err: errors.New("no table")}
	w, err := NewWatcher(store.load, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if w.interval != DefaultPollInterval {
		t.Fatalf("default interval %v", w.interval)
	}
	if err := w.Start(context.Background()); err == nil {
		t.Fatal("Start with a failing first load succeeded")
	}
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown without a running goroutine: %v", err)
	}

	never, err := NewWatcher(store.load, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := never.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown without Start: %v", err)
	}
	if _, err := NewWatcher(nil, zerolog.Nop()); err == nil {
		t.Error("nil load accepted")
	}
	if _, err := NewWatcher(store.load, zerolog.Nop(), WithPollInterval(-time.Second)); err == nil {
		t.Error("negative interval accepted")
	}
}

// TestWatcherShutdownCancelsLoad: a load blocked on its context ends with
// Shutdown.
func TestWatcherShutdownCancelsLoad(t *testing.T) {
	defer goleak.VerifyNone(t)
	started := make(chan struct{}, 1)
	calls := 0
	load := func(ctx context.Context) (map[Key]*Profile, error) {
		calls++
		if calls == 1 {
			return nil, nil
		}
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	w, err := NewWatcher(load, zerolog.Nop(), WithPollInterval(time.Millisecond), WithLoadTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
