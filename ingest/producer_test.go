package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

func TestNewProducerRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name    string
		brokers []string
		topic   string
		opts    []Option
		wantErr string
	}{
		{"no brokers", nil, "t", nil, "invalid producer option: no brokers"},
		{"no topic", []string{"x:1"}, "", nil, "invalid producer option: empty topic"},
		{"encoding", []string{"x:1"}, "t", []Option{WithEncoding("avro")}, `invalid producer option: encoding "avro" (want "arrow" or "json")`},
		{"buffer", []string{"x:1"}, "t", []Option{WithMaxBufferedEvents(0)}, "invalid producer option: max buffered events 0 (want >= 1)"},
		{"batch", []string{"x:1"}, "t", []Option{WithBatchSize(-1)}, "invalid producer option: batch size -1 (want >= 1)"},
		{"linger", []string{"x:1"}, "t", []Option{WithLinger(0)}, "invalid producer option: linger 0s (want > 0)"},
		{"policy", []string{"x:1"}, "t", []Option{WithFullPolicy(7)}, "invalid producer option: full policy FullPolicy(7)"},
		{"block", []string{"x:1"}, "t", []Option{WithBlockTimeout(-time.Second)}, "invalid producer option: block timeout -1s (want > 0)"},
		{"acks", []string{"x:1"}, "t", []Option{WithRequiredAcks(2)}, "invalid producer option: required acks 2 (want -1, 0 or 1)"},
		{"in flight", []string{"x:1"}, "t", []Option{WithMaxInFlight(0)}, "invalid producer option: max in-flight batches 0 (want >= 1)"},
		{"attempts", []string{"x:1"}, "t", []Option{WithWriteAttempts(0)}, "invalid producer option: write attempts 0 (want >= 1)"},
		{"write timeout", []string{"x:1"}, "t", []Option{WithWriteTimeout(0)}, "invalid producer option: write timeout 0s (want > 0)"},
		{"message bytes", []string{"x:1"}, "t", []Option{WithMaxMessageBytes(100)}, "invalid producer option: max message bytes 100 (want >= 16384)"},
		{"two at once", []string{"x:1"}, "t", []Option{WithBatchSize(0), WithLinger(-1)},
			"invalid producer option: batch size 0 (want >= 1)\ninvalid producer option: linger -1ns (want > 0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewProducer(tt.brokers, tt.topic, tt.opts...)
			if p != nil {
				t.Fatal("got a producer, want nil")
			}
			if !errors.Is(err, ErrInvalidOption) || err.Error() != tt.wantErr {
				t.Fatalf("err = %q, want %q wrapping ErrInvalidOption", err, tt.wantErr)
			}
		})
	}
}

func TestArrowBatchesPerModel(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c.ListenAddrs(), testTopic, WithBatchSize(100), WithLinger(time.Hour))
	ctx := context.Background()
	models := []string{"fraud", "churn", "ranker"}
	const perModel = 250
	for i := range perModel { // interleaved, as a serving fleet would record them
		for _, m := range models {
			if err := p.Record(ctx, testEvent(m, i)); err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got, want := p.Stats(), (Stats{Recorded: 750, Sent: 750}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}

	msgs := consume(t, c.ListenAddrs(), testTopic, len(models)*perModel)
	sizes := map[string][]int{}
	for _, m := range msgs {
		sizes[m.Key] = append(sizes[m.Key], len(m.Rows))
		want := map[string]string{wire.HeaderEncoding: "arrow", wire.HeaderSchemaVersion: "1",
			wire.HeaderProducer: p.ID(), wire.HeaderSequence: m.Headers[wire.HeaderSequence]}
		if fmt.Sprint(m.Headers) != fmt.Sprint(want) {
			t.Fatalf("headers = %v, want %v", m.Headers, want)
		}
	}
	checkSequences(t, msgs, p.ID())
	byModel := rowsByModel(t, msgs)
	for _, m := range models {
		// Two batches sealed by size, the rest by Flush.
		if want := []int{100, 100, 50}; !slices.Equal(sizes[m], want) {
			t.Errorf("model %s: message sizes %v, want %v", m, sizes[m], want)
		}
		if d := diffRows(byModel[m], wantRows(m, 0, perModel)); d != "" {
			t.Errorf("model %s: %s", m, d)
		}
	}
}

func TestJSONOneMessagePerEvent(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c.ListenAddrs(), testTopic, WithEncoding(wire.EncodingJSON), WithBatchSize(8))
	ctx := context.Background()
	var sent []schemas.Event
	for i := range 20 {
		for _, m := range []string{"fraud", "churn"} {
			e := testEvent(m, i)
			sent = append(sent, e)
			if err := p.Record(ctx, e); err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	msgs := consume(t, c.ListenAddrs(), testTopic, len(sent))
	if len(msgs) != len(sent) {
		t.Fatalf("%d messages, want %d", len(msgs), len(sent))
	}
	got := map[string]schemas.Event{}
	for _, m := range msgs {
		if len(m.Events) != 1 || m.Headers[wire.HeaderEncoding] != "json" || m.Headers[wire.HeaderSchemaVersion] != "1" {
			t.Fatalf("message %d/%d: %d events, headers %v", m.Partition, m.Offset, len(m.Events), m.Headers)
		}
		got[m.Events[0].ID] = m.Events[0]
	}
	checkSequences(t, msgs, p.ID())
	for _, want := range sent {
		if d := eventDiff(got[want.ID], want); d != "" {
			t.Errorf("event %s: %s", want.ID, d)
		}
	}
	byModel := rowsByModel(t, msgs)
	for _, m := range []string{"fraud", "churn"} {
		if d := diffRows(byModel[m], wantRows(m, 0, 20)); d != "" {
			t.Errorf("model %s order: %s", m, d)
		}
	}
}

// checkSequences checks the idempotence headers of msgs, every message one
// producer wrote: its id, and sequences 1..len(msgs), each once, increasing
// in every partition.
func checkSequences(t *testing.T, msgs []message, id string) {
	t.Helper()
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("producer id %q, want 32 hex digits", id)
	}
	seen := map[uint64]bool{}
	last := map[int32]uint64{}
	byOffset := slices.Clone(msgs)
	slices.SortFunc(byOffset, func(a, b message) int { return cmp.Compare(a.Offset, b.Offset) })
	for _, m := range byOffset {
		if m.Headers[wire.HeaderProducer] != id {
			t.Fatalf("message %d/%d: producer %q, want %q", m.Partition, m.Offset, m.Headers[wire.HeaderProducer], id)
		}
		seq, err := strconv.ParseUint(m.Headers[wire.HeaderSequence], 10, 64)
		if err != nil || seq < 1 || seq > uint64(len(msgs)) || seen[seq] || seq <= last[m.Partition] {
			t.Fatalf("message %d/%d: sequence %q (%v), after %d in its partition", m.Partition, m.Offset, m.Headers[wire.HeaderSequence], err, last[m.Partition])
		}
		seen[seq], last[m.Partition] = true, seq
	}
}

// eventDiff compares a decoded event with the one recorded.
func eventDiff(got, want schemas.Event) string {
	if !got.Time.Equal(want.Time) {
		return fmt.Sprintf("time %v, want %v", got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
		return fmt.Sprintf("\n got %s\nwant %s", g, w)
	}
	return ""
}

func TestLingerSealsPartialBatch(t *testing.T) {
	c := newCluster(t)
	const linger = 40 * time.Millisecond
	p := newTestProducer(t, c.ListenAddrs(), testTopic, WithLinger(linger))
	record := func(model string, from, to int) {
		for i := from; i < to; i++ {
			if err := p.Record(context.Background(), testEvent(model, i)); err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
	}
	start := time.Now()
	record("fraud", 0, 5)
	time.Sleep(linger / 2)
	record("churn", 0, 3) // its buffer opens later and is sealed later
	waitFor(t, "5 fraud events sent", func() bool { return p.Stats().Sent >= 5 })
	if took := time.Since(start); took < linger {
		t.Fatalf("sent after %v, before the linger of %v", took, linger)
	}
	waitFor(t, "8 events sent", func() bool { return p.Stats().Sent == 8 })
	msgs := consume(t, c.ListenAddrs(), testTopic, 8)
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	byModel := rowsByModel(t, msgs)
	if d := diffRows(byModel["fraud"], wantRows("fraud", 0, 5)); d != "" {
		t.Fatal(d)
	}
	if d := diffRows(byModel["churn"], wantRows("churn", 0, 3)); d != "" {
		t.Fatal(d)
	}
}

func TestManyModelsBoundHeldEvents(t *testing.T) {
	c := newCluster(t)
	// Model buffers may hold at most 10 events in all: the 11th to 15th
	// models' first events seal the 5 oldest buffers.
	p := newTestProducer(t, c.ListenAddrs(), testTopic, WithMaxBufferedEvents(10), WithBatchSize(100), WithLinger(time.Hour))
	for m := range 15 {
		if err := p.Record(context.Background(), testEvent(fmt.Sprintf("m%02d", m), 0)); err != nil {
			t.Fatalf("Record: %v", err)
		}
		waitFor(t, "the batcher to take the event", func() bool { return len(p.events) == 0 })
	}
	waitFor(t, "5 events sent", func() bool { return p.Stats().Sent == 5 })
	time.Sleep(50 * time.Millisecond)
	if got, want := p.Stats(), (Stats{Recorded: 15, Sent: 5, Buffered: 10}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	byModel := rowsByModel(t, consume(t, c.ListenAddrs(), testTopic, 15))
	if len(byModel) != 15 {
		t.Fatalf("%d models, want 15", len(byModel))
	}
}

func TestFlushIsExact(t *testing.T) {
	for _, enc := range []string{wire.EncodingArrow, wire.EncodingJSON} {
		t.Run(enc, func(t *testing.T) {
			c := newCluster(t)
			p := newTestProducer(t, c.ListenAddrs(), testTopic, WithEncoding(enc), WithLinger(time.Hour), WithBatchSize(64))
			ctx := context.Background()
			total := 0
			for round := range 5 {
				for i := range 37 * (round + 1) {
					if err := p.Record(ctx, testEvent(fmt.Sprintf("m%d", i%4), total)); err != nil {
						t.Fatalf("Record: %v", err)
					}
					total++
				}
				if err := p.Flush(ctx); err != nil {
					t.Fatalf("Flush: %v", err)
				}
				want := Stats{Recorded: int64(total), Sent: int64(total)}
				if got := p.Stats(); got != want {
					t.Fatalf("round %d: Stats after Flush = %+v, want %+v", round, got, want)
				}
			}
		})
	}
}

func TestConcurrentRecordFlushClose(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c.ListenAddrs(), testTopic, WithBatchSize(50), WithLinger(5*time.Millisecond))
	ctx := context.Background()
	const writers, perWriter = 4, 500
	done := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range perWriter {
				if err := p.Record(ctx, testEvent(fmt.Sprintf("m%d", w), i)); err != nil {
					done <- err
					return
				}
				if i%100 == 0 {
					if err := p.Flush(ctx); err != nil {
						done <- err
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := Stats{Recorded: writers * perWriter, Sent: writers * perWriter}
	if got := p.Stats(); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	byModel := rowsByModel(t, consume(t, c.ListenAddrs(), testTopic, writers*perWriter))
	for w := range writers {
		m := fmt.Sprintf("m%d", w)
		if d := diffRows(byModel[m], wantRows(m, 0, perWriter)); d != "" {
			t.Errorf("model %s: %s", m, d)
		}
	}
}

func TestCloseIsIdempotentAndRefusesAfter(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c.ListenAddrs(), testTopic)
	ctx := context.Background()
	for i := range 10 {
		if err := p.Record(ctx, testEvent("fraud", i)); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	for i := range 3 {
		if err := p.Close(ctx); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if err := p.Record(ctx, testEvent("fraud", 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v, want ErrClosed", err)
	}
	if err := p.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v, want ErrClosed", err)
	}
	if got, want := p.Stats(), (Stats{Recorded: 10, Sent: 10, Dropped: 1}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	// The first Close's result stands.
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close after a refused Record: %v", err)
	}
	consume(t, c.ListenAddrs(), testTopic, 10)
}

func TestInvalidEventsAreRejectedAndCounted(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c.ListenAddrs(), testTopic)
	tests := []struct {
		name    string
		edit    func(*schemas.Event)
		wantErr string
	}{
		{"no id", func(e *schemas.Event) { e.ID = "" }, "invalid event: missing event id"},
		{"no model", func(e *schemas.Event) { e.Model = "" }, "invalid event: missing model"},
		{"no time", func(e *schemas.Event) { e.Time = time.Time{} }, "invalid event: missing event time"},
		{"no prediction", func(e *schemas.Event) { e.Prediction = schemas.Prediction{} }, "invalid event: missing prediction"},
		{"bad feature", func(e *schemas.Event) { e.Features[0].Name = "" }, "invalid event: feature 0: bad name"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEvent("fraud", i)
			tt.edit(&e)
			err := p.Record(context.Background(), e)
			if !errors.Is(err, schemas.ErrInvalidEvent) || err.Error() != tt.wantErr {
				t.Fatalf("Record = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if err := p.Record(context.Background(), testEvent("fraud", 99)); err != nil {
		t.Fatalf("Record of a valid event: %v", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := p.Stats(), (Stats{Recorded: 1, Sent: 1, Invalid: int64(len(tests))}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

// blockProduce makes c hold every produce request until the returned release
// is called; entered receives a value each time a produce request arrives.
func blockProduce(t *testing.T, c *kfake.Cluster) (entered <-chan struct{}, release func()) {
	t.Helper()
	ch := make(chan struct{}, 1000)
	unblock := make(chan struct{})
	var once atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		select {
		case ch <- struct{}{}:
		default:
		}
		c.SleepControl(func() { <-unblock })
		return nil, nil, false
	})
	release = func() {
		if once.CompareAndSwap(false, true) {
			close(unblock)
		}
	}
	t.Cleanup(release)
	return ch, release
}

// fillUp records events 0..6 of model "fraud" into a producer built with
// stalledOptions whose produce requests are blocked: event 0 is in the
// sender's write, event 1 waits in the sender's input, event 2 is held by the
// batcher, events 3-6 fill the queue. The next Record finds it full.
func fillUp(t *testing.T, p *Producer, entered <-chan struct{}) {
	t.Helper()
	ctx := context.Background()
	record := func(i int) {
		t.Helper()
		if err := p.Record(ctx, testEvent("fraud", i)); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
	record(0)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no produce request reached kfake")
	}
	record(1)
	record(2)
	waitFor(t, "the batcher to take events 1 and 2", func() bool { return len(p.events) == 0 })
	for i := 3; i < 7; i++ {
		record(i)
	}
}

func stalledOptions(extra ...Option) []Option {
	return append([]Option{WithMaxBufferedEvents(4), WithBatchSize(1), WithMaxInFlight(2), WithLinger(time.Hour)}, extra...)
}

func TestDropWhenFull(t *testing.T) {
	c := newCluster(t)
	entered, release := blockProduce(t, c)
	var onDrop []int64
	p := newTestProducer(t, c.ListenAddrs(), testTopic, stalledOptions(WithOnDrop(func(n int64) { onDrop = append(onDrop, n) }))...)
	fillUp(t, p, entered)
	ctx := context.Background()
	for i := 7; i < 20; i++ {
		start := time.Now()
		if err := p.Record(ctx, testEvent("fraud", i)); err != ErrBufferFull {
			t.Fatalf("Record %d = %v, want ErrBufferFull", i, err)
		}
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Fatalf("dropping Record took %v", took)
		}
	}
	if got, want := p.Stats(), (Stats{Recorded: 7, Dropped: 13, Buffered: 7}); got != want {
		t.Fatalf("Stats while stalled = %+v, want %+v", got, want)
	}
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}; !slices.Equal(onDrop, want) {
		t.Fatalf("OnDrop calls %v, want %v", onDrop, want)
	}
	release()
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	err := p.Close(ctx)
	var loss *LossError
	if !errors.As(err, &loss) || *loss != (LossError{Dropped: 13}) {
		t.Fatalf("Close = %v, want LossError{Dropped: 13}", err)
	}
	if got, want := err.Error(), "ingest: 13 events not delivered (dropped 13, failed 0, unsent 0)"; got != want {
		t.Fatalf("Close error %q, want %q", got, want)
	}
	byModel := rowsByModel(t, consume(t, c.ListenAddrs(), testTopic, 7))
	if d := diffRows(byModel["fraud"], wantRows("fraud", 0, 7)); d != "" {
		t.Fatal(d)
	}
}

func TestBlockWhenFull(t *testing.T) {
	const blockTimeout = 40 * time.Millisecond
	c := newCluster(t)
	entered, release := blockProduce(t, c)
	p := newTestProducer(t, c.ListenAddrs(), testTopic, stalledOptions(WithFullPolicy(BlockWhenFull), WithBlockTimeout(blockTimeout))...)
	fillUp(t, p, entered)

	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		err := p.Record(context.Background(), testEvent("fraud", 7))
		took := time.Since(start)
		if err != ErrBufferFull {
			t.Fatalf("Record = %v, want ErrBufferFull", err)
		}
		if took < blockTimeout || took > blockTimeout+500*time.Millisecond {
			t.Fatalf("Record blocked %v, want about %v", took, blockTimeout)
		}
	})
	t.Run("ctx", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		err := p.Record(ctx, testEvent("fraud", 8))
		if !errors.Is(err, ErrBufferFull) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Record = %v, want ErrBufferFull and DeadlineExceeded", err)
		}
	})
	t.Run("room", func(t *testing.T) {
		// Room appears while Record waits: it succeeds.
		p2 := newTestProducer(t, c.ListenAddrs(), testTopic, stalledOptions(WithFullPolicy(BlockWhenFull), WithBlockTimeout(10*time.Second))...)
		// p2's first produce request is blocked like p's; fill it the same way.
		fillUp(t, p2, entered)
		res := make(chan error, 1)
		go func() { res <- p2.Record(context.Background(), testEvent("fraud", 7)) }()
		select {
		case err := <-res:
			t.Fatalf("Record returned %v while the buffer was full", err)
		case <-time.After(50 * time.Millisecond):
		}
		release()
		select {
		case err := <-res:
			if err != nil {
				t.Fatalf("Record = %v once room appeared", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Record still blocked after room appeared")
		}
		if err := p2.Close(context.Background()); err != nil {
			t.Fatalf("Close p2: %v", err)
		}
	})
	release()
	err := p.Close(context.Background())
	var loss *LossError
	if !errors.As(err, &loss) || *loss != (LossError{Dropped: 2}) {
		t.Fatalf("Close = %v, want LossError{Dropped: 2}", err)
	}
}

func TestCloseWakesBlockedRecord(t *testing.T) {
	c := newCluster(t)
	entered, release := blockProduce(t, c)
	p := newTestProducer(t, c.ListenAddrs(), testTopic, stalledOptions(WithFullPolicy(BlockWhenFull), WithBlockTimeout(time.Minute))...)
	fillUp(t, p, entered)
	res := make(chan error, 1)
	go func() { res <- p.Record(context.Background(), testEvent("fraud", 7)) }()
	time.Sleep(20 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	select {
	case err := <-res:
		if err != ErrClosed {
			t.Fatalf("blocked Record = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake the blocked Record")
	}
	release()
	err := <-closed
	var loss *LossError
	if !errors.As(err, &loss) || *loss != (LossError{Dropped: 1}) {
		t.Fatalf("Close = %v, want LossError{Dropped: 1}", err)
	}
	if got, want := p.Stats(), (Stats{Recorded: 7, Sent: 7, Dropped: 1}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

func TestCloseDeadlineCountsUnsent(t *testing.T) {
	c := newCluster(t)
	entered, release := blockProduce(t, c)
	p := newTestProducer(t, c.ListenAddrs(), testTopic, stalledOptions()...)
	fillUp(t, p, entered)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Close(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Close took %v past its deadline", took)
	}
	var loss *LossError
	if !errors.As(err, &loss) || *loss != (LossError{Unsent: 7}) {
		t.Fatalf("Close = %v, want LossError{Unsent: 7}", err)
	}
	if got, want := p.Stats(), (Stats{Recorded: 7, Unsent: 7}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	release() // let kafka-go finish the abandoned write in the background
	select {
	case <-p.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("kafka-go writer still not closed 10s after its write was released")
	}
}

func TestWriteFailuresAreCounted(t *testing.T) {
	t.Run("unknown topic", func(t *testing.T) {
		c := newCluster(t)
		p := newTestProducer(t, c.ListenAddrs(), "no-such-topic", WithWriteAttempts(2))
		for i := range 3 {
			if err := p.Record(context.Background(), testEvent("fraud", i)); err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
		err := p.Flush(context.Background())
		var loss *LossError
		if !errors.As(err, &loss) || *loss != (LossError{Failed: 3}) {
			t.Fatalf("Flush = %v, want LossError{Failed: 3}", err)
		}
		err = p.Close(context.Background())
		if !errors.As(err, &loss) || *loss != (LossError{Failed: 3}) {
			t.Fatalf("Close = %v, want LossError{Failed: 3}", err)
		}
	})
	t.Run("rejected by broker", func(t *testing.T) {
		c := newCluster(t)
		// Reject one produce request with a permanent error (not authorized), then accept.
		c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
			preq := req.(*kmsg.ProduceRequest)
			resp := preq.ResponseKind().(*kmsg.ProduceResponse)
			for _, rt := range preq.Topics {
				st := kmsg.NewProduceResponseTopic()
				st.Topic = rt.Topic
				for _, rp := range rt.Partitions {
					sp := kmsg.NewProduceResponseTopicPartition()
					sp.Partition = rp.Partition
					sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil, true
		})
		p := newTestProducer(t, c.ListenAddrs(), testTopic, WithLinger(time.Hour))
		for i := range 5 {
			if err := p.Record(context.Background(), testEvent("fraud", i)); err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
		err := p.Flush(context.Background())
		var loss *LossError
		if !errors.As(err, &loss) || *loss != (LossError{Failed: 5}) {
			t.Fatalf("Flush = %v, want LossError{Failed: 5}", err)
		}
		for i := 5; i < 8; i++ {
			if err := p.Record(context.Background(), testEvent("fraud", i)); err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
		if err := p.Flush(context.Background()); err != nil {
			t.Fatalf("second Flush = %v, want nil", err)
		}
		if got, want := p.Stats(), (Stats{Recorded: 8, Sent: 3, Failed: 5}); got != want {
			t.Fatalf("Stats = %+v, want %+v", got, want)
		}
		byModel := rowsByModel(t, consume(t, c.ListenAddrs(), testTopic, 3))
		if d := diffRows(byModel["fraud"], wantRows("fraud", 5, 8)); d != "" {
			t.Fatal(d)
		}
	})
}

func TestLargeArrowBatchIsSplit(t *testing.T) {
	c := newCluster(t)
	const maxBytes = 64 << 10
	p := newTestProducer(t, c.ListenAddrs(), testTopic, WithMaxMessageBytes(maxBytes), WithLinger(time.Hour),
		WithCompression(wire.CompressionNone))
	big := make([]byte, 1000)
	for i := range big {
		big[i] = byte('a' + i*7%26)
	}
	const n = 300
	for i := range n {
		e := testEvent("fraud", i)
		e.Features = append(e.Features, schemas.Str("blob", fmt.Sprintf("%d-%s", i, big)))
		if err := p.Record(context.Background(), e); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	msgs := consume(t, c.ListenAddrs(), testTopic, n)
	if len(msgs) < 5 {
		t.Fatalf("%d messages for %d KB of events, want them split under %d bytes", len(msgs), n, maxBytes)
	}
	if d := diffRows(rowsByModel(t, msgs)["fraud"], wantRows("fraud", 0, n)); d != "" {
		t.Fatal(d)
	}
}

func TestEnsureTopic(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	for i := range 2 { // the second call finds it there
		if err := EnsureTopic(ctx, c.ListenAddrs(), "created", 3); err != nil {
			t.Fatalf("EnsureTopic #%d: %v", i+1, err)
		}
	}
	conn, err := kafka.DialContext(ctx, "tcp", c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions("created")
	if err != nil || len(parts) != 3 {
		t.Fatalf("ReadPartitions = %d partitions, %v; want 3", len(parts), err)
	}
	if err := EnsureTopic(ctx, nil, "x", 1); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("EnsureTopic without brokers = %v, want ErrInvalidOption", err)
	}
}

// TestVectorLengthChecked: a vector feature of another length than the
// first one the producer sent for the model, version and feature is
// refused with a clear error and counted invalid; other versions and
// features keep their own lengths, and the valid events are sent.
func TestVectorLengthChecked(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c.ListenAddrs(), testTopic)
	ctx := context.Background()
	rec := func(version string, v []float64) error {
		e := testEvent("ranker", 1)
		e.ModelVersion = version
		e.Features = append(e.Features, schemas.Vec("emb", v))
		return p.Record(ctx, e)
	}
	for _, tc := range []struct {
		version string
		v       []float64
		wantErr string
	}{
		{"1", []float64{1, 2, 3}, ""},
		{"1", []float64{4, 5, 6}, ""},
		{"1", []float64{1, 2}, `invalid event: feature "emb": vector of 2 values, this producer sent vectors of 3 for model "ranker" version "1"`},
		{"2", []float64{1, 2}, ""},
		{"1", []float64{7, 8, 9}, ""},
	} {
		err := rec(tc.version, tc.v)
		if (tc.wantErr == "" && err != nil) || (tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr || !errors.Is(err, schemas.ErrInvalidEvent))) {
			t.Errorf("version %s %v: got %v, want %q", tc.version, tc.v, err, tc.wantErr)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Stats(), (Stats{Recorded: 4, Sent: 4, Invalid: 1}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}
