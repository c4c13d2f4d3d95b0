package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Alert states.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Alert is one alert instance, as the alert evaluator hands it to receivers.
type Alert struct {
	// Fingerprint identifies the alert series (one rule on one model, metric,
	// feature and segment) across evaluations, so that the firing and the
	// resolved notification of the same problem share it. Receivers use it to
	// deduplicate (Alertmanager fingerprint, PagerDuty dedup_key). When empty,
	// Key derives a stable one from the other identity fields.
	Fingerprint string `json:"fingerprint"`
	// ID identifies this notification: one transition (firing, or resolved)
	// of the series. The same transition has the same ID however often it
	// is sent, so receivers can deduplicate on it; the evaluator derives it
	// from the fingerprint, status and StartsAt. Optional.
	ID string `json:"id,omitempty"`
	// Status is StatusFiring or StatusResolved.
	Status string `json:"status"`
	// Labels identify the alert and drive routing (for example alertname,
	// severity, team). They should not change while the alert fires.
	Labels map[string]string `json:"labels"`
	// Annotations carry human-readable text (summary, description, runbook
	// URL); they may change between evaluations.
	Annotations map[string]string `json:"annotations"`
	// StartsAt is when the condition was first seen.
	StartsAt time.Time `json:"startsAt"`
	// EndsAt is when the condition was seen to end; zero while firing.
	EndsAt time.Time `json:"endsAt"`
	// Model is the monitored model's name.
	Model string `json:"model"`
	// Metric is what the rule evaluates: "psi", "null_rate", "score_mean"...
	Metric string `json:"metric"`
	// Feature is the feature the metric was computed on; empty for
	// model-level metrics (prediction score, latency).
	Feature string `json:"feature,omitempty"`
	// Segment is the segment as "key=value" (for example "region=eu");
	// empty for the whole traffic.
	Segment string `json:"segment,omitempty"`
	// Window is the evaluated window, for example "1h" or "5m".
	Window string `json:"window"`
	// Value is the metric's value in the window that triggered the rule.
	Value float64 `json:"value"`
	// Threshold is the rule's threshold that Value crossed.
	Threshold float64 `json:"threshold"`
	// SQL is a ClickHouse query that reproduces Value, for the person on call.
	SQL string `json:"sql,omitempty"`
}

// Key returns the Fingerprint, or when it is empty a hex SHA-256 over the
// labels, model, metric, feature and segment, stable across evaluations.
func (a Alert) Key() string {
	if a.Fingerprint != "" {
		return a.Fingerprint
	}
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		fmt.Fprintf(h, "%s\x00%s\x00", k, a.Labels[k])
	}
	fmt.Fprintf(h, "\x01%s\x00%s\x00%s\x00%s", a.Model, a.Metric, a.Feature, a.Segment)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (a Alert) validate() error {
	if a.Status != StatusFiring && a.Status != StatusResolved {
		return fmt.Errorf("alert %s: status %q is neither %q nor %q: %w", a.Key(), a.Status, StatusFiring, StatusResolved, ErrInvalidAlert)
	}
	return nil
}

// clone deep-copies the alert so that the caller may reuse its maps.
func (a Alert) clone() Alert {
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
