package app

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// syncBuffer collects the log lines of the stack's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// stages returns "started X" and "stopped X" for each stage line logged, in order.
func (s *syncBuffer) stages(t *testing.T) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var l struct{ Stage, Message string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if l.Stage != "" {
			out = append(out, l.Message+" "+l.Stage)
		}
	}
	return out
}

func testConfig(t *testing.T, brokers string) Config {
	t.Helper()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic := "vigil-app-" + suffix
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(`
receivers:
  - {name: hook, type: alertmanager, url: http://127.0.0.1:1/hook}
rules:
  - {name: Silent, metric: event_count, no_data: 5m, receivers: [hook]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	db := "vigil_app_" + suffix
	t.Cleanup(func() {
		sink, err := clickhouse.New(clickhouse.Config{Addr: testenv.ClickHouse(t), Database: db, User: "default"}, zerolog.Nop())
		if err == nil && sink.Start(context.Background()) == nil {
			_ = sink.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
			_ = sink.Shutdown(context.Background())
		}
	})
	return Config{
		Sink: clickhouse.Config{Addr: testenv.ClickHouse(t), Database: db, User: "default"},
		Processor: pipeline.Config{Brokers: []string{brokers}, Topic: topic, Group: topic,
			Window: window.Config{Size: time.Minute, AllowedLateness: 30 * time.Second}},
		Partitions:  2,
		Labels:      pipeline.LabelConfig{Brokers: []string{brokers}, Topic: topic + ".labels", Group: topic + "-labels", Partitions: 2},
		Drift:       DriftConfig{Interval: time.Minute, Lookback: time.Hour},
		Performance: PerformanceConfig{Interval: 30 * time.Second, Job: performance.JobConfig{Window: time.Minute, Horizon: time.Hour, Threshold: 0.5}},
		Alerts:      AlertsConfig{Rules: rules, Interval: 15 * time.Second},
	}
}

// The stack on the real Kafka and ClickHouse starts its stages in the
// documented order and stops them in reverse; a stage that fails to start
// (here the topic, on a broker that is not there) stops what started.
func TestStackOrder(t *testing.T) {
	kafka := testenv.Kafka(t)
	tests := []struct {
		name    string
		brokers string
		wantErr string
		want    []string
	}{
		{name: "in order, then reverse", brokers: kafka, want: []string{
			"started clickhouse sink", "started topic", "started processor", "started label consumer",
			"started drift job", "started performance job", "started alert runner", "started alert loop",
			"stopped alert loop", "stopped alert runner", "stopped performance job", "stopped drift job",
			"stopped label consumer", "stopped processor", "stopped topic", "stopped clickhouse sink",
		}},
		{name: "a failed start stops what started", brokers: "127.0.0.1:1", wantErr: "start topic: ", want: []string{
			"started clickhouse sink", "stopped clickhouse sink",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var logs syncBuffer
			a, err := Start(ctx, testConfig(t, tt.brokers), zerolog.New(&logs))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("start: %v, want an error with %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if err := a.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if got := logs.stages(t); strings.Join(got, ", ") != strings.Join(tt.want, ", ") {
				t.Errorf("stages:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}
