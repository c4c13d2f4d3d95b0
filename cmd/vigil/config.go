package main

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/schemas/wire"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// Config is everything the CLI can be told. Each of its settings is one row
// of the option table (options.go), which gives its flag, VIGIL_* variable,
// YAML key, default and help; defaultConfig and resolveConfig apply the
// table, from (lowest to highest precedence) defaults, a YAML file
// (--config), VIGIL_* environment variables and flags.
type Config struct {
	File  string // the YAML file read (--config); "" for none
	Kafka struct {
		Brokers         []string
		Topic           string
		Partitions      int
		Group           string
		DeadLetterTopic string
	}
	ClickHouse struct {
		Addr      string
		Database  string
		User      string
		Password  string
		RawEvents bool
		TTLDays   int
		Cluster   string
	}
	Window             windowConfig
	CheckpointInterval time.Duration
	ValueSketches      bool
	ExactValues        int // values per numeric feature a window (or merge) keeps exactly: stats.SetExactCap
	Reference          struct {
		ExactValues int // values per numeric feature a reference keeps exactly
	}
	SegmentKeys   []string
	DedupEventIDs bool
	MaxHeldBytes  int
	MaxMemory     int
	Drift         struct {
		Interval time.Duration
		Lookback time.Duration
		// Overrides of the default method and threshold; the last matching
		// entry wins. Only in the file: a list has no flag.
		Overrides []driftOverride
	}
	Multivariate struct {
		// Refresh: how often the processor reloads the references'
		// multivariate models it scores events with; 0: it scores none.
		Refresh time.Duration
	}
	Labels struct {
		Topic string // default <kafka.topic>.labels
		Group string
		// Horizon: a label counts for a prediction when its label time is
		// at most this long after the prediction; windows older than it are
		// final.
		Horizon time.Duration
		// Threshold: a binary score at or above it predicts the positive class.
		Threshold float64
	}
	Performance struct {
		Interval time.Duration // how often changed windows are recomputed; 0 = never
	}
	Alerts struct {
		Rules    string        // alert rules file; "" = no alerts
		Interval time.Duration // how often rules are evaluated
		// RedeliverBase: a notification that ran out of attempts is sent
		// again after this, doubling per round up to RedeliverMax.
		RedeliverBase, RedeliverMax time.Duration
		// MaxAge: a notification still undelivered this long after it was
		// made is marked expired, counted and logged as an error.
		MaxAge time.Duration
		// TakeoverWait: a member taking the alert lease over from another
		// waits this long before it sends (docs/ALERTS.md, "Fencing").
		TakeoverWait time.Duration
	}
	// HTTP is the HTTP server of the long-running commands.
	HTTP struct {
		Addr            string // "": the command's default (observe.DefaultAddr for vigil process, gateway.DefaultAddr for vigil gateway); "off": none (vigil process)
		TLSCert, TLSKey string // both or neither
	}
	// UI is the UI at /ui/ (vigil ui).
	UI struct {
		Tokens string // bearer tokens file; "": no authentication
	}
	// Gateway is read by vigil gateway only.
	Gateway struct {
		Tokens                               string // bearer tokens file; "": no authentication
		MaxBodyBytes, MaxEvents, MaxFeatures int
		RetryAfter                           time.Duration
		Encoding                             string
		Buffer, LabelBuffer, BatchSize       int
		Linger, BlockTimeout                 time.Duration
	}
	Log struct {
		Level  string
		Format string // auto, json, console
	}
	// Serving is the conversion of serving-stack payloads (vigil gateway, vigil bridge).
	Serving struct {
		Mapping    string // per-model mapping file (YAML); "" = the defaults
		MaxPending int
		PendingTTL time.Duration
	}
	// Bridge is read by vigil bridge only.
	Bridge struct {
		Format, Group, RequestTopic, ResponseTopic string
		SeldonPrefix, SeldonNamespace              string
		SeldonModels                               []string
		CommitInterval                             time.Duration
		Addr                                       string
	}
	// Demo is read by vigil demo only.
	Demo struct {
		Windows         int
		EventsPerWindow int
		Report          string
	}
}

// labelTopic is labels.topic, or the prediction topic + ".labels".
func (c *Config) labelTopic() string {
	if c.Labels.Topic != "" {
		return c.Labels.Topic
	}
	return c.Kafka.Topic + ".labels"
}

func (c *Config) labelConfig() pipeline.LabelConfig {
	return pipeline.LabelConfig{Brokers: c.Kafka.Brokers, Topic: c.labelTopic(), Group: c.Labels.Group, Partitions: c.Kafka.Partitions}
}

// Validate reports every problem of c, not only the first: their errors
// joined (errors.Join, one line each), or nil when there is none.
func (c *Config) Validate() error {
	var errs []error
	if c.Kafka.Topic == "" {
		errs = append(errs, errors.New("kafka.topic is empty"))
	}
	if c.Kafka.Partitions < 1 {
		errs = append(errs, errors.New("kafka.partitions must be at least 1"))
	}
	if err := c.sinkConfig().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("clickhouse: %w", err))
	}
	// The brokers, the window and the checkpoint interval.
	if err := c.pipelineConfig().WithDefaults().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxMemory < 0 {
		errs = append(errs, errors.New("max_memory must be >= 0 (0: no limit)"))
	}
	if c.Multivariate.Refresh < 0 {
		errs = append(errs, errors.New("multivariate.refresh must be >= 0 (0: score no event)"))
	}
	if c.ExactValues < 1 || c.ExactValues > stats.MaxExactCap {
		errs = append(errs, fmt.Errorf("exact_values must be in 1..%d", stats.MaxExactCap))
	}
	if c.Reference.ExactValues < 1 || c.Reference.ExactValues > reference.MaxExactValues {
		errs = append(errs, fmt.Errorf("reference.exact_values must be in 1..%d", reference.MaxExactValues))
	}
	if c.Drift.Interval < 0 || c.Drift.Lookback <= 0 {
		errs = append(errs, fmt.Errorf("drift.interval must be >= 0 and drift.lookback > 0"))
	}
	for i, ov := range c.Drift.Overrides {
		if ov.Method != "" && !slices.Contains(drift.Methods, drift.Method(ov.Method)) {
			errs = append(errs, fmt.Errorf("drift.overrides[%d]: unknown method %q (one of %v)", i, ov.Method, drift.Methods))
		}
		if ov.Threshold < 0 || (ov.Method == "" && ov.Threshold == 0 && !ov.FromReference) {
			errs = append(errs, fmt.Errorf("drift.overrides[%d]: set a method, a positive threshold or from_reference", i))
		}
		if ov.FromReference && ov.Method != "" && drift.Method(ov.Method).IsPValue() {
			errs = append(errs, fmt.Errorf("drift.overrides[%d]: from_reference needs a distance method (psi, jensenshannon, hellinger, kl_div, wasserstein) or no method, not the p-value method %q", i, ov.Method))
		}
	}
	if c.Labels.Horizon <= 0 {
		errs = append(errs, errors.New("labels.horizon must be positive"))
	}
	if ttl := time.Duration(c.ClickHouse.TTLDays) * 24 * time.Hour; c.ClickHouse.TTLDays > 0 && ttl < c.Labels.Horizon {
		errs = append(errs, fmt.Errorf("clickhouse.ttl_days (%d) keeps raw events for less than labels.horizon (%v): predictions would expire before their labels", c.ClickHouse.TTLDays, c.Labels.Horizon))
	}
	if !(c.Labels.Threshold > 0 && c.Labels.Threshold < 1) {
		errs = append(errs, fmt.Errorf("labels.threshold %v must be in (0, 1)", c.Labels.Threshold))
	}
	if c.Performance.Interval < 0 || c.Alerts.Interval <= 0 {
		errs = append(errs, errors.New("performance.interval must be >= 0 and alerts.interval > 0"))
	}
	if c.Alerts.RedeliverBase <= 0 || c.Alerts.RedeliverMax < c.Alerts.RedeliverBase || c.Alerts.MaxAge <= 0 || c.Alerts.TakeoverWait <= 0 {
		errs = append(errs, errors.New("alerts.redeliver_base, alerts.max_age and alerts.takeover_wait must be > 0, alerts.redeliver_max >= alerts.redeliver_base"))
	}
	if c.Labels.Topic == c.Kafka.Topic && c.Labels.Topic != "" {
		errs = append(errs, errors.New("labels.topic must differ from kafka.topic"))
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		errs = append(errs, errors.New("http.tls_cert and http.tls_key go together: set both or neither"))
	}
	if err := c.gatewayHandlerConfig().WithDefaults().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Gateway.Encoding != wire.EncodingArrow && c.Gateway.Encoding != wire.EncodingJSON {
		errs = append(errs, fmt.Errorf("gateway.encoding %q is not %s or %s", c.Gateway.Encoding, wire.EncodingArrow, wire.EncodingJSON))
	}
	if c.Gateway.Buffer < 1 || c.Gateway.LabelBuffer < 1 || c.Gateway.BatchSize < 1 || c.Gateway.Linger <= 0 || c.Gateway.BlockTimeout <= 0 {
		errs = append(errs, errors.New("gateway.buffer, gateway.label_buffer, gateway.batch_size, gateway.linger and gateway.block_timeout must be positive"))
	}
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log.format %q is not auto, json or console", c.Log.Format))
	}
	if _, err := zerolog.ParseLevel(c.Log.Level); err != nil {
		errs = append(errs, fmt.Errorf("log.level: %w", err))
	}
	if c.Demo.Windows < 1 || c.Demo.EventsPerWindow < 1 {
		errs = append(errs, errors.New("demo.windows and demo.events_per_window must be positive"))
	}
	return errors.Join(errs...)
}

type driftOverride struct {
	Model     string  `yaml:"model"`   // empty: every model
	Feature   string  `yaml:"feature"` // empty: every feature
	Method    string  `yaml:"method"`  // empty: the default method
	Threshold float64 `yaml:"threshold"`
	// FromReference: the threshold is the reference's chunk scores' mean +
	// 3 std when the profile has them (vigil reference build --chunk-rows),
	// else threshold or the method's default (drift.Override.FromReference).
	FromReference bool `yaml:"from_reference"`
}

func (c *Config) driftOptions() drift.Options {
	var o drift.Options
	for _, ov := range c.Drift.Overrides {
		o.Overrides = append(o.Overrides, drift.Override{Model: ov.Model, Feature: ov.Feature, Method: drift.Method(ov.Method), Threshold: ov.Threshold, FromReference: ov.FromReference})
	}
	return o
}

type windowConfig struct {
	Size            time.Duration
	AllowedLateness time.Duration
}

func (w windowConfig) toWindow() window.Config {
	return window.Config{Size: w.Size, AllowedLateness: w.AllowedLateness}
}

func (c *Config) sinkConfig() clickhouse.Config {
	return clickhouse.Config{
		Addr:      c.ClickHouse.Addr,
		Database:  c.ClickHouse.Database,
		User:      c.ClickHouse.User,
		Password:  c.ClickHouse.Password,
		RawEvents: c.ClickHouse.RawEvents,
		TTLDays:   c.ClickHouse.TTLDays,
		Cluster:   c.ClickHouse.Cluster,
	}
}

func (c *Config) pipelineConfig() pipeline.Config {
	return pipeline.Config{
		Brokers:            c.Kafka.Brokers,
		Topic:              c.Kafka.Topic,
		Group:              c.Kafka.Group,
		DeadLetterTopic:    c.Kafka.DeadLetterTopic,
		Window:             c.Window.toWindow(),
		CheckpointInterval: c.CheckpointInterval,
		NoValueSketches:    !c.ValueSketches,
		SegmentKeys:        c.SegmentKeys,
		DedupEventIDs:      c.DedupEventIDs,
		MaxHeldBytes:       c.MaxHeldBytes,
	}
}
