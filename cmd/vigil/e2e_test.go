package main

// The end-to-end test: the SDK and raw JSON producers -> the REAL Kafka
// broker -> the vigil binary (killed and restarted) -> the REAL ClickHouse,
// with every number asserted from SQL.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

const e2eWindows = 6

var e2eBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// e2eKey identifies one expected window row.
type e2eKey struct {
	model   string
	window  int64 // Unix seconds
	feature string
}

type e2eNum struct {
	count, missing uint64
	sum, min, max  float64
}

// e2eExpect accumulates what the tables must say, computed directly from the
// events sent.
type e2eExpect struct {
	num    map[e2eKey]*e2eNum
	cats   map[e2eKey]map[string]uint64
	events map[e2eKey]uint64 // feature ""
	// regions counts events per (model, window, "region=<value>") in feature.
	regions map[e2eKey]uint64
	late    map[string]int // per model
	// absentY counts events without a "y" key; they are missing values of y
	// in windows where y appears at all (finish adds them).
	absentY map[e2eKey]uint64
}

func (x *e2eExpect) finish() {
	for k, n := range x.absentY {
		if s := x.num[k]; s != nil {
			s.missing += n
		}
	}
}

func newExpect() *e2eExpect {
	return &e2eExpect{num: map[e2eKey]*e2eNum{}, cats: map[e2eKey]map[string]uint64{}, events: map[e2eKey]uint64{}, late: map[string]int{}, absentY: map[e2eKey]uint64{}, regions: map[e2eKey]uint64{}}
}

func (x *e2eExpect) add(e *schemas.Event) {
	ws := e.Time.Truncate(time.Minute).Unix()
	x.events[e2eKey{e.Model, ws, ""}]++
	for _, tag := range e.Segments {
		x.regions[e2eKey{e.Model, ws, tag.Key + "=" + tag.Value}]++
	}
	seen := map[string]bool{}
	for _, f := range e.Features {
		k := e2eKey{e.Model, ws, f.Name}
		seen[f.Name] = true
		switch f.Value.Kind {
		case schemas.Number, schemas.Bool:
			v := f.Value.Num
			if f.Value.Kind == schemas.Bool {
				v = 0
				if f.Value.Bool {
					v = 1
				}
			}
			x.addNum(k, v)
		case schemas.String:
			if x.cats[k] == nil {
				x.cats[k] = map[string]uint64{}
			}
			x.cats[k][f.Value.Str]++
		case schemas.Null:
			x.missing(k)
		}
	}
	// "y" is sometimes absent: missing in that row, once the window knows y.
	if !seen["y"] {
		x.absentY[e2eKey{e.Model, ws, "y"}]++
	}
	x.addNum(e2eKey{e.Model, ws, schemas.PredictionScoreFeature}, e.Prediction.Score)
}

func (x *e2eExpect) addNum(k e2eKey, v float64) {
	s := x.num[k]
	if s == nil {
		s = &e2eNum{min: math.Inf(1), max: math.Inf(-1)}
		x.num[k] = s
	}
	s.count++
	s.sum += v
	s.min = math.Min(s.min, v)
	s.max = math.Max(s.max, v)
}

func (x *e2eExpect) missing(k e2eKey) {
	s := x.num[k]
	if s == nil {
		s = &e2eNum{min: math.Inf(1), max: math.Inf(-1)}
		x.num[k] = s
	}
	s.missing++
}

// e2eEvent makes the i-th event of a model at time t.
func e2eEvent(rng *rand.Rand, model string, i int, t time.Time) schemas.Event {
	e := schemas.Event{
		ID:           fmt.Sprintf("%s-%d", model, i),
		Model:        model,
		ModelVersion: "v1",
		Time:         t,
		Prediction:   schemas.Prediction{Score: math.Round(rng.Float64()*1e6) / 1e6, HasScore: true, Label: "ok"},
		Latency:      time.Duration(1+rng.IntN(20)) * time.Millisecond,
	}
	if i%3 != 0 { // a third of the events carry no region: in no segment
		e.Segments = []schemas.Tag{{Key: "region", Value: []string{"eu", "us"}[i%3-1]}}
	}
	e.Features = append(e.Features,
		schemas.Num("x", math.Round(rng.NormFloat64()*1e4)/100),
		schemas.Str("c", []string{"a", "b", "c"}[rng.IntN(3)]),
		schemas.Flag("flag", rng.IntN(4) == 0),
	)
	switch i % 5 {
	case 0: // y absent
	case 1:
		e.Features = append(e.Features, schemas.Missing("y"))
	default:
		e.Features = append(e.Features, schemas.Num("y", float64(rng.IntN(1000))))
	}
	return e
}

type e2eRun struct {
	t        *testing.T
	bin      string
	args     []string
	logDir   string
	n        int
	proc     *exec.Cmd
	kafka    []string
	topic    string
	group    string
	database string
	conn     driver.Conn
}

func (r *e2eRun) start() {
	r.t.Helper()
	r.n++
	logf, err := os.Create(filepath.Join(r.logDir, "process-"+strconv.Itoa(r.n)+".log"))
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(r.bin, append([]string{"process"}, r.args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A free port for /metrics: tests run processes side by side.
	cmd.Env = append(os.Environ(), "VIGIL_LOG_FORMAT=json", "VIGIL_LOG_LEVEL=debug", "VIGIL_HTTP_ADDR=127.0.0.1:0")
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start vigil process: %v", err)
	}
	r.proc = cmd
}

// waitLog waits until the running processor's log contains s.
func (r *e2eRun) waitLog(s string) {
	r.t.Helper()
	path := filepath.Join(r.logDir, "process-"+strconv.Itoa(r.n)+".log")
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if data, _ := os.ReadFile(path); strings.Contains(string(data), s) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("processor %d never logged %q (log %s)", r.n, s, path)
}

func (r *e2eRun) kill() {
	r.t.Helper()
	_ = r.proc.Process.Kill()
	_ = r.proc.Wait()
	r.t.Logf("processor %d killed (SIGKILL)", r.n)
}

func (r *e2eRun) stop() {
	r.t.Helper()
	_ = r.proc.Process.Signal(syscall.SIGTERM)
	if err := r.proc.Wait(); err != nil {
		r.t.Errorf("processor %d exited with %v (log in %s)", r.n, err, r.logDir)
	}
}

// checkpointed returns the sum over partitions of the checkpointed next offset.
func (r *e2eRun) checkpointed(ctx context.Context) int64 {
	var n int64
	row := r.conn.QueryRow(ctx, fmt.Sprintf(
		"SELECT toInt64(sum(next_offset)) FROM %s.vigil_checkpoints FINAL WHERE consumer_group = ? AND topic = ?", r.database),
		r.group, r.topic)
	if err := row.Scan(&n); err != nil {
		return -1
	}
	return n
}

func (r *e2eRun) waitCheckpoint(ctx context.Context, cond func(int64) bool, what string) {
	r.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if cond(r.checkpointed(ctx)) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("timed out waiting for %s (checkpointed %d; logs in %s)", what, r.checkpointed(ctx), r.logDir)
}

func TestEndToEndKillAndRestart(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	chAddr := testenv.ClickHouse(t)
	ctx := context.Background()

	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	r := &e2eRun{
		t: t, bin: testenv.BuildVigil(t), logDir: t.TempDir(), kafka: brokers,
		topic: "vigil-e2e-" + suffix, group: "vigil-e2e-" + suffix, database: "vigil_e2e_" + suffix,
	}
	r.args = []string{
		"--kafka", brokers[0], "--topic", r.topic, "--group", r.group,
		"--clickhouse", chAddr, "--clickhouse-database", r.database,
		"--window", "1m", "--allowed-lateness", "1h", "--checkpoint-interval", "200ms",
		"--segment-keys", "region",
	}
	r.conn = openTestDatabase(t, chAddr, r.database)
	if err := kafkatopic.Ensure(ctx, brokers, r.topic, 4); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(7, 11))
	arrowP, err := ingest.NewProducer(brokers, r.topic, ingest.WithLinger(20*time.Millisecond), ingest.WithBatchSize(50))
	if err != nil {
		t.Fatal(err)
	}
	jsonP, err := ingest.NewProducer(brokers, r.topic, ingest.WithEncoding(wire.EncodingJSON), ingest.WithLinger(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// Hash: keyed by model, round robin when unkeyed. RequireAll: kafka-go's
	// default is fire-and-forget, which lets a later producer's message land
	// first.
	// A Transport of its own: kafka-go's default one is shared by the whole
	// test binary and answers UnknownTopicOrPartition for a topic missing
	// from its cached metadata (up to MetadataTTL, 6s), as this new topic is
	// after an earlier test's writes.
	raw := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: r.topic, Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll,
		Transport: &kafka.Transport{}}
	defer raw.Close()
	x := newExpect()

	// Per model, 60 events per window over e2eWindows windows, sent in time
	// order in two phases around a SIGKILL of the processor.
	const perWindow = 200
	models := []string{"e2e-arrow", "e2e-json", "e2e-kcat", "e2e-spread"}
	send := func(from, to int) {
		t.Helper()
		var rawMsgs []kafka.Message
		for i := from; i < to; i++ {
			tm := e2eBase.Add(time.Duration(i) * time.Minute / perWindow)
			for _, m := range models {
				e := e2eEvent(rng, m, i, tm)
				x.add(&e)
				switch m {
				case "e2e-arrow":
					err = arrowP.Record(ctx, e)
				case "e2e-json":
					err = jsonP.Record(ctx, e)
				case "e2e-kcat": // a kcat user: JSON, keyed by model, no headers
					rawMsgs = append(rawMsgs, kafka.Message{Key: []byte(m), Value: wire.AppendJSON(nil, &e)})
				case "e2e-spread": // unkeyed: spread over all partitions
					rawMsgs = append(rawMsgs, kafka.Message{Value: wire.AppendJSON(nil, &e)})
				}
				if err != nil {
					t.Fatalf("send %s event %d: %v", m, i, err)
				}
			}
		}
		if err := raw.WriteMessages(ctx, rawMsgs...); err != nil {
			t.Fatal(err)
		}
		if err := arrowP.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := jsonP.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	total := e2eWindows * perWindow

	r.start()
	send(0, total/2)
	r.waitCheckpoint(ctx, func(n int64) bool { return n > 0 }, "a first checkpoint")
	r.kill()

	send(total/2, total)
	// Keyed models: an event two hours later closes every earlier window, then
	// stragglers from the first window arrive: late.
	late := map[string]func(schemas.Event) error{
		"e2e-arrow": func(e schemas.Event) error { return arrowP.Record(ctx, e) },
		"e2e-json":  func(e schemas.Event) error { return jsonP.Record(ctx, e) },
	}
	for m, rec := range late {
		adv := e2eEvent(rng, m, 100000, e2eBase.Add(2*time.Hour))
		x.add(&adv)
		if err := rec(adv); err != nil {
			t.Fatal(err)
		}
	}
	if err := arrowP.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := jsonP.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for m, rec := range late {
		for j := 0; j < 3; j++ {
			e := e2eEvent(rng, m, 200000+j, e2eBase.Add(30*time.Second))
			x.late[m]++
			if err := rec(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := arrowP.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := jsonP.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Malformed messages: each goes to the dead-letter topic, none stops the processor.
	malformed := []kafka.Message{
		{Key: []byte("bad"), Value: []byte(`{"event_id": "x", "model": `)},
		{Key: []byte("bad"), Value: []byte(`{"event_id": "x", "model": "m", "event_time": 1, "features": [1, 2], "prediction": {"score": 0.5}}`)},
		{Key: []byte("bad"), Value: []byte(`{"event_id": "x", "event_time": 1, "prediction": {"score": 0.5}}`)},
		{Key: []byte("bad"), Value: []byte("not arrow at all"), Headers: []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte(wire.EncodingArrow)}}},
		{Key: []byte("bad"), Value: []byte(`{}`), Headers: []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte("protobuf")}}},
	}
	if err := raw.WriteMessages(ctx, malformed...); err != nil {
		t.Fatal(err)
	}
	end := topicEnd(t, brokers, r.topic)

	// Second run: killed part-way through the backlog.
	before := r.checkpointed(ctx)
	r.start()
	r.waitCheckpoint(ctx, func(n int64) bool { return n > before }, "progress after restart")
	r.kill()
	// Third run: to the end, then a clean stop.
	r.start()
	r.waitLog("partition restored")
	r.waitCheckpoint(ctx, func(n int64) bool { return n == end }, fmt.Sprintf("all %d messages checkpointed", end))
	r.stop()

	x.finish()
	assertRegions(t, r, x)
	assertFeatureWindows(t, r, x)
	assertModelWindows(t, r, x)
	assertLate(t, r, x)
	assertDeadLetters(t, r, len(malformed))
}

func assertFeatureWindows(t *testing.T, r *e2eRun, x *e2eExpect) {
	t.Helper()
	ctx := context.Background()
	rows, err := r.conn.Query(ctx, fmt.Sprintf(`
		SELECT model, toInt64(toUnixTimestamp(window_start)) AS ws, feature,
		       toUInt64(sum(count)), toUInt64(sum(missing)), sum(sum), minIf(min, count > 0), maxIf(max, count > 0)
		FROM %s.vigil_feature_windows FINAL
		WHERE kind != 'string' AND segment = ''
		GROUP BY model, ws, feature`, r.database))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[e2eKey]*e2eNum{}
	for rows.Next() {
		var k e2eKey
		var s e2eNum
		if err := rows.Scan(&k.model, &k.window, &k.feature, &s.count, &s.missing, &s.sum, &s.min, &s.max); err != nil {
			t.Fatal(err)
		}
		got[k] = &s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(x.num) {
		t.Errorf("numeric window rows: got %d keys, want %d", len(got), len(x.num))
	}
	for k, want := range x.num {
		g := got[k]
		if g == nil {
			t.Errorf("%v: no row", k)
			continue
		}
		if g.count != want.count || g.missing != want.missing {
			t.Errorf("%v: count/missing = %d/%d, want %d/%d", k, g.count, g.missing, want.count, want.missing)
		}
		if want.count == 0 {
			continue
		}
		if g.min != want.min || g.max != want.max {
			t.Errorf("%v: min/max = %v/%v, want %v/%v", k, g.min, g.max, want.min, want.max)
		}
		if gm, wm := g.sum/float64(g.count), want.sum/float64(want.count); math.Abs(gm-wm) > 1e-9*math.Max(1, math.Abs(wm)) {
			t.Errorf("%v: mean = %.12f, want %.12f", k, gm, wm)
		}
	}

	crows, err := r.conn.Query(ctx, fmt.Sprintf(`
		SELECT model, toInt64(toUnixTimestamp(window_start)) AS ws, feature, cat, toUInt64(sum(n))
		FROM (SELECT * FROM %s.vigil_feature_windows FINAL WHERE kind = 'string' AND segment = '')
		ARRAY JOIN categories AS cat, category_counts AS n
		GROUP BY model, ws, feature, cat`, r.database))
	if err != nil {
		t.Fatal(err)
	}
	defer crows.Close()
	gotCats := map[e2eKey]map[string]uint64{}
	for crows.Next() {
		var k e2eKey
		var cat string
		var n uint64
		if err := crows.Scan(&k.model, &k.window, &k.feature, &cat, &n); err != nil {
			t.Fatal(err)
		}
		if gotCats[k] == nil {
			gotCats[k] = map[string]uint64{}
		}
		gotCats[k][cat] = n
	}
	for k, want := range x.cats {
		if fmt.Sprint(gotCats[k]) != fmt.Sprint(want) {
			t.Errorf("%v: categories %v, want %v", k, gotCats[k], want)
		}
	}
}

func assertModelWindows(t *testing.T, r *e2eRun, x *e2eExpect) {
	t.Helper()
	rows, err := r.conn.Query(context.Background(), fmt.Sprintf(`
		SELECT model, toInt64(toUnixTimestamp(window_start)) AS ws, toUInt64(sum(events)), min(is_final)
		FROM %s.vigil_model_windows FINAL WHERE segment = '' GROUP BY model, ws`, r.database))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[e2eKey]uint64{}
	final := map[e2eKey]uint8{}
	for rows.Next() {
		var k e2eKey
		var n uint64
		var f uint8
		if err := rows.Scan(&k.model, &k.window, &n, &f); err != nil {
			t.Fatal(err)
		}
		got[k], final[k] = n, f
	}
	if fmt.Sprint(sortedCounts(got)) != fmt.Sprint(sortedCounts(x.events)) {
		t.Errorf("events per model window:\n got %v\nwant %v", sortedCounts(got), sortedCounts(x.events))
	}
	// The keyed models' advance event closed every earlier window.
	for _, m := range []string{"e2e-arrow", "e2e-json"} {
		for w := 0; w < e2eWindows; w++ {
			k := e2eKey{m, e2eBase.Add(time.Duration(w) * time.Minute).Unix(), ""}
			if final[k] != 1 {
				t.Errorf("%v: is_final = %d, want 1", k, final[k])
			}
		}
	}
}

// assertRegions: the segment states (--segment-keys region) hold exactly the
// events of each region, through the same kills and restarts.
func assertRegions(t *testing.T, r *e2eRun, x *e2eExpect) {
	t.Helper()
	rows, err := r.conn.Query(context.Background(), fmt.Sprintf(`
		SELECT model, toInt64(toUnixTimestamp(window_start)) AS ws, segment, toUInt64(sum(events))
		FROM %s.vigil_model_windows FINAL WHERE segment != '' GROUP BY model, ws, segment`, r.database))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[e2eKey]uint64{}
	for rows.Next() {
		var k e2eKey
		var n uint64
		if err := rows.Scan(&k.model, &k.window, &k.feature, &n); err != nil {
			t.Fatal(err)
		}
		got[k] = n
	}
	if fmt.Sprint(sortedCounts(got)) != fmt.Sprint(sortedCounts(x.regions)) {
		t.Errorf("events per model window region:\n got %v\nwant %v", sortedCounts(got), sortedCounts(x.regions))
	}
}

func sortedCounts(m map[e2eKey]uint64) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s@%d%s=%d", k.model, k.window, k.feature, v))
	}
	sort.Strings(out)
	return out
}

func assertLate(t *testing.T, r *e2eRun, x *e2eExpect) {
	t.Helper()
	rows, err := r.conn.Query(context.Background(), fmt.Sprintf(
		"SELECT model, toUInt64(count()) FROM %s.vigil_late_events FINAL GROUP BY model", r.database))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var m string
		var n uint64
		if err := rows.Scan(&m, &n); err != nil {
			t.Fatal(err)
		}
		got[m] = int(n)
	}
	if fmt.Sprint(got) != fmt.Sprint(x.late) {
		t.Errorf("late events per model = %v, want %v", got, x.late)
	}
}

func assertDeadLetters(t *testing.T, r *e2eRun, want int) {
	t.Helper()
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.kafka, Topic: r.topic + ".dlq", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offsets := map[string]string{} // source offset -> error (a replay may repeat one)
	for len(offsets) < want {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read dead-letter topic: %v (have %d of %d)", err, len(offsets), want)
		}
		var reason, off string
		for _, h := range m.Headers {
			switch h.Key {
			case "vigil-error":
				reason = string(h.Value)
			case "vigil-source-offset":
				off = string(h.Value)
			}
		}
		if reason == "" || off == "" {
			t.Errorf("dead letter without reason or source offset: %v", m.Headers)
		}
		offsets[off] = reason
	}
	t.Logf("dead letters: %v", offsets)
}
