package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// recorder is a component that appends "start name" and "stop name" to a
// shared log; it fails to start when failStart, and its Shutdown blocks
// until its context ends when hang (then reports ctx.Err()).
type recorder struct {
	name      string
	log       *[]string
	failStart bool
	hang      bool
	// remaining is the budget the stage's Shutdown context had left.
	remaining time.Duration
}

var errBoom = errors.New("boom")

func (r *recorder) Start(context.Context) error {
	if r.failStart {
		*r.log = append(*r.log, "fail "+r.name)
		return errBoom
	}
	*r.log = append(*r.log, "start "+r.name)
	return nil
}

func (r *recorder) Shutdown(ctx context.Context) error {
	if d, ok := ctx.Deadline(); ok {
		r.remaining = time.Until(d)
	}
	*r.log = append(*r.log, "stop "+r.name)
	if r.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func TestGroup(t *testing.T) {
	tests := []struct {
		name      string
		fail      string // the stage that fails to start
		hang      string // the stage whose shutdown overruns its budget
		wantStart error
		wantStop  error
		want      string
	}{
		{name: "in order, then reverse", want: "start a, start b, start c | stop c, stop b, stop a"},
		{name: "a failed start stops what started", fail: "c", wantStart: errBoom,
			want: "start a, start b, fail c, stop b, stop a |"},
		{name: "the first fails: nothing to stop", fail: "a", wantStart: errBoom, want: "fail a |"},
		{name: "an overrun costs its own budget only", hang: "b", wantStop: context.DeadlineExceeded,
			want: "start a, start b, start c | stop c, stop b, stop a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events []string
			var logs bytes.Buffer
			g := NewGroup(zerolog.New(&logs))
			stages := map[string]*recorder{}
			for _, n := range []string{"a", "b", "c"} {
				r := &recorder{name: n, log: &events, failStart: n == tt.fail, hang: n == tt.hang}
				stages[n] = r
				g.Add(n, r, 50*time.Millisecond)
			}
			g.Add("absent", nil, 0) // skipped
			err := g.Start(context.Background())
			if !errors.Is(err, tt.wantStart) || (tt.wantStart == nil) != (err == nil) {
				t.Fatalf("start: %v, want %v", err, tt.wantStart)
			}
			events = append(events, "|")
			began := time.Now()
			err = g.Shutdown(context.Background())
			if !errors.Is(err, tt.wantStop) || (tt.wantStop == nil) != (err == nil) {
				t.Fatalf("shutdown: %v, want %v", err, tt.wantStop)
			}
			if took := time.Since(began); tt.hang != "" && (took < 50*time.Millisecond || took > time.Second) {
				t.Errorf("shutdown took %v, want about the overrunning stage's 50ms budget", took)
			}
			if got := strings.NewReplacer(", |, ", " | ", ", |", " |").Replace(strings.Join(events, ", ")); got != tt.want {
				t.Errorf("events %q\nwant   %q", got, tt.want)
			}
			if tt.hang != "" {
				// The stage after the overrun had a fresh budget.
				if a := stages["a"]; a.remaining < 40*time.Millisecond {
					t.Errorf("stage a had %v of its 50ms budget left after b overran", a.remaining)
				}
				if !strings.Contains(logs.String(), `"stage":"b"`) || !strings.Contains(logs.String(), "stopped with an error") {
					t.Errorf("the overrun is not logged: %s", logs.String())
				}
			}
			if tt.fail == "" && strings.Count(logs.String(), `"took"`) != 6 {
				t.Errorf("want 6 timed log lines (3 starts, 3 stops):\n%s", logs.String())
			}
			// A second shutdown stops nothing.
			n := len(events)
			if err := g.Shutdown(context.Background()); err != nil || len(events) != n {
				t.Errorf("second shutdown: %v, events %v", err, events[n:])
			}
		})
	}
}

func TestGroupShutdownWithoutStart(t *testing.T) {
	var events []string
	g := NewGroup(zerolog.Nop())
	g.Add("a", &recorder{name: "a", log: &events}, 0)
	if err := g.Shutdown(context.Background()); err != nil || len(events) != 0 {
		t.Errorf("shutdown without start: %v, events %v", err, events)
	}
}

func TestPeriodicRunsOnlyWhileGated(t *testing.T) {
	var leading atomic.Bool
	var passes atomic.Int32
	p := NewPeriodic(5*time.Millisecond, func(context.Context) { passes.Add(1) }, WithGate(leading.Load), Immediately())
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := passes.Load(); n != 0 {
		t.Fatalf("%d passes while not leading", n)
	}
	leading.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for passes.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := passes.Load()
	if n < 3 {
		t.Fatalf("%d passes while leading, want >= 3", n)
	}
	time.Sleep(20 * time.Millisecond)
	if passes.Load() != n {
		t.Error("passes after stop")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("second stop: %v", err)
	}
	never := NewPeriodic(time.Second, func(context.Context) {})
	if err := never.Shutdown(context.Background()); err != nil {
		t.Errorf("stop without start: %v", err)
	}
}

// Immediately runs the first pass at Start; without it the first pass
// waits an interval. An interval of 0 is off.
func TestPeriodicImmediately(t *testing.T) {
	for _, tt := range []struct {
		name     string
		interval time.Duration
		opts     []PeriodicOption
		want     int32
	}{
		{"immediately", time.Hour, []PeriodicOption{Immediately()}, 1},
		{"after an interval", time.Hour, nil, 0},
		{"off", 0, []PeriodicOption{Immediately()}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var passes int32
			ran := make(chan struct{}, 1)
			p := NewPeriodic(tt.interval, func(context.Context) {
				mu.Lock()
				passes++
				mu.Unlock()
				ran <- struct{}{}
			}, tt.opts...)
			if err := p.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tt.want > 0 {
				<-ran
			} else {
				time.Sleep(30 * time.Millisecond)
			}
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if passes != tt.want {
				t.Errorf("%d passes, want %d", passes, tt.want)
			}
		})
	}
}
