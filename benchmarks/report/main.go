// Command report times `vigil report` on a large stored model: it writes
// (once) a synthetic model of -days days of 1-minute windows with -features
// features into a ClickHouse database through the sink's stores
// (internal/testenv/fixture), then builds and renders its report -runs
// times (app.WriteReport: the reads, the merges into buckets, the drift
// evaluation and the HTML) and prints the time of each run and the file's
// size.
//
//	go run ./benchmarks/report                       # 7 days, 50 features, 60 events per minute
//	go run ./benchmarks/report -db vigil_bench_report -keep   # keep the data for the next run
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/app"
	"github.com/vigil-ml/vigil/internal/testenv/fixture"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

func main() {
	var (
		addr     = flag.String("clickhouse", envOr("VIGIL_CLICKHOUSE", "127.0.0.1:9000"), "ClickHouse native address")
		db       = flag.String("db", "", "database (default: a new vigil_bench_report_<time>, dropped unless -keep); an existing one that holds the model is reused")
		keep     = flag.Bool("keep", false, "keep the database")
		days     = flag.Int("days", 7, "days of 1-minute windows")
		features = flag.Int("features", 50, "features of the model (numbers; amount, country and is_new among them)")
		events   = flag.Int("events-per-window", 60, "events per 1-minute window")
		runs     = flag.Int("runs", 3, "timed runs")
		every    = flag.Duration("every", 0, "bucket size (0: the report's default)")
		out      = flag.String("o", filepath.Join(os.TempDir(), "vigil-bench-report.html"), "the report file")
		profile  = flag.String("cpuprofile", "", "write a CPU profile of the timed runs to this file")
	)
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "report benchmark:", err)
			os.Exit(1)
		}
		defer f.Close()
		cpuProfile = f
	}
	if err := run(*addr, *db, *keep, *days, *features, *events, *runs, *every, *out); err != nil {
		fmt.Fprintln(os.Stderr, "report benchmark:", err)
		os.Exit(1)
	}
}

// processCPU is the CPU time (user + system, all threads) this process has
// used so far; ClickHouse's is not in it.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

const model = "bench-report"

// cpuProfile receives the CPU profile of the timed runs (-cpuprofile).
var cpuProfile *os.File

func run(addr, db string, keep bool, days, features, events, runs int, every time.Duration, out string) error {
	ctx := context.Background()
	if db == "" {
		db = "vigil_bench_report_" + time.Now().UTC().Format("20060102T150405")
	}
	sink, err := clickhouse.New(clickhouse.Config{Addr: addr, Database: db, User: "default"}, zerolog.Nop())
	if err != nil {
		return err
	}
	if err := sink.Start(ctx); err != nil {
		return err
	}
	defer sink.Shutdown(ctx)
	if !keep {
		defer sink.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	windows := days * 24 * 60
	spec := fixture.Spec{Model: model, Version: "1", Start: start, Window: time.Minute, Windows: windows, EventsPerWindow: events,
		Features: features - 3, ShiftFrom: windows / 2, ShiftTo: windows/2 + 360, Performance: true, Alerts: true}
	have, err := app.ReportStores(sink).Windows.ModelVersions(ctx)
	if err != nil {
		return err
	}
	if len(have) == 0 {
		began := time.Now()
		if err := fixture.Write(ctx, sink, spec); err != nil {
			return fmt.Errorf("write the model: %w", err)
		}
		fmt.Printf("wrote %d windows x %d features x %d events into %s in %v\n", windows, features, events, db, time.Since(began).Round(time.Millisecond))
	} else {
		fmt.Printf("reusing %s: %d windows of %s\n", db, have[0].Windows, have[0].Model)
	}
	var stateBytes uint64
	if err := sink.Conn().QueryRow(ctx, "SELECT sum(length(feature_states)) FROM "+db+".vigil_model_windows").Scan(&stateBytes); err == nil {
		fmt.Printf("stored window states: %.1f MB\n", float64(stateBytes)/1e6)
	}
	var times []time.Duration
	if cpuProfile != nil {
		if err := pprof.StartCPUProfile(cpuProfile); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for i := 0; i < runs; i++ {
		runtime.GC()
		began, cpu0 := time.Now(), processCPU()
		r, size, err := app.WriteReport(ctx, sink, app.ReportQuery{Model: model, Version: "1", From: start, To: start.Add(time.Duration(windows) * time.Minute), Every: every}, out)
		if err != nil {
			return err
		}
		d, cpu := time.Since(began), processCPU()-cpu0
		times = append(times, d)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("run %d: %v wall, %v CPU of this process, %d buckets of %s, %d features, %.2f MB file %s, heap %.0f MB\n", i+1,
			d.Round(time.Millisecond), cpu.Round(time.Millisecond), len(r.Windows), r.Every,
			len(r.Features), float64(size)/1e6, out, float64(ms.HeapAlloc)/1e6)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	fmt.Printf("report generation: median %v, best %v (goal < 3s)\n", times[len(times)/2].Round(time.Millisecond), times[0].Round(time.Millisecond))
	return nil
}
