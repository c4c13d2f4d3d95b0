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
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/lifecycle"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/sinks/webhook"
)

// countingReceiver counts every alert id it accepts. It is slow (so that
// deliveries are in flight when a generation ends) and refuses every third
// request (so that retries and redeliveries are in flight too).
type countingReceiver struct {
	mu       sync.Mutex
	byID     map[string]int
	requests int
}

func (r *countingReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	time.Sleep(150 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if r.requests%3 == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var msg struct {
		Alerts []webhook.Alert `json:"alerts"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	for _, a := range msg.Alerts {
		r.byID[a.ID]++
	}
}

func (r *countingReceiver) counts() (ids, twice, total, requests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	requests = r.requests
	for _, n := range r.byID {
		ids++
		total += n
		if n > 1 {
			twice++
		}
	}
	return ids, twice, total, requests
}

const fencedRules = `
receivers:
  - name: hook
    type: webhook
    url: %s
    secret: env:VIGIL_TEST_HMAC
rules:
  - name: Drift
    metric: psi
    features: [amount]
    condition: {above: 0.2}
    for: 1
    receivers: [hook]
`

// alertMember is one process of the group: a processor, and the alert
// runner that follows its leadership, fenced, with its dispatcher.
type alertMember struct {
	name   string
	proc   *pipeline.Processor
	runner *alerting.Runner
	disp   *webhook.Dispatcher
	loop   *lifecycle.Periodic
}

// Two (then three) members of a processor group on the real Kafka, each
// with the alert runner, against the real ClickHouse and a local receiver,
// while alerts fire and resolve every window: a member joins, another joins,
// the leader leaves. The receiver gets every notification id exactly once,
// and every transition the windows made.
func TestIntegrationFencedRebalance(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	sink, db := testsink.Start(t, "vigil_fenced")
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic, group := "vigil-fenced-"+suffix, "g-fenced-"+suffix
	if err := kafkatopic.Ensure(ctx, brokers, topic, 4); err != nil {
		t.Fatal(err)
	}
	recv := &countingReceiver{byID: map[string]int{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	t.Setenv("VIGIL_TEST_HMAC", "s3cret")
	rulesPath := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(fmt.Sprintf(fencedRules, srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := alerting.LoadRules(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	const (
		window  = 2 * time.Second
		timeout = time.Second
		models  = 4
	)
	takeover := 2*timeout + 500*time.Millisecond
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)

	start := func(name string) *alertMember {
		t.Helper()
		m := &alertMember{name: name}
		m.proc, err = pipeline.New(pipeline.Config{Brokers: brokers, Topic: topic, Group: group}, sink.Windows(), log)
		if err != nil {
			t.Fatal(err)
		}
		fence := alerting.NewFence(sink.Leases(), group, m.proc.Leadership, takeover, log)
		receivers, err := webhook.FromConfig(rules.ReceiverConfigs)
		if err != nil {
			t.Fatal(err)
		}
		m.disp, err = webhook.NewDispatcher(webhook.DispatcherConfig{Outbox: sink.Outbox(), Fence: fence, Timeout: timeout,
			MaxAttempts: 2, BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
			RedeliverBase: 200 * time.Millisecond, RedeliverMax: 500 * time.Millisecond}, log, receivers...)
		if err != nil {
			t.Fatal(err)
		}
		m.runner = alerting.NewRunner(rules, sink.Alerts(), sink.References(), sink.Outbox(), m.disp, alerting.RunnerConfig{
			Window: window, Grace: 500 * time.Millisecond, Interval: 100 * time.Millisecond, Leader: m.proc.Leader, Fence: fence}, log)
		m.loop = lifecycle.NewPeriodic(100*time.Millisecond, m.runner.Pass, lifecycle.Immediately())
		for _, c := range []lifecycle.Component{m.proc, m.runner, m.loop} {
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	stop := func(m *alertMember) {
		t.Helper()
		for _, c := range []lifecycle.Component{m.loop, m.runner, m.proc} {
			if err := c.Shutdown(ctx); err != nil {
				t.Errorf("stop %s: %v", m.name, err)
			}
		}
	}
	waitFor := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %s waiting for %s", limit, what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The windows: one row per model every window, psi flipping above and
	// below the threshold, so that every window fires or resolves each
	// series. want counts the transitions.
	var (
		wantMu sync.Mutex
		want   int
		firing [models]bool
	)
	writeWindow := func(end time.Time, i int) {
		psi := make([]string, models)
		wantMu.Lock()
		for k := range models {
			high := (i+k)%2 == 0
			psi[k] = "0.05"
			if high {
				psi[k] = "0.3"
			}
			if high != firing[k] {
				want++
				firing[k] = high
			}
		}
		wantMu.Unlock()
		insert(t, sink, fmt.Sprintf(`INSERT INTO %s.vigil_drift (model, model_version, segment, window_start, window_end, feature, n_cur, psi, computed_at)
SELECT concat('m', toString(number)), 'v1', '', '%s', '%s', 'amount', 100, [%s][number + 1], now() FROM system.numbers LIMIT %d`,
			db, chTime(end.Add(-window)), chTime(end), joinComma(psi), models))
	}
	stopWriting := make(chan struct{})
	written := make(chan int)
	go func() {
		i := 0
		next := time.Now().Truncate(window).Add(window)
		for {
			select {
			case <-stopWriting:
				written <- i
				return
			case <-time.After(time.Until(next)):
			}
			writeWindow(next, i)
			i++
			next = next.Add(window)
		}
	}()

	a := start("a")
	waitFor("a to lead and notify", 30*time.Second, func() bool { ids, _, _, _ := recv.counts(); return a.proc.Leader() && ids >= models })
	b := start("b") // rebalance: b joins
	waitFor("a and b to share the partitions", 30*time.Second, func() bool {
		return a.proc.Partitions() > 0 && b.proc.Partitions() > 0 && a.proc.Partitions()+b.proc.Partitions() == 4
	})
	time.Sleep(2 * window)
	c := start("c") // rebalance: c joins
	waitFor("three members", 30*time.Second, func() bool {
		return a.proc.Partitions() > 0 && b.proc.Partitions() > 0 && c.proc.Partitions() > 0
	})
	time.Sleep(2 * window)
	members := []*alertMember{a, b, c}
	var leader *alertMember
	waitFor("one leader", 30*time.Second, func() bool {
		for _, m := range members {
			if m.proc.Leader() {
				leader = m
				return true
			}
		}
		return false
	})
	stop(leader) // rebalance: the leader leaves
	rest := members[:0]
	for _, m := range members {
		if m != leader {
			rest = append(rest, m)
		}
	}
	waitFor("a new leader", 30*time.Second, func() bool { return rest[0].proc.Leader() || rest[1].proc.Leader() })
	time.Sleep(3 * window)
	close(stopWriting)
	windows := <-written
	wantMu.Lock()
	wantIDs := want
	wantMu.Unlock()
	waitFor("every transition delivered", 60*time.Second, func() bool {
		ids, _, _, _ := recv.counts()
		return ids >= wantIDs && inFlight(ctx, t, sink) == 0
	})
	time.Sleep(time.Second) // anything sent twice arrives by now
	var fenced, redelivered int64
	for _, m := range rest {
		stop(m)
	}
	for _, m := range members {
		st := m.disp.Stats()
		fenced += st.Fenced
		redelivered += st.Redelivered
	}
	var epochs uint64
	if err := sink.Conn().QueryRow(ctx, "SELECT max(epoch) FROM "+db+".vigil_leases").Scan(&epochs); err != nil {
		t.Fatal(err)
	}
	ids, twice, total, requests := recv.counts()
	t.Logf("%d windows, %d transitions; receiver: %d ids, %d received twice, %d alerts in %d requests; %d lease epochs, %d fenced, %d redelivered",
		windows, wantIDs, ids, twice, total, requests, epochs, fenced, redelivered)
	if twice != 0 || total != ids {
		t.Errorf("%d notification ids reached the receiver more than once (%d alerts for %d ids)", twice, total, ids)
		rows, err := sink.Conn().Query(ctx, "SELECT id, receiver, state, alert_ids, toString(created_at), version FROM "+db+".vigil_notifications ORDER BY created_at, id, version")
		if err == nil {
			for rows.Next() {
				var id, rc, st, ca string
				var aids []string
				var v uint64
				_ = rows.Scan(&id, &rc, &st, &aids, &ca, &v)
				t.Logf("outbox %s %s %s %v %s %d", id, rc, st, aids, ca, v)
			}
			rows.Close()
		}
		recv.mu.Lock()
		for id, n := range recv.byID {
			if n > 1 {
				t.Logf("twice: %s", id)
			}
		}
		recv.mu.Unlock()
	}
	if ids != wantIDs {
		t.Errorf("receiver got %d notification ids, want the %d transitions", ids, wantIDs)
	}
	if epochs < 2 {
		t.Errorf("%d lease epochs, want >= 2 (the leader left)", epochs)
	}
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
