package performance

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/shard"
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
// With a Shard (WithShard) a pass recomputes only the windows of the
// models this member owns in the group's generation whose predictions or
// labels changed since the newest computation the shard's ledger recorded
// for them (by any member); after the ownership moved (a new generation)
// it resumes from the newest recorded pass over each partition it now
// owns, not from its own previous pass.
//
// A Job is run by one goroutine at a time (a lifecycle.Periodic).
type Job struct {
	store Store
	cfg   JobConfig
	log   zerolog.Logger
	shard *shard.Shard
	since time.Time // start of the previous pass
	gen   int32     // the generation of the previous pass (with a shard)
}

// WithShard makes the job share the models with the other members of the
// group through s; it returns j.
func (j *Job) WithShard(s *shard.Shard) *Job {
	j.shard = s
	return j
}

// Input is the fingerprint of one window as the job reads it: its
// predictions and their labels in force.
func Input(preds []Prediction, labels map[string]StoredLabel) uint64 {
	var in shard.Input
	for i := range preds {
		p := &preds[i]
		it := shard.NewItem().String(p.EventID).String(p.ModelVersion).Int64(p.Time.UnixNano())
		if p.Score != nil {
			it = it.Float64(*p.Score)
		}
		if p.Label != nil {
			it = it.String(*p.Label)
		}
		if p.Value != nil {
			it = it.Float64(*p.Value)
		}
		for k, c := range p.ProbaClasses {
			it = it.String(c).Float64(p.ProbaValues[k])
		}
		for k, key := range p.SegmentKeys {
			it = it.String(key).String(p.SegmentValues[k])
		}
		in.Add(it)
	}
	for id, l := range labels {
		in.Add(shard.NewItem().String("label").String(id).Int64(l.Time.UnixNano()).Bool(l.HasClass).String(l.Class).Bool(l.HasValue).Float64(l.Value))
	}
	return in.Sum()
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
	if err != nil && ctx.Err() == nil && !errors.Is(err, shard.ErrNotMember) {
		j.log.Warn().Err(err).Msg("compute performance")
	} else if e := j.log.Debug(); e.Enabled() {
		e.Int("windows", n).Msg("performance computed")
	}
	return err
}

// RunOnce recomputes the windows changed since the previous pass and
// returns how many. The first pass of a process resumes from the last write
// to vigil_performance (by any process), or covers the whole horizon when
// there is none; with a shard, the first pass of each generation resumes
// from the ledger's passes over the partitions this member owns.
func (j *Job) RunOnce(ctx context.Context, now time.Time) (int, error) {
	notBefore := now.Add(-j.cfg.Horizon - j.cfg.Window).Truncate(j.cfg.Window)
	round, err := j.shard.Begin(ctx, notBefore)
	if err != nil {
		return 0, err
	}
	if round.Idle() {
		return 0, nil
	}
	switch {
	case j.shard != nil && (j.since.IsZero() || round.Generation() != j.gen):
		last, err := round.Resume(ctx)
		if err != nil {
			return 0, err
		}
		j.since, j.gen = last, round.Generation()
	case j.since.IsZero():
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
	for i, mw := range changed {
		if !round.Owns(mw.Model) {
			continue
		}
		preds, labels, err := j.read(ctx, mw.Model, mw.Start)
		if err != nil {
			return n, errors.Join(err, round.Commit(ctx, time.Time{}))
		}
		in := Input(preds, labels)
		if !round.Changed(mw.Model, "", mw.Start, in) {
			continue
		}
		rows := Join(mw.Model, mw.Start, mw.Start.Add(j.cfg.Window), preds, labels, j.cfg.Horizon, j.cfg.Threshold, j.cfg.SegmentKeys)
		if err := j.store.WritePerformance(ctx, rows); err != nil {
			return n, errors.Join(err, round.Commit(ctx, time.Time{}))
		}
		round.Done(mw.Model, "", mw.Start, in)
		n++
		if i+1 == len(changed) || changed[i+1].Model != mw.Model {
			// The model's windows are stored: record them now (the store
			// returns a model's windows together).
			if err := round.Flush(ctx); err != nil {
				return n, err
			}
		}
	}
	if err := round.Commit(ctx, now); err != nil {
		return n, err
	}
	j.since = now
	return n, nil
}

// read returns the predictions of one window and their labels.
func (j *Job) read(ctx context.Context, model string, start time.Time) ([]Prediction, map[string]StoredLabel, error) {
	end := start.Add(j.cfg.Window)
	preds, err := j.store.WindowPredictions(ctx, model, start, end)
	if err != nil {
		return nil, nil, err
	}
	labels, err := j.store.WindowLabels(ctx, model, start, end)
	if err != nil {
		return nil, nil, err
	}
	return preds, labels, nil
}

// Compute joins the predictions of one window with their labels and returns
// a row per model version and segment.
func (j *Job) Compute(ctx context.Context, model string, start time.Time) ([]Window, error) {
	preds, labels, err := j.read(ctx, model, start)
	if err != nil {
		return nil, err
	}
	return Join(model, start, start.Add(j.cfg.Window), preds, labels, j.cfg.Horizon, j.cfg.Threshold, j.cfg.SegmentKeys), nil
}
