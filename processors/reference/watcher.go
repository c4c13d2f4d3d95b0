package reference

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// DefaultPollInterval is how often a Watcher reloads the references by default.
const DefaultPollInterval = 30 * time.Second

// Key is a model and a model version.
type Key = [2]string

// LoadFunc returns the reference in force per model and model version, for
// example clickhouse.Sink.LatestReferences.
type LoadFunc func(ctx context.Context) (map[Key]*Profile, error)

// WatcherOption configures a Watcher.
type WatcherOption func(*Watcher)

// WithPollInterval sets how often the watcher reloads. Default DefaultPollInterval (30s).
func WithPollInterval(d time.Duration) WatcherOption {
	return func(w *Watcher) { w.interval = d }
}

// WithLoadTimeout bounds one load. Default: the poll interval.
func WithLoadTimeout(d time.Duration) WatcherOption {
	return func(w *Watcher) { w.timeout = d }
}

// Watcher keeps the references in force in memory and reloads them every
// poll interval, so that a new reference takes effect without a restart.
// Each successful load replaces the whole set at once (an atomic pointer
// swap); a failed load keeps the previous set, is logged and counted.
// Current is safe for concurrent use and never blocks.
type Watcher struct {
	load     LoadFunc
	log      zerolog.Logger
	interval time.Duration
	timeout  time.Duration

	current  atomic.Pointer[map[Key]*Profile]
	loads    atomic.Uint64
	failures atomic.Uint64

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc // stops run
	done    chan struct{}      // closed when run returns
}

var _ interface {
	Start(context.Context) error
	Shutdown(context.Context) error
} = (*Watcher)(nil)

// NewWatcher returns a watcher of the references load returns.
func NewWatcher(load LoadFunc, log zerolog.Logger, opts ...WatcherOption) (*Watcher, error) {
	w := &Watcher{load: load, log: log.With().Str("component", "references").Logger(), interval: DefaultPollInterval}
	for _, o := range opts {
		o(w)
	}
	if load == nil {
		return nil, errors.New("reference watcher: nil load function")
	}
	if w.interval <= 0 {
		return nil, fmt.Errorf("reference watcher: poll interval %v is not positive", w.interval)
	}
	if w.timeout <= 0 {
		w.timeout = w.interval
	}
	return w, nil
}

// Start loads the references once, returning the load's error (and
// starting nothing) when it fails, then polls in a goroutine until Shutdown.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.stopped:
		return errors.New("reference watcher: already shut down")
	case w.started:
		return nil
	}
	if err := w.Reload(ctx); err != nil {
		return err
	}
	w.started = true
	var runCtx context.Context
	runCtx, w.cancel = context.WithCancel(context.Background())
	w.done = make(chan struct{})
	go w.run(runCtx)
	return nil
}

// run reloads every interval until ctx is cancelled, which also cancels
// a load in progress.
func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			lctx, cancel := context.WithTimeout(ctx, w.timeout)
			_ = w.Reload(lctx) // logged and counted
			cancel()
		}
	}
}

// Reload loads the references now and swaps them in when the load succeeds.
func (w *Watcher) Reload(ctx context.Context) error {
	began := time.Now()
	refs, err := w.load(ctx)
	if err != nil {
		w.failures.Add(1)
		w.log.Warn().Err(err).Dur("took", time.Since(began)).Msg("load references; keeping the previous ones")
		return fmt.Errorf("load references: %w", err)
	}
	if refs == nil {
		refs = map[Key]*Profile{}
	}
	old := w.current.Swap(&refs)
	w.loads.Add(1)
	if e := w.log.Debug(); e.Enabled() {
		e.Int("references", len(refs)).Dur("took", time.Since(began)).Msg("references loaded")
	}
	if old != nil {
		for k, p := range refs {
			if q := (*old)[k]; q == nil || q.ID != p.ID {
				w.log.Info().Str("model", k[0]).Str("model_version", k[1]).Uint64("reference_id", p.ID).
					Str("source", p.Source).Msg("new reference in force")
			}
		}
	}
	return nil
}

// Current returns the reference in force for the model version, or nil.
// The profile is shared: do not modify it.
func (w *Watcher) Current(model, version string) *Profile {
	m := w.current.Load()
	if m == nil {
		return nil
	}
	return (*m)[Key{model, version}]
}

// Loads returns the number of successful loads.
func (w *Watcher) Loads() uint64 { return w.loads.Load() }

// Failures returns the number of failed loads.
func (w *Watcher) Failures() uint64 { return w.failures.Load() }

// Shutdown stops polling and waits for the goroutine, at most until ctx is
// done. It is idempotent and safe without Start. Current keeps answering
// with the last references.
func (w *Watcher) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return nil
	}
	w.stopped = true
	started := w.started
	if started {
		w.cancel()
	}
	w.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("reference watcher shutdown: %w", ctx.Err())
	}
}
