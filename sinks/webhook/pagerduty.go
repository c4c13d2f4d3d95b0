package webhook

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// DefaultPagerDutyURL is the Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// PagerDutyConfig configures a PagerDuty Events API v2 receiver.
type PagerDutyConfig struct {
	// Name of the receiver; default "pagerduty".
	Name string `yaml:"name" json:"name"`
	// URL of the Events API; default DefaultPagerDutyURL.
	URL Secret `yaml:"url" json:"url"`
	// RoutingKey is the integration key of the PagerDuty service.
	RoutingKey Secret `yaml:"routing_key" json:"routingKey"`
	// Source is payload.source; default "vigil/<model>".
	Source string `yaml:"source" json:"source"`
	// Severity is payload.severity when the alert has no valid "severity"
	// label: critical, error, warning or info; default "warning".
	Severity string `yaml:"severity" json:"severity"`
}

func (c PagerDutyConfig) Validate() error {
	if !c.RoutingKey.IsSet() {
		return fmt.Errorf("pagerduty receiver %q: routing_key is required (the service's Events API v2 integration key)", c.Name)
	}
	if c.Severity != "" && !validSeverity(c.Severity) {
		return fmt.Errorf("pagerduty receiver %q: severity %q is not one of critical, error, warning, info", c.Name, c.Severity)
	}
	return nil
}

func (c PagerDutyConfig) String() string {
	return fmt.Sprintf("pagerduty{name=%s url=%s routingKey=%s source=%s severity=%s}", c.Name, c.URL, c.RoutingKey, c.Source, c.Severity)
}

func validSeverity(s string) bool {
	return s == "critical" || s == "error" || s == "warning" || s == "info"
}

// PagerDuty sends one Events v2 event per alert ("trigger" while firing,
// "resolve" once resolved) with dedup_key "vigil-<fingerprint>", so the
// resolve closes the incident the trigger opened and repeated triggers do
// not open new ones. The Dispatcher splits groups for it.
type PagerDuty struct {
	cfg        PagerDutyConfig
	url        *url.URL
	routingKey string
}

var _ Receiver = (*PagerDuty)(nil)

func NewPagerDuty(cfg PagerDutyConfig) (*PagerDuty, error) {
	if cfg.Name == "" {
		cfg.Name = "pagerduty"
	}
	if cfg.URL == "" {
		cfg.URL = DefaultPagerDutyURL
	}
	if cfg.Severity == "" {
		cfg.Severity = "warning"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := resolveURL("pagerduty receiver "+cfg.Name+" url", cfg.URL)
	if err != nil {
		return nil, err
	}
	key, err := cfg.RoutingKey.Resolve()
	if err != nil {
		return nil, fmt.Errorf("pagerduty receiver %s routing_key: %w", cfg.Name, err)
	}
	return &PagerDuty{cfg: cfg, url: u, routingKey: key}, nil
}

func (p *PagerDuty) Name() string  { return p.cfg.Name }
func (p PagerDuty) String() string { return "pagerduty " + p.cfg.Name }
func (p *PagerDuty) onePerAlert()  {}

// PagerDutyEvent is an Events API v2 event.
type PagerDutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"`
	DedupKey    string            `json:"dedup_key"`
	Payload     *PagerDutyPayload `json:"payload,omitempty"`
}

// PagerDutyPayload is the payload of a trigger event (resolve events have none).
type PagerDutyPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	CustomDetails map[string]any `json:"custom_details"`
}

// DedupKey is the dedup_key sent for an alert.
func DedupKey(a Alert) string { return "vigil-" + a.Key() }

func (p *PagerDuty) event(a Alert) PagerDutyEvent {
	ev := PagerDutyEvent{RoutingKey: p.routingKey, EventAction: "trigger", DedupKey: DedupKey(a)}
	if a.Status == StatusResolved {
		ev.EventAction = "resolve"
		return ev
	}
	source := p.cfg.Source
	if source == "" {
		source = "vigil/" + a.Model
	}
	severity := p.cfg.Severity
	if s := a.Labels["severity"]; validSeverity(s) {
		severity = s
	}
	summary := describe(a)
	if len(summary) > 1024 { // PagerDuty's limit
		summary = summary[:1021] + "..."
	}
	details := map[string]any{
		"model": a.Model, "metric": a.Metric, "window": a.Window,
		"value": a.Value, "threshold": a.Threshold,
		"starts_at": a.StartsAt.UTC().Format(time.RFC3339),
	}
	for k, v := range map[string]string{"feature": a.Feature, "segment": a.Segment, "sql": a.SQL} {
		if v != "" {
			details[k] = v
		}
	}
	if len(a.Labels) > 0 {
		details["labels"] = a.Labels
	}
	if len(a.Annotations) > 0 {
		details["annotations"] = a.Annotations
	}
	ev.Payload = &PagerDutyPayload{Summary: summary, Source: source, Severity: severity, CustomDetails: details}
	return ev
}

// Encode takes exactly one alert: the Events API has one event per request.
func (p *PagerDuty) Encode(group []Alert) (*http.Request, error) {
	if len(group) != 1 {
		return nil, fmt.Errorf("pagerduty takes one alert per request, got %d (send through the Dispatcher, which splits groups): %w", len(group), ErrInvalidAlert)
	}
	body, err := marshal(p.event(group[0]))
	if err != nil {
		return nil, fmt.Errorf("encode pagerduty event: %v: %w", err, ErrInvalidAlert)
	}
	req, err := http.NewRequest(http.MethodPost, p.url.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build pagerduty request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil-webhook/1")
	return req, nil
}
