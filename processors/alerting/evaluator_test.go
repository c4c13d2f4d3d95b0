package alerting

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	t0      = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	step    = 5 * time.Minute
	farAway = t0.Add(1000 * time.Hour) // an evaluation time after every window
	nan     = math.NaN()
)

// rulesConfig validates a config with one receiver "hook" and the given rules.
func rulesConfig(t *testing.T, rules string) *Config {
	t.Helper()
	y := "receivers:\n  - {name: hook, type: webhook, url: http://example.com, secret: k}\n" +
		"defaults:\n  receivers: [hook]\nrules:\n" + rules
	cfg, err := Load(strings.NewReader(y))
	if err != nil {
		t.Fatalf("load:\n%s\n%v", y, err)
	}
	if err := cfg.Validate(nil); err != nil {
		t.Fatalf("validate:\n%s\n%v", y, err)
	}
	return cfg
}

// window i of a series: [t0 + i·5m, t0 + (i+1)·5m).
func window(metric, model, feature, segment string, i int, value float64) Observation {
	start := t0.Add(time.Duration(i) * step)
	return Observation{
		Metric: metric, Model: model, Feature: feature, Segment: segment,
		WindowStart: start, WindowEnd: start.Add(step), Value: value, Reference: nan,
		SQL: fmt.Sprintf("SELECT %s FROM vigil_drift WHERE window = %d", metric, i),
	}
}

func windowEnd(i int) time.Time { return t0.Add(time.Duration(i+1) * step) }

// transitions feeds the windows one Observe call each and returns
// "i:status" for every notification, i being the window that caused it.
func transitions(e *Evaluator, obs []Observation) []string {
	var out []string
	for i, o := range obs {
		for _, n := range e.Observe([]Observation{o}, farAway) {
			out = append(out, fmt.Sprintf("%d:%s", i, n.Alert.Status))
		}
	}
	return out
}

func TestStateMachine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rule   string // the rule's lines after name and metric psi
		values []float64
		refs   []float64 // Reference per window; nil means NaN
		want   []string
	}{
		{
			name:   "fires after for windows, not before",
			rule:   "condition: {above: 0.2}\n    for: 3",
			values: []float64{0.3, 0.3, 0.1, 0.3, 0.3, 0.3, 0.3, 0.1},
			want:   []string{"5:firing", "7:resolved"},
		},
		{
			name:   "pending clears silently",
			rule:   "condition: {above: 0.2}\n    for: 3",
			values: []float64{0.3, 0.3, 0.1, 0.3, 0.1},
		},
		{
			name:   "for 1 fires at once",
			rule:   "condition: {above: 0.2}",
			values: []float64{0.3, 0.3, 0.2, 0.21},
			want:   []string{"0:firing", "2:resolved", "3:firing"},
		},
		{
			name:   "below",
			rule:   "condition: {below: 0.8}\n    for: 2",
			values: []float64{0.9, 0.7, 0.79, 0.85},
			want:   []string{"2:firing", "3:resolved"},
		},
		{
			name:   "outside band",
			rule:   "condition: {outside: [0.1, 0.9]}",
			values: []float64{0.5, 0.95, 0.9, 0.05, 0.1},
			want:   []string{"1:firing", "2:resolved", "3:firing", "4:resolved"},
		},
		{
			name:   "NaN neither holds nor clears",
			rule:   "condition: {above: 0.2}\n    for: 3",
			values: []float64{0.3, 0.3, nan, 0.3, nan, 0.1},
			want:   []string{"3:firing", "5:resolved"},
		},
		{
			name:   "change against previous",
			rule:   "condition: {change: {against: previous, above: 0.1}}",
			values: []float64{1.0, 1.05, 1.3, 1.35, 1.0},
			want:   []string{"2:firing", "3:resolved", "4:firing"},
		},
		{
			name:   "change against previous skips NaN",
			rule:   "condition: {change: {against: previous, above: 0.1}}",
			values: []float64{nan, 1.0, nan, 1.05, 1.3},
			want:   []string{"4:firing"},
		},
		{
			name:   "relative change",
			rule:   "condition: {change: {against: previous, above: 0.5, relative: true}}",
			values: []float64{100, 140, 220, 230, 0, 0, 1},
			want:   []string{"2:firing", "3:resolved", "4:firing", "5:resolved", "6:firing"},
		},
		{
			name:   "change against reference",
			rule:   "condition: {change: {against: reference, above: 0.1}}\n    for: 2",
			values: []float64{0.5, 0.7, 0.7, 0.7, 0.55, 0.3},
			refs:   []float64{0.5, 0.5, nan, 0.5, 0.5, 0.5},
			want:   []string{"3:firing", "4:resolved"},
		},
		{
			name:   "relative change against reference",
			rule:   "condition: {change: {against: reference, above: 0.1, relative: true}}",
			values: []float64{0.5, 0.56, 0.54},
			refs:   []float64{0.5, 0.5, 0.5},
			want:   []string{"1:firing", "2:resolved"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := rulesConfig(t, "  - name: R\n    metric: psi\n    "+tc.rule+"\n")
			obs := make([]Observation, len(tc.values))
			for i, v := range tc.values {
				obs[i] = window("psi", "fraud", "amount", "", i, v)
				if tc.refs != nil {
					obs[i].Reference = tc.refs[i]
				}
			}
			got := transitions(NewEvaluator(cfg, nil, nil), obs)
			if !slices.Equal(got, tc.want) {
				t.Errorf("notifications %v, want %v", got, tc.want)
			}

			// The same windows in one call, shuffled and repeated, give the
			// same notifications in window order.
			shuffled := append(slices.Clone(obs), obs...)
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			var all []string
			for _, n := range NewEvaluator(cfg, nil, nil).Observe(shuffled, farAway) {
				all = append(all, n.Alert.Status)
			}
			var wantStatuses []string
			for _, w := range tc.want {
				wantStatuses = append(wantStatuses, strings.SplitN(w, ":", 2)[1])
			}
			if !slices.Equal(all, wantStatuses) {
				t.Errorf("in one shuffled call: %v, want %v", all, wantStatuses)
			}
		})
	}
}

func TestThresholds(t *testing.T) {
	for _, tc := range []struct {
		name, rule    string
		values        []float64
		ref           float64
		wantThreshold float64
	}{
		{"above", "{above: 0.2}", []float64{0.3}, nan, 0.2},
		{"outside low", "{outside: [0.1, 0.9]}", []float64{0.05}, nan, 0.1},
		{"outside high", "{outside: [0.1, 0.9]}", []float64{0.95}, nan, 0.9},
		{"change up", "{change: {against: previous, above: 0.1}}", []float64{1, 1.5}, nan, 1.1},
		{"change down", "{change: {against: previous, above: 0.1}}", []float64{1, 0.5}, nan, 0.9},
		{"relative change down", "{change: {against: reference, above: 0.5, relative: true}}", []float64{-5}, -2, -3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEvaluator(rulesConfig(t, "  - name: R\n    metric: psi\n    condition: "+tc.rule+"\n"), nil, nil)
			var ns []Notification
			for i, v := range tc.values {
				o := window("psi", "m", "f", "", i, v)
				o.Reference = tc.ref
				ns = append(ns, e.Observe([]Observation{o}, farAway)...)
			}
			if len(ns) != 1 {
				t.Fatalf("%d notifications, want 1", len(ns))
			}
			a := ns[0].Alert
			if math.Abs(a.Threshold-tc.wantThreshold) > 1e-12 || a.Value != tc.values[len(tc.values)-1] {
				t.Errorf("value %v threshold %v, want %v %v", a.Value, a.Threshold, tc.values[len(tc.values)-1], tc.wantThreshold)
			}
		})
	}
}

func TestAlertContents(t *testing.T) {
	cfg := rulesConfig(t, `  - name: AmountDrift
    metric: psi
    models: ["fraud*"]
    segments: ["region=*"]
    condition: {above: 0.2}
    for: 2
    severity: critical
    labels: {team: risk}
    annotations:
      summary: '{{.Model}}/{{.Feature}}/{{.Segment}} {{printf "%.2f" .Value}} > {{.Threshold}} ({{.Status}}, {{.Window}}, {{.Labels.team}})'
      since: '{{.WindowStart.Format "15:04"}}'
  - name: Quiet
    metric: drift_share
    condition: {above: 0.5}
    receivers: [hook, hook]
`)
	e := NewEvaluator(cfg, nil, nil)
	ns := e.Observe([]Observation{
		window("psi", "fraud-v2", "amount", "region=eu", 0, 0.31),
		window("psi", "fraud-v2", "amount", "region=eu", 1, 0.4),
		window("psi", "fraud-v2", "amount", "region=eu", 2, 0.1),
		window("drift_share", "fraud-v2", "", "", 0, 0.75),
	}, farAway)
	if len(ns) != 3 {
		t.Fatalf("%d notifications, want 3: %+v", len(ns), ns)
	}
	var drift []Notification
	var quiet Notification
	for _, n := range ns {
		if n.Alert.Labels["alertname"] == "AmountDrift" {
			drift = append(drift, n)
		} else {
			quiet = n
		}
	}
	firing, resolved := drift[0].Alert, drift[1].Alert
	wantLabels := map[string]string{
		"alertname": "AmountDrift", "severity": "critical", "team": "risk",
		"model": "fraud-v2", "metric": "psi", "feature": "amount", "segment": "region=eu",
	}
	for _, a := range []Alert{firing, resolved} {
		if fmt.Sprint(a.Labels) != fmt.Sprint(wantLabels) {
			t.Errorf("labels %v, want %v", a.Labels, wantLabels)
		}
		if a.Model != "fraud-v2" || a.Metric != "psi" || a.Feature != "amount" || a.Segment != "region=eu" || a.Window != "5m" {
			t.Errorf("identity fields: %+v", a)
		}
		if !a.StartsAt.Equal(windowEnd(0)) {
			t.Errorf("StartsAt %v, want the end of the first holding window %v", a.StartsAt, windowEnd(0))
		}
	}
	if firing.Fingerprint != resolved.Fingerprint || firing.Fingerprint == "" {
		t.Errorf("fingerprints %q and %q differ", firing.Fingerprint, resolved.Fingerprint)
	}
	if firing.Status != StatusFiring || !firing.EndsAt.IsZero() || firing.Value != 0.4 || firing.Threshold != 0.2 {
		t.Errorf("firing alert: %+v", firing)
	}
	if firing.SQL != "SELECT psi FROM vigil_drift WHERE window = 1" {
		t.Errorf("firing SQL %q", firing.SQL)
	}
	if want := "fraud-v2/amount/region=eu 0.40 > 0.2 (firing, 5m, risk)"; firing.Annotations["summary"] != want {
		t.Errorf("summary %q, want %q", firing.Annotations["summary"], want)
	}
	if firing.Annotations["since"] != "00:05" {
		t.Errorf("since %q", firing.Annotations["since"])
	}
	if resolved.Status != StatusResolved || !resolved.EndsAt.Equal(windowEnd(2)) || resolved.Value != 0.1 {
		t.Errorf("resolved alert: %+v", resolved)
	}
	if want := "fraud-v2/amount/region=eu 0.10 > 0.2 (resolved, 5m, risk)"; resolved.Annotations["summary"] != want {
		t.Errorf("resolved summary %q, want %q", resolved.Annotations["summary"], want)
	}
	if !slices.Equal(drift[0].Receivers, []string{"hook"}) {
		t.Errorf("receivers %v, want the default", drift[0].Receivers)
	}

	q := quiet.Alert
	if _, ok := q.Labels["feature"]; ok {
		t.Errorf("model-level alert has a feature label: %v", q.Labels)
	}
	if _, ok := q.Labels["segment"]; ok {
		t.Errorf("whole-traffic alert has a segment label: %v", q.Labels)
	}
	if q.Labels["severity"] != "warning" {
		t.Errorf("default severity %q", q.Labels["severity"])
	}
	if want := "fraud-v2: drift_share is 0.75 (threshold 0.5, window 5m)"; q.Annotations["summary"] != want {
		t.Errorf("default summary %q, want %q", q.Annotations["summary"], want)
	}
}

func TestCompactDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s",
		24 * time.Hour: "24h", 30 * time.Second: "30s", 1500 * time.Millisecond: "1.5s", 0: "0s",
		time.Hour + time.Second: "1h0m1s",
	} {
		if got := compactDuration(d); got != want {
			t.Errorf("compactDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestWildcardsAndSegments(t *testing.T) {
	cfg := rulesConfig(t, `  - name: Drift
    metric: psi
    models: ["fraud*", "churn"]
    features: ["amount", "geo_*"]
    segments: ["", "region=*"]
    condition: {above: 0.2}
  - name: Latency
    metric: latency_p99
    condition: {above: 0.5}
`)
	e := NewEvaluator(cfg, nil, nil)
	for _, tc := range []struct {
		o    Observation
		want bool
	}{
		{window("psi", "fraud-v2", "amount", "", 0, 1), true},
		{window("psi", "fraud", "geo_country", "region=eu", 0, 1), true},
		{window("psi", "churn", "amount", "", 0, 1), true},
		{window("psi", "churn-v2", "amount", "", 0, 1), false},
		{window("psi", "fraud", "age", "", 0, 1), false},
		{window("psi", "fraud", "amount", "device=ios", 0, 1), false},
		{window("kl", "fraud", "amount", "", 0, 1), false},
		{window("latency_p99", "anything", "", "", 0, 1), true},
		{window("latency_p99", "anything", "", "region=eu", 0, 1), false}, // default segments: whole traffic only
		{window("latency_p99", "anything", "x", "", 0, 1), false},
	} {
		if got := e.Wants(tc.o); got != tc.want {
			t.Errorf("Wants(%s %s %s %q) = %v, want %v", tc.o.Metric, tc.o.Model, tc.o.Feature, tc.o.Segment, got, tc.want)
		}
		ns := e.Observe([]Observation{tc.o}, farAway)
		if (len(ns) == 1) != tc.want {
			t.Errorf("Observe(%s %s %s %q) gave %d notifications", tc.o.Metric, tc.o.Model, tc.o.Feature, tc.o.Segment, len(ns))
		}
	}
	// Each (model, feature, segment) is its own series.
	if got := len(e.States()); got != 4 {
		t.Errorf("%d series, want 4", got)
	}
}

func TestDelay(t *testing.T) {
	cfg := rulesConfig(t, "  - name: LowRecall\n    metric: recall\n    condition: {below: 0.8}\n    delay: 1h\n")
	e := NewEvaluator(cfg, nil, nil)
	if e.MaxDelay() != time.Hour {
		t.Errorf("MaxDelay %v", e.MaxDelay())
	}
	o := window("recall", "fraud", "", "", 0, 0.5)
	if ns := e.Observe([]Observation{o}, o.WindowEnd.Add(59*time.Minute)); len(ns) != 0 {
		t.Fatalf("evaluated a window before its delay: %+v", ns)
	}
	if len(e.States()) != 0 || len(e.Changed()) != 0 {
		t.Fatal("a window not yet due changed the state")
	}
	ns := e.Observe([]Observation{o}, o.WindowEnd.Add(time.Hour))
	if len(ns) != 1 || ns[0].Alert.Status != StatusFiring {
		t.Fatalf("the due window did not fire: %+v", ns)
	}
}

func TestNoData(t *testing.T) {
	cfg := rulesConfig(t, "  - name: Silent\n    metric: event_count\n    models: [\"fraud*\"]\n    no_data: 10m\n    severity: critical\n")
	e := NewEvaluator(cfg, nil, nil)
	seen := t0.Add(time.Hour)
	check := func(lastSeen map[string]time.Time, now time.Time, want ...string) []Notification {
		t.Helper()
		ns := e.NoData(lastSeen, now)
		var got []string
		for _, n := range ns {
			got = append(got, n.Alert.Model+":"+n.Alert.Status)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("NoData at %v: %v, want %v", now.Sub(seen), got, want)
		}
		return ns
	}
	models := map[string]time.Time{"fraud": seen, "churn": seen.Add(-time.Hour), "fraud-idle": {}}
	check(models, seen.Add(10*time.Minute))
	fired := check(models, seen.Add(11*time.Minute), "fraud:firing")
	check(models, seen.Add(20*time.Minute)) // still firing: no repeat
	a := fired[0].Alert
	if !a.StartsAt.Equal(seen.Add(10*time.Minute)) || a.Labels["severity"] != "critical" || a.Window != "10m" || a.Value != 660 || a.Threshold != 600 {
		t.Errorf("no_data alert: %+v", a)
	}
	if want := "fraud: no events since 2025-03-01T01:00:00Z (no_data 10m)"; a.Annotations["summary"] != want {
		t.Errorf("summary %q, want %q", a.Annotations["summary"], want)
	}

	// Restart while firing: no re-fire.
	e = NewEvaluator(cfg, e.States(), nil)
	check(models, seen.Add(30*time.Minute))

	back := seen.Add(40 * time.Minute)
	models["fraud"] = back
	resolved := check(models, back.Add(time.Minute), "fraud:resolved")
	r := resolved[0]
	if r.Alert.Fingerprint != a.Fingerprint || !r.Alert.StartsAt.Equal(a.StartsAt) || !r.Alert.EndsAt.Equal(back) {
		t.Errorf("resolved %+v does not match firing %+v", r.Alert, a)
	}
	if r.ID == fired[0].ID {
		t.Error("firing and resolved share an ID")
	}
	check(models, back.Add(2*time.Minute))

	// Silent again: a new episode with a new ID.
	again := check(models, back.Add(11*time.Minute), "fraud:firing")
	if again[0].ID == fired[0].ID {
		t.Error("a new episode reuses the ID of the previous one")
	}
}

func TestFingerprintsAndIDs(t *testing.T) {
	cfg := rulesConfig(t, "  - name: R\n    metric: psi\n    segments: ['*']\n    condition: {above: 0.2}\n  - name: S\n    metric: psi\n    condition: {above: 0.2}\n")
	run := func() []Notification {
		e := NewEvaluator(cfg, nil, nil)
		return e.Observe([]Observation{
			window("psi", "m", "a", "", 0, 0.5),
			window("psi", "m", "a", "", 1, 0.1),
			window("psi", "m", "a", "region=eu", 0, 0.5),
			window("psi", "m", "b", "", 0, 0.5),
		}, farAway)
	}
	first, second := run(), run()
	if len(first) != 7 {
		t.Fatalf("%d notifications, want 7", len(first))
	}
	fps := map[string]string{}
	ids := map[string]bool{}
	for i, n := range first {
		m := second[i]
		if n.ID != m.ID || n.Alert.Fingerprint != m.Alert.Fingerprint {
			t.Errorf("run 2 differs: %s/%s vs %s/%s", n.ID, n.Alert.Fingerprint, m.ID, m.Alert.Fingerprint)
		}
		if len(n.ID) != 64 {
			t.Errorf("ID %q is not a hex SHA-256", n.ID)
		}
		if ids[n.ID] {
			t.Errorf("ID %s repeats", n.ID)
		}
		ids[n.ID] = true
		key := n.Alert.Labels["alertname"] + "/" + n.Alert.Feature + "/" + n.Alert.Segment
		if fp, ok := fps[key]; ok && fp != n.Alert.Fingerprint {
			t.Errorf("series %s has fingerprints %s and %s", key, fp, n.Alert.Fingerprint)
		}
		fps[key] = n.Alert.Fingerprint
	}
	distinct := map[string]bool{}
	for _, fp := range fps {
		distinct[fp] = true
	}
	if len(distinct) != len(fps) || len(fps) != 5 {
		t.Errorf("%d series with %d distinct fingerprints, want 5: %v", len(fps), len(distinct), fps)
	}
}

func TestRestartDoesNotRefire(t *testing.T) {
	cfg := rulesConfig(t, "  - name: R\n    metric: psi\n    condition: {above: 0.2}\n    for: 3\n")
	obs := func(from, to int, v float64) []Observation {
		var out []Observation
		for i := from; i <= to; i++ {
			out = append(out, window("psi", "fraud", "amount", "", i, v))
		}
		return out
	}

	e := NewEvaluator(cfg, nil, nil)
	ns := e.Observe(obs(1, 5, 0.5), farAway)
	if len(ns) != 1 || ns[0].Alert.Status != StatusFiring || !ns[0].Alert.StartsAt.Equal(windowEnd(1)) {
		t.Fatalf("first run: %+v", ns)
	}
	firingID := ns[0].ID
	saved := e.States()
	if len(saved) != 1 || saved[0].Status != StatusFiring || saved[0].Consecutive != 5 || !saved[0].LastWindow.Equal(t0.Add(5*step)) {
		t.Fatalf("saved state %+v", saved)
	}

	e = NewEvaluator(cfg, saved, nil)
	if ns := e.Observe(obs(1, 5, 0.5), farAway); len(ns) != 0 {
		t.Fatalf("re-observing old windows after a restart notified: %+v", ns)
	}
	if ns := e.Observe(obs(1, 5, 0.0), farAway); len(ns) != 0 {
		t.Fatalf("old windows with other values resolved after a restart: %+v", ns)
	}
	ns = e.Observe(obs(6, 6, 0.1), farAway)
	if len(ns) != 1 || ns[0].Alert.Status != StatusResolved || !ns[0].Alert.EndsAt.Equal(windowEnd(6)) ||
		!ns[0].Alert.StartsAt.Equal(windowEnd(1)) {
		t.Fatalf("window 6 did not resolve: %+v", ns)
	}

	// A crash after sending the firing notification but before persisting
	// the states: the re-run from the older states sends it again with the
	// same ID, for the caller to drop.
	e = NewEvaluator(cfg, nil, nil)
	e.Observe(obs(1, 2, 0.5), farAway)
	older := e.Changed()
	e = NewEvaluator(cfg, older, nil)
	ns = e.Observe(obs(1, 5, 0.5), farAway)
	if len(ns) != 1 || ns[0].ID != firingID {
		t.Fatalf("re-run after a crash: %+v, want the firing notification with ID %s", ns, firingID)
	}
}

func TestChangedAndStates(t *testing.T) {
	cfg := rulesConfig(t, "  - name: R\n    metric: psi\n    condition: {above: 0.2}\n    for: 2\n")
	clock := t0.Add(7 * time.Hour)
	e := NewEvaluator(cfg, nil, func() time.Time { return clock })
	e.Observe([]Observation{window("psi", "a", "f", "", 0, 0.5), window("psi", "b", "f", "", 0, 0.1)}, farAway)
	ch := e.Changed()
	if len(ch) != 2 {
		t.Fatalf("Changed: %d states, want 2", len(ch))
	}
	for _, st := range ch {
		if !st.UpdatedAt.Equal(clock) || st.Rule != "R" || st.Metric != "psi" || st.Feature != "f" || st.Fingerprint == "" {
			t.Errorf("state %+v", st)
		}
		switch st.Model {
		case "a":
			if st.Status != StatusPending || st.Consecutive != 1 || st.Value != 0.5 || st.Previous != 0.5 || !st.StartsAt.Equal(windowEnd(0)) {
				t.Errorf("pending state %+v", st)
			}
		case "b":
			if st.Status != StatusInactive || st.Consecutive != 0 || !st.StartsAt.IsZero() {
				t.Errorf("inactive state %+v", st)
			}
		}
	}
	if len(e.Changed()) != 0 {
		t.Error("Changed did not forget")
	}
	e.Observe([]Observation{window("psi", "a", "f", "", 0, 0.5), window("psi", "c", "f", "", 0, nan)}, farAway)
	if n := len(e.Changed()); n != 0 {
		t.Errorf("an old window and a NaN window changed %d states", n)
	}
	e.Observe([]Observation{window("psi", "a", "f", "", 1, 0.5)}, farAway)
	if ch := e.Changed(); len(ch) != 1 || ch[0].Model != "a" || ch[0].Status != StatusFiring {
		t.Errorf("Changed after firing: %+v", ch)
	}
	if n := len(e.States()); n != 2 {
		t.Errorf("States: %d, want 2", n)
	}
}

func TestRestoredStates(t *testing.T) {
	cfg := rulesConfig(t, "  - name: R\n    metric: psi\n    models: [fraud]\n    condition: {above: 0.2}\n")
	keep := SeriesState{Rule: "R", Metric: "psi", Model: "fraud", Feature: "f", Status: StatusFiring, Consecutive: 1,
		LastWindow: t0, StartsAt: windowEnd(0), Previous: 0.5, UpdatedAt: t0.Add(time.Minute)}
	stale := keep
	stale.Status, stale.UpdatedAt = StatusInactive, t0
	restored := []SeriesState{
		keep,
		stale, // an older row of the same series, as an unmerged ReplacingMergeTree returns it
		{Rule: "Gone", Metric: "psi", Model: "fraud", Feature: "f", Status: StatusFiring},
		{Rule: "R", Metric: "kl", Model: "fraud", Feature: "f", Status: StatusFiring},
		{Rule: "R", Metric: "psi", Model: "churn", Feature: "f", Status: StatusFiring},
	}
	e := NewEvaluator(cfg, restored, nil)
	states := e.States()
	if len(states) != 1 || states[0].Status != StatusFiring || states[0].Fingerprint == "" {
		t.Fatalf("restored %+v, want the newest state of the one covered series", states)
	}
	ns := e.Observe([]Observation{window("psi", "fraud", "f", "", 1, 0.1)}, farAway)
	if len(ns) != 1 || ns[0].Alert.Status != StatusResolved || ns[0].Alert.Fingerprint != states[0].Fingerprint {
		t.Fatalf("restored firing series did not resolve: %+v", ns)
	}
}

func TestNewEvaluatorNeedsValidate(t *testing.T) {
	cfg, err := Load(strings.NewReader(validBase))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "Validate") {
			t.Errorf("panic %v, want one naming Validate", r)
		}
	}()
	NewEvaluator(cfg, nil, nil)
}
