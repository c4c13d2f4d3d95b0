package drift

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/shard"
	"github.com/vigil-ml/vigil/processors/stats"
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
//
// With a Shard (WithShard) a pass evaluates only the models this member
// owns in the group's generation, and of those only the windows whose
// stored states (or reference, or options) changed since the newest
// computation the shard's ledger recorded for them, by any member: a
// window is evaluated once per distinct input however the models move
// between members.
type Job struct {
	store    Store
	refs     ReferenceSource
	opts     Options
	optsHash uint64
	lookback time.Duration
	shard    *shard.Shard
	log      zerolog.Logger
}

// WithShard makes the job share the models with the other members of the
// group through s (see Job); it returns j.
func (j *Job) WithShard(s *shard.Shard) *Job {
	j.shard = s
	return j
}

// Input is the fingerprint of one window of a model version as the drift
// job reads it: its stored partition states (size, events and offset
// reached, per segment), the reference it is compared with and the
// options hash: what the evaluation depends on.
func Input(states []*stats.WindowState, refID, optsHash uint64) uint64 {
	var in shard.Input
	for _, st := range states {
		in.Add(shard.NewItem().String(st.Segment).Int64(st.WindowEnd).Uint64(st.Events).Int64(st.LastOffset))
	}
	in.Add(shard.NewItem().String("reference").Uint64(refID).Uint64(optsHash))
	return in.Sum()
}

// NewJob returns a drift job over store that evaluates the windows of the
// last lookback against the references of refs with opts.
func NewJob(store Store, refs ReferenceSource, opts Options, lookback time.Duration, log zerolog.Logger) *Job {
	return &Job{store: store, refs: refs, opts: opts, optsHash: shard.NewItem().String(fmt.Sprintf("%#v", opts)).Uint64(0).Sum(),
		lookback: lookback, log: log.With().Str("component", "drift").Logger()}
}

// Step is one pass that returns its failure too (for the job metrics):
// RunOnce, its failure logged.
func (j *Job) Step(ctx context.Context) error {
	n, err := j.RunOnce(ctx)
	if err != nil && ctx.Err() == nil && !errors.Is(err, shard.ErrNotMember) {
		j.log.Warn().Err(err).Msg("evaluate drift")
	} else if e := j.log.Debug(); e.Enabled() {
		e.Int("windows", n).Msg("drift evaluated")
	}
	return err
}

// RunOnce evaluates and stores the recent windows; it returns how many
// buckets (window, version and segment) it stored.
func (j *Job) RunOnce(ctx context.Context) (int, error) {
	refs, err := j.refs.LatestReferences(ctx)
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	from := now.Add(-j.lookback)
	round, err := j.shard.Begin(ctx, from)
	if err != nil {
		return 0, err
	}
	n := 0
	for mv, ref := range refs {
		if !round.Owns(mv[0]) {
			continue
		}
		states, err := j.store.WindowStates(ctx, mv[0], mv[1], from, now)
		if err != nil {
			return n, errors.Join(err, round.Commit(ctx, time.Time{}))
		}
		work := shard.ChangedWindows(round, mv[0], mv[1], states, windowStart, func(sts []*stats.WindowState) uint64 {
			return Input(sts, ref.ID, j.optsHash)
		})
		if len(work.States) == 0 {
			continue
		}
		buckets, err := EvaluateBuckets(MergeBuckets(work.States, BucketQuery{Model: mv[0], Version: mv[1], By: "*"}), refs, j.opts)
		if err == nil {
			err = j.store.WriteDrift(ctx, buckets)
		}
		if err != nil {
			return n, errors.Join(err, round.Commit(ctx, time.Time{}))
		}
		work.Done(round)
		n += len(buckets)
		if err := round.Flush(ctx); err != nil {
			return n, err
		}
	}
	return n, round.Commit(ctx, time.Time{})
}

// windowStart is the window a state belongs to (shard.ChangedWindows).
func windowStart(st *stats.WindowState) int64 { return st.WindowStart }
