package main

// A real serving framework: MLServer (from PyPI, deployments/local/mlserver.sh)
// serves a scikit-learn model trained on the spot
// (deployments/local/mlserver/train.py). Its Kafka server takes inference
// requests from a topic and writes the responses to another; vigil bridge
// pairs them, vigil process counts them, and the window counts in
// ClickHouse must be exact.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// mlserverModel trains the model into a fresh folder and returns it.
func mlserverModel(t *testing.T, py string, args ...string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	train := filepath.Join(filepath.Dir(file), "..", "..", "deployments", "local", "mlserver", "train.py")
	dir := filepath.Join(t.TempDir(), "iris")
	began := time.Now()
	out, err := exec.Command(py, append([]string{train, dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	t.Logf("trained in %v: %s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(string(out)))
	return dir
}

// startMLServer runs `mlserver start dir` until the test ends and waits
// for its log to say wantLog.
func startMLServer(t *testing.T, py, dir, wantLog string) {
	t.Helper()
	logPath := filepath.Join(dir, "mlserver.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(filepath.Dir(py), "mlserver"), "start", dir)
	cmd.Stdout, cmd.Stderr = f, f
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), wantLog) {
			t.Logf("mlserver ready in %v", time.Since(began).Round(time.Millisecond))
			return
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(logPath)
	t.Fatalf("mlserver did not log %q:\n%s", wantLog, b)
}

// irisRows are inputs near the three class centres the model was trained
// on, so its answers are certain: class 0, 1, 2.
var irisRows = [3][4]float64{{5.0, 3.4, 1.5, 0.2}, {5.9, 2.8, 4.3, 1.3}, {6.6, 3.0, 5.5, 2.0}}

func TestMLServerKafkaEndToEnd(t *testing.T) {
	py := testenv.MLServerPython(t)
	brokers := []string{testenv.Kafka(t)}
	chAddr := testenv.ClickHouse(t)
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic, db := "vigil-mls-"+suffix, "vigil_mls_"+suffix
	in, out := "mlserver-input-"+suffix, "mlserver-output-"+suffix
	for _, tp := range []string{topic, in, out} {
		if err := kafkatopic.Ensure(ctx, brokers, tp, 1); err != nil {
			t.Fatal(err)
		}
	}
	conn := openTestDatabase(t, chAddr, db)

	dir := mlserverModel(t, py, "--kafka", brokers[0], "--input", in, "--output", out,
		"--http-port", strconv.Itoa(freePort(t)), "--grpc-port", strconv.Itoa(freePort(t)), "--metrics-port", strconv.Itoa(freePort(t)))
	startMLServer(t, py, dir, "Reading messages from consumer")
	mapping := filepath.Join(t.TempDir(), "mapping.yaml")
	if err := os.WriteFile(mapping, []byte(`
models:
  iris:
    features:
      - tensor: predict
        columns: [sepal_length, sepal_width, petal_length, petal_width]
    prediction:
      label: predict
      classes: [setosa, versicolor, virginica]
`), 0o644); err != nil {
		t.Fatal(err)
	}

	logDir := t.TempDir()
	proc := startVigil(t, logDir, "process", "process", "--kafka", brokers[0], "--topic", topic, "--group", "vigil-mls-proc-"+suffix,
		"--clickhouse", chAddr, "--clickhouse-database", db, "--window", "1m", "--allowed-lateness", "1h", "--checkpoint-interval", "200ms",
		"--drift-interval", "0", "--performance-interval", "0")
	bridge := startVigil(t, logDir, "bridge", "bridge", "--kafka", brokers[0], "--topic", topic, "--serving-mapping", mapping,
		"--bridge-format", "mlserver", "--bridge-group", "vigil-mls-bridge-"+suffix, "--bridge-request-topic", in, "--bridge-response-topic", out,
		"--bridge-commit-interval", "200ms", "--http-addr", "127.0.0.1:0")
	metrics := "http://" + bridge.waitLog(`"http":"([0-9.:]+)"`) + "/metrics"

	// A transport of its own: kafka-go's default one is shared by the test
	// binary and answers UnknownTopicOrPartition for the new input topic
	// from metadata an earlier test made it cache (up to 6s).
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: tr}
	defer w.Close()
	// What the test sent: the time and the classes (of irisRows) of each
	// request, by id.
	sentAt := map[string]time.Time{}
	sentClasses := map[string][]int{}
	send := func(id string, classes ...int) {
		t.Helper()
		data := make([]string, len(classes))
		for i, c := range classes {
			r := irisRows[c]
			data[i] = fmt.Sprintf("[%g,%g,%g,%g]", r[0], r[1], r[2], r[3])
		}
		m := kafka.Message{Topic: in, Key: []byte(id), Time: time.Now(),
			Headers: []kafka.Header{{Key: "mlserver-model", Value: []byte("iris")}, {Key: "mlserver-version", Value: []byte("v1")}},
			Value: []byte(fmt.Sprintf(`{"inputs":[{"name":"predict","shape":[%d,4],"datatype":"FP32","data":[%s]}]}`,
				len(classes), strings.Join(data, ",")))}
		if err := w.WriteMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
		sentAt[id], sentClasses[id] = m.Time, classes
	}
	// MLServer's answers, read from its output topic: which requests it
	// answered is known from there, not guessed from a pause.
	answers := newKeyTail(t, brokers, out)

	// MLServer's Kafka consumer (no group) starts at the end of its topic
	// once it is assigned: repeat a one-row warm-up request until one is
	// answered. Those it missed never get a response (they expire in the
	// bridge); every one it answered counts.
	began := time.Now()
	for warmups := 0; !answers.anyPrefix("warmup-"); warmups++ {
		if time.Since(began) > 90*time.Second {
			t.Fatal("mlserver answered no request within 90s")
		}
		send("warmup-"+strconv.Itoa(warmups), 0)
		time.Sleep(500 * time.Millisecond)
	}
	// 60 requests of 1, 2 or 3 rows.
	served := time.Now()
	for i := 0; i < 60; i++ {
		classes := make([]int, 1+i%3)
		for j := range classes {
			classes[j] = (i + j) % 3
		}
		send("req-"+strconv.Itoa(i), classes...)
	}

	// The exact outcome of what MLServer answered: the pairs and events of
	// the bridge, and, once the processor checkpointed every event the
	// bridge produced, the windows and MLServer's classes in ClickHouse.
	// The expectation follows the answers as they come (a warm-up's answer
	// may come late); the checks pass only when all of it agrees at once.
	var state string
	deadline := time.Now().Add(checkpointWait)
	for ok := false; !ok; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			dumpWindows(t, conn, db)
			t.Fatalf("after %v: %s", checkpointWait, state)
		}
		keys := answers.read()
		want := map[int64]uint64{} // window start -> events
		var wantClass [3]uint64
		pairs, rows, reqs := 0, 0, 0
		for id := range keys {
			at, sent := sentAt[id]
			if !sent {
				continue
			}
			if strings.HasPrefix(id, "req-") {
				reqs++
			}
			pairs++
			rows += len(sentClasses[id])
			want[at.Truncate(time.Minute).Unix()] += uint64(len(sentClasses[id]))
			for _, c := range sentClasses[id] {
				wantClass[c]++
			}
		}
		paired, _ := scrapeMaybe(t, metrics, `vigil_serving_pairs_total{result="paired"}`)
		events, _ := scrapeMaybe(t, metrics, `vigil_serving_events_total{protocol="v2"}`)
		end, done := topicEnd(t, brokers, topic), checkpointedOffsets(conn, db, "vigil-mls-proc-"+suffix, topic)
		state = fmt.Sprintf("MLServer answered %d of the 60 requests and %d warm-ups; the bridge paired %v (want %d) and made %v events (want %d); "+
			"the processor checkpointed %d of %d messages", reqs, pairs-reqs, paired, pairs, events, rows, done, end)
		if reqs < 60 || paired != float64(pairs) || events != float64(rows) || done != end {
			continue
		}
		got := windowEvents(t, conn, db, "", "v1")
		labels := labelCounts(t, conn, db)
		wantLabels := fmt.Sprint(map[string]uint64{"setosa": wantClass[0], "versicolor": wantClass[1], "virginica": wantClass[2]})
		state += fmt.Sprintf("; events per window: got %v, want %v; MLServer's predicted classes: got %v, want %v", got, want, labels, wantLabels)
		ok = fmt.Sprint(got) == fmt.Sprint(want) && fmt.Sprint(labels) == wantLabels
		if ok {
			t.Logf("60 requests (%d rows) and %d warm-ups answered, paired and checkpointed %v after the first warm-up answer",
				rows-(pairs-reqs), pairs-reqs, time.Since(served).Round(time.Millisecond))
		}
	}
	bridge.stop()
	proc.stop()
}

// windowEvents returns the events per window start (Unix seconds) of model
// iris in segment seg (of model version version, "" = any), from
// vigil_model_windows FINAL.
func windowEvents(t *testing.T, conn driver.Conn, db, seg, version string) map[int64]uint64 {
	t.Helper()
	got := map[int64]uint64{}
	rs, err := conn.Query(context.Background(), fmt.Sprintf(`SELECT toInt64(toUnixTimestamp(window_start)), toUInt64(sum(events))
		FROM %s.vigil_model_windows FINAL WHERE segment = ? AND model = 'iris' AND (? = '' OR model_version = ?)
		GROUP BY window_start`, db), seg, version, version)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var ws int64
		var n uint64
		if err := rs.Scan(&ws, &n); err != nil {
			t.Fatal(err)
		}
		got[ws] = n
	}
	return got
}

// keyTail reads the keys of the messages of a one-partition topic as they
// come.
type keyTail struct {
	t       *testing.T
	brokers []string
	topic   string
	r       *kafka.Reader
	next    int64
	keys    map[string]bool
}

func newKeyTail(t *testing.T, brokers []string, topic string) *keyTail {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	return &keyTail{t: t, brokers: brokers, topic: topic, r: r, keys: map[string]bool{}}
}

// read returns the keys of every message up to the topic's end now.
func (k *keyTail) read() map[string]bool {
	k.t.Helper()
	end := topicEnd(k.t, k.brokers, k.topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for k.next < end {
		m, err := k.r.ReadMessage(ctx)
		if err != nil {
			k.t.Fatalf("read %s at offset %d (end %d): %v", k.topic, k.next, end, err)
		}
		k.keys[string(m.Key)] = true
		k.next = m.Offset + 1
	}
	return k.keys
}

func (k *keyTail) anyPrefix(prefix string) bool {
	for key := range k.read() {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// TestMLServerRESTEndToEnd: real V2 REST inference requests to MLServer
// through a KServe-style inference logger (deployments/local/mlserver/
// cloudevents_logger.py: a proxy that posts each request and response as a
// binary-mode CloudEvent) to vigil gateway's /v1/cloudevents; vigil process
// counts the events; the window counts and MLServer's predicted classes in
// ClickHouse must be exact.
func TestMLServerRESTEndToEnd(t *testing.T) {
	py := testenv.MLServerPython(t)
	brokers := []string{testenv.Kafka(t)}
	chAddr := testenv.ClickHouse(t)
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic, db := "vigil-mlsrest-"+suffix, "vigil_mlsrest_"+suffix
	if err := kafkatopic.Ensure(ctx, brokers, topic, 2); err != nil {
		t.Fatal(err)
	}
	conn := openTestDatabase(t, chAddr, db)
	httpPort := freePort(t)
	dir := mlserverModel(t, py, "--http-port", strconv.Itoa(httpPort), "--grpc-port", strconv.Itoa(freePort(t)), "--metrics-port", strconv.Itoa(freePort(t)))
	startMLServer(t, py, dir, "Uvicorn running on http://0.0.0.0:"+strconv.Itoa(httpPort))

	mapping := filepath.Join(t.TempDir(), "mapping.yaml")
	if err := os.WriteFile(mapping, []byte(`
models:
  iris:
    features:
      - tensor: predict
        columns: [sepal_length, sepal_width, petal_length, petal_width]
    prediction:
      label: predict
      classes: [setosa, versicolor, virginica]
    segments: [namespace]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	gwAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	proc := startVigil(t, logDir, "process", "process", "--kafka", brokers[0], "--topic", topic, "--group", "vigil-mlsrest-proc-"+suffix,
		"--clickhouse", chAddr, "--clickhouse-database", db, "--window", "1m", "--allowed-lateness", "1h", "--checkpoint-interval", "200ms",
		"--drift-interval", "0", "--performance-interval", "0", "--segment-keys", "namespace")
	gw := startVigil(t, logDir, "gateway", "gateway", "--kafka", brokers[0], "--topic", topic, "--http-addr", gwAddr,
		"--serving-mapping", mapping, "--gateway-linger", "20ms")
	gw.waitLog(`serving /metrics`)

	// The logger proxy in front of MLServer, posting to the gateway.
	_, file, _, _ := runtime.Caller(0)
	logger := filepath.Join(filepath.Dir(file), "..", "..", "deployments", "local", "mlserver", "cloudevents_logger.py")
	proxyAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	proxyLog, err := os.Create(filepath.Join(logDir, "logger.log"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := exec.Command(py, logger, "--listen", proxyAddr, "--upstream", "http://127.0.0.1:"+strconv.Itoa(httpPort),
		"--sink", "http://"+gwAddr+"/v1/cloudevents", "--namespace", "models")
	proxy.Stdout, proxy.Stderr = proxyLog, proxyLog
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Process.Kill(); _ = proxy.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", proxyAddr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(proxyLog.Name())
			t.Fatalf("the logger proxy did not listen:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// 50 real V2 REST requests of 1, 2 or 3 rows, each with its own Ce-Id.
	client := &http.Client{Timeout: 30 * time.Second}
	want := map[int64]uint64{}
	var wantClass [3]uint64
	began := time.Now()
	rows := 0
	crossed := false
	for i := 0; i < 50; i++ {
		classes := make([]int, 1+i%3)
		data := make([]string, len(classes))
		for j := range classes {
			classes[j] = (i + j) % 3
			wantClass[classes[j]]++
			r := irisRows[classes[j]]
			data[j] = fmt.Sprintf("[%g,%g,%g,%g]", r[0], r[1], r[2], r[3])
		}
		body := fmt.Sprintf(`{"inputs":[{"name":"predict","shape":[%d,4],"datatype":"FP32","data":[%s]}]}`, len(classes), strings.Join(data, ","))
		req, err := http.NewRequest(http.MethodPost, "http://"+proxyAddr+"/v2/models/iris/infer", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ce-Id", "rest-"+suffix+"-"+strconv.Itoa(i))
		at := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(answer), `"model_name":"iris"`) {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, answer)
		}
		// The event time is the logger's ce-time of the request, taken
		// between at and now: a request on a minute's edge is ambiguous.
		if at.Truncate(time.Minute) != time.Now().Truncate(time.Minute) {
			crossed = true
			t.Logf("request %d crossed a minute boundary: only the total is checked", i)
		}
		want[at.Truncate(time.Minute).Unix()] += uint64(len(classes))
		rows += len(classes)
	}
	t.Logf("50 REST requests (%d rows) answered by MLServer through the logger in %v", rows, time.Since(began).Round(time.Millisecond))

	gwMetrics := "http://" + gwAddr + "/metrics"
	waitMetric(t, gwMetrics, `vigil_serving_pairs_total{result="paired"}`, 50)
	if got := scrape(t, gwMetrics, `vigil_serving_events_total{protocol="v2"}`); got != float64(rows) {
		t.Errorf("gateway serving events %v, want %d", got, rows)
	}
	// Once the gateway delivered every event and the processor checkpointed
	// them all, the tables hold all of them: one read each.
	waitMetric(t, gwMetrics, `vigil_sdk_events_sent_total`, float64(rows))
	waitCheckpointed(t, conn, db, brokers, "vigil-mlsrest-proc-"+suffix, topic)
	got := windowEvents(t, conn, db, "namespace=models", "")
	var total uint64
	for _, n := range got {
		total += n
	}
	if total != uint64(rows) || (!crossed && fmt.Sprint(got) != fmt.Sprint(want)) {
		t.Fatalf("events per window (segment namespace=models):\n got %v\nwant %v", got, want)
	}
	wantLabels := fmt.Sprint(map[string]uint64{"setosa": wantClass[0], "versicolor": wantClass[1], "virginica": wantClass[2]})
	if labels := labelCounts(t, conn, db); fmt.Sprint(labels) != wantLabels {
		t.Errorf("MLServer's predicted classes: got %v, want %v", labels, wantLabels)
		dumpWindows(t, conn, db)
	}
	gw.stop()
	proc.stop()
}

// labelCounts returns how many events of model iris (segment "") each
// predicted class has in vigil_feature_windows FINAL.
func labelCounts(t *testing.T, conn driver.Conn, db string) map[string]uint64 {
	t.Helper()
	labels := map[string]uint64{}
	rs, err := conn.Query(context.Background(), fmt.Sprintf(`SELECT c, toUInt64(sum(n)) FROM %s.vigil_feature_windows FINAL
		ARRAY JOIN categories AS c, category_counts AS n
		WHERE model = 'iris' AND feature = '__prediction_label' AND segment = '' GROUP BY c`, db))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var c string
		var n uint64
		if err := rs.Scan(&c, &n); err != nil {
			t.Fatal(err)
		}
		labels[c] = n
	}
	return labels
}

// dumpWindows logs every row (FINAL or not) of the window tables of model
// iris, for a failure's diagnosis.
func dumpWindows(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	for _, q := range []string{
		`SELECT 'model', toString(window_start), segment, toString(events), toString(last_offset), toString(is_final), toString(updated_at), '' FROM %s.vigil_model_windows WHERE model = 'iris' ORDER BY updated_at`,
		`SELECT 'feature', toString(window_start), feature, toString(count), toString(last_offset), toString(is_final), toString(updated_at), concat(toString(categories), toString(category_counts), ' missing ', toString(missing)) FROM %s.vigil_feature_windows WHERE model = 'iris' AND segment = '' ORDER BY feature, updated_at`,
	} {
		rs, err := conn.Query(context.Background(), fmt.Sprintf(q, db))
		if err != nil {
			t.Logf("dump: %v", err)
			continue
		}
		for rs.Next() {
			var c [8]string
			if err := rs.Scan(&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7]); err != nil {
				t.Logf("dump: %v", err)
				break
			}
			t.Logf("%v", c)
		}
		rs.Close()
	}
}
