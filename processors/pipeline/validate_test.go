package pipeline

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/processors/window"
)

// TestValidateReportsEveryProblem: Config and LabelConfig join every
// problem, one line each, not only the first.
func TestValidateReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"processor", Config{Topic: "t", DeadLetterTopic: "t", CheckpointInterval: time.Millisecond, SegmentKeys: []string{""},
			Window: window.Config{Size: 10 * time.Millisecond}}.WithDefaults().Validate(),
			[]string{"no Kafka brokers", `dead-letter topic "t" must differ`, "checkpoint interval 1ms is below 10ms", "an empty segment key", "window: invalid window config: window size 10ms"}},
		{"labels", LabelConfig{Topic: "l", DeadLetterTopic: "l", FlushInterval: time.Microsecond}.WithDefaults().Validate(),
			[]string{"no Kafka brokers", `label dead-letter topic "l" must differ`, "label flush interval 1µs is below 1ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error")
			}
			msg := tt.err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			if n := strings.Count(msg, "\n") + 1; n != len(tt.want) {
				t.Errorf("%d lines, want %d:\n%s", n, len(tt.want), msg)
			}
		})
	}
}
