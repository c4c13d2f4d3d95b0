// Command throughput measures Vigil end to end on a real Kafka and a real
// ClickHouse: it fills a fresh topic through the SDK, then runs the processor
// with the ClickHouse sink on it until every event is counted and
// checkpointed, and prints events/s and events per CPU-second of both sides.
//
//	go run ./benchmarks/throughput -encoding arrow -events 1000000 -features 20 -runs 3
//
// Logs go to stderr, the results table to stdout. See benchmarks/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/benchmarks"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// Default event counts: about 10-20 s per run on 2 shared cores.
const (
	defaultArrowEvents = 1_000_000
	defaultJSONEvents  = 300_000
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "throughput:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg        benchmarks.ThroughputConfig
		kafkaAddr  = fs.String("kafka", envOr("VIGIL_KAFKA", "127.0.0.1:9092"), "Kafka brokers, comma-separated (env VIGIL_KAFKA)")
		runs       = fs.Int("runs", 1, "runs, each on a fresh topic and database; with more than one a median row follows")
		logLevel   = fs.String("log-level", "info", "zerolog level of the stderr log")
		cpuProfile = fs.String("cpuprofile", "", "write a CPU profile of the first run's processing phase to this file")
		memProfile = fs.String("memprofile", "", "write a heap profile of the first run's processing phase, taken near its peak RSS, to this file")
	)
	fs.StringVar(&cfg.ClickHouse, "clickhouse", envOr("VIGIL_CLICKHOUSE", "127.0.0.1:9000"), "ClickHouse native-protocol address (env VIGIL_CLICKHOUSE)")
	fs.StringVar(&cfg.Encoding, "encoding", wire.EncodingArrow, "wire encoding: arrow or json")
	fs.IntVar(&cfg.Events, "events", 0, fmt.Sprintf("events per run (default %d for arrow, %d for json)", defaultArrowEvents, defaultJSONEvents))
	fs.IntVar(&cfg.Features, "features", 20, "features per event (16:3:1 numeric:categorical:boolean)")
	fs.IntVar(&cfg.Partitions, "partitions", 1, "partitions of the input topic")
	fs.IntVar(&cfg.Models, "models", 0, "models, spread evenly over the partitions (default: one per partition)")
	fs.DurationVar(&cfg.Window, "window", time.Minute, "window size; events are 1ms apart")
	fs.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", 2*time.Second, "processor checkpoint interval")
	fs.BoolVar(&cfg.SkipRawEvents, "skip-raw-events", false, "do not write every event to vigil_events (production does)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep each run's topic, consumer group and database")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "bound on each run's processing phase")
	fs.IntVar(&cfg.MaxHeldBytes, "max-held-bytes", 0, "the processor's memory budget for what it holds, over its partitions (default pipeline.DefaultMaxHeldBytes)")
	maxMemory := fs.Int64("max-memory", 0, "soft limit of the Go heap in bytes (debug.SetMemoryLimit, as vigil process --max-memory); 0: none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	level, err := zerolog.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	cfg.Log = zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}).Level(level).With().Timestamp().Logger()
	cfg.Brokers = strings.Split(*kafkaAddr, ",")
	if *maxMemory > 0 {
		debug.SetMemoryLimit(*maxMemory)
	}
	if cfg.Events == 0 {
		cfg.Events = defaultArrowEvents
		if cfg.Encoding == wire.EncodingJSON {
			cfg.Events = defaultJSONEvents
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var results []*benchmarks.ThroughputResult
	for i := range *runs {
		rc := cfg
		if i == 0 && *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return fmt.Errorf("create CPU profile: %w", err)
			}
			defer f.Close()
			rc.CPUProfile = f
		}
		if i == 0 && *memProfile != "" {
			rc.MemProfile = func() (io.WriteCloser, error) { return os.Create(*memProfile) }
		}
		res, err := benchmarks.RunThroughput(ctx, rc)
		if err != nil {
			if res != nil && res.Counted > 0 { // measured, then failed to check or clean up: show what it measured
				_ = printTable(stdout, append(results, res))
			}
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		if err := res.Verify(); err != nil {
			return fmt.Errorf("run %d counted wrong: %w", i+1, err)
		}
		results = append(results, res)
	}
	return printTable(stdout, results)
}

// printTable writes one row per run and, for several runs, the median of
// every column.
func printTable(w io.Writer, results []*benchmarks.ThroughputResult) error {
	if len(results) == 0 {
		return errors.New("no results")
	}
	c := results[0].Config
	fmt.Fprintf(w, "encoding=%s events=%d features=%d partitions=%d models=%d raw_events=%v checkpoint=%v\n\n",
		c.Encoding, c.Events, c.Features, c.Partitions, c.Models, !c.SkipRawEvents, c.CheckpointInterval)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tproduce s\tproduce ev/s\tproduce ev/cpu-s\tprocess s\tstartup s\tfinal ckpt s\tprocess ev/s\tprocess cpu s\tprocess ev/cpu-s\tpeak rss MB\t")
	rows := make([][]float64, 0, len(results))
	for _, r := range results {
		rows = append(rows, []float64{
			r.Produce.Wall.Seconds(), r.Produce.EventsPerSec(), r.Produce.EventsPerCPUSec(),
			r.Process.Wall.Seconds(), r.Startup.Seconds(), r.FinalCheckpoint.Seconds(),
			r.Process.EventsPerSec(), r.Process.CPU.Seconds(), r.Process.EventsPerCPUSec(),
			float64(r.PeakRSS) / (1 << 20),
		})
	}
	for i, row := range rows {
		writeRow(tw, fmt.Sprint(i+1), row)
	}
	if len(rows) > 1 {
		med := make([]float64, len(rows[0]))
		for j := range med {
			col := make([]float64, len(rows))
			for i := range rows {
				col[i] = rows[i][j]
			}
			med[j] = median(col)
		}
		writeRow(tw, "median", med)
	}
	return tw.Flush()
}

func writeRow(w io.Writer, name string, v []float64) {
	fmt.Fprintf(w, "%s\t%.2f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.0f\t%.2f\t%.0f\t%.0f\t\n", name, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9])
}

func median(v []float64) float64 {
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	} else {
		return (v[n/2-1] + v[n/2]) / 2
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
