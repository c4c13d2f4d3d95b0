package webhook

import (
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/vigil-ml/vigil/processors/alerting"
)

// Alert statuses.
const (
	StatusFiring   = alerting.StatusFiring
	StatusResolved = alerting.StatusResolved
)

// Alert is the evaluator's alert (processors/alerting.Alert): receivers
// render it, the Dispatcher delivers it.
type Alert = alerting.Alert

func validateAlert(a Alert) error {
	if a.Status != StatusFiring && a.Status != StatusResolved {
		return fmt.Errorf("alert %s: status %q is neither %q nor %q: %w", a.Key(), a.Status, StatusFiring, StatusResolved, ErrInvalidAlert)
	}
	return nil
}

// cloneAlert deep-copies the alert so that the caller may reuse its maps.
func cloneAlert(a Alert) Alert {
	a.Labels = maps.Clone(a.Labels)
	a.Annotations = maps.Clone(a.Annotations)
	return a
}

// Receiver turns a group of alerts into one HTTP request. Encode does no I/O;
// the Dispatcher attaches the context and sends. Encode is called again for
// every attempt, so signatures and timestamps are fresh. Implementations are
// safe for concurrent use.
type Receiver interface {
	// Name is unique among the receivers of one Dispatcher.
	Name() string
	Encode(group []Alert) (req *http.Request, err error)
}

// onePerAlert is implemented by receivers whose API takes one alert per
// request (PagerDuty); the Dispatcher splits groups for them.
type onePerAlert interface {
	onePerAlert()
}

// groupStatus is "firing" when any alert of the group fires, as in Alertmanager.
func groupStatus(group []Alert) string {
	for _, a := range group {
		if a.Status == StatusFiring {
			return StatusFiring
		}
	}
	return StatusResolved
}

// describe is the one-line summary shared by Slack and PagerDuty:
// "fraud: psi of amount [region=eu] is 0.31 (threshold 0.2, window 1h)".
func describe(a Alert) string {
	var b strings.Builder
	b.WriteString(a.Model)
	b.WriteString(": ")
	b.WriteString(a.Metric)
	if a.Feature != "" {
		b.WriteString(" of ")
		b.WriteString(a.Feature)
	}
	if a.Segment != "" {
		b.WriteString(" [")
		b.WriteString(a.Segment)
		b.WriteString("]")
	}
	fmt.Fprintf(&b, " is %s (threshold %s", formatFloat(a.Value), formatFloat(a.Threshold))
	if a.Window != "" {
		b.WriteString(", window ")
		b.WriteString(a.Window)
	}
	b.WriteString(")")
	return b.String()
}

// GoString keeps %#v from printing a receiver's resolved secrets.
func (w SignedWebhook) GoString() string { return "&webhook.SignedWebhook{" + w.name + "}" }
func (r Alertmanager) GoString() string  { return "&webhook.Alertmanager{" + r.cfg.Name + "}" }
func (s Slack) GoString() string         { return "&webhook.Slack{" + s.name + "}" }
func (p PagerDuty) GoString() string     { return "&webhook.PagerDuty{" + p.cfg.Name + "}" }
