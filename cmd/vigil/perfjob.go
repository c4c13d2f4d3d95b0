package main

import (
	"context"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// performanceJob keeps vigil_performance current. Every interval it asks
// ClickHouse which prediction windows got predictions or labels since its
// previous pass (and started within the label horizon), and recomputes each
// of them whole: the window's predictions (vigil_events) joined by event id
// with their newest labels (vigil_labels), per model version and segment.
// The join state is ClickHouse itself, so the job survives restarts and
// gives the same rows whichever process runs it; several processes running
// it write the same rows (the newest version wins). See docs/DESIGN.md,
// "Labels and performance".
type performanceJob struct {
	sink        *clickhouse.Sink
	window      time.Duration
	horizon     time.Duration
	interval    time.Duration
	threshold   float64
	segmentKeys []string
	log         zerolog.Logger

	since time.Time // start of the previous pass
	loop  periodic
}

// overlap re-reads changes this long before the previous pass: predictions
// carry the time they were consumed (ingested_at) but reach ClickHouse at
// the next checkpoint.
const overlap = time.Minute

func newPerformanceJob(sink *clickhouse.Sink, cfg Config, log zerolog.Logger) *performanceJob {
	return &performanceJob{
		sink: sink, window: cfg.Window.Size, horizon: cfg.Labels.Horizon, interval: cfg.Performance.Interval,
		threshold: cfg.Labels.Threshold, segmentKeys: cfg.SegmentKeys,
		log: log.With().Str("component", "performance").Logger(),
	}
}

// Start runs the job in the background until Shutdown; an interval of 0
// turns it off.
func (j *performanceJob) Start(context.Context) error {
	j.loop.start(j.interval, false, func(ctx context.Context) {
		if n, err := j.runOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			j.log.Warn().Err(err).Msg("compute performance")
		} else if e := j.log.Debug(); e.Enabled() {
			e.Int("windows", n).Msg("performance computed")
		}
	})
	return nil
}

// Shutdown stops the job; idempotent and safe without Start.
func (j *performanceJob) Shutdown(ctx context.Context) error { return j.loop.stop(ctx) }

// runOnce recomputes the windows changed since the previous pass and
// returns how many. The first pass of a process resumes from the last write
// to vigil_performance (by any process), or covers the whole horizon when
// there is none.
func (j *performanceJob) runOnce(ctx context.Context, now time.Time) (int, error) {
	notBefore := now.Add(-j.horizon - j.window).Truncate(j.window)
	if j.since.IsZero() {
		last, err := j.sink.Labels().LastPerformanceWrite(ctx)
		if err != nil {
			return 0, err
		}
		j.since = last
	}
	since := j.since.Add(-overlap)
	if j.since.IsZero() || since.Before(notBefore) {
		since = notBefore
	}
	changed, err := j.sink.Labels().ChangedPerformanceWindows(ctx, j.window, since, notBefore)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, mw := range changed {
		rows, err := j.compute(ctx, mw.Model, mw.Start)
		if err != nil {
			return n, err
		}
		if err := j.sink.Labels().WritePerformance(ctx, rows); err != nil {
			return n, err
		}
		n++
	}
	j.since = now
	return n, nil
}

// compute joins the predictions of one window with their labels and returns
// a row per model version and segment.
func (j *performanceJob) compute(ctx context.Context, model string, start time.Time) ([]clickhouse.PerformanceWindow, error) {
	end := start.Add(j.window)
	preds, err := j.sink.Labels().WindowPredictions(ctx, model, start, end)
	if err != nil {
		return nil, err
	}
	labels, err := j.sink.Labels().WindowLabels(ctx, model, start, end)
	if err != nil {
		return nil, err
	}
	return joinPerformance(model, start, end, preds, labels, j.horizon, j.threshold, j.segmentKeys), nil
}

// joinPerformance is the join itself, without I/O. A label counts when its
// label time is at most horizon after the prediction. The task of a model
// version is that of its first prediction (score: binary, class: multiclass,
// value: regression); predictions of another kind count in Predictions only.
func joinPerformance(model string, start, end time.Time, preds []clickhouse.PredictionRow, labels map[string]clickhouse.StoredLabel,
	horizon time.Duration, threshold float64, segmentKeys []string) []clickhouse.PerformanceWindow {
	type key struct{ version, segment string }
	states := map[key]*performance.State{}
	var order []key
	segValues := map[string]map[string]string{} // segment key -> value -> segment, at most pipeline.MaxSegmentValues values
	stateFor := func(k key, task performance.Task) *performance.State {
		s := states[k]
		if s == nil {
			s = performance.NewState(task, threshold)
			states[k] = s
			order = append(order, k)
		}
		return s
	}
	var keys []key
	for i := range preds {
		p := &preds[i]
		task, ok := taskOf(p)
		if !ok {
			continue
		}
		keys = append(keys[:0], key{p.ModelVersion, ""})
		for _, sk := range segmentKeys {
			for t, k := range p.SegmentKeys {
				if k != sk || t >= len(p.SegmentValues) {
					continue
				}
				v := p.SegmentValues[t]
				vals := segValues[sk]
				if vals == nil {
					vals = map[string]string{}
					segValues[sk] = vals
				}
				seg, seen := vals[v]
				if !seen {
					if len(vals) >= pipeline.MaxSegmentValues {
						seg = sk + "=" + pipeline.OtherSegment
					} else {
						seg = sk + "=" + v
						vals[v] = seg
					}
				}
				keys = append(keys, key{p.ModelVersion, seg})
				break
			}
		}
		l, labeled := labels[p.EventID]
		if labeled && l.Time.Sub(p.Time) > horizon {
			labeled = false // expired: counted by `vigil query labels`
		}
		delay := l.Time.Sub(p.Time).Seconds()
		for _, k := range keys {
			s := stateFor(k, task)
			s.AddPrediction()
			if !labeled || s.Task != task {
				continue
			}
			switch task {
			case performance.TaskBinary:
				if pos, ok := (&schemas.Label{HasClass: l.HasClass, Class: l.Class, HasValue: l.HasValue, Value: l.Value}).Positive(); ok {
					s.AddBinary(*p.Score, pos, delay)
				}
			case performance.TaskMulticlass:
				actual := l.Class
				if !l.HasClass {
					actual = strconv.FormatFloat(l.Value, 'g', -1, 64)
				}
				s.AddMulticlass(*p.Label, actual, p.ProbaClasses, p.ProbaValues, delay)
			case performance.TaskRegression:
				if l.HasValue {
					s.AddRegression(*p.Value, l.Value, delay)
				} else if v, err := strconv.ParseFloat(l.Class, 64); err == nil {
					s.AddRegression(*p.Value, v, delay)
				}
			}
		}
	}
	out := make([]clickhouse.PerformanceWindow, 0, len(order))
	for _, k := range order {
		out = append(out, clickhouse.PerformanceWindow{Model: model, ModelVersion: k.version, Segment: k.segment, Start: start, End: end, State: states[k]})
	}
	return out
}

func taskOf(p *clickhouse.PredictionRow) (performance.Task, bool) {
	switch {
	case p.Score != nil:
		return performance.TaskBinary, true
	case p.Label != nil:
		return performance.TaskMulticlass, true
	case p.Value != nil:
		return performance.TaskRegression, true
	}
	return 0, false
}
