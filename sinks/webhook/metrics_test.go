package webhook

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// gather is the dispatcher's metrics as "name" or "name/label" -> value.
func gather(t *testing.T, d *Dispatcher) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(d.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				out[name] = c.GetValue()
			} else {
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestDispatcherMetrics: the exported deliveries after known receiver
// answers; every value not in want is 0.
func TestDispatcherMetrics(t *testing.T) {
	tests := []struct {
		name    string
		respond func(n int64, w http.ResponseWriter, r *http.Request)
		want    map[string]float64
	}{
		{"delivered after 2 retries", func(n int64, w http.ResponseWriter, _ *http.Request) {
			if n < 3 {
				w.WriteHeader(500)
			}
		}, map[string]float64{"vigil_alert_deliveries_total/delivered": 1, "vigil_alert_delivery_retries_total": 2}},
		{"rejected", func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(400) },
			map[string]float64{"vigil_alert_deliveries_total/failed": 1}},
		{"out of attempts, still pending", func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) },
			map[string]float64{"vigil_alert_deliveries_total/failed": 1, "vigil_alert_delivery_retries_total": 3, "vigil_alert_outbox_pending": 1}},
	}
	names := []string{"vigil_alert_deliveries_total/delivered", "vigil_alert_deliveries_total/failed", "vigil_alert_deliveries_total/expired",
		"vigil_alert_deliveries_total/fenced", "vigil_alert_deliveries_total/dropped", "vigil_alert_deliveries_total/duplicate",
		"vigil_alert_delivery_retries_total", "vigil_alert_redeliveries_total", "vigil_alert_outbox_pending", "vigil_alert_queue_length"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := server(t, tt.respond)
			cfg := fastConfig()
			cfg.Outbox = NewMemoryOutbox()
			cfg.RedeliverBase, cfg.RedeliverMax = time.Hour, time.Hour // no second round during the test
			d, err := NewDispatcher(cfg, zerolog.Nop(), slackTo(t, srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer d.Shutdown(context.Background())
			if err := d.Enqueue(context.Background(), "slack", []Alert{firing()}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "final outcome", func() bool {
				st := d.Stats()
				return st.Sent+st.Failed == 1 && st.Pending == int64(tt.want["vigil_alert_outbox_pending"])
			})
			got := gather(t, d)
			for _, n := range names {
				if v, ok := got[n]; !ok || v != tt.want[n] {
					t.Errorf("%s = %v (exported %v), want %v", n, v, ok, tt.want[n])
				}
			}
		})
	}
}

// TestDispatcherMetricsQueueFull: a full queue drops; what waits is queued
// and pending.
func TestDispatcherMetricsQueueFull(t *testing.T) {
	cfg := fastConfig()
	cfg.QueueSize = 2
	cfg.Outbox = NewMemoryOutbox()
	d, _ := NewDispatcher(cfg, zerolog.Nop(), slackTo(t, "http://127.0.0.1:1/never"))
	for range 3 {
		_ = d.Enqueue(context.Background(), "slack", []Alert{firing()})
	}
	got := gather(t, d)
	for n, want := range map[string]float64{"vigil_alert_queue_length": 2, "vigil_alert_outbox_pending": 2, "vigil_alert_deliveries_total/dropped": 1} {
		if got[n] != want {
			t.Errorf("%s = %v, want %v", n, got[n], want)
		}
	}
	_ = d.Shutdown(context.Background())
}
