package webhook

import (
	"errors"
	"fmt"

	"github.com/vigil-ml/vigil/processors/alerting"
)

// FromConfig builds the receivers of a rules file (alerting.Config's
// ReceiverConfigs, checked by its Validate), resolving their secrets
// (env:VAR, file:/path). It reports every receiver that cannot be built.
func FromConfig(cfgs []alerting.ReceiverConfig) ([]Receiver, error) {
	out := make([]Receiver, 0, len(cfgs))
	var errs []error
	for _, r := range cfgs {
		var (
			rcv Receiver
			err error
		)
		switch r.Type {
		case alerting.TypeWebhook:
			rcv, err = NewSignedWebhook(SignedWebhookConfig{Name: r.Name, URL: r.URL, Secret: r.Secret})
		case alerting.TypeAlertmanager:
			rcv, err = NewAlertmanager(AlertmanagerConfig{
				Name: r.Name, URL: r.URL, ExternalURL: r.ExternalURL, GeneratorURL: r.GeneratorURL, GroupBy: r.GroupBy,
			})
		case alerting.TypeSlack:
			rcv, err = NewSlack(SlackConfig{Name: r.Name, URL: r.URL})
		case alerting.TypePagerDuty:
			rcv, err = NewPagerDuty(PagerDutyConfig{
				Name: r.Name, URL: r.URL, RoutingKey: r.RoutingKey, Source: r.Source, Severity: r.Severity,
			})
		default:
			err = fmt.Errorf("receiver %q: type %q is not webhook, alertmanager, slack or pagerduty", r.Name, r.Type)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("build receiver %q: %w", r.Name, err))
			continue
		}
		out = append(out, rcv)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
