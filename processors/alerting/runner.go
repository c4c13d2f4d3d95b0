package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/reference"
)

// Store is what a Runner reads and writes besides the outbox: the metrics of
// the stored windows, the models' newest windows and the alert states. The
// ClickHouse sink's alert store implements it.
type Store interface {
	// RecentMetrics returns the metrics (Reference NaN) of the stored
	// windows of size window that ended in (from, to], from the sources
	// asked for (Source*), of model version version ("" every version).
	RecentMetrics(ctx context.Context, window time.Duration, from, to time.Time, sources map[string]bool, version string) ([]Observation, error)
	// LastSeen returns per model the end of its newest window with events.
	LastSeen(ctx context.Context) (map[string]time.Time, error)
	// LoadAlertStates returns the stored series states.
	LoadAlertStates(ctx context.Context) ([]SeriesState, error)
	// SaveAlertStates stores changed series states.
	SaveAlertStates(ctx context.Context, states []SeriesState) error
}

// ReferenceSource is where a Runner finds the reference profiles that
// change-against-reference rules compare with (the ClickHouse sink's
// reference store).
type ReferenceSource interface {
	// LatestReferences returns the newest reference of each model version.
	LatestReferences(ctx context.Context) (map[[2]string]*reference.Profile, error)
}

// Outbox tells which notifications a receiver already has: the record of
// what the Dispatcher was given (sinks/clickhouse's Outbox).
type Outbox interface {
	// Known returns which of ids the outbox holds for receiver.
	Known(ctx context.Context, receiver string, ids []string) (map[string]bool, error)
}

// Dispatcher delivers notifications to receivers, through the Outbox
// (sinks/webhook.Dispatcher).
type Dispatcher interface {
	// Start starts delivering, and re-sends what the outbox holds undelivered.
	Start(ctx context.Context) error
	// EnqueueID queues alerts for receiver under the delivery id; an id the
	// outbox holds already is not sent again.
	EnqueueID(ctx context.Context, id, receiver string, alerts []Alert) error
	// Shutdown drains the queue within ctx; what it could not deliver stays
	// in the outbox for the next Start. Safe without Start.
	Shutdown(ctx context.Context) error
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	Window time.Duration // size of the stored windows
	// Grace: a window's metrics are complete this long after its end (its
	// lateness, the checkpoint and the jobs that compute its metrics).
	Grace time.Duration
	// Interval is how often Pass runs (for the log only).
	Interval time.Duration
	// Leader, when set, makes the Runner work only while it reports true
	// (pipeline.Processor.Leader: the group's leader evaluates): Start does
	// nothing, and the first Pass after the process becomes the leader
	// reloads the states (another process may have changed them) and starts
	// the dispatcher. Default: always.
	Leader func() bool
	// Fence, with Leader, makes sure that only one member sends and saves
	// states even while two believe they lead: every pass acquires it
	// (waiting out another holder's sends after a takeover), and every
	// enqueue and save checks it; give the same Fence to the dispatcher.
	// Default: none (Leader alone).
	Fence *Fence
}

// Runner evaluates the alert rules over the stored metrics. Each pass
// (RunOnce) reads the metrics of the windows that closed recently from the
// Store, feeds them to the Evaluator, hands the notifications to the
// Dispatcher (whose outbox is the Outbox), then stores the changed alert
// states: outbox first, then states. Notification ids are derived from the
// transition, so a crash between the two writes re-sends nothing: the
// evaluator, restored from the stored states, produces the same
// notification again and the outbox already holds it.
//
// A Runner's passes run in one goroutine at a time (a lifecycle.Periodic
// calling Pass); Start and Shutdown are its lifecycle.
type Runner struct {
	rules    *Config
	store    Store
	profiles ReferenceSource
	outbox   Outbox
	disp     Dispatcher
	cfg      RunnerConfig
	lookback time.Duration
	sources  map[string]bool
	noData   bool
	refs     bool // a rule compares with the reference: read the profiles
	log      zerolog.Logger

	eval *Evaluator
	// leading: the evaluator was built from the stored states since this
	// process last became the leader (only the pass goroutine uses it).
	leading     bool
	dispStarted bool
}

// NewRunner returns a runner of the validated rules.
func NewRunner(rules *Config, store Store, profiles ReferenceSource, outbox Outbox, disp Dispatcher, cfg RunnerConfig, log zerolog.Logger) *Runner {
	j := &Runner{rules: rules, store: store, profiles: profiles, outbox: outbox, disp: disp, cfg: cfg, sources: map[string]bool{},
		log: log.With().Str("component", "alerts").Logger()}
	catalog := DefaultCatalog()
	var maxDelay time.Duration
	for _, r := range rules.Rules {
		j.sources[catalog[r.Metric].Source] = true
		if r.NoData > 0 {
			j.noData = true
		}
		if r.Condition != nil && r.Condition.Change != nil && r.Condition.Change.Against == AgainstReference {
			j.refs = true
		}
		maxDelay = max(maxDelay, time.Duration(r.Delay))
	}
	j.lookback = cfg.Grace + maxDelay + 10*cfg.Window
	return j
}

// Start restores the alert states and starts the dispatcher (which re-sends
// what the outbox holds), unless the runner follows a Leader: then the first
// Pass as the leader does.
func (j *Runner) Start(ctx context.Context) error {
	if j.cfg.Leader == nil {
		if err := j.Prepare(ctx); err != nil {
			return err
		}
		j.leading = true
	}
	j.log.Info().Int("rules", len(j.rules.Rules)).Dur("interval", j.cfg.Interval).Dur("grace", j.cfg.Grace).Msg("alert evaluator started")
	return nil
}

// ErrNotLeading is Step's answer when this process does not lead the
// group (or another one holds the alert lease): nothing was evaluated.
var ErrNotLeading = errors.New("not leading: alert rules not evaluated here")

// Pass is one periodic pass: Step, its failure logged and dropped.
func (j *Runner) Pass(ctx context.Context) { _ = j.Step(ctx) }

// Step is one pass that returns its outcome too (for the job metrics): it
// follows the leadership (ErrNotLeading when it does not lead), then runs
// RunOnce now and logs what it queued or why it failed.
func (j *Runner) Step(ctx context.Context) error {
	if lead := j.cfg.Leader; lead != nil {
		if !lead() {
			j.leading = false
			return ErrNotLeading
		}
		if f := j.cfg.Fence; f != nil {
			if err := f.Acquire(ctx); err != nil {
				if j.leading || !errors.Is(err, ErrFenced) {
					j.log.Warn().Err(err).Msg("alert lease: not evaluating")
				}
				j.leading = false
				if errors.Is(err, ErrFenced) {
					return fmt.Errorf("%w: %w", ErrNotLeading, err)
				}
				return err
			}
		}
		if !j.leading {
			if err := j.Prepare(ctx); err != nil {
				j.log.Warn().Err(err).Msg("take over alert evaluation")
				return err
			}
			j.leading = true
			j.log.Info().Msg("this process leads the group: evaluating alert rules")
		}
	}
	n, err := j.RunOnce(ctx, time.Now())
	switch {
	case errors.Is(err, ErrFenced):
		j.leading = false // the next pass as the leader reloads the states
		j.log.Warn().Err(err).Msg("alert evaluation stopped: another process took over")
		return fmt.Errorf("%w: %w", ErrNotLeading, err)
	case err != nil && ctx.Err() == nil:
		j.log.Warn().Err(err).Msg("evaluate alert rules")
	case err == nil && n > 0:
		j.log.Info().Int("notifications", n).Msg("alert notifications queued")
	}
	return err
}

// Prepare restores the evaluator's states and starts the dispatcher, which
// re-sends what the outbox holds.
func (j *Runner) Prepare(ctx context.Context) error {
	if err := j.prepareEvaluator(ctx); err != nil {
		return err
	}
	if j.dispStarted {
		return nil
	}
	if err := j.disp.Start(ctx); err != nil {
		return err
	}
	j.dispStarted = true
	return nil
}

// prepareEvaluator builds the evaluator from the stored alert states.
func (j *Runner) prepareEvaluator(ctx context.Context) error {
	states, err := j.store.LoadAlertStates(ctx)
	if err != nil {
		return err
	}
	j.eval = NewEvaluator(j.rules, states, nil)
	return nil
}

// Grace is how long after its end a window is evaluated (RunnerConfig.Grace).
func (j *Runner) Grace() time.Duration { return j.cfg.Grace }

// Shutdown drains the dispatcher; what it could not deliver stays in the
// outbox. Stop the passes first. Idempotent, safe without Start.
func (j *Runner) Shutdown(ctx context.Context) error { return j.disp.Shutdown(ctx) }

// RunOnce evaluates the windows that closed within the lookback; it returns
// how many notifications it queued. Prepare (or Start) first.
func (j *Runner) RunOnce(ctx context.Context, now time.Time) (int, error) {
	metrics, err := j.store.RecentMetrics(ctx, j.cfg.Window, now.Add(-j.lookback), now.Add(-j.cfg.Grace), j.sources, "") // every version
	if err != nil {
		return 0, err
	}
	var refs map[string]*reference.Profile
	if j.refs {
		if refs, err = j.references(ctx); err != nil {
			return 0, err
		}
	}
	obs := make([]Observation, 0, len(metrics))
	for _, o := range metrics {
		if !j.eval.Wants(o) {
			continue
		}
		o.Reference = referenceValue(refs[o.Model], o.Metric, o.Feature)
		obs = append(obs, o)
	}
	notes := j.eval.Observe(obs, now)
	if j.noData {
		seen, err := j.store.LastSeen(ctx)
		if err != nil {
			return 0, err
		}
		notes = append(notes, j.eval.NoData(seen, now)...)
	}
	n, sendErr := j.Send(ctx, notes)
	if sendErr != nil {
		// Not saved: go back to the stored states, so that the next pass
		// makes the same notifications again rather than losing them.
		if err := j.prepareEvaluator(ctx); err != nil {
			return n, errors.Join(sendErr, err)
		}
		return n, sendErr
	}
	// States after notifications: a crash in between re-creates the same
	// notifications, which the outbox skips.
	if err := j.hold(ctx); err != nil {
		return n, err
	}
	return n, j.store.SaveAlertStates(ctx, j.eval.Changed())
}

// Send groups the notifications of one evaluation by receiver (alerts fired
// together go out together) under a delivery id derived from their ids,
// and returns how many alerts it queued. A notification the outbox already
// holds for a receiver (the same transition evaluated again after a crash,
// maybe grouped otherwise) is left out.
func (j *Runner) Send(ctx context.Context, notes []Notification) (int, error) {
	byReceiver := map[string][]Notification{}
	for _, n := range notes {
		for _, r := range n.Receivers {
			byReceiver[r] = append(byReceiver[r], n)
		}
	}
	var errs []error
	sent := 0
	for _, r := range slices.Sorted(maps.Keys(byReceiver)) {
		group := byReceiver[r]
		ids := make([]string, len(group))
		for i, n := range group {
			ids[i] = n.ID
		}
		if err := j.hold(ctx); err != nil { // the look-up then the insert: fenced
			errs = append(errs, err)
			break
		}
		known, err := j.outbox.Known(ctx, r, ids)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		group = slices.DeleteFunc(group, func(n Notification) bool { return known[n.ID] })
		if len(group) == 0 {
			continue
		}
		slices.SortFunc(group, func(a, b Notification) int { return strings.Compare(a.ID, b.ID) })
		h := sha256.New()
		alerts := make([]Alert, len(group))
		for i, n := range group {
			h.Write([]byte(n.ID))
			alerts[i] = n.Alert
		}
		id := hex.EncodeToString(h.Sum([]byte(r))[len(r):][:16])
		if err := j.disp.EnqueueID(ctx, id, r, alerts); err != nil {
			errs = append(errs, err)
			continue
		}
		sent += len(alerts)
	}
	return sent, errors.Join(errs...)
}

// hold checks the Fence, if any.
func (j *Runner) hold(ctx context.Context) error {
	if j.cfg.Fence == nil {
		return nil
	}
	return j.cfg.Fence.Hold(ctx)
}

// references returns the newest reference profile of each model (any
// version), the base of change-against-reference rules.
func (j *Runner) references(ctx context.Context) (map[string]*reference.Profile, error) {
	all, err := j.profiles.LatestReferences(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]*reference.Profile{}
	for mv, p := range all {
		if cur := out[mv[0]]; cur == nil || p.ID > cur.ID {
			out[mv[0]] = p
		}
	}
	return out, nil
}

// referenceValue is the reference's value of a feature metric: the mean or
// the null rate; NaN for other metrics or without a reference.
func referenceValue(p *reference.Profile, metric, feature string) float64 {
	if p == nil || feature == "" {
		return math.NaN()
	}
	f := p.Feature(feature)
	if f == nil {
		return math.NaN()
	}
	switch metric {
	case "mean":
		return f.Mean
	case "null_rate":
		if total := f.Count + f.Missing + f.NaN + f.Inf; total > 0 {
			return float64(f.Missing) / float64(total)
		}
	}
	return math.NaN()
}

// LoadRules reads an alert rules file and validates it against the default
// catalog, every problem at once.
func LoadRules(path string) (*Config, error) {
	rules, err := LoadFile(path)
	if err != nil {
		return nil, err
	}
	if err := rules.Validate(DefaultCatalog()); err != nil {
		return nil, fmt.Errorf("alert rules %s:\n%w", path, err)
	}
	return rules, nil
}
