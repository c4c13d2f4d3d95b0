package clickhouse

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/sinks/webhook"
)

// A notification that a receiver refuses while it is down stays pending in
// ClickHouse across a dispatcher restart and is delivered once it is back;
// an id enqueued again is not sent twice.
func TestIntegrationOutbox(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	var up atomic.Bool
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got.Add(1)
	}))
	defer srv.Close()
	hook, err := webhook.NewSignedWebhook(webhook.SignedWebhookConfig{Name: "hook", URL: webhook.Secret(srv.URL), Secret: "k"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := webhook.DispatcherConfig{Outbox: s.Outbox(), MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond}
	alert := webhook.Alert{Fingerprint: "fp", Status: webhook.StatusFiring, Labels: map[string]string{"alertname": "R"},
		Model: "m", Metric: "psi", Value: 0.3, Threshold: 0.2, StartsAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}

	d, err := webhook.NewDispatcher(cfg, zerolog.Nop(), hook)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.EnqueueID(ctx, "n1", "hook", []webhook.Alert{alert}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return d.Stats().Failed == 1 })
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	pending, err := s.Outbox().Pending(ctx)
	if err != nil || len(pending) != 1 || pending[0].ID != "n1" || pending[0].Alerts[0].Fingerprint != "fp" || !pending[0].Alerts[0].StartsAt.Equal(alert.StartsAt) {
		t.Fatalf("pending after the receiver refused = %+v, %v", pending, err)
	}

	up.Store(true)
	d2, _ := webhook.NewDispatcher(cfg, zerolog.Nop(), hook)
	if err := d2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return d2.Stats().Sent == 1 })
	if err := d2.EnqueueID(ctx, "n1", "hook", []webhook.Alert{alert}); err != nil {
		t.Fatal(err)
	}
	if err := d2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 1 || d2.Stats().Duplicates != 1 {
		t.Errorf("delivered %d times, %d duplicates; want 1 and 1", got.Load(), d2.Stats().Duplicates)
	}
	if pending, err := s.Outbox().Pending(ctx); err != nil || len(pending) != 0 {
		t.Errorf("pending after delivery = %+v, %v", pending, err)
	}
	var state, status string
	if err := s.Conn().QueryRow(ctx, "SELECT argMax(state, version), any(status) FROM "+s.Database()+".vigil_notifications WHERE id = 'n1'").Scan(&state, &status); err != nil {
		t.Fatal(err)
	}
	if state != NotificationDelivered || status != webhook.StatusFiring {
		t.Errorf("recorded state %q status %q", state, status)
	}
	if err := s.Outbox().Done(ctx, webhook.Delivery{ID: "n2", Receiver: "hook"}, errors.New("HTTP 400")); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Redelivery without a restart, against the real ClickHouse and a local
// receiver that is down (500, or closing the connection) for longer than a
// round of attempts: once it is back the notification arrives within the
// backoff cap; a delivery whose max age passes first is marked expired,
// counted, and never sent; a pending row no process sends (its process died)
// is taken up by the schedule.
func TestIntegrationOutboxRedelivery(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	alert := webhook.Alert{Fingerprint: "fp", Status: webhook.StatusFiring, Labels: map[string]string{"alertname": "R"},
		Model: "m", Metric: "psi", Value: 0.3, Threshold: 0.2, StartsAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	const down = 1500 * time.Millisecond
	tests := []struct {
		name    string
		closeIt bool // down = the connection is closed, else HTTP 500
		maxAge  time.Duration
		orphan  bool // the row is written by "another process", not enqueued
		want    string
	}{
		{name: "500", want: NotificationDelivered},
		{name: "closed", closeIt: true, want: NotificationDelivered},
		{name: "orphan", orphan: true, want: NotificationDelivered},
		{name: "expired", maxAge: 600 * time.Millisecond, want: NotificationExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var up atomic.Bool
			var got, refused atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case up.Load():
					got.Add(1)
				case tt.closeIt:
					refused.Add(1)
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
				default:
					refused.Add(1)
					w.WriteHeader(http.StatusInternalServerError)
				}
			}))
			defer srv.Close()
			hook, err := webhook.NewSignedWebhook(webhook.SignedWebhookConfig{Name: "hook-" + tt.name, URL: webhook.Secret(srv.URL), Secret: "k"})
			if err != nil {
				t.Fatal(err)
			}
			cfg := webhook.DispatcherConfig{Outbox: s.Outbox(), MaxAttempts: 2, Timeout: time.Second,
				BackoffBase: 5 * time.Millisecond, BackoffMax: 10 * time.Millisecond,
				RedeliverBase: 100 * time.Millisecond, RedeliverMax: 400 * time.Millisecond, MaxAge: tt.maxAge}
			d, err := webhook.NewDispatcher(cfg, testLogger(t), hook)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer d.Shutdown(ctx)
			id := "n-" + tt.name
			if tt.orphan {
				err = s.Outbox().Save(ctx, webhook.Delivery{ID: id, Receiver: hook.Name(), Alerts: []webhook.Alert{alert}, CreatedAt: time.Now()})
			} else {
				err = d.EnqueueID(ctx, id, hook.Name(), []webhook.Alert{alert})
			}
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(down)
			upAt := time.Now()
			up.Store(true)
			if tt.want == NotificationExpired {
				waitFor(t, func() bool { return d.Stats().Expired == 1 })
				time.Sleep(2 * cfg.RedeliverMax) // would be sent by now if it were still pending
			} else {
				waitFor(t, func() bool { return got.Load() == 1 })
			}
			lag := time.Since(upAt)
			if err := d.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			st := d.Stats()
			var state, msg string
			if err := s.Conn().QueryRow(ctx, "SELECT argMax(state, version), argMax(error, version) FROM "+s.Database()+".vigil_notifications WHERE id = ?", id).Scan(&state, &msg); err != nil {
				t.Fatal(err)
			}
			t.Logf("refused %d requests while down %s; then %s, %s after the receiver came back; stats %+v", refused.Load(), down, state, lag.Round(time.Millisecond), st)
			if state != tt.want {
				t.Errorf("state %q (%s), want %q", state, msg, tt.want)
			}
			if pending, err := s.Outbox().Pending(ctx); err != nil || len(pending) != 0 {
				t.Errorf("pending after the test = %+v, %v", pending, err)
			}
			if tt.want == NotificationExpired {
				if got.Load() != 0 || st.Expired != 1 || st.Sent != 0 {
					t.Errorf("receiver got %d, stats %+v; want nothing sent, 1 expired", got.Load(), st)
				}
				return
			}
			// Rounds at 100, 200, 400, 400... ms: at least 3 before the receiver is back.
			if got.Load() != 1 || st.Sent != 1 || st.Redelivered < 3 || st.Expired != 0 {
				t.Errorf("receiver got %d, stats %+v; want 1 sent after >= 3 redeliveries", got.Load(), st)
			}
			if limit := cfg.RedeliverMax + 300*time.Millisecond; lag > limit {
				t.Errorf("delivered %s after the receiver came back, want within the cap %s (+300ms)", lag, cfg.RedeliverMax)
			}
		})
	}
}
