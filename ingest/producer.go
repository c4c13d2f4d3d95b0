package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// ErrBufferFull is returned by Record (RecordLabel) when the event (label)
// was dropped because the producer's buffer was full (under BlockWhenFull:
// still full when the block timeout or the caller's ctx ran out). It is
// counted in Stats.Dropped. Kafka is slower than the event rate, or down.
var ErrBufferFull = errors.New("ingest: buffer full, event dropped")

// ErrClosed is returned by Record, RecordLabel and Flush once Close has been
// called. An event or label refused this way is counted in Stats.Dropped.
var ErrClosed = errors.New("ingest: producer closed")

// LossError is returned by Close when the producer lost events during its
// life, and by Flush when events recorded before it could not be delivered.
// Lost() is the sum of its counts. Labels (RecordLabel) count as events here.
type LossError struct {
	// Dropped events were refused by Record with ErrBufferFull or ErrClosed:
	// the caller was told at once. Always 0 in Flush's error.
	Dropped int64
	// Failed events were accepted but Kafka refused them after every write
	// attempt, or they could not be encoded.
	Failed int64
	// Unsent events were accepted and still held by the producer (queued,
	// batched, or in a write whose result was not known) when Close's ctx
	// expired. Some of them may still reach Kafka.
	Unsent int64
}

// Lost returns the number of events the producer did not deliver.
func (e *LossError) Lost() int64 { return e.Dropped + e.Failed + e.Unsent }

func (e *LossError) Error() string {
	return fmt.Sprintf("ingest: %d events not delivered (dropped %d, failed %d, unsent %d)",
		e.Lost(), e.Dropped, e.Failed, e.Unsent)
}

// Stats are the producer's counters since NewProducer. Every event given to
// Record, and every label given to RecordLabel, ends in exactly one of
// Invalid, Dropped, Sent, Failed or Unsent, or is still Buffered: the counts
// are of events and labels together.
type Stats struct {
	Recorded int64 // accepted by Record (returned nil)
	Sent     int64 // acknowledged by Kafka
	Dropped  int64 // refused by Record: buffer full or producer closed
	Failed   int64 // accepted, then refused by Kafka after every attempt or not encodable
	Invalid  int64 // refused by Record or RecordLabel: Validate failed
	Unsent   int64 // accepted, still held when Close's ctx expired
	Buffered int64 // accepted and held now: Recorded - Sent - Failed - Unsent
}

// closedBit marks Producer.state closed; the low bits count Record calls in
// progress, so that Close can wait until no Record can still enqueue.
const closedBit = int64(1) << 62

// pad keeps counters written by different goroutines on different cache lines.
type pad [64]byte

// Producer publishes prediction events to Kafka. See the package doc for what
// it promises.
type Producer struct {
	// Written by every Record.
	state    atomic.Int64
	_        pad
	recorded atomic.Int64
	_        pad
	// Written on the slow paths and by the producer's goroutines.
	dropped atomic.Int64
	invalid atomic.Int64
	sent    atomic.Int64
	failed  atomic.Int64
	unsent  atomic.Int64

	cfg        config
	id         []byte // wire.HeaderProducer: 32 hex digits
	topic      string
	labelTopic string
	events     chan schemas.Event
	labels     chan schemas.Label
	writer     *kafka.Writer
	transport  *kafka.Transport

	flushReqs chan *flushRequest
	closing   chan struct{} // closed first in Close: wakes blocked Records
	stop      chan struct{} // closed when no Record can enqueue any more
	abortCtx  context.Context
	abort     context.CancelFunc
	done      chan struct{} // closed when batcher and sender have returned
	closed    chan struct{} // closed when the kafka-go writer has closed, maybe after Close returned

	vectors vectorLengths // lengths of the vector features sent

	closeOnce sync.Once
	closeErr  error
}

// NewProducer returns a Producer writing events to topic, and labels to the
// label topic (WithLabelTopic, by default DefaultLabelTopic(topic)), on the
// Kafka cluster reachable through brokers, and starts its goroutines. It
// does not contact Kafka: an unreachable broker shows as write errors and
// Failed events. The topics must exist (see EnsureTopic); the label topic
// only when RecordLabel is used.
func NewProducer(brokers []string, topic string, opts ...Option) (*Producer, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if len(brokers) == 0 {
		return nil, fmt.Errorf("%w: no brokers", ErrInvalidOption)
	}
	if topic == "" {
		return nil, fmt.Errorf("%w: empty topic", ErrInvalidOption)
	}
	if cfg.labelTopic == "" {
		cfg.labelTopic = DefaultLabelTopic(topic)
	}
	if cfg.labelTopic == topic {
		return nil, fmt.Errorf("%w: label topic %q is the events topic (labels need their own topic)", ErrInvalidOption, topic)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}

	// An own transport, not kafka-go's shared default, so that Close can
	// close its connections and leave no goroutine behind.
	transport := &kafka.Transport{MetadataTopics: []string{topic, cfg.labelTopic}}
	w := &kafka.Writer{
		Transport: transport,
		Addr:      kafka.TCP(brokers...),
		// No Topic: every message names its own, events or labels.
		Balancer:    &kafka.Hash{},
		MaxAttempts: cfg.writeAttempts,
		BatchSize:   cfg.messagesPerWrite(),
		BatchBytes:  int64(cfg.maxMessageBytes),
		// The batcher already batches and the sender writes synchronously:
		// a partition batch must go out as soon as the write call has added
		// its messages, not wait for more that cannot come.
		BatchTimeout: time.Microsecond,
		WriteTimeout: cfg.writeTimeout,
		RequiredAcks: cfg.requiredAcks,
		// kafka-go's own retries; its messages name topic, partition and
		// attempt, never message contents.
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			if e := cfg.log.Warn(); e.Enabled() {
				e.Msgf("kafka-go: "+msg, args...)
			}
		}),
	}
	if cfg.encoding == wire.EncodingJSON {
		switch cfg.compression {
		case wire.CompressionZSTD:
			w.Compression = kafka.Zstd
		case wire.CompressionLZ4:
			w.Compression = kafka.Lz4
		}
	}

	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("make producer id: %w", err)
	}
	p := &Producer{
		cfg:        cfg,
		id:         hex.AppendEncode(nil, raw[:]),
		topic:      topic,
		labelTopic: cfg.labelTopic,
		events:     make(chan schemas.Event, cfg.maxBuffered),
		labels:     make(chan schemas.Label, cfg.maxLabels),
		writer:     w,
		transport:  transport,
		flushReqs:  make(chan *flushRequest),
		closing:    make(chan struct{}),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		closed:     make(chan struct{}),
	}
	p.abortCtx, p.abort = context.WithCancel(context.Background())

	out := make(chan *sealedBatch, cfg.maxInFlight-1) // plus the one being written
	b := newBatcher(p, out, memory.NewGoAllocator())
	s := newSender(p, out, b.bufs)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.run() }()
	go func() { defer wg.Done(); s.run() }()
	go func() { wg.Wait(); close(p.done) }()
	return p, nil
}

// ID returns the producer's id, random per Producer: the value of the
// wire.HeaderProducer header of every message it writes.
func (p *Producer) ID() string { return string(p.id) }

// messagesPerWrite bounds the messages the sender gives kafka-go in one call.
func (c *config) messagesPerWrite() int {
	if c.encoding == wire.EncodingJSON {
		return max(c.batchSize, 100)
	}
	return 64
}

// Record enqueues e for publishing and returns. It validates e first
// (schemas.Event.Validate) and returns the validation error, counted in
// Stats.Invalid; so is a vector feature whose length differs from the first
// vector this producer sent for the same model, version and feature
// (schemas.ErrInvalidEvent). When the buffer is full the full policy applies (see
// WithFullPolicy); ctx only bounds the wait under BlockWhenFull. Record does
// not copy e's slices: the caller must not modify them afterwards.
//
// Record is safe for concurrent use; it does not allocate for a valid event
// that fits in the buffer.
func (p *Producer) Record(ctx context.Context, e schemas.Event) error {
	if err := e.Validate(); err != nil {
		p.invalid.Add(1)
		return err
	}
	if err := p.vectors.check(&e); err != nil {
		p.invalid.Add(1)
		return err
	}
	return enqueue(p, ctx, p.events, &e)
}

// RecordLabel enqueues l, the ground truth of an earlier prediction, for
// publishing to the label topic (WithLabelTopic) and returns. It validates l
// first (schemas.Label.Validate) and returns the validation error, counted in
// Stats.Invalid; nothing else is affected. Labels have their own bounded
// queue (WithMaxBufferedLabels) under the same full policy as events (under
// BlockWhenFull it waits at most WithBlockTimeout or until ctx ends), are batched per model
// like events, encoded as WithEncoding says, keyed by model, and delivered
// with the same guarantees: Flush and Close wait for them, and Stats and
// LossError count them with the events.
//
// RecordLabel is safe for concurrent use; it does not allocate for a valid
// label that fits in the buffer.
func (p *Producer) RecordLabel(ctx context.Context, l schemas.Label) error {
	if err := l.Validate(); err != nil {
		p.invalid.Add(1)
		return err
	}
	return enqueue(p, ctx, p.labels, &l)
}

// enqueue puts a valid event or label on its queue q, or applies the full
// policy: the shared path of Record and RecordLabel.
func enqueue[T any](p *Producer, ctx context.Context, q chan<- T, v *T) error {
	if p.state.Add(1)&closedBit != 0 {
		p.state.Add(-1)
		p.countDropped()
		return ErrClosed
	}
	// Counted before the send so that Buffered never goes negative when the
	// batcher is quicker than this goroutine.
	p.recorded.Add(1)
	select {
	case q <- *v:
		p.state.Add(-1)
		return nil
	default:
	}
	return recordFull(p, ctx, q, v)
}

// recordFull is the slow path of enqueue: queue q was full.
func recordFull[T any](p *Producer, ctx context.Context, q chan<- T, v *T) error {
	err := ErrBufferFull
	if p.cfg.fullPolicy == BlockWhenFull {
		t := time.NewTimer(p.cfg.blockTimeout)
		select {
		case q <- *v:
			t.Stop()
			p.state.Add(-1)
			return nil
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			err = fmt.Errorf("%w: %w", ErrBufferFull, ctx.Err())
		case <-p.closing:
			t.Stop()
			err = ErrClosed
		}
	}
	p.recorded.Add(-1)
	p.state.Add(-1)
	p.countDropped()
	return err
}

func (p *Producer) countDropped() {
	n := p.dropped.Add(1)
	if p.cfg.onDrop != nil {
		p.cfg.onDrop(n)
	}
	if n&(n-1) == 0 { // 1, 2, 4, 8...: a trace of overload without a log line per drop
		p.cfg.log.Warn().Int64("dropped_total", n).Str("topic", p.topic).
			Msg("ingest buffer full or closed, dropping events")
	}
}

// Stats returns the producer's counters. It is safe for concurrent use; the
// counters are read one by one, so a snapshot taken while events flow may be
// off by the events in motion.
func (p *Producer) Stats() Stats {
	s := Stats{
		Sent:    p.sent.Load(),
		Failed:  p.failed.Load(),
		Unsent:  p.unsent.Load(),
		Dropped: p.dropped.Load(),
		Invalid: p.invalid.Load(),
	}
	s.Recorded = p.recorded.Load()
	s.Buffered = s.Recorded - s.Sent - s.Failed - s.Unsent
	return s
}

type flushRequest struct {
	done    chan struct{}
	aborted bool // set before done is closed: Close's ctx expired first
}

// Flush returns when every event and label recorded before the call (Record
// or RecordLabel returned nil before Flush was called) has been acknowledged
// by Kafka or counted as Failed. It returns nil when none failed and a *LossError counting the
// failed ones otherwise (events recorded concurrently with Flush may be
// counted too). When ctx ends first it returns an error wrapping ctx.Err()
// and the events keep flowing. After Close it returns ErrClosed.
//
// Flush seals every model's batch at once, so calling it often defeats
// batching. It is safe for concurrent use.
func (p *Producer) Flush(ctx context.Context) error {
	if p.state.Load()&closedBit != 0 {
		return ErrClosed
	}
	failedBefore, unsentBefore := p.failed.Load(), p.unsent.Load()
	req := &flushRequest{done: make(chan struct{})}
	select {
	case p.flushReqs <- req:
	case <-p.stop:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("flush: %d events still buffered: %w", p.Stats().Buffered, ctx.Err())
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return fmt.Errorf("flush: %d events still buffered: %w", p.Stats().Buffered, ctx.Err())
	}
	loss := LossError{Failed: p.failed.Load() - failedBefore, Unsent: p.unsent.Load() - unsentBefore}
	if req.aborted || loss.Unsent > 0 {
		return fmt.Errorf("flush: %w: %w", ErrClosed, &loss)
	}
	if loss.Failed > 0 {
		return &loss
	}
	return nil
}

// Close stops the producer: Record, RecordLabel and Flush return ErrClosed
// from now on, every event and label already recorded is written to Kafka
// (as Flush would), then the
// goroutines stop and the Kafka writer is closed. When ctx ends before that,
// the writes in progress are abandoned and the events the producer still
// holds are counted as Unsent.
//
// Close returns nil when every event given to Record, and every label given
// to RecordLabel, since NewProducer was either delivered or rejected as
// invalid. Otherwise it returns a *LossError
// with the lifetime counts of Dropped, Failed and Unsent events (the same
// numbers Stats reports). Close is idempotent: later and concurrent calls wait
// for the first one and return its result.
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() { p.closeErr = p.close(ctx) })
	return p.closeErr
}

func (p *Producer) close(ctx context.Context) error {
	start := time.Now()
	for {
		s := p.state.Load()
		if p.state.CompareAndSwap(s, s|closedBit) {
			break
		}
	}
	close(p.closing)
	// Records in progress finish within the block timeout (they were woken
	// by closing); after them nothing can enqueue and the batcher can drain.
	for p.state.Load() != closedBit {
		runtime.Gosched()
		time.Sleep(10 * time.Microsecond)
	}
	close(p.stop)

	select {
	case <-p.done:
	case <-ctx.Done():
		p.cfg.log.Warn().Err(ctx.Err()).Int64("buffered", p.Stats().Buffered).
			Msg("ingest close deadline: abandoning buffered events")
		p.abort()
		<-p.done // the goroutines return at once when aborted
	}
	p.abort()

	// kafka-go's Close waits for its partition goroutines, which may still
	// retry an abandoned write: give it what is left of ctx, then let it
	// finish in the background.
	writerClosed := make(chan error, 1)
	go func() {
		err := p.writer.Close()
		p.transport.CloseIdleConnections()
		writerClosed <- err
		close(p.closed)
	}()
	var werr error
	select {
	case werr = <-writerClosed:
	case <-ctx.Done():
	}

	s := p.Stats()
	p.cfg.log.Info().Int64("sent", s.Sent).Int64("dropped", s.Dropped).Int64("failed", s.Failed).
		Int64("unsent", s.Unsent).Int64("invalid", s.Invalid).Dur("took", time.Since(start)).
		Msg("ingest producer closed")
	if s.Buffered != 0 {
		panic(fmt.Sprintf("BUG: ingest producer closed with %d events unaccounted for", s.Buffered))
	}
	var err error
	if s.Dropped+s.Failed+s.Unsent > 0 {
		err = &LossError{Dropped: s.Dropped, Failed: s.Failed, Unsent: s.Unsent}
	}
	if werr != nil {
		err = errors.Join(err, fmt.Errorf("close kafka writer: %w", werr))
	}
	return err
}
