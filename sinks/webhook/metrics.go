package webhook

import "github.com/prometheus/client_golang/prometheus"

// Collector is the dispatcher's metrics (read from Stats at scrape time),
// to register on the application's registry; docs/METRICS.md lists them.
func (d *Dispatcher) Collector() prometheus.Collector { return collector{d} }

type collector struct{ d *Dispatcher }

var (
	descDeliveries = prometheus.NewDesc("vigil_alert_deliveries_total",
		"Notification deliveries by outcome: delivered (2xx), failed (permanently rejected, or a round of attempts that ran out: it stays pending), expired (undelivered after --alert-max-age), fenced (left to the member that took the alert lease), dropped (the queue was full), duplicate (the outbox held its id).",
		[]string{"outcome"}, nil)
	descRetries     = prometheus.NewDesc("vigil_alert_delivery_retries_total", "Attempts after the first of a round.", nil, nil)
	descRedelivered = prometheus.NewDesc("vigil_alert_redeliveries_total", "Rounds of attempts started by the redelivery schedule.", nil, nil)
	descPending     = prometheus.NewDesc("vigil_alert_outbox_pending", "Deliveries this process holds: queued, in flight or waiting for their next round (pending in vigil_notifications).", nil, nil)
	descQueued      = prometheus.NewDesc("vigil_alert_queue_length", "Deliveries waiting for a worker.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDeliveries, descRetries, descRedelivered, descPending, descQueued} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.Stats()
	for _, o := range []struct {
		outcome string
		n       int64
	}{{"delivered", s.Sent}, {"failed", s.Failed}, {"expired", s.Expired}, {"fenced", s.Fenced}, {"dropped", s.Dropped}, {"duplicate", s.Duplicates}} {
		ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(o.n), o.outcome)
	}
	ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(s.Retried))
	ch <- prometheus.MustNewConstMetric(descRedelivered, prometheus.CounterValue, float64(s.Redelivered))
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(s.Queued))
}

var _ prometheus.Collector = collector{}
