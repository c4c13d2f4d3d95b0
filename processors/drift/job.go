package drift

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/reference"
)

// Store is where the drift job reads the window states and writes its
// results (vigil_drift); the ClickHouse sink's window store implements it.
type Store interface {
	WindowStore
	// WriteDrift stores buckets, replacing earlier results of the same windows.
	WriteDrift(ctx context.Context, buckets []Bucket) error
}

// ReferenceSource is where the drift job finds the reference profiles the
// windows are compared with; the ClickHouse sink's reference store
// implements it.
type ReferenceSource interface {
	// LatestReferences returns the newest reference of each model version,
	// by model and version.
	LatestReferences(ctx context.Context) (map[[2]string]*reference.Profile, error)
}

// Job keeps vigil_drift current: each pass evaluates the stored windows that
// started within lookback, for every model version that has a reference,
// merged over partitions, and stores the results (replacing the previous
// evaluation of the same windows). It reads from the store, not from the
// processor's memory, so it is exact however a model's events are spread
// over partitions and processes; several processes running it write the
// same rows.
type Job struct {
	store    Store
	refs     ReferenceSource
	opts     Options
	lookback time.Duration
	log      zerolog.Logger
}

// NewJob returns a drift job over store that evaluates the windows of the
// last lookback against the references of refs with opts.
func NewJob(store Store, refs ReferenceSource, opts Options, lookback time.Duration, log zerolog.Logger) *Job {
	return &Job{store: store, refs: refs, opts: opts, lookback: lookback, log: log.With().Str("component", "drift").Logger()}
}

// Step is one pass that returns its failure too (for the job metrics):
// RunOnce, its failure logged.
func (j *Job) Step(ctx context.Context) error {
	n, err := j.RunOnce(ctx)
	if err != nil && ctx.Err() == nil {
		j.log.Warn().Err(err).Msg("evaluate drift")
	} else if e := j.log.Debug(); e.Enabled() {
		e.Int("windows", n).Msg("drift evaluated")
	}
	return err
}

// RunOnce evaluates and stores the recent windows; it returns how many.
func (j *Job) RunOnce(ctx context.Context) (int, error) {
	refs, err := j.refs.LatestReferences(ctx)
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	n := 0
	for mv := range refs {
		buckets, err := Buckets(ctx, j.store, refs, j.opts, BucketQuery{Model: mv[0], Version: mv[1], By: "*", From: now.Add(-j.lookback), To: now})
		if err != nil {
			return n, err
		}
		if err := j.store.WriteDrift(ctx, buckets); err != nil {
			return n, err
		}
		n += len(buckets)
	}
	return n, nil
}
