package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

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
