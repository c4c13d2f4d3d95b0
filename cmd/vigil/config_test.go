package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/processors/drift"
)

// resolveWith resolves the config of a command with the shared flags, from
// args and env, as every command does.
func resolveWith(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	// Start from no VIGIL_* variables (make test exports VIGIL_KAFKA and
	// VIGIL_CLICKHOUSE); t.Setenv restores them after the test.
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
	var got Config
	var gotErr error
	// Reuse the process command's flags on a probe command.
	probe := *app.Commands[0]
	probe.Name = "probe"
	probe.Action = func(c *cli.Context) error {
		got, gotErr = resolveConfig(c)
		return nil
	}
	app.Commands = append(app.Commands, &probe)
	app.Writer = &bytes.Buffer{}
	if err := app.Run(append([]string{"vigil", "probe"}, args...)); err != nil {
		t.Fatalf("run: %v", err)
	}
	return got, gotErr
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, `
kafka:
  brokers: [file:9092]
  topic: from-file
window:
  size: 5m
clickhouse:
  database: filedb
`)
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(c Config) string
	}{
		{"defaults", nil, nil, func(c Config) string {
			if c.Kafka.Topic != "vigil.predictions" || c.Window.Size != time.Minute || c.ClickHouse.Database != "vigil" || !c.ClickHouse.RawEvents {
				return "defaults not applied"
			}
			return ""
		}},
		{"file over defaults", nil, []string{"--config", file}, func(c Config) string {
			if c.Kafka.Topic != "from-file" || c.Window.Size != 5*time.Minute || c.Kafka.Brokers[0] != "file:9092" || c.ClickHouse.Database != "filedb" {
				return "file values not applied"
			}
			if c.Window.AllowedLateness != 30*time.Second {
				return "default lost when the file is silent"
			}
			return ""
		}},
		{"env over file", map[string]string{"VIGIL_TOPIC": "from-env", "VIGIL_KAFKA": "a:1, b:2"}, []string{"--config", file}, func(c Config) string {
			if c.Kafka.Topic != "from-env" || strings.Join(c.Kafka.Brokers, ",") != "a:1,b:2" || c.Window.Size != 5*time.Minute {
				return "env did not win over the file"
			}
			return ""
		}},
		{"flag over env", map[string]string{"VIGIL_TOPIC": "from-env"}, []string{"--config", file, "--topic", "from-flag", "--window", "10s"}, func(c Config) string {
			if c.Kafka.Topic != "from-flag" || c.Window.Size != 10*time.Second {
				return "flag did not win"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := resolveWith(t, tt.env, tt.args...)
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if msg := tt.check(c); msg != "" {
				t.Errorf("%s: %+v", msg, c)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", "kafka:\n  brokerz: [x]\n", "field brokerz not found"},
		{"unknown section", "sink: {}\n", "field sink not found"},
		{"bad duration", "window:\n  size: soon\n", "decode config"},
		{"window not whole ms", "window:\n  size: 1500us\n", "window"},
		{"bad log format", "log:\n  format: xml\n", "log.format"},
		{"http port", "clickhouse:\n  addr: 127.0.0.1:8123\n", "clickhouse"},
		{"unknown drift method", "drift:\n  overrides:\n    - {feature: amount, method: magic}\n", "unknown method \"magic\""},
		{"empty drift override", "drift:\n  overrides:\n    - {feature: amount}\n", "set a method, a positive threshold or from_reference"},
		{"from_reference with a p-value method", "drift:\n  overrides:\n    - {feature: amount, method: ks, from_reference: true}\n", "from_reference needs a distance method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolveWith(t, nil, "--config", writeFile(t, tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := resolveWith(t, nil, "--config", writeFile(t, "")); err != nil {
		t.Errorf("empty file: %v, want ok", err)
	}
}

func TestDriftOverrideFromReference(t *testing.T) {
	c, err := resolveWith(t, nil, "--config", writeFile(t, `
drift:
  overrides:
    - {feature: amount, method: jensenshannon, from_reference: true}
    - {feature: age, from_reference: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []drift.Override{
		{Feature: "amount", Method: drift.MethodJensenShannon, FromReference: true},
		{Feature: "age", FromReference: true},
	}
	if got := c.driftOptions().Overrides; !slices.Equal(got, want) {
		t.Fatalf("overrides %+v, want %+v", got, want)
	}
}

// FuzzDecodeConfig: the config decoder never panics, what it accepts either
// validates or says why not, and the file configYAML writes of it decodes
// back to the same options.
func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte("kafka:\n  brokers: [a:1]\nwindow:\n  size: 1m\n"))
	f.Add([]byte("clickhouse: {addr: 'x:9000', raw_events: false}\n"))
	f.Add([]byte("log: [1, 2]\n"))
	f.Add([]byte("checkpoint_interval: -5s\n"))
	f.Add([]byte("drift:\n  overrides:\n    - {feature: amount, method: psi, threshold: 0.2}\n"))
	f.Add([]byte("kafka: &k {topic: a}\nlabels: *k\n"))
	f.Add([]byte(defaultsYAML()))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := defaultConfig()
		if err := decodeConfig(data, &c); err != nil {
			return
		}
		if err := c.Validate(); err != nil && err.Error() == "" {
			t.Fatal("empty validation error")
		}
		text := configYAML(&c)
		back := defaultConfig()
		if err := decodeConfig([]byte(text), &back); err != nil {
			t.Fatalf("decode the encoded config: %v\n%s", err, text)
		}
		for _, o := range options {
			if o.yaml == "" {
				continue
			}
			a, b := o.field(&c), o.field(&back)
			va, vb := reflect.ValueOf(a).Elem().Interface(), reflect.ValueOf(b).Elem().Interface()
			if fmt.Sprintf("%#v", va) != fmt.Sprintf("%#v", vb) && !(isEmptyList(a) && isEmptyList(b)) {
				t.Fatalf("%s: decoded %#v, after a round trip %#v\n%s", o.yaml, va, vb, text)
			}
		}
	})
}

// isEmptyList: a nil and an empty list are the same setting.
func isEmptyList(p any) bool {
	v := reflect.ValueOf(p).Elem()
	return v.Kind() == reflect.Slice && v.Len() == 0
}
