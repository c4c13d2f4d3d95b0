package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/ingest/gateway"
	"github.com/vigil-ml/vigil/ingest/serving"
	"github.com/vigil-ml/vigil/internal/observe"
	"github.com/vigil-ml/vigil/processors/multivariate"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/schemas/wire"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// The option table: every setting of `vigil process`, `vigil gateway`,
// `vigil migrate` and `vigil demo` (and of the query, reference and config commands, which share
// it) is one row of options, and everything else comes from the rows: the
// urfave/cli flags (configFlags, demoFlags), the VIGIL_* variable of each
// flag, the strict YAML decoding of --config (decodeConfig: a key that no
// row names is an error), the defaults (defaultConfig), the precedence
// (resolveConfig: flag, then variable, then file, then default), `vigil
// config validate` and docs/CONFIG.md (`vigil config docs`; TestConfigDocs
// fails when the file is stale, `go test ./cmd/vigil -run TestConfigDocs
// -update` rewrites it).
//
// Adding an option is one line here plus its field in Config:
//
//	opt("max-memory", "pipeline.max_memory", pipeline.DefaultMaxMemory, "help", func(c *Config) *int { return &c.Pipeline.MaxMemory }),
//
// and, when it has a constraint, a check in Config.Validate. The row's type
// (string, []string, int, bool, time.Duration, float64) picks the flag kind;
// the default is a package's Default* constant or DefaultConfig() field when
// one exists, never a retyped value. Then regenerate docs/CONFIG.md.
var options = []option{
	opt("config", "", "", "YAML config file (unknown keys are an error)", func(c *Config) *string { return &c.File }),

	opt("kafka", "kafka.brokers", []string{"127.0.0.1:9092"}, "Kafka brokers, comma separated", func(c *Config) *[]string { return &c.Kafka.Brokers }),
	opt("topic", "kafka.topic", pipeline.DefaultTopic, "prediction events topic", func(c *Config) *string { return &c.Kafka.Topic }),
	opt("partitions", "kafka.partitions", 4, "partitions of the prediction and label topics when Vigil creates them", func(c *Config) *int { return &c.Kafka.Partitions }),
	opt("group", "kafka.group", pipeline.DefaultGroup, "processor consumer group", func(c *Config) *string { return &c.Kafka.Group }),
	opt("dead-letter-topic", "kafka.dead_letter_topic", "", "topic for malformed messages", func(c *Config) *string { return &c.Kafka.DeadLetterTopic }).defaultText("<topic>.dlq"),

	opt("clickhouse", "clickhouse.addr", clickhouseDefaults.Addr, "ClickHouse native protocol address", func(c *Config) *string { return &c.ClickHouse.Addr }),
	opt("clickhouse-database", "clickhouse.database", clickhouseDefaults.Database, "ClickHouse database", func(c *Config) *string { return &c.ClickHouse.Database }),
	opt("clickhouse-user", "clickhouse.user", clickhouseDefaults.User, "ClickHouse user", func(c *Config) *string { return &c.ClickHouse.User }),
	opt("clickhouse-password", "clickhouse.password", clickhouseDefaults.Password, "ClickHouse password", func(c *Config) *string { return &c.ClickHouse.Password }),
	opt("clickhouse-cluster", "clickhouse.cluster", clickhouseDefaults.Cluster, "ClickHouse cluster (remote_servers) of the server: tables ON CLUSTER, Distributed over Replicated*MergeTree (docs/SCALING.md)", func(c *Config) *string { return &c.ClickHouse.Cluster }),
	opt("raw-events", "clickhouse.raw_events", clickhouseDefaults.RawEvents, "also store every raw event in vigil_events (the performance job joins labels to them)", func(c *Config) *bool { return &c.ClickHouse.RawEvents }),
	opt("ttl-days", "clickhouse.ttl_days", clickhouseDefaults.TTLDays, "days raw events, late events and labels are kept (ClickHouse >= 22 only); at least the label horizon", func(c *Config) *int { return &c.ClickHouse.TTLDays }),

	opt("window", "window.size", window.DefaultSize, "tumbling window size", func(c *Config) *time.Duration { return &c.Window.Size }),
	opt("allowed-lateness", "window.allowed_lateness", window.DefaultAllowedLateness, "how long after a window's end its events are still counted", func(c *Config) *time.Duration { return &c.Window.AllowedLateness }),
	opt("checkpoint-interval", "checkpoint_interval", pipeline.DefaultCheckpointInterval, "how often window states are written to ClickHouse", func(c *Config) *time.Duration { return &c.CheckpointInterval }),
	opt("exact-values", "exact_values", stats.ExactCap, "values of a numeric feature a window, or a merge of windows, keeps exactly before a KLL sketch takes over (drift is exactly scipy's up to it; 8 bytes per value per open window, feature and segment); 1.."+strconv.Itoa(stats.MaxExactCap), func(c *Config) *int { return &c.ExactValues }),
	opt("reference-exact-values", "reference.exact_values", reference.DefaultExactValues, "values of a numeric feature a reference profile keeps exactly (more: that many quantiles); 8 bytes each in the stored profile and in every process that loads it", func(c *Config) *int { return &c.Reference.ExactValues }),
	opt("value-sketches", "value_sketches", !pipeline.Config{}.NoValueSketches, "keep per-window value summaries of numeric features (needed for KS and Wasserstein drift)", func(c *Config) *bool { return &c.ValueSketches }),
	opt("segment-keys", "segment_keys", []string(nil), "segment tags (comma separated, e.g. region) to keep window states and drift per value of", func(c *Config) *[]string { return &c.SegmentKeys }),
	opt("max-held-bytes", "max_held_bytes", pipeline.DefaultMaxHeldBytes, "memory budget in bytes of what the processor holds for its next checkpoints (decoded rows, late rows, dead letters), over all its partitions; a partition that holds its share checkpoints early", func(c *Config) *int { return &c.MaxHeldBytes }),
	opt("max-memory", "max_memory", 0, "soft limit in bytes of the process's Go memory (debug.SetMemoryLimit, like GOMEMLIMIT): the GC works harder near it; 0: none. With the default --max-held-bytes, 335544320 (320 MiB) keeps a catch-up under 400 MB RSS", func(c *Config) *int { return &c.MaxMemory }),
	opt("dedup-event-ids", "dedup_event_ids", pipeline.Config{}.DedupEventIDs, "count an event once per window even when its message was written twice by a producer other than the SDK (costs 8 bytes per event of an open window in every checkpoint; at most "+strconv.Itoa(pipeline.MaxDedupEventIDs)+" per partition)", func(c *Config) *bool { return &c.DedupEventIDs }),

	opt("drift-interval", "drift.interval", time.Minute, "how often vigil process stores the drift of recent windows in vigil_drift (0: never)", func(c *Config) *time.Duration { return &c.Drift.Interval }),
	opt("drift-lookback", "drift.lookback", time.Hour, "windows starting this long ago or later are (re)evaluated", func(c *Config) *time.Duration { return &c.Drift.Lookback }),
	opt("", "drift.overrides", []driftOverride(nil), "per model and feature drift method and threshold, a list of {model, feature, method, threshold, from_reference}; the last matching entry wins", func(c *Config) *[]driftOverride { return &c.Drift.Overrides }),

	opt("multivariate-refresh", "multivariate.refresh", multivariate.DefaultRefresh, "how often the processor reloads the references' multivariate models (PCA reconstruction error, docs/DRIFT.md) it scores events with; the drift job stores the windows' errors in vigil_multivariate_drift (0: score none)", func(c *Config) *time.Duration { return &c.Multivariate.Refresh }),

	opt("label-topic", "labels.topic", "", "labels (ground truth) topic; must differ from --topic", func(c *Config) *string { return &c.Labels.Topic }).defaultText("<topic>.labels"),
	opt("label-group", "labels.group", pipeline.DefaultLabelGroup, "label consumer group", func(c *Config) *string { return &c.Labels.Group }),
	opt("label-horizon", "labels.horizon", 7*24*time.Hour, "longest a label may come after its prediction (label time - event time); older windows are final", func(c *Config) *time.Duration { return &c.Labels.Horizon }),
	opt("threshold", "labels.threshold", performance.DefaultThreshold, "binary models: a score at or above it predicts the positive class; in (0, 1)", func(c *Config) *float64 { return &c.Labels.Threshold }),
	opt("performance-interval", "performance.interval", 30*time.Second, "how often vigil process recomputes the performance of windows that got labels or predictions (0: never)", func(c *Config) *time.Duration { return &c.Performance.Interval }),

	opt("alert-rules", "alerts.rules", "", "alert rules and receivers (YAML, see docs/ALERTS.md); none: no alerts", func(c *Config) *string { return &c.Alerts.Rules }),
	opt("alert-interval", "alerts.interval", 15*time.Second, "how often alert rules are evaluated", func(c *Config) *time.Duration { return &c.Alerts.Interval }),
	opt("alert-redeliver-base", "alerts.redeliver_base", 30*time.Second, "a notification that ran out of attempts is sent again after this, doubling per round", func(c *Config) *time.Duration { return &c.Alerts.RedeliverBase }),
	opt("alert-redeliver-max", "alerts.redeliver_max", 5*time.Minute, "cap of the wait between redelivery rounds: a receiver that is back gets the notification within about this", func(c *Config) *time.Duration { return &c.Alerts.RedeliverMax }),
	opt("alert-max-age", "alerts.max_age", 24*time.Hour, "a notification still undelivered this long after it was made is marked expired, counted and logged as an error", func(c *Config) *time.Duration { return &c.Alerts.MaxAge }),
	opt("alert-takeover-wait", "alerts.takeover_wait", 25*time.Second, "a member that takes the alert lease over from another waits this long before sending; keep it above twice the 10s webhook timeout", func(c *Config) *time.Duration { return &c.Alerts.TakeoverWait }),

	opt("http-addr", "http.addr", "", "address (host:port) of the HTTP server of the long-running commands: /metrics, /healthz and /readyz (docs/METRICS.md), and the /v1/ routes of vigil gateway; port 0 picks a free one; off: no server (vigil process)", func(c *Config) *string { return &c.HTTP.Addr }).defaultText(observe.DefaultAddr + " (vigil process), " + gateway.DefaultAddr + " (vigil gateway), " + serving.DefaultBridgeAddr + " (vigil bridge), a free port (vigil demo)"),
	opt("tls-cert", "http.tls_cert", "", "TLS certificate file (PEM) of the HTTP server; with --tls-key it serves HTTPS only", func(c *Config) *string { return &c.HTTP.TLSCert }),
	opt("tls-key", "http.tls_key", "", "TLS private key file (PEM) of --tls-cert", func(c *Config) *string { return &c.HTTP.TLSKey }),

	opt("ui-tokens", "ui.tokens", "", "bearer tokens file of the UI at /ui/ of vigil process and vigil ui (the format of --gateway-tokens, docs/INGEST.md; a token's models are the models it sees); none: no authentication (a warning is logged)", func(c *Config) *string { return &c.UI.Tokens }),

	opt("log-level", "log.level", "info", "debug, info, warn, error (vigil query and vigil reference: warn unless set)", func(c *Config) *string { return &c.Log.Level }),
	opt("log-format", "log.format", "auto", "auto (console on a terminal, else JSON), json, console", func(c *Config) *string { return &c.Log.Format }),

	opt("serving-mapping", "serving.mapping", "", "per-model mapping of serving payloads to events (YAML, see docs/INGEST.md); none: tensors named by tensor, the first output is the prediction", func(c *Config) *string { return &c.Serving.Mapping }),
	opt("serving-max-pending", "serving.max_pending", servingDefaults.MaxPending, "request or response halves that may wait for their other half; when full the oldest is dropped and counted", func(c *Config) *int { return &c.Serving.MaxPending }),
	opt("serving-pending-ttl", "serving.pending_ttl", servingDefaults.PendingTTL, "how long a request or response half waits for its other half before it is dropped and counted", func(c *Config) *time.Duration { return &c.Serving.PendingTTL }),

	opt("bridge-format", "bridge.format", bridgeDefaults.Format, "whose topics vigil bridge reads: mlserver (its Kafka server's request and response topics) or seldon (Seldon Core v2 model topics)", func(c *Config) *string { return &c.Bridge.Format }).only("bridge"),
	opt("bridge-group", "bridge.group", bridgeDefaults.Group, "consumer group of vigil bridge", func(c *Config) *string { return &c.Bridge.Group }).only("bridge"),
	opt("bridge-request-topic", "bridge.request_topic", bridgeDefaults.RequestTopic, "mlserver: the topic of inference requests (MLServer's kafka_topic_input)", func(c *Config) *string { return &c.Bridge.RequestTopic }).only("bridge"),
	opt("bridge-response-topic", "bridge.response_topic", bridgeDefaults.ResponseTopic, "mlserver: the topic of inference responses (MLServer's kafka_topic_output)", func(c *Config) *string { return &c.Bridge.ResponseTopic }).only("bridge"),
	opt("seldon-prefix", "bridge.seldon_prefix", bridgeDefaults.SeldonPrefix, "seldon: the topic prefix (Seldon's kafka topicPrefix)", func(c *Config) *string { return &c.Bridge.SeldonPrefix }).only("bridge"),
	opt("seldon-namespace", "bridge.seldon_namespace", bridgeDefaults.SeldonNamespace, "seldon: the Kubernetes namespace in the topic names", func(c *Config) *string { return &c.Bridge.SeldonNamespace }).only("bridge"),
	opt("seldon-models", "bridge.seldon_models", []string(nil), "seldon: the models whose <prefix>.<namespace>.model.<model>.inputs and .outputs topics to read, comma separated", func(c *Config) *[]string { return &c.Bridge.SeldonModels }).only("bridge"),
	opt("bridge-commit-interval", "bridge.commit_interval", bridgeDefaults.CommitInterval, "how often vigil bridge flushes its producer and commits the offsets of what it delivered", func(c *Config) *time.Duration { return &c.Bridge.CommitInterval }).only("bridge"),

	opt("demo-windows", "demo.windows", 12, "windows of simulated traffic; the shift starts half-way", func(c *Config) *int { return &c.Demo.Windows }).only("demo"),
	opt("demo-report", "demo.report", "", "the HTML report the demo ends by writing", func(c *Config) *string { return &c.Demo.Report }).only("demo").defaultText("vigil-demo-<run>.html in the temp folder"),
	opt("demo-events-per-window", "demo.events_per_window", 2000, "simulated predictions per window", func(c *Config) *int { return &c.Demo.EventsPerWindow }).only("demo"),

	opt("gateway-tokens", "gateway.tokens", "", "bearer tokens file (YAML: tokens with name, optional models and rate; see docs/INGEST.md); none: no authentication (a warning is logged)", func(c *Config) *string { return &c.Gateway.Tokens }).only("gateway"),
	opt("gateway-max-body-bytes", "gateway.max_body_bytes", int(gateway.DefaultMaxBodyBytes), "largest request body in bytes, compressed and decompressed (413)", func(c *Config) *int { return &c.Gateway.MaxBodyBytes }).only("gateway"),
	opt("gateway-max-events", "gateway.max_events", gateway.DefaultMaxItems, "most events (or labels) in one request (413, nothing published)", func(c *Config) *int { return &c.Gateway.MaxEvents }).only("gateway"),
	opt("gateway-max-features", "gateway.max_features", gateway.DefaultMaxFeatures, "most features of one event (the event is rejected)", func(c *Config) *int { return &c.Gateway.MaxFeatures }).only("gateway"),
	opt("gateway-retry-after", "gateway.retry_after", gateway.DefaultRetryAfter, "Retry-After of a 503 when the producer's buffer is full", func(c *Config) *time.Duration { return &c.Gateway.RetryAfter }).only("gateway"),
	opt("gateway-encoding", "gateway.encoding", wire.EncodingArrow, "wire encoding of the events and labels the gateway publishes: arrow (one Arrow batch of one model per message) or json (one per message)", func(c *Config) *string { return &c.Gateway.Encoding }).only("gateway"),
	opt("gateway-buffer", "gateway.buffer", ingest.DefaultMaxBufferedEvents, "events the gateway's producer buffers before it answers 503", func(c *Config) *int { return &c.Gateway.Buffer }).only("gateway"),
	opt("gateway-label-buffer", "gateway.label_buffer", ingest.DefaultMaxBufferedLabels, "labels the gateway's producer buffers before it answers 503", func(c *Config) *int { return &c.Gateway.LabelBuffer }).only("gateway"),
	opt("gateway-batch-size", "gateway.batch_size", ingest.DefaultBatchSize, "events of one model per Kafka message (arrow) or per write (json)", func(c *Config) *int { return &c.Gateway.BatchSize }).only("gateway"),
	opt("gateway-linger", "gateway.linger", ingest.DefaultLinger, "longest an event waits for its batch to fill before it is sent", func(c *Config) *time.Duration { return &c.Gateway.Linger }).only("gateway"),
	opt("gateway-block-timeout", "gateway.block_timeout", ingest.DefaultBlockTimeout, "how long a request waits for room in a full buffer before the gateway answers 503", func(c *Config) *time.Duration { return &c.Gateway.BlockTimeout }).only("gateway"),
}

// clickhouseDefaults are the sink's defaults, for the clickhouse.* rows.
var clickhouseDefaults = clickhouse.DefaultConfig()

// servingDefaults and bridgeDefaults are ingest/serving's, for the serving.* and bridge.* rows.
var (
	servingDefaults = serving.DefaultConfig()
	bridgeDefaults  = serving.DefaultBridgeConfig()
)

// option is one row of the table; build it with opt.
type option struct {
	flag    string // flag name without dashes; "" for a file-only option
	yaml    string // dotted YAML key; "" for a flag-only option (--config)
	help    string
	defText string // shown instead of the zero default, e.g. "<topic>.dlq"
	command string // "" for every command, else the one command that has it
	// field returns a pointer to the option's field in c; its type is one of
	// those of opt's T.
	field      func(c *Config) any
	setDefault func(c *Config)
}

// opt declares an option of type T: its flag (also read from VIGIL_<FLAG>,
// the name upper-cased with - as _), its YAML key, its default and its help
// (no backticks: urfave/cli turns a `word` into the value placeholder).
func opt[T any](flag, yamlKey string, def T, help string, field func(*Config) *T) option {
	return option{
		flag: flag, yaml: yamlKey, help: help,
		field: func(c *Config) any { return field(c) },
		setDefault: func(c *Config) {
			v := def
			if s, ok := any(&v).(*[]string); ok {
				*s = slices.Clone(*s) // a Config must not share the table's slice
			}
			*field(c) = v
		},
	}
}

// defaultText sets what the docs and --help show as the default when the
// zero value stands for a derived one.
func (o option) defaultText(s string) option { o.defText = s; return o }

// only limits the option to one command.
func (o option) only(command string) option { o.command = command; return o }

// env is the option's VIGIL_* variable ("" for a file-only option).
func (o option) env() string {
	if o.flag == "" {
		return ""
	}
	return "VIGIL_" + strings.ToUpper(strings.ReplaceAll(o.flag, "-", "_"))
}

// defaultConfig is the Config of the defaults of every option.
func defaultConfig() Config {
	var c Config
	for _, o := range options {
		o.setDefault(&c)
	}
	return c
}

// configFlags are the flags of the options of every command, built anew on
// each call (a urfave/cli flag keeps its parsed value).
func configFlags() []cli.Flag { return flagsOf("") }

// bridgeFlags are configFlags and the flags of the options of vigil bridge only.
func bridgeFlags() []cli.Flag { return append(configFlags(), flagsOf("bridge")...) }

// demoFlags are configFlags and the flags of the options of vigil demo only.
func demoFlags() []cli.Flag { return append(configFlags(), flagsOf("demo")...) }

// gatewayFlags are configFlags and the flags of the options of vigil
// gateway only.
func gatewayFlags() []cli.Flag { return append(configFlags(), flagsOf("gateway")...) }

// flagsOf are the flags of the options of command ("" for those of every
// command).
func flagsOf(command string) []cli.Flag {
	d := defaultConfig()
	var out []cli.Flag
	for _, o := range options {
		if o.flag == "" || o.command != command {
			continue
		}
		out = append(out, o.cliFlag(&d))
	}
	return out
}

// cliFlag is the urfave/cli flag of o, its default taken from d.
func (o option) cliFlag(d *Config) cli.Flag {
	env := []string{o.env()}
	switch p := o.field(d).(type) {
	case *string:
		return &cli.StringFlag{Name: o.flag, EnvVars: env, Value: *p, Usage: o.help, DefaultText: o.defText}
	case *[]string:
		// One comma-separated string, not a cli.StringSliceFlag: a variable
		// and a flag then read alike, and a flag replaces the default
		// instead of adding to it.
		return &cli.StringFlag{Name: o.flag, EnvVars: env, Value: strings.Join(*p, ","), Usage: o.help, DefaultText: o.defText}
	case *int:
		return &cli.IntFlag{Name: o.flag, EnvVars: env, Value: *p, Usage: o.help, DefaultText: o.defText}
	case *bool:
		return &cli.BoolFlag{Name: o.flag, EnvVars: env, Value: *p, Usage: o.help, DefaultText: o.defText}
	case *time.Duration:
		text := o.defText
		if text == "" {
			text = shortDuration(*p) // 1m, not 1m0s
		}
		return &cli.DurationFlag{Name: o.flag, EnvVars: env, Value: *p, Usage: o.help, DefaultText: text}
	case *float64:
		return &cli.Float64Flag{Name: o.flag, EnvVars: env, Value: *p, Usage: o.help, DefaultText: o.defText}
	}
	panic(fmt.Sprintf("BUG: option --%s has a field of type %T, which has no flag kind", o.flag, o.field(d)))
}

// fromFlag sets o's field of cfg from its flag or variable when either is
// set (urfave/cli already prefers the flag to the variable).
func (o option) fromFlag(c *cli.Context, cfg *Config) {
	if o.flag == "" || !c.IsSet(o.flag) {
		return
	}
	switch p := o.field(cfg).(type) {
	case *string:
		*p = c.String(o.flag)
	case *[]string:
		*p = splitList(c.String(o.flag))
	case *int:
		*p = c.Int(o.flag)
	case *bool:
		*p = c.Bool(o.flag)
	case *time.Duration:
		*p = c.Duration(o.flag)
	case *float64:
		*p = c.Float64(o.flag)
	}
}

// resolveConfig builds the Config of a command: defaults, then the file
// (--config), then every flag set on the command line or through its VIGIL_*
// variable; then it validates the result. The Config is returned with the
// validation error too.
func resolveConfig(c *cli.Context) (Config, error) {
	cfg := defaultConfig()
	if c.Context != nil {
		if level, ok := c.Context.Value(logLevelDefault{}).(string); ok {
			cfg.Log.Level = level
		}
	}
	if path := c.String("config"); path != "" {
		cfg.File = path
		if err := loadConfigFile(path, &cfg); err != nil {
			return cfg, err
		}
	}
	for _, o := range options {
		o.fromFlag(c, &cfg)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	// Process-wide: every command merges window states with the same cap.
	return cfg, stats.SetExactCap(cfg.ExactValues)
}

// logLevelDefault is the context key of a command's own default log level.
type logLevelDefault struct{}

// oneShot is the Before of the commands that print a result (query,
// reference): their logs default to warn, so that stderr holds only what
// went wrong and stdout only the result. A level from a flag, a variable or
// the file still wins.
func oneShot(c *cli.Context) error {
	c.Context = context.WithValue(c.Context, logLevelDefault{}, "warn")
	return nil
}

// loadConfigFile decodes a YAML file strictly over c.
func loadConfigFile(path string, c *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return decodeConfig(data, c)
}

// decodeConfig decodes a YAML document over c: every key must be an
// option's YAML key or a section of one (kafka, clickhouse, ...), and none
// may come twice. An empty document changes nothing.
func decodeConfig(data []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("decode config: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	if err := decodeSection(doc.Content[0], "", c); err != nil {
		return fmt.Errorf("decode config: %w", err)
	}
	return nil
}

// decodeSection decodes the mapping n of the section prefix ("" for the top,
// else "kafka." and so on) over c.
func decodeSection(n *yaml.Node, prefix string, c *Config) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "kafka:" alone sets nothing
	}
	where := "the top level"
	if prefix != "" {
		where = strings.TrimSuffix(prefix, ".")
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: %s must be a mapping of keys (one of %s)", n.Line, where, strings.Join(sectionKeys(prefix), ", "))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		if k.Kind != yaml.ScalarNode || k.Value == "<<" {
			return fmt.Errorf("line %d: %s: only plain keys (no merge keys, no complex keys) are allowed", k.Line, where)
		}
		if line, ok := seen[k.Value]; ok {
			return fmt.Errorf("line %d: %s set twice (first on line %d)", k.Line, key, line)
		}
		seen[k.Value] = k.Line
		if o := optionOfKey(key); o != nil {
			if err := decodeValue(v, o.field(c)); err != nil {
				return fmt.Errorf("line %d: %s: %w", k.Line, key, err)
			}
			continue
		}
		if len(sectionKeys(key+".")) > 0 {
			if err := decodeSection(v, key+".", c); err != nil {
				return err
			}
			continue
		}
		// yaml.v3's strict decoding said "field X not found"; keep the words.
		return fmt.Errorf("line %d: field %s not found in %s (known: %s)", k.Line, k.Value, where, strings.Join(sectionKeys(prefix), ", "))
	}
	return nil
}

// decodeValue decodes one option's value into ptr; a list of structs is
// decoded strictly too (unknown keys are an error).
func decodeValue(v *yaml.Node, ptr any) error {
	rv := reflect.ValueOf(ptr).Elem()
	if rv.Kind() != reflect.Slice || rv.Type().Elem().Kind() != reflect.Struct {
		return v.Decode(ptr)
	}
	// Node.Decode has no KnownFields: decode a copy of the value strictly.
	text, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(ptr); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// Its line numbers count from the value, not from the file.
			return fmt.Errorf("%s", strings.Join(stripLines(te.Errors), "; "))
		}
		return err
	}
	return nil
}

// stripLines drops the "line N: " of yaml.v3's messages.
func stripLines(msgs []string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		if _, rest, ok := strings.Cut(m, ": "); ok && strings.HasPrefix(m, "line ") {
			m = rest
		}
		out[i] = m
	}
	return out
}

// optionOfKey is the option of a dotted YAML key, or nil.
func optionOfKey(key string) *option {
	for i := range options {
		if options[i].yaml == key {
			return &options[i]
		}
	}
	return nil
}

// sectionKeys are the keys that may follow prefix ("" for the top level, or
// "kafka." ...): option keys and subsections, in table order.
func sectionKeys(prefix string) []string {
	var out []string
	for _, o := range options {
		if o.yaml == "" || !strings.HasPrefix(o.yaml, prefix) {
			continue
		}
		k, _, _ := strings.Cut(o.yaml[len(prefix):], ".")
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
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

// formatValue renders a value of an option's field as the docs, --help and
// the variables write it.
func formatValue(ptr any) string {
	switch p := ptr.(type) {
	case *string:
		return *p
	case *[]string:
		return strings.Join(*p, ",")
	case *int:
		return strconv.Itoa(*p)
	case *bool:
		return strconv.FormatBool(*p)
	case *time.Duration:
		return shortDuration(*p)
	case *float64:
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	return ""
}

// shortDuration is d without zero trailing units: 1m, not 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// configDocs is docs/CONFIG.md, made from the option table.
func configDocs() string {
	var b strings.Builder
	d := defaultConfig()
	b.WriteString(`# Configuration

<!-- Generated from the option table (cmd/vigil/options.go) by
     go run ./cmd/vigil config docs > docs/CONFIG.md
     Do not edit: TestConfigDocs fails when this file is stale. -->

Every option of ` + "`vigil process`, `vigil gateway`, `vigil migrate` and `vigil demo`" + ` (and of
` + "`vigil query`, `vigil reference` and `vigil config validate`" + `, which read the
same options) is a flag, a ` + "`VIGIL_*`" + ` environment variable and a key of the
YAML file named by ` + "`--config`" + `. Precedence: flag, then variable, then file,
then default. In the file, an unknown key and a key set twice are errors.
` + "`vigil config validate --config FILE`" + ` checks a file together with the
variables and flags, and the alert rules file it names, without running
anything, and reports every problem, not only the first. A list (` + "`--kafka`" + `,
` + "`--segment-keys`" + `) is comma separated in a flag or variable, a YAML sequence in
the file. A duration is written like ` + "`90s`, `1m`, `168h`" + `.

| flag | variable | YAML key | default | meaning |
|---|---|---|---|---|
`)
	row := func(o option) {
		cell := func(s string) string {
			if s == "" {
				return ""
			}
			return "`" + s + "`"
		}
		def := cell(formatValue(o.field(&d)))
		if o.defText != "" {
			def = cell(o.defText)
		}
		if def == "" {
			def = "none"
		}
		flag := "(file only)"
		if o.flag != "" {
			flag = "`--" + o.flag + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", flag, cell(o.env()), cell(o.yaml), def, o.help)
	}
	for _, o := range options {
		if o.command == "" {
			row(o)
		}
	}
	b.WriteString("\nOptions of `vigil demo` only:\n\n| flag | variable | YAML key | default | meaning |\n|---|---|---|---|---|\n")
	for _, o := range options {
		if o.command == "demo" {
			row(o)
		}
	}
	b.WriteString("\nOptions of `vigil gateway` only (it also reads the kafka, labels.topic, http and log options above):\n\n| flag | variable | YAML key | default | meaning |\n|---|---|---|---|---|\n")
	for _, o := range options {
		if o.command == "gateway" {
			row(o)
		}
	}
	b.WriteString("\nOptions of `vigil bridge` only:\n\n| flag | variable | YAML key | default | meaning |\n|---|---|---|---|---|\n")
	for _, o := range options {
		if o.command == "bridge" {
			row(o)
		}
	}
	b.WriteString("\nThe defaults, as a file:\n\n```yaml\n")
	b.WriteString(defaultsYAML())
	b.WriteString("```\n\nA drift override (`drift.overrides`, only in the file) sets the method and\nthreshold of the features it matches; an empty model or feature matches any:\n\n```yaml\ndrift:\n  overrides:\n    - {method: psi, threshold: 0.2}                 # every feature of every model\n    - {model: fraud, feature: amount, method: ks}   # KS with its default p < 0.05\n    - {feature: amount, method: jensenshannon, from_reference: true}\n```\n")
	return b.String()
}

// defaultsYAML is the YAML file of the defaults.
func defaultsYAML() string {
	d := defaultConfig()
	return configYAML(&d)
}

// configYAML is the YAML file of every option of d that has a YAML key, in
// table order; decodeConfig reads it back as d.
func configYAML(d *Config) string {
	root := &yaml.Node{Kind: yaml.MappingNode}
	section := func(path []string) *yaml.Node {
		n := root
	next:
		for _, k := range path {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					n = n.Content[i+1]
					continue next
				}
			}
			child := &yaml.Node{Kind: yaml.MappingNode}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, child)
			n = child
		}
		return n
	}
	for _, o := range options {
		if o.yaml == "" {
			continue
		}
		keys := strings.Split(o.yaml, ".")
		parent := section(keys[:len(keys)-1])
		v := &yaml.Node{}
		switch p := o.field(d).(type) {
		case *time.Duration:
			v.SetString(shortDuration(*p))
		default:
			if err := v.Encode(p); err != nil {
				panic(fmt.Sprintf("BUG: encode the default of %s: %v", o.yaml, err))
			}
			if v.Kind == yaml.SequenceNode {
				v.Style = yaml.FlowStyle
			}
		}
		parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: keys[len(keys)-1]}, v)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		panic(fmt.Sprintf("BUG: encode the defaults: %v", err))
	}
	return buf.String()
}
