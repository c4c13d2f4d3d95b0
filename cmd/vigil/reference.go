package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/multivariate"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// referenceCommand is `vigil reference build|list`.
func referenceCommand() *cli.Command {
	return &cli.Command{
		Name:        "reference",
		Usage:       "build and list reference profiles: what normal looks like for a model version",
		Description: "Results go to stdout, logs to stderr (at warn unless --log-level says otherwise).",
		Before:      oneShot,
		Subcommands: []*cli.Command{
			{
				Name:      "build",
				Usage:     "profile a reference file (.csv, .jsonl/.ndjson, .parquet), or the stored production windows of a time range (--from-production), and store it in ClickHouse, where it takes effect as the model version's newest reference",
				ArgsUsage: "FILE | --from-production --from T --to T",
				Description: "The profile goes to stdout, logs to stderr (at warn unless --log-level says otherwise).\n" +
					"Flags may come before or after FILE.",
				Flags: append(configFlags(),
					&cli.StringFlag{Name: "model", Required: true, Usage: "model the reference is for"},
					&cli.StringFlag{Name: "version", Aliases: []string{"model-version"}, Usage: "model version the reference is for (default: none)"},
					&cli.IntFlag{Name: "bins", Value: reference.DefaultBins, Usage: "equal-frequency bins of numeric features"},
					&cli.IntFlag{Name: "chunk-rows", Usage: "split a FILE into chunks of N consecutive rows and store, per feature and distance method, the mean and std of each chunk's drift score against the whole reference, for drift.overrides' from_reference thresholds (0: off; needs at least 2*N rows)"},
					&cli.Float64Flag{Name: "variance-share", Value: multivariate.DefaultVarianceShare, Usage: "multivariate drift: fit a PCA on a FILE's features keeping the fewest components that explain more than this share of the variance, thresholds from --chunk-rows chunks (or 10 chunks); 0: fit none"},
					&cli.StringSliceFlag{Name: "column", Usage: "declare a column's kind, NAME=number|string|bool (repeatable); for example zip=string"},
					&cli.StringSliceFlag{Name: "exclude", Usage: "a column not to read, such as an id or a time (repeatable)"},
					&cli.StringFlag{Name: "segment", Usage: "a segment key (e.g. region): also profile the rows of each of its values (from the column s.KEY of events, or a string column KEY, which is then not a feature; with --from-production, the stored segment states of vigil process --segment-keys KEY); segment drift then compares each segment with its own profile"},
					&cli.BoolFlag{Name: "dry-run", Usage: "print the profile without writing it to ClickHouse"},
					&cli.BoolFlag{Name: "from-production", Usage: "build from the model version's stored window states whose window starts in [--from, --to) instead of a FILE"},
					&cli.TimestampFlag{Name: "from", Layout: time.RFC3339, Usage: "with --from-production: first window start (RFC 3339)"},
					&cli.TimestampFlag{Name: "to", Layout: time.RFC3339, Usage: "with --from-production: end of the range, exclusive (RFC 3339; default now)"},
				),
				Action: runReferenceBuild,
			},
			{
				Name:   "list",
				Usage:  "list the stored references; the newest of each model version is the one in force",
				Flags:  configFlags(),
				Action: runReferenceList,
			},
		},
	}
}

func runReferenceBuild(c *cli.Context) error {
	if seg := c.String("segment"); strings.ContainsAny(seg, "=,") {
		return fmt.Errorf("reference build: --segment %q: want a segment key, such as region (no '=' or ',')", seg)
	}
	if c.Bool("from-production") {
		return runReferenceBuildFromProduction(c)
	}
	if c.IsSet("from") || c.IsSet("to") {
		return errors.New("reference build: --from and --to select production windows: add --from-production (and no FILE)")
	}
	if c.Int("chunk-rows") < 0 {
		return fmt.Errorf("reference build: --chunk-rows %d: want 0 (off) or a number of rows", c.Int("chunk-rows"))
	}
	if c.NArg() != 1 {
		return fmt.Errorf("reference build: want one FILE argument (or --from-production), got %d: %q", c.NArg(), c.Args().Slice())
	}
	path := c.Args().First()
	cfg, log, err := setup(c)
	if err != nil {
		return err
	}
	kinds, err := parseColumnKinds(c.StringSlice("column"))
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c.Context)
	defer stop()

	bopts := reference.BuilderOptions{Bins: c.Int("bins"), ExactValues: cfg.Reference.ExactValues, ChunkRows: c.Int("chunk-rows"), ChunkScorer: drift.ChunkScorer, Segment: c.String("segment")}
	if share := c.Float64("variance-share"); share != 0 {
		fit, err := multivariate.NewProfileFitter(multivariate.FitOptions{VarianceShare: share, ChunkRows: c.Int("chunk-rows")})
		if err != nil {
			return fmt.Errorf("reference build: --variance-share: %w", err)
		}
		bopts.Multivariate = fit
	}
	began := time.Now()
	p, err := reference.BuildFromFile(ctx, path,
		reference.Meta{Model: c.String("model"), ModelVersion: c.String("version")},
		reference.ReadOptions{Kinds: kinds, Exclude: c.StringSlice("exclude")}, bopts)
	if err != nil {
		return err
	}
	log.Info().Str("file", path).Uint64("rows", p.Rows).Int("features", len(p.Features)).Dur("took", time.Since(began)).Msg("reference built")
	if c.Bool("dry-run") {
		warnReference(log, p, nil)
	} else {
		sink, err := clickhouse.New(cfg.sinkConfig(), log)
		if err != nil {
			return err
		}
		if err := sink.Start(ctx); err != nil {
			return err
		}
		seen, err := sink.Windows().FeatureNames(ctx, p.Model, p.ModelVersion, time.Now().Add(-featureLookback))
		if err != nil {
			log.Warn().Err(err).Msg("cannot compare the reference's columns with the production features")
		}
		warnReference(log, p, seen)
		err = sink.References().WriteReference(ctx, p)
		if err = errors.Join(err, sink.Shutdown(context.Background())); err != nil {
			return err
		}
	}
	return printProfile(c.App.Writer, p, c.Bool("dry-run"))
}

// featureLookback is how far back `reference build` looks for the features
// of the production events to compare the reference's columns with.
const featureLookback = 7 * 24 * time.Hour

// warnReference logs reference.Warnings at warn (seen: the production
// features, nil when unknown or none stored).
func warnReference(log zerolog.Logger, p *reference.Profile, seen []string) {
	if len(seen) == 0 {
		seen = nil
	}
	for _, w := range reference.Warnings(p, seen) {
		log.Warn().Msg(w)
	}
}

// runReferenceBuildFromProduction builds the reference from the stored
// window states of [--from, --to) (reference.BuildFromWindowsOptions).
func runReferenceBuildFromProduction(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("reference build: FILE %q and --from-production together: build from one or the other", c.Args().First())
	}
	if c.IsSet("chunk-rows") {
		return errors.New("reference build: --chunk-rows applies to a FILE, not to --from-production (window states keep no row order to chunk)")
	}
	for _, f := range []string{"column", "exclude"} {
		if c.IsSet(f) {
			return fmt.Errorf("reference build: --%s applies to a FILE, not to --from-production (window states already hold typed features)", f)
		}
	}
	if c.Timestamp("from") == nil {
		return errors.New("reference build --from-production: --from is required (RFC 3339, for example 2026-05-01T00:00:00Z)")
	}
	from, to := c.Timestamp("from").UTC(), time.Now().UTC()
	if t := c.Timestamp("to"); t != nil {
		to = t.UTC()
	}
	if !from.Before(to) {
		return fmt.Errorf("reference build --from-production: empty range [%s, %s): --from must be before --to", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	cfg, log, err := setup(c)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c.Context)
	defer stop()
	sink, err := clickhouse.New(cfg.sinkConfig(), log)
	if err != nil {
		return err
	}
	if err := sink.Start(ctx); err != nil {
		return err
	}
	began := time.Now()
	p, err := reference.BuildFromStore(ctx, sink.Windows(), c.String("model"), c.String("version"), from, to, reference.BuilderOptions{Bins: c.Int("bins"), ExactValues: cfg.Reference.ExactValues, Segment: c.String("segment")})
	if errors.Is(err, reference.ErrNoWindows) {
		err = fmt.Errorf("reference build --from-production: %w (check the model, --version and the range; windows are stored by `vigil process`)", err)
	}
	if err == nil {
		log.Info().Str("source", p.Source).Uint64("rows", p.Rows).Int("features", len(p.Features)).Dur("took", time.Since(began)).Msg("reference built")
		warnReference(log, p, nil)
	}
	if err == nil && !c.Bool("dry-run") {
		err = sink.References().WriteReference(ctx, p)
	}
	if err = errors.Join(err, sink.Shutdown(context.Background())); err != nil {
		return err
	}
	return printProfile(c.App.Writer, p, c.Bool("dry-run"))
}

func parseColumnKinds(specs []string) (map[string]schemas.Kind, error) {
	kinds := map[string]schemas.Kind{}
	for _, s := range specs {
		name, kind, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--column %q: want NAME=number|string|bool", s)
		}
		switch strings.ToLower(kind) {
		case "number":
			kinds[name] = schemas.Number
		case "string":
			kinds[name] = schemas.String
		case "bool":
			kinds[name] = schemas.Bool
		default:
			return nil, fmt.Errorf("--column %q: kind %q is not number, string or bool", s, kind)
		}
	}
	return kinds, nil
}

// printProfile prints the reference's identity and one line per feature.
func printProfile(out io.Writer, p *reference.Profile, dryRun bool) error {
	what := "stored"
	if dryRun {
		what = "built (dry run, not stored)"
	}
	fmt.Fprintf(out, "reference %d of %s version %q %s: %d rows from %s\n\n", p.ID, p.Model, p.ModelVersion, what, p.Rows, p.Source)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FEATURE\tKIND\tCOUNT\tMISSING\tMEAN\tSTD\tMIN\tMAX\tBINS / TOP VALUES")
	for i := range p.Features {
		f := &p.Features[i]
		if name, part, ok := stats.ParseVectorPart(f.Name); ok {
			// A vector feature: one line, the statistics of its norms.
			if part < 0 {
				d := 0
				for p.Feature(stats.VectorComponent(name, d)) != nil {
					d++
				}
				fmt.Fprintf(tw, "%s\tvector[%d]\t%d\t%s\t%s\t%s\t%s\t%s\t(of the norms) %d components, each with bins and quantiles\n",
					name, d, f.Count, missingShare(f), num(f.Mean), num(f.Std), num(f.Min), num(f.Max), d)
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t", f.Name, f.Kind, f.Count, missingShare(f))
		if f.Kind == schemas.Number {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d bins, %s quantiles\n", num(f.Mean), num(f.Std), num(f.Min), num(f.Max),
				max(len(f.Hist)-2, 0), summaryKind(f))
			continue
		}
		fmt.Fprintf(tw, "\t\t\t\t%s\n", topValues(f, 3))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(p.Segments) > 0 {
		fmt.Fprintf(out, "\nsegment profiles (%d):", len(p.Segments))
		for _, sp := range p.Segments {
			fmt.Fprintf(out, " %s (%d rows)", sp.Segment, sp.Rows)
		}
		fmt.Fprintln(out)
	}
	if err := printMultivariate(out, p); err != nil {
		return err
	}
	return printChunkThresholds(out, p)
}

// printMultivariate says what multivariate model the profile holds.
func printMultivariate(out io.Writer, p *reference.Profile) error {
	m, err := multivariate.ModelOf(p)
	if err != nil || m == nil {
		return err
	}
	_, err = fmt.Fprintf(out, "\nmultivariate: %d columns, %d principal components (%.1f%% of the variance), mean reconstruction error %s;\n"+
		"  thresholds from %d chunks of %d rows (mean -/+ 3 std of the chunk means): %s .. %s\n",
		len(m.Columns), len(m.Components), 100*m.Explained, num(m.MeanError), m.Chunks, m.ChunkRows, num(m.Lower), num(m.Upper))
	return err
}

// printChunkThresholds lists the thresholds from_reference overrides would
// use (mean + 3 std of the chunk scores), when the profile has chunk scores.
func printChunkThresholds(out io.Writer, p *reference.Profile) error {
	var tw *tabwriter.Writer
	for i := range p.Features {
		f := &p.Features[i]
		methods := slices.Sorted(maps.Keys(f.ChunkScores))
		for _, m := range methods {
			if tw == nil {
				fmt.Fprintln(out, "\nthresholds from reference chunks (mean + 3 std of the chunk scores):")
				tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "FEATURE\tMETHOD\tCHUNKS\tMEAN\tSTD\tTHRESHOLD")
			}
			cs := f.ChunkScores[m]
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", f.Name, m, cs.Chunks, num(cs.Mean), num(cs.Std), num(cs.Mean+drift.ReferenceSigmas*cs.Std))
		}
	}
	if tw == nil {
		return nil
	}
	return tw.Flush()
}

func missingShare(f *reference.FeatureProfile) string {
	total := f.Count + f.Missing + f.NaN + f.Inf
	if total == 0 || f.Missing == 0 {
		return strconv.FormatUint(f.Missing, 10)
	}
	return fmt.Sprintf("%d (%.1f%%)", f.Missing, 100*float64(f.Missing)/float64(total))
}

func summaryKind(f *reference.FeatureProfile) string {
	switch {
	case f.Quantiles == nil:
		return "no"
	case f.Exact:
		return "exact"
	}
	return strconv.Itoa(len(f.Quantiles))
}

func num(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// topValues returns the k most frequent values with their shares.
func topValues(f *reference.FeatureProfile, k int) string {
	type vc struct {
		v string
		n uint64
	}
	var all []vc
	for v, n := range f.Counts {
		all = append(all, vc{v, n})
	}
	slices.SortFunc(all, func(a, b vc) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var parts []string
	for i, e := range all {
		if i == k {
			parts = append(parts, fmt.Sprintf("+%d more", len(all)-k))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", strconv.Quote(e.v), 100*float64(e.n)/float64(max(f.Count, 1))))
	}
	if f.Other > 0 {
		parts = append(parts, fmt.Sprintf("other %d", f.Other))
	}
	return strings.Join(parts, ", ")
}

func runReferenceList(c *cli.Context) error {
	sink, err := openSink(c)
	if err != nil {
		return err
	}
	refs, err := sink.References().ListReferences(c.Context)
	if err = errors.Join(err, sink.Shutdown(context.Background())); err != nil {
		return err
	}
	if len(refs) == 0 {
		fmt.Fprintln(c.App.Writer, "no references; build one with: vigil reference build --model M --version V FILE")
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tVERSION\tID\tCREATED\tROWS\tSOURCE\tIN FORCE")
	for i, r := range refs {
		// Sorted by model, version and id: the last of each version is in force.
		latest := i == len(refs)-1 || refs[i+1].Model != r.Model || refs[i+1].ModelVersion != r.ModelVersion
		mark := ""
		if latest {
			mark = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\n", r.Model, r.ModelVersion, r.ID, r.CreatedAt.Format(time.RFC3339), r.Rows, r.Source, mark)
	}
	return tw.Flush()
}
