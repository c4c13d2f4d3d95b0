package main

// The sharded jobs end to end: three `vigil process` members (the built
// binary) on a 4-partition topic share the drift and performance jobs of
// six models, on one ClickHouse server and on a 2-shard cluster; one member is SIGKILLed and another joins; every window's
// drift and performance rows hold the exact counts sent, and the ledger
// (vigil_job_passes) and each member's vigil_job_windows_total show every
// window input computed exactly once per generation.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/shard"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// shardMember is one `vigil process` of the group.
type shardMember struct {
	name    string
	cmd     *exec.Cmd
	log     string
	metrics string // host:port of /metrics
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startMember(t *testing.T, bin, dir, name string, args []string) *shardMember {
	t.Helper()
	m := &shardMember{name: name, log: filepath.Join(dir, name+".log"), metrics: freeAddr(t)}
	f, err := os.Create(m.log)
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(bin, append([]string{"process"}, args...)...)
	m.cmd.Stdout, m.cmd.Stderr = f, f
	m.cmd.Env = append(os.Environ(), "VIGIL_LOG_FORMAT=json", "VIGIL_LOG_LEVEL=info", "VIGIL_HTTP_ADDR="+m.metrics)
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if m.cmd.ProcessState == nil {
			_ = m.cmd.Process.Kill()
			_ = m.cmd.Wait()
		}
		f.Close()
	})
	return m
}

// memberIDs are the group member ids the member's log names.
func (m *shardMember) memberIDs(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(m.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Message string `json:"message"`
			Member  string `json:"member"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "partitions assigned" && line.Member != "" {
			ids[line.Member] = true
		}
	}
	return ids
}

// windows reads the member's vigil_job_windows_total by job and outcome.
func (m *shardMember) windows(t *testing.T) map[[2]string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + m.metrics + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", m.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[[2]string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "vigil_job_windows_total{") {
			continue
		}
		var job, outcome string
		labels := line[strings.Index(line, "{")+1 : strings.Index(line, "}")]
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "job":
				job = v
			case "outcome":
				outcome = v
			}
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(line[strings.Index(line, "}")+1:]), 64)
		if err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		out[[2]string{job, outcome}] = f
	}
	return out
}

// On one ClickHouse server, and on the local 2-shard cluster
// (deployments/local/clickhouse-cluster.sh), its members spread over both
// servers, every count read through the Distributed tables.
func TestEndToEndShardedJobs(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		chAddr := testenv.ClickHouse(t)
		testShardedJobs(t, "vigil_shard_", func(db string) *clickhouse.Sink { return testsink.Open(t, db, nil) },
			func(int) []string { return []string{"--clickhouse", chAddr} })
	})
	t.Run("cluster", func(t *testing.T) {
		addrs, cluster := testenv.ClickHouseCluster(t)
		testShardedJobs(t, "vigil_shardc_", func(db string) *clickhouse.Sink { return testsink.OpenCluster(t, db, 0, nil) },
			func(i int) []string {
				return []string{"--clickhouse", addrs[i%len(addrs)], "--clickhouse-cluster", cluster}
			})
	})
}

// testShardedJobs runs the test on the database that open migrates (before
// the members start), member i on the ClickHouse that chArgs(i) names.
func testShardedJobs(t *testing.T, prefix string, open func(db string) *clickhouse.Sink, chArgs func(member int) []string) {
	brokers := []string{testenv.Kafka(t)}
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic, group, db := "vigil-shard-"+suffix, "vigil-shard-"+suffix, prefix+suffix
	sink := open(db)
	conn := sink.Conn()
	for _, tp := range []string{topic, ingest.DefaultLabelTopic(topic)} {
		if err := kafkatopic.Ensure(ctx, brokers, tp, 4); err != nil {
			t.Fatal(err)
		}
	}

	// Six models, each with a reference of feature x.
	models := []string{"sh-a", "sh-b", "sh-c", "sh-d", "sh-e", "sh-f"}
	rng := rand.New(rand.NewPCG(16, 1))
	for _, model := range models {
		rb, err := reference.NewBuilder(reference.Meta{Model: model, ModelVersion: "v1", ID: reference.NewID(time.Now()),
			CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Source: "test"}, reference.BuilderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bb := wire.NewBatchBuilder(memory.DefaultAllocator)
		for i := range 500 {
			e := schemas.Event{ID: fmt.Sprintf("ref-%d", i), Model: model, ModelVersion: "v1", Time: time.Now(),
				Features: []schemas.Feature{schemas.Num("x", rng.NormFloat64())}, Prediction: schemas.Score(0.5)}
			if err := bb.Append(&e); err != nil {
				t.Fatal(err)
			}
		}
		rec := bb.NewRecord()
		if err := rb.Add(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		ref, err := rb.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.References().WriteReference(ctx, ref); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct reference ids
	}

	// Every model distinct across the 4 partitions: the split is exercised.
	parts := map[int]bool{}
	for _, m := range models {
		parts[shard.Partition(m, 4)] = true
	}
	if len(parts) < 3 {
		t.Fatalf("the models fall in %d partitions only; choose other names", len(parts))
	}

	bin := testenv.BuildVigil(t)
	dir := t.TempDir()
	args := func(i int) []string {
		return append([]string{
			"--kafka", brokers[0], "--topic", topic, "--group", group, "--label-group", group + "-labels",
			"--clickhouse-database", db,
			"--window", "1m", "--allowed-lateness", "1h", "--checkpoint-interval", "200ms",
			"--drift-interval", "300ms", "--drift-lookback", "24h",
			"--performance-interval", "300ms", "--label-horizon", "24h",
		}, chArgs(i)...)
	}
	members := map[string]*shardMember{}
	for i, name := range []string{"m1", "m2", "m3"} {
		members[name] = startMember(t, bin, dir, name, args(i))
	}

	producer, err := ingest.NewProducer(brokers, topic, ingest.WithLinger(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close(ctx)
	base := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Hour)
	const perWindow = 40
	sent := map[[2]int64]int{} // (model index, window start) -> events
	send := func(fromWindow, toWindow int) {
		t.Helper()
		for w := fromWindow; w < toWindow; w++ {
			start := base.Add(time.Duration(w) * time.Minute)
			for mi, model := range models {
				for i := range perWindow {
					id := fmt.Sprintf("%s-%d-%d", model, w, i)
					at := start.Add(time.Duration(i) * time.Second)
					e := schemas.Event{ID: id, Model: model, ModelVersion: "v1", Time: at,
						Features: []schemas.Feature{schemas.Num("x", rng.NormFloat64())}, Prediction: schemas.Score(rng.Float64())}
					if err := producer.Record(ctx, e); err != nil {
						t.Fatal(err)
					}
					if err := producer.RecordLabel(ctx, schemas.ValueLabel(id, model, float64(i%2), at.Add(time.Hour))); err != nil {
						t.Fatal(err)
					}
				}
				sent[[2]int64{int64(mi), start.Unix()}] = perWindow
			}
		}
		if err := producer.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// waitRows waits until every window sent has its drift and performance
	// rows with the exact counts.
	waitRows := func(what string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		var missing []string
		for time.Now().Before(deadline) {
			missing = missing[:0]
			drift := map[[2]string]uint64{}
			rows, err := conn.Query(ctx, fmt.Sprintf("SELECT model, toString(toUnixTimestamp(window_start)), max(n_cur) FROM %s.vigil_drift FINAL WHERE feature = 'x' AND segment = '' GROUP BY model, window_start", db))
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var m, w string
				var n uint64
				if err := rows.Scan(&m, &w, &n); err != nil {
					t.Fatal(err)
				}
				drift[[2]string{m, w}] = n
			}
			rows.Close()
			perf := map[[2]string][2]uint64{}
			rows, err = conn.Query(ctx, fmt.Sprintf("SELECT model, toString(toUnixTimestamp(window_start)), sum(predictions), sum(labeled) FROM %s.vigil_performance FINAL WHERE segment = '' GROUP BY model, window_start", db))
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var m, w string
				var p, l uint64
				if err := rows.Scan(&m, &w, &p, &l); err != nil {
					t.Fatal(err)
				}
				perf[[2]string{m, w}] = [2]uint64{p, l}
			}
			rows.Close()
			for k, n := range sent {
				key := [2]string{models[k[0]], strconv.FormatInt(k[1], 10)}
				if drift[key] != uint64(n) {
					missing = append(missing, fmt.Sprintf("drift %v: n_cur %d, want %d", key, drift[key], n))
				}
				if perf[key] != [2]uint64{uint64(n), uint64(n)} {
					missing = append(missing, fmt.Sprintf("performance %v: %v, want %d predictions, %d labeled", key, perf[key], n, n))
				}
			}
			if len(missing) == 0 {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		sort.Strings(missing)
		t.Fatalf("%s: %d windows not as sent, e.g. %v (logs in %s)", what, len(missing), missing[:min(5, len(missing))], dir)
	}

	send(0, 3)
	waitRows("three members")

	// SIGKILL one member; another joins; more windows, whose models moved.
	_ = members["m2"].cmd.Process.Kill()
	_ = members["m2"].cmd.Wait()
	members["m4"] = startMember(t, bin, dir, "m4", args(3))
	send(3, 6)
	waitRows("after the kill and the join")
	time.Sleep(2 * time.Second) // a few more passes, which must find everything unchanged

	// The ledger: every (job, window, input) computed once, by one member
	// in one generation; what a later computation of the same input would
	// be is each member's "recomputed".
	type pass struct {
		job, model, version, member string
		window                      int64
		input                       uint64
		generation                  int64
		at                          time.Time
		seq                         uint64
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT job, model, model_version, toUnixTimestamp(window_start), input, generation, member, computed_at, seq FROM %s.vigil_job_passes WHERE model != ''", db))
	if err != nil {
		t.Fatal(err)
	}
	byInput := map[string][]pass{}
	perMember := map[string]map[string]int{} // member -> job -> rows
	for rows.Next() {
		var p pass
		var w uint32
		if err := rows.Scan(&p.job, &p.model, &p.version, &w, &p.input, &p.generation, &p.member, &p.at, &p.seq); err != nil {
			t.Fatal(err)
		}
		p.window = int64(w)
		k := fmt.Sprintf("%s/%s/%s/%d/%x", p.job, p.model, p.version, p.window, p.input)
		byInput[k] = append(byInput[k], p)
		if perMember[p.member] == nil {
			perMember[p.member] = map[string]int{}
		}
		perMember[p.member][p.job]++
	}
	rows.Close()
	recomputed := map[string]map[string]int{}
	perGeneration := map[string]int{}
	for k, ps := range byInput {
		sort.Slice(ps, func(i, j int) bool {
			if ps[i].seq != ps[j].seq {
				return ps[i].seq < ps[j].seq
			}
			return ps[i].member < ps[j].member
		})
		for i, p := range ps {
			perGeneration[fmt.Sprintf("%s@%d", k, p.generation)]++
			if i > 0 {
				if recomputed[p.member] == nil {
					recomputed[p.member] = map[string]int{}
				}
				recomputed[p.member][p.job]++
				t.Logf("%s computed again by %s in generation %d at %v (first by %s in %d at %v)", k, p.member, p.generation, p.at, ps[0].member, ps[0].generation, ps[0].at)
				for _, qs := range byInput {
					if qs[0].job == p.job && qs[0].model == p.model && qs[0].window == p.window {
						for _, q := range qs {
							t.Logf("  pass of that window: input %x by %s in %d at %v", q.input, q.member[len(q.member)-8:], q.generation, q.at)
						}
					}
				}
			}
		}
	}
	for k, n := range perGeneration {
		if n != 1 {
			t.Errorf("window input %s computed %d times in one generation, want once", k, n)
		}
	}
	// Every window sent has its final drift and performance input recorded.
	for k := range sent {
		for _, job := range []string{"drift", "performance"} {
			found := false
			for key := range byInput {
				if strings.HasPrefix(key, fmt.Sprintf("%s/%s/", job, models[k[0]])) && strings.Contains(key, fmt.Sprintf("/%d/", k[1])) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s of %s window %d: no pass in the ledger", job, models[k[0]], k[1])
			}
		}
	}
	// Each live member's counters are its rows of the ledger.
	computedLive := 0.0
	for _, name := range []string{"m1", "m3", "m4"} {
		m := members[name]
		got := m.windows(t)
		ids := m.memberIDs(t)
		if len(ids) == 0 {
			t.Fatalf("%s logged no member id", name)
		}
		for _, job := range []string{"drift", "performance"} {
			rowsOf, again := 0, 0
			for id := range ids {
				rowsOf += perMember[id][job]
				again += recomputed[id][job]
			}
			if got[[2]string{job, shard.Computed}] != float64(rowsOf-again) || got[[2]string{job, shard.Recomputed}] != float64(again) {
				t.Errorf("%s %s: computed %v, recomputed %v; the ledger says %d and %d",
					name, job, got[[2]string{job, shard.Computed}], got[[2]string{job, shard.Recomputed}], rowsOf-again, again)
			}
			if got[[2]string{job, shard.Unchanged}] == 0 && rowsOf > 0 {
				t.Errorf("%s %s: no window found unchanged in 2s of passes", name, job)
			}
			computedLive += got[[2]string{job, shard.Computed}]
			t.Logf("%s %s: computed %v, unchanged %v, recomputed %v", name, job, got[[2]string{job, shard.Computed}], got[[2]string{job, shard.Unchanged}], got[[2]string{job, shard.Recomputed}])
		}
	}
	if computedLive == 0 {
		t.Error("the live members computed nothing")
	}
	for _, name := range []string{"m1", "m3", "m4"} {
		_ = members[name].cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, name := range []string{"m1", "m3", "m4"} {
		if err := members[name].cmd.Wait(); err != nil {
			t.Errorf("%s exited with %v (log %s)", name, err, members[name].log)
		}
	}
}
