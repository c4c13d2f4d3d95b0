package pipeline_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/pipeline"
)

// A stored window state whose bytes are garbage does not wedge the
// partition: Restore leaves it out, the processor counts it as quarantined,
// and the partition restores and consumes what comes after its checkpoint.
func TestIntegrationCorruptStoredStateIsQuarantined(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic, db, group := "vigil-corrupt-"+suffix, "vigil_corrupt_"+suffix, "g-"+suffix
	sink := testsink.Open(t, db, nil)
	if err := kafkatopic.Ensure(ctx, brokers, topic, 1); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Minute)
	batch := func(from, n int) []kafka.Message {
		var msgs []kafka.Message
		for i := from; i < from+n; i++ {
			msgs = append(msgs, jsonEvent(i, at.Add(time.Duration(i)*10*time.Millisecond)))
		}
		return msgs
	}
	run := func(wantEvents, wantQuarantined uint64) *pipeline.Processor {
		t.Helper()
		p, err := pipeline.New(pipeline.Config{Brokers: brokers, Topic: topic, Group: group, CheckpointInterval: 100 * time.Millisecond}, sink.Windows(),
			zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for p.Counters.Events.Load() < wantEvents || p.Counters.Checkpoints.Load() < 1 {
			if time.Now().After(deadline) {
				_ = p.Shutdown(ctx)
				t.Fatalf("events %d of %d, checkpoints %d, quarantined %d, write errors %d after 60s: the partition is wedged",
					p.Counters.Events.Load(), wantEvents, p.Counters.Checkpoints.Load(), p.Counters.Quarantined.Load(), p.Counters.WriteErrors.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := p.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if got := p.Counters.Events.Load(); got != wantEvents {
			t.Errorf("events = %d, want %d", got, wantEvents)
		}
		if got := p.Counters.Quarantined.Load(); got != wantQuarantined {
			t.Errorf("quarantined = %d, want %d", got, wantQuarantined)
		}
		return p
	}
	windowEvents := func() uint64 {
		t.Helper()
		var n uint64
		if err := sink.Conn().QueryRow(ctx, "SELECT sum(events) FROM "+db+".vigil_model_windows FINAL WHERE topic = ? AND segment = ''", topic).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	produce(t, brokers, topic, batch(0, 100)...)
	run(100, 0)
	if got := windowEvents(); got != 100 {
		t.Fatalf("after the first run the window counts %d events, want 100", got)
	}

	// Garbage in the state column of the stored (open) window: a newer
	// version of its row, with the same key and last offset.
	rows, err := sink.Conn().Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = 'vigil_model_windows'", db)
	if err != nil {
		t.Fatal(err)
	}
	var cols, sel []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
		if c == "feature_states" {
			c = "'garbage, not feature states' AS feature_states"
		}
		sel = append(sel, c)
	}
	rows.Close()
	if err := sink.Conn().Exec(ctx, "INSERT INTO "+db+".vigil_model_windows ("+strings.Join(cols, ", ")+") SELECT "+strings.Join(sel, ", ")+
		" FROM "+db+".vigil_model_windows FINAL WHERE topic = '"+topic+"'"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := sink.Windows().Restore(ctx, pipeline.Source{Group: group, Topic: topic, Partition: 0}); err == nil {
		t.Fatal("Restore of a garbage state: no error")
	}

	// The partition restores without the corrupt state and counts the
	// events after the checkpoint into a new state of that window, which
	// replaces the corrupt row.
	produce(t, brokers, topic, batch(100, 50)...)
	run(50, 1)
	if got := windowEvents(); got != 50 {
		t.Errorf("after the corrupt state was quarantined the window counts %d events, want the 50 after the checkpoint", got)
	}
	_, _, ok, states, err := sink.Windows().Restore(ctx, pipeline.Source{Group: group, Topic: topic, Partition: 0})
	if err != nil || !ok || len(states) != 1 || states[0].Events != 50 {
		t.Errorf("Restore after the new state was written: ok %v, %d states, err %v; want one state of 50 events", ok, len(states), err)
	}
}
