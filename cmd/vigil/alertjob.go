package main

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

	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
	"github.com/vigil-ml/vigil/sinks/webhook"
)

// alertJob evaluates the alert rules. Every interval it reads the metrics of
// the windows that closed recently from ClickHouse, feeds them to the
// evaluator, hands the notifications to the dispatcher (whose outbox is
// vigil_notifications), then stores the changed alert states in
// vigil_alerts. Notification ids are derived from the transition, so a crash
// between the two writes re-sends nothing: the evaluator, restored from
// vigil_alerts, produces the same notification again and the outbox already
// holds it.
type alertJob struct {
	sink     *clickhouse.Sink
	rules    *alerting.Config
	disp     *webhook.Dispatcher
	window   time.Duration
	grace    time.Duration // a window's metrics are complete this long after its end
	lookback time.Duration
	interval time.Duration
	sources  map[string]bool
	noData   bool
	refs     bool // a rule compares with the reference: read the profiles
	log      zerolog.Logger
	// demoVersion, set by the demo only, evaluates that model version alone
	// from a fresh state and salts the notification and delivery ids with
	// it, so that demo runs minutes apart (whose simulated windows overlap)
	// do not see each other's windows, states or notifications.
	demoVersion string

	eval *alerting.Evaluator
	loop periodic
	// leading: the evaluator was built from the stored states since this
	// process last became the leader (only the pass goroutine uses it).
	leading     bool
	dispStarted bool
}

// loadRules reads and validates an alert rules file.
func loadRules(path string) (*alerting.Config, error) {
	rules, err := alerting.LoadFile(path)
	if err != nil {
		return nil, err
	}
	if err := rules.Validate(alerting.DefaultCatalog()); err != nil {
		return nil, fmt.Errorf("alert rules %s:\n%w", path, err)
	}
	return rules, nil
}

func newAlertJob(sink *clickhouse.Sink, cfg Config, log zerolog.Logger) (*alertJob, error) {
	rules, err := loadRules(cfg.Alerts.Rules)
	if err != nil {
		return nil, err
	}
	receivers, err := webhook.FromConfig(rules.ReceiverConfigs)
	if err != nil {
		return nil, err
	}
	disp, err := webhook.NewDispatcher(webhook.DispatcherConfig{Outbox: sink.Outbox()}, log.With().Str("component", "webhook").Logger(), receivers...)
	if err != nil {
		return nil, err
	}
	j := &alertJob{
		sink: sink, rules: rules, disp: disp, window: cfg.Window.Size, interval: cfg.Alerts.Interval,
		grace:   cfg.Window.AllowedLateness + cfg.CheckpointInterval + cfg.Drift.Interval + cfg.Performance.Interval + 5*time.Second,
		sources: map[string]bool{},
		log:     log.With().Str("component", "alerts").Logger(),
	}
	catalog := alerting.DefaultCatalog()
	var maxDelay time.Duration
	for _, r := range rules.Rules {
		j.sources[catalog[r.Metric].Source] = true
		if r.NoData > 0 {
			j.noData = true
		}
		if r.Condition != nil && r.Condition.Change != nil && r.Condition.Change.Against == alerting.AgainstReference {
			j.refs = true
		}
		maxDelay = max(maxDelay, time.Duration(r.Delay))
	}
	j.lookback = j.grace + maxDelay + 10*j.window
	return j, nil
}

// Start restores the alert states, starts the dispatcher (which re-sends
// what the outbox holds) and evaluates in the background until Shutdown.
//
// With a leader function (setLeader), the job works only while the process
// leads the group: on becoming the leader it reloads the states (another
// process may have changed them) and starts the dispatcher.
func (j *alertJob) Start(ctx context.Context) error {
	lead := j.loop.leader
	if lead == nil {
		if err := j.prepare(ctx); err != nil {
			return err
		}
		j.leading = true
	}
	j.loop.leader = nil // the pass itself follows the leadership, to notice its changes
	j.loop.start(j.interval, true, func(ctx context.Context) {
		if lead != nil {
			if !lead() {
				j.leading = false
				return
			}
			if !j.leading {
				if err := j.prepare(ctx); err != nil {
					j.log.Warn().Err(err).Msg("take over alert evaluation")
					return
				}
				j.leading = true
				j.log.Info().Msg("this process leads the group: evaluating alert rules")
			}
		}
		if n, err := j.runOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			j.log.Warn().Err(err).Msg("evaluate alert rules")
		} else if n > 0 {
			j.log.Info().Int("notifications", n).Msg("alert notifications queued")
		}
	})
	j.log.Info().Int("rules", len(j.rules.Rules)).Dur("interval", j.interval).Dur("grace", j.grace).Msg("alert evaluator started")
	return nil
}

// prepare restores the evaluator's states and starts the dispatcher, which
// re-sends what the outbox holds.
func (j *alertJob) prepare(ctx context.Context) error {
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
func (j *alertJob) prepareEvaluator(ctx context.Context) error {
	var states []alerting.SeriesState
	if j.demoVersion == "" {
		var err error
		if states, err = j.sink.Alerts().LoadAlertStates(ctx); err != nil {
			return err
		}
	}
	j.eval = alerting.NewEvaluator(j.rules, states, nil)
	return nil
}

// Shutdown stops evaluating, then drains the dispatcher; what it could not
// deliver stays pending in vigil_notifications. Idempotent, safe without
// Start.
func (j *alertJob) Shutdown(ctx context.Context) error {
	if err := j.loop.stop(ctx); err != nil {
		return err
	}
	err := j.disp.Shutdown(ctx)
	var ue *webhook.UndeliveredError
	if errors.As(err, &ue) {
		j.log.Warn().Int("deliveries", len(ue.Deliveries)).Msg("notifications left in the outbox for the next start")
		return nil
	}
	return err
}

// runOnce evaluates the windows that closed within the lookback; it returns
// how many notifications it queued.
func (j *alertJob) runOnce(ctx context.Context, now time.Time) (int, error) {
	metrics, err := j.sink.Alerts().RecentMetrics(ctx, j.window, now.Add(-j.lookback), now.Add(-j.grace), j.sources, j.demoVersion)
	if err != nil {
		return 0, err
	}
	var refs map[string]*reference.Profile
	if j.refs {
		if refs, err = j.references(ctx); err != nil {
			return 0, err
		}
	}
	obs := make([]alerting.Observation, 0, len(metrics))
	for _, m := range metrics {
		o := alerting.Observation{Metric: m.Metric, Model: m.Model, Feature: m.Feature, Segment: m.Segment,
			WindowStart: m.WindowStart, WindowEnd: m.WindowEnd, Value: m.Value, Reference: math.NaN(), SQL: m.SQL}
		if !j.eval.Wants(o) {
			continue
		}
		o.Reference = referenceValue(refs[m.Model], m.Metric, m.Feature)
		obs = append(obs, o)
	}
	notes := j.eval.Observe(obs, now)
	if j.noData {
		seen, err := j.sink.Alerts().LastSeen(ctx)
		if err != nil {
			return 0, err
		}
		notes = append(notes, j.eval.NoData(seen, now)...)
	}
	n, sendErr := j.send(ctx, notes)
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
	return n, j.sink.Alerts().SaveAlertStates(ctx, j.eval.Changed())
}

// send groups the notifications of one evaluation by receiver (alerts fired
// together go out together) under a delivery id derived from their ids. A
// notification the outbox already holds for a receiver (the same transition
// evaluated again after a crash, maybe grouped otherwise) is left out.
func (j *alertJob) send(ctx context.Context, notes []alerting.Notification) (int, error) {
	byReceiver := map[string][]alerting.Notification{}
	for _, n := range notes {
		if j.demoVersion != "" { // demo runs minutes apart have the same windows, hence ids
			sum := sha256.Sum256([]byte(j.demoVersion + "\x00" + n.ID))
			n.ID = hex.EncodeToString(sum[:])
			n.Alert.ID = n.ID
		}
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
		known, err := j.sink.Outbox().Known(ctx, r, ids)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		group = slices.DeleteFunc(group, func(n alerting.Notification) bool { return known[n.ID] })
		if len(group) == 0 {
			continue
		}
		slices.SortFunc(group, func(a, b alerting.Notification) int { return strings.Compare(a.ID, b.ID) })
		h := sha256.New()
		alerts := make([]webhook.Alert, len(group))
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

// references returns the newest reference profile of each model (any
// version), the base of change-against-reference rules.
func (j *alertJob) references(ctx context.Context) (map[string]*reference.Profile, error) {
	all, err := j.sink.References().LatestReferences(ctx)
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
