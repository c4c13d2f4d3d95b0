package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// Config is everything the CLI can be told, from (lowest to highest
// precedence) defaults, a YAML file (--config), VIGIL_* environment variables
// and flags. Unknown YAML keys are an error.
type Config struct {
	Kafka struct {
		Brokers         []string `yaml:"brokers"`
		Topic           string   `yaml:"topic"`
		Partitions      int      `yaml:"partitions"`
		Group           string   `yaml:"group"`
		DeadLetterTopic string   `yaml:"dead_letter_topic"`
	} `yaml:"kafka"`
	ClickHouse struct {
		Addr      string `yaml:"addr"`
		Database  string `yaml:"database"`
		User      string `yaml:"user"`
		Password  string `yaml:"password"`
		RawEvents bool   `yaml:"raw_events"`
		TTLDays   int    `yaml:"ttl_days"`
	} `yaml:"clickhouse"`
	Window             windowConfig  `yaml:"window"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	ValueSketches      bool          `yaml:"value_sketches"`
	SegmentKeys        []string      `yaml:"segment_keys"`
	Drift              struct {
		Interval time.Duration `yaml:"interval"`
		Lookback time.Duration `yaml:"lookback"`
		// Overrides of the default method and threshold; the last matching
		// entry wins. Only in the file: a list has no flag.
		Overrides []driftOverride `yaml:"overrides"`
	} `yaml:"drift"`
	Labels struct {
		Topic string `yaml:"topic"` // default <kafka.topic>.labels
		Group string `yaml:"group"`
		// Horizon: a label counts for a prediction when its label time is
		// at most this long after the prediction; windows older than it are
		// final.
		Horizon time.Duration `yaml:"horizon"`
		// Threshold: a binary score at or above it predicts the positive class.
		Threshold float64 `yaml:"threshold"`
	} `yaml:"labels"`
	Performance struct {
		Interval time.Duration `yaml:"interval"` // how often changed windows are recomputed; 0 = never
	} `yaml:"performance"`
	Alerts struct {
		Rules    string        `yaml:"rules"`    // alert rules file; "" = no alerts
		Interval time.Duration `yaml:"interval"` // how often rules are evaluated
		// RedeliverBase: a notification that ran out of attempts is sent
		// again after this, doubling per round up to RedeliverMax.
		RedeliverBase time.Duration `yaml:"redeliver_base"`
		RedeliverMax  time.Duration `yaml:"redeliver_max"`
		// MaxAge: a notification still undelivered this long after it was
		// made is marked expired, counted and logged as an error.
		MaxAge time.Duration `yaml:"max_age"`
		// TakeoverWait: a member taking the alert lease over from another
		// waits this long before it sends (docs/ALERTS.md, "Fencing").
		TakeoverWait time.Duration `yaml:"takeover_wait"`
	} `yaml:"alerts"`
	Log struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"` // auto, json, console
	} `yaml:"log"`
}

func defaultConfig() Config {
	var c Config
	c.Kafka.Brokers = []string{"127.0.0.1:9092"}
	c.Kafka.Topic = pipeline.DefaultTopic
	c.Kafka.Partitions = 4
	c.Kafka.Group = pipeline.DefaultGroup
	c.ClickHouse.Addr = "127.0.0.1:9000"
	c.ClickHouse.Database = "vigil"
	c.ClickHouse.User = "default"
	c.ClickHouse.RawEvents = true
	c.ClickHouse.TTLDays = 30
	c.Window.Size = time.Minute
	c.Window.AllowedLateness = 30 * time.Second
	c.CheckpointInterval = pipeline.DefaultCheckpointInterval
	c.ValueSketches = true
	c.Drift.Interval = time.Minute
	c.Drift.Lookback = time.Hour
	c.Labels.Group = pipeline.DefaultLabelGroup
	c.Labels.Horizon = 7 * 24 * time.Hour
	c.Labels.Threshold = 0.5
	c.Performance.Interval = 30 * time.Second
	c.Alerts.Interval = 15 * time.Second
	c.Alerts.RedeliverBase = 30 * time.Second
	c.Alerts.RedeliverMax = 5 * time.Minute
	c.Alerts.MaxAge = 24 * time.Hour
	c.Alerts.TakeoverWait = 25 * time.Second // 2 x the 10s per-attempt timeout + 5s
	c.Log.Level = "info"
	c.Log.Format = "auto"
	return c
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

// loadConfigFile decodes a YAML file strictly over c.
func loadConfigFile(path string, c *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return decodeConfig(data, c)
}

func decodeConfig(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file is a valid config: it changes nothing.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("decode config: %w", err)
	}
	return nil
}

// Validate reports the first problem of c.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers is empty"))
	}
	if c.Kafka.Topic == "" {
		errs = append(errs, errors.New("kafka.topic is empty"))
	}
	if c.Kafka.Partitions < 1 {
		errs = append(errs, errors.New("kafka.partitions must be at least 1"))
	}
	if err := c.Window.toWindow().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("window: %w", err))
	}
	if err := c.sinkConfig().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("clickhouse: %w", err))
	}
	if err := c.pipelineConfig().WithDefaults().Validate(); err != nil {
		errs = append(errs, err)
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
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log.format %q is not auto, json or console", c.Log.Format))
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
	Size            time.Duration `yaml:"size"`
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
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
	}
}

// Flags shared by the commands. Each also reads a VIGIL_* variable.
func configFlags() []cli.Flag {
	d := defaultConfig()
	return []cli.Flag{
		&cli.StringFlag{Name: "config", EnvVars: []string{"VIGIL_CONFIG"}, Usage: "YAML config file (unknown keys are an error)"},
		&cli.StringFlag{Name: "kafka", EnvVars: []string{"VIGIL_KAFKA"}, Value: strings.Join(d.Kafka.Brokers, ","), Usage: "Kafka brokers, comma separated"},
		&cli.StringFlag{Name: "topic", EnvVars: []string{"VIGIL_TOPIC"}, Value: d.Kafka.Topic, Usage: "prediction events topic"},
		&cli.IntFlag{Name: "partitions", EnvVars: []string{"VIGIL_PARTITIONS"}, Value: d.Kafka.Partitions, Usage: "partitions of the topic when Vigil creates it"},
		&cli.StringFlag{Name: "group", EnvVars: []string{"VIGIL_GROUP"}, Value: d.Kafka.Group, Usage: "processor consumer group"},
		&cli.StringFlag{Name: "dead-letter-topic", EnvVars: []string{"VIGIL_DEAD_LETTER_TOPIC"}, Usage: "topic for malformed messages (default <topic>.dlq)"},
		&cli.StringFlag{Name: "clickhouse", EnvVars: []string{"VIGIL_CLICKHOUSE"}, Value: d.ClickHouse.Addr, Usage: "ClickHouse native protocol address"},
		&cli.StringFlag{Name: "clickhouse-database", EnvVars: []string{"VIGIL_CLICKHOUSE_DATABASE"}, Value: d.ClickHouse.Database, Usage: "ClickHouse database"},
		&cli.StringFlag{Name: "clickhouse-user", EnvVars: []string{"VIGIL_CLICKHOUSE_USER"}, Value: d.ClickHouse.User, Usage: "ClickHouse user"},
		&cli.StringFlag{Name: "clickhouse-password", EnvVars: []string{"VIGIL_CLICKHOUSE_PASSWORD"}, Usage: "ClickHouse password"},
		&cli.BoolFlag{Name: "raw-events", EnvVars: []string{"VIGIL_RAW_EVENTS"}, Value: d.ClickHouse.RawEvents, Usage: "also store every raw event in vigil_events"},
		&cli.IntFlag{Name: "ttl-days", EnvVars: []string{"VIGIL_TTL_DAYS"}, Value: d.ClickHouse.TTLDays, Usage: "days raw events, late events and labels are kept (ClickHouse >= 22 only); at least the label horizon"},
		&cli.DurationFlag{Name: "window", EnvVars: []string{"VIGIL_WINDOW"}, Value: d.Window.Size, Usage: "tumbling window size"},
		&cli.DurationFlag{Name: "allowed-lateness", EnvVars: []string{"VIGIL_ALLOWED_LATENESS"}, Value: d.Window.AllowedLateness, Usage: "how long after a window's end its events are still counted"},
		&cli.DurationFlag{Name: "checkpoint-interval", EnvVars: []string{"VIGIL_CHECKPOINT_INTERVAL"}, Value: d.CheckpointInterval, Usage: "how often window states are written to ClickHouse"},
		&cli.BoolFlag{Name: "value-sketches", EnvVars: []string{"VIGIL_VALUE_SKETCHES"}, Value: d.ValueSketches, Usage: "keep per-window value summaries of numeric features (needed for KS and Wasserstein drift)"},
		&cli.StringFlag{Name: "segment-keys", EnvVars: []string{"VIGIL_SEGMENT_KEYS"}, Usage: "segment tags (comma separated, e.g. region) to keep window states and drift per value of"},
		&cli.DurationFlag{Name: "drift-interval", EnvVars: []string{"VIGIL_DRIFT_INTERVAL"}, Value: d.Drift.Interval, Usage: "how often `vigil process` stores the drift of recent windows in vigil_drift (0: never)"},
		&cli.DurationFlag{Name: "drift-lookback", EnvVars: []string{"VIGIL_DRIFT_LOOKBACK"}, Value: d.Drift.Lookback, Usage: "windows starting this long ago or later are (re)evaluated"},
		&cli.StringFlag{Name: "label-topic", EnvVars: []string{"VIGIL_LABEL_TOPIC"}, Usage: "labels (ground truth) topic (default <topic>.labels)"},
		&cli.StringFlag{Name: "label-group", EnvVars: []string{"VIGIL_LABEL_GROUP"}, Value: d.Labels.Group, Usage: "label consumer group"},
		&cli.DurationFlag{Name: "label-horizon", EnvVars: []string{"VIGIL_LABEL_HORIZON"}, Value: d.Labels.Horizon, Usage: "longest a label may come after its prediction (label time - event time); older windows are final"},
		&cli.Float64Flag{Name: "threshold", EnvVars: []string{"VIGIL_THRESHOLD"}, Value: d.Labels.Threshold, Usage: "binary models: a score at or above it predicts the positive class"},
		&cli.DurationFlag{Name: "performance-interval", EnvVars: []string{"VIGIL_PERFORMANCE_INTERVAL"}, Value: d.Performance.Interval, Usage: "how often `vigil process` recomputes the performance of windows that got labels or predictions (0: never)"},
		&cli.StringFlag{Name: "alert-rules", EnvVars: []string{"VIGIL_ALERT_RULES"}, Usage: "alert rules and receivers (YAML, see docs/ALERTS.md); none: no alerts"},
		&cli.DurationFlag{Name: "alert-interval", EnvVars: []string{"VIGIL_ALERT_INTERVAL"}, Value: d.Alerts.Interval, Usage: "how often alert rules are evaluated"},
		&cli.DurationFlag{Name: "alert-redeliver-base", EnvVars: []string{"VIGIL_ALERT_REDELIVER_BASE"}, Value: d.Alerts.RedeliverBase, Usage: "a notification that ran out of attempts is sent again after this, doubling per round"},
		&cli.DurationFlag{Name: "alert-redeliver-max", EnvVars: []string{"VIGIL_ALERT_REDELIVER_MAX"}, Value: d.Alerts.RedeliverMax, Usage: "cap of the wait between redelivery rounds (a receiver that is back gets the notification within about this)"},
		&cli.DurationFlag{Name: "alert-max-age", EnvVars: []string{"VIGIL_ALERT_MAX_AGE"}, Value: d.Alerts.MaxAge, Usage: "a notification still undelivered this long after it was made is marked expired and logged as an error"},
		&cli.DurationFlag{Name: "alert-takeover-wait", EnvVars: []string{"VIGIL_ALERT_TAKEOVER_WAIT"}, Value: d.Alerts.TakeoverWait, Usage: "a member that takes the alert lease over from another waits this long before sending (> 2 x the webhook timeout)"},
		&cli.StringFlag{Name: "log-level", EnvVars: []string{"VIGIL_LOG_LEVEL"}, Value: d.Log.Level, Usage: "debug, info, warn, error"},
		&cli.StringFlag{Name: "log-format", EnvVars: []string{"VIGIL_LOG_FORMAT"}, Value: d.Log.Format, Usage: "auto (console on a terminal, else JSON), json, console"},
	}
}

// resolveConfig builds the Config of a command: defaults, then the file,
// then every flag set on the command line or through its VIGIL_* variable.
func resolveConfig(c *cli.Context) (Config, error) {
	cfg := defaultConfig()
	if path := c.String("config"); path != "" {
		if err := loadConfigFile(path, &cfg); err != nil {
			return cfg, err
		}
	}
	set := func(name string, apply func()) {
		if c.IsSet(name) {
			apply()
		}
	}
	set("kafka", func() { cfg.Kafka.Brokers = splitList(c.String("kafka")) })
	set("topic", func() { cfg.Kafka.Topic = c.String("topic") })
	set("partitions", func() { cfg.Kafka.Partitions = c.Int("partitions") })
	set("group", func() { cfg.Kafka.Group = c.String("group") })
	set("dead-letter-topic", func() { cfg.Kafka.DeadLetterTopic = c.String("dead-letter-topic") })
	set("clickhouse", func() { cfg.ClickHouse.Addr = c.String("clickhouse") })
	set("clickhouse-database", func() { cfg.ClickHouse.Database = c.String("clickhouse-database") })
	set("clickhouse-user", func() { cfg.ClickHouse.User = c.String("clickhouse-user") })
	set("clickhouse-password", func() { cfg.ClickHouse.Password = c.String("clickhouse-password") })
	set("raw-events", func() { cfg.ClickHouse.RawEvents = c.Bool("raw-events") })
	set("ttl-days", func() { cfg.ClickHouse.TTLDays = c.Int("ttl-days") })
	set("window", func() { cfg.Window.Size = c.Duration("window") })
	set("allowed-lateness", func() { cfg.Window.AllowedLateness = c.Duration("allowed-lateness") })
	set("checkpoint-interval", func() { cfg.CheckpointInterval = c.Duration("checkpoint-interval") })
	set("value-sketches", func() { cfg.ValueSketches = c.Bool("value-sketches") })
	set("segment-keys", func() { cfg.SegmentKeys = splitList(c.String("segment-keys")) })
	set("drift-interval", func() { cfg.Drift.Interval = c.Duration("drift-interval") })
	set("drift-lookback", func() { cfg.Drift.Lookback = c.Duration("drift-lookback") })
	set("label-topic", func() { cfg.Labels.Topic = c.String("label-topic") })
	set("label-group", func() { cfg.Labels.Group = c.String("label-group") })
	set("label-horizon", func() { cfg.Labels.Horizon = c.Duration("label-horizon") })
	set("threshold", func() { cfg.Labels.Threshold = c.Float64("threshold") })
	set("performance-interval", func() { cfg.Performance.Interval = c.Duration("performance-interval") })
	set("alert-rules", func() { cfg.Alerts.Rules = c.String("alert-rules") })
	set("alert-interval", func() { cfg.Alerts.Interval = c.Duration("alert-interval") })
	set("alert-redeliver-base", func() { cfg.Alerts.RedeliverBase = c.Duration("alert-redeliver-base") })
	set("alert-redeliver-max", func() { cfg.Alerts.RedeliverMax = c.Duration("alert-redeliver-max") })
	set("alert-max-age", func() { cfg.Alerts.MaxAge = c.Duration("alert-max-age") })
	set("alert-takeover-wait", func() { cfg.Alerts.TakeoverWait = c.Duration("alert-takeover-wait") })
	set("log-level", func() { cfg.Log.Level = c.String("log-level") })
	set("log-format", func() { cfg.Log.Format = c.String("log-format") })
	return cfg, cfg.Validate()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
