package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// The label consumer's readiness follows what its fetches say: joining
// until a generation begins or a message comes, failing from a fetch error
// until a message, a new generation or error-free fetches show the reader
// healthy again. The reader's Stats (which reset kafka-go's counters) are
// asked only while the state is in doubt.
func TestLabelReadiness(t *testing.T) {
	broken := errors.New("kafka: unknown topic or partition")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type fetch struct {
		err   error
		stats kafka.ReaderStats
	}
	deadline := func(st kafka.ReaderStats) fetch { return fetch{err: context.DeadlineExceeded, stats: st} }
	message := fetch{}
	failed := fetch{err: broken}
	ready := "member of consumer group g, reading topic t"
	tests := []struct {
		name       string
		start      bool
		stop       bool
		fetches    []fetch
		want       string // detail when ready, else the error's text (a prefix)
		wantReady  bool
		statsCalls int
	}{
		{name: "not started", want: "label consumer not started"},
		{name: "started, no generation yet", start: true, fetches: []fetch{deadline(kafka.ReaderStats{}), deadline(kafka.ReaderStats{Fetches: 2})},
			want: "joining consumer group g (topic t)", statsCalls: 2},
		{name: "a generation began", start: true, fetches: []fetch{deadline(kafka.ReaderStats{}), deadline(kafka.ReaderStats{Rebalances: 1})},
			want: ready, wantReady: true, statsCalls: 2},
		{name: "a message came", start: true, fetches: []fetch{message, deadline(kafka.ReaderStats{}), deadline(kafka.ReaderStats{})},
			want: ready, wantReady: true, statsCalls: 0},
		{name: "fetches fail", start: true, fetches: []fetch{message, failed, deadline(kafka.ReaderStats{Errors: 1, Fetches: 1}), failed},
			want: "fetching labels from topic t fails (2 times since 2026-03-01T12:00:01Z): kafka: unknown topic or partition", statsCalls: 1},
		{name: "fails before it ever joined", start: true, fetches: []fetch{failed},
			want: "fetching labels from topic t fails (1 times since 2026-03-01T12:00:00Z)", statsCalls: 0},
		{name: "error-free fetches after a failure", start: true, fetches: []fetch{message, failed, deadline(kafka.ReaderStats{Fetches: 3})},
			want: ready, wantReady: true, statsCalls: 1},
		{name: "a new generation after a failure", start: true, fetches: []fetch{message, failed, deadline(kafka.ReaderStats{Rebalances: 1, Errors: 2})},
			want: ready, wantReady: true, statsCalls: 1},
		{name: "a message after a failure", start: true, fetches: []fetch{failed, failed, message},
			want: ready, wantReady: true, statsCalls: 0},
		{name: "stopped", start: true, stop: true, fetches: []fetch{message}, want: "label consumer stopped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &LabelConsumer{cfg: LabelConfig{Group: "g", Topic: "t"}}
			c.state.started, c.state.stopped = tt.start, tt.stop
			calls := 0
			for i, f := range tt.fetches {
				c.state.fetched(f.err, t0.Add(time.Duration(i)*time.Second), func() kafka.ReaderStats { calls++; return f.stats })
			}
			detail, err := c.Ready(context.Background())
			switch {
			case tt.wantReady && (err != nil || detail != tt.want):
				t.Errorf("Ready = %q, %v; want %q", detail, err, tt.want)
			case !tt.wantReady && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("Ready = %q, %v; want the error %q", detail, err, tt.want)
			}
			if calls != tt.statsCalls {
				t.Errorf("Stats asked %d times, want %d", calls, tt.statsCalls)
			}
		})
	}
}
