// Command jobs measures the performance job sharded over 1, 2 and 3
// members (processors/shard): windows recomputed per second, the members
// running side by side in this process, each with its own job, shard and
// ClickHouse connection, as separate `vigil process` members would.
//
//	go run ./benchmarks/jobs -runs 3
//
// It writes -models models x -windows one-minute windows x -per predictions
// (all labelled) straight into vigil_events and vigil_labels of a fresh
// database (INSERT ... SELECT FROM numbers(): no Kafka), then, per member
// count and run, empties vigil_performance and the ledger and times one
// pass of every member over its share: the wall time until the last member
// is done, and the CPU time of this process (the job's Go side: reading,
// joining, writing) and of the ClickHouse server (UserTimeMicroseconds and
// SystemTimeMicroseconds of system.events: every query's threads, so run
// it on a server of its own, e.g. VIGIL_CLICKHOUSE_PORT=19000
// VIGIL_STATE=/tmp/jobs-ch deployments/local/clickhouse.sh start). The topic has
// -partitions partitions (default 6, so that 1, 2 and 3 members get equal
// shares) and the models are named so that each partition owns as many.
// Not part of make test.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/shard"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

type fixed shard.Assignment

func (f fixed) Assignment() (shard.Assignment, bool) { return shard.Assignment(f), true }

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	addr := flag.String("clickhouse", envOr("VIGIL_CLICKHOUSE", "127.0.0.1:9000"), "ClickHouse address")
	models := flag.Int("models", 12, "models (a multiple of -partitions)")
	windows := flag.Int("windows", 10, "one-minute windows per model")
	per := flag.Int("per", 5000, "predictions per window")
	partitions := flag.Int("partitions", 6, "partitions of the (notional) prediction topic")
	runs := flag.Int("runs", 3, "runs per member count")
	keep := flag.Bool("keep", false, "keep the database")
	flag.Parse()
	if err := run(*addr, *models, *windows, *per, *partitions, *runs, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "jobs:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(addr string, nModels, nWindows, per, partitions, runs int, keep bool) error {
	ctx := context.Background()
	db := "vigil_bench_jobs_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	open := func() (*clickhouse.Sink, error) {
		cfg := clickhouse.DefaultConfig()
		cfg.Addr, cfg.Database = addr, db
		s, err := clickhouse.New(cfg, zerolog.Nop())
		if err != nil {
			return nil, err
		}
		return s, s.Start(ctx)
	}
	admin, err := open()
	if err != nil {
		return err
	}
	defer admin.Shutdown(ctx)
	if !keep {
		defer admin.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	}
	// Models named so that every partition owns nModels/partitions of them.
	var names []string
	perPart := map[int]int{}
	for i := 0; len(names) < nModels; i++ {
		n := "bench-" + strconv.Itoa(i)
		if p := shard.Partition(n, partitions); perPart[p] < nModels/partitions {
			perPart[p]++
			names = append(names, n)
		}
	}
	base := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Hour)
	span := nWindows * 60
	total := nModels * nWindows * per
	began := time.Now()
	for mi, m := range names {
		n := nWindows * per
		if err := admin.Conn().Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s.vigil_events (event_id, model, model_version, event_time, pred_score, topic, kafka_partition, kafka_offset, ingested_at)
SELECT concat('%[2]s-', toString(number)), '%[2]s', 'v1', toDateTime(%[3]d + intDiv(number * %[4]d, %[5]d), 'UTC'), (number %% 100) / 100, 'bench', 0, number, now() FROM numbers(%[5]d)`,
			db, m, base.Unix(), span, n)); err != nil {
			return fmt.Errorf("write predictions: %w", err)
		}
		if err := admin.Conn().Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s.vigil_labels (model, event_id, label_time, has_class, label_class, has_value, label_value, topic, kafka_partition, kafka_offset, kafka_row, received_at)
SELECT '%[2]s', concat('%[2]s-', toString(number)), toDateTime(%[3]d + intDiv(number * %[4]d, %[5]d) + 3600, 'UTC'), 0, '', 1, (number * 7 + %[6]d) %% 3 = 0, 'bench-labels', 0, number, 0, now() FROM numbers(%[5]d)`,
			db, m, base.Unix(), span, n, mi)); err != nil {
			return fmt.Errorf("write labels: %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "wrote %d predictions and labels (%d models x %d windows x %d) in %v\n", total, nModels, nWindows, per, time.Since(began).Round(time.Millisecond))

	cfg := performance.JobConfig{Window: time.Minute, Horizon: 24 * time.Hour, Threshold: 0.5}
	serverCPU := func() float64 {
		var us uint64
		if err := admin.Conn().QueryRow(ctx, "SELECT toUInt64(sum(value)) FROM system.events WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')").Scan(&us); err != nil {
			return 0
		}
		return float64(us) / 1e6
	}
	fmt.Printf("members  windows  median_s  windows/s  predictions/s  go_cpu_s  server_cpu_s  predictions/cpu-s  speedup  (runs: wall s)\n")
	var one float64
	for members := 1; members <= 3; members++ {
		sinks := make([]*clickhouse.Sink, members)
		for i := range sinks {
			if sinks[i], err = open(); err != nil {
				return err
			}
		}
		var walls, cpus, servers []float64
		windowsDone := 0
		for r := 0; r < runs; r++ {
			for _, t := range []string{"vigil_performance", "vigil_job_passes"} {
				if err := admin.Conn().Exec(ctx, fmt.Sprintf("TRUNCATE TABLE %s.%s", db, t)); err != nil {
					return err
				}
			}
			jobs := make([]*performance.Job, members)
			for i := range jobs {
				var parts []int
				for p := i; p < partitions; p += members {
					parts = append(parts, p)
				}
				owner := fixed{Generation: int32(r + 1), Member: "m" + strconv.Itoa(i), Partitions: parts, Total: partitions}
				jobs[i] = performance.NewJob(sinks[i].Labels(), cfg, zerolog.Nop()).WithShard(shard.New("performance", owner, sinks[i].Windows(), nil))
			}
			c0, s0, t0 := cpu(), serverCPU(), time.Now()
			var wg sync.WaitGroup
			counts := make([]int, members)
			errs := make([]error, members)
			for i := range jobs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					counts[i], errs[i] = jobs[i].RunOnce(ctx, time.Now())
				}()
			}
			wg.Wait()
			wall, c, sc := time.Since(t0).Seconds(), (cpu() - c0).Seconds(), serverCPU()-s0
			n := 0
			for i := range counts {
				if errs[i] != nil {
					return errs[i]
				}
				n += counts[i]
			}
			if n != nModels*nWindows {
				return fmt.Errorf("%d members computed %d windows, want %d", members, n, nModels*nWindows)
			}
			windowsDone = n
			walls, cpus, servers = append(walls, wall), append(cpus, c), append(servers, sc)
		}
		for _, s := range sinks {
			_ = s.Shutdown(ctx)
		}
		w, c, sc := median(walls), median(cpus), median(servers)
		rate := float64(windowsDone) / w
		if members == 1 {
			one = rate
		}
		fmt.Printf("%7d  %7d  %8.3f  %9.1f  %13.0f  %8.2f  %12.2f  %17.0f  %6.2fx  %v\n", members, windowsDone, w, rate, rate*float64(per), c, sc,
			float64(windowsDone*per)/(c+sc), rate/one, round(walls))
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[len(s)/2]
}

func round(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(int(x*1000)) / 1000
	}
	return out
}
