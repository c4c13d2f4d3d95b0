package main

// `vigil gateway` end to end: events and labels POSTed over HTTP by net/http's
// client (and curl when installed) in every body form -> the gateway binary
// -> the REAL Kafka -> vigil process -> the REAL ClickHouse. The window
// counts and feature sums are asserted from SQL, the labels joined to their
// predictions, the rejected items found nowhere, and the gateway's counters
// read from its /metrics.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/vigil-ml/vigil/internal/testenv"
)

type gatewayAnswer struct {
	Accepted int `json:"accepted"`
	Rejected []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"rejected"`
	Error string `json:"error"`
}

func TestGatewayEndToEnd(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	chAddr := testenv.ClickHouse(t)
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic, db := "vigil-gateway-"+suffix, "vigil_gateway_"+suffix
	conn := openTestDatabase(t, chAddr, db)
	dir := t.TempDir()
	t.Setenv("VIGIL_TEST_GATEWAY_TOKEN_A", "token-a-"+suffix)
	if err := os.WriteFile(filepath.Join(dir, "token-b"), []byte("token-b-"+suffix+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tokens, []byte(`tokens:
  - {token: env:VIGIL_TEST_GATEWAY_TOKEN_A, name: team-a, models: [fraud]}
  - {token: "file:`+filepath.Join(dir, "token-b")+`", name: team-b}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tokA, tokB := "token-a-"+suffix, "token-b-"+suffix

	logDir := t.TempDir()
	gw := startVigil(t, logDir, "gateway", "gateway", "--kafka", brokers[0], "--topic", topic, "--partitions", "2",
		"--http-addr", "127.0.0.1:0", "--gateway-tokens", tokens, "--gateway-max-features", "3", "--gateway-linger", "20ms")
	base := "http://" + gw.waitLog(`"addr":"([0-9.:]+)","tls":false`)
	proc := startVigil(t, logDir, "process", "process", "--kafka", brokers[0], "--topic", topic, "--partitions", "2",
		"--group", "vigil-gateway-proc-"+suffix, "--label-group", "vigil-gateway-labels-"+suffix,
		"--clickhouse", chAddr, "--clickhouse-database", db, "--window", "1m", "--allowed-lateness", "1h",
		"--checkpoint-interval", "200ms", "--drift-interval", "0", "--performance-interval", "0")

	post := func(path, token, contentType, encoding string, body []byte) (int, gatewayAnswer) {
		t.Helper()
		switch encoding {
		case "gzip":
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = buf.Bytes()
		case "zstd":
			enc, _ := zstd.NewWriter(nil)
			body = enc.EncodeAll(body, nil)
			_ = enc.Close()
		}
		req, err := http.NewRequest("POST", base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var a gatewayAnswer
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("%s: answer %q: %v", path, raw, err)
		}
		return resp.StatusCode, a
	}
	// Wait until the gateway is ready (Kafka answers for the topic).
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway never ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Per minute w of 3: 20 fraud events (team-a) and 10 churn events
	// (team-b), each with amount = w+1 and 2 features.
	t0 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	ev := func(id, model string, w, i int, features string) string {
		at := t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Second).Format(time.RFC3339Nano)
		return fmt.Sprintf(`{"event_id":%q,"model":%q,"model_version":"1","event_time":%q,"features":{%s},"prediction":{"score":0.25}}`, id, model, at, features)
	}
	want := map[string]uint64{}
	sent := 0
	for w := 0; w < 3; w++ {
		var fraud, churn []string
		for i := 0; i < 20; i++ {
			fraud = append(fraud, ev(fmt.Sprintf("f-%d-%d", w, i), "fraud", w, i, fmt.Sprintf(`"amount":%d,"country":"DE"`, w+1)))
		}
		for i := 0; i < 10; i++ {
			churn = append(churn, ev(fmt.Sprintf("c-%d-%d", w, i), "churn", w, i, fmt.Sprintf(`"amount":%d,"tenure":3`, w+1)))
		}
		// Fraud: NDJSON (gzip) from team-a with three bad lines among them;
		// churn: a JSON array (zstd) from team-b, but its last event one at
		// a time as a plain object.
		bad := []string{
			ev(fmt.Sprintf("bad-features-%d", w), "fraud", w, 0, `"a":1,"b":2,"c":3,"d":4`),
			ev(fmt.Sprintf("bad-model-%d", w), "churn", w, 0, `"amount":1`),
			strings.Replace(ev(fmt.Sprintf("bad-time-%d", w), "fraud", w, 0, `"amount":1`), `"event_time"`, `"event_tme"`, 1),
		}
		lines := append(append(fraud[:10:10], bad...), fraud[10:]...)
		status, a := post("/v1/events", tokA, "application/x-ndjson", "gzip", []byte(strings.Join(lines, "\n")+"\n"))
		if status != 207 || a.Accepted != 20 || len(a.Rejected) != 3 || a.Rejected[0].Index != 10 || a.Rejected[2].Index != 12 {
			t.Fatalf("fraud window %d: %d %+v, want 207, 20 accepted, items 10-12 rejected", w, status, a)
		}
		status, a = post("/v1/events", tokB, "application/json", "zstd", []byte("["+strings.Join(churn[:9], ",\n")+"]"))
		if status != 200 || a.Accepted != 9 {
			t.Fatalf("churn window %d: %d %+v", w, status, a)
		}
		if status, a = post("/v1/events", tokB, "", "", []byte(churn[9])); status != 200 || a.Accepted != 1 {
			t.Fatalf("churn single event: %d %+v", status, a)
		}
		want[fmt.Sprintf("fraud@%d", w)] += 20
		want[fmt.Sprintf("churn@%d", w)] += 10
		sent += 30
	}
	// Refused whole: no token, an unknown token, a model team-a may not use.
	if status, _ := post("/v1/events", "", "", "", []byte(ev("bad-anon", "fraud", 0, 0, `"amount":1`))); status != 401 {
		t.Errorf("no token: %d, want 401", status)
	}
	if status, _ := post("/v1/events", "nope", "", "", []byte(ev("bad-unknown", "fraud", 0, 0, `"amount":1`))); status != 401 {
		t.Errorf("unknown token: %d, want 401", status)
	}
	if status, _ := post("/v1/events", tokA, "", "", []byte(ev("bad-churn", "churn", 0, 0, `"amount":1`))); status != 403 {
		t.Errorf("model not allowed: %d, want 403", status)
	}
	// curl, as the README shows it: two more fraud events in window 0.
	if curl, err := exec.LookPath("curl"); err == nil {
		body := ev("curl-1", "fraud", 0, 30, `"amount":1`) + "\n" + ev("curl-2", "fraud", 0, 31, `"amount":1`) + "\n"
		cmd := exec.Command(curl, "-sS", "-H", "Authorization: Bearer "+tokA, "-H", "Content-Type: application/x-ndjson",
			"--data-binary", "@-", base+"/v1/events")
		cmd.Stdin = strings.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"accepted":2`) {
			t.Fatalf("curl: %v: %s", err, out)
		}
		want["fraud@0"] += 2
		sent += 2
	} else {
		t.Log("curl not installed: only net/http's client posts")
	}
	// Labels for the first 5 fraud events of each window, NDJSON, and one
	// for an event of a model team-a may not label (403).
	var labels []string
	for w := 0; w < 3; w++ {
		for i := 0; i < 5; i++ {
			labels = append(labels, fmt.Sprintf(`{"event_id":"f-%d-%d","model":"fraud","label":"%v","label_time":%q}`,
				w, i, i%2 == 0, t0.Add(time.Hour).Format(time.RFC3339)))
		}
	}
	if status, a := post("/v1/labels", tokA, "application/x-ndjson", "", []byte(strings.Join(labels, "\n"))); status != 200 || a.Accepted != 15 {
		t.Fatalf("labels: %d %+v", status, a)
	}
	if status, _ := post("/v1/labels", tokA, "", "", []byte(`{"event_id":"c-0-0","model":"churn","label":1,"label_time":"2026-02-01T01:00:00Z"}`)); status != 403 {
		t.Errorf("label of a model not allowed: %d, want 403", status)
	}

	// The gateway's counters.
	metrics := base + "/metrics"
	for _, c := range []struct {
		sample string
		want   float64
	}{
		{`vigil_gateway_events_total{result="accepted",route="events"}`, float64(sent)},
		{`vigil_gateway_events_total{result="too_many_features",route="events"}`, 3},
		{`vigil_gateway_events_total{result="unauthorized_model",route="events"}`, 4},
		{`vigil_gateway_events_total{result="invalid",route="events"}`, 3},
		{`vigil_gateway_events_total{result="accepted",route="labels"}`, 15},
		{`vigil_gateway_events_total{result="unauthorized_model",route="labels"}`, 1},
		{`vigil_gateway_requests_total{route="events",status="401"}`, 2},
		{`vigil_gateway_requests_total{route="events",status="403"}`, 1},
		{`vigil_gateway_requests_total{route="events",status="207"}`, 3},
		{`vigil_gateway_token_requests_total{status="200",token="team-b"}`, 6},
	} {
		if got := scrape(t, metrics, c.sample); got != c.want {
			t.Errorf("%s = %v, want %v", c.sample, got, c.want)
		}
	}
	waitMetric(t, metrics, `vigil_sdk_events_sent_total`, float64(sent+15))

	// The exact windows, from SQL, once the processor checkpointed every
	// event (a checkpoint's tables are all written before its row).
	waitCheckpointed(t, conn, db, brokers, "vigil-gateway-proc-"+suffix, topic)
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT model, toInt64(toUnixTimestamp(window_start)), toUInt64(sum(events))
		FROM %s.vigil_model_windows FINAL WHERE segment = '' GROUP BY model, window_start`, db))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for rows.Next() {
		var m string
		var ws int64
		var n uint64
		if err := rows.Scan(&m, &ws, &n); err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprintf("%s@%d", m, (ws-t0.Unix())/60)] = n
	}
	rows.Close()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events per model window:\n got %v\nwant %v", got, want)
	}
	curlSum := 0.0
	if want["fraud@0"] == 22 {
		curlSum = 2
	}
	for _, c := range []struct {
		model, feature string
		count          uint64
		sum            float64
	}{
		{"fraud", "amount", 60 + want["fraud@0"] - 20, 20*(1+2+3) + curlSum},
		{"fraud", "country", 60, 0},
		{"churn", "tenure", 30, 90},
		{"churn", "amount", 30, 10 * (1 + 2 + 3)},
	} {
		var n uint64
		var sum float64
		row := conn.QueryRow(ctx, fmt.Sprintf(`SELECT toUInt64(sum(count)), sum(sum) FROM %s.vigil_feature_windows FINAL
			WHERE model = ? AND feature = ? AND segment = ''`, db), c.model, c.feature)
		if err := row.Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		if n != c.count || math.Abs(sum-c.sum) > 1e-9 {
			t.Errorf("%s.%s: count %d sum %v, want %d and %v", c.model, c.feature, n, sum, c.count, c.sum)
		}
	}
	var raw uint64
	err = conn.QueryRow(ctx, fmt.Sprintf(`SELECT toUInt64(count()) FROM (SELECT DISTINCT event_id FROM %s.vigil_events)`, db)).Scan(&raw)
	if err != nil || raw != uint64(sent) {
		t.Errorf("vigil_events holds %d event ids (%v), want %d", raw, err, sent)
	}
	// Nothing rejected landed anywhere: no feature of the bad events, no
	// raw event, no label of churn.
	for _, q := range []string{
		fmt.Sprintf(`SELECT toUInt64(count()) FROM %s.vigil_events WHERE event_id LIKE 'bad-%%'`, db),
		fmt.Sprintf(`SELECT toUInt64(count()) FROM %s.vigil_feature_windows FINAL WHERE feature IN ('a', 'b', 'c', 'd')`, db),
		fmt.Sprintf(`SELECT toUInt64(count()) FROM %s.vigil_labels WHERE model = 'churn'`, db),
	} {
		var n uint64
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows (%v), want 0", q, n, err)
		}
	}
	// The labels, joined to their predictions.
	var labeled, joined uint64
	deadline = time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		row := conn.QueryRow(ctx, fmt.Sprintf(`SELECT toUInt64(count()), toUInt64(countIf((model, event_id) IN (SELECT model, event_id FROM %s.vigil_events)))
			FROM (SELECT DISTINCT model, event_id FROM %s.vigil_labels)`, db, db))
		if err := row.Scan(&labeled, &joined); err == nil && labeled == 15 && joined == 15 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if labeled != 15 || joined != 15 {
		t.Errorf("vigil_labels: %d labels, %d joined to a prediction; want 15 and 15", labeled, joined)
	}

	// SIGTERM drains: the gateway exits 0 and says every accepted event was delivered.
	gw.stop()
	gw.waitLog(`producer closed: every accepted event delivered`)
	proc.stop()
}
