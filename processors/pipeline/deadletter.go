package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
)

// Headers of a truncated dead letter: a dead letter that the dead-letter
// topic would not take whole (larger than its max.message.bytes, or refused
// with another permanent produce error). Its value is the first
// HeaderKeptBytes bytes of the original value; the other headers of a dead
// letter (HeaderError, the source topic, partition and offset) are kept, so
// the whole message can still be read from the source topic until its
// retention removes it.
const (
	HeaderTruncated      = "vigil-truncated"       // why the dead letter was truncated
	HeaderOriginalSize   = "vigil-original-size"   // bytes of the original value, decimal
	HeaderOriginalSHA256 = "vigil-original-sha256" // SHA-256 of the original value, hex
	HeaderKeptBytes      = "vigil-kept-bytes"      // bytes of the original value kept, decimal
)

// Limits of dead letters.
const (
	// defaultMaxMessageBytes is Kafka's default max.message.bytes, assumed
	// when the dead-letter topic's cannot be read.
	defaultMaxMessageBytes = 1048588
	// batchMargin is left free below the dead-letter topic's limit in the
	// writer's batches, for the record batch framing.
	batchMargin = 1 << 10
	// deadLetterMargin is left free below the dead-letter topic's limit in
	// a truncated dead letter, for its record framing (which kafka-go counts
	// against batchMargin too).
	deadLetterMargin = 16 << 10
	// maxReasonBytes caps the reason header: a decoder's error may quote input.
	maxReasonBytes = 4 << 10
)

// errDeadLetters marks the (retryable) errors of a deadLetters writer.
var errDeadLetters = errors.New("dead-letter topic")

// deadLetterCounters are the counters a deadLetters writer updates.
type deadLetterCounters struct {
	truncated *atomic.Uint64 // dead letters written truncated
	dropped   *atomic.Uint64 // dead letters not written at all
}

// deadLetters writes dead letters to one topic without ever blocking the
// partition that produced them on a permanent error: a dead letter the topic
// refuses (too large, or any other permanent produce error) is written
// truncated instead, and one that is refused even so is dropped, counted and
// logged. Retryable errors (a broker down) are returned for the caller to
// retry. Owned by one goroutine at a time.
type deadLetters struct {
	w        *kafka.Writer
	conns    *kafka.Transport // w's own, closed by Close (kafka-go's default one is never closed)
	topic    string
	maxBytes int // the topic's max.message.bytes
	log      zerolog.Logger
	counters deadLetterCounters
}

// openDeadLetters creates topic, when it does not exist, with the
// max.message.bytes of source (so that any message source accepts fits
// whole), reads the limit the topic really has (it may exist already, with
// a smaller one) and returns its writer.
func openDeadLetters(ctx context.Context, brokers []string, source, topic string, partitions int, counters deadLetterCounters, log zerolog.Logger) (*deadLetters, error) {
	log = log.With().Str("dead_letter_topic", topic).Logger()
	var configs map[string]string
	if n, err := kafkatopic.MaxMessageBytesOf(ctx, brokers, source); err == nil {
		configs = map[string]string{kafkatopic.MaxMessageBytes: strconv.Itoa(n)}
	} else {
		log.Warn().Err(err).Str("topic", source).Msg("read the input topic's max.message.bytes; a dead-letter topic created now gets the broker default, and larger dead letters are truncated")
	}
	if err := kafkatopic.EnsureWithConfig(ctx, brokers, topic, partitions, configs); err != nil {
		return nil, fmt.Errorf("create dead-letter topic %s: %w", topic, err)
	}
	limit, err := kafkatopic.MaxMessageBytesOf(ctx, brokers, topic)
	if err != nil {
		limit = defaultMaxMessageBytes
		log.Warn().Err(err).Int("assumed", limit).Msg("read the dead-letter topic's max.message.bytes")
	}
	if want := configs[kafkatopic.MaxMessageBytes]; want != "" && want != strconv.Itoa(limit) {
		log.Warn().Str("input_max_message_bytes", want).Int("max_message_bytes", limit).
			Msg("the dead-letter topic accepts smaller messages than the input topic: larger dead letters are truncated (raise its max.message.bytes with kafka-configs.sh --alter to keep them whole)")
	}
	conns := &kafka.Transport{}
	return &deadLetters{
		conns: conns,
		w: &kafka.Writer{
			Transport:    conns,
			Addr:         kafka.TCP(brokers...),
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond,
			BatchBytes:   int64(max(limit-batchMargin, 1)),
		},
		topic:    topic,
		maxBytes: limit,
		log:      log,
		counters: counters,
	}, nil
}

// Close closes the writer and its connections.
func (d *deadLetters) Close() error {
	err := d.w.Close()
	d.conns.CloseIdleConnections()
	return err
}

// fits is the largest dead letter (key, value and headers) written whole.
func (d *deadLetters) fits() int { return max(d.maxBytes-deadLetterMargin, 0) }

func messageSize(m *kafka.Message) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// write writes msgs and leaves in *msgs those not written, after an error
// worth retrying (which it returns); *msgs is empty when it returns nil.
func (d *deadLetters) write(ctx context.Context, msgs *[]kafka.Message) error {
	if len(*msgs) == 0 {
		return nil
	}
	out := make([]kafka.Message, len(*msgs))
	for i := range *msgs {
		m := &(*msgs)[i]
		if n := messageSize(m); n > d.fits() {
			out[i] = d.truncate(m, fmt.Sprintf("%d bytes exceed what topic %s takes (max.message.bytes %d)", n, d.topic, d.maxBytes), d.fits())
		} else {
			out[i] = *m
		}
	}
	err := d.w.WriteMessages(ctx, out...)
	if err == nil {
		for i := range out {
			d.counted(&out[i])
		}
		*msgs = (*msgs)[:0]
		return nil
	}
	var werrs kafka.WriteErrors
	isWriteErrors := errors.As(err, &werrs) && len(werrs) == len(out)
	if ctx.Err() != nil || (!isWriteErrors && !permanentProduce(err) && !errors.As(err, new(kafka.MessageTooLargeError))) {
		return fmt.Errorf("write %d messages to %w %s: %w", len(out), errDeadLetters, d.topic, err)
	}
	// Some messages were refused: find out which, one at a time.
	var rest []kafka.Message
	var lastErr error
	for i := range out {
		if isWriteErrors && werrs[i] == nil {
			continue
		}
		if isWriteErrors && !permanentProduce(werrs[i]) {
			rest, lastErr = append(rest, (*msgs)[i]), werrs[i]
			continue
		}
		if err := d.writeOne(ctx, &(*msgs)[i], &out[i]); err != nil {
			rest, lastErr = append(rest, (*msgs)[i]), err
		}
	}
	*msgs = append((*msgs)[:0], rest...)
	if lastErr != nil {
		return fmt.Errorf("write %d messages to %w %s: %w", len(rest), errDeadLetters, d.topic, lastErr)
	}
	return nil
}

// writeOne writes one dead letter, sent (orig, or its truncation), and on
// a permanent refusal its truncation, then its headers alone; if even
// those are refused it drops it. It returns only errors worth retrying.
func (d *deadLetters) writeOne(ctx context.Context, orig, sent *kafka.Message) error {
	err := d.w.WriteMessages(ctx, *sent)
	if err == nil {
		d.counted(sent)
	}
	if err == nil || !permanentProduce(err) {
		return err
	}
	for _, keep := range []int{d.fits() / 2, 0} {
		t := d.truncate(orig, fmt.Sprintf("topic %s refused it: %v", d.topic, err), keep)
		if err = d.w.WriteMessages(ctx, t); err == nil {
			d.counted(&t)
			return nil
		}
		if !permanentProduce(err) {
			return err
		}
	}
	d.counters.dropped.Add(1)
	d.log.Error().Err(err).Str("source_topic", header(orig, HeaderSourceTopic)).Str("source_partition", header(orig, HeaderSourcePartition)).
		Str("source_offset", header(orig, HeaderSourceOffset)).Int("bytes", len(orig.Value)).
		Msg("dead letter dropped: the dead-letter topic refuses it even truncated; the message is still in its source topic at that offset until retention removes it (check the dead-letter topic's configuration)")
	return nil
}

// counted counts and logs a written dead letter t if it is truncated.
func (d *deadLetters) counted(t *kafka.Message) {
	if header(t, HeaderTruncated) == "" {
		return
	}
	d.counters.truncated.Add(1)
	d.log.Warn().Str("source_topic", header(t, HeaderSourceTopic)).Str("source_partition", header(t, HeaderSourcePartition)).
		Str("source_offset", header(t, HeaderSourceOffset)).Str("original_size", header(t, HeaderOriginalSize)).
		Str("kept_bytes", header(t, HeaderKeptBytes)).Str("why", header(t, HeaderTruncated)).
		Msg("dead letter truncated: its headers name the source offset, size and SHA-256 of the whole message")
}

// truncate returns m with its value cut so that the whole message is at
// most limit bytes, and the truncation headers. m's own headers are kept
// unless they leave no room, then only the dead-letter headers are.
func (d *deadLetters) truncate(m *kafka.Message, why string, limit int) kafka.Message {
	sum := sha256.Sum256(m.Value)
	own := make([]kafka.Header, 0, len(m.Headers)+4)
	vigil := make([]kafka.Header, 0, 8)
	for _, h := range m.Headers {
		switch h.Key {
		case HeaderError, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset:
			if h.Key == HeaderError && len(h.Value) > maxReasonBytes {
				h.Value = h.Value[:maxReasonBytes]
			}
			vigil = append(vigil, h)
		default:
			own = append(own, h)
		}
	}
	if len(why) > maxReasonBytes {
		why = why[:maxReasonBytes]
	}
	t := kafka.Message{Topic: m.Topic, Key: m.Key}
	t.Headers = append(own, vigil...)
	if messageSize(&t) > limit/2 {
		t.Headers, t.Key = vigil, nil
	}
	t.Headers = append(t.Headers,
		kafka.Header{Key: HeaderTruncated, Value: []byte(why)},
		kafka.Header{Key: HeaderOriginalSize, Value: []byte(strconv.Itoa(len(m.Value)))},
		kafka.Header{Key: HeaderOriginalSHA256, Value: []byte(hex.EncodeToString(sum[:]))},
		kafka.Header{Key: HeaderKeptBytes, Value: []byte("0000000000")}, // placeholder: the size does not change
	)
	keep := min(max(limit-messageSize(&t), 0), len(m.Value))
	t.Headers[len(t.Headers)-1].Value = []byte(strconv.Itoa(keep))
	t.Value = m.Value[:keep]
	return t
}
