// Package lifecycle is the one lifecycle contract of Vigil's long-running
// parts and the group that starts and stops them.
//
// A Component is anything with Start(ctx) and Shutdown(ctx): the ClickHouse
// sink, the stream processor, the label consumer, the periodic jobs.
// Start returns once the component runs (its goroutines are its own);
// Shutdown stops it, drains what it holds, and is idempotent and safe
// without Start.
//
// A Group holds named stages in the order they start: the sink first, the
// consumers next, the jobs that read what they store last. Start starts
// them in that order; when one fails, the stages already started are shut
// down (in reverse) and the error returned. Shutdown stops the started
// stages in reverse order, each with a time budget of its own (a stage that
// overruns its budget does not eat the next one's), and logs each stage's
// timing. A Group is itself a Component.
//
// Periodic is the component of the periodic jobs: a pass every interval in a
// goroutine of its own, optionally gated (the jobs run in the consumer
// group's leader only).
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Component is the lifecycle of every long-running part of Vigil.
type Component interface {
	// Start starts the component and returns once it runs; ctx bounds the
	// start itself, not the component's life.
	Start(ctx context.Context) error
	// Shutdown stops the component within ctx; idempotent and safe without
	// Start.
	Shutdown(ctx context.Context) error
}

// Funcs adapts a pair of functions (either may be nil) to a Component, for
// a step such as creating a topic.
type Funcs struct {
	OnStart    func(ctx context.Context) error
	OnShutdown func(ctx context.Context) error
}

// Start calls OnStart.
func (f Funcs) Start(ctx context.Context) error {
	if f.OnStart == nil {
		return nil
	}
	return f.OnStart(ctx)
}

// Shutdown calls OnShutdown.
func (f Funcs) Shutdown(ctx context.Context) error {
	if f.OnShutdown == nil {
		return nil
	}
	return f.OnShutdown(ctx)
}

// DefaultBudget is a stage's shutdown budget unless Add is told otherwise.
const DefaultBudget = time.Minute

// stage is one named component of a Group.
type stage struct {
	name   string
	c      Component
	budget time.Duration
}

// Group starts components in order and stops them in reverse. Not for
// concurrent use while starting; Shutdown may be called from any goroutine.
type Group struct {
	log    zerolog.Logger
	mu     sync.Mutex
	stages []stage
	// started is how many stages (a prefix of stages) are running.
	started int
}

// NewGroup returns an empty group that logs each stage's timing to log.
func NewGroup(log zerolog.Logger) *Group { return &Group{log: log} }

// Add appends a stage: it starts after the stages added before it and stops
// before them, with budget to shut down (DefaultBudget when <= 0). A nil
// component is skipped, so that optional parts need no check at the caller.
func (g *Group) Add(name string, c Component, budget time.Duration) {
	if c == nil {
		return
	}
	if budget <= 0 {
		budget = DefaultBudget
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stages = append(g.stages, stage{name: name, c: c, budget: budget})
}

// Start starts the stages not started yet, in order. When one fails, it
// shuts down what it started and returns the failure (joined with the
// shutdown's errors).
func (g *Group) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.started < len(g.stages) {
		s := g.stages[g.started]
		began := time.Now()
		if err := s.c.Start(ctx); err != nil {
			err = fmt.Errorf("start %s: %w", s.name, err)
			return errors.Join(err, g.shutdownLocked(context.WithoutCancel(ctx)))
		}
		g.started++
		g.log.Info().Str("stage", s.name).Dur("took", time.Since(began)).Msg("started")
	}
	return nil
}

// Shutdown stops the started stages in reverse order, each within its
// budget (and within ctx), and returns every stage's error. Idempotent.
func (g *Group) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shutdownLocked(ctx)
}

func (g *Group) shutdownLocked(ctx context.Context) error {
	var errs []error
	for ; g.started > 0; g.started-- {
		s := g.stages[g.started-1]
		sctx, cancel := context.WithTimeout(ctx, s.budget)
		began := time.Now()
		err := s.c.Shutdown(sctx)
		cancel()
		took := time.Since(began)
		if err != nil {
			errs = append(errs, fmt.Errorf("shut down %s: %w", s.name, err))
			g.log.Warn().Str("stage", s.name).Dur("took", took).Dur("budget", s.budget).Err(err).Msg("stopped with an error")
			continue
		}
		g.log.Info().Str("stage", s.name).Dur("took", took).Msg("stopped")
	}
	return errors.Join(errs...)
}

var _ Component = (*Group)(nil)
