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

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	// send writes one V2 inference request of these rows (classes of
	// irisRows) and returns its time; the expected counts follow it.
	send := func(id string, classes ...int) time.Time {
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
		return m.Time
	}
	paired := func() float64 {
		v, _ := scrapeMaybe(t, metrics, `vigil_serving_pairs_total{result="paired"}`)
		return v
	}

	// MLServer's Kafka consumer (no group) starts at the end of its topic
	// once it is assigned: repeat a one-row warm-up request until one is
	// answered. Those it missed never get a response (they expire in the
	// bridge); those it answered are the last ones sent.
	var warmups []time.Time
	began := time.Now()
	for paired() < 1 {
		if time.Since(began) > 90*time.Second {
			t.Fatal("mlserver answered no request within 90s")
		}
		warmups = append(warmups, send("warmup-"+strconv.Itoa(len(warmups)), 0))
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a warm-up answer still on its way
	answered := int(paired())
	want := map[int64]uint64{} // window start -> events
	var wantClass [3]uint64
	for _, at := range warmups[len(warmups)-answered:] {
		want[at.Truncate(time.Minute).Unix()]++
		wantClass[0]++
	}
	// 60 requests of 1, 2 or 3 rows.
	served := time.Now()
	rows := 0
	for i := 0; i < 60; i++ {
		classes := make([]int, 1+i%3)
		for j := range classes {
			classes[j] = (i + j) % 3
			wantClass[classes[j]]++
		}
		at := send("req-"+strconv.Itoa(i), classes...)
		want[at.Truncate(time.Minute).Unix()] += uint64(len(classes))
		rows += len(classes)
	}
	waitMetric(t, metrics, `vigil_serving_pairs_total{result="paired"}`, float64(answered+60))
	t.Logf("warm-up: %d requests, the last %d answered after %v; 60 requests (%d rows) served and paired in %v",
		len(warmups), answered, served.Sub(began).Round(time.Millisecond), rows, time.Since(served).Round(time.Millisecond))
	if got := scrape(t, metrics, `vigil_serving_events_total{protocol="v2"}`); got != float64(answered+rows) {
		t.Errorf("bridge events %v, want %d", got, answered+rows)
	}

	// The exact windows, and MLServer's answers through the mapping.
	got := map[int64]uint64{}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		got = map[int64]uint64{}
		rs, err := conn.Query(ctx, fmt.Sprintf(`SELECT toInt64(toUnixTimestamp(window_start)), toUInt64(sum(events))
			FROM %s.vigil_model_windows FINAL WHERE segment = '' AND model = 'iris' AND model_version = 'v1' GROUP BY window_start`, db))
		if err == nil {
			for rs.Next() {
				var ws int64
				var n uint64
				if err := rs.Scan(&ws, &n); err != nil {
					t.Fatal(err)
				}
				got[ws] = n
			}
			rs.Close()
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events per window:\n got %v\nwant %v", got, want)
	}
	checkLabels(t, conn, db, wantClass)
	bridge.stop()
	proc.stop()
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
	got := map[int64]uint64{}
	var total uint64
	deadline = time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		got, total = map[int64]uint64{}, 0
		rs, err := conn.Query(ctx, fmt.Sprintf(`SELECT toInt64(toUnixTimestamp(window_start)), toUInt64(sum(events))
			FROM %s.vigil_model_windows FINAL WHERE segment = 'namespace=models' AND model = 'iris' GROUP BY window_start`, db))
		if err == nil {
			for rs.Next() {
				var ws int64
				var n uint64
				if err := rs.Scan(&ws, &n); err != nil {
					t.Fatal(err)
				}
				got[ws] = n
				total += n
			}
			rs.Close()
		}
		if total == uint64(rows) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if total != uint64(rows) || (!crossed && fmt.Sprint(got) != fmt.Sprint(want)) {
		t.Fatalf("events per window (segment namespace=models):\n got %v\nwant %v", got, want)
	}
	checkLabels(t, conn, db, wantClass)
	gw.stop()
	proc.stop()
}

// checkLabels waits until the label states of model iris count wantClass
// of each class (the feature windows may be a checkpoint behind the model
// windows), and fails if they never do.
func checkLabels(t *testing.T, conn driver.Conn, db string, wantClass [3]uint64) {
	t.Helper()
	want := fmt.Sprint(map[string]uint64{"setosa": wantClass[0], "versicolor": wantClass[1], "virginica": wantClass[2]})
	var got string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		labels := map[string]uint64{}
		rs, err := conn.Query(context.Background(), fmt.Sprintf(`SELECT c, toUInt64(sum(n)) FROM %s.vigil_feature_windows FINAL
			ARRAY JOIN categories AS c, category_counts AS n
			WHERE model = 'iris' AND feature = '__prediction_label' AND segment = '' GROUP BY c`, db))
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var c string
			var n uint64
			if err := rs.Scan(&c, &n); err != nil {
				t.Fatal(err)
			}
			labels[c] = n
		}
		rs.Close()
		if got = fmt.Sprint(labels); got == want {
			return
		}
	}
	t.Errorf("MLServer's predicted classes: got %v, want %v", got, want)
}
