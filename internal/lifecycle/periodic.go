package lifecycle

import (
	"context"
	"sync"
	"time"
)

// Periodic is a Component that runs a pass every interval in a goroutine of
// its own, from Start until Shutdown: the loop of the drift, performance and
// alert jobs. A pass gets a context cancelled by Shutdown.
type Periodic struct {
	interval    time.Duration
	pass        func(ctx context.Context)
	gate        func() bool
	immediately bool

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// PeriodicOption configures a Periodic.
type PeriodicOption func(*Periodic)

// WithGate runs a pass only while gate reports true, for example
// pipeline.Processor.Leader: the jobs run in the group's leader only.
// Default: every pass runs.
func WithGate(gate func() bool) PeriodicOption { return func(p *Periodic) { p.gate = gate } }

// Immediately runs a first pass at Start. Default: the first pass is one
// interval after Start.
func Immediately() PeriodicOption { return func(p *Periodic) { p.immediately = true } }

// NewPeriodic returns a component that runs pass every interval; an
// interval <= 0 turns it off (Start does nothing).
func NewPeriodic(interval time.Duration, pass func(ctx context.Context), opts ...PeriodicOption) *Periodic {
	p := &Periodic{interval: interval, pass: pass}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Start starts the loop; a second Start does nothing.
func (p *Periodic) Start(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.interval <= 0 || p.done != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go p.loop(ctx, p.done)
	return nil
}

func (p *Periodic) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	run := func() {
		if p.gate == nil || p.gate() {
			p.pass(ctx)
		}
	}
	if p.immediately {
		run()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			run()
		}
	}
}

// Shutdown cancels the running pass and waits for the loop until ctx ends;
// idempotent and safe without Start.
func (p *Periodic) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return nil
	}
	p.cancel()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var _ Component = (*Periodic)(nil)
