package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/app"
	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// runAlerts evaluates the demo's rules window by window, as `vigil process
// --alert-rules` does when each window closes, against a receiver served
// here, and prints the notifications it receives.
//
// The runner is the production one, given what a demo run needs through its
// ports: it evaluates the run's model version alone from a fresh state
// (runStore), and the notification and delivery ids are salted
// with the version (saltedOutbox, saltedDispatcher), so that demo runs
// minutes apart, whose simulated windows overlap, do not see each other's
// windows, states or notifications.
func runAlerts(ctx context.Context, out io.Writer, sink *clickhouse.Sink, cfg app.Config, log zerolog.Logger, start time.Time, windows int, version string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the demo's webhook receiver: %w", err)
	}
	const secret = "demo-secret"
	recv := &demoReceiver{out: out, secret: secret}
	srv := &http.Server{Handler: recv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	dir, err := os.MkdirTemp("", "vigil-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(fmt.Sprintf(demoRules, "http://"+ln.Addr().String())), 0o600); err != nil {
		return err
	}
	if err := os.Setenv("VIGIL_DEMO_WEBHOOK_SECRET", secret); err != nil {
		return err
	}
	rules, err := alerting.LoadRules(rulesPath)
	if err != nil {
		return err
	}
	disp, err := app.NewAlertDispatcher(sink, rules, log)
	if err != nil {
		return err
	}
	grace := cfg.Grace()
	j := alerting.NewRunner(rules, runStore{sink.Alerts(), version}, sink.References(), saltedOutbox{sink.Outbox(), version}, saltedDispatcher{app.Dispatcher{Dispatcher: disp, Log: log}, version},
		alerting.RunnerConfig{Window: cfg.Processor.Window.Size, Grace: grace, Interval: cfg.Alerts.Interval}, log)
	if err := j.Prepare(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nAlerts: rules AmountDrift (PSI of amount > 0.2 for 2 windows) and PrecisionDrop (precision < 0.5 for 2 windows),\n"+
		"evaluated as each window closes; notifications received by the demo's local webhook receiver at %s:\n\n", ln.Addr())
	size := cfg.Processor.Window.Size
	for k := 0; k < windows; k++ {
		now := start.Add(time.Duration(k+1) * size).Add(grace)
		if _, err := j.RunOnce(ctx, now); err != nil {
			return err
		}
		// Deliver before the next window, so that the output is in order.
		if err := waitFor(ctx, func() bool {
			p, err := sink.Outbox().Pending(ctx)
			return err == nil && len(p) == 0 && disp.Stats().Queued == 0
		}); err != nil {
			return fmt.Errorf("deliver demo notifications: %w", err)
		}
	}
	if err := j.Shutdown(ctx); err != nil {
		return err
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	fmt.Fprintf(out, "\n%d notifications received; every one is recorded in %s.vigil_notifications and the alert states in %s.vigil_alerts.\n",
		recv.n, sink.Database(), sink.Database())
	return nil
}

// runStore is the sink as the demo run's alert store: the metrics of the
// run's model version only, and a fresh state instead of the stored one (of
// earlier runs).
type runStore struct {
	*clickhouse.AlertStore
	version string
}

func (s runStore) RecentMetrics(ctx context.Context, window time.Duration, from, to time.Time, sources map[string]bool, _ string) ([]alerting.Observation, error) {
	return s.AlertStore.RecentMetrics(ctx, window, from, to, sources, s.version)
}

func (runStore) LoadAlertStates(context.Context) ([]alerting.SeriesState, error) { return nil, nil }

// salt derives a run's id from a notification or delivery id.
func salt(version, id string) string {
	sum := sha256.Sum256([]byte(version + "\x00" + id))
	return hex.EncodeToString(sum[:])
}

// saltedOutbox asks the outbox about the run's salted notification ids.
type saltedOutbox struct {
	alerting.Outbox
	version string
}

func (o saltedOutbox) Known(ctx context.Context, receiver string, ids []string) (map[string]bool, error) {
	salted := make([]string, len(ids))
	for i, id := range ids {
		salted[i] = salt(o.version, id)
	}
	known, err := o.Outbox.Known(ctx, receiver, salted)
	out := make(map[string]bool, len(known))
	for i, id := range ids {
		if known[salted[i]] {
			out[id] = true
		}
	}
	return out, err
}

// saltedDispatcher sends the run's notifications under salted ids.
type saltedDispatcher struct {
	app.Dispatcher
	version string
}

func (d saltedDispatcher) EnqueueID(ctx context.Context, id, receiver string, alerts []alerting.Alert) error {
	own := make([]alerting.Alert, len(alerts))
	for i, a := range alerts {
		a.ID = salt(d.version, a.ID)
		own[i] = a
	}
	return d.Dispatcher.EnqueueID(ctx, salt(d.version, id), receiver, own)
}
