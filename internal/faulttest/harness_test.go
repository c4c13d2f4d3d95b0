package faulttest

// The harness of the fault tests: one topic, consumer group and database per
// test, events from the SDK at a steady rate, runs of the real vigil binary,
// and the exact accounting of what the window tables hold.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/schemas"
)

const (
	faultPartitions     = 4
	modelsPerPartition  = 2
	eventsPerWindow     = 400 // per model; events are spread evenly over the window
	faultWindow         = time.Minute
	assignedLog         = `"partitions assigned"`
	restoredLog         = `"partition restored"`
	caughtUpTimeout     = 120 * time.Second
	faultProducerBuffer = 200000
)

var faultBase = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

// winKey is one expected window row: a model's window.
type winKey struct {
	model  string
	window int64 // Unix seconds
}

type faultRun struct {
	t          *testing.T
	bin        string
	logDir     string
	brokers    []string
	chAddr     string
	topic      string
	group      string
	db         string
	extra      []string // more vigil process flags
	conn       driver.Conn
	models     []string
	runs       int
	proc       *Process
	rng        *rand.Rand
	mu         sync.Mutex
	want       map[winKey]uint64 // events sent per model window
	sent       int
	nextPerMod map[string]int
}

func newFaultRun(t *testing.T, name string, brokers []string, chAddr string, extra ...string) *faultRun {
	t.Helper()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	logDir, err := os.MkdirTemp("", "vigil-faulttest-logs-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // kept when the test failed (or VIGIL_FAULTTEST_KEEP_LOGS is set), for a look at what happened
		if t.Failed() || os.Getenv("VIGIL_FAULTTEST_KEEP_LOGS") != "" {
			t.Logf("logs of the processor runs and the SDK kept in %s", logDir)
			return
		}
		_ = os.RemoveAll(logDir)
	})
	r := &faultRun{
		t: t, bin: testenv.BuildVigil(t), logDir: logDir, brokers: brokers, chAddr: chAddr,
		topic: "vigil-fault-" + name + "-" + suffix, group: "vigil-fault-" + name + "-" + suffix,
		db: "vigil_fault_" + name + "_" + suffix, extra: extra, rng: rand.New(rand.NewPCG(seed, 9)),
		want: map[winKey]uint64{}, nextPerMod: map[string]int{},
	}
	conn, err := ch.Open(&ch.Options{Addr: []string{chAddr}, DialTimeout: 2 * time.Second, ReadTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r.conn = conn
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+r.db)
		conn.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkatopic.Ensure(ctx, brokers, r.topic, faultPartitions); err != nil {
		t.Fatal(err)
	}
	r.models = modelsOverPartitions(name)
	return r
}

// modelsOverPartitions names models so that the SDK's key hash (the model
// name) puts modelsPerPartition of them on every partition: a fault must
// show on each partition.
func modelsOverPartitions(prefix string) []string {
	var h kafka.Hash
	parts := make([]int, faultPartitions)
	for i := range parts {
		parts[i] = i
	}
	per := make([]int, faultPartitions)
	var out []string
	for i := 0; len(out) < faultPartitions*modelsPerPartition; i++ {
		m := prefix + "-m" + strconv.Itoa(i)
		p := h.Balance(kafka.Message{Key: []byte(m)}, parts...)
		if per[p] < modelsPerPartition {
			per[p]++
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// start runs `vigil process` once more.
func (r *faultRun) start() *Process {
	r.t.Helper()
	r.runs++
	args := append([]string{
		"process", "--kafka", strings.Join(r.brokers, ","), "--topic", r.topic, "--group", r.group,
		"--clickhouse", r.chAddr, "--clickhouse-database", r.db,
		"--window", faultWindow.String(), "--allowed-lateness", "24h", "--checkpoint-interval", "250ms",
	}, r.extra...)
	r.proc = StartProcess(r.t, filepath.Join(r.logDir, "process-"+strconv.Itoa(r.runs)+".log"), r.bin, args,
		[]string{"VIGIL_LOG_FORMAT=json", "VIGIL_LOG_LEVEL=debug", "VIGIL_HTTP_ADDR=127.0.0.1:0"}) // tests run processes side by side
	return r.proc
}

// waitOwns waits until the running process has restored at least one
// partition, i.e. owns partitions.
func (r *faultRun) waitOwns(timeout time.Duration) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if !r.proc.WaitLog(ctx, restoredLog, 1) {
		r.t.Fatalf("run %d restored no partition within %v (exited: %v; log %s)", r.runs, timeout, r.proc.Exited(), r.proc.Log)
	}
}

// event makes the next event of a model and accounts for it.
func (r *faultRun) event(model string) schemas.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.nextPerMod[model]
	r.nextPerMod[model]++
	tm := faultBase.Add(time.Duration(i) * faultWindow / eventsPerWindow)
	r.want[winKey{model, tm.Truncate(faultWindow).Unix()}]++
	r.sent++
	return schemas.Event{
		ID: model + "-" + strconv.Itoa(i), Model: model, ModelVersion: "v1", Time: tm,
		Features: []schemas.Feature{
			schemas.Num("x", float64(i%1000)/10),
			schemas.Str("c", []string{"a", "b", "c"}[i%3]),
		},
		Prediction: schemas.Score(float64(i%100) / 100),
		Latency:    time.Duration(1+i%20) * time.Millisecond,
	}
}

func (r *faultRun) sentSoFar() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent
}

// load sends events with the SDK in its own goroutine.
type load struct {
	r       *faultRun
	p       *ingest.Producer
	total   int
	stop    chan struct{}
	done    chan struct{}
	err     error
	stats   ingest.Stats
	closeIn time.Duration
}

// produce starts sending rounds of perTick events per model every tick,
// up to total events (0: until stopLoad).
func (r *faultRun) produce(perTick int, tick time.Duration, total int, opts ...ingest.Option) *load {
	r.t.Helper()
	opts = append([]ingest.Option{
		ingest.WithLinger(20 * time.Millisecond), ingest.WithBatchSize(200),
		ingest.WithMaxBufferedEvents(faultProducerBuffer), ingest.WithFullPolicy(ingest.BlockWhenFull),
		ingest.WithBlockTimeout(time.Minute),
	}, opts...)
	logf, err := os.Create(filepath.Join(r.logDir, "sdk.log"))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = logf.Close() })
	opts = append(opts, ingest.WithLogger(zerolog.New(logf).Level(zerolog.WarnLevel).With().Timestamp().Logger()))
	p, err := ingest.NewProducer(r.brokers, r.topic, opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	l := &load{r: r, p: p, total: total, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		ctx := context.Background()
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for sent := 0; total == 0 || sent < total; {
			select {
			case <-l.stop:
				l.finish()
				return
			case <-tk.C:
			}
			for range perTick {
				for _, m := range r.models {
					if total > 0 && sent >= total {
						break
					}
					if err := p.Record(ctx, r.event(m)); err != nil {
						l.err = fmt.Errorf("record: %w", err)
						l.finish()
						return
					}
					sent++
				}
			}
		}
		l.finish()
	}()
	return l
}

func (l *load) finish() {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := l.p.Close(ctx); err != nil && l.err == nil {
		l.err = fmt.Errorf("close producer: %w", err)
	}
	l.stats = l.p.Stats()
	l.closeIn = time.Since(began)
}

// wait stops the load (one without a total; one with a total sends it
// all), waits until the producer is closed and fails the test if the SDK
// lost anything.
func (l *load) wait() ingest.Stats {
	l.r.t.Helper()
	if l.total == 0 {
		close(l.stop)
	}
	<-l.done
	st := l.stats
	l.r.t.Logf("SDK: recorded %d, sent %d, failed %d, dropped %d, unsent %d (close took %v)",
		st.Recorded, st.Sent, st.Failed, st.Dropped, st.Unsent, l.closeIn.Round(time.Millisecond))
	if l.err != nil {
		l.r.t.Fatalf("SDK: %v", l.err)
	}
	if st.Sent != int64(l.r.sent) || st.Failed != 0 || st.Dropped != 0 || st.Unsent != 0 {
		l.r.t.Fatalf("SDK: sent %d of %d events (failed %d, dropped %d, unsent %d): the test cannot count exactly",
			st.Sent, l.r.sent, st.Failed, st.Dropped, st.Unsent)
	}
	return st
}

// checkpoints returns the checkpointed next offset of each partition.
func (r *faultRun) checkpoints(ctx context.Context) (map[int]int64, error) {
	rows, err := r.conn.Query(ctx, fmt.Sprintf(
		"SELECT toInt64(kafka_partition), toInt64(next_offset) FROM %s.vigil_checkpoints FINAL WHERE consumer_group = ? AND topic = ?", r.db),
		r.group, r.topic)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var p, off int64
		if err := rows.Scan(&p, &off); err != nil {
			return nil, err
		}
		out[int(p)] = off
	}
	return out, rows.Err()
}

// mustCheckpoints is checkpoints, retried for a while (ClickHouse may have
// just come back).
func (r *faultRun) mustCheckpoints() map[int]int64 {
	r.t.Helper()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var cp map[int]int64
		cp, err = r.checkpoints(ctx)
		cancel()
		if err == nil {
			return cp
		}
	}
	r.t.Fatalf("read checkpoints: %v", err)
	return nil
}

func sumOffsets(m map[int]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// endOffsets returns the end offset of each partition of the topic.
func (r *faultRun) endOffsets() map[int]int64 {
	r.t.Helper()
	conns := &kafka.Transport{}
	defer conns.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(r.brokers...), Transport: conns, Timeout: 10 * time.Second}
	var reqs []kafka.OffsetRequest
	for p := range faultPartitions {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	var lastErr error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{r.topic: reqs}})
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		out := map[int]int64{}
		for _, po := range resp.Topics[r.topic] {
			if po.Error != nil {
				lastErr = fmt.Errorf("partition %d: %w", po.Partition, po.Error)
				break
			}
			out[po.Partition] = po.LastOffset
		}
		if len(out) == faultPartitions {
			return out
		}
	}
	r.t.Fatalf("list end offsets of %s: %v", r.topic, lastErr)
	return nil
}

// waitCaughtUp waits until every partition's checkpoint is at its end offset
// and returns the checkpoints.
func (r *faultRun) waitCaughtUp() map[int]int64 {
	r.t.Helper()
	end := r.endOffsets()
	began := time.Now()
	var cp map[int]int64
	for deadline := began.Add(caughtUpTimeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if r.proc != nil && r.proc.Exited() {
			r.t.Fatalf("run %d exited while catching up (log %s)", r.runs, r.proc.Log)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := r.checkpoints(ctx)
		cancel()
		if err != nil {
			continue
		}
		cp = got
		done := true
		for p, off := range end {
			if cp[p] != off {
				done = false
			}
		}
		if done {
			r.t.Logf("caught up: every partition checkpointed at its end offset %v (%d messages), %v after the last send",
				end, sumOffsets(end), time.Since(began).Round(time.Millisecond))
			return cp
		}
	}
	r.t.Fatalf("not caught up within %v: checkpoints %v, end offsets %v (logs in %s)", caughtUpTimeout, cp, end, r.logDir)
	return nil
}

// progressed fails the test unless every partition's checkpoint in after is
// beyond the one in before.
func (r *faultRun) progressed(what string, before, after map[int]int64) {
	r.t.Helper()
	for p := range faultPartitions {
		if after[p] <= before[p] {
			r.t.Errorf("partition %d did not progress after %s: checkpoint %d, then %d", p, what, before[p], after[p])
		}
	}
	r.t.Logf("every partition progressed after %s: checkpoints %v -> %v", what, before, after)
}

// counts reads the events per model window from a window table.
func (r *faultRun) counts(query string) map[winKey]uint64 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := r.conn.Query(ctx, fmt.Sprintf(query, r.db))
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	got := map[winKey]uint64{}
	for rows.Next() {
		var k winKey
		var n uint64
		if err := rows.Scan(&k.model, &k.window, &n); err != nil {
			r.t.Fatal(err)
		}
		got[k] = n
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	return got
}

// assertExact checks that the window tables count every event sent once:
// per model window, summed over partitions after FINAL, in
// vigil_model_windows (events) and vigil_feature_windows (feature x). It
// logs the figures.
func (r *faultRun) assertExact() {
	r.t.Helper()
	tables := []struct{ name, query string }{
		{"vigil_model_windows", `SELECT model, toInt64(toUnixTimestamp(window_start)) AS ws, toUInt64(sum(events))
			FROM %s.vigil_model_windows FINAL WHERE segment = '' GROUP BY model, ws`},
		{"vigil_feature_windows", `SELECT model, toInt64(toUnixTimestamp(window_start)) AS ws, toUInt64(sum(count))
			FROM %s.vigil_feature_windows FINAL WHERE segment = '' AND feature = 'x' GROUP BY model, ws`},
	}
	for _, tb := range tables {
		got := r.counts(tb.query)
		var counted, lost, doubled uint64
		var bad []string
		for k, n := range got {
			counted += n
			if w := r.want[k]; n > w {
				doubled += n - w
				bad = append(bad, fmt.Sprintf("%s@%d: %d, want %d", k.model, k.window, n, w))
			}
		}
		for k, w := range r.want {
			if n := got[k]; n < w {
				lost += w - n
				bad = append(bad, fmt.Sprintf("%s@%d: %d, want %d", k.model, k.window, n, w))
			}
		}
		sort.Strings(bad)
		r.t.Logf("%s: sent %d events in %d model windows; counted %d in %d, lost %d, doubled %d",
			tb.name, r.sent, len(r.want), counted, len(got), lost, doubled)
		if lost != 0 || doubled != 0 || counted != uint64(r.sent) {
			r.t.Errorf("%s: counted %d of %d events: lost %d, doubled %d; windows off: %v (logs in %s; doubles after a broker fault: "+
				"a producer retry counted twice? the SDK's log says which writes were retried)",
				tb.name, counted, r.sent, lost, doubled, bad, r.logDir)
		}
	}
}

// generations returns how many times the processes of the run were assigned
// partitions (one per consumer-group generation each joined).
func (r *faultRun) generations() int {
	n := 0
	for i := 1; i <= r.runs; i++ {
		p := &Process{Log: filepath.Join(r.logDir, "process-"+strconv.Itoa(i)+".log")}
		n += p.CountLog(assignedLog)
	}
	return n
}

// duplicatesSkipped returns the producer-retry copies the last run skipped
// (its "processor stopped" log line; a killed run logs none).
func (r *faultRun) duplicatesSkipped() int64 {
	data, err := os.ReadFile(r.proc.Log)
	if err != nil {
		return -1
	}
	n := int64(-1)
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, `"processor stopped"`) {
			continue
		}
		var rec struct {
			Duplicates int64 `json:"duplicates"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil {
			n = rec.Duplicates
		}
	}
	return n
}

// sdkWriteErrors counts the writes kafka-go reported failed (and retried)
// in the SDK's log.
func (r *faultRun) sdkWriteErrors() int {
	p := &Process{Log: filepath.Join(r.logDir, "sdk.log")}
	return p.CountLog("error writing messages")
}
