package main

import (
	"context"
	"sync"
	"time"
)

// periodic runs a job's pass in a goroutine of its own, every interval,
// until stopped: the loop shared by the drift, performance and alert jobs.
type periodic struct {
	// leader, when set, gates every pass: the jobs run in the group's leader
	// only (pipeline.Processor.Leader). Set it before start.
	leader func() bool

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs pass every interval (and once at once when immediately), with
// a context cancelled by stop. A second start, or an interval <= 0, does
// nothing.
func (p *periodic) start(interval time.Duration, immediately bool, pass func(ctx context.Context)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if interval <= 0 || p.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		run := func() {
			if p.leader == nil || p.leader() {
				pass(ctx)
			}
		}
		if immediately {
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
	}()
}

// stop cancels the running pass and waits for the goroutine until ctx ends;
// idempotent and safe without start.
func (p *periodic) stop(ctx context.Context) error {
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
