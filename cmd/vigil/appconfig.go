package main

import (
	"github.com/vigil-ml/vigil/internal/app"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/sinks/webhook"
)

// appConfig is the application's config of c (internal/app).
func (c *Config) appConfig() app.Config {
	return app.Config{
		Sink:        c.sinkConfig(),
		Processor:   c.pipelineConfig(),
		Partitions:  c.Kafka.Partitions,
		Labels:      c.labelConfig(),
		Drift:       app.DriftConfig{Interval: c.Drift.Interval, Lookback: c.Drift.Lookback, Options: c.driftOptions()},
		Performance: app.PerformanceConfig{Interval: c.Performance.Interval, Job: c.performanceConfig()},
		Alerts: app.AlertsConfig{Rules: c.Alerts.Rules, Interval: c.Alerts.Interval, TakeoverWait: c.Alerts.TakeoverWait,
			Delivery: webhook.DispatcherConfig{RedeliverBase: c.Alerts.RedeliverBase, RedeliverMax: c.Alerts.RedeliverMax, MaxAge: c.Alerts.MaxAge}},
		HTTP: app.HTTPConfig{Addr: c.HTTP.Addr},
	}
}

// performanceConfig is the performance job's part of c.
func (c *Config) performanceConfig() performance.JobConfig {
	return performance.JobConfig{Window: c.Window.Size, Horizon: c.Labels.Horizon, Threshold: c.Labels.Threshold, SegmentKeys: c.SegmentKeys}
}
