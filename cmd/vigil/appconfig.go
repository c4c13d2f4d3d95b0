package main

import (
	"github.com/vigil-ml/vigil/ingest/gateway"
	"github.com/vigil-ml/vigil/ingest/serving"
	"github.com/vigil-ml/vigil/internal/app"
	"github.com/vigil-ml/vigil/internal/observe"
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
		HTTP:     c.processHTTP(),
		UITokens: c.UI.Tokens,
	}
}

// processHTTP is vigil process's HTTP server: --http-addr, "" for its
// default, "off" for none.
func (c *Config) processHTTP() app.HTTPConfig {
	h := app.HTTPConfig{Addr: c.HTTP.Addr, TLSCert: c.HTTP.TLSCert, TLSKey: c.HTTP.TLSKey}
	switch h.Addr {
	case "":
		h.Addr = observe.DefaultAddr
	case "off":
		h.Addr = ""
	}
	return h
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
		Addr:       c.HTTP.Addr,
	}
}

// performanceConfig is the performance job's part of c.
func (c *Config) performanceConfig() performance.JobConfig {
	return performance.JobConfig{Window: c.Window.Size, Horizon: c.Labels.Horizon, Threshold: c.Labels.Threshold, SegmentKeys: c.SegmentKeys}
}

// gatewayConfig is the config of vigil gateway (internal/app).
func (c *Config) gatewayConfig() app.GatewayConfig {
	return app.GatewayConfig{
		Brokers: c.Kafka.Brokers, Topic: c.Kafka.Topic, LabelTopic: c.labelTopic(), Partitions: c.Kafka.Partitions,
		Addr: c.HTTP.Addr, TLSCert: c.HTTP.TLSCert, TLSKey: c.HTTP.TLSKey,
		Tokens:  c.Gateway.Tokens,
		Handler: c.gatewayHandlerConfig(),
		Producer: app.GatewayProducerConfig{Encoding: c.Gateway.Encoding, Buffer: c.Gateway.Buffer, LabelBuffer: c.Gateway.LabelBuffer,
			BatchSize: c.Gateway.BatchSize, Linger: c.Gateway.Linger, BlockTimeout: c.Gateway.BlockTimeout},
		Serving: &serving.Config{MaxPending: c.Serving.MaxPending, PendingTTL: c.Serving.PendingTTL},
	}
}

// gatewayHandlerConfig is the limits part of the gateway's config.
func (c *Config) gatewayHandlerConfig() gateway.Config {
	return gateway.Config{MaxBodyBytes: int64(c.Gateway.MaxBodyBytes), MaxItems: c.Gateway.MaxEvents, MaxFeatures: c.Gateway.MaxFeatures, RetryAfter: c.Gateway.RetryAfter}
}
