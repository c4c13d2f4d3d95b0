package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

func queryCommand() *cli.Command {
	return &cli.Command{
		Name:  "query",
		Usage: "compute statistics from the stored window states",
		Subcommands: []*cli.Command{{
			Name:  "drift",
			Usage: "drift of each feature against the model version's reference, per window (or coarser buckets)",
			Flags: append(append(configFlags(), rangeFlags()...),
				&cli.StringFlag{Name: "model", Required: true, Usage: "model name"},
				&cli.StringFlag{Name: "version", Usage: "model version (default: every version, each against its own reference)"},
				&cli.DurationFlag{Name: "every", Usage: "merge windows into buckets of this size (e.g. 1h; default: each stored window)"},
				&cli.StringSliceFlag{Name: "feature", Usage: "only these features (repeatable)"},
				&cli.StringFlag{Name: "by", Usage: "a segment key (e.g. region): drift per value of it, from the states `vigil process --segment-keys` keeps"},
				&cli.BoolFlag{Name: "store", Usage: "also write the results to vigil_drift (replacing earlier results of the same windows)"},
			),
			Action: runQueryDrift,
		}, queryPerformanceCommand(), queryLabelsCommand()},
	}
}

// rangeFlags returns new --from and --to flags for a query command (a flag
// keeps its value, so commands do not share them); queryRange reads them.
func rangeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.TimestampFlag{Name: "from", Layout: time.RFC3339, Usage: "first window start (RFC 3339; default 24h before --to)"},
		&cli.TimestampFlag{Name: "to", Layout: time.RFC3339, Usage: "end of the range, exclusive (RFC 3339; default now)"},
	}
}

// queryRange is [--from, --to): by default the 24 hours before now.
func queryRange(c *cli.Context) (from, to time.Time) {
	to = time.Now().UTC()
	if t := c.Timestamp("to"); t != nil {
		to = *t
	}
	from = to.Add(-24 * time.Hour)
	if t := c.Timestamp("from"); t != nil {
		from = *t
	}
	return from, to
}

func runQueryDrift(c *cli.Context) error {
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
	refs, err := sink.References().LatestReferences(c.Context)
	if err != nil {
		return err
	}
	buckets, err := driftBuckets(c.Context, sink, refs, cfg.driftOptions(), c.String("model"), c.String("version"), c.String("by"), from, to, c.Duration("every"))
	if err != nil {
		return err
	}
	printDrift(c.App.Writer, buckets, c.StringSlice("feature"))
	if c.Bool("store") {
		return sink.Windows().WriteDrift(c.Context, toDriftWindows(c.String("model"), buckets))
	}
	return nil
}

func toDriftWindows(model string, buckets []bucketDrift) []clickhouse.DriftWindow {
	out := make([]clickhouse.DriftWindow, len(buckets))
	for i, b := range buckets {
		out[i] = clickhouse.DriftWindow{Model: model, ModelVersion: b.Version, Segment: b.Segment, Start: b.Start, End: b.End, RefID: b.RefID, Drift: b.Drift}
	}
	return out
}

// bucketDrift is the drift of the merged windows of one bucket and model version.
type bucketDrift struct {
	Start   time.Time
	End     time.Time
	Version string
	Segment string // "" for all events
	Events  uint64
	RefID   uint64
	Drift   drift.WindowDrift
}

// errNoReference says what to do when a model version has no reference.
var errNoReference = errors.New("no reference profile (build one with `vigil reference build`)")

// driftBuckets merges the stored window states of a model in [from, to)
// over partitions and into buckets of size every (0: each window), and
// evaluates each bucket against its model version's newest reference. by
// selects the states: "" those of all events, a segment key those of each
// of its values, "*" every state (each segment apart).
func driftBuckets(ctx context.Context, sink *clickhouse.Sink, refs map[[2]string]*reference.Profile, opts drift.Options, model, version, by string, from, to time.Time, every time.Duration) ([]bucketDrift, error) {
	states, err := sink.Windows().WindowStates(ctx, model, version, from, to)
	if err != nil {
		return nil, err
	}
	type key struct {
		start            int64
		version, segment string
	}
	merged := map[key]*stats.WindowState{}
	var order []key
	for _, st := range states {
		switch {
		case by == "*":
		case by == "" && st.Segment != "":
			continue
		case by != "" && !strings.HasPrefix(st.Segment, by+"="):
			continue
		}
		start, end := st.WindowStart, st.WindowEnd
		if every > 0 {
			start -= mod(start, every.Milliseconds())
			end = start + every.Milliseconds()
		}
		k := key{start, st.ModelVersion, st.Segment}
		m := merged[k]
		if m == nil {
			// Re-key a copy so that windows of one bucket merge.
			m = stats.NewWindowState(stats.Key{Model: st.Model, ModelVersion: st.ModelVersion, Segment: st.Segment, WindowStart: start}, end)
			merged[k], order = m, append(order, k)
		}
		st.Key, st.WindowEnd = m.Key, m.WindowEnd
		m.Merge(st)
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].start != order[j].start {
			return order[i].start < order[j].start
		}
		if order[i].version != order[j].version {
			return order[i].version < order[j].version
		}
		return order[i].segment < order[j].segment
	})
	var out []bucketDrift
	for _, k := range order {
		ref := refs[[2]string{model, k.version}]
		if ref == nil {
			return nil, fmt.Errorf("model %s version %q: %w", model, k.version, errNoReference)
		}
		m := merged[k]
		out = append(out, bucketDrift{
			Start: time.UnixMilli(k.start).UTC(), End: time.UnixMilli(m.WindowEnd).UTC(), Version: k.version, Segment: k.segment, Events: m.Events, RefID: ref.ID,
			Drift: drift.EvaluateWindowWith(ref, m, opts),
		})
	}
	return out, nil
}

func mod(a, b int64) int64 { return ((a % b) + b) % b }

func printDrift(out io.Writer, buckets []bucketDrift, only []string) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "window_start\tversion\tsegment\tfeature\tmethod\tscore\tthreshold\tdrift\tpsi\tjs\tks_p\twasserstein_n\tmissing\tout_of_range\tnew_cat\t")
	for _, b := range buckets {
		for _, d := range b.Drift.Features {
			if len(only) > 0 && !contains(only, d.Feature) {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
				b.Start.Format("2006-01-02 15:04:05"), b.Version, b.Segment, d.Feature, d.Method, num(d.Score), num(d.Threshold), yes(d.Drifted),
				num(d.PSI), num(d.JensenShannon), num(d.KSPValue), num(d.WassersteinNorm), num(d.MissingRate), num(d.OutOfRangeRate), num(d.NewCategoryRate))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t(dataset)\tshare\t%s\t%s\t%s\t\t\t\t\t\t\t\t\n",
			b.Start.Format("2006-01-02 15:04:05"), b.Version, b.Segment, num(b.Drift.Share), num(drift.EvidentlyDriftShare), yes(b.Drift.Drifted))
	}
	tw.Flush()
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

func yes(b bool) string {
	if b {
		return "DRIFT"
	}
	return "ok"
}
