package webhook

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SlackConfig configures a Slack incoming webhook.
type SlackConfig struct {
	// Name of the receiver; default "slack".
	Name string `yaml:"name" json:"name"`
	// URL is the incoming webhook URL; it embeds the token, so it is a Secret.
	URL Secret `yaml:"url" json:"url"`
}

func (c SlackConfig) Validate() error {
	if !c.URL.IsSet() {
		return fmt.Errorf("slack receiver %q: url is required (Slack app > Incoming Webhooks)", c.Name)
	}
	return nil
}

func (c SlackConfig) String() string { return fmt.Sprintf("slack{name=%s url=%s}", c.Name, c.URL) }

// Slack posts {"text": ...} with one block of text per alert.
type Slack struct {
	name string
	url  *url.URL
}

var _ Receiver = (*Slack)(nil)

func NewSlack(cfg SlackConfig) (*Slack, error) {
	if cfg.Name == "" {
		cfg.Name = "slack"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := resolveURL("slack receiver "+cfg.Name+" url", cfg.URL)
	if err != nil {
		return nil, err
	}
	return &Slack{name: cfg.Name, url: u}, nil
}

func (s *Slack) Name() string  { return s.name }
func (s Slack) String() string { return "slack " + s.name }

// slackEscape escapes the three characters Slack's mrkdwn reserves.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// SlackText renders the message text for a group.
func SlackText(group []Alert) string {
	var b strings.Builder
	for i, a := range group {
		if i > 0 {
			b.WriteString("\n\n")
		}
		icon, state := ":rotating_light:", "FIRING"
		if a.Status == StatusResolved {
			icon, state = ":white_check_mark:", "RESOLVED"
		}
		fmt.Fprintf(&b, "%s *%s* model *%s*, metric *%s*", icon, state, slackEscape.Replace(a.Model), slackEscape.Replace(a.Metric))
		if a.Feature != "" {
			fmt.Fprintf(&b, "\nFeature: `%s`", slackEscape.Replace(a.Feature))
		}
		if a.Segment != "" {
			fmt.Fprintf(&b, "\nSegment: `%s`", slackEscape.Replace(a.Segment))
		}
		fmt.Fprintf(&b, "\nValue: *%s* (threshold %s)", formatFloat(a.Value), formatFloat(a.Threshold))
		if a.Window != "" {
			fmt.Fprintf(&b, ", window %s", slackEscape.Replace(a.Window))
		}
		if !a.StartsAt.IsZero() {
			fmt.Fprintf(&b, "\nSince: %s", a.StartsAt.UTC().Format(time.RFC3339))
		}
		if !a.EndsAt.IsZero() {
			fmt.Fprintf(&b, "\nEnded: %s", a.EndsAt.UTC().Format(time.RFC3339))
		}
		if s := a.Annotations["summary"]; s != "" {
			fmt.Fprintf(&b, "\n%s", slackEscape.Replace(s))
		}
		if a.SQL != "" {
			// A literal ``` would close the block early.
			sql := strings.ReplaceAll(strings.TrimSpace(a.SQL), "```", "` ` `")
			fmt.Fprintf(&b, "\n```\n%s\n```", slackEscape.Replace(sql))
		}
	}
	return b.String()
}

func (s *Slack) Encode(group []Alert) (*http.Request, error) {
	body, err := marshal(map[string]string{"text": SlackText(group)})
	if err != nil {
		return nil, fmt.Errorf("encode slack body: %w", err)
	}
	req, err := http.NewRequest(http.MethodPost, s.url.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build slack request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil-webhook/1")
	return req, nil
}
