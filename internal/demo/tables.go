package demo

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/multivariate"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// printWindowTable prints per window the events, the mean, min and max of
// amount and the mean score of the model version's windows in [from, to),
// merged over partitions: the numbers of the README's per-window query
// (docs/TABLES.md) on vigil_feature_windows.
func printWindowTable(ctx context.Context, out io.Writer, sink *clickhouse.Sink, version string, from, to time.Time, deadLetterTopic string) error {
	all, err := sink.Windows().WindowStates(ctx, Model, version, from, to)
	if err != nil {
		return fmt.Errorf("read window table: %w", err)
	}
	merged := map[int64]*stats.WindowState{}
	var starts []int64
	for _, st := range all {
		if st.Segment != "" || st.ModelVersion != version {
			continue
		}
		m := merged[st.WindowStart]
		if m == nil {
			m = stats.NewWindowState(st.Key, st.WindowEnd)
			merged[st.WindowStart] = m
			starts = append(starts, st.WindowStart)
		}
		m.Merge(st)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(out, "\nPer-window statistics of model %s, version %s (from ClickHouse):\n\n", Model, version)
	fmt.Fprintln(tw, "window_start\tevents\tamount_mean\tamount_min\tamount_max\tscore_mean\t")
	var baseline float64
	for n, ws := range starts {
		m := merged[ws]
		amount, score := numeric(m, "amount"), numeric(m, schemas.PredictionScoreFeature)
		mean := round(amount.Sum/float64(amount.Count), 2)
		if n == 0 {
			baseline = mean
		}
		mark := ""
		if mean > 1.5*baseline {
			mark = "  <- shift"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.3f\t%s\n", time.UnixMilli(ws).UTC().Format("2006-01-02 15:04:05"), amount.Count,
			mean, round(amount.Min, 2), round(amount.Max, 2), round(score.Sum/float64(score.Count), 3), mark)
	}
	tw.Flush()
	late, err := sink.Windows().LateEventCount(ctx, Model, version)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%d windows; %d late events recorded in %s.vigil_late_events; 1 malformed message sent to the dead-letter topic %s.\n",
		len(starts), late, sink.Database(), deadLetterTopic)
	return nil
}

// numeric is the numeric state of feature in st (zero when absent).
func numeric(st *stats.WindowState, feature string) stats.NumericState {
	if fs := st.Features[feature]; fs != nil {
		return fs.Num
	}
	return stats.NumericState{}
}

// round rounds as ClickHouse's round(x, digits) does (half to even).
func round(x float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.RoundToEven(x*p) / p
}

// score formats a drift score as ClickHouse's toString(round(score, 3)).
func score(x float64) string {
	switch {
	case math.IsNaN(x):
		return "nan"
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	}
	return strconv.FormatFloat(round(x, 3), 'f', -1, 64)
}

func verdict(drifted bool) string {
	if drifted {
		return "DRIFT"
	}
	return "ok"
}

// driftFeatures are the columns of the drift table.
var driftFeatures = []string{"amount", "account_age_days", "country", "is_new_customer", schemas.PredictionScoreFeature, schemas.PredictionLabelFeature}

// printDrift prints, per window, the drift verdict of some features and of
// the prediction, as stored in vigil_drift (the README's drift query).
func printDrift(out io.Writer, buckets []drift.Bucket) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "window_start\tfeatures (method score verdict)\tdrift_share\tdataset\t")
	for _, b := range buckets {
		if b.Segment != "" {
			continue
		}
		var features []string
		for _, d := range sortedFeatures(b) {
			for _, f := range driftFeatures {
				if d.Feature == f {
					features = append(features, d.Feature+" "+string(d.Method)+" "+score(d.Score)+" "+verdict(d.Drifted))
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t\n", b.Start.UTC().Format("2006-01-02 15:04:05"), strings.Join(features, " | "), b.Drift.Share, verdict(b.Drift.Drifted))
	}
	return tw.Flush()
}

// printMultivariate prints the multivariate drift of the windows of all
// events (the query of docs/DRIFT.md, "Multivariate drift").
func printMultivariate(out io.Writer, results []multivariate.Result) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "window_start	events	reconstruction_error	lower	upper	verdict	")
	for _, r := range results {
		if r.Segment != "" {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", r.Start.Format("2006-01-02 15:04:05"), r.N, score(r.Score), score(r.Lower), score(r.Upper), verdict(r.Drifted))
	}
	return tw.Flush()
}

// printDriftByRegion prints the drift of amount per region and window.
func printDriftByRegion(out io.Writer, buckets []drift.Bucket) error {
	byWindow := map[time.Time][]drift.Bucket{}
	var windows []time.Time
	for _, b := range buckets {
		if b.Segment == "" {
			continue
		}
		if byWindow[b.Start] == nil {
			windows = append(windows, b.Start)
		}
		byWindow[b.Start] = append(byWindow[b.Start], b)
	}
	sort.Slice(windows, func(i, j int) bool { return windows[i].Before(windows[j]) })
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "window_start\tregions (segment score verdict)\t")
	for _, w := range windows {
		segs := byWindow[w]
		sort.Slice(segs, func(i, j int) bool { return segs[i].Segment < segs[j].Segment })
		var regions []string
		for _, b := range segs {
			for _, d := range b.Drift.Features {
				if d.Feature == "amount" {
					regions = append(regions, b.Segment+" "+score(d.Score)+" "+verdict(d.Drifted))
				}
			}
		}
		if len(regions) == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", w.UTC().Format("2006-01-02 15:04:05"), strings.Join(regions, " | "))
	}
	return tw.Flush()
}

// sortedFeatures are the features of b by name.
func sortedFeatures(b drift.Bucket) []drift.FeatureDrift {
	fs := append([]drift.FeatureDrift(nil), b.Drift.Features...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Feature < fs[j].Feature })
	return fs
}
