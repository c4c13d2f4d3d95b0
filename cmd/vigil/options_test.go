package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/vigil-ml/vigil/ingest/gateway"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

var update = flag.Bool("update", false, "rewrite docs/CONFIG.md from the option table")

// TestConfigDocs fails when docs/CONFIG.md is not what the option table
// makes; `go test ./cmd/vigil -run TestConfigDocs -update` (or `go run
// ./cmd/vigil config docs > docs/CONFIG.md`) rewrites it.
func TestConfigDocs(t *testing.T) {
	const path = "../../docs/CONFIG.md"
	want := configDocs()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("docs/CONFIG.md is stale: regenerate it with go test ./cmd/vigil -run TestConfigDocs -update (or go run ./cmd/vigil config docs > docs/CONFIG.md)")
	}
	// The command prints the same text.
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	if err := app.Run([]string{"vigil", "config", "docs"}); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("vigil config docs differs from configDocs()")
	}
	for _, o := range options {
		if !strings.Contains(want, "| `"+o.yaml+"` |") && o.yaml != "" {
			t.Errorf("docs/CONFIG.md has no row of %s", o.yaml)
		}
	}
}

// TestOptionTable checks the table's own invariants: unique names, YAML
// keys that are not also sections, a flag kind for every field type.
func TestOptionTable(t *testing.T) {
	flags, envs, keys := map[string]bool{}, map[string]bool{}, map[string]bool{}
	d := defaultConfig()
	for _, o := range options {
		if o.flag == "" && o.yaml == "" {
			t.Errorf("an option with neither a flag nor a YAML key: %+v", o)
		}
		if o.flag != "" {
			if flags[o.flag] || envs[o.env()] {
				t.Errorf("flag --%s (%s) declared twice", o.flag, o.env())
			}
			flags[o.flag], envs[o.env()] = true, true
			_ = o.cliFlag(&d) // panics on a field type without a flag kind
		}
		if o.yaml != "" {
			if keys[o.yaml] {
				t.Errorf("YAML key %s declared twice", o.yaml)
			}
			keys[o.yaml] = true
			if len(sectionKeys(o.yaml+".")) > 0 {
				t.Errorf("YAML key %s is also a section", o.yaml)
			}
		}
		if strings.Contains(o.help, "`") {
			t.Errorf("help of %s has a backtick: %q", o.flag+o.yaml, o.help)
		}
	}
	// Every flag of the demo, the gateway and the bridge is an option: those
	// for every command + the command's own.
	only := map[string]int{}
	for _, o := range options {
		only[o.command]++
	}
	if got, want := len(demoFlags()), len(options)-1-only["gateway"]-only["bridge"]; got != want {
		t.Errorf("demo has %d flags, want %d (every option but drift.overrides and those of vigil gateway and vigil bridge)", got, want)
	}
	if got, want := len(gatewayFlags()), len(configFlags())+only["gateway"]; got != want || only["gateway"] != 11 {
		t.Errorf("gateway has %d flags (%d of its own), want %d (11 of its own)", got, only["gateway"], want)
	}
	if got, want := len(bridgeFlags()), len(configFlags())+only["bridge"]; got != want || only["bridge"] != 8 {
		t.Errorf("bridge has %d flags (%d of its own), want %d (8 of its own)", got, only["bridge"], want)
	}
}

// TestNoBacktickInHelp: urfave/cli shows a `word` of a flag's usage as its
// value placeholder (--drift-interval vigil process), so no help has one.
func TestNoBacktickInHelp(t *testing.T) {
	var walk func(path string, cmds []*cli.Command)
	n := 0
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := path + " " + c.Name
			for _, text := range []string{c.Usage, c.Description, c.ArgsUsage} {
				if strings.Contains(text, "`") {
					t.Errorf("%s: help has a backtick: %q", p, text)
				}
			}
			for _, f := range c.Flags {
				n++
				if u := f.(cli.DocGenerationFlag).GetUsage(); strings.Contains(u, "`") {
					t.Errorf("%s --%s: usage has a backtick: %q", p, f.Names()[0], u)
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk("vigil", newApp().Commands)
	if n < 100 {
		t.Fatalf("walked %d flags, want every flag of every command (more than 100)", n)
	}
	// And the rendered help shows the placeholder "value", not a word of the text.
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	if err := app.Run([]string{"vigil", "process", "--help"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "--drift-interval value") {
		t.Errorf("vigil process --help:\n%s\nwant a line with --drift-interval value", out.String())
	}
}

// resolveCmd resolves the config as the named command does (demo has every
// flag), from args, env and nothing else of the environment.
func resolveCmd(t *testing.T, command string, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "VIGIL_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	app := newApp()
	var probe cli.Command
	for _, c := range app.Commands {
		if c.Name == command {
			probe = *c
		}
	}
	var got Config
	var gotErr error
	probe.Name = "probe"
	probe.Action = func(c *cli.Context) error {
		got, gotErr = resolveConfig(c)
		return nil
	}
	app.Commands = append(app.Commands, &probe)
	app.Writer = &bytes.Buffer{}
	if err := app.Run(append([]string{"vigil", "probe"}, args...)); err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return got, gotErr
}

// sourceValue is a value of o's type, different from its default, for one
// of the sources (1 file, 2 variable, 3 flag), as a Go value and as the text
// of a variable or flag.
func sourceValue(t *testing.T, o option, d *Config, source int) (any, string) {
	t.Helper()
	switch p := o.field(d).(type) {
	case *string:
		s := fmt.Sprintf("src%d.%s", source, o.flag)
		return s, s
	case *[]string:
		v := []string{fmt.Sprintf("s%d-a", source), fmt.Sprintf("s%d-b", source)}
		return v, strings.Join(v, ",")
	case *int:
		return 100 + source, strconv.Itoa(100 + source)
	case *bool:
		v := *p != (source%2 == 1) // file and flag flip the default, the variable flips it back
		return v, strconv.FormatBool(v)
	case *time.Duration:
		v := time.Duration(10+source) * time.Second
		return v, v.String()
	case *float64:
		v := 0.1 + float64(source)/100
		return v, strconv.FormatFloat(v, 'g', -1, 64)
	}
	t.Fatalf("no test value for %T", o.field(d))
	return nil, ""
}

// yamlOf is a file setting the dotted key to v.
func yamlOf(t *testing.T, key string, v any) string {
	t.Helper()
	parts := strings.Split(key, ".")
	var m any = v
	if d, ok := v.(time.Duration); ok {
		m = d.String()
	}
	for i := len(parts) - 1; i >= 0; i-- {
		m = map[string]any{parts[i]: m}
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestConfigEveryOptionFromEachSource sets every option of the table from
// each source in turn and checks the precedence: flag, then variable, then
// file, then default.
func TestConfigEveryOptionFromEachSource(t *testing.T) {
	d := defaultConfig()
	n := 0
	for _, o := range options {
		if o.flag == "" || o.yaml == "" {
			continue // --config and drift.overrides: below and in TestConfigErrors
		}
		n++
		t.Run(o.flag, func(t *testing.T) {
			fileV, _ := sourceValue(t, o, &d, 1)
			envV, envS := sourceValue(t, o, &d, 2)
			flagV, flagS := sourceValue(t, o, &d, 3)
			file := writeFile(t, yamlOf(t, o.yaml, fileV))
			env := map[string]string{o.env(): envS}
			tests := []struct {
				name string
				env  map[string]string
				args []string
				want any
			}{
				{"default", nil, nil, reflect.ValueOf(o.field(&d)).Elem().Interface()},
				{"file", nil, []string{"--config", file}, fileV},
				{"variable over file", env, []string{"--config", file}, envV},
				{"variable alone", env, nil, envV},
				{"flag over variable and file", env, []string{"--config", file, "--" + o.flag + "=" + flagS}, flagV},
			}
			command := "demo" // every option but those of one other command
			if o.command != "" {
				command = o.command
			}
			for _, tt := range tests {
				c, _ := resolveCmd(t, command, tt.env, tt.args...) // a value may not validate: only precedence counts here
				got := reflect.ValueOf(o.field(&c)).Elem().Interface()
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s: %s = %#v, want %#v", tt.name, o.yaml, got, tt.want)
				}
			}
		})
	}
	if n != 67 {
		t.Errorf("checked %d options, want 67", n)
	}
	// --config itself, through its variable.
	c, err := resolveCmd(t, "process", map[string]string{"VIGIL_CONFIG": writeFile(t, "kafka: {topic: via-variable}\n")})
	if err != nil || c.Kafka.Topic != "via-variable" {
		t.Errorf("VIGIL_CONFIG: topic %q, err %v", c.Kafka.Topic, err)
	}
}

// TestConfigOneOptionPerSource: one option set from each source at once,
// each winning where it is the highest.
func TestConfigOneOptionPerSource(t *testing.T) {
	file := writeFile(t, "window: {size: 2m}\nlabels: {threshold: 0.7}\nclickhouse: {raw_events: false}\n")
	c, err := resolveCmd(t, "process", map[string]string{"VIGIL_LABEL_HORIZON": "48h", "VIGIL_THRESHOLD": "0.6"},
		"--config", file, "--segment-keys", "region, tier", "--threshold", "0.8")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"default", c.Kafka.Partitions, 4},
		{"file", c.Window.Size, 2 * time.Minute},
		{"file bool", c.ClickHouse.RawEvents, false},
		{"variable", c.Labels.Horizon, 48 * time.Hour},
		{"flag", c.SegmentKeys, []string{"region", "tier"}},
		{"flag over variable over file", c.Labels.Threshold, 0.8},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

// TestConfigDefaultsFromPackages: the table's defaults are the packages'.
func TestConfigDefaultsFromPackages(t *testing.T) {
	d := defaultConfig()
	ch := clickhouse.DefaultConfig()
	ch.DialTimeout = 0 // no option
	if got := d.sinkConfig(); got != ch {
		t.Errorf("sink defaults %+v, want clickhouse.DefaultConfig() %+v", got, ch)
	}
	if got := d.Window.toWindow(); got != window.DefaultConfig() {
		t.Errorf("window defaults %+v, want %+v", got, window.DefaultConfig())
	}
	p := pipeline.Config{Brokers: d.Kafka.Brokers}.WithDefaults()
	if d.Kafka.Topic != p.Topic || d.Kafka.Group != p.Group || d.CheckpointInterval != p.CheckpointInterval || d.ValueSketches == p.NoValueSketches || d.MaxHeldBytes != p.MaxHeldBytes {
		t.Errorf("pipeline defaults: config %+v, pipeline %+v", d, p)
	}
	if l := (pipeline.LabelConfig{}).WithDefaults(); d.Labels.Group != l.Group {
		t.Errorf("label group %q, want %q", d.Labels.Group, l.Group)
	}
	if d.Labels.Threshold != performance.DefaultThreshold {
		t.Errorf("threshold %v, want %v", d.Labels.Threshold, performance.DefaultThreshold)
	}
	if got, want := d.gatewayHandlerConfig(), (gateway.Config{}).WithDefaults(); got.MaxBodyBytes != want.MaxBodyBytes || got.MaxItems != want.MaxItems ||
		got.MaxFeatures != want.MaxFeatures || got.RetryAfter != want.RetryAfter {
		t.Errorf("gateway defaults %+v, want gateway's %+v", got, want)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	// A Config does not share the table's slices.
	d.Kafka.Brokers[0] = "changed:1"
	if defaultConfig().Kafka.Brokers[0] == "changed:1" {
		t.Error("defaultConfig shares the brokers slice of the table")
	}
}

// TestConfigDefaultsFile: the example file of docs/CONFIG.md decodes
// strictly into the defaults.
func TestConfigDefaultsFile(t *testing.T) {
	var c Config
	if err := decodeConfig([]byte(defaultsYAML()), &c); err != nil {
		t.Fatalf("%v\n%s", err, defaultsYAML())
	}
	d := defaultConfig()
	for _, o := range options {
		if o.yaml == "" {
			continue
		}
		if got, want := formatValue(o.field(&c)), formatValue(o.field(&d)); got != want {
			t.Errorf("%s = %q, want %q", o.yaml, got, want)
		}
	}
}

// TestConfigValidateReportsEveryProblem: Validate joins every problem.
func TestConfigValidateReportsEveryProblem(t *testing.T) {
	_, err := resolveWith(t, nil, "--config", writeFile(t, `
kafka: {partitions: 0}
window: {size: 10ms}
labels: {threshold: 2}
log: {format: xml, level: loud}
`))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{"kafka.partitions must be at least 1", "window size 10ms is below 1s", "labels.threshold 2 must be in (0, 1)", `log.format "xml"`, "log.level"}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != len(want) {
		t.Errorf("error has %d lines, want %d (one per problem):\n%v", lines, len(want), err)
	}
}

// TestConfigDecodeStrict: what the table-driven decoder rejects, and where.
func TestConfigDecodeStrict(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"key set twice", "kafka:\n  topic: a\n  topic: b\n", "line 3: kafka.topic set twice (first on line 2)"},
		{"section set twice", "kafka: {topic: a}\nkafka: {group: b}\n", "line 2: kafka set twice"},
		{"section not a mapping", "kafka: [a, b]\n", "line 1: kafka must be a mapping of keys (one of brokers, topic, partitions, group, dead_letter_topic)"},
		{"top level not a mapping", "- a\n", "the top level must be a mapping"},
		{"unknown key names the known ones", "window:\n  sise: 1m\n", "line 2: field sise not found in window (known: size, allowed_lateness)"},
		{"option where a section is", "window: 1m\n", "window must be a mapping"},
		{"section where an option is", "kafka:\n  topic: {name: x}\n", "line 2: kafka.topic"},
		{"unknown override key", "drift:\n  overrides:\n    - {feature: a, methd: psi}\n", "line 2: drift.overrides: field methd not found"},
		{"merge key", "base: &b {topic: x}\nkafka:\n  <<: *b\n", "field base not found"},
		{"merge key in a section", "kafka:\n  <<: {topic: x}\n", "no merge keys"},
		{"wrong type", "kafka: {partitions: many}\n", "line 1: kafka.partitions"},
		{"flag-only option", "config: other.yaml\n", "field config not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultConfig()
			err := decodeConfig([]byte(tt.yaml), &c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	// What it accepts: nulls change nothing, aliases resolve, lists replace.
	c := defaultConfig()
	if err := decodeConfig([]byte("kafka:\nwindow: &w {size: 2m}\nsegment_keys: [a, b]\nlog: {level: ~}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Kafka.Topic != pipeline.DefaultTopic || c.Window.Size != 2*time.Minute || !slices.Equal(c.SegmentKeys, []string{"a", "b"}) || c.Log.Level != "info" {
		t.Errorf("decoded %+v", c)
	}
}
