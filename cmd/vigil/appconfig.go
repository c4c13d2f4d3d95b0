package main

import (
	"github.com/vigil-ml/vigil/ingest/serving"
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
	}
}

// bridgeConfig is vigil bridge's part of c; the mapping file is read by
// the caller (loadBridgeConfig).
func (c *Config) bridgeConfig() app.BridgeConfig {
	b := c.Bridge
	return app.BridgeConfig{
		Bridge: serving.BridgeConfig{
			Brokers: c.Kafka.Brokers, Group: b.Group, Format: b.Format,
			RequestTopic: b.RequestTopic, ResponseTopic: b.ResponseTopic,
			SeldonPrefix: b.SeldonPrefix, SeldonNamespace: b.SeldonNamespace, SeldonModels: b.SeldonModels,
			CommitInterval: b.CommitInterval,
		},
		Serving:    serving.Config{MaxPending: c.Serving.MaxPending, PendingTTL: c.Serving.PendingTTL},
		Topic:      c.Kafka.Topic,
		Partitions: c.Kafka.Partitions,
		Addr:       b.Addr,
	}
}

// performanceConfig is the performance job's part of c.
func (c *Config) performanceConfig() performance.JobConfig {
	return performance.JobConfig{Window: c.Window.Size, Horizon: c.Labels.Horizon, Threshold: c.Labels.Threshold, SegmentKeys: c.SegmentKeys}
}
