package main

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// driftJob keeps vigil_drift current: every interval it evaluates the stored
// windows that started within lookback, for every model version that has a
// reference, merged over partitions, and stores the results (replacing the
// previous evaluation of the same windows). It reads from ClickHouse, not
// from the processor's memory, so it is exact however a model's events are
// spread over partitions and processes; several processes running it write
// the same rows.
type driftJob struct {
	sink     *clickhouse.Sink
	opts     drift.Options
	interval time.Duration
	lookback time.Duration
	log      zerolog.Logger
	loop     periodic
}

func newDriftJob(sink *clickhouse.Sink, opts drift.Options, interval, lookback time.Duration, log zerolog.Logger) *driftJob {
	return &driftJob{sink: sink, opts: opts, interval: interval, lookback: lookback, log: log.With().Str("component", "drift").Logger()}
}

// Start runs the job in the background until Shutdown; an interval of 0
// turns it off.
func (j *driftJob) Start(context.Context) error {
	j.loop.start(j.interval, false, func(ctx context.Context) {
		if n, err := j.runOnce(ctx); err != nil && ctx.Err() == nil {
			j.log.Warn().Err(err).Msg("evaluate drift")
		} else if e := j.log.Debug(); e.Enabled() {
			e.Int("windows", n).Msg("drift evaluated")
		}
	})
	return nil
}

// Shutdown stops the job; idempotent and safe without Start.
func (j *driftJob) Shutdown(ctx context.Context) error { return j.loop.stop(ctx) }

// runOnce evaluates and stores the recent windows; it returns how many.
func (j *driftJob) runOnce(ctx context.Context) (int, error) {
	refs, err := j.sink.References().LatestReferences(ctx)
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	n := 0
	for mv := range refs {
		buckets, err := driftBuckets(ctx, j.sink, refs, j.opts, mv[0], mv[1], "*", now.Add(-j.lookback), now, 0)
		if err != nil {
			return n, err
		}
		if err := j.sink.Windows().WriteDrift(ctx, toDriftWindows(mv[0], buckets)); err != nil {
			return n, err
		}
		n += len(buckets)
	}
	return n, nil
}
