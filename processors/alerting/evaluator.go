package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Series statuses (SeriesState.Status), with StatusFiring.
const (
	StatusInactive = "inactive"
	StatusPending  = "pending"
)

// Observation is one metric value of one window, as read from ClickHouse.
type Observation struct {
	Metric  string
	Model   string
	Feature string // empty for model-level metrics
	Segment string // "key=value"; empty for the whole traffic
	// WindowStart orders the windows of a series; WindowEnd is when the
	// window ended (delay, StartsAt and EndsAt count from it).
	WindowStart, WindowEnd time.Time
	Value                  float64 // NaN: no value; the window is skipped
	// Reference is the base of change-against-reference rules. Set it to
	// NaN when unknown: 0 is a valid reference.
	Reference float64
	// SQL is a ClickHouse query reproducing Value, copied into the alert.
	SQL string
}

// SeriesState is the evaluator's state of one alert series: one ClickHouse
// row, keyed by Fingerprint, to persist after Observe and NoData and to pass
// to NewEvaluator after a restart.
type SeriesState struct {
	Rule, Fingerprint, Model, Feature, Segment, Metric string

	Status      string // StatusInactive, StatusPending or StatusFiring
	Consecutive int    // consecutive windows the condition held
	// LastWindow is the WindowStart of the last evaluated window; windows
	// at or before it are ignored. For no_data rules: the lastSeen of the
	// last transition.
	LastWindow time.Time
	// Previous is the value of the last evaluated window (the base of
	// change-against-previous rules); NaN if none.
	Previous float64
	// StartsAt is the end of the first holding window of the current
	// pending or firing episode; zero when inactive.
	StartsAt time.Time
	// Value and Threshold are those of the last evaluated window.
	Value, Threshold float64
	// UpdatedAt is the evaluator clock's time of the last change: the
	// version of the row (newest wins).
	UpdatedAt time.Time
}

// Notification is one alert to send to the rule's receivers.
type Notification struct {
	Alert     Alert
	Receivers []string
	// ID is a hex SHA-256 of (fingerprint, status, StartsAt): the same
	// transition evaluated again after a crash has the same ID, so the
	// caller drops the duplicate.
	ID string
}

// Evaluator runs the rules of a validated Config over observations. See the
// package doc for the state machine and what the caller must do.
type Evaluator struct {
	mu       sync.Mutex
	rules    []*compiledRule
	byMetric map[string][]*compiledRule
	series   map[string]*series // by fingerprint
	changed  map[string]struct{}
	clock    func() time.Time
	maxDelay time.Duration
}

type series struct {
	rule  *compiledRule
	state SeriesState
}

// NewEvaluator returns an evaluator for cfg, which must have passed
// Validate (it panics otherwise: a bug in the caller), starting from the
// restored states. clock stamps SeriesState.UpdatedAt; nil means time.Now.
// Restored states that no rule covers any more are dropped; of duplicate
// states of one series, the newest UpdatedAt wins.
func NewEvaluator(cfg *Config, restored []SeriesState, clock func() time.Time) *Evaluator {
	if cfg == nil || (cfg.compiled == nil && len(cfg.Rules) > 0) {
		panic("BUG: alerting.NewEvaluator needs a Config that passed Validate")
	}
	if clock == nil {
		clock = time.Now
	}
	e := &Evaluator{
		rules:    cfg.compiled,
		byMetric: map[string][]*compiledRule{},
		series:   map[string]*series{},
		changed:  map[string]struct{}{},
		clock:    clock,
	}
	byName := map[string]*compiledRule{}
	for _, r := range e.rules {
		byName[r.name] = r
		if r.noData == 0 {
			e.byMetric[r.metric] = append(e.byMetric[r.metric], r)
		}
		e.maxDelay = max(e.maxDelay, r.delay)
	}
	for _, st := range restored {
		r := byName[st.Rule]
		if r == nil || !r.matches(st.Metric, st.Model, st.Feature, st.Segment) {
			continue
		}
		st.Fingerprint = fingerprint(r, st.Model, st.Feature, st.Segment)
		if old, ok := e.series[st.Fingerprint]; ok && old.state.UpdatedAt.After(st.UpdatedAt) {
			continue
		}
		switch st.Status {
		case StatusPending, StatusFiring:
		default:
			st.Status = StatusInactive
		}
		e.series[st.Fingerprint] = &series{rule: r, state: st}
	}
	return e
}

// fingerprint identifies a series: stable across runs and restarts, and the
// same for its firing and resolved alerts.
func fingerprint(r *compiledRule, model, feature, segment string) string {
	h := sha256.New()
	for _, s := range []string{r.name, r.metric, model, feature, segment} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// notificationID is deterministic so that re-running after a crash yields
// the same IDs.
func notificationID(fp, status string, startsAt time.Time) string {
	h := sha256.New()
	h.Write([]byte(fp + "\x00" + status + "\x00" + startsAt.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(h.Sum(nil))
}

// MaxDelay is the longest rule delay: read windows that ended at least this
// long ago (plus a few windows) so that delayed rules see them when due.
func (e *Evaluator) MaxDelay() time.Duration { return e.maxDelay }

// Wants reports whether any condition rule covers o's series, so that the
// caller may skip reading what no rule looks at.
func (e *Evaluator) Wants(o Observation) bool {
	for _, r := range e.byMetric[o.Metric] {
		if r.matches(o.Metric, o.Model, o.Feature, o.Segment) {
			return true
		}
	}
	return false
}

// Observe evaluates the observations against the condition rules and
// returns the notifications of the series that started firing or resolved,
// ordered by series fingerprint, then window. Observations may come in any
// order, repeated; per series they are evaluated by WindowStart, and a
// window at or before the series' LastWindow is ignored (of two
// observations of one window, the first counts). An observation whose
// WindowEnd + the rule's delay is after now is ignored without a trace:
// pass it again once it is due.
func (e *Evaluator) Observe(obs []Observation, now time.Time) []Notification {
	e.mu.Lock()
	defer e.mu.Unlock()

	type batch struct {
		s   *series
		obs []Observation
	}
	batches := map[string]*batch{}
	for _, o := range obs {
		for _, r := range e.byMetric[o.Metric] {
			if !r.matches(o.Metric, o.Model, o.Feature, o.Segment) || o.WindowEnd.Add(r.delay).After(now) {
				continue
			}
			fp := fingerprint(r, o.Model, o.Feature, o.Segment)
			b := batches[fp]
			if b == nil {
				b = &batch{s: e.lookup(fp, r, o.Model, o.Feature, o.Segment)}
				batches[fp] = b
			}
			b.obs = append(b.obs, o)
		}
	}

	var out []Notification
	for _, fp := range slices.Sorted(maps.Keys(batches)) {
		b := batches[fp]
		slices.SortStableFunc(b.obs, func(x, y Observation) int { return x.WindowStart.Compare(y.WindowStart) })
		for _, o := range b.obs {
			if n, ok := e.step(b.s, o); ok {
				out = append(out, n)
			}
		}
	}
	return out
}

// lookup returns the series, or a new inactive one that is only kept once
// something changes it.
func (e *Evaluator) lookup(fp string, r *compiledRule, model, feature, segment string) *series {
	if s, ok := e.series[fp]; ok {
		return s
	}
	return &series{rule: r, state: SeriesState{
		Rule: r.name, Fingerprint: fp, Model: model, Feature: feature, Segment: segment, Metric: r.metric,
		Status: StatusInactive, Previous: math.NaN(), Value: math.NaN(), Threshold: math.NaN(),
	}}
}

func (e *Evaluator) touch(s *series) {
	s.state.UpdatedAt = e.clock()
	e.series[s.state.Fingerprint] = s
	e.changed[s.state.Fingerprint] = struct{}{}
}

// step evaluates one window of a series.
func (e *Evaluator) step(s *series, o Observation) (Notification, bool) {
	st, r := &s.state, s.rule
	if !o.WindowStart.After(st.LastWindow) || math.IsNaN(o.Value) {
		return Notification{}, false
	}
	base := math.NaN()
	switch r.cond.kind {
	case condChangePrevious:
		base = st.Previous
	case condChangeReference:
		base = o.Reference
	}
	st.LastWindow = o.WindowStart
	st.Previous = o.Value
	st.Value = o.Value
	e.touch(s)
	holds, threshold, ok := r.cond.eval(o.Value, base)
	if !ok {
		return Notification{}, false
	}
	st.Threshold = threshold

	data := TemplateData{
		Value: o.Value, Threshold: threshold, Base: base,
		Window:      compactDuration(o.WindowEnd.Sub(o.WindowStart)),
		WindowStart: o.WindowStart, WindowEnd: o.WindowEnd,
	}
	if holds {
		if st.Consecutive == 0 || st.StartsAt.IsZero() {
			st.StartsAt = o.WindowEnd
		}
		st.Consecutive++
		switch {
		case st.Status == StatusFiring:
		case st.Consecutive >= r.forWindows:
			st.Status = StatusFiring
			return e.notification(s, StatusFiring, st.StartsAt, time.Time{}, data, o.SQL), true
		default:
			st.Status = StatusPending
		}
		return Notification{}, false
	}
	wasFiring, startsAt := st.Status == StatusFiring, st.StartsAt
	st.Status, st.Consecutive, st.StartsAt = StatusInactive, 0, time.Time{}
	if !wasFiring {
		return Notification{}, false
	}
	return e.notification(s, StatusResolved, startsAt, o.WindowEnd, data, o.SQL), true
}

// NoData evaluates the no_data rules. lastSeen maps each model to check to
// the end of its newest window with events; models missing from it (or
// with a zero time) are not evaluated and keep their state. A model fires
// when now - lastSeen > no_data and resolves when that is no longer so.
func (e *Evaluator) NoData(lastSeen map[string]time.Time, now time.Time) []Notification {
	e.mu.Lock()
	defer e.mu.Unlock()

	models := slices.Sorted(maps.Keys(lastSeen))
	var out []Notification
	for _, r := range e.rules {
		if r.noData == 0 {
			continue
		}
		for _, model := range models {
			seen := lastSeen[model]
			if seen.IsZero() || !matchAny(r.models, model) {
				continue
			}
			s := e.lookup(fingerprint(r, model, "", ""), r, model, "", "")
			st := &s.state
			silence := now.Sub(seen)
			data := TemplateData{
				Value: silence.Seconds(), Threshold: r.noData.Seconds(), Base: math.NaN(),
				Window: compactDuration(r.noData), LastSeen: seen,
			}
			switch silent := silence > r.noData; {
			case silent && st.Status != StatusFiring:
				st.Status, st.Consecutive, st.StartsAt = StatusFiring, 1, seen.Add(r.noData)
				st.LastWindow, st.Value, st.Threshold = seen, data.Value, data.Threshold
				e.touch(s)
				out = append(out, e.notification(s, StatusFiring, st.StartsAt, time.Time{}, data, ""))
			case !silent && st.Status == StatusFiring:
				startsAt := st.StartsAt
				st.Status, st.Consecutive, st.StartsAt = StatusInactive, 0, time.Time{}
				st.LastWindow, st.Value, st.Threshold = seen, data.Value, data.Threshold
				e.touch(s)
				endsAt := seen
				if endsAt.Before(startsAt) {
					endsAt = startsAt
				}
				out = append(out, e.notification(s, StatusResolved, startsAt, endsAt, data, ""))
			}
		}
	}
	return out
}

// notification builds the alert of a transition; data has the window's
// fields, the series' fields are filled in here.
func (e *Evaluator) notification(s *series, status string, startsAt, endsAt time.Time, data TemplateData, sql string) Notification {
	st, r := &s.state, s.rule
	labels := make(map[string]string, len(r.labels)+6)
	maps.Copy(labels, r.labels)
	labels["alertname"] = r.name
	labels["severity"] = r.severity
	labels["model"] = st.Model
	labels["metric"] = st.Metric
	if st.Feature != "" {
		labels["feature"] = st.Feature
	}
	if st.Segment != "" {
		labels["segment"] = st.Segment
	}

	data.Rule, data.Status, data.Severity = r.name, status, r.severity
	data.Model, data.Metric, data.Feature, data.Segment = st.Model, st.Metric, st.Feature, st.Segment
	data.Labels = maps.Clone(labels)
	annotations := make(map[string]string, len(r.annotations))
	for k, t := range r.annotations {
		text, err := render(t, &data)
		if err != nil {
			// Validate tried every template; what fails here still deserves
			// to be delivered, with the reason in place of the text.
			text = "annotation template failed: " + strings.TrimPrefix(err.Error(), "template: ")
		}
		annotations[k] = text
	}

	id := notificationID(st.Fingerprint, status, startsAt)
	return Notification{
		Alert: Alert{
			ID:          id,
			Fingerprint: st.Fingerprint,
			Status:      status,
			Labels:      labels,
			Annotations: annotations,
			StartsAt:    startsAt,
			EndsAt:      endsAt,
			Model:       st.Model,
			Metric:      st.Metric,
			Feature:     st.Feature,
			Segment:     st.Segment,
			Window:      data.Window,
			Value:       data.Value,
			Threshold:   data.Threshold,
			SQL:         sql,
		},
		Receivers: slices.Clone(r.receivers),
		ID:        id,
	}
}

// Changed returns the states changed since the previous call, sorted by
// fingerprint, and forgets them: persist them after the notifications.
func (e *Evaluator) Changed() []SeriesState {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]SeriesState, 0, len(e.changed))
	for _, fp := range slices.Sorted(maps.Keys(e.changed)) {
		out = append(out, e.series[fp].state)
	}
	clear(e.changed)
	return out
}

// States returns every series' state, sorted by fingerprint.
func (e *Evaluator) States() []SeriesState {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]SeriesState, 0, len(e.series))
	for _, fp := range slices.Sorted(maps.Keys(e.series)) {
		out = append(out, e.series[fp].state)
	}
	return out
}
