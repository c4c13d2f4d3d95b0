package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/schemas"
)

func queryCommand() *cli.Command {
	return &cli.Command{
		Name:        "query",
		Usage:       "compute statistics from the stored window states",
		Description: queryDescription,
		Before:      oneShot,
		Subcommands: []*cli.Command{{
			Name:  "drift",
			Usage: "drift of each feature against the model version's reference, per window (or coarser buckets)",
			Flags: append(append(configFlags(), rangeFlags()...),
				&cli.StringFlag{Name: "model", Required: true, Usage: "model name"},
				&cli.StringFlag{Name: "version", Usage: "model version (default: every version, each against its own reference)"},
				&cli.DurationFlag{Name: "every", Usage: "merge windows into buckets of this size (e.g. 1h; default: each stored window)"},
				&cli.StringSliceFlag{Name: "feature", Usage: "only these features (repeatable; a vector feature's name selects its embedding rows)"},
				&cli.StringFlag{Name: "by", Usage: "a segment key (e.g. region): drift per value of it, from the states vigil process --segment-keys keeps"},
				&cli.BoolFlag{Name: "store", Usage: "also write the results to vigil_drift (replacing earlier results of the same windows)"},
			),
			Description: queryDescription,
			Action:      runQueryDrift,
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

// queryDescription is the help of every query command on what it prints.
const queryDescription = "Results go to stdout, logs to stderr (at warn unless --log-level says otherwise).\n" +
	"When nothing matches, stdout stays empty, stderr says \"no rows matched\" and the exit status is 0."

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
	buckets, err := drift.Buckets(c.Context, sink.Windows(), refs, cfg.driftOptions(), drift.BucketQuery{
		Model: c.String("model"), Version: c.String("version"), By: c.String("by"), From: from, To: to, Every: c.Duration("every")})
	if err != nil {
		return err
	}
	if len(buckets) == 0 {
		noRows(c, "no window states of model %q%s with window start in [%s, %s)", c.String("model"), versionText(c.String("version")), from.Format(time.RFC3339), to.Format(time.RFC3339))
		return nil
	}
	printDrift(c.App.Writer, buckets, c.StringSlice("feature"))
	if c.Bool("store") {
		return sink.Windows().WriteDrift(c.Context, buckets)
	}
	return nil
}

// noRows says on stderr that a query matched nothing; stdout stays empty
// and the exit status 0 (an empty answer is an answer).
func noRows(c *cli.Context, format string, args ...any) {
	var names []string // vigil and the command path, innermost first
	for _, l := range c.Lineage() {
		if l.Command != nil && l.Command.Name != "" {
			names = append(names, l.Command.Name)
		}
	}
	slices.Reverse(names)
	fmt.Fprintf(c.App.ErrWriter, "%s: no rows matched: %s\n", strings.Join(names, " "), fmt.Sprintf(format, args...))
}

func versionText(v string) string {
	if v == "" || v == "*" {
		return " (any version)"
	}
	return fmt.Sprintf(" version %q", v)
}

func printDrift(out io.Writer, buckets []drift.Bucket, only []string) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "window_start\tversion\tsegment\tfeature\tmethod\tscore\t±bound\tthreshold\tdrift\tpsi\tjs\tks_p\tks_method\twasserstein_n\tmissing\tout_of_range\tnew_cat\t")
	for _, b := range buckets {
		for _, d := range slices.Concat(b.Drift.Features, b.Drift.Embeddings) {
			if len(only) > 0 && !contains(only, d.Feature) && !(d.Kind == schemas.Vector && contains(only, vectorOf(d.Feature))) {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
				b.Start.Format("2006-01-02 15:04:05"), b.ModelVersion, b.Segment, d.Feature, d.Method, num(d.Score), bound(d.Bounds.Score), num(d.Threshold), yes(d.Drifted),
				withBound(d.PSI, d.Bounds.PSI), withBound(d.JensenShannon, d.Bounds.JensenShannon), num(d.KSPValue), dash(d.KSMethod),
				withBound(d.WassersteinNorm, d.Bounds.WassersteinNorm), num(d.MissingRate), withBound(d.OutOfRangeRate, d.Bounds.OutOfRangeRate), num(d.NewCategoryRate))
		}
		for _, d := range b.Drift.Skipped {
			if len(only) > 0 && !contains(only, d.Feature) && !(d.Kind == schemas.Vector && contains(only, vectorOf(d.Feature))) {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t(not evaluated: %s)\t\t\t\t\t\t\t\t\t\t%s\t\t\t\n",
				b.Start.Format("2006-01-02 15:04:05"), b.ModelVersion, b.Segment, d.Feature, d.Reason, num(d.MissingRate))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t(dataset)\tshare\t%s\t\t%s\t%s\t\t\t\t\t\t\t\t\t\n",
			b.Start.Format("2006-01-02 15:04:05"), b.ModelVersion, b.Segment, num(b.Drift.Share), num(drift.EvidentlyDriftShare), yes(b.Drift.Drifted))
	}
	tw.Flush()
}

// vectorOf is the vector feature of an embedding row ("emb@ratio": "emb").
func vectorOf(row string) string {
	if i := strings.LastIndexByte(row, '@'); i >= 0 {
		return row[:i]
	}
	return row
}

// bound prints an error bound: "exact" for 0, "?" when unknown.
func bound(b float64) string {
	switch {
	case b == 0:
		return "exact"
	case math.IsNaN(b):
		return "?"
	}
	return "±" + num(b)
}

// withBound prints a number and, when it is not exact, its bound.
func withBound(v, b float64) string {
	if b == 0 || math.IsNaN(v) {
		return num(v)
	}
	if math.IsNaN(b) {
		return num(v) + "±?"
	}
	return num(v) + "±" + num(b)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
