package clickhouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"syscall"
	"testing"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"zero config gets defaults", func(c *Config) { *c = Config{} }, ""},
		{"ipv6", func(c *Config) { c.Addr = "[::1]:9000" }, ""},
		{"no port", func(c *Config) { c.Addr = "localhost" }, "want host:port"},
		{"http port", func(c *Config) { c.Addr = "127.0.0.1:8123" }, "HTTP port"},
		{"bad database", func(c *Config) { c.Database = "vigil-prod" }, "bad database name"},
		{"negative dial timeout", func(c *Config) { c.DialTimeout = -1 }, "negative"},
		{"cluster", func(c *Config) { c.Cluster = "vigil_local" }, ""},
		{"bad cluster", func(c *Config) { c.Cluster = "prod cluster" }, "bad cluster name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLifecycleWithoutServer(t *testing.T) {
	s, err := New(DefaultConfig(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Windows().Checkpoint(ctx, pipeline.Source{Topic: "t"}, nil, nil, nil, 1, 1, nil); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Checkpoint before Start = %v, want ErrNotStarted", err)
	}
	if _, _, _, _, err := s.Windows().Restore(ctx, pipeline.Source{Topic: "t"}); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Restore before Start = %v, want ErrNotStarted", err)
	}
	if _, err := s.Windows().RestoreProducers(ctx, pipeline.Source{Topic: "t"}, 1); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("RestoreProducers before Start = %v, want ErrNotStarted", err)
	}
	for i := 0; i < 2; i++ {
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown #%d = %v", i+1, err)
		}
	}
	if err := s.Start(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Shutdown = %v, want ErrClosed", err)
	}
	if s.Conn() != nil {
		t.Fatal("Conn() is not nil after Shutdown")
	}
}

func TestStartUnreachable(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:1" // nothing listens on port 1
	cfg.DialTimeout = 2e9
	s, err := New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	err = s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach ClickHouse at 127.0.0.1:1") || !strings.Contains(err.Error(), "clickhouse.sh start") {
		t.Fatalf("Start = %v, want a 'cannot reach' error that says how to start ClickHouse", err)
	}
	if !IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = false, want true", err)
	}
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("insert: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("insert: %w", context.Canceled), false},
		{fmt.Errorf("insert: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("insert: %w", &ch.Exception{Code: 252, Message: "too many parts"}), true},
		{fmt.Errorf("insert: %w", &ch.Exception{Code: 62, Message: "syntax error"}), false},
		{fmt.Errorf("raw batch: %w", ErrBadInput), false},
		{ErrClosed, false},
	}
	for _, tt := range tests {
		if got := IsRetryable(tt.err); got != tt.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	var s *Sink // Classify uses no state
	for _, tt := range []struct {
		err  error
		want pipeline.Failure
	}{
		{fmt.Errorf("insert: %w", context.DeadlineExceeded), pipeline.FailureRetryable},
		{fmt.Errorf("insert: %w", syscall.ECONNREFUSED), pipeline.FailureRetryable},
		{fmt.Errorf("insert: %w", &ch.Exception{Code: 241, Message: "memory limit"}), pipeline.FailureRetryable},
		{fmt.Errorf("window x: %w: corrupt feature_states", ErrBadInput), pipeline.FailureBadData},
		{fmt.Errorf("insert: %w", &ch.Exception{Code: 60, Message: "table doesn't exist"}), pipeline.FailureBroken},
		{fmt.Errorf("insert: %w", &ch.Exception{Code: 16, Message: "no such column"}), pipeline.FailureBroken},
		{ErrClosed, pipeline.FailureBroken},
	} {
		if got := s.Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestFeatureStatesRoundTrip(t *testing.T) {
	big := catFeature()
	for i := 0; i < stats.MaxCategories+5; i++ {
		big.Cat.Add(fmt.Sprintf("v%04d", i))
	}
	tests := []struct {
		name string
		fs   map[string]*stats.FeatureState
	}{
		{"empty", map[string]*stats.FeatureState{}},
		{"numeric", map[string]*stats.FeatureState{"amount": numFeature(1, 2.5, -3, math.NaN(), math.Inf(1))}},
		{"mixed", map[string]*stats.FeatureState{
			"amount":                          numFeature(10, 20),
			"country":                         catFeature("de", "fr", "de", ""),
			"is_new":                          boolFeature(true, false, true),
			schemas.PredictionScoreFeature:    numFeature(0.1, 0.9),
			schemas.PredictionLabelFeature:    catFeature("fraud"),
			"never seen, only null (missing)": {Kind: schemas.Number, Num: stats.NumericState{Missing: 3}},
		}},
		{"full categories", map[string]*stats.FeatureState{"id": big}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendFeatureStates(nil, tt.fs)
			got, err := decodeFeatureStates(b)
			if err != nil {
				t.Fatal(err)
			}
			if again := appendFeatureStates(nil, got); string(again) != string(b) {
				t.Fatal("re-encoding the decoded states gives other bytes")
			}
			if !featuresEqual(got, tt.fs) {
				t.Fatalf("round trip changed the states:\n got %s\nwant %s", dumpFeatures(got), dumpFeatures(tt.fs))
			}
		})
	}
}

func TestDecodeFeatureStatesCorrupt(t *testing.T) {
	good := appendFeatureStates(nil, map[string]*stats.FeatureState{"a": numFeature(1), "b": catFeature("x")})
	for n := 0; n < len(good); n++ {
		if _, err := decodeFeatureStates(good[:n]); !errors.Is(err, errCorruptFeatures) {
			t.Fatalf("decode of %d/%d bytes: err = %v, want errCorruptFeatures", n, len(good), err)
		}
	}
	if _, err := decodeFeatureStates(append(good, 0)); !errors.Is(err, errCorruptFeatures) {
		t.Fatalf("trailing byte: err = %v", err)
	}
	if _, err := decodeFeatureStates([]byte{9}); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("unknown version: err = %v", err)
	}
}

func FuzzDecodeFeatureStates(f *testing.F) {
	f.Add(appendFeatureStates(nil, map[string]*stats.FeatureState{"a": numFeature(1, 2), "b": catFeature("x", "y")}))
	f.Add([]byte{1, 0})
	binned := numFeature(1, 2, -7)
	for _, v := range []float64{1, 2, -7} {
		binned.Bins.Add(v)
	}
	f.Add(appendFeatureStates(nil, map[string]*stats.FeatureState{"a": binned}))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := decodeFeatureStates(b)
		if err != nil {
			return
		}
		again, err := decodeFeatureStates(appendFeatureStates(nil, fs))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(again) != len(fs) {
			t.Fatalf("re-decode gave %d features, want %d", len(again), len(fs))
		}
	})
}

func TestCategoriesOrder(t *testing.T) {
	names, counts := categories(map[string]uint64{"b": 2, "a": 2, "c": 5, "d": 1})
	if want := []string{"c", "a", "b", "d"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}
	if want := []uint64{5, 2, 2, 1}; !reflect.DeepEqual(counts, want) {
		t.Fatalf("counts = %v, want %v", counts, want)
	}
}

// --- helpers shared with the integration tests ---

func numFeature(vs ...float64) *stats.FeatureState {
	f := &stats.FeatureState{Kind: schemas.Number}
	for _, v := range vs {
		f.Num.Add(v)
	}
	return f
}

func boolFeature(vs ...bool) *stats.FeatureState {
	f := &stats.FeatureState{Kind: schemas.Bool}
	for _, v := range vs {
		if v {
			f.Num.Add(1)
		} else {
			f.Num.Add(0)
		}
	}
	return f
}

func catFeature(vs ...string) *stats.FeatureState {
	f := &stats.FeatureState{Kind: schemas.String}
	for _, v := range vs {
		f.Cat.Add(v)
	}
	return f
}

// featuresEqual compares feature states field by field; NaN equals NaN and a
// nil category map equals an empty one.
func featuresEqual(a, b map[string]*stats.FeatureState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, fa := range a {
		fb, ok := b[k]
		if !ok || fa.Kind != fb.Kind || fa.TypeMismatch != fb.TypeMismatch {
			return false
		}
		na, nb := fa.Num, fb.Num
		if na.Count != nb.Count || na.Missing != nb.Missing || na.NaN != nb.NaN || na.Inf != nb.Inf ||
			!sameFloat(na.Sum, nb.Sum) || !sameFloat(na.M2, nb.M2) || !sameFloat(na.Min, nb.Min) || !sameFloat(na.Max, nb.Max) {
			return false
		}
		ba, _ := fa.Bins.AppendBinary(nil)
		bb, _ := fb.Bins.AppendBinary(nil)
		if !bytes.Equal(ba, bb) {
			return false
		}
		ca, cb := fa.Cat, fb.Cat
		if ca.Count != cb.Count || ca.Missing != cb.Missing || ca.Other != cb.Other || len(ca.Counts) != len(cb.Counts) {
			return false
		}
		for v, n := range ca.Counts {
			if cb.Counts[v] != n {
				return false
			}
		}
	}
	return true
}

func sameFloat(a, b float64) bool { return a == b || (a != a && b != b) }

func dumpFeatures(fs map[string]*stats.FeatureState) string {
	s := "{"
	for _, k := range sortedKeys(fs) {
		f := fs[k]
		s += fmt.Sprintf("%q: {%v num=%+v cat={n=%d miss=%d other=%d cats=%d} mismatch=%d} ", k, f.Kind, f.Num, f.Cat.Count, f.Cat.Missing, f.Cat.Other, len(f.Cat.Counts), f.TypeMismatch)
	}
	return s + "}"
}
