package alerting_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
	"github.com/vigil-ml/vigil/sinks/webhook"
)

// alertReceiver is the local HTTP receiver of the alert tests: it answers
// 500 to the first `failures` requests, checks every signed request's HMAC
// and keeps what it accepted.
type alertReceiver struct {
	t        *testing.T
	mu       sync.Mutex
	failures int
	signed   []webhook.Alert // from the signed webhook, in order
	am       []webhook.AlertmanagerMessage
	requests int
}

func (r *alertReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if r.failures > 0 {
		r.failures--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	switch req.URL.Path {
	case "/signed":
		if err := webhook.Verify("s3cret", req.Header.Get("X-Vigil-Timestamp"), req.Header.Get("X-Vigil-Signature"), body, time.Now(), time.Minute); err != nil {
			r.t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var msg struct {
			Version string          `json:"version"`
			Alerts  []webhook.Alert `json:"alerts"`
		}
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&msg); err != nil {
			r.t.Errorf("signed body %s: %v", body, err)
		}
		r.signed = append(r.signed, msg.Alerts...)
	case "/am":
		var msg webhook.AlertmanagerMessage
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&msg); err != nil {
			r.t.Errorf("alertmanager body %s: %v", body, err)
		}
		r.am = append(r.am, msg)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (r *alertReceiver) statuses() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.signed {
		out = append(out, a.Labels["alertname"]+":"+a.Status)
	}
	return strings.Join(out, " ")
}

const alertTestRules = `
receivers:
  - name: hook
    type: webhook
    url: %[1]s/signed
    secret: env:VIGIL_TEST_HMAC
  - name: am
    type: alertmanager
    url: %[1]s/am
rules:
  - name: AmountDrift
    metric: psi
    models: ["fraud*"]
    features: [amount]
    condition: {above: 0.2}
    for: 2
    severity: critical
    annotations:
      summary: '{{.Model}} {{.Feature}} psi {{printf "%%.2f" .Value}}'
    receivers: [hook, am]
  - name: LowAccuracy
    metric: accuracy
    condition: {below: 0.7}
    for: 1
    receivers: [hook]
`

// The alert job against the real ClickHouse and a local receiver: a rule
// fires after its N windows and not before, resolves when the condition
// clears, survives a restart without sending twice, and retries a receiver
// that answers 500 until it accepts.
func TestIntegrationAlertJob(t *testing.T) {
	sink, db := testsink.Start(t, "vigil_alerts")
	ctx := context.Background()
	recv := &alertReceiver{t: t, failures: 2}
	rules := serve(t, recv, alertTestRules)
	// psi of amount per window: holds in windows 2, 3, 4; accuracy below 0.7 in window 6.
	psi := []float64{0.05, 0.3, 0.35, 0.4, 0.1, 0.1, 0.1}
	acc := []float64{0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range psi {
		ws := base.Add(time.Duration(i) * time.Minute)
		insert(t, sink, fmt.Sprintf(`INSERT INTO %s.vigil_drift (model, model_version, segment, window_start, window_end, feature, n_cur, psi, computed_at)
SELECT 'fraud', 'v1', '', '%s', '%s', 'amount', 100, %v, now()`, db, chTime(ws), chTime(ws.Add(time.Minute)), psi[i]))
		insert(t, sink, fmt.Sprintf(`INSERT INTO %s.vigil_performance (model, model_version, segment, window_start, window_end, labeled, accuracy, version)
SELECT 'fraud', 'v1', '', '%s', '%s', 100, %v, 1`, db, chTime(ws), chTime(ws.Add(time.Minute)), acc[i]))
	}

	var disp *webhook.Dispatcher
	newJob := func() *alerting.Runner {
		t.Helper()
		var j *alerting.Runner
		// Fast retries for the test receiver.
		j, disp = newRunner(t, sink, rules, webhook.DispatcherConfig{BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, MaxAttempts: 5})
		if err := j.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return j
	}
	// evaluateThrough runs the job as it would run once window i closed.
	evaluateThrough := func(j *alerting.Runner, i int) {
		t.Helper()
		now := base.Add(time.Duration(i+1) * time.Minute).Add(j.Grace())
		if _, err := j.RunOnce(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	settle := func(*alerting.Runner) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for disp.Stats().Queued > 0 || inFlight(ctx, t, sink) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("deliveries still pending: %+v", disp.Stats())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	j := newJob()
	evaluateThrough(j, 0)
	evaluateThrough(j, 1) // psi holds once: pending, nothing sent
	settle(j)
	if got := recv.statuses(); got != "" {
		t.Fatalf("after one holding window: %q, want nothing", got)
	}
	evaluateThrough(j, 2) // twice: fires (the receiver fails twice first)
	settle(j)
	if got := recv.statuses(); got != "AmountDrift:firing" {
		t.Fatalf("after two holding windows: %q, want AmountDrift:firing", got)
	}
	if st := disp.Stats(); st.Retried < 2 {
		t.Errorf("retries %d, want >= 2 (the receiver answered 500 twice)", st.Retried)
	}
	// A crash after the notification but before the state: the restored
	// evaluator produces the same notification, which the outbox skips.
	if err := j.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	insert(t, sink, fmt.Sprintf(`INSERT INTO %s.vigil_alerts (rule, fingerprint, model, metric, feature, segment, status, consecutive, last_window, previous, starts_at, value, threshold, updated_at, version)
SELECT rule, fingerprint, model, metric, feature, segment, 'pending', 1, '%s', previous, starts_at, value, threshold, updated_at, toUInt64(version + 1)
FROM %s.vigil_alerts FINAL WHERE rule = 'AmountDrift'`, db, chTime(base.Add(time.Minute)), db))
	j = newJob()
	evaluateThrough(j, 2)
	evaluateThrough(j, 3) // still firing: nothing new
	settle(j)
	if got := recv.statuses(); got != "AmountDrift:firing" {
		t.Fatalf("after the restart: %q, want the single firing notification", got)
	}
	evaluateThrough(j, 4) // clears: resolved
	evaluateThrough(j, 5)
	evaluateThrough(j, 6) // accuracy 0.5 < 0.7 with for: 1
	settle(j)
	if got := recv.statuses(); got != "AmountDrift:firing AmountDrift:resolved LowAccuracy:firing" {
		t.Fatalf("at the end: %q", got)
	}
	if err := j.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	recv.mu.Lock()
	defer recv.mu.Unlock()
	fired := recv.signed[0]
	if fired.Model != "fraud" || fired.Feature != "amount" || fired.Value != 0.35 || fired.Threshold != 0.2 ||
		fired.Annotations["summary"] != "fraud amount psi 0.35" || !fired.StartsAt.Equal(base.Add(2*time.Minute)) || fired.SQL == "" {
		t.Errorf("firing alert = %+v", fired)
	}
	if err := sink.Conn().Exec(ctx, fired.SQL); err != nil {
		t.Errorf("the alert's SQL does not run: %v\n%s", err, fired.SQL)
	}
	if resolved := recv.signed[1]; !resolved.EndsAt.Equal(base.Add(5*time.Minute)) || resolved.Fingerprint != fired.Fingerprint {
		t.Errorf("resolved alert = %+v", resolved)
	}
	if len(recv.am) != 2 || recv.am[0].Version != "4" || recv.am[0].Status != "firing" || recv.am[1].Status != "resolved" ||
		recv.am[0].Alerts[0].Labels["alertname"] != "AmountDrift" || recv.am[0].Alerts[0].Fingerprint == "" {
		t.Errorf("alertmanager messages = %+v", recv.am)
	}
	// Every notification is recorded: 2 to am, 3 to hook, all delivered.
	var delivered, total uint64
	if err := sink.Conn().QueryRow(ctx, fmt.Sprintf(`SELECT countIf(st = 'delivered'), count() FROM
(SELECT id, receiver, argMax(state, version) AS st FROM %s.vigil_notifications GROUP BY id, receiver)`, db)).Scan(&delivered, &total); err != nil {
		t.Fatal(err)
	}
	if delivered != 5 || total != 5 {
		t.Errorf("notifications recorded: %d delivered of %d, want 5 of 5", delivered, total)
	}
}

// serve serves recv for the test and writes the rules file rulesFormat
// (%[1]s: the receiver's URL; the webhook's HMAC key is VIGIL_TEST_HMAC);
// it returns the file's path.
func serve(t *testing.T, recv *alertReceiver, rulesFormat string) string {
	t.Helper()
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	t.Setenv("VIGIL_TEST_HMAC", "s3cret")
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(fmt.Sprintf(rulesFormat, srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	return rules
}

// grace is the alert runner's grace with vigil's default config:
// allowed lateness + checkpoint interval + drift and performance intervals +
// 5s (app.Config.Grace).
const grace = 30*time.Second + pipeline.DefaultCheckpointInterval + time.Minute + 30*time.Second + 5*time.Second

// newRunner builds the runner of a rules file over the sink of a test, as
// internal/app does, with a dispatcher configured by dc (its Outbox is the
// sink's).
func newRunner(t *testing.T, sink *clickhouse.Sink, rulesPath string, dc webhook.DispatcherConfig) (*alerting.Runner, *webhook.Dispatcher) {
	t.Helper()
	rules, err := alerting.LoadRules(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := webhook.FromConfig(rules.ReceiverConfigs)
	if err != nil {
		t.Fatal(err)
	}
	dc.Outbox = sink.Outbox()
	disp, err := webhook.NewDispatcher(dc, zerolog.Nop(), rs...)
	if err != nil {
		t.Fatal(err)
	}
	return alerting.NewRunner(rules, sink.Alerts(), sink.References(), sink.Outbox(), disp, alerting.RunnerConfig{Window: time.Minute, Grace: grace, Interval: 15 * time.Second}, zerolog.Nop()), disp
}

// inFlight counts notifications not delivered yet.
func inFlight(ctx context.Context, t *testing.T, sink *clickhouse.Sink) int {
	t.Helper()
	p, err := sink.Outbox().Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return len(p)
}

func insert(t *testing.T, sink *clickhouse.Sink, q string) {
	t.Helper()
	if err := sink.Conn().Exec(context.Background(), q); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
}

func chTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// A model that stops sending events alerts on the timer, from its newest
// stored window, and resolves when events come back.
func TestIntegrationAlertNoData(t *testing.T) {
	sink, db := testsink.Start(t, "vigil_nodata")
	ctx := context.Background()
	recv := &alertReceiver{t: t}
	rules := serve(t, recv, `
receivers:
  - {name: hook, type: webhook, url: %s/signed, secret: env:VIGIL_TEST_HMAC}
rules:
  - {name: Silent, metric: event_count, models: ["*"], no_data: 5m, receivers: [hook]}
`)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	window := func(i int) {
		ws := base.Add(time.Duration(i) * time.Minute)
		insert(t, sink, fmt.Sprintf(`INSERT INTO %s.vigil_model_windows (model, model_version, segment, window_start, topic, kafka_partition, window_end, events, last_offset)
SELECT 'quiet', 'v1', '', '%s', 't', 0, '%s', 10, 1`, db, chTime(ws), chTime(ws.Add(time.Minute))))
	}
	window(0)
	window(1)
	j, _ := newRunner(t, sink, rules, webhook.DispatcherConfig{})
	if err := j.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	run := func(at time.Time, want string) {
		t.Helper()
		if _, err := j.RunOnce(ctx, at); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for recv.statuses() != want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := recv.statuses(); got != want {
			t.Fatalf("at %s: %q, want %q", at.Format("15:04"), got, want)
		}
	}
	run(base.Add(6*time.Minute), "")              // silent for 4 minutes
	run(base.Add(8*time.Minute), "Silent:firing") // for 6
	run(base.Add(9*time.Minute), "Silent:firing") // still: no repeat
	window(8)                                     // events again
	run(base.Add(10*time.Minute), "Silent:firing Silent:resolved")
	if err := j.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if a := recv.signed[0]; a.Model != "quiet" || !a.StartsAt.Equal(base.Add(7*time.Minute)) {
		t.Errorf("no-data alert = %+v", a)
	}
}

// A notification already sent is not sent again when a later evaluation
// (after a crash, say) groups it with another one.
func TestIntegrationAlertRegrouped(t *testing.T) {
	sink, _ := testsink.Start(t, "vigil_regroup")
	ctx := context.Background()
	recv := &alertReceiver{t: t}
	rules := serve(t, recv, alertTestRules)
	j, _ := newRunner(t, sink, rules, webhook.DispatcherConfig{})
	if err := j.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	note := func(rule, fp string) alerting.Notification {
		id := rule + "-" + fp
		return alerting.Notification{ID: id, Receivers: []string{"hook"}, Alert: webhook.Alert{ID: id, Fingerprint: fp,
			Status: webhook.StatusFiring, Labels: map[string]string{"alertname": rule}, Model: "m", Metric: "psi"}}
	}
	a, b := note("A", "fa"), note("B", "fb")
	for _, group := range [][]alerting.Notification{{a}, {a, b}, {b, a}} {
		if _, err := j.Send(ctx, group); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for recv.statuses() != "A:firing B:firing" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := j.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := recv.statuses(); got != "A:firing B:firing" {
		t.Errorf("received %q, want each notification once", got)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.signed[0].ID != "A-fa" {
		t.Errorf("the alert's id is %q in the body", recv.signed[0].ID)
	}
}
