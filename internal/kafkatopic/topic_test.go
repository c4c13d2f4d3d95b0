package kafkatopic

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/internal/testenv"
)

func TestIntegrationMaxMessageBytes(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	big, plain := "vigil-topic-big-"+suffix, "vigil-topic-plain-"+suffix
	if err := EnsureWithConfig(ctx, brokers, big, 1, map[string]string{MaxMessageBytes: "20971520"}); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(ctx, brokers, plain, 1); err != nil {
		t.Fatal(err)
	}
	// An existing topic keeps its own config.
	if err := EnsureWithConfig(ctx, brokers, plain, 1, map[string]string{MaxMessageBytes: "20971520"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		topic string
		want  int
	}{
		{big, 20971520},
		{plain, 1048588}, // Kafka's default
	} {
		got, err := MaxMessageBytesOf(ctx, brokers, tt.topic)
		if err != nil || got != tt.want {
			t.Errorf("MaxMessageBytesOf(%s) = %d, %v; want %d", tt.topic, got, err, tt.want)
		}
	}
	if _, err := MaxMessageBytesOf(ctx, brokers, "vigil-topic-missing-"+suffix); err == nil {
		t.Error("MaxMessageBytesOf a missing topic: no error")
	}
}
