package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/schemas/wire"
)

// ErrInvalidOption wraps every reason NewProducer rejects its options for.
var ErrInvalidOption = errors.New("invalid producer option")

// FullPolicy is what Record does when the producer's buffer is full.
type FullPolicy uint8

const (
	// DropWhenFull makes Record drop the event at once, count it in
	// Stats.Dropped and return ErrBufferFull. The serving path never waits.
	DropWhenFull FullPolicy = iota
	// BlockWhenFull makes Record wait for room for at most WithBlockTimeout
	// (or until its ctx is done, or the producer closes), then drop, count and
	// return ErrBufferFull as DropWhenFull does.
	BlockWhenFull
)

func (p FullPolicy) String() string {
	switch p {
	case DropWhenFull:
		return "drop"
	case BlockWhenFull:
		return "block"
	}
	return fmt.Sprintf("FullPolicy(%d)", uint8(p))
}

// Option configures a Producer. Each option's doc comment names the default
// it overrides.
type Option func(*config)

type config struct {
	encoding        string
	labelTopic      string // "" until NewProducer resolves the default
	maxBuffered     int
	maxLabels       int
	batchSize       int
	linger          time.Duration
	fullPolicy      FullPolicy
	blockTimeout    time.Duration
	log             zerolog.Logger
	compression     wire.Compression
	requiredAcks    kafka.RequiredAcks
	maxInFlight     int
	writeAttempts   int
	writeTimeout    time.Duration
	maxMessageBytes int
	onDrop          func(n int64)
}

// Defaults of the options.
const (
	DefaultMaxBufferedEvents = 100000
	DefaultMaxBufferedLabels = 10000
	DefaultBatchSize         = 1000
	DefaultLinger            = 100 * time.Millisecond
	DefaultBlockTimeout      = 5 * time.Millisecond
	DefaultMaxInFlight       = 16
	DefaultWriteAttempts     = 10
	DefaultWriteTimeout      = 10 * time.Second
	DefaultMaxMessageBytes   = 1 << 20 // kafka-go's and (about) Kafka's message.max.bytes
)

func defaultConfig() config {
	return config{
		encoding:        wire.EncodingArrow,
		maxBuffered:     DefaultMaxBufferedEvents,
		maxLabels:       DefaultMaxBufferedLabels,
		batchSize:       DefaultBatchSize,
		linger:          DefaultLinger,
		fullPolicy:      DropWhenFull,
		blockTimeout:    DefaultBlockTimeout,
		log:             zerolog.Nop(),
		compression:     wire.CompressionZSTD,
		requiredAcks:    kafka.RequireAll,
		maxInFlight:     DefaultMaxInFlight,
		writeAttempts:   DefaultWriteAttempts,
		writeTimeout:    DefaultWriteTimeout,
		maxMessageBytes: DefaultMaxMessageBytes,
	}
}

func (c *config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
	}
	if c.encoding != wire.EncodingArrow && c.encoding != wire.EncodingJSON {
		bad("encoding %q (want %q or %q)", c.encoding, wire.EncodingArrow, wire.EncodingJSON)
	}
	if c.maxBuffered < 1 {
		bad("max buffered events %d (want >= 1)", c.maxBuffered)
	}
	if c.maxLabels < 1 {
		bad("max buffered labels %d (want >= 1)", c.maxLabels)
	}
	if c.batchSize < 1 {
		bad("batch size %d (want >= 1)", c.batchSize)
	}
	if c.linger <= 0 {
		bad("linger %v (want > 0)", c.linger)
	}
	if c.fullPolicy != DropWhenFull && c.fullPolicy != BlockWhenFull {
		bad("full policy %v", c.fullPolicy)
	}
	if c.blockTimeout <= 0 {
		bad("block timeout %v (want > 0)", c.blockTimeout)
	}
	switch c.requiredAcks {
	case kafka.RequireNone, kafka.RequireOne, kafka.RequireAll:
	default:
		bad("required acks %d (want -1, 0 or 1)", c.requiredAcks)
	}
	if c.maxInFlight < 1 {
		bad("max in-flight batches %d (want >= 1)", c.maxInFlight)
	}
	if c.writeAttempts < 1 {
		bad("write attempts %d (want >= 1)", c.writeAttempts)
	}
	if c.writeTimeout <= 0 {
		bad("write timeout %v (want > 0)", c.writeTimeout)
	}
	if c.maxMessageBytes < minMessageBytes {
		bad("max message bytes %d (want >= %d)", c.maxMessageBytes, minMessageBytes)
	}
	return errors.Join(errs...)
}

// minMessageBytes keeps room for one JSON event of maximal names.
const minMessageBytes = 16 << 10

// WithEncoding sets the wire encoding of events and labels: wire.EncodingArrow
// (one compressed Arrow IPC record batch of one model per Kafka message) or
// wire.EncodingJSON (one event or label per message). Default
// wire.EncodingArrow.
func WithEncoding(enc string) Option { return func(c *config) { c.encoding = enc } }

// WithMaxBufferedEvents bounds the events Record can queue before the batching
// goroutine takes them; beyond it the full policy applies. The queue holds
// events by value (about 200 bytes each, plus what their slices point to) and
// is allocated once by NewProducer. Default 100000.
func WithMaxBufferedEvents(n int) Option { return func(c *config) { c.maxBuffered = n } }

// WithMaxBufferedLabels bounds the labels RecordLabel can queue before the
// batching goroutine takes them; beyond it the full policy applies, as for
// events. The queue holds labels by value (about 100 bytes each, plus their
// strings) and is allocated once by NewProducer. Default 10000.
func WithMaxBufferedLabels(n int) Option { return func(c *config) { c.maxLabels = n } }

// WithLabelTopic sets the topic RecordLabel publishes labels to. It must
// differ from the events topic and exist (see EnsureTopic). Default
// "<topic>.labels", where topic is NewProducer's (see DefaultLabelTopic).
func WithLabelTopic(topic string) Option { return func(c *config) { c.labelTopic = topic } }

// WithBatchSize sets how many events (or labels) of one model are sealed into
// one Kafka message (Arrow) or into one writer batch (JSON). Default 1000.
func WithBatchSize(n int) Option { return func(c *config) { c.batchSize = n } }

// WithLinger bounds how long an event waits in its model's buffer before the
// buffer is sealed and sent even if it is not full. Default 100ms.
func WithLinger(d time.Duration) Option { return func(c *config) { c.linger = d } }

// WithFullPolicy chooses what Record does when the buffer is full. Default
// DropWhenFull.
func WithFullPolicy(p FullPolicy) Option { return func(c *config) { c.fullPolicy = p } }

// WithBlockTimeout bounds how long Record waits for room under BlockWhenFull.
// Default 5ms.
func WithBlockTimeout(d time.Duration) Option { return func(c *config) { c.blockTimeout = d } }

// WithLogger sets the logger. The producer logs counts and errors, never event
// contents. Default zerolog.Nop().
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.log = l } }

// WithCompression sets the body compression of Arrow IPC messages; with JSON
// encoding it sets Kafka's compression of message batches (zstd, lz4 or
// none). Default wire.CompressionZSTD.
func WithCompression(comp wire.Compression) Option {
	return func(c *config) { c.compression = comp }
}

// WithRequiredAcks sets the acknowledgements Kafka must give before a write
// counts as sent. Default kafka.RequireAll.
func WithRequiredAcks(acks kafka.RequiredAcks) Option {
	return func(c *config) { c.requiredAcks = acks }
}

// WithMaxInFlight bounds the sealed batches that are encoded and waiting for,
// or being written by, the sender. When they are all taken the batching
// goroutine waits, the buffer fills and the full policy applies. Default 16.
func WithMaxInFlight(n int) Option { return func(c *config) { c.maxInFlight = n } }

// WithWriteAttempts sets how many times a Kafka write is attempted before its
// events count as Failed. Default 10.
func WithWriteAttempts(n int) Option { return func(c *config) { c.writeAttempts = n } }

// WithWriteTimeout bounds one produce request to Kafka. Default 10s.
func WithWriteTimeout(d time.Duration) Option { return func(c *config) { c.writeTimeout = d } }

// WithMaxMessageBytes bounds the size of one Kafka message; an Arrow batch
// that encodes larger is split in halves until it fits. Keep it at or below
// the topic's max.message.bytes. Default 1 MiB.
func WithMaxMessageBytes(n int) Option { return func(c *config) { c.maxMessageBytes = n } }

// WithOnDrop sets a function called with the running total of dropped events
// each time Record drops one. It runs on the caller's goroutine inside Record
// and must be fast. Default none.
func WithOnDrop(f func(totalDropped int64)) Option { return func(c *config) { c.onDrop = f } }
