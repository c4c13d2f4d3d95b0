package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/processors/window"
)

func dedupPartition(t testing.TB) *partition {
	t.Helper()
	cfg := Config{Brokers: []string{"unused:9092"}, Window: window.Config{Size: time.Minute, AllowedLateness: 30 * time.Second}, DedupEventIDs: true}.WithDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return newPartition(cfg, Source{Group: "g", Topic: "t", Partition: 0}, &Counters{}, zerolog.Nop())
}

func TestDedupStateRoundTrip(t *testing.T) {
	prod := newProducerSequences(8)
	prod.observe(pid(1), 5)
	ids := newEventIDSets()
	w1 := stats.Key{Model: "fraud", ModelVersion: "v1", WindowStart: 60_000}
	w2 := stats.Key{Model: "churn", ModelVersion: "", WindowStart: -120_000}
	for _, id := range []string{"a", "b", "c"} {
		ids.seen(w1, id)
	}
	ids.seen(w2, "a")
	enc := appendDedupState(nil, prod, ids, func(stats.Key) bool { return false })
	if enc[0] != dedupStateVersion {
		t.Fatalf("version byte %d", enc[0])
	}
	gotProd, gotIDs, err := decodeDedupState(enc, 8)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotProd.appendBinary(nil), prod.appendBinary(nil)) {
		t.Fatal("producer sequences differ after the round trip")
	}
	if gotIDs.held != 4 || len(gotIDs.byWindow[w1]) != 3 || len(gotIDs.byWindow[w2]) != 1 {
		t.Fatalf("decoded %d ids: %v", gotIDs.held, gotIDs.byWindow)
	}
	if dup, _ := gotIDs.seen(w1, "b"); !dup {
		t.Fatal("id b of window 1 forgotten")
	}
	if dup, _ := gotIDs.seen(w2, "b"); dup {
		t.Fatal("id b is of window 1 only")
	}
	// Deterministic: the same state encodes to the same bytes.
	if again := appendDedupState(nil, prod, ids, func(stats.Key) bool { return false }); !bytes.Equal(again, enc) {
		t.Fatal("encoding is not deterministic")
	}
	// Skipped windows are left out; without windows it is the producers' encoding.
	if got := appendDedupState(nil, prod, ids, func(stats.Key) bool { return true }); !bytes.Equal(got, prod.appendBinary(nil)) {
		t.Fatalf("with every window skipped: %x", got)
	}
	one := appendDedupState(nil, prod, ids, func(k stats.Key) bool { return k == w2 })
	if _, got, err := decodeDedupState(one, 8); err != nil || got.held != 3 || got.byWindow[w2] != nil {
		t.Fatalf("with window 2 skipped: %v, %v", err, got)
	}
	// Rejected bytes.
	for name, b := range map[string][]byte{
		"truncated":      enc[:len(enc)-1],
		"trailing":       append(append([]byte(nil), enc...), 0),
		"no windows":     {dedupStateVersion, 0, 0},
		"bad producers":  {dedupStateVersion, 1, 9, 1},
		"producers long": {dedupStateVersion, 9, 1},
	} {
		if _, _, err := decodeDedupState(b, 8); !errors.Is(err, errBadProducerSequences) {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

func FuzzDecodeDedupState(f *testing.F) {
	prod := newProducerSequences(8)
	prod.observe(pid(1), 5)
	ids := newEventIDSets()
	ids.seen(stats.Key{Model: "m", ModelVersion: "1", WindowStart: 0}, "e1")
	f.Add(appendDedupState(nil, prod, ids, func(stats.Key) bool { return false }))
	f.Add(prod.appendBinary(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		prod, ids, err := decodeDedupState(b, 4)
		if err != nil {
			return
		}
		if ids.held > MaxDedupEventIDs || prod.len() > 4 {
			t.Fatalf("%d ids, %d producers", ids.held, prod.len())
		}
		enc := appendDedupState(nil, prod, ids, func(stats.Key) bool { return false })
		prod2, ids2, err := decodeDedupState(enc, 4)
		if err != nil || !bytes.Equal(appendDedupState(nil, prod2, ids2, func(stats.Key) bool { return false }), enc) {
			t.Fatalf("re-decoding the encoding: %v", err)
		}
	})
}

// TestPartitionDedupEventIDs: plain JSON messages (no SDK headers) written
// twice, and an Arrow batch repeating ids, count once with DedupEventIDs,
// also across a crash and replay; without it the copies count.
func TestPartitionDedupEventIDs(t *testing.T) {
	var once []*kafka.Message
	for i := 0; i < 24; i++ {
		once = append(once, jsonMsg(int64(i), "a", float64(i*7), float64(i)))
	}
	var stream []*kafka.Message
	copies := map[int][]int{1: {0, 1}, 10: {3, 9}, 20: {19}}
	dups := 0
	for i, m := range once {
		stream = append(stream, copyAt(m, int64(len(stream))))
		for _, c := range copies[i] {
			stream = append(stream, copyAt(once[c], int64(len(stream))))
			dups++
		}
	}
	run := func(p *partition, msgs []*kafka.Message) *store {
		db := &store{states: map[stats.Key]*stats.WindowState{}}
		for _, m := range msgs {
			p.handle(m)
		}
		cb := p.prepare()
		db.write(cb, true)
		p.done(cb)
		return db
	}
	want := summary(run(dedupPartition(t), once).states)
	p := dedupPartition(t)
	if got := summary(run(p, stream).states); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("with copies:\n got %v\nwant %v", got, want)
	}
	if n := p.counters.DuplicateEvents.Load(); n != uint64(dups) {
		t.Fatalf("DuplicateEvents = %d, want %d", n, dups)
	}
	if got := summary(run(testPartition(t), stream).states); fmt.Sprint(got) == fmt.Sprint(want) {
		t.Fatal("without DedupEventIDs the copies should count")
	}
	for crashAt := 3; crashAt < len(stream); crashAt += 4 {
		t.Run(fmt.Sprint("crash after ", crashAt), func(t *testing.T) {
			db := &store{states: map[stats.Key]*stats.WindowState{}}
			p := dedupPartition(t)
			for i, m := range stream[:min(crashAt+3, len(stream))] {
				p.handle(m)
				if i%4 == 2 {
					cb := p.prepare()
					db.write(cb, i != crashAt-1)
					p.done(cb)
				}
			}
			q := dedupPartition(t)
			if db.checkpoints > 0 {
				q.restore(db.next, db.wm, db.restore())
				q.restoreProducers(db.producers)
			}
			for _, m := range stream[max(db.next, 0):] {
				q.handle(m)
			}
			cb := q.prepare()
			db.write(cb, true)
			q.done(cb)
			if got := summary(db.states); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("after crash and replay:\n got %v\nwant %v", got, want)
			}
		})
	}
	// Closed windows' ids are dropped.
	if p.eventIDs.held >= len(once) {
		t.Fatalf("%d ids held after windows closed", p.eventIDs.held)
	}
}
