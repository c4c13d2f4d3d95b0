// Command vigil runs Vigil's stream processor, its ClickHouse migrations and
// an end-to-end demo.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "vigil:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "vigil",
		Usage: "ML model monitoring: prediction events from Kafka to windowed statistics in ClickHouse",
		Commands: []*cli.Command{
			{
				Name:   "process",
				Usage:  "run the stream processor (a consumer-group member) until interrupted",
				Flags:  configFlags(),
				Action: runProcess,
			},
			{
				Name:   "migrate",
				Usage:  "create or upgrade the ClickHouse tables, then exit",
				Flags:  configFlags(),
				Action: runMigrate,
			},
			{
				Name:   "demo",
				Usage:  "run a simulated model service through the whole pipeline and print the per-window table",
				Flags:  append(configFlags(), demoFlags()...),
				Action: runDemo,
			},
			referenceCommand(),
			queryCommand(),
			alertsCommand(),
			{
				Name:  "config",
				Usage: "configuration tools",
				Subcommands: []*cli.Command{{
					Name:  "validate",
					Usage: "check a YAML config file (and VIGIL_* variables and flags, and the alert rules file it names) without running anything",
					Flags: configFlags(),
					Action: func(c *cli.Context) error {
						cfg, err := resolveConfig(c)
						if err != nil {
							return err
						}
						if cfg.Alerts.Rules != "" {
							if _, err := loadRules(cfg.Alerts.Rules); err != nil {
								return err
							}
						}
						fmt.Fprintln(c.App.Writer, "config ok")
						return nil
					},
				}},
			},
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					fmt.Fprintf(c.App.Writer, "vigil %s\n", version)
					return nil
				},
			},
		},
	}
}

func newLogger(cfg Config) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(cfg.Log.Level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log level: %w", err)
	}
	var log zerolog.Logger
	console := cfg.Log.Format == "console" || (cfg.Log.Format == "auto" && isatty.IsTerminal(os.Stderr.Fd()))
	if console {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly})
	} else {
		log = zerolog.New(os.Stderr)
	}
	return log.Level(level).With().Timestamp().Logger(), nil
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// openSink resolves a command's config and starts a ClickHouse sink (which
// runs the migrations); the caller shuts it down.
func openSink(c *cli.Context) (*clickhouse.Sink, error) {
	cfg, err := resolveConfig(c)
	if err != nil {
		return nil, err
	}
	log, err := newLogger(cfg)
	if err != nil {
		return nil, err
	}
	sink, err := clickhouse.New(cfg.sinkConfig(), log)
	if err != nil {
		return nil, err
	}
	if err := sink.Start(c.Context); err != nil {
		return nil, err
	}
	return sink, nil
}

func runMigrate(c *cli.Context) error {
	sink, err := openSink(c)
	if err != nil {
		return err
	}
	return sink.Shutdown(context.Background())
}

// stack starts the sink, then the consumers, then the jobs that read what
// they store, and stops them in reverse.
type stack struct {
	log    zerolog.Logger
	sink   *clickhouse.Sink
	proc   *pipeline.Processor
	labels *pipeline.LabelConsumer
	drift  *driftJob
	perf   *performanceJob
	alerts *alertJob
}

func startStack(ctx context.Context, cfg Config, log zerolog.Logger) (*stack, error) {
	s := &stack{log: log}
	var err error
	if s.sink, err = clickhouse.New(cfg.sinkConfig(), log); err != nil {
		return nil, err
	}
	began := time.Now()
	if err := s.sink.Start(ctx); err != nil {
		return nil, err
	}
	log.Info().Dur("took", time.Since(began)).Str("clickhouse", cfg.ClickHouse.Addr).Str("server_version", s.sink.ServerVersion().String()).Msg("sink started")
	if err := kafkatopic.Ensure(ctx, cfg.Kafka.Brokers, cfg.Kafka.Topic, cfg.Kafka.Partitions); err != nil {
		return nil, errors.Join(err, s.sink.Shutdown(context.Background()))
	}
	if s.proc, err = pipeline.New(cfg.pipelineConfig(), s.sink.Windows(), log); err != nil {
		return nil, errors.Join(err, s.sink.Shutdown(context.Background()))
	}
	if err := s.proc.Start(ctx); err != nil {
		return nil, errors.Join(err, s.sink.Shutdown(context.Background()))
	}
	if s.labels, err = pipeline.NewLabelConsumer(cfg.labelConfig(), s.sink.Labels(), log); err != nil {
		return nil, errors.Join(err, s.shutdown())
	}
	if err := s.labels.Start(ctx); err != nil {
		return nil, errors.Join(err, s.shutdown())
	}
	// The periodic jobs run in the group's leader only.
	s.drift = newDriftJob(s.sink, cfg.driftOptions(), cfg.Drift.Interval, cfg.Drift.Lookback, log)
	s.drift.loop.leader = s.proc.Leader
	if err := s.drift.Start(ctx); err != nil {
		return nil, errors.Join(err, s.shutdown())
	}
	s.perf = newPerformanceJob(s.sink, cfg, log)
	s.perf.loop.leader = s.proc.Leader
	if err := s.perf.Start(ctx); err != nil {
		return nil, errors.Join(err, s.shutdown())
	}
	if cfg.Alerts.Rules != "" {
		if s.alerts, err = newAlertJob(s.sink, cfg, log); err != nil {
			return nil, errors.Join(err, s.shutdown())
		}
		s.alerts.loop.leader = s.proc.Leader
		if err := s.alerts.Start(ctx); err != nil {
			return nil, errors.Join(err, s.shutdown())
		}
	}
	return s, nil
}

// shutdown stops what started, in reverse; parts never started are nil.
func (s *stack) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if s.alerts != nil {
		err = errors.Join(err, s.alerts.Shutdown(ctx))
	}
	if s.perf != nil {
		err = errors.Join(err, s.perf.Shutdown(ctx))
	}
	if s.drift != nil {
		err = errors.Join(err, s.drift.Shutdown(ctx))
	}
	if s.labels != nil {
		err = errors.Join(err, s.labels.Shutdown(ctx))
	}
	began := time.Now()
	err = errors.Join(err, s.proc.Shutdown(ctx))
	s.log.Info().Dur("took", time.Since(began)).Msg("processor drained")
	began = time.Now()
	err = errors.Join(err, s.sink.Shutdown(ctx))
	s.log.Info().Dur("took", time.Since(began)).Msg("sink closed")
	return err
}

func runProcess(c *cli.Context) error {
	cfg, err := resolveConfig(c)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c.Context)
	defer stop()
	s, err := startStack(ctx, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info().Msg("stopping")
	return s.shutdown()
}
