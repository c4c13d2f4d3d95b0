package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
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
		Action: runQueryPerformance,
	}
}

func queryLabelsCommand() *cli.Command {
	return &cli.Command{
		Name:  "labels",
		Usage: "what became of the labels received in a period: matched, expired, unknown prediction, duplicates",
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
			printLabelAccounts(c.App.Writer, acc)
			return nil
		},
	}
}

func printLabelAccounts(out io.Writer, acc []clickhouse.LabelAccount) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tmessages\tevent ids\tduplicates\tmatched\texpired\tunknown\t")
	for _, a := range acc {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", a.Model, a.Messages, a.EventIDs, a.Duplicates, a.Matched, a.Expired, a.Unknown)
	}
	tw.Flush()
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
	printPerformance(c.App.Writer, merged)
	return nil
}

func printPerformance(out io.Writer, windows []clickhouse.PerformanceWindow) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	f := func(v float64) string {
		if math.IsNaN(v) {
			return "-"
		}
		return fmt.Sprintf("%.3f", v)
	}
	header := ""
	for _, w := range windows {
		m := w.State.Metrics()
		var h, row string
		switch {
		case m.Binary != nil:
			b := m.Binary
			h = "accuracy\tprecision\trecall\tf1\troc_auc\tpr_auc\tlog_loss\tbrier\t"
			row = fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t", f(b.Accuracy), f(b.Precision), f(b.Recall), f(b.F1), f(b.ROCAUC), f(b.PRAUC), f(b.LogLoss), f(b.Brier))
		case m.Multiclass != nil:
			x := m.Multiclass
			h = "accuracy\tmacro_f1\tweighted_f1\tlog_loss\t"
			row = fmt.Sprintf("%s\t%s\t%s\t%s\t", f(x.Accuracy), f(x.MacroF1), f(x.WeightedF1), f(x.LogLoss))
		case m.Regression != nil:
			x := m.Regression
			h = "mae\trmse\tmape\tr2\tmean_error\t"
			row = fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t", f(x.MAE), f(x.RMSE), f(x.MAPE), f(x.R2), f(x.MeanError))
		}
		if h != header {
			fmt.Fprintln(tw, "window_start\tversion\tsegment\tpredictions\tlabeled\tcoverage\tdelay_p50\t"+h)
			header = h
		}
		seg := w.Segment
		if seg == "" {
			seg = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", w.Start.UTC().Format("2006-01-02 15:04:05"), w.ModelVersion, seg,
			m.Predictions, m.Labeled, f(m.LabelCoverage), delay(m.LabelDelayP50), row)
	}
	tw.Flush()
}

// delay formats a label delay in seconds as a duration ("32m20s").
func delay(seconds float64) string {
	if math.IsNaN(seconds) {
		return "-"
	}
	return (time.Duration(seconds) * time.Second).String()
}
