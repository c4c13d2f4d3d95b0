package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// metrics scrapes url and parses the exposition with Prometheus's own text
// parser; it returns "name{label="value",...}" -> value (histograms as
// name_count) with the labels sorted.
func metrics(t *testing.T, url string) (map[string]float64, error) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		return nil, fmt.Errorf("content type %q, want the text exposition format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse the exposition: %w", err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[strings.Replace(key, name, name+"_count", 1)] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out, nil
}

func getStatus(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls cond every 200ms until it returns "" or timeout passes; the
// test fails with cond's last answer.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if last = cond(); last == "" {
			return
		}
	}
	t.Fatalf("%s: not within %v: %s", what, timeout, last)
}

// TestMetricsEndpoint runs `vigil process` with --http-addr on the shared
// Kafka and a private ClickHouse, sends known messages (valid, late and
// malformed of each kind) and checks the exact counters scraped from
// /metrics (parsed by Prometheus's parser), the lag going to 0, /healthz,
// and /readyz: 200 once ready, 503 naming clickhouse while ClickHouse is
// stopped, 200 again once it is back.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	defer http.DefaultClient.CloseIdleConnections()
	brokers := []string{testenv.Kafka(t)}
	bin := testenv.BuildVigil(t)
	chs := StartClickHouse(t)
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic, db := "vigil-metrics-"+suffix, "vigil_metrics_"+suffix
	logDir := t.TempDir()
	base := "http://127.0.0.1:" + strconv.Itoa(freePorts(t, 1)[0])
	proc := StartProcess(t, filepath.Join(logDir, "process.log"), bin, []string{
		"process", "--kafka", brokers[0], "--topic", topic, "--group", topic, "--partitions", "1",
		"--clickhouse", chs.Addr(), "--clickhouse-database", db,
		"--window", "1m", "--allowed-lateness", "1s", "--checkpoint-interval", "200ms",
		"--drift-interval", "1s", "--performance-interval", "1s",
		"--http-addr", strings.TrimPrefix(base, "http://"),
	}, []string{"VIGIL_LOG_FORMAT=json"})
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(proc.Log); err == nil {
				t.Logf("process log:\n%s", b)
			}
		}
	})

	waitFor(t, 90*time.Second, "/readyz 200", func() string {
		status, body, err := getStatus(base + "/readyz")
		if err != nil || status != http.StatusOK {
			return fmt.Sprintf("%d %s %v", status, body, err)
		}
		var ready struct{ Checks map[string]string }
		if err := json.Unmarshal([]byte(body), &ready); err != nil {
			return err.Error()
		}
		if want := "member of generation"; !strings.Contains(ready.Checks["processor"], want) {
			return "processor check " + strconv.Quote(ready.Checks["processor"]) + ", want " + want
		}
		return ""
	})
	if status, body, err := getStatus(base + "/healthz"); err != nil || status != http.StatusOK {
		t.Fatalf("/healthz: %d %s %v", status, body, err)
	}

	// On the one partition, in this order: 10 events of window 0, 5 of
	// window 5 (the watermark passes window 0), 3 of window 0 again (late),
	// then malformed messages of each kind.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	event := func(i int, at time.Duration) kafka.Message {
		e := schemas.Event{ID: "e-" + strconv.Itoa(i), Model: "m", ModelVersion: "1", Time: t0.Add(at),
			Features: []schemas.Feature{schemas.Num("x", float64(i))}, Prediction: schemas.Score(0.5)}
		return kafka.Message{Key: []byte("m"), Value: wire.AppendJSON(nil, &e)}
	}
	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, event(i, time.Duration(i+1)*time.Second))
	}
	for i := range 5 {
		msgs = append(msgs, event(10+i, 5*time.Minute+time.Duration(i)*time.Second))
	}
	for i := range 3 {
		msgs = append(msgs, event(15+i, 20*time.Second))
	}
	msgs = append(msgs,
		kafka.Message{Value: []byte(`{"event_id":`)},
		kafka.Message{Value: []byte(`{"event_id":"x","event_time":1767225600000,"features":{},"prediction":{"score":0.5}}`)}, // no model
		kafka.Message{Value: []byte(`{}`), Headers: []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte("avro")}}},
		kafka.Message{Value: []byte(`not arrow`), Headers: []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte(wire.EncodingArrow)}}},
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkatopic.Ensure(ctx, brokers, topic, 1); err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchSize: len(msgs)}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	const lag = `vigil_processor_partition_lag_messages{partition="0"}`
	const checkpointLag = `vigil_processor_partition_checkpoint_lag_messages{partition="0"}`
	var got map[string]float64
	waitFor(t, 60*time.Second, "all messages handled and checkpointed", func() string {
		var err error
		if got, err = metrics(t, base+"/metrics"); err != nil {
			return err.Error()
		}
		if got["vigil_processor_messages_total"] != float64(len(msgs)) || got[lag] != 0 || got[checkpointLag] != 0 {
			return fmt.Sprintf("messages %v, lag %v, checkpoint lag %v", got["vigil_processor_messages_total"], got[lag], got[checkpointLag])
		}
		return ""
	})
	for _, tc := range []struct {
		metric string
		want   float64
	}{
		{"vigil_processor_messages_total", 22},
		{"vigil_processor_events_total", 18},
		{"vigil_processor_events_counted_total", 15},
		{"vigil_processor_late_events_total", 3},
		{`vigil_processor_events_skipped_total{reason="replay"}`, 0},
		{`vigil_processor_dead_letters_total{reason="invalid_json"}`, 2},
		{`vigil_processor_dead_letters_total{reason="unknown_encoding"}`, 1},
		{`vigil_processor_dead_letters_total{reason="invalid_arrow"}`, 1},
		{"vigil_processor_dead_letters_dropped_total", 0},
		{"vigil_processor_checkpoint_failures_total", 0},
		{"vigil_processor_leader", 1},
		{"vigil_processor_partitions", 1},
		{lag, 0},
		{checkpointLag, 0},
		{`vigil_processor_partition_held_bytes{partition="0"}`, 0},
		{"vigil_labels_stored_total", 0},
	} {
		if v, ok := got[tc.metric]; !ok || v != tc.want {
			t.Errorf("%s = %v (exported: %v), want %v", tc.metric, v, ok, tc.want)
		}
	}
	// The watermark is 5m3s after t0 (its largest event time minus 1s).
	wantDelay := time.Since(t0.Add(5*time.Minute + 3*time.Second)).Seconds()
	if d := got[`vigil_processor_partition_watermark_delay_seconds{partition="0"}`]; d < wantDelay-1 || d > wantDelay+30 {
		t.Errorf("watermark delay %v, want about %v", d, wantDelay)
	}
	if got["vigil_processor_checkpoints_total"] < 1 || got["vigil_processor_checkpoint_duration_seconds_count"] != got["vigil_processor_checkpoints_total"] {
		t.Errorf("checkpoints %v, checkpoint durations observed %v: want one per checkpoint", got["vigil_processor_checkpoints_total"], got["vigil_processor_checkpoint_duration_seconds_count"])
	}
	if got["vigil_processor_generation"] < 0 {
		t.Errorf("generation %v while ready", got["vigil_processor_generation"])
	}
	// Window 0 is final (written and dropped); window 5 stays open.
	if s := got[`vigil_processor_partition_window_states{partition="0"}`]; s != 1 {
		t.Errorf("window states %v, want 1 (the open window)", s)
	}
	waitFor(t, 30*time.Second, "drift and performance passes", func() string {
		got, err := metrics(t, base+"/metrics")
		if err != nil {
			return err.Error()
		}
		for _, job := range []string{"drift", "performance"} {
			if ok := got[`vigil_job_runs_total{job="`+job+`",result="ok"}`]; ok < 1 || got[`vigil_job_duration_seconds_count{job="`+job+`"}`] < ok {
				return fmt.Sprintf("%s: %v ok runs, %v timed", job, ok, got[`vigil_job_duration_seconds_count{job="`+job+`"}`])
			}
			if got[`vigil_job_runs_total{job="`+job+`",result="skipped"}`] != 0 {
				return job + " skipped in the leader"
			}
		}
		return ""
	})
	// The dead letters are in the dead-letter topic too.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic + ".dlq", Partition: 0, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	for i := range 4 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read dead letter %d: %v", i, err)
		}
		if !slices.ContainsFunc(m.Headers, func(h kafka.Header) bool { return h.Key == "vigil-error" && len(h.Value) > 0 }) {
			t.Errorf("dead letter %d without a vigil-error header: %v", i, m.Headers)
		}
	}

	chs.Stop()
	waitFor(t, 30*time.Second, "/readyz 503 naming clickhouse", func() string {
		status, body, err := getStatus(base + "/readyz")
		if err != nil {
			return err.Error()
		}
		var r struct{ Failing map[string]string }
		_ = json.Unmarshal([]byte(body), &r)
		if status != http.StatusServiceUnavailable || r.Failing["clickhouse"] == "" {
			return fmt.Sprintf("%d %s", status, body)
		}
		if _, other := r.Failing["processor"]; other {
			return "processor failing too: " + body
		}
		return ""
	})
	if status, body, err := getStatus(base + "/healthz"); err != nil || status != http.StatusOK {
		t.Errorf("/healthz with ClickHouse down: %d %s %v", status, body, err)
	}
	chs.Start()
	waitFor(t, 60*time.Second, "/readyz 200 again", func() string {
		status, body, err := getStatus(base + "/readyz")
		if err != nil || status != http.StatusOK {
			return fmt.Sprintf("%d %s %v", status, body, err)
		}
		return ""
	})
	proc.Stop(60 * time.Second)
}
