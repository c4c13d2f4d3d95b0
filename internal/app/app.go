// Package app is Vigil's application: it wires the stages of `vigil
// process` in one place and owns their lifecycle. cmd/vigil turns flags,
// VIGIL_* variables and the YAML file into a Config and calls Run (or
// Migrate); nothing else of the stack lives in cmd.
//
// The stack, in start order (stopped in reverse, each stage within a budget
// of its own, see internal/lifecycle):
//
//	http server       internal/observe: /metrics, /healthz, /readyz (only with HTTP.Addr)
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
// The drift, multivariate and performance jobs run in every member, each
// on the models it owns in the group's generation (processors/shard: the
// model's partition of the prediction topic; pipeline.Processor is the
// shard.Owner), recording what they computed in vigil_job_passes; the
// alert loop runs in the group's leader only (pipeline.Processor.Leadership,
// fenced by a lease). Each stage reaches the others through the ports its
// package declares (drift.Store, performance.Store, alerting.Store, ...),
// each implemented by one of the ClickHouse sink's stores (sink.Windows(),
// sink.Labels(), sink.Alerts(), sink.References(), sink.Outbox()).
//
// Metrics and health: every stage registers its collectors on the app's
// registry (Registry; docs/METRICS.md lists them), served at /metrics by
// the HTTP server on HTTP.Addr, which also answers /healthz (200 while the
// process runs) and /readyz (200 once every stage started, ClickHouse
// answers a ping, the processor is in a generation of its group, with
// partitions or as a standby member, and the label consumer joined its
// group and fetches without failing; else 503 naming the failing checks).
// To serve more on that server (the UI at /ui/, say), build the stack with
// New, mount on HTTP() before Start:
//
//	a, err := app.New(cfg, log)
//	// ...
//	if srv := a.HTTP(); srv != nil {
//		app.MountUI(srv, a.Sink(), cfg.Drift.Options, log)
//	}
//	err = a.Start(ctx)
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/lifecycle"
	"github.com/vigil-ml/vigil/internal/observe"
	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/multivariate"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/shard"
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
	HTTP         HTTPConfig
	// UITokens is the bearer tokens file of the UI that the HTTP server
	// serves at UIPrefix (internal/auth); "": no authentication.
	UITokens string
}

// HTTPConfig configures the HTTP server of /metrics, /healthz and /readyz.
type HTTPConfig struct {
	// Addr is its host:port (port 0: a free one, see App.HTTP().Addr());
	// "": no server (the metrics are still kept, see App.Registry).
	Addr string
	// TLSCert and TLSKey (PEM files), both or neither: HTTPS only.
	TLSCert, TLSKey string
}

// tlsConfig is the server's TLS configuration, nil for plain HTTP.
func (c HTTPConfig) tlsConfig() (*tls.Config, error) {
	if c.TLSCert == "" && c.TLSKey == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("load TLS key pair %s, %s: %w", c.TLSCert, c.TLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
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
	// multivariate.DefaultRefresh in the CLI); 0: the processor scores no
	// event, and the job stores nothing.
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

// App is the stack of `vigil process`.
type App struct {
	sink  *clickhouse.Sink
	group *lifecycle.Group
	reg   *prometheus.Registry
	http  *observe.Server // nil without cfg.HTTP.Addr
	// started is set once every stage started (the "startup" readiness check).
	started atomic.Bool
	scorer  *multivariate.Scorer // nil when the processor scores no event
}

// New builds the stack of cfg without starting anything: mount routes on
// HTTP() and register collectors on Registry() now, then Start.
func New(cfg Config, log zerolog.Logger) (*App, error) {
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
	a := &App{sink: sink, reg: observe.NewRegistry(), scorer: scorer}
	jobNames := []string{jobDrift, jobPerformance}
	if scorer != nil {
		jobNames = append(jobNames, jobMultivariate)
	}
	if cfg.Alerts.Rules != "" {
		jobNames = append(jobNames, jobAlerts)
	}
	jobs, err := observe.NewJobs(a.reg, jobNames...)
	if err != nil {
		return nil, fmt.Errorf("register job metrics: %w", err)
	}
	sharded := []string{jobDrift, jobPerformance}
	if scorer != nil {
		sharded = append(sharded, jobMultivariate)
	}
	windows := shard.NewCounters(sharded...)
	a.reg.MustRegister(proc.Collector(), labels.Collector(), windows.Collector())

	g := lifecycle.NewGroup(log)
	if cfg.HTTP.Addr != "" {
		tlsConfig, err := cfg.HTTP.tlsConfig()
		if err != nil {
			return nil, err
		}
		a.http = observe.NewServer(cfg.HTTP.Addr, a.reg, tlsConfig, log)
		a.ready(proc, cfg.Processor.WithDefaults().Group)
		a.http.ReadyDetail("labels", labels.Ready)
		tokens, err := loadUITokens(cfg.UITokens, log)
		if err != nil {
			return nil, err
		}
		MountUI(a.http, sink, cfg.Drift.Options, tokens, log)
		// First, so that /healthz answers (and /readyz says what is not
		// ready) while the other stages start; stopped last.
		g.Add("http server", a.http, 0)
	}
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
	// The drift, multivariate and performance jobs share the models over
	// the members of the group; the alert loop runs in its leader.
	ledger := sink.Windows()
	driftJob := drift.NewJob(sink.Windows(), sink.References(), cfg.Drift.Options, cfg.Drift.Lookback, log).
		WithShard(shard.New(jobDrift, proc, ledger, windows))
	perfJob := performance.NewJob(sink.Labels(), cfg.Performance.Job, log).
		WithShard(shard.New(jobPerformance, proc, ledger, windows))
	g.Add("drift job", lifecycle.NewPeriodic(cfg.Drift.Interval, observed(jobs, jobDrift, nil, driftJob.Step)), 0)
	if scorer != nil {
		mvJob := multivariate.NewJob(sink.Windows(), sink.References(), cfg.Drift.Lookback, log).
			WithShard(shard.New(jobMultivariate, proc, ledger, windows))
		g.Add("multivariate job", lifecycle.NewPeriodic(cfg.Drift.Interval, observed(jobs, jobMultivariate, nil, mvJob.Step)), 0)
	}
	g.Add("performance job", lifecycle.NewPeriodic(cfg.Performance.Interval, observed(jobs, jobPerformance, nil, perfJob.Step)), 0)
	if cfg.Alerts.Rules != "" {
		runner, disp, err := newAlertRunner(sink, cfg, proc.Leadership, log)
		if err != nil {
			return nil, err
		}
		a.reg.MustRegister(disp.Collector())
		g.Add("alert runner", runner, 0)
		// The runner follows the leadership itself, to notice its changes.
		g.Add("alert loop", lifecycle.NewPeriodic(cfg.Alerts.Interval, observed(jobs, jobAlerts, nil, runner.Step), lifecycle.Immediately()), 0)
	}
	a.group = g
	return a, nil
}

// The jobs' names in the job metrics.
const (
	jobDrift        = "drift"
	jobMultivariate = "multivariate"
	jobPerformance  = "performance"
	jobAlerts       = "alerts"
)

// observed is a pass of job that runs step while gate (nil: always) says
// so, and records each pass in jobs: skipped (the gate said no, or step
// answered alerting.ErrNotLeading or shard.ErrNotMember), ok or error. A pass cut short by the
// shutdown is not recorded.
func observed(jobs *observe.Jobs, job string, gate func() bool, step func(context.Context) error) func(context.Context) {
	return func(ctx context.Context) {
		if gate != nil && !gate() {
			jobs.Observe(job, observe.JobSkipped, 0)
			return
		}
		began := time.Now()
		err := step(ctx)
		switch {
		case errors.Is(err, alerting.ErrNotLeading), errors.Is(err, shard.ErrNotMember):
			jobs.Observe(job, observe.JobSkipped, 0)
		case err != nil && ctx.Err() != nil:
		case err != nil:
			jobs.Observe(job, observe.JobError, time.Since(began))
		default:
			jobs.Observe(job, observe.JobOK, time.Since(began))
		}
	}
}

// ready adds the readiness checks of /readyz: ClickHouse answers a ping,
// the processor is in a generation of its consumer group (with partitions,
// or as a standby member when the group has more members than the topic
// has partitions), and every stage started.
func (a *App) ready(proc *pipeline.Processor, group string) {
	a.http.Ready("startup", func(context.Context) error {
		if !a.started.Load() {
			return errors.New("the stack is still starting (migrations, topics, joining the group)")
		}
		return nil
	})
	a.http.Ready("clickhouse", func(ctx context.Context) error {
		conn := a.sink.Conn()
		if conn == nil {
			return errors.New("not connected yet")
		}
		if err := conn.Ping(ctx); err != nil {
			return fmt.Errorf("cannot reach ClickHouse: %w", err)
		}
		return nil
	})
	a.http.ReadyDetail("processor", func(context.Context) (string, error) {
		id, joined := proc.Generation()
		if !joined {
			return "", fmt.Errorf("not in a generation of consumer group %s (joining, or rebalancing)", group)
		}
		if n := proc.Partitions(); n > 0 {
			lead := ""
			if proc.Leader() {
				lead = ", leader"
			}
			return fmt.Sprintf("member of generation %d with %d partitions%s", id, n, lead), nil
		}
		return fmt.Sprintf("standby member of generation %d (no partitions: the group has more members than the topic partitions)", id), nil
	})
}

// Start starts the stack, sink first (after the HTTP server, when there is
// one). On failure what started is stopped again.
func (a *App) Start(ctx context.Context) error {
	if err := a.group.Start(ctx); err != nil {
		return err
	}
	a.started.Store(true)
	return nil
}

// Start builds the stack of cfg and starts it: New, then Start.
func Start(ctx context.Context, cfg Config, log zerolog.Logger) (*App, error) {
	a, err := New(cfg, log)
	if err != nil {
		return nil, err
	}
	if err := a.Start(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// Sink is the stack's ClickHouse sink (for the demo, which writes a
// reference and watches the checkpoints).
func (a *App) Sink() *clickhouse.Sink { return a.sink }

// HTTP is the stack's HTTP server (/metrics, /healthz, /readyz), nil when
// Config.HTTP.Addr is empty. Mount more routes on it between New and
// Start (observe.Server.Handle); after Start, Addr says where it listens.
func (a *App) HTTP() *observe.Server { return a.http }

// Registry is the registry /metrics serves: register the collectors of
// what the application adds (the SDK's Stats of an embedded producer, say)
// between New and Start.
func (a *App) Registry() *prometheus.Registry { return a.reg }

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
	r, _, err := newAlertRunner(sink, cfg, leadership, log)
	return r, err
}

// newAlertRunner is NewAlertRunner that also returns the dispatcher (for
// its metrics).
func newAlertRunner(sink *clickhouse.Sink, cfg Config, leadership func() (int32, bool), log zerolog.Logger) (*alerting.Runner, *webhook.Dispatcher, error) {
	rules, err := alerting.LoadRules(cfg.Alerts.Rules)
	if err != nil {
		return nil, nil, err
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
		return nil, nil, err
	}
	return alerting.NewRunner(rules, sink.Alerts(), sink.References(), sink.Outbox(), Dispatcher{disp, log}, rc, log), disp, nil
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
