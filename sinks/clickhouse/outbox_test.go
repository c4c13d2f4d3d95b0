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
