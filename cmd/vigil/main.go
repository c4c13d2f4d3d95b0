// Command vigil runs Vigil's stream processor, its ClickHouse migrations and
// an end-to-end demo.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/ingest/serving"
	"github.com/vigil-ml/vigil/internal/app"
	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	app := newApp()
	if err := app.Run(flagsFirst(app, os.Args)); err != nil {
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
				Name:   "gateway",
				Usage:  "run the HTTP ingest gateway (POST /v1/events, /v1/labels; /metrics, /healthz, /readyz) publishing to Kafka until interrupted",
				Flags:  gatewayFlags(),
				Action: runGateway,
			},
			{
				Name:   "migrate",
				Usage:  "create or upgrade the ClickHouse tables, then exit",
				Flags:  configFlags(),
				Action: runMigrate,
			},
			{
				Name:   "bridge",
				Usage:  "read a serving stack's inference topics (MLServer, Seldon Core v2), pair requests with responses and publish them as prediction events, until interrupted",
				Flags:  bridgeFlags(),
				Action: runBridge,
			},
			{
				Name:   "demo",
				Usage:  "run a simulated model service through the whole pipeline and print the per-window table",
				Flags:  demoFlags(),
				Action: runDemo,
			},
			referenceCommand(),
			queryCommand(),
			reportCommand(),
			uiCommand(),
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
							if _, err := alerting.LoadRules(cfg.Alerts.Rules); err != nil {
								return err
							}
						}
						fmt.Fprintln(c.App.Writer, "config ok")
						return nil
					},
				}, {
					Name:  "docs",
					Usage: "print docs/CONFIG.md, the table of every option, made from the option table (go run ./cmd/vigil config docs > docs/CONFIG.md)",
					Action: func(c *cli.Context) error {
						_, err := io.WriteString(c.App.Writer, configDocs())
						return err
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

// setup resolves a command's config (resolveConfig) and builds its logger.
func setup(c *cli.Context) (Config, zerolog.Logger, error) {
	cfg, err := resolveConfig(c)
	if err != nil {
		return cfg, zerolog.Nop(), err
	}
	log, err := newLogger(cfg)
	return cfg, log, err
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// openSink resolves a command's config and starts a ClickHouse sink (which
// runs the migrations); the caller shuts it down.
func openSink(c *cli.Context) (*clickhouse.Sink, error) {
	cfg, log, err := setup(c)
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
	cfg, log, err := setup(c)
	if err != nil {
		return err
	}
	return app.Migrate(c.Context, cfg.sinkConfig(), log)
}

func runBridge(c *cli.Context) error {
	cfg, log, err := setup(c)
	if err != nil {
		return err
	}
	bc := cfg.bridgeConfig()
	if bc.Serving.Mapping, err = serving.LoadMapping(cfg.Serving.Mapping); err != nil {
		return err
	}
	ctx, stop := signalContext(c.Context)
	defer stop()
	return app.RunBridge(ctx, bc, log)
}

func runProcess(c *cli.Context) error {
	cfg, log, err := setup(c)
	if err != nil {
		return err
	}
	if cfg.MaxMemory > 0 {
		debug.SetMemoryLimit(int64(cfg.MaxMemory))
	}
	ctx, stop := signalContext(c.Context)
	defer stop()
	return app.Run(ctx, cfg.appConfig(), log)
}

func runGateway(c *cli.Context) error {
	cfg, log, err := setup(c)
	if err != nil {
		return err
	}
	if cfg.MaxMemory > 0 {
		debug.SetMemoryLimit(int64(cfg.MaxMemory))
	}
	gc := cfg.gatewayConfig()
	if gc.Serving.Mapping, err = serving.LoadMapping(cfg.Serving.Mapping); err != nil {
		return err
	}
	ctx, stop := signalContext(c.Context)
	defer stop()
	return app.RunGateway(ctx, gc, log)
}
