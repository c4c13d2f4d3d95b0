package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/sinks/webhook"
)

func alertsCommand() *cli.Command {
	return &cli.Command{
		Name:  "alerts",
		Usage: "alert rules and receivers (docs/ALERTS.md)",
		Subcommands: []*cli.Command{
			{
				Name:      "validate",
				Usage:     "check an alert rules file strictly (every problem, with its line) and build its receivers",
				ArgsUsage: "FILE",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return errors.New("usage: vigil alerts validate FILE")
					}
					rules, err := alerting.LoadRules(c.Args().First())
					if err != nil {
						return err
					}
					if _, err := webhook.FromConfig(rules.ReceiverConfigs); err != nil {
						return fmt.Errorf("alert receivers: %w", err)
					}
					fmt.Fprintf(c.App.Writer, "%s: %d rules, %d receivers ok\n", c.Args().First(), len(rules.Rules), len(rules.ReceiverConfigs))
					return nil
				},
			},
			{
				Name:  "test",
				Usage: "send a sample firing notification to one receiver of a rules file and report the answer",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "rules", EnvVars: []string{"VIGIL_ALERT_RULES"}, Required: true, Usage: "alert rules file"},
					&cli.StringFlag{Name: "receiver", Required: true, Usage: "receiver name"},
					&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up after this long (retries included)"},
				},
				Action: runAlertsTest,
			},
		},
	}
}

// sampleAlert is what `vigil alerts test` sends.
func sampleAlert(now time.Time) webhook.Alert {
	return webhook.Alert{
		Fingerprint: "vigil-test", Status: webhook.StatusFiring,
		Labels:      map[string]string{"alertname": "VigilTest", "severity": "info", "model": "example"},
		Annotations: map[string]string{"summary": "Test notification from `vigil alerts test`: if you read this, the receiver works."},
		StartsAt:    now.Truncate(time.Second), Model: "example", Metric: "psi", Feature: "amount", Window: "5m",
		Value: 0.31, Threshold: 0.2,
		SQL: "SELECT window_start, psi FROM vigil.vigil_drift FINAL WHERE model = 'example' AND feature = 'amount' ORDER BY window_start DESC LIMIT 20",
	}
}

func runAlertsTest(c *cli.Context) error {
	rules, err := alerting.LoadRules(c.String("rules"))
	if err != nil {
		return err
	}
	receivers, err := webhook.FromConfig(rules.ReceiverConfigs)
	if err != nil {
		return err
	}
	var target webhook.Receiver
	for _, r := range receivers {
		if r.Name() == c.String("receiver") {
			target = r
		}
	}
	if target == nil {
		return fmt.Errorf("no receiver %q in %s", c.String("receiver"), c.String("rules"))
	}
	cfg := webhook.DispatcherConfig{MaxAttempts: 3, BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second}
	d, err := webhook.NewDispatcher(cfg, zerolog.Nop(), target)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	if err := d.Start(ctx); err != nil {
		return err
	}
	if err := d.Enqueue(ctx, target.Name(), []webhook.Alert{sampleAlert(time.Now().UTC())}); err != nil {
		return err
	}
	for d.Stats().Sent+d.Stats().Failed == 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	_ = d.Shutdown(ctx)
	st := d.Stats()
	if st.Sent != 1 {
		return fmt.Errorf("receiver %s did not accept the test notification after %d retries (see the receiver's logs; run with --log-level debug for details)", target.Name(), st.Retried)
	}
	fmt.Fprintf(c.App.Writer, "receiver %s accepted the test notification\n", target.Name())
	return nil
}
