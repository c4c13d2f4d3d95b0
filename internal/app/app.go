// Package app is Vigil's application: it wires the stages of `vigil
// process` in one place and owns their lifecycle. cmd/vigil turns flags,
// VIGIL_* variables and the YAML file into a Config and calls Run (or
// Migrate); nothing else of the stack lives in cmd.
//
// The stack, in start order (stopped in reverse, each stage within a budget
// of its own, see internal/lifecycle):
//
//	clickhouse sink   sinks/clickhouse: migrations, then the store of every stage
//	topic             the prediction topic, created when missing
//	processor         processors/pipeline.Processor: predictions -> window states
//	label consumer    processors/pipeline.LabelConsumer: labels -> vigil_labels
//	multivariate      processors/multivariate.Scorer: the references' models, loaded
//	                  before the processor and every Multivariate.Refresh
//	drift job         processors/drift.Job, every Drift.Interval
//	multivariate job  processors/multivariate.Job, every Drift.Interval
//	performance job   processors/performance.Job, every Performance.Interval
//	alert runner      processors/alerting.Runner and its sinks/webhook dispatcher,
//	alert loop        every Alerts.Interval (only with Alerts.Rules)
//
// The periodic jobs run in the consumer group's leader only
// (pipeline.Processor.Leader, given to them as a gate or option at
// construction). Each stage reaches the others through the ports its
// package declares (drift.Store, performance.Store, alerting.Store, ...),
// each implemented by one of the ClickHouse sink's stores (sink.Windows(),
// sink.Labels(), sink.Alerts(), sink.References(), sink.Outbox()).
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/lifecycle"
	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/multivariate"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
	"github.com/vigil-ml/vigil/sinks/webhook"
)

// Config is the configuration of the application: the sub-configs of its
// stages, each in its own package's terms.
type Config struct {
	Sink      clickhouse.Config
	Processor pipeline.Config
	// Partitions of the prediction topic when Vigil creates it.
	Partitions int
	Labels     pipeline.LabelConfig
	Drift      DriftConfig
	// Multivariate drift: the processor scores events with the references'
	// models, and a job, on Drift's interval and lookback, stores the
	// windows' results.
	Multivariate MultivariateConfig
	Performance  PerformanceConfig
	Alerts       AlertsConfig
}

// DriftConfig configures the drift job.
type DriftConfig struct {
	Interval time.Duration // how often; 0: never
	Lookback time.Duration // windows that started this long ago or later are (re)evaluated
	Options  drift.Options
}

// MultivariateConfig configures the multivariate drift of the processor
// and its job.
type MultivariateConfig struct {
	// Refresh is how often every processor reloads the multivariate models
	// of the references in force (processors/multivariate.Scorer; default
	// multivariate.DefaultRefresh in the CLI); 0: the
	// processor scores no event, and the job stores nothing.
	Refresh time.Duration
}

// PerformanceConfig configures the performance job.
type PerformanceConfig struct {
	Interval time.Duration // how often; 0: never
	Job      performance.JobConfig
}

// AlertsConfig configures the alert runner.
type AlertsConfig struct {
	Rules    string        // the rules file; "": no alerts
	Interval time.Duration // how often the rules are evaluated
	// Delivery tunes the webhook dispatcher (zero values take its defaults:
	// redelivery after 30s doubling to 5m, expiry after 24h); its Outbox
	// and Fence are the app's.
	Delivery webhook.DispatcherConfig
	// TakeoverWait is how long a process that takes the alert lease over
	// from another one waits before it sends (docs/ALERTS.md, "Fencing");
	// default twice the dispatcher's per-attempt timeout plus 5s (25s).
	TakeoverWait time.Duration
}

// takeoverWait is TakeoverWait with its default.
func (c AlertsConfig) takeoverWait() time.Duration {
	if c.TakeoverWait > 0 {
		return c.TakeoverWait
	}
	return 2*c.Delivery.WithDefaults().Timeout + 5*time.Second
}

// Grace is how long after a window's end its metrics are complete: its
// lateness, the checkpoint that stores it and the jobs that compute its
// drift and performance, plus 5 seconds.
func (c Config) Grace() time.Duration {
	p := c.Processor.WithDefaults()
	return p.Window.AllowedLateness + p.CheckpointInterval + c.Drift.Interval + c.Performance.Interval + 5*time.Second
}

// App is the running stack of `vigil process`.
type App struct {
	sink   *clickhouse.Sink
	group  *lifecycle.Group
	scorer *multivariate.Scorer // nil when the processor scores no event
}

// Start builds the stack of cfg and starts it, sink first. On failure what
// started is stopped again.
func Start(ctx context.Context, cfg Config, log zerolog.Logger) (*App, error) {
	sink, err := clickhouse.New(cfg.Sink, log)
	if err != nil {
		return nil, err
	}
	var scorer *multivariate.Scorer
	if cfg.Multivariate.Refresh > 0 {
		scorer = multivariate.NewScorer(sink.References(), log)
		cfg.Processor.Observer = scorer
	}
	proc, err := pipeline.New(cfg.Processor, sink.Windows(), log)
	if err != nil {
		return nil, err
	}
	labels, err := pipeline.NewLabelConsumer(cfg.Labels, sink.Labels(), log)
	if err != nil {
		return nil, err
	}
	g := lifecycle.NewGroup(log)
	g.Add("clickhouse sink", sink, 0)
	g.Add("topic", lifecycle.Funcs{OnStart: func(ctx context.Context) error {
		p := cfg.Processor.WithDefaults()
		return kafkatopic.Ensure(ctx, p.Brokers, p.Topic, cfg.Partitions)
	}}, 0)
	if scorer != nil {
		// Load the models before the first event is counted (a failure is
		// logged: the processor counts without them until a refresh works).
		g.Add("multivariate models", lifecycle.Funcs{OnStart: func(ctx context.Context) error {
			scorer.Pass(ctx)
			return nil
		}}, 0)
		g.Add("multivariate refresh", lifecycle.NewPeriodic(cfg.Multivariate.Refresh, scorer.Pass), 0)
	}
	g.Add("processor", proc, 0)
	g.Add("label consumer", labels, 0)
	// The periodic jobs run in the group's leader only.
	leader := lifecycle.WithGate(proc.Leader)
	g.Add("drift job", lifecycle.NewPeriodic(cfg.Drift.Interval, drift.NewJob(sink.Windows(), sink.References(), cfg.Drift.Options, cfg.Drift.Lookback, log).Pass, leader), 0)
	if scorer != nil {
		g.Add("multivariate job", lifecycle.NewPeriodic(cfg.Drift.Interval, multivariate.NewJob(sink.Windows(), sink.References(), cfg.Drift.Lookback, log).Pass, leader), 0)
	}
	g.Add("performance job", lifecycle.NewPeriodic(cfg.Performance.Interval, performance.NewJob(sink.Labels(), cfg.Performance.Job, log).Pass, leader), 0)
	if cfg.Alerts.Rules != "" {
		runner, err := NewAlertRunner(sink, cfg, proc.Leadership, log)
		if err != nil {
			return nil, err
		}
		g.Add("alert runner", runner, 0)
		// The runner follows the leadership itself, to notice its changes.
		g.Add("alert loop", lifecycle.NewPeriodic(cfg.Alerts.Interval, runner.Pass, lifecycle.Immediately()), 0)
	}
	if err := g.Start(ctx); err != nil {
		return nil, err
	}
	return &App{sink: sink, group: g, scorer: scorer}, nil
}

// Sink is the stack's ClickHouse sink (for the demo, which writes a
// reference and watches the checkpoints).
func (a *App) Sink() *clickhouse.Sink { return a.sink }

// RefreshModels reloads the references' multivariate models now, without
// waiting for Multivariate.Refresh (the demo, right after it writes its
// reference); nothing when the processor scores no event.
func (a *App) RefreshModels(ctx context.Context) error {
	if a.scorer == nil {
		return nil
	}
	return a.scorer.Refresh(ctx)
}

// Shutdown stops the stack in reverse, each stage within its budget;
// idempotent.
func (a *App) Shutdown(ctx context.Context) error { return a.group.Shutdown(ctx) }

// Run runs the stack until ctx ends, then stops it.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	a, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info().Msg("stopping")
	return a.Shutdown(context.Background())
}

// Migrate creates or upgrades the ClickHouse tables (starting the sink
// does), then closes the sink.
func Migrate(ctx context.Context, cfg clickhouse.Config, log zerolog.Logger) error {
	sink, err := clickhouse.New(cfg, log)
	if err != nil {
		return err
	}
	if err := sink.Start(ctx); err != nil {
		return err
	}
	return sink.Shutdown(context.Background())
}

// NewAlertRunner builds the alert runner of cfg.Alerts.Rules over sink,
// delivering through a webhook dispatcher whose outbox is the sink's. With
// leadership (pipeline.Processor.Leadership; nil: always work) it works only
// while the processor leads the group, and it and its dispatcher are fenced
// by the group's alert lease in vigil_leases, so that two members never both
// send.
func NewAlertRunner(sink *clickhouse.Sink, cfg Config, leadership func() (int32, bool), log zerolog.Logger) (*alerting.Runner, error) {
	rules, err := alerting.LoadRules(cfg.Alerts.Rules)
	if err != nil {
		return nil, err
	}
	rc := alerting.RunnerConfig{Window: cfg.Processor.Window.Size, Grace: cfg.Grace(), Interval: cfg.Alerts.Interval}
	dc := cfg.Alerts.Delivery
	if leadership != nil {
		rc.Leader = func() bool { _, ok := leadership(); return ok }
		rc.Fence = alerting.NewFence(sink.Leases(), cfg.Processor.WithDefaults().Group, leadership, cfg.Alerts.takeoverWait(), log)
		dc.Fence = rc.Fence
	}
	disp, err := newAlertDispatcher(sink, rules, dc, log)
	if err != nil {
		return nil, err
	}
	return alerting.NewRunner(rules, sink.Alerts(), sink.References(), sink.Outbox(), Dispatcher{disp, log}, rc, log), nil
}

// NewAlertDispatcher builds the receivers of rules and a dispatcher to them
// whose outbox is the sink's vigil_notifications.
func NewAlertDispatcher(sink *clickhouse.Sink, rules *alerting.Config, log zerolog.Logger) (*webhook.Dispatcher, error) {
	return newAlertDispatcher(sink, rules, webhook.DispatcherConfig{}, log)
}

func newAlertDispatcher(sink *clickhouse.Sink, rules *alerting.Config, dc webhook.DispatcherConfig, log zerolog.Logger) (*webhook.Dispatcher, error) {
	receivers, err := webhook.FromConfig(rules.ReceiverConfigs)
	if err != nil {
		return nil, err
	}
	dc.Outbox = sink.Outbox()
	return webhook.NewDispatcher(dc, log.With().Str("component", "webhook").Logger(), receivers...)
}

// Dispatcher is a webhook.Dispatcher as the alert runner's Dispatcher: the
// notifications a shutdown could not deliver stay in the outbox for the
// next start, which is logged, not failed.
type Dispatcher struct {
	*webhook.Dispatcher
	Log zerolog.Logger
}

// Shutdown drains the dispatcher within ctx.
func (d Dispatcher) Shutdown(ctx context.Context) error {
	err := d.Dispatcher.Shutdown(ctx)
	var ue *webhook.UndeliveredError
	if errors.As(err, &ue) {
		d.Log.Warn().Str("component", "alerts").Int("deliveries", len(ue.Deliveries)).Msg("notifications left in the outbox for the next start")
		return nil
	}
	if err != nil {
		return fmt.Errorf("drain alert notifications: %w", err)
	}
	return nil
}

var _ alerting.Dispatcher = Dispatcher{}
