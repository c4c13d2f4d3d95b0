package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/internal/app"
	"github.com/vigil-ml/vigil/internal/report"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "write one self-contained HTML report of a model (drift, data quality, performance, alerts) from the stored states",
		Description: "The file holds its charts, data, styles and script: open it from disk, offline, in any browser.\n" +
			"The numbers are those vigil query drift and vigil query performance print for the same version, range and --every.",
		Before: oneShot,
		Flags: append(append(configFlags(), rangeFlags()...),
			&cli.StringFlag{Name: "model", Required: true, Usage: "model name"},
			&cli.StringFlag{Name: "version", Usage: "model version (default: the one with the newest windows in the range)"},
			&cli.DurationFlag{Name: "every", Usage: fmt.Sprintf("merge windows into buckets of this size (e.g. 1h; default: each stored window, or a coarser size when there are more than %d)", report.MaxBuckets)},
			&cli.StringFlag{Name: "by", Usage: "a segment key (e.g. region): a drift section per value of it (from the states vigil process --segment-keys keeps)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "report.html", Usage: "the HTML file to write"},
		),
		Action: runReport,
	}
}

func runReport(c *cli.Context) error {
	cfg, err := resolveConfig(c)
	if err != nil {
		return err
	}
	from, to := queryRange(c)
	sink, err := openSink(c)
	if err != nil {
		return err
	}
	defer sink.Shutdown(context.Background())
	out := c.String("output")
	r, size, err := app.WriteReport(c.Context, sink, app.ReportQuery{Model: c.String("model"), Version: c.String("version"),
		From: from, To: to, Every: c.Duration("every"), By: c.String("by"), Drift: cfg.driftOptions()}, out)
	if errors.Is(err, report.ErrNoData) {
		noRows(c, "no window states of model %q%s with window start in [%s, %s)", c.String("model"), versionText(c.String("version")), from.Format(time.RFC3339), to.Format(time.RFC3339))
		return nil
	}
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		abs = out
	}
	every := r.Every
	if every == "" {
		every = "each window"
	}
	fmt.Fprintf(c.App.Writer, "%s\n", abs)
	fmt.Fprintf(c.App.ErrWriter, "vigil report: model %s version %s, %d buckets (%s), %d features, %d bytes: open file://%s\n",
		r.Model, r.Version, len(r.Windows), every, len(r.Features), size, abs)
	return nil
}

func uiCommand() *cli.Command {
	return &cli.Command{
		Name:  "ui",
		Usage: "serve the live, read-only UI at /ui/ (models, model pages, feature pages) from the stored states until interrupted (--http-addr, default " + app.DefaultUIAddr + "; --ui-tokens)",
		Flags: configFlags(),
		Action: func(c *cli.Context) error {
			cfg, log, err := setup(c)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(c.Context)
			defer stop()
			return app.RunUI(ctx, app.UIConfig{Sink: cfg.sinkConfig(), Addr: cfg.HTTP.Addr, TLSCert: cfg.HTTP.TLSCert, TLSKey: cfg.HTTP.TLSKey,
				Tokens: cfg.UI.Tokens, Drift: cfg.driftOptions()}, log)
		},
	}
}
