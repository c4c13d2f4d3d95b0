package multivariate

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/shard"
	"github.com/vigil-ml/vigil/processors/stats"
)

// WindowStore reads the stored window states (drift.WindowStore; the
// ClickHouse sink's window store).
type WindowStore interface {
	// WindowStates returns the states of model (version "": every
	// version) whose windows start in [from, to), one per partition.
	WindowStates(ctx context.Context, model, version string, from, to time.Time) ([]*stats.WindowState, error)
}

// Store is where the Job reads window states and writes its results
// (vigil_multivariate_drift); the ClickHouse sink's window store
// implements it.
type Store interface {
	WindowStore
	// WriteMultivariate stores results, replacing earlier results of the
	// same windows.
	WriteMultivariate(ctx context.Context, results []Result) error
}

// Windows merges the stored states of one model version whose windows
// start in [from, to) over partitions, per window and segment, and
// evaluates each against the reference's model: oldest window first, then
// by segment. A reference without a model gives nothing.
func Windows(ctx context.Context, store WindowStore, ref *reference.Profile, from, to time.Time) ([]Result, error) {
	m, err := ModelOf(ref)
	if err != nil || m == nil {
		return nil, err
	}
	states, err := store.WindowStates(ctx, ref.Model, ref.ModelVersion, from, to)
	if err != nil {
		return nil, err
	}
	merged := MergeWindows(states)
	out := make([]Result, 0, len(merged))
	for _, st := range merged {
		out = append(out, Evaluate(m, ref.ID, st))
	}
	return out, nil
}

// MergeWindows merges states of the same model version, window and
// segment (the partitions' states), sorted by window start, version and
// segment. The states are merged into copies.
func MergeWindows(states []*stats.WindowState) []*stats.WindowState {
	merged := map[stats.Key]*stats.WindowState{}
	for _, st := range states {
		m := merged[st.Key]
		if m == nil {
			m = stats.NewWindowState(st.Key, st.WindowEnd)
			merged[st.Key] = m
		}
		if m.WindowEnd != st.WindowEnd {
			continue // a window of another size under the same start: not mergeable
		}
		m.Merge(st)
	}
	out := make([]*stats.WindowState, 0, len(merged))
	for _, m := range merged {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Key, out[j].Key
		if a.WindowStart != b.WindowStart {
			return a.WindowStart < b.WindowStart
		}
		if a.ModelVersion != b.ModelVersion {
			return a.ModelVersion < b.ModelVersion
		}
		return a.Segment < b.Segment
	})
	return out
}

// Job keeps vigil_multivariate_drift current: each pass evaluates the
// stored windows that started within lookback, for every model version
// whose reference in force has a multivariate model, and stores one
// Result per window and segment (replacing the previous evaluation).
//
// With a Shard (WithShard) a pass evaluates only the models this member
// owns in the group's generation, and only the windows whose stored states
// or reference changed since the newest computation the shard's ledger
// recorded for them (as processors/drift's Job).
type Job struct {
	store    Store
	refs     ReferenceSource
	lookback time.Duration
	shard    *shard.Shard
	log      zerolog.Logger
}

// WithShard makes the job share the models with the other members of the
// group through s; it returns j.
func (j *Job) WithShard(s *shard.Shard) *Job {
	j.shard = s
	return j
}

// Input is the fingerprint of one window of a model version as the job
// reads it: its stored partition states and the reference.
func Input(states []*stats.WindowState, refID uint64) uint64 {
	var in shard.Input
	for _, st := range states {
		in.Add(shard.NewItem().String(st.Segment).Int64(st.WindowEnd).Uint64(st.Events).Int64(st.LastOffset))
	}
	in.Add(shard.NewItem().String("reference").Uint64(refID))
	return in.Sum()
}

// NewJob returns a job over store evaluating the windows of the last
// lookback against the references of refs.
func NewJob(store Store, refs ReferenceSource, lookback time.Duration, log zerolog.Logger) *Job {
	return &Job{store: store, refs: refs, lookback: lookback, log: log.With().Str("component", "multivariate").Logger()}
}

// Step is one pass that returns its failure too (for the job metrics):
// RunOnce, its failure logged.
func (j *Job) Step(ctx context.Context) error {
	n, err := j.RunOnce(ctx)
	if err != nil && ctx.Err() == nil && !errors.Is(err, shard.ErrNotMember) {
		j.log.Warn().Err(err).Msg("evaluate multivariate drift")
	} else if e := j.log.Debug(); e.Enabled() {
		e.Int("windows", n).Msg("multivariate drift evaluated")
	}
	return err
}

// RunOnce evaluates and stores the recent windows; it returns how many
// results it stored.
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
	for _, ref := range refs {
		if !round.Owns(ref.Model) {
			continue
		}
		m, err := ModelOf(ref)
		if err != nil {
			return n, errors.Join(err, round.Commit(ctx, time.Time{}))
		}
		if m == nil {
			continue
		}
		states, err := j.store.WindowStates(ctx, ref.Model, ref.ModelVersion, from, now)
		if err != nil {
			return n, errors.Join(err, round.Commit(ctx, time.Time{}))
		}
		work := shard.ChangedWindows(round, ref.Model, ref.ModelVersion, states, windowStart, func(sts []*stats.WindowState) uint64 {
			return Input(sts, ref.ID)
		})
		if len(work.States) == 0 {
			continue
		}
		merged := MergeWindows(work.States)
		rs := make([]Result, 0, len(merged))
		for _, st := range merged {
			rs = append(rs, Evaluate(m, ref.ID, st))
		}
		if err := j.store.WriteMultivariate(ctx, rs); err != nil {
			return n, errors.Join(err, round.Commit(ctx, time.Time{}))
		}
		work.Done(round)
		n += len(rs)
		if err := round.Flush(ctx); err != nil {
			return n, err
		}
	}
	return n, round.Commit(ctx, time.Time{})
}

// windowStart is the window a state belongs to (shard.ChangedWindows).
func windowStart(st *stats.WindowState) int64 { return st.WindowStart }
