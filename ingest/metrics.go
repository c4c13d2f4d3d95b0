package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// NewStatsCollector exports p's Stats to Prometheus (register it on the
// application's registry): one counter per Stats field, vigil_sdk_events_*
// (recorded, sent, dropped, failed, invalid, unsent), and the gauge
// vigil_sdk_events_buffered, read at each scrape, each with constLabels
// (for example {"producer": "gateway"} when an application runs several).
// Labels count with events, as in Stats. Safe for concurrent use.
func NewStatsCollector(p *Producer, constLabels prometheus.Labels) prometheus.Collector {
	c := &statsCollector{p: p}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("vigil_sdk_events_"+name, help, nil, constLabels)
	}
	c.recorded = desc("recorded_total", "Events and labels accepted by Record and RecordLabel.")
	c.sent = desc("sent_total", "Events and labels acknowledged by Kafka.")
	c.dropped = desc("dropped_total", "Events and labels refused by Record because the buffer was full or the producer closed (the caller was told: ErrBufferFull, ErrClosed).")
	c.failed = desc("failed_total", "Events and labels accepted, then refused by Kafka after every write attempt or not encodable: lost.")
	c.invalid = desc("invalid_total", "Events and labels refused by Record because they break the contract (Validate).")
	c.unsent = desc("unsent_total", "Events and labels accepted and still held when Close's deadline expired: maybe lost.")
	c.buffered = desc("buffered", "Events and labels accepted and held now (queued, batched or being written).")
	return c
}

type statsCollector struct {
	p                                                          *Producer
	recorded, sent, dropped, failed, invalid, unsent, buffered *prometheus.Desc
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.recorded, c.sent, c.dropped, c.failed, c.invalid, c.unsent, c.buffered} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(c.recorded, s.Recorded)
	counter(c.sent, s.Sent)
	counter(c.dropped, s.Dropped)
	counter(c.failed, s.Failed)
	counter(c.invalid, s.Invalid)
	counter(c.unsent, s.Unsent)
	ch <- prometheus.MustNewConstMetric(c.buffered, prometheus.GaugeValue, float64(s.Buffered))
}
