package ingest

import (
	"errors"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/backoff"
)

// sender is the one goroutine that writes sealed batches to Kafka, in the
// order the batcher sealed them. It writes synchronously, so the batches it
// holds plus those in its input channel are all that is in flight. It gives
// kafka-go every batch waiting at once: kafka-go writes the partitions in
// parallel and keeps each partition's messages in order.
type sender struct {
	p   *Producer
	cfg *config
	in  <-chan *sealedBatch
	w   *kafka.Writer

	pending []*sealedBatch
	msgs    []kafka.Message
	counts  []int32
	bufs    chan<- []byte
}

func newSender(p *Producer, in <-chan *sealedBatch, bufs chan<- []byte) *sender {
	return &sender{p: p, cfg: &p.cfg, in: in, w: p.writer, bufs: bufs}
}

func (s *sender) run() {
	for {
		sb, ok := <-s.in
		if !ok {
			return
		}
		s.pending = append(s.pending[:0], sb)
		n := len(sb.msgs)
		// Take what else is waiting, up to a marker or the write size.
	collect:
		for sb.flush == nil && n < s.cfg.messagesPerWrite() {
			select {
			case sb, ok = <-s.in:
				if !ok {
					break collect
				}
				s.pending = append(s.pending, sb)
				n += len(sb.msgs)
			default:
				break collect
			}
		}
		s.write()
		for i, sb := range s.pending {
			if sb.flush != nil {
				sb.flush.aborted = s.p.abortCtx.Err() != nil
				close(sb.flush.done)
			}
			if sb.buf != nil && s.p.abortCtx.Err() == nil { // abandoned writes may still read them
				select {
				case s.bufs <- sb.buf:
				default:
				}
			}
			s.pending[i] = nil
		}
		if !ok {
			return
		}
	}
}

// writeRetry is the back-off between attempts of a write kafka-go refused
// as a whole (no metadata for the topic yet, say); kafka-go retries produce
// errors itself.
var writeRetry = backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}

// write writes the messages of s.pending and counts their events as Sent,
// Failed or, when Close's ctx expired, Unsent. Events and labels are written
// by separate calls: kafka-go fails a whole call when one of its topics is
// missing, and a missing label topic must not cost events.
func (s *sender) write() {
	labels := false
	for _, sb := range s.pending {
		labels = labels || sb.topic == s.p.labelTopic
	}
	s.writeTopic(s.p.topic)
	if labels {
		s.writeTopic(s.p.labelTopic)
	}
}

// writeTopic writes the messages of s.pending to topic.
func (s *sender) writeTopic(topic string) {
	s.msgs, s.counts = s.msgs[:0], s.counts[:0]
	var total int64
	for _, sb := range s.pending {
		if sb.topic != topic {
			continue
		}
		s.msgs = append(s.msgs, sb.msgs...)
		if sb.counts != nil {
			s.counts = append(s.counts, sb.counts...)
		} else {
			for range sb.msgs {
				s.counts = append(s.counts, 1)
			}
		}
		total += sb.events
	}
	if len(s.msgs) == 0 {
		return
	}
	defer clear(s.msgs) // drop references to the message values

	if s.p.abortCtx.Err() != nil {
		s.p.unsent.Add(total)
		return
	}
	retry := backoff.New(writeRetry)
	for attempt := 1; ; attempt++ {
		err := s.w.WriteMessages(s.p.abortCtx, s.msgs...)
		if err == nil {
			s.p.sent.Add(total)
			return
		}
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) {
			s.countPartial(werrs, topic)
			return
		}
		if errors.Is(err, kafka.MessageSizeTooLarge) { // permanent: the batcher's size check missed
			attempt = s.cfg.writeAttempts
		}
		if s.p.abortCtx.Err() != nil {
			// Abandoned by Close: the messages may or may not reach Kafka.
			s.p.unsent.Add(total)
			return
		}
		if attempt >= s.cfg.writeAttempts {
			s.p.failed.Add(total)
			s.cfg.log.Error().Err(err).Int64("events", total).Int("messages", len(s.msgs)).
				Int("attempts", attempt).Str("topic", topic).Msg("ingest write to kafka")
			return
		}
		wait := retry.Next()
		s.cfg.log.Warn().Err(err).Int("attempt", attempt).Dur("backoff", wait).
			Str("topic", topic).Msg("ingest write to kafka, retrying")
		_ = backoff.Sleep(s.p.abortCtx, wait) // an abort is seen at the top of the loop
	}
}

// countPartial counts a write in which kafka-go reports each message's
// result (after its own retries).
func (s *sender) countPartial(werrs kafka.WriteErrors, topic string) {
	var sent, failed int64
	var firstErr error
	for i, err := range werrs {
		n := int64(s.counts[i])
		if err == nil {
			sent += n
			continue
		}
		failed += n
		if firstErr == nil {
			firstErr = err
		}
	}
	s.p.sent.Add(sent)
	s.p.failed.Add(failed)
	s.cfg.log.Error().Err(firstErr).Int64("events_failed", failed).Int64("events_sent", sent).
		Int("messages", len(s.msgs)).Str("topic", topic).Msg("ingest write to kafka")
}
