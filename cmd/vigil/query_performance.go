package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/internal/tableprint"
	"github.com/vigil-ml/vigil/processors/performance"
)

func queryPerformanceCommand() *cli.Command {
	return &cli.Command{
		Name:  "performance",
		Usage: "model performance per prediction window (or coarser buckets), from the states in vigil_performance",
		Flags: append(append(configFlags(), rangeFlags()...),
			&cli.StringFlag{Name: "model", Required: true, Usage: "model name"},
			&cli.StringFlag{Name: "version", Value: "*", Usage: "model version (default: each version apart)"},
			&cli.StringFlag{Name: "segment", Usage: "a segment such as region=eu (default: all predictions)"},
			&cli.DurationFlag{Name: "every", Usage: "merge windows into buckets of this size (e.g. 1h; default: each stored window)"},
		),
		Description: queryDescription,
		Action:      runQueryPerformance,
	}
}

func queryLabelsCommand() *cli.Command {
	return &cli.Command{
		Name:        "labels",
		Description: queryDescription,
		Usage:       "what became of the labels received in a period: matched, expired, unknown prediction, duplicates",
		Flags: append(configFlags(),
			&cli.DurationFlag{Name: "since", Value: 24 * time.Hour, Usage: "labels received this long ago or later"},
		),
		Action: func(c *cli.Context) error {
			cfg, err := resolveConfig(c)
			if err != nil {
				return err
			}
			sink, err := openSink(c)
			if err != nil {
				return err
			}
			defer sink.Shutdown(context.Background())
			acc, err := sink.Labels().LabelAccounts(c.Context, time.Now().Add(-c.Duration("since")), cfg.Labels.Horizon)
			if err != nil {
				return err
			}
			if len(acc) == 0 {
				noRows(c, "no labels received in the last %v", c.Duration("since"))
				return nil
			}
			tableprint.LabelAccounts(c.App.Writer, acc)
			return nil
		},
	}
}

func runQueryPerformance(c *cli.Context) error {
	from, to := queryRange(c)
	sink, err := openSink(c)
	if err != nil {
		return err
	}
	defer sink.Shutdown(context.Background())
	windows, err := sink.Labels().PerformanceStates(c.Context, c.String("model"), c.String("version"), c.String("segment"), from, to)
	if err != nil {
		return err
	}
	merged, err := performance.MergeWindows(windows, c.Duration("every"))
	if err != nil {
		return err
	}
	if len(merged) == 0 {
		noRows(c, "no performance windows of model %q%s%s with window start in [%s, %s) (are there labels? vigil query labels says)",
			c.String("model"), versionText(c.String("version")), segmentText(c.String("segment")), from.Format(time.RFC3339), to.Format(time.RFC3339))
		return nil
	}
	tableprint.Performance(c.App.Writer, merged)
	return nil
}

func segmentText(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf(" segment %q", s)
}
