package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/sinks/clickhouse"
	"github.com/vigil-ml/vigil/sinks/webhook"
)

// demoRules are the demo's alert rules: an input-drift rule and a
// performance rule, each to a signed webhook and an Alertmanager-format
// receiver served by the demo itself. %[1]s is the receiver's base URL.
const demoRules = `receivers:
  - name: local-webhook
    type: webhook
    url: %[1]s/webhook
    secret: env:VIGIL_DEMO_WEBHOOK_SECRET
  - name: local-alertmanager
    type: alertmanager
    url: %[1]s/alertmanager
rules:
  - name: AmountDrift
    metric: psi
    models: [fraud-demo]
    features: [amount]
    condition: {above: 0.2}
    for: 2
    severity: warning
    annotations:
      summary: '{{.Model}}: PSI of {{.Feature}} {{printf "%%.2f" .Value}} (rule: > {{.Threshold}} for 2 windows)'
    receivers: [local-webhook, local-alertmanager]
  - name: PrecisionDrop
    metric: precision
    models: [fraud-demo]
    condition: {below: 0.5}
    for: 2
    severity: critical
    annotations:
      summary: '{{.Model}}: precision {{printf "%%.2f" .Value}} (rule: < {{.Threshold}} for 2 windows)'
    receivers: [local-webhook, local-alertmanager]
`

// demoReceiver is the local webhook receiver of the demo: it verifies each
// signed notification and prints what it receives.
type demoReceiver struct {
	mu     sync.Mutex
	out    io.Writer
	secret string
	n      int
}

func (d *demoReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	switch r.URL.Path {
	case "/webhook":
		verified := "signature OK"
		if err := webhook.Verify(d.secret, r.Header.Get("X-Vigil-Timestamp"), r.Header.Get("X-Vigil-Signature"), body, time.Now(), 5*time.Minute); err != nil {
			verified = "SIGNATURE REJECTED: " + err.Error()
		}
		var msg struct {
			Alerts []webhook.Alert `json:"alerts"`
		}
		_ = json.Unmarshal(body, &msg)
		for _, a := range msg.Alerts {
			at := a.StartsAt
			if a.Status == webhook.StatusResolved {
				at = a.EndsAt
			}
			fmt.Fprintf(d.out, "  webhook       %-8s %-13s at %s  %s  [%s]\n", strings.ToUpper(a.Status), a.Labels["alertname"],
				at.UTC().Format("15:04:05"), a.Annotations["summary"], verified)
		}
	case "/alertmanager":
		var msg webhook.AlertmanagerMessage
		_ = json.Unmarshal(body, &msg)
		var names []string
		for _, a := range msg.Alerts {
			names = append(names, a.Labels["alertname"]+"/"+a.Status)
		}
		sort.Strings(names)
		fmt.Fprintf(d.out, "  alertmanager  version %s, status %s, alerts %s\n", msg.Version, msg.Status, strings.Join(names, ", "))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// runDemoAlerts evaluates the demo's rules window by window, as `vigil
// process --alert-rules` does when each window closes, against a receiver
// served here, and prints the notifications it receives.
func runDemoAlerts(ctx context.Context, out io.Writer, sink *clickhouse.Sink, cfg Config, log zerolog.Logger, start time.Time, windows int, version string) error {
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
	cfg.Alerts.Rules = rulesPath
	j, err := newAlertJob(sink, cfg, log)
	if err != nil {
		return err
	}
	j.demoVersion = version
	if err := j.prepare(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nAlerts: rules AmountDrift (PSI of amount > 0.2 for 2 windows) and PrecisionDrop (precision < 0.5 for 2 windows),\n"+
		"evaluated as each window closes; notifications received by the demo's local webhook receiver at %s:\n\n", ln.Addr())
	size := cfg.Window.Size
	for k := 0; k < windows; k++ {
		now := start.Add(time.Duration(k+1) * size).Add(j.grace)
		if _, err := j.runOnce(ctx, now); err != nil {
			return err
		}
		// Deliver before the next window, so that the output is in order.
		if err := waitFor(ctx, func() bool {
			p, err := sink.Outbox().Pending(ctx)
			return err == nil && len(p) == 0 && j.disp.Stats().Queued == 0
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
		recv.n, cfg.ClickHouse.Database, cfg.ClickHouse.Database)
	return nil
}
