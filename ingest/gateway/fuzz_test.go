package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// FuzzSplitItems: splitting never panics, every item is non-empty and
// trimmed, and a body encoding/json reads as an array of n values splits
// into exactly those n values.
func FuzzSplitItems(f *testing.F) {
	for _, s := range []string{
		`[{"a":1},{"b":[1,2,{"c":"]"}]}]`, `{"a":"\"]"}`, "{}\n{}\r\n\n[1]", `[1, "x", null, [], {}]`, `[`, `[,]`, `[1 2]`, `[{}]]`, `["\\"]`, ``,
		event("e-1", "m", 2),
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		items, err := splitItems(nil, body, ndjson, 64)
		for _, it := range items {
			if len(it) == 0 || len(trimSpace(it)) != len(it) {
				t.Fatalf("item %q: empty or untrimmed", it)
			}
		}
		if len(items) > 64 {
			t.Fatalf("%d items, more than the limit", len(items))
		}
		var tm errTooManyItems
		if ndjson || errors.As(err, &tm) {
			return
		}
		var want []json.RawMessage
		trimmed := trimSpace(body)
		if len(trimmed) == 0 || trimmed[0] != '[' || json.Unmarshal(trimmed, &want) != nil {
			return
		}
		if err != nil {
			t.Fatalf("valid array %q: %v", body, err)
		}
		if len(items) != len(want) {
			t.Fatalf("array %q: %d items, encoding/json reads %d", body, len(items), len(want))
		}
		for i := range want {
			if !bytes.Equal(trimSpace(want[i]), items[i]) {
				t.Fatalf("item %d %q, encoding/json reads %q", i, items[i], want[i])
			}
		}
	})
}

// FuzzEventsBody: any body, compressed or not, under any content type
// gets an answer in the contract: a known status, accepted plus rejected
// items no more than the limit, never a panic, and nothing published past
// what the answer says was accepted.
func FuzzEventsBody(f *testing.F) {
	seeds := [][]byte{[]byte(event("e-1", "m", 2) + "\n" + event("e-2", "m", 0)), []byte("[" + event("e-1", "m", 1) + "]"), []byte(`{"x":`),
		[]byte(`[{"event_id":"v","model":"m","event_time":1,"features":{"emb":[0.5,-1,2e-3]},"prediction":{"score":1}},{"event_id":"w","model":"m","event_time":1,"features":{"emb":[1]},"prediction":{"score":1}}]`)}
	for _, s := range seeds {
		for enc := range 3 {
			b := s
			switch enc {
			case 1:
				b = gz(&testing.T{}, s)
			case 2:
				b = zst(&testing.T{}, s)
			}
			f.Add(b, uint8(enc), true)
			f.Add(b, uint8(enc), false)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, enc uint8, ndjson bool) {
		pub := &recorder{}
		h, err := New(Config{MaxBodyBytes: 1 << 16, MaxItems: 50}, pub, prometheus.NewRegistry(), zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		h.Mount(mux)
		route := "/v1/events"
		if enc&4 != 0 {
			route = "/v1/labels"
		}
		r := httptest.NewRequest("POST", route, bytes.NewReader(body))
		r.Header.Set("Content-Encoding", [...]string{"", "gzip", "zstd", "identity"}[enc%4])
		if ndjson {
			r.Header.Set("Content-Type", "application/x-ndjson")
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		var resp Response
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("answer %q is not JSON: %v", w.Body.String(), err)
		}
		switch w.Code {
		case 200, 207, 400, 413:
		default:
			t.Fatalf("status %d", w.Code)
		}
		if resp.Accepted+len(resp.Rejected) > 50 {
			t.Fatalf("accepted %d + rejected %d > 50 items", resp.Accepted, len(resp.Rejected))
		}
		if n := len(pub.events) + len(pub.labels); n != resp.Accepted {
			t.Fatalf("published %d, answer says %d accepted", n, resp.Accepted)
		}
	})
}
