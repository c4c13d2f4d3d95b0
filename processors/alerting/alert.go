package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Alert statuses (Alert.Status). StatusFiring is also a series status.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Alert is one alert instance, as the evaluator emits it in a Notification.
// Its JSON form is Vigil's alert document: sinks/webhook's signed webhook
// sends it as is and the other receivers render it.
type Alert struct {
	// Fingerprint identifies the alert series (one rule on one model, metric,
	// feature and segment) across evaluations, so that the firing and the
	// resolved notification of the same problem share it. Receivers group by
	// it (one incident per series: Alertmanager fingerprint, PagerDuty
	// dedup_key); to drop a repeated copy of a notification they deduplicate
	// on ID, not on it. When empty, Key derives a stable one from the other
	// identity fields.
	Fingerprint string `json:"fingerprint"`
	// ID identifies this notification: one transition (firing, or resolved)
	// of the series. The same transition has the same ID however often it
	// is sent (a retry after a timeout, a redelivery, another delivery that
	// carries it), so receivers deduplicate on it; the evaluator derives it
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
