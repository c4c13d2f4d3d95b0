package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas/wire"
)

func pid(b byte) producerID { return producerID{15: b} }

// observation is one message of a producer and whether it must be a duplicate.
type observation struct {
	id  byte
	seq uint64
	dup bool
}

func TestProducerSequencesObserve(t *testing.T) {
	tests := []struct {
		name string
		max  int
		obs  []observation
	}{
		{"in order", 8, []observation{{1, 1, false}, {1, 2, false}, {1, 3, false}, {1, 10, false}}},
		{"a retried batch right after itself", 8, []observation{
			{1, 1, false}, {1, 2, false}, {1, 3, false}, {1, 1, true}, {1, 2, true}, {1, 3, true}, {1, 4, false}}},
		{"a retry of an older message after newer ones", 8, []observation{
			{1, 5, false}, {1, 9, false}, {1, 12, false}, {1, 9, true}, {1, 5, true}, {1, 13, false}}},
		{"out of order within the window counts once", 8, []observation{
			{1, 10, false}, {1, 7, false}, {1, 8, false}, {1, 7, true}, {1, 8, true}, {1, 9, false}, {1, 9, true}, {1, 10, true}}},
		{"the window edge: 64 below is remembered, 65 below taken as a retry", 8, []observation{
			{1, 100, false}, {1, 36, false}, {1, 36, true}, {1, 35, true}}},
		{"a jump of exactly 64 keeps the old high", 8, []observation{
			{1, 1, false}, {1, 65, false}, {1, 1, true}, {1, 2, false}}},
		{"a jump beyond the window forgets the bits", 8, []observation{
			{1, 1, false}, {1, 3, false}, {1, 200, false}, {1, 199, false}, {1, 3, true}}},
		{"producers are independent", 8, []observation{
			{1, 1, false}, {2, 1, false}, {2, 2, false}, {1, 2, false}, {1, 1, true}, {2, 1, true}}},
		{"eviction forgets the least recently seen producer", 2, []observation{
			{1, 1, false}, {2, 1, false}, {1, 2, false}, // 2 is now the least recent
			{3, 1, false},              // forgets 2
			{1, 2, true}, {3, 1, true}, // 1 and 3 remembered; 1 is now the least recent
			{2, 1, false}, // 2 was forgotten: counted again; forgets 1
			{1, 1, false}, // and so on
			{2, 1, true},
		}},
		{"sequence 0 and the largest sequence", 8, []observation{
			{1, 0, false}, {1, 0, true}, {1, 1<<64 - 1, false}, {1, 1<<64 - 1, true}, {1, 1<<64 - 2, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newProducerSequences(tt.max)
			for i, o := range tt.obs {
				if got := s.observe(pid(o.id), o.seq); got != o.dup {
					t.Fatalf("observation %d (producer %d, sequence %d): duplicate %v, want %v", i, o.id, o.seq, got, o.dup)
				}
				if s.len() > tt.max {
					t.Fatalf("observation %d: %d producers remembered, max %d", i, s.len(), tt.max)
				}
			}
		})
	}
}

// Decoding an encoding gives a state that answers every question as the
// original does, recency order included.
func TestProducerSequencesRoundTrip(t *testing.T) {
	s := newProducerSequences(3)
	for _, o := range []observation{{1, 10, false}, {2, 5, false}, {1, 7, false}, {3, 1 << 40, false}, {2, 6, false}} {
		s.observe(pid(o.id), o.seq)
	}
	enc := s.appendBinary([]byte("prefix"))
	if !bytes.HasPrefix(enc, []byte("prefix")) {
		t.Fatal("appendBinary dropped dst")
	}
	enc = enc[len("prefix"):]
	// version, count, 3 x (16 + uvarint + 8)
	if want := 1 + 1 + 3*(16+8) + 1 + 1 + 6; len(enc) != want {
		t.Fatalf("encoding is %d bytes, want %d", len(enc), want)
	}
	d, err := decodeProducerSequences(enc, 3)
	if err != nil {
		t.Fatal(err)
	}
	if again := d.appendBinary(nil); !bytes.Equal(again, enc) {
		t.Fatalf("re-encoding differs:\n%x\n%x", again, enc)
	}
	check := func(s *producerSequences) []bool {
		var out []bool
		for _, o := range []observation{{1, 7, true}, {1, 8, false}, {1, 10, true}, {2, 6, true}, {3, 1 << 40, true}, {4, 1, false}, {1, 9, false}} {
			out = append(out, s.observe(pid(o.id), o.seq))
		}
		// Producer 4 forgot 1, the least recent; 1 came back and forgot 2.
		return append(out, s.observe(pid(3), 1<<40), s.observe(pid(2), 6))
	}
	want := []bool{true, false, true, true, true, false, false, true, false}
	if got := check(s); !equalBools(got, want) {
		t.Fatalf("original state answers %v, want %v", got, want)
	}
	if got := check(d); !equalBools(got, want) {
		t.Fatalf("decoded state answers %v, want %v", got, want)
	}

	// Empty state: no bytes, and no bytes decode to an empty state.
	if b := newProducerSequences(3).appendBinary(nil); len(b) != 0 {
		t.Fatalf("empty state encodes as %x", b)
	}
	if d, err := decodeProducerSequences(nil, 3); err != nil || d.len() != 0 {
		t.Fatalf("decode nothing: %v, %d producers", err, d.len())
	}
	// A stored state larger than the bound keeps the most recent producers.
	d, err = decodeProducerSequences(enc, 2)
	if err != nil || d.len() != 2 || d.byID[pid(1)] != nil {
		t.Fatalf("decode with a smaller bound: %v, %d producers, producer 1 kept: %v", err, d.len(), d.byID[pid(1)] != nil)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDecodeProducerSequencesRejects(t *testing.T) {
	s := newProducerSequences(8)
	s.observe(pid(1), 3)
	s.observe(pid(2), 4)
	good := s.appendBinary(nil)
	twice := append([]byte{producerSequencesVersion, 2}, good[2:2+25]...)
	twice = append(twice, good[2:2+25]...)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"version", append([]byte{2}, good[1:]...), "version 2"},
		{"no count", []byte{producerSequencesVersion}, "bad count"},
		{"zero producers", []byte{producerSequencesVersion, 0}, "0 producers"},
		{"count beyond the bytes", append([]byte{producerSequencesVersion, 3}, good[2:]...), "3 producers"},
		{"fewer bytes than producers", good[:len(good)-1], "2 producers in 49 bytes"},
		{"truncated", append(append([]byte{producerSequencesVersion, 1}, make([]byte, 16)...), bytes.Repeat([]byte{0x80}, 9)...), "truncated"},
		{"trailing bytes", append(append([]byte(nil), good...), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "bytes after the last producer"},
		{"a producer twice", twice, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeProducerSequences(tt.b, 8)
			if !errors.Is(err, errBadProducerSequences) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// The decoder reads stored bytes: whatever they are, it returns an error or
// a bounded state that encodes back to what it read.
func FuzzDecodeProducerSequences(f *testing.F) {
	s := newProducerSequences(8)
	for i := range 5 {
		s.observe(pid(byte(i)), uint64(i*1000))
		s.observe(pid(byte(i)), uint64(i*1000-3))
	}
	f.Add(s.appendBinary(nil))
	f.Add([]byte{})
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeProducerSequences(b, 4)
		if err != nil {
			return
		}
		if d.len() > 4 {
			t.Fatalf("%d producers decoded, bound 4", d.len())
		}
		n := 0
		for p := d.newest; p != nil; p = p.next {
			n++
		}
		if n != d.len() {
			t.Fatalf("recency list has %d producers, map %d", n, d.len())
		}
		enc := d.appendBinary(nil)
		d2, err := decodeProducerSequences(enc, 4)
		if err != nil || !bytes.Equal(d2.appendBinary(nil), enc) {
			t.Fatalf("re-decoding the encoding: %v", err)
		}
	})
}

func TestProducerHeaders(t *testing.T) {
	id := strings.Repeat("0f", 16)
	want := producerID{0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f}
	tests := []struct {
		name    string
		headers map[string]string
		seq     uint64
		ok      bool
	}{
		{"sdk", map[string]string{wire.HeaderProducer: id, wire.HeaderSequence: "42"}, 42, true},
		{"largest sequence", map[string]string{wire.HeaderProducer: id, wire.HeaderSequence: "18446744073709551615"}, 1<<64 - 1, true},
		{"none", map[string]string{wire.HeaderEncoding: "json"}, 0, false},
		{"no sequence", map[string]string{wire.HeaderProducer: id}, 0, false},
		{"no producer", map[string]string{wire.HeaderSequence: "1"}, 0, false},
		{"short id", map[string]string{wire.HeaderProducer: id[2:], wire.HeaderSequence: "1"}, 0, false},
		{"not hex", map[string]string{wire.HeaderProducer: strings.Repeat("zz", 16), wire.HeaderSequence: "1"}, 0, false},
		{"sequence overflows", map[string]string{wire.HeaderProducer: id, wire.HeaderSequence: "18446744073709551616"}, 0, false},
		{"sequence not decimal", map[string]string{wire.HeaderProducer: id, wire.HeaderSequence: "-1"}, 0, false},
		{"empty sequence", map[string]string{wire.HeaderProducer: id, wire.HeaderSequence: ""}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := &kafka.Message{}
			for k, v := range tt.headers {
				msg.Headers = append(msg.Headers, kafka.Header{Key: k, Value: []byte(v)})
			}
			got, seq, ok := producerHeaders(msg)
			if ok != tt.ok || seq != tt.seq || (ok && got != want) {
				t.Fatalf("producerHeaders = %x, %d, %v; want ok %v, sequence %d", got, seq, ok, tt.ok, tt.seq)
			}
		})
	}
}

// sdkMsg is m as the SDK writes it: with producer id and sequence headers.
func sdkMsg(m *kafka.Message, producer string, seq int) *kafka.Message {
	c := *m
	c.Headers = append(append([]kafka.Header(nil), m.Headers...),
		kafka.Header{Key: wire.HeaderProducer, Value: []byte(producer)},
		kafka.Header{Key: wire.HeaderSequence, Value: []byte(strconv.Itoa(seq))})
	return &c
}

// copyAt is a producer retry: msg written again at offset off.
func copyAt(m *kafka.Message, off int64) *kafka.Message {
	c := *m
	c.Offset = off
	return &c
}

// TestPartitionProducerRetries: SDK messages written twice (a retried batch
// right after itself, and older messages after newer ones, some of them
// late) count once, also when the processor crashes between the copies and
// replays from its checkpoint; a copy without the SDK headers counts twice.
func TestPartitionProducerRetries(t *testing.T) {
	producer := strings.Repeat("ab", 16)
	var once []*kafka.Message // every message once: the reference
	for i := 0; i < 30; i++ {
		sec := float64(i * 7)
		if i%9 == 8 {
			sec -= 100
		}
		var m *kafka.Message
		if i%4 == 0 {
			m = arrowMsg(t, int64(i), "a", []float64{sec, sec + 1}, []float64{float64(i), float64(i) / 2})
		} else {
			m = jsonMsg(int64(i), "a", sec, float64(i))
		}
		once = append(once, sdkMsg(m, producer, 1+2*i)) // gaps: other partitions' sequences
	}
	// The stream with copies: message i is written again after message j.
	copies := map[int][]int{2: {0, 1, 2}, 9: {8}, 17: {4, 12, 16}, 26: {17, 25}}
	var stream []*kafka.Message
	dups := 0
	for i, m := range once {
		stream = append(stream, copyAt(m, int64(len(stream))))
		for _, c := range copies[i] {
			stream = append(stream, copyAt(once[c], int64(len(stream))))
			dups++
		}
	}
	run := func(msgs []*kafka.Message) (*store, *partition) {
		db := &store{states: map[stats.Key]*stats.WindowState{}}
		p := testPartition(t)
		for _, m := range msgs {
			p.handle(m)
		}
		cb := p.prepare()
		db.write(cb, true)
		p.done(cb)
		return db, p
	}
	ref, refPart := run(once)
	want := summary(ref.states)
	got, p := run(stream)
	if fmt.Sprint(summary(got.states)) != fmt.Sprint(want) {
		t.Fatalf("with copies:\n got %v\nwant %v", summary(got.states), want)
	}
	if n := p.counters.Duplicates.Load(); n != uint64(dups) {
		t.Fatalf("Duplicates = %d, want %d", n, dups)
	}
	if got, want := p.counters.Late.Load(), refPart.counters.Late.Load(); got != want || want == 0 {
		t.Fatalf("late events %d, want %d (> 0)", got, want)
	}

	for crashAt := 3; crashAt < len(stream); crashAt += 4 {
		t.Run(fmt.Sprint("crash after ", crashAt), func(t *testing.T) {
			db := &store{states: map[stats.Key]*stats.WindowState{}}
			p := testPartition(t)
			for i, m := range stream[:min(crashAt+3, len(stream))] {
				p.handle(m)
				if i%4 == 2 {
					cb := p.prepare()
					db.write(cb, i != crashAt-1) // crash before the checkpoint row
					p.done(cb)
				}
			}
			q := testPartition(t)
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
			if fmt.Sprint(summary(db.states)) != fmt.Sprint(want) {
				t.Errorf("after crash and replay:\n got %v\nwant %v", summary(db.states), want)
			}
		})
	}

	// Without the SDK headers a copy is another message.
	plain := append(append([]*kafka.Message(nil), once[:3]...), copyAt(once[1], 3))
	plain[3].Headers = nil
	_, p = run(plain)
	if n := p.counters.Duplicates.Load(); n != 0 {
		t.Fatalf("Duplicates = %d for a copy without headers, want 0", n)
	}
	if n := p.counters.Events.Load(); n != 2+1+1+1 {
		t.Fatalf("%d events handled, want 5 (the copy without headers counted)", n)
	}
}

// A stored state that does not decode is replaced by an empty one.
func TestPartitionRestoresBadProducersEmpty(t *testing.T) {
	p := testPartition(t)
	p.restoreProducers([]byte{9, 9, 9})
	if p.producers == nil || p.producers.len() != 0 {
		t.Fatal("want an empty state")
	}
}
