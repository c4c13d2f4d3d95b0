package main

// `vigil bridge` end to end: MLServer- and Seldon-shaped request/response
// messages on the REAL Kafka -> two vigil bridge binaries (one per format)
// -> the prediction topic -> vigil process -> the REAL ClickHouse, with the
// window counts asserted from SQL, the bridge's counters from its /metrics,
// and a restart that must deliver nothing again.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
)

// vigilProc is one running vigil binary with its log file.
type vigilProc struct {
	t   *testing.T
	cmd *exec.Cmd
	log string
}

func startVigil(t *testing.T, logDir, name string, args ...string) *vigilProc {
	t.Helper()
	path := filepath.Join(logDir, name+".log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.BuildVigil(t), args...)
	cmd.Stdout, cmd.Stderr = f, f
	// A free port for /metrics unless --http-addr says otherwise: tests
	// (and other test binaries, and a demo) run processes side by side,
	// and a second `vigil process` on the default 127.0.0.1:9464 would
	// exit at once.
	cmd.Env = append(os.Environ(), "VIGIL_LOG_FORMAT=json", "VIGIL_LOG_LEVEL=info", "VIGIL_HTTP_ADDR=127.0.0.1:0")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vigil %s: %v", name, err)
	}
	p := &vigilProc{t: t, cmd: cmd, log: path}
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(path)
			lines := strings.Split(string(data), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			t.Logf("vigil %s, the end of its log:\n%s", name, strings.Join(lines, "\n"))
		}
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// waitLog waits until the log matches re and returns the first submatch.
func (p *vigilProc) waitLog(re string) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(p.log)
		if m := rx.FindStringSubmatch(string(data)); m != nil {
			if len(m) > 1 {
				return m[1]
			}
			return m[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	data, _ := os.ReadFile(p.log)
	p.t.Fatalf("%s never logged %q; log:\n%s", p.log, re, data)
	return ""
}

func (p *vigilProc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		data, _ := os.ReadFile(p.log)
		p.t.Errorf("%s exited with %v; log:\n%s", p.log, err, data)
	}
}

// scrape returns the value of one sample of the Prometheus text at url.
func scrape(t *testing.T, url, sample string) float64 {
	t.Helper()
	v, ok := scrapeMaybe(t, url, sample)
	if !ok {
		t.Fatalf("no sample %s at %s", sample, url)
	}
	return v
}

// scrapeMaybe: a labelled counter has no sample before its first increment.
func scrapeMaybe(t *testing.T, url, sample string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f, true
		}
	}
	return 0, false
}

func waitMetric(t *testing.T, url, sample string, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if scrape(t, url, sample) == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s = %v, want %v", sample, scrape(t, url, sample), want)
}

// pbField helpers encode grpc_predict_v2.proto messages (Seldon writes
// ModelInferRequest/ModelInferResponse protobufs to its model topics).
func pbStr(b []byte, n protowire.Number, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(b, n, protowire.BytesType), s)
}
func pbMsg(b []byte, n protowire.Number, m []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), m)
}

func pbFP32Tensor(name string, shape []int64, vals []float32) []byte {
	var t []byte
	t = pbStr(t, 1, name)
	t = pbStr(t, 2, "FP32")
	var packed []byte
	for _, d := range shape {
		packed = protowire.AppendVarint(packed, uint64(d))
	}
	t = pbMsg(t, 3, packed)
	var fp []byte
	for _, v := range vals {
		fp = binary.LittleEndian.AppendUint32(fp, math.Float32bits(v))
	}
	return pbMsg(t, 5, pbMsg(nil, 6, fp))
}

func TestBridgeEndToEnd(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	chAddr := testenv.ClickHouse(t)
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic, db := "vigil-bridge-"+suffix, "vigil_bridge_"+suffix
	reqTopic, respTopic := "mlserver-input-"+suffix, "mlserver-output-"+suffix
	seldonNS := "ns" + suffix
	seldonIn, seldonOut := "seldon."+seldonNS+".model.income.inputs", "seldon."+seldonNS+".model.income.outputs"
	for _, tp := range []string{topic, reqTopic, respTopic, seldonIn, seldonOut} {
		if err := kafkatopic.Ensure(ctx, brokers, tp, 2); err != nil {
			t.Fatal(err)
		}
	}
	conn := openTestDatabase(t, chAddr, db)
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
  income:
    prediction:
      probabilities: proba
      classes: ["no", "yes"]
      positive_class: "yes"
`), 0o644); err != nil {
		t.Fatal(err)
	}

	// The messages: per minute w (3 windows), 10 MLServer requests of 2 rows
	// and 5 Seldon requests of 1 row, each with its response 5 ms later.
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// A transport of its own: kafka-go's default one is shared by the test
	// binary and answers UnknownTopicOrPartition for these new topics from
	// metadata an earlier test made it cache (up to 6s).
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.Hash{}, BatchTimeout: 10 * time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: tr}
	defer w.Close()
	var msgs []kafka.Message
	want := map[string]uint64{} // "model@minute" -> events
	for win := 0; win < 3; win++ {
		for i := 0; i < 10; i++ {
			id := fmt.Sprintf("mls-%d-%d", win, i)
			at := base.Add(time.Duration(win)*time.Minute + time.Duration(i)*time.Second)
			msgs = append(msgs,
				kafka.Message{Topic: reqTopic, Key: []byte(id), Time: at,
					Headers: []kafka.Header{{Key: "mlserver-model", Value: []byte("iris")}, {Key: "mlserver-version", Value: []byte("v0.1.0")}},
					Value:   []byte(`{"inputs":[{"name":"predict","shape":[2,4],"datatype":"FP32","data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}]}`)},
				kafka.Message{Topic: respTopic, Key: []byte(id), Time: at.Add(5 * time.Millisecond),
					Value: []byte(`{"model_name":"iris","model_version":"v0.1.0","id":"` + id + `","outputs":[{"name":"predict","shape":[2,1],"datatype":"INT64","data":[1,2]}]}`)})
			want[fmt.Sprintf("iris@%d", win)] += 2
		}
		for i := 0; i < 5; i++ {
			id := fmt.Sprintf("sel-%d-%d", win, i)
			at := base.Add(time.Duration(win)*time.Minute + time.Duration(i)*time.Second)
			var req, resp []byte
			req = pbStr(req, 1, "income")
			req = pbMsg(req, 5, pbFP32Tensor("age", []int64{1}, []float32{float32(30 + i)}))
			req = pbMsg(req, 5, pbFP32Tensor("hours", []int64{1, 1}, []float32{40}))
			resp = pbStr(resp, 1, "income")
			resp = pbMsg(resp, 5, pbFP32Tensor("proba", []int64{1, 2}, []float32{0.25, 0.75}))
			hdr := []kafka.Header{{Key: "x-request-id", Value: []byte(id)}, {Key: "pipeline", Value: []byte("income")}}
			msgs = append(msgs,
				kafka.Message{Topic: seldonIn, Key: []byte("income." + id), Time: at, Headers: hdr, Value: req},
				kafka.Message{Topic: seldonOut, Key: []byte("income." + id), Time: at.Add(5 * time.Millisecond), Headers: hdr, Value: resp})
			want[fmt.Sprintf("income@%d", win)]++
		}
	}
	// A request whose response never comes (expires), and a response with
	// no request id (skipped, counted invalid).
	msgs = append(msgs,
		kafka.Message{Topic: reqTopic, Key: []byte("orphan"), Time: base, Headers: []kafka.Header{{Key: "mlserver-model", Value: []byte("iris")}},
			Value: []byte(`{"inputs":[{"name":"predict","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)},
		kafka.Message{Topic: respTopic, Time: base, Value: []byte(`{"model_name":"iris","outputs":[]}`)})
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	logDir := t.TempDir()
	proc := startVigil(t, logDir, "process", "process", "--kafka", brokers[0], "--topic", topic, "--group", "vigil-bridge-proc-"+suffix,
		"--clickhouse", chAddr, "--clickhouse-database", db, "--window", "1m", "--allowed-lateness", "1h", "--checkpoint-interval", "200ms",
		"--drift-interval", "0", "--performance-interval", "0", "--dedup-event-ids")
	common := []string{"--kafka", brokers[0], "--topic", topic, "--serving-mapping", mapping, "--serving-pending-ttl", "3s",
		"--bridge-commit-interval", "200ms", "--http-addr", "127.0.0.1:0"}
	mlsArgs := append([]string{"bridge", "--bridge-format", "mlserver", "--bridge-group", "vigil-bridge-mls-" + suffix,
		"--bridge-request-topic", reqTopic, "--bridge-response-topic", respTopic}, common...)
	selArgs := append([]string{"bridge", "--bridge-format", "seldon", "--bridge-group", "vigil-bridge-sel-" + suffix,
		"--seldon-namespace", seldonNS, "--seldon-models", "income"}, common...)
	mls := startVigil(t, logDir, "bridge-mlserver", mlsArgs...)
	sel := startVigil(t, logDir, "bridge-seldon", selArgs...)
	mlsURL := "http://" + mls.waitLog(`"http":"([0-9.:]+)"`) + "/metrics"
	selURL := "http://" + sel.waitLog(`"http":"([0-9.:]+)"`) + "/metrics"

	waitMetric(t, mlsURL, `vigil_serving_pairs_total{result="paired"}`, 30)
	waitMetric(t, selURL, `vigil_serving_pairs_total{result="paired"}`, 15)
	waitMetric(t, mlsURL, `vigil_serving_pairs_total{result="expired"}`, 1) // the orphan, after the 3s ttl
	for _, c := range []struct {
		url, sample string
		want        float64
	}{
		{mlsURL, `vigil_serving_events_total{protocol="v2"}`, 60},
		{mlsURL, `vigil_serving_pending_pairs`, 0},
		{mlsURL, `vigil_bridge_messages_total{result="invalid",topic="` + respTopic + `"}`, 1},
		{mlsURL, `vigil_bridge_messages_total{result="ok",topic="` + reqTopic + `"}`, 31},
		{mlsURL, `vigil_serving_pairs_total{result="duplicate"}`, 0},
		{selURL, `vigil_serving_events_total{protocol="v2"}`, 15},
		{selURL, `vigil_bridge_messages_total{result="ok",topic="` + seldonOut + `"}`, 15},
	} {
		if got := scrape(t, c.url, c.sample); got != c.want {
			t.Errorf("%s = %v, want %v", c.sample, got, c.want)
		}
	}
	// Let a commit pass after the orphan expired, then stop both bridges.
	time.Sleep(600 * time.Millisecond)
	mls.stop()
	sel.stop()
	delivered := topicEnd(t, brokers, topic)
	// Every table of a checkpoint is written before its checkpoint row:
	// once that row covers the topic, one read of each table is exact.
	waitCheckpointed(t, conn, db, brokers, "vigil-bridge-proc-"+suffix, topic)

	// The exact windows.
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT model, toInt64(toUnixTimestamp(window_start)), toUInt64(sum(events)), any(model_version)
		FROM %s.vigil_model_windows FINAL WHERE segment = '' GROUP BY model, window_start`, db))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	versions := map[string]string{}
	for rows.Next() {
		var m, v string
		var ws int64
		var n uint64
		if err := rows.Scan(&m, &ws, &n, &v); err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprintf("%s@%d", m, (ws-base.Unix())/60)] = n
		versions[m] = v
	}
	rows.Close()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events per model window:\n got %v\nwant %v", got, want)
	}
	if versions["iris"] != "v0.1.0" || versions["income"] != "" {
		t.Errorf("versions %v, want iris v0.1.0, income none", versions)
	}
	// The mapping: iris's named columns, income's score (the probability of "yes").
	for _, c := range []struct {
		model, feature string
		count          uint64
		sum            float64
	}{
		{"iris", "sepal_length", 60, 30 * (6.8 + 6.0)},
		{"iris", "petal_width", 60, 30 * (1.4 + 1.6)},
		{"income", "age", 15, 3 * (30 + 31 + 32 + 33 + 34)},
		{"income", "hours", 15, 15 * 40},
		{"income", "__prediction_score", 15, 15 * 0.75},
	} {
		var n uint64
		var sum float64
		row := conn.QueryRow(ctx, fmt.Sprintf(`SELECT toUInt64(sum(count)), sum(sum) FROM %s.vigil_feature_windows FINAL
			WHERE model = ? AND feature = ? AND segment = ''`, db), c.model, c.feature)
		if err := row.Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		if n != c.count || math.Abs(sum-c.sum) > 1e-3 {
			t.Errorf("%s.%s: count %d sum %v, want %d and %v", c.model, c.feature, n, sum, c.count, c.sum)
		}
	}

	// A restart reads from the committed offsets: nothing is delivered again.
	mls2 := startVigil(t, logDir, "bridge-mlserver-2", mlsArgs...)
	url2 := "http://" + mls2.waitLog(`"http":"([0-9.:]+)"`) + "/metrics"
	time.Sleep(2 * time.Second) // a few fetch rounds
	if err := w.WriteMessages(ctx,
		kafka.Message{Topic: reqTopic, Key: []byte("late-1"), Time: base.Add(3 * time.Minute), Headers: []kafka.Header{{Key: "mlserver-model", Value: []byte("iris")}},
			Value: []byte(`{"inputs":[{"name":"predict","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)},
		kafka.Message{Topic: respTopic, Key: []byte("late-1"), Time: base.Add(3 * time.Minute),
			Value: []byte(`{"model_name":"iris","id":"late-1","outputs":[{"name":"predict","shape":[1],"datatype":"INT64","data":[0]}]}`)}); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, url2, `vigil_serving_pairs_total{result="paired"}`, 1)
	// Only the new request was read: the committed offsets held.
	if n := scrape(t, url2, `vigil_bridge_messages_total{result="ok",topic="`+reqTopic+`"}`); n != 1 {
		t.Errorf("the restarted bridge read %v request messages, want 1 (the new one)", n)
	}
	mls2.stop()
	waitCheckpointed(t, conn, db, brokers, "vigil-bridge-proc-"+suffix, topic)
	var late uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT toUInt64(sum(events)) FROM %s.vigil_model_windows FINAL
		WHERE segment = '' AND model = 'iris' AND window_start = toDateTime(?)`, db), base.Add(3*time.Minute).Unix()).Scan(&late); err != nil {
		t.Fatal(err)
	}
	if late != 1 {
		t.Errorf("the window of the request after the restart has %d events, want 1", late)
	}
	if after := topicEnd(t, brokers, topic); after <= delivered {
		t.Errorf("the prediction topic did not grow after the restart (%d, %d)", delivered, after)
	}
	proc.stop()
}
