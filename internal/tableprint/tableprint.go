// Package tableprint prints the tables the CLI and the demo share: model
// performance per window and the label accounts, aligned for a terminal.
package tableprint

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// LabelAccounts prints what became of the labels, a row per model (`vigil
// query labels`).
func LabelAccounts(out io.Writer, acc []clickhouse.LabelAccount) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tmessages\tevent ids\tduplicates\tmatched\texpired\tunknown\t")
	for _, a := range acc {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", a.Model, a.Messages, a.EventIDs, a.Duplicates, a.Matched, a.Expired, a.Unknown)
	}
	tw.Flush()
}

// Performance prints performance windows, a header each time the task
// changes (`vigil query performance`).
func Performance(out io.Writer, windows []performance.Window) {
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
