package pipeline

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testPartition(t testing.TB) *partition {
	t.Helper()
	cfg := Config{Brokers: []string{"unused:9092"}, Window: window.Config{Size: time.Minute, AllowedLateness: 30 * time.Second}}.WithDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return newPartition(cfg, Source{Group: "g", Topic: "t", Partition: 0}, &Counters{}, zerolog.Nop())
}

func jsonMsg(off int64, model string, sec float64, x float64) *kafka.Message {
	e := schemas.Event{
		ID: model + "-" + strconv.FormatInt(off, 10), Model: model, ModelVersion: "1",
		Time:       t0.Add(time.Duration(sec * float64(time.Second))),
		Features:   []schemas.Feature{schemas.Num("x", x)},
		Prediction: schemas.Score(0.5),
	}
	return &kafka.Message{Topic: "t", Offset: off, Key: []byte(model), Value: wire.AppendJSON(nil, &e)}
}

func arrowMsg(t testing.TB, off int64, model string, secs []float64, xs []float64) *kafka.Message {
	t.Helper()
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	for i := range secs {
		e := schemas.Event{
			ID: fmt.Sprintf("%s-%d-%d", model, off, i), Model: model, ModelVersion: "1",
			Time:       t0.Add(time.Duration(secs[i] * float64(time.Second))),
			Features:   []schemas.Feature{schemas.Num("x", xs[i])},
			Prediction: schemas.Score(0.5),
		}
		if err := b.Append(&e); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	data, err := wire.NewArrowEncoder(wire.CompressionZSTD).Encode(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	return &kafka.Message{Topic: "t", Offset: off, Key: []byte(model), Value: data,
		Headers: []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte(wire.EncodingArrow)}}}
}

// summary renders the numeric state of feature x per window, for comparisons.
func summary(states map[stats.Key]*stats.WindowState) map[string]string {
	out := map[string]string{}
	for k, st := range states {
		f := st.Features["x"]
		if f == nil {
			continue
		}
		out[fmt.Sprintf("%s@%d", k.Model, (k.WindowStart-t0.UnixMilli())/1000)] =
			fmt.Sprintf("n=%d sum=%g min=%g max=%g events=%d final=%v", f.Num.Count, f.Num.Sum, f.Num.Min, f.Num.Max, st.Events, st.Final)
	}
	return out
}

func TestPartitionWindowsLateAndDeadLetters(t *testing.T) {
	p := testPartition(t)
	msgs := []*kafka.Message{
		jsonMsg(0, "m", 0, 1),
		jsonMsg(1, "m", 10, 2),
		jsonMsg(2, "m", 70, 3), // window 60: watermark 40, window 0 still open
		jsonMsg(3, "m", 50, 4), // within lateness: counted in window 0
		jsonMsg(4, "m", 95, 5), // watermark 65 >= 60: window 0 closes
		jsonMsg(5, "m", 20, 6), // late
		{Topic: "t", Offset: 6, Value: []byte(`{"model": "m"`)},
		arrowMsg(t, 7, "m", []float64{100, 30, 110}, []float64{7, 8, 9}), // 30 is late
		{Topic: "t", Offset: 8, Value: []byte("x"), Headers: []kafka.Header{{Key: wire.HeaderEncoding, Value: []byte(wire.EncodingArrow)}}},
	}
	for _, m := range msgs {
		p.handle(m)
	}
	cb := p.prepare()
	got := summary(p.states)
	want := map[string]string{
		"m@0":  "n=3 sum=7 min=1 max=4 events=3 final=true",
		"m@60": "n=4 sum=24 min=3 max=9 events=4 final=false",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("states:\n got %v\nwant %v", got, want)
	}
	if len(cb.late) != 2 || cb.late[0].Offset != 5 || cb.late[1].Offset != 7 || cb.late[1].EventID != "m-7-1" {
		t.Errorf("late = %+v, want offsets 5 and 7 (event m-7-1)", cb.late)
	}
	if len(cb.dead) != 2 || header(&cb.dead[0], HeaderSourceOffset) != "6" || header(&cb.dead[1], HeaderSourceOffset) != "8" {
		t.Fatalf("dead letters = %d, want offsets 6 and 8", len(cb.dead))
	}
	for _, d := range cb.dead {
		if header(&d, HeaderError) == "" || d.Topic != p.cfg.DeadLetterTopic {
			t.Errorf("dead letter %+v lacks reason or topic", d.Headers)
		}
	}
	if cb.nextOffset != 9 || cb.watermarkMs != t0.UnixMilli()+80_000 {
		t.Errorf("next offset %d watermark %d, want 9 and %d", cb.nextOffset, cb.watermarkMs, t0.UnixMilli()+80_000)
	}
	if n := p.counters.Malformed.Load(); n != 2 {
		t.Errorf("malformed = %d, want 2", n)
	}
	p.done(cb)
	if _, ok := p.states[stats.Key{Model: "m", ModelVersion: "1", WindowStart: t0.UnixMilli()}]; ok {
		t.Error("a final window stayed in memory after its checkpoint")
	}
}

// store is an in-memory stand-in for what ClickHouse keeps: the newest
// written version of each state, and the last checkpoint.
type store struct {
	states      map[stats.Key]*stats.WindowState
	next, wm    int64
	producers   []byte
	checkpoints int
}

func (s *store) write(cb *checkpointBatch, withCheckpoint bool) {
	for _, st := range cb.states {
		c := st.Clone()
		c.Dirty = false
		s.states[st.Key] = c
	}
	if withCheckpoint {
		s.next, s.wm, s.producers = cb.nextOffset, cb.watermarkMs, cb.producers
		s.checkpoints++
	}
}

// restore returns what Sink.Restore returns: open states and those written
// after the checkpoint.
func (s *store) restore() []*stats.WindowState {
	var out []*stats.WindowState
	for _, st := range s.states {
		if !st.Final || st.LastOffset >= s.next {
			out = append(out, st.Clone())
		}
	}
	return out
}

// TestPartitionCrashReplay is the delivery guarantee at unit level: a crash
// after writing states but before the checkpoint row, then a replay from the
// previous checkpoint, gives exactly the states of a run without a crash.
func TestPartitionCrashReplay(t *testing.T) {
	var msgs []*kafka.Message
	for i := 0; i < 40; i++ {
		sec := float64(i * 7)
		if i%9 == 8 {
			sec -= 100 // some late, some within lateness
		}
		if i%4 == 0 {
			msgs = append(msgs, arrowMsg(t, int64(i), "a", []float64{sec, sec + 1}, []float64{float64(i), float64(i) / 2}))
		} else {
			msgs = append(msgs, jsonMsg(int64(i), "a", sec, float64(i)))
		}
	}
	// Reference: no crash, a checkpoint every 5 messages.
	ref := &store{states: map[stats.Key]*stats.WindowState{}}
	p := testPartition(t)
	for i, m := range msgs {
		p.handle(m)
		if i%5 == 4 {
			cb := p.prepare()
			ref.write(cb, true)
			p.done(cb)
		}
	}
	for crashAt := 5; crashAt < len(msgs); crashAt += 5 {
		t.Run(fmt.Sprint("crash after ", crashAt), func(t *testing.T) {
			db := &store{states: map[stats.Key]*stats.WindowState{}}
			p := testPartition(t)
			for i, m := range msgs[:crashAt+3] {
				p.handle(m)
				if i%5 == 4 {
					cb := p.prepare()
					// The last checkpoint before crashAt writes its states, then
					// the process dies before writing the checkpoint row.
					db.write(cb, i != crashAt-1)
					p.done(cb)
				}
			}
			// Restart: restore and replay from the checkpoint.
			q := testPartition(t)
			if db.checkpoints > 0 { // as Sink.Restore's ok
				q.restore(db.next, db.wm, db.restore())
			}
			for _, m := range msgs[db.next:] {
				q.handle(m)
			}
			cb := q.prepare()
			db.write(cb, true)
			q.done(cb)
			if got, want := summary(db.states), summary(ref.states); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("after crash and replay:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Brokers: []string{"b:9092"}}, true},
		{"no brokers", Config{}, false},
		{"dlq is input", Config{Brokers: []string{"b"}, Topic: "x", DeadLetterTopic: "x"}, false},
		{"tiny checkpoint", Config{Brokers: []string{"b"}, CheckpointInterval: time.Millisecond}, false},
		{"bad window", Config{Brokers: []string{"b"}, Window: window.Config{Size: 1500 * time.Microsecond}}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.WithDefaults().Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestPartitionSegments: states per segment value beside the state of all
// events, capped at MaxSegmentValues values per window.
func TestPartitionSegments(t *testing.T) {
	p := testPartition(t)
	p.cfg.SegmentKeys = []string{"shop"}
	n := 2 * (MaxSegmentValues + 5) // 105 shops
	for i := 0; i < n; i++ {
		e := schemas.Event{
			ID: strconv.Itoa(i), Model: "m", ModelVersion: "1", Time: t0.Add(time.Duration(i) * time.Millisecond),
			Features: []schemas.Feature{schemas.Num("x", float64(i))}, Prediction: schemas.Score(0.5),
		}
		if i%2 == 0 { // odd events carry no shop: in no segment
			e.Segments = []schemas.Tag{{Key: "shop", Value: "s" + strconv.Itoa(i/2)}}
		}
		p.handle(&kafka.Message{Offset: int64(i), Value: wire.AppendJSON(nil, &e)})
	}
	p.prepare()
	base := stats.Key{Model: "m", ModelVersion: "1", WindowStart: t0.UnixMilli()}
	if st := p.states[base]; st == nil || st.Events != uint64(n) {
		t.Fatalf("all-events state: %+v, want %d events", st, n)
	}
	segs, inSegments := 0, uint64(0)
	for k, st := range p.states {
		if k.Segment != "" {
			segs++
			inSegments += st.Events
		}
	}
	tagged := uint64((n + 1) / 2)
	other := p.states[stats.Key{Model: "m", ModelVersion: "1", Segment: "shop=" + OtherSegment, WindowStart: t0.UnixMilli()}]
	if segs != MaxSegmentValues+1 || inSegments != tagged || other == nil || other.Events != tagged-MaxSegmentValues {
		t.Errorf("%d segment states holding %d events (other: %+v); want %d states, %d events, %d in other",
			segs, inSegments, other, MaxSegmentValues+1, tagged, tagged-MaxSegmentValues)
	}
	// One fold of the JSON rows: every state it touched includes offsets up to the last.
	if s0 := p.states[stats.Key{Model: "m", ModelVersion: "1", Segment: "shop=s0", WindowStart: t0.UnixMilli()}]; s0 == nil || s0.Events != 1 || s0.Features["x"].Num.Sum != 0 || s0.LastOffset != int64(n-1) {
		t.Errorf("shop=s0: %+v, want the one event x=0, last offset %d", s0, n-1)
	}
}
