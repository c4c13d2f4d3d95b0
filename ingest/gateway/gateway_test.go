package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/auth"
	"github.com/vigil-ml/vigil/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Publisher that keeps what it is given; after full items it
// refuses with ingest.ErrBufferFull, as a producer whose buffer is full.
type recorder struct {
	mu     sync.Mutex
	events []schemas.Event
	labels []schemas.Label
	full   int // refuse from the full+1-th item on; 0: never
}

func (p *recorder) take() error {
	if p.full > 0 && len(p.events)+len(p.labels) >= p.full {
		return ingest.ErrBufferFull
	}
	return nil
}

func (p *recorder) Record(_ context.Context, e schemas.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.take(); err != nil {
		return err
	}
	p.events = append(p.events, e)
	return nil
}

func (p *recorder) RecordLabel(_ context.Context, l schemas.Label) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.take(); err != nil {
		return err
	}
	p.labels = append(p.labels, l)
	return nil
}

func (p *recorder) ids() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, e := range p.events {
		ids = append(ids, e.ID)
	}
	for _, l := range p.labels {
		ids = append(ids, "L:"+l.EventID)
	}
	return strings.Join(ids, ",")
}

// event is a valid JSON event of model with id id and n numeric features.
func event(id, model string, n int) string {
	var f strings.Builder
	for i := range n {
		if i > 0 {
			f.WriteByte(',')
		}
		fmt.Fprintf(&f, `"f%d":%d`, i, i)
	}
	return fmt.Sprintf(`{"event_id":%q,"model":%q,"event_time":"2026-11-26T10:00:00.123Z","features":{%s},"prediction":{"score":0.5},"segments":{"region":"eu"}}`, id, model, f.String())
}

func label(id, model string) string {
	return fmt.Sprintf(`{"event_id":%q,"model":%q,"label":"fraud","label_time":"2026-11-26T11:00:00Z"}`, id, model)
}

type fixture struct {
	h   *Handler
	mux *http.ServeMux
	reg *prometheus.Registry
	pub *recorder
}

func newFixture(t *testing.T, cfg Config, pub *recorder) *fixture {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	h, err := New(cfg, pub, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	return &fixture{h: h, mux: mux, reg: reg, pub: pub}
}

type reply struct {
	status int
	header http.Header
	body   Response
	raw    string
}

func (f *fixture) post(t *testing.T, path string, body []byte, header ...string) reply {
	t.Helper()
	r := httptest.NewRequest("POST", path, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	rep := reply{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if w.Code != http.StatusNotFound {
		if err := json.Unmarshal(w.Body.Bytes(), &rep.body); err != nil {
			t.Fatalf("answer %q: %v", w.Body.String(), err)
		}
	}
	return rep
}

func (f *fixture) count(name string, labels ...string) float64 {
	switch name {
	case "requests":
		return testutil.ToFloat64(f.h.m.requests.WithLabelValues(labels...))
	case "events":
		return testutil.ToFloat64(f.h.m.items.WithLabelValues(labels...))
	case "token":
		return testutil.ToFloat64(f.h.m.tokenRequests.WithLabelValues(labels...))
	}
	panic(name)
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zst(t *testing.T, b []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

func rejections(rs []Rejection) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%d:%s", r.Index, r.Error))
	}
	return strings.Join(out, "\n")
}

const ndjson = "application/x-ndjson"

// Each body form is accepted whole: the events published are those sent, in
// order, and the counters say so.
func TestBodyForms(t *testing.T) {
	e1, e2, e3 := event("e-1", "fraud", 2), event("e-2", "fraud", 3), event("e-3", "churn", 0)
	lines := []byte(e1 + "\n" + e2 + "\r\n\n  \n" + e3) // CRLF and blank lines, no final newline
	array := []byte("[\n " + e1 + " ,\n" + e2 + "," + e3 + "]\n")
	cases := []struct {
		name   string
		path   string
		body   []byte
		header []string
		ids    string
	}{
		{"object", "/v1/events", []byte(" " + e1 + "\n"), nil, "e-1"},
		{"pretty object", "/v1/events", []byte("{\n  \"event_id\": \"e-9\",\n  \"model\": \"m\",\n  \"event_time\": 1764151200123,\n  \"features\": {},\n  \"prediction\": {\"label\": \"x\"}\n}\n"), nil, "e-9"},
		{"array", "/v1/events", array, []string{"Content-Type", "application/json"}, "e-1,e-2,e-3"},
		{"ndjson", "/v1/events", lines, []string{"Content-Type", ndjson}, "e-1,e-2,e-3"},
		{"ndjson with charset", "/v1/events", lines, []string{"Content-Type", ndjson + "; charset=utf-8"}, "e-1,e-2,e-3"},
		{"gzip ndjson", "/v1/events", gz(t, lines), []string{"Content-Type", ndjson, "Content-Encoding", "gzip"}, "e-1,e-2,e-3"},
		{"zstd array", "/v1/events", zst(t, array), []string{"Content-Encoding", "zstd"}, "e-1,e-2,e-3"},
		{"labels ndjson", "/v1/labels", []byte(label("e-1", "fraud") + "\n" + label("e-2", "fraud") + "\n"), []string{"Content-Type", ndjson}, "L:e-1,L:e-2"},
		{"labels gzip array", "/v1/labels", gz(t, []byte("["+label("e-1", "fraud")+"]")), []string{"Content-Encoding", "gzip"}, "L:e-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Config{}, &recorder{})
			rep := f.post(t, c.path, c.body, c.header...)
			n := strings.Count(c.ids, ",") + 1
			if rep.status != 200 || rep.body.Accepted != n || len(rep.body.Rejected) != 0 {
				t.Fatalf("status %d %s, want 200 accepted %d", rep.status, rep.raw, n)
			}
			if got := f.pub.ids(); got != c.ids {
				t.Errorf("published %s, want %s", got, c.ids)
			}
			route := strings.TrimPrefix(c.path, "/v1/")
			if got := f.count("events", route, "accepted"); got != float64(n) {
				t.Errorf("vigil_gateway_events_total{accepted} = %v, want %d", got, n)
			}
			if got := f.count("requests", route, "200"); got != 1 {
				t.Errorf("vigil_gateway_requests_total{200} = %v, want 1", got)
			}
		})
	}
	// The features of events decoded in one request do not overlap (they
	// share a slab): each keeps its own.
	f := newFixture(t, Config{}, &recorder{})
	f.post(t, "/v1/events", lines, "Content-Type", ndjson)
	for i, want := range []int{2, 3, 0} {
		e := f.pub.events[i]
		if len(e.Features) != want {
			t.Fatalf("event %d: %d features, want %d", i, len(e.Features), want)
		}
		for j, ft := range e.Features {
			if ft.Name != fmt.Sprintf("f%d", j) || ft.Value.Num != float64(j) {
				t.Errorf("event %d feature %d = %+v", i, j, ft)
			}
		}
	}
}

// Some items bad: 207 with each bad item's index and a reason naming the
// field; the good ones published. All bad: 400.
func TestPartialAndAllBad(t *testing.T) {
	bad := []string{
		`{"event_id":"b-0","model":"fraud","event_time":"yesterday","prediction":{"score":0.5}}`,
		`{"event_id":"b-1","model":"fraud","event_time":"2026-11-26T10:00:00Z"}`,
		`[1,2]`,
	}
	good := event("g-1", "fraud", 1)
	body := strings.Join([]string{bad[0], good, bad[1], bad[2], good}, "\n")
	f := newFixture(t, Config{}, &recorder{})
	rep := f.post(t, "/v1/events", []byte(body), "Content-Type", ndjson)
	want := "0:malformed event: \"event_time\": not RFC 3339 or Unix ms\n" +
		"2:malformed event: \"features\": missing\n" +
		"3:malformed event: not a JSON object"
	if rep.status != http.StatusMultiStatus || rep.body.Accepted != 2 || rejections(rep.body.Rejected) != want {
		t.Fatalf("status %d accepted %d rejected\n%s\nwant 207, 2, and\n%s", rep.status, rep.body.Accepted, rejections(rep.body.Rejected), want)
	}
	if got := f.pub.ids(); got != "g-1,g-1" {
		t.Errorf("published %s", got)
	}
	if f.count("events", "events", "invalid") != 3 || f.count("events", "events", "accepted") != 2 || f.count("requests", "events", "207") != 1 {
		t.Errorf("counters invalid %v accepted %v requests{207} %v, want 3 2 1", f.count("events", "events", "invalid"), f.count("events", "events", "accepted"), f.count("requests", "events", "207"))
	}

	rep = f.post(t, "/v1/events", []byte("["+bad[0]+","+bad[1]+"]"))
	if rep.status != 400 || rep.body.Accepted != 0 || len(rep.body.Rejected) != 2 || rep.body.Rejected[1].Index != 1 {
		t.Errorf("all bad: status %d %s, want 400 with 2 rejections", rep.status, rep.raw)
	}
	if f.count("events", "events", "invalid") != 5 || f.count("requests", "events", "400") != 1 {
		t.Errorf("counters invalid %v requests{400} %v, want 5 1", f.count("events", "events", "invalid"), f.count("requests", "events", "400"))
	}

	// Unparseable bodies: one rejection with index -1 (or an error), 400.
	for _, body := range []string{`[{"a":1}`, `[{"a":"]"},,{}]`, `[{}] x`, `[{} {}]`, ``, `[]`} {
		rep := f.post(t, "/v1/events", []byte(body))
		if rep.status != 400 || rep.body.Error == "" || rep.body.Accepted != 0 {
			t.Errorf("%q: status %d %s, want 400 with an error", body, rep.status, rep.raw)
		}
		if body != "" && body != "[]" && (len(rep.body.Rejected) != 1 || rep.body.Rejected[0].Index != -1) {
			t.Errorf("%q: rejected %+v, want one at index -1", body, rep.body.Rejected)
		}
	}
	// A gzip body that is not gzip.
	if rep := f.post(t, "/v1/events", []byte(good), "Content-Encoding", "gzip"); rep.status != 400 || !strings.Contains(rep.body.Error, "gzip") {
		t.Errorf("bad gzip: %d %s", rep.status, rep.raw)
	}
	if rep := f.post(t, "/v1/events", []byte(good), "Content-Encoding", "br"); rep.status != 415 {
		t.Errorf("brotli: %d %s, want 415", rep.status, rep.raw)
	}
	// Labels: a bad label's reason names its field.
	rep = f.post(t, "/v1/labels", []byte(label("e-1", "fraud")+"\n"+`{"event_id":"e-2","model":"fraud","label":null,"label_time":"2026-11-26T11:00:00Z"}`), "Content-Type", ndjson)
	if rep.status != 207 || rep.body.Accepted != 1 || len(rep.body.Rejected) != 1 || rep.body.Rejected[0].Index != 1 || !strings.Contains(rep.body.Rejected[0].Error, `"label"`) {
		t.Errorf("labels: %d %s", rep.status, rep.raw)
	}
}

const tokensYAML = `tokens:
  - {token: tok-fraud, name: team-a, models: [fraud]}
  - {token: tok-all, name: team-b}
  - {token: tok-slow, name: slow, rate: 5}
`

func TestAuth(t *testing.T) {
	toks, err := auth.Parse([]byte(tokensYAML))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Config{Tokens: toks}, &recorder{})
	fraud, churn := event("e-1", "fraud", 1), event("e-2", "churn", 1)
	both := []byte(fraud + "\n" + churn)
	cases := []struct {
		name, auth, path string
		body             []byte
		status, accepted int
		token            string // counted in vigil_gateway_token_requests_total
	}{
		{"no token", "", "/v1/events", both, 401, 0, ""},
		{"not bearer", "Basic dG9rLWFsbA==", "/v1/events", both, 401, 0, ""},
		{"unknown token", "Bearer tok-nope", "/v1/events", both, 401, 0, ""},
		{"unknown token, labels", "Bearer tok-nope", "/v1/labels", []byte(label("e-1", "fraud")), 401, 0, ""},
		{"model not allowed", "Bearer tok-fraud", "/v1/events", []byte(churn), 403, 0, "team-a"},
		{"label model not allowed", "Bearer tok-fraud", "/v1/labels", []byte(label("e-2", "churn")), 403, 0, "team-a"},
		{"one of two allowed", "Bearer tok-fraud", "/v1/events", both, 207, 1, "team-a"},
		{"all models", "Bearer tok-all", "/v1/events", both, 200, 2, "team-b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			route := strings.TrimPrefix(c.path, "/v1/")
			status := fmt.Sprint(c.status)
			before, beforeTok := f.count("requests", route, status), 0.0
			if c.token != "" {
				beforeTok = f.count("token", c.token, status)
			}
			rep := f.post(t, c.path, c.body, "Authorization", c.auth, "Content-Type", ndjson)
			if rep.status != c.status || rep.body.Accepted != c.accepted {
				t.Fatalf("status %d %s, want %d accepted %d", rep.status, rep.raw, c.status, c.accepted)
			}
			if c.status == 401 && (rep.header.Get("WWW-Authenticate") == "" || rep.body.Error == "") {
				t.Errorf("401 without a challenge or an error: %v %s", rep.header, rep.raw)
			}
			if c.status == 403 && !strings.Contains(rep.body.Rejected[0].Error, `may not publish for model "churn"`) {
				t.Errorf("403 reason %q", rep.body.Rejected[0].Error)
			}
			if got := f.count("requests", route, status); got != before+1 {
				t.Errorf("vigil_gateway_requests_total{%s,%s} = %v, want %v", route, status, got, before+1)
			}
			if c.token != "" && f.count("token", c.token, status) != beforeTok+1 {
				t.Errorf("vigil_gateway_token_requests_total{%s,%s} = %v, want %v", c.token, status, f.count("token", c.token, status), beforeTok+1)
			}
		})
	}
	if got := f.pub.ids(); got != "e-1,e-1,e-2" {
		t.Errorf("published %s, want e-1 (team-a), e-1,e-2 (team-b)", got)
	}
	if f.count("requests", "events", "401") != 3 || f.count("requests", "labels", "401") != 1 ||
		f.count("events", "events", "unauthorized_model") != 2 || f.count("events", "labels", "unauthorized_model") != 1 {
		t.Errorf("401 events %v labels %v, unauthorized_model events %v labels %v; want 3 1 2 1",
			f.count("requests", "events", "401"), f.count("requests", "labels", "401"), f.count("events", "events", "unauthorized_model"), f.count("events", "labels", "unauthorized_model"))
	}

	// Rate: 5 items/s, burst 5. Three then three: the second request is
	// refused whole with Retry-After; ten in one request exceed the burst.
	slow := func(n int) reply {
		var b strings.Builder
		for i := range n {
			fmt.Fprintln(&b, event(fmt.Sprintf("s-%d", i), "fraud", 1))
		}
		return f.post(t, "/v1/events", []byte(b.String()), "Authorization", "Bearer tok-slow", "Content-Type", ndjson)
	}
	if rep := slow(3); rep.status != 200 || rep.body.Accepted != 3 {
		t.Fatalf("first 3: %d %s", rep.status, rep.raw)
	}
	rep := slow(3)
	if rep.status != 429 || rep.header.Get("Retry-After") != "1" || rep.body.Accepted != 0 || len(rep.body.Rejected) != 3 || !rep.body.Rejected[2].Retry {
		t.Fatalf("next 3: %d Retry-After %q %s, want 429, 1, 3 rejected to retry", rep.status, rep.header.Get("Retry-After"), rep.raw)
	}
	if rep := slow(10); rep.status != 429 || !strings.Contains(rep.body.Rejected[0].Error, "exceed its burst of 5") {
		t.Errorf("10 at once: %d %s", rep.status, rep.raw)
	}
	if f.count("requests", "events", "429") != 2 || f.count("events", "events", "rate_limited") != 13 || f.count("token", "slow", "429") != 2 {
		t.Errorf("429 requests %v, rate_limited %v, slow's 429 %v; want 2 13 2", f.count("requests", "events", "429"), f.count("events", "events", "rate_limited"), f.count("token", "slow", "429"))
	}
}

func TestLimits(t *testing.T) {
	f := newFixture(t, Config{MaxBodyBytes: 4096, MaxItems: 3, MaxFeatures: 4}, &recorder{})
	nd := func(events ...string) []byte { return []byte(strings.Join(events, "\n")) }
	big := strings.Repeat(event("x", "fraud", 4)+"\n", 30) // about 4.5 KB of 30 events
	// Compresses to far below the limit, decompresses to 20 MB: the zip
	// bomb stops at the limit.
	bomb := gz(t, append([]byte(`{"event_id":"`), bytes.Repeat([]byte("a"), 20<<20)...))
	cases := []struct {
		name     string
		body     []byte
		header   []string
		status   int
		accepted int
		errText  string
	}{
		{"body over the limit", []byte(big), nil, 413, 0, "larger than 4096 bytes"},
		{"gzip body over the limit once decompressed", gz(t, []byte(big)), []string{"Content-Encoding", "gzip"}, 413, 0, "after decompression"},
		{"gzip bomb", bomb, []string{"Content-Encoding", "gzip"}, 413, 0, "larger than 4096"},
		{"zstd bomb", zst(t, bytes.Repeat([]byte("a"), 20<<20)), []string{"Content-Encoding", "zstd"}, 413, 0, "larger than 4096"},
		{"4 events, 3 allowed", nd(event("a", "m", 0), event("b", "m", 0), event("c", "m", 0), event("d", "m", 0)), []string{"Content-Type", ndjson}, 413, 0, "more than 3 items"},
		{"4 array elements, 3 allowed", []byte("[" + strings.Repeat(event("a", "m", 0)+",", 3) + event("d", "m", 0) + "]"), nil, 413, 0, "more than 3 items"},
		{"3 events", nd(event("a", "m", 4), event("b", "m", 0), event("c", "m", 1)), []string{"Content-Type", ndjson}, 200, 3, ""},
		{"too many features", nd(event("a", "m", 5), event("b", "m", 4)), []string{"Content-Type", ndjson}, 207, 1, `"features": 5 features, more than the 4 allowed per event`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := f.post(t, "/v1/events", c.body, c.header...)
			if rep.status != c.status || rep.body.Accepted != c.accepted {
				t.Fatalf("status %d %s, want %d accepted %d", rep.status, rep.raw, c.status, c.accepted)
			}
			text := rep.body.Error
			if len(rep.body.Rejected) > 0 {
				text = rep.body.Rejected[0].Error
			}
			if !strings.Contains(text, c.errText) {
				t.Errorf("error %q, want it to say %q", text, c.errText)
			}
		})
	}
	if got := f.pub.ids(); got != "a,b,c,b" {
		t.Errorf("published %s, want a,b,c,b", got)
	}
	if f.count("requests", "events", "413") != 6 || f.count("events", "events", "too_many_features") != 1 {
		t.Errorf("413 requests %v, too_many_features %v; want 6 1", f.count("requests", "events", "413"), f.count("events", "events", "too_many_features"))
	}
}

// A full producer buffer: 503 with Retry-After; the items before the first
// refused one are accepted, and the answer says which were not.
func TestBackpressure(t *testing.T) {
	f := newFixture(t, Config{RetryAfter: 2 * time.Second}, &recorder{full: 2})
	body := strings.Join([]string{event("a", "m", 0), `{"bad":1}`, event("b", "m", 0), event("c", "m", 0), event("d", "m", 0)}, "\n")
	rep := f.post(t, "/v1/events", []byte(body), "Content-Type", ndjson)
	if rep.status != 503 || rep.header.Get("Retry-After") != "2" || rep.body.Accepted != 2 {
		t.Fatalf("status %d Retry-After %q %s, want 503, 2, 2 accepted", rep.status, rep.header.Get("Retry-After"), rep.raw)
	}
	var retry []int
	for _, r := range rep.body.Rejected {
		if r.Retry {
			retry = append(retry, r.Index)
		}
	}
	if fmt.Sprint(retry) != "[3 4]" || len(rep.body.Rejected) != 3 || rep.body.Rejected[0].Index != 1 {
		t.Errorf("rejected %+v, want index 1 (invalid) and 3, 4 to retry", rep.body.Rejected)
	}
	if f.pub.ids() != "a,b" || f.count("events", "events", "backpressure") != 2 || f.count("events", "events", "accepted") != 2 ||
		f.count("events", "events", "invalid") != 1 || f.count("requests", "events", "503") != 1 {
		t.Errorf("published %s; backpressure %v accepted %v invalid %v 503 %v; want a,b 2 2 1 1", f.pub.ids(),
			f.count("events", "events", "backpressure"), f.count("events", "events", "accepted"), f.count("events", "events", "invalid"), f.count("requests", "events", "503"))
	}
	if rep := f.post(t, "/v1/labels", []byte(label("x", "m"))); rep.status != 503 || f.count("events", "labels", "backpressure") != 1 {
		t.Errorf("labels: %d %s", rep.status, rep.raw)
	}
}

// A real producer whose Kafka does not answer fills its tiny buffer: the
// gateway answers 503 and what it counts as accepted is what the producer
// counts as recorded.
func TestBackpressureRealProducer(t *testing.T) {
	p, err := ingest.NewProducer([]string{"127.0.0.1:1"}, "t", ingest.WithMaxBufferedEvents(4), ingest.WithBatchSize(1),
		ingest.WithMaxInFlight(1), ingest.WithWriteTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = p.Close(ctx)
	}()
	reg := prometheus.NewPedanticRegistry()
	h, err := New(Config{}, p, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintln(&b, event(fmt.Sprintf("e-%d", i), "m", 1))
	}
	r := httptest.NewRequest("POST", "/v1/events", strings.NewReader(b.String()))
	r.Header.Set("Content-Type", ndjson)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	var resp Response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" || resp.Accepted >= 100 || resp.Accepted+len(resp.Rejected) != 100 {
		t.Fatalf("status %d, accepted %d, rejected %d; want 503 with fewer than 100 accepted", w.Code, resp.Accepted, len(resp.Rejected))
	}
	for k, rej := range resp.Rejected {
		if rej.Index != resp.Accepted+k || !rej.Retry {
			t.Fatalf("rejection %d: %+v, want index %d to retry", k, rej, resp.Accepted+k)
		}
	}
	if s := p.Stats(); s.Recorded != int64(resp.Accepted) || s.Dropped != 1 {
		t.Errorf("producer recorded %d dropped %d, gateway accepted %d: want equal, 1 dropped (the first refusal stops the request)", s.Recorded, s.Dropped, resp.Accepted)
	}
	if got := testutil.ToFloat64(h.m.items.WithLabelValues("events", "backpressure")); got != float64(len(resp.Rejected)) {
		t.Errorf("backpressure counter %v, want %d", got, len(resp.Rejected))
	}
}

// converter is a tiny Converter: a CloudEvent's body is an event's JSON
// (ce-type request: the first half, nothing yet); an OIP pair body is a
// JSON array of scores, one event per row.
type converter struct{}

func (converter) CloudEvent(h http.Header, body []byte) ([]schemas.Event, error) {
	if strings.HasSuffix(h.Get("Ce-Type"), ".request") {
		return nil, nil
	}
	id := h.Get("Ce-Id")
	if id == "" {
		return nil, errors.New("no ce-id")
	}
	return []schemas.Event{{ID: id, Model: h.Get("Ce-Inferenceservicename"), Time: time.Unix(1764151200, 0), Prediction: schemas.Score(0.5)}}, nil
}

func (converter) OIPPair(model string, body []byte) ([]schemas.Event, error) {
	var scores []float64
	if err := json.Unmarshal(body, &scores); err != nil {
		return nil, fmt.Errorf("oip pair: %w", err)
	}
	var out []schemas.Event
	for i, s := range scores {
		e := schemas.Event{ID: fmt.Sprintf("%s-%d", model, i), Model: model, Time: time.Unix(1764151200, 0), Prediction: schemas.Score(s)}
		if s < 0 {
			e.Time = time.Time{} // invalid: no event time
		}
		out = append(out, e)
	}
	return out, nil
}

func TestConverterRoutes(t *testing.T) {
	without := newFixture(t, Config{}, &recorder{})
	if rep := without.post(t, "/v1/cloudevents", []byte("{}")); rep.status != 404 {
		t.Errorf("no converter: /v1/cloudevents %d, want 404", rep.status)
	}
	if rep := without.post(t, "/v1/oip/fraud", []byte("{}")); rep.status != 404 {
		t.Errorf("no converter: /v1/oip %d, want 404", rep.status)
	}
	toks, err := auth.Parse([]byte(tokensYAML))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Config{Converter: converter{}, Tokens: toks, MaxItems: 3}, &recorder{})
	ce := func(typ, id, isvc string) []string {
		return []string{"Authorization", "Bearer tok-fraud", "Ce-Specversion", "1.0", "Ce-Type", typ, "Ce-Id", id, "Ce-Source", "x", "Ce-Inferenceservicename", isvc}
	}
	cases := []struct {
		name     string
		path     string
		body     []byte
		header   []string
		status   int
		accepted int
	}{
		{"request half", "/v1/cloudevents", []byte("{}"), ce("org.kubeflow.serving.inference.request", "1", "fraud"), 200, 0},
		{"response half", "/v1/cloudevents", []byte("{}"), ce("org.kubeflow.serving.inference.response", "1", "fraud"), 200, 1},
		{"model not allowed", "/v1/cloudevents", []byte("{}"), ce("org.kubeflow.serving.inference.response", "2", "churn"), 403, 0},
		{"converter error", "/v1/cloudevents", []byte("{}"), ce("org.kubeflow.serving.inference.response", "", "fraud"), 400, 0},
		{"no token", "/v1/cloudevents", []byte("{}"), nil, 401, 0},
		{"oip rows", "/v1/oip/fraud", []byte("[0.1,0.2]"), []string{"Authorization", "Bearer tok-fraud"}, 200, 2},
		{"oip gzip, one invalid row", "/v1/oip/fraud", gz(t, []byte("[0.1,-1,0.3]")), []string{"Authorization", "Bearer tok-fraud", "Content-Encoding", "gzip"}, 207, 2},
		{"oip too many rows", "/v1/oip/fraud", []byte("[1,1,1,1]"), []string{"Authorization", "Bearer tok-fraud"}, 413, 0},
		{"oip model not allowed", "/v1/oip/churn", []byte("[1]"), []string{"Authorization", "Bearer tok-fraud"}, 403, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := f.post(t, c.path, c.body, c.header...)
			if rep.status != c.status || rep.body.Accepted != c.accepted {
				t.Fatalf("status %d %s, want %d accepted %d", rep.status, rep.raw, c.status, c.accepted)
			}
		})
	}
	if got := f.pub.ids(); got != "1,fraud-0,fraud-1,fraud-0,fraud-2" {
		t.Errorf("published %s", got)
	}
	if f.count("events", "oip", "accepted") != 4 || f.count("events", "oip", "invalid") != 1 || f.count("events", "cloudevents", "unauthorized_model") != 1 ||
		f.count("requests", "cloudevents", "401") != 1 || f.count("requests", "oip", "413") != 1 {
		t.Errorf("oip accepted %v invalid %v, cloudevents unauthorized_model %v 401 %v, oip 413 %v; want 4 1 1 1 1",
			f.count("events", "oip", "accepted"), f.count("events", "oip", "invalid"), f.count("events", "cloudevents", "unauthorized_model"),
			f.count("requests", "cloudevents", "401"), f.count("requests", "oip", "413"))
	}
}

// The whole metric family as a scrape shows it: names, labels, help.
func TestMetricsExposition(t *testing.T) {
	f := newFixture(t, Config{}, &recorder{})
	f.post(t, "/v1/events", []byte(event("a", "m", 0)))
	want := `
# HELP vigil_gateway_events_total Items (events, or labels on route labels) of the gateway's requests by route and result: accepted (given to the producer), invalid, unauthorized_model, too_many_features, rate_limited, backpressure.
# TYPE vigil_gateway_events_total counter
vigil_gateway_events_total{result="accepted",route="events"} 1
# HELP vigil_gateway_requests_total HTTP requests to the gateway's routes, by route and status code (401: no or unknown token, 413: body or items over the limit, 429: rate limit, 503: backpressure).
# TYPE vigil_gateway_requests_total counter
vigil_gateway_requests_total{route="events",status="200"} 1
`
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want), "vigil_gateway_events_total", "vigil_gateway_requests_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(f.reg, "vigil_gateway_request_duration_seconds"); err != nil || n != 1 {
		t.Errorf("duration histogram: %d series, %v", n, err)
	}
	_ = io.Discard
}
