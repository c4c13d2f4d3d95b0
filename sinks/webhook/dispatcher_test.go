package webhook

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// syncBuffer is a log sink safe for the workers' concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func fastConfig() DispatcherConfig {
	return DispatcherConfig{
		QueueSize: 16, Workers: 2, Timeout: 50 * time.Millisecond,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxAttempts: 4,
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if cond() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// server answers attempt n (1-based) with respond(n, w, r).
func server(t *testing.T, respond func(n int64, w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		respond(n.Add(1), w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func slackTo(t *testing.T, url string) *Slack {
	t.Helper()
	s, err := NewSlack(SlackConfig{URL: Secret(url)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDispatcherRetries(t *testing.T) {
	tests := []struct {
		name                    string
		respond                 func(n int64, w http.ResponseWriter, r *http.Request)
		wantAttempts            int64
		wantSent, wantFailed    int64
		wantRetried, wantOutbox int64
	}{
		{"500 then recovers", func(n int64, w http.ResponseWriter, _ *http.Request) {
			if n < 3 {
				w.WriteHeader(500)
			}
		}, 3, 1, 0, 2, 0},
		{"timeout then recovers", func(n int64, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				select { // longer than the 50ms per-attempt timeout
				case <-r.Context().Done():
				case <-time.After(time.Second):
				}
			}
		}, 2, 1, 0, 1, 0},
		{"429 then recovers", func(n int64, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.WriteHeader(429)
			}
		}, 2, 1, 0, 1, 0},
		{"400 is not retried", func(_ int64, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(400)
		}, 1, 0, 1, 0, 0},
		{"out of attempts stays in outbox", func(_ int64, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(503)
		}, 4, 0, 1, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, attempts := server(t, tt.respond)
			cfg := fastConfig()
			outbox := NewMemoryOutbox()
			cfg.Outbox = outbox
			d, err := NewDispatcher(cfg, zerolog.Nop(), slackTo(t, srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := d.Enqueue(context.Background(), "slack", []Alert{firing()}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "final outcome", func() bool { st := d.Stats(); return st.Sent+st.Failed == 1 })
			if err := d.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			st := d.Stats()
			if attempts.Load() != tt.wantAttempts || st.Sent != tt.wantSent || st.Failed != tt.wantFailed || st.Retried != tt.wantRetried {
				t.Errorf("attempts %d, stats %+v; want attempts %d sent %d failed %d retried %d",
					attempts.Load(), st, tt.wantAttempts, tt.wantSent, tt.wantFailed, tt.wantRetried)
			}
			if int64(outbox.Len()) != tt.wantOutbox {
				t.Errorf("outbox holds %d, want %d", outbox.Len(), tt.wantOutbox)
			}
		})
	}
}

func TestDispatcherSignedWebhookVerifiesAtReceiver(t *testing.T) {
	var verified atomic.Int64
	srv, _ := server(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		if err := Verify("k3y", r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body.Bytes(), time.Now(), 5*time.Minute); err != nil {
			w.WriteHeader(401)
			return
		}
		verified.Add(1)
	})
	w, err := NewSignedWebhook(SignedWebhookConfig{URL: Secret(srv.URL), Secret: "k3y"})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := NewDispatcher(fastConfig(), zerolog.Nop(), w)
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Enqueue(context.Background(), "webhook", []Alert{firing(), resolved()}); err != nil {
		t.Fatal(err)
	}
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if verified.Load() != 1 || d.Stats().Sent != 1 {
		t.Errorf("verified %d, stats %+v", verified.Load(), d.Stats())
	}
}

func TestDispatcherPagerDutySplitsGroups(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	srv, _ := server(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		mu.Lock()
		keys = append(keys, body.String())
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	p, err := NewPagerDuty(PagerDutyConfig{URL: Secret(srv.URL), RoutingKey: "rk"})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := NewDispatcher(fastConfig(), zerolog.Nop(), p)
	_ = d.Start(context.Background())
	second := firing()
	second.Fingerprint = "fp2"
	if err := d.Enqueue(context.Background(), "pagerduty", []Alert{firing(), second}); err != nil {
		t.Fatal(err)
	}
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || d.Stats().Sent != 2 {
		t.Fatalf("events %d, stats %+v", len(keys), d.Stats())
	}
	joined := strings.Join(keys, "\n")
	if !strings.Contains(joined, `"dedup_key":"vigil-fp1"`) || !strings.Contains(joined, `"dedup_key":"vigil-fp2"`) {
		t.Errorf("events: %s", joined)
	}
}

func TestDispatcherQueueFull(t *testing.T) {
	cfg := fastConfig()
	cfg.QueueSize = 2
	outbox := NewMemoryOutbox()
	cfg.Outbox = outbox
	d, _ := NewDispatcher(cfg, zerolog.Nop(), slackTo(t, "http://127.0.0.1:1/never"))
	ctx := context.Background()
	// Not started: nothing drains the queue.
	for i := range 2 {
		if err := d.Enqueue(ctx, "slack", []Alert{firing()}); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	if err := d.Enqueue(ctx, "slack", []Alert{firing()}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third enqueue: %v, want ErrQueueFull", err)
	}
	if st := d.Stats(); st.Dropped != 1 || st.Queued != 2 {
		t.Errorf("stats %+v", st)
	}
	if outbox.Len() != 2 {
		t.Errorf("outbox %d, want 2 (dropped ones are not kept)", outbox.Len())
	}
	if err := d.Enqueue(ctx, "nope", []Alert{firing()}); !errors.Is(err, ErrUnknownReceiver) {
		t.Errorf("unknown receiver: %v", err)
	}
	if err := d.Enqueue(ctx, "slack", []Alert{{Status: "pending"}}); !errors.Is(err, ErrInvalidAlert) {
		t.Errorf("bad status: %v", err)
	}
	// Shutdown without Start reports the queued ones.
	var ue *UndeliveredError
	if err := d.Shutdown(ctx); !errors.As(err, &ue) || len(ue.Deliveries) != 2 || !errors.Is(err, ErrUndelivered) {
		t.Errorf("Shutdown = %v", err)
	}
	if err := d.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
	if err := d.Enqueue(ctx, "slack", []Alert{firing()}); !errors.Is(err, ErrClosed) {
		t.Errorf("enqueue after Shutdown: %v", err)
	}
	if err := d.Start(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Shutdown: %v", err)
	}
}

func TestDispatcherShutdownDrains(t *testing.T) {
	srv, attempts := server(t, func(int64, http.ResponseWriter, *http.Request) { time.Sleep(5 * time.Millisecond) })
	cfg := fastConfig()
	cfg.Workers = 1
	d, _ := NewDispatcher(cfg, zerolog.Nop(), slackTo(t, srv.URL))
	_ = d.Start(context.Background())
	for range 8 {
		if err := d.Enqueue(context.Background(), "slack", []Alert{firing()}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if st := d.Stats(); st.Sent != 8 || attempts.Load() != 8 {
		t.Errorf("stats %+v, attempts %d", st, attempts.Load())
	}
}

func TestDispatcherShutdownReportsUndelivered(t *testing.T) {
	release := make(chan struct{})
	srv, _ := server(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(503)
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	cfg := fastConfig()
	cfg.Timeout = 10 * time.Second
	outbox := NewMemoryOutbox()
	cfg.Outbox = outbox
	d, _ := NewDispatcher(cfg, zerolog.Nop(), slackTo(t, srv.URL))
	_ = d.Start(context.Background())
	for range 5 {
		_ = d.Enqueue(context.Background(), "slack", []Alert{firing()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := d.Shutdown(ctx)
	var ue *UndeliveredError
	if !errors.As(err, &ue) || len(ue.Deliveries) != 5 {
		t.Fatalf("Shutdown = %v, want 5 undelivered", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Shutdown took %s past its deadline", took)
	}
	if outbox.Len() != 5 {
		t.Errorf("outbox %d, want 5 kept for the next start", outbox.Len())
	}
}

func TestDispatcherResendsOutboxOnStart(t *testing.T) {
	var bodies atomic.Int64
	srv, _ := server(t, func(int64, http.ResponseWriter, *http.Request) { bodies.Add(1) })
	outbox := NewMemoryOutbox()
	for i, id := range []string{"a", "b", "c"} {
		_ = outbox.Save(context.Background(), Delivery{ID: id, Receiver: "slack", Alerts: []Alert{firing()}, CreatedAt: time.Now().Add(time.Duration(i))})
	}
	_ = outbox.Save(context.Background(), Delivery{ID: "gone", Receiver: "removed", Alerts: []Alert{firing()}})
	cfg := fastConfig()
	cfg.QueueSize = 1 // replay must wait for room, not drop
	cfg.Outbox = outbox
	d, _ := NewDispatcher(cfg, zerolog.Nop(), slackTo(t, srv.URL))
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if bodies.Load() != 3 || d.Stats().Sent != 3 || d.Stats().Failed != 1 || outbox.Len() != 0 {
		t.Errorf("received %d, stats %+v, outbox %d", bodies.Load(), d.Stats(), outbox.Len())
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	const hmacKey, routingKey, slackToken = "HMACSECRET123", "ROUTINGSECRET456", "SLACKTOKEN789"
	t.Setenv("VIGIL_TEST_SLACK_URL", "") // set below once the server exists
	srv, _ := server(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // connection refused: the error names the address
	t.Setenv("VIGIL_TEST_SLACK_URL", deadURL+"/services/T0/B0/"+slackToken)
	t.Setenv("VIGIL_TEST_HMAC", hmacKey)

	slack, err := NewSlack(SlackConfig{URL: "env:VIGIL_TEST_SLACK_URL"})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := NewSignedWebhook(SignedWebhookConfig{URL: Secret(srv.URL + "/" + slackToken), Secret: "env:VIGIL_TEST_HMAC"})
	if err != nil {
		t.Fatal(err)
	}
	pd, err := NewPagerDuty(PagerDutyConfig{URL: Secret(srv.URL), RoutingKey: routingKey})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := zerolog.New(&logs).Level(zerolog.DebugLevel)
	cfg := fastConfig()
	cfg.MaxAttempts = 2
	d, _ := NewDispatcher(cfg, log, slack, signed, pd)
	_ = d.Start(context.Background())
	for _, r := range []string{"slack", "webhook", "pagerduty"} {
		if err := d.Enqueue(context.Background(), r, []Alert{firing()}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all to fail", func() bool { return d.Stats().Failed == 3 })
	shutdownErr := d.Shutdown(context.Background())

	out := logs.String() + " " + sprintAll(slack) + sprintAll(signed) + sprintAll(pd) + sprintAll(*signed) + sprintAll(*pd)
	if shutdownErr != nil {
		out += shutdownErr.Error()
	}
	if !strings.Contains(out, "retrying") || !strings.Contains(out, "connection refused") {
		t.Errorf("expected failure logs, got:\n%s", logs.String())
	}
	for _, s := range []string{hmacKey, routingKey, slackToken} {
		if strings.Contains(out, s) {
			t.Errorf("secret %s appears in logs or printed receivers:\n%s", s, out)
		}
	}
}

// A delivery id enqueued again (after a crash, say) is sent once, whether
// the first one is still pending or already delivered.
func TestDispatcherEnqueueIDOnce(t *testing.T) {
	srv, attempts := server(t, func(int64, http.ResponseWriter, *http.Request) {})
	outbox := NewMemoryOutbox()
	cfg := fastConfig()
	cfg.Outbox = outbox
	d, _ := NewDispatcher(cfg, zerolog.Nop(), slackTo(t, srv.URL))
	ctx := context.Background()
	for range 2 { // before Start: the first is pending
		if err := d.EnqueueID(ctx, "n1", "slack", []Alert{firing()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	d2, _ := NewDispatcher(cfg, zerolog.Nop(), slackTo(t, srv.URL))
	if err := d2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d2.EnqueueID(ctx, "n1", "slack", []Alert{firing()}); err != nil { // already delivered
		t.Fatal(err)
	}
	if err := d2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if d.Stats().Duplicates != 1 || d2.Stats().Duplicates != 1 {
		t.Errorf("duplicates %d and %d, want 1 each", d.Stats().Duplicates, d2.Stats().Duplicates)
	}
}
