package webhook

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AlertmanagerConfig configures a receiver that speaks Alertmanager's webhook
// format (version "4"), so existing Alertmanager webhook consumers work.
type AlertmanagerConfig struct {
	// Name of the receiver, sent as "receiver"; default "alertmanager".
	Name string `yaml:"name" json:"name"`
	// URL receives the POST.
	URL Secret `yaml:"url" json:"url"`
	// ExternalURL is Vigil's address, sent as "externalURL".
	ExternalURL string `yaml:"external_url" json:"externalURL"`
	// GeneratorURL is sent as every alert's "generatorURL" (a dashboard link).
	GeneratorURL string `yaml:"generator_url" json:"generatorURL"`
	// GroupBy names the labels sent as "groupLabels"; default model, metric.
	GroupBy []string `yaml:"group_by" json:"groupBy"`
}

func (c AlertmanagerConfig) Validate() error {
	if !c.URL.IsSet() {
		return fmt.Errorf("alertmanager receiver %q: url is required", c.Name)
	}
	return nil
}

func (c AlertmanagerConfig) String() string {
	return fmt.Sprintf("alertmanager{name=%s url=%s externalURL=%s groupBy=%v}", c.Name, c.URL, c.ExternalURL, c.GroupBy)
}

// Alertmanager posts Alertmanager webhook payloads. Vigil's identity fields
// (model, metric, feature, segment, window) become labels unless the alert
// already has such a label; value, threshold and sql become annotations.
type Alertmanager struct {
	cfg AlertmanagerConfig
	url *url.URL
}

var _ Receiver = (*Alertmanager)(nil)

func NewAlertmanager(cfg AlertmanagerConfig) (*Alertmanager, error) {
	if cfg.Name == "" {
		cfg.Name = "alertmanager"
	}
	if len(cfg.GroupBy) == 0 {
		cfg.GroupBy = []string{"model", "metric"}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := resolveURL("alertmanager receiver "+cfg.Name+" url", cfg.URL)
	if err != nil {
		return nil, err
	}
	return &Alertmanager{cfg: cfg, url: u}, nil
}

func (r *Alertmanager) Name() string  { return r.cfg.Name }
func (r Alertmanager) String() string { return "alertmanager " + r.cfg.Name }

// AlertmanagerMessage is Alertmanager's webhook body (template.Data plus
// version, groupKey and truncatedAlerts), field for field.
type AlertmanagerMessage struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"`
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []AlertmanagerAlert `json:"alerts"`
}

// AlertmanagerAlert is one alert of an AlertmanagerMessage.
type AlertmanagerAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

func (r *Alertmanager) message(group []Alert) AlertmanagerMessage {
	msg := AlertmanagerMessage{
		Version:     "4",
		Status:      groupStatus(group),
		Receiver:    r.cfg.Name,
		ExternalURL: r.cfg.ExternalURL,
		Alerts:      make([]AlertmanagerAlert, len(group)),
	}
	for i, a := range group {
		labels := maps.Clone(a.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		for k, v := range map[string]string{"model": a.Model, "metric": a.Metric, "feature": a.Feature, "segment": a.Segment, "window": a.Window} {
			if _, ok := labels[k]; !ok && v != "" {
				labels[k] = v
			}
		}
		ann := maps.Clone(a.Annotations)
		if ann == nil {
			ann = map[string]string{}
		}
		for k, v := range map[string]string{"value": formatFloat(a.Value), "threshold": formatFloat(a.Threshold), "sql": a.SQL} {
			if _, ok := ann[k]; !ok && v != "" {
				ann[k] = v
			}
		}
		msg.Alerts[i] = AlertmanagerAlert{
			Status:       a.Status,
			Labels:       labels,
			Annotations:  ann,
			StartsAt:     a.StartsAt.UTC(), // time.Time encodes as RFC 3339; zero as 0001-01-01T00:00:00Z
			EndsAt:       a.EndsAt.UTC(),
			GeneratorURL: r.cfg.GeneratorURL,
			Fingerprint:  a.Key(),
		}
	}
	msg.CommonLabels = common(msg.Alerts, func(a AlertmanagerAlert) map[string]string { return a.Labels })
	msg.CommonAnnotations = common(msg.Alerts, func(a AlertmanagerAlert) map[string]string { return a.Annotations })
	msg.GroupLabels = map[string]string{}
	for _, k := range r.cfg.GroupBy {
		if v, ok := msg.CommonLabels[k]; ok {
			msg.GroupLabels[k] = v
		}
	}
	msg.GroupKey = "{}:" + labelSetString(msg.GroupLabels)
	return msg
}

// common returns the pairs that every alert has with the same value.
func common(alerts []AlertmanagerAlert, get func(AlertmanagerAlert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(alerts) == 0 {
		return out
	}
	for k, v := range get(alerts[0]) {
		same := true
		for _, a := range alerts[1:] {
			if w, ok := get(a)[k]; !ok || w != v {
				same = false
				break
			}
		}
		if same {
			out[k] = v
		}
	}
	return out
}

// labelSetString formats like Prometheus' LabelSet.String: {a="1", b="2"}.
func labelSetString(ls map[string]string) string {
	parts := make([]string, 0, len(ls))
	for _, k := range slices.Sorted(maps.Keys(ls)) {
		parts = append(parts, k+"="+strconv.Quote(ls[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (r *Alertmanager) Encode(group []Alert) (*http.Request, error) {
	body, err := marshal(r.message(group))
	if err != nil {
		return nil, fmt.Errorf("encode alertmanager body: %v: %w", err, ErrInvalidAlert)
	}
	req, err := http.NewRequest(http.MethodPost, r.url.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build alertmanager request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil-webhook/1")
	return req, nil
}
