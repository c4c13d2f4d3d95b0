package performance

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// Store is what the performance job reads and writes: the stored
// predictions and labels, and vigil_performance. The ClickHouse sink
// implements it.
type Store interface {
	// LastPerformanceWrite is when performance was last written (zero when never).
	LastPerformanceWrite(ctx context.Context) (time.Time, error)
	// ChangedPerformanceWindows are the windows (of size window, starting at
	// or after notBefore) that got predictions or labels since since.
	ChangedPerformanceWindows(ctx context.Context, window time.Duration, since, notBefore time.Time) ([]ModelWindow, error)
	// WindowPredictions are the predictions of model in [from, to), one per event id.
	WindowPredictions(ctx context.Context, model string, from, to time.Time) ([]Prediction, error)
	// WindowLabels are the labels of those predictions, by event id.
	WindowLabels(ctx context.Context, model string, from, to time.Time) (map[string]StoredLabel, error)
	// WritePerformance stores windows, replacing earlier rows of the same ones.
	WritePerformance(ctx context.Context, windows []Window) error
}

// ModelWindow names one prediction window of a model.
type ModelWindow struct {
	Model string
	Start time.Time
}

// JobConfig configures a Job.
type JobConfig struct {
	Window      time.Duration // the prediction windows' size
	Horizon     time.Duration // a label counts when at most this long after its prediction; older windows are final
	Threshold   float64       // binary: a score at or above it predicts the positive class
	SegmentKeys []string      // segment keys to compute performance per value of
}

// Job keeps vigil_performance current. Each pass asks the store which
// prediction windows got predictions or labels since its previous pass (and
// started within the label horizon), and recomputes each of them whole: the
// window's predictions joined by event id with their newest labels (Join),
// per model version and segment. The join state is the store itself, so the
// job survives restarts and gives the same rows whichever process runs it;
// several processes running it write the same rows (the newest version
// wins). See docs/PERFORMANCE.md, "How the join works".
//
// A Job is run by one goroutine at a time (a lifecycle.Periodic).
type Job struct {
	store Store
	cfg   JobConfig
	log   zerolog.Logger
	since time.Time // start of the previous pass
}

// overlap re-reads changes this long before the previous pass: predictions
// carry the time they were consumed (ingested_at) but reach ClickHouse at
// the next checkpoint.
const overlap = time.Minute

// NewJob returns a performance job over store.
func NewJob(store Store, cfg JobConfig, log zerolog.Logger) *Job {
	return &Job{store: store, cfg: cfg, log: log.With().Str("component", "performance").Logger()}
}

// Step is one pass that returns its failure too (for the job metrics):
// RunOnce now, its failure logged.
func (j *Job) Step(ctx context.Context) error {
	n, err := j.RunOnce(ctx, time.Now())
	if err != nil && ctx.Err() == nil {
		j.log.Warn().Err(err).Msg("compute performance")
	} else if e := j.log.Debug(); e.Enabled() {
		e.Int("windows", n).Msg("performance computed")
	}
	return err
}

// RunOnce recomputes the windows changed since the previous pass and
// returns how many. The first pass of a process resumes from the last write
// to vigil_performance (by any process), or covers the whole horizon when
// there is none.
func (j *Job) RunOnce(ctx context.Context, now time.Time) (int, error) {
	notBefore := now.Add(-j.cfg.Horizon - j.cfg.Window).Truncate(j.cfg.Window)
	if j.since.IsZero() {
		last, err := j.store.LastPerformanceWrite(ctx)
		if err != nil {
			return 0, err
		}
		j.since = last
	}
	since := j.since.Add(-overlap)
	if j.since.IsZero() || since.Before(notBefore) {
		since = notBefore
	}
	changed, err := j.store.ChangedPerformanceWindows(ctx, j.cfg.Window, since, notBefore)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, mw := range changed {
		rows, err := j.Compute(ctx, mw.Model, mw.Start)
		if err != nil {
			return n, err
		}
		if err := j.store.WritePerformance(ctx, rows); err != nil {
			return n, err
		}
		n++
	}
	j.since = now
	return n, nil
}

// Compute joins the predictions of one window with their labels and returns
// a row per model version and segment.
func (j *Job) Compute(ctx context.Context, model string, start time.Time) ([]Window, error) {
	end := start.Add(j.cfg.Window)
	preds, err := j.store.WindowPredictions(ctx, model, start, end)
	if err != nil {
		return nil, err
	}
	labels, err := j.store.WindowLabels(ctx, model, start, end)
	if err != nil {
		return nil, err
	}
	return Join(model, start, end, preds, labels, j.cfg.Horizon, j.cfg.Threshold, j.cfg.SegmentKeys), nil
}
