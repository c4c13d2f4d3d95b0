package pipeline

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/schemas/wire"
)

// MaxProducers bounds the SDK producers whose sequences a partition
// remembers; beyond it the producer seen least recently is forgotten, and a
// retry of one of its messages would be counted again (see docs/DESIGN.md,
// "Producer idempotence").
const MaxProducers = 1024

// sequenceWindow is how many sequences below a producer's highest one are
// remembered one by one; older ones are taken as retries.
const sequenceWindow = 64

// producerID is the decoded value of the wire.HeaderProducer header.
type producerID [16]byte

// producerSeq is what a partition remembers of one producer.
type producerSeq struct {
	id   producerID
	high uint64 // highest sequence seen
	// seen has bit i set when sequence high-1-i was seen.
	seen       uint64
	prev, next *producerSeq // recency list: newer, older
}

// producerSequences recognises the messages of SDK producers that a
// partition has already counted: for each producer (at most MaxProducers,
// least recently seen forgotten first) the highest sequence and the
// sequenceWindow ones below it. It is owned by the partition goroutine.
type producerSequences struct {
	byID map[producerID]*producerSeq
	// newest and oldest ends of the recency list.
	newest, oldest *producerSeq
	max            int
}

func newProducerSequences(maxProducers int) *producerSequences {
	return &producerSequences{byID: make(map[producerID]*producerSeq), max: maxProducers}
}

// len returns the number of producers remembered.
func (s *producerSequences) len() int { return len(s.byID) }

// observe records message seq of producer id and reports whether it had been
// seen before: a duplicate, written again by a retry. A sequence more than
// sequenceWindow below the producer's highest counts as seen.
func (s *producerSequences) observe(id producerID, seq uint64) (duplicate bool) {
	p := s.byID[id]
	if p == nil {
		p = &producerSeq{id: id, high: seq}
		s.byID[id] = p
		s.pushNewest(p)
		if len(s.byID) > s.max {
			s.forget(s.oldest)
		}
		return false
	}
	s.touch(p)
	switch {
	case seq > p.high:
		d := seq - p.high
		if d > sequenceWindow {
			p.seen = 0
		} else {
			// Shifts by 64 give 0 in Go: the old high falls off the window.
			p.seen = p.seen<<d | 1<<(d-1)
		}
		p.high = seq
		return false
	case seq == p.high:
		return true
	}
	i := p.high - 1 - seq
	if i >= sequenceWindow || p.seen&(1<<i) != 0 {
		return true
	}
	p.seen |= 1 << i
	return false
}

func (s *producerSequences) pushNewest(p *producerSeq) {
	p.prev, p.next = nil, s.newest
	if s.newest != nil {
		s.newest.prev = p
	}
	s.newest = p
	if s.oldest == nil {
		s.oldest = p
	}
}

func (s *producerSequences) unlink(p *producerSeq) {
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		s.newest = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		s.oldest = p.prev
	}
	p.prev, p.next = nil, nil
}

func (s *producerSequences) touch(p *producerSeq) {
	if s.newest != p {
		s.unlink(p)
		s.pushNewest(p)
	}
}

func (s *producerSequences) forget(p *producerSeq) {
	s.unlink(p)
	delete(s.byID, p.id)
}

// producerSequencesVersion is the first byte of the encoding.
const producerSequencesVersion = 1

// minEncodedProducer is the smallest encoding of one producer: id, a
// one-byte high, seen.
const minEncodedProducer = len(producerID{}) + 1 + 8

// appendBinary appends the encoding of s to dst: a version byte, the number
// of producers (uvarint), then each producer from the least to the most
// recently seen: id (16 bytes), highest sequence (uvarint), seen (8 bytes,
// little endian). Empty state encodes as nothing.
func (s *producerSequences) appendBinary(dst []byte) []byte {
	if len(s.byID) == 0 {
		return dst
	}
	dst = append(dst, producerSequencesVersion)
	dst = binary.AppendUvarint(dst, uint64(len(s.byID)))
	for p := s.oldest; p != nil; p = p.prev {
		dst = append(dst, p.id[:]...)
		dst = binary.AppendUvarint(dst, p.high)
		dst = binary.LittleEndian.AppendUint64(dst, p.seen)
	}
	return dst
}

// errBadProducerSequences is wrapped by every error of decodeProducerSequences.
var errBadProducerSequences = errors.New("bad stored producer sequences")

// decodeProducerSequences decodes what appendBinary wrote (b is stored
// bytes: it may be anything). More producers than maxProducers keep the
// most recent ones.
func decodeProducerSequences(b []byte, maxProducers int) (*producerSequences, error) {
	s := newProducerSequences(maxProducers)
	if len(b) == 0 {
		return s, nil
	}
	if b[0] != producerSequencesVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errBadProducerSequences, b[0], producerSequencesVersion)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("%w: bad count", errBadProducerSequences)
	}
	b = b[k:]
	if n == 0 || n > uint64(len(b)/minEncodedProducer) {
		return nil, fmt.Errorf("%w: %d producers in %d bytes", errBadProducerSequences, n, len(b))
	}
	for i := uint64(0); i < n; i++ {
		if len(b) < minEncodedProducer {
			return nil, fmt.Errorf("%w: producer %d truncated", errBadProducerSequences, i)
		}
		var id producerID
		copy(id[:], b)
		b = b[len(id):]
		high, k := binary.Uvarint(b)
		if k <= 0 || len(b)-k < 8 {
			return nil, fmt.Errorf("%w: producer %d truncated", errBadProducerSequences, i)
		}
		b = b[k:]
		seen := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if s.byID[id] != nil {
			return nil, fmt.Errorf("%w: producer %x twice", errBadProducerSequences, id)
		}
		p := &producerSeq{id: id, high: high, seen: seen}
		s.byID[id] = p
		s.pushNewest(p)
		if len(s.byID) > s.max {
			s.forget(s.oldest)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last producer", errBadProducerSequences, len(b))
	}
	return s, nil
}

// producerHeaders returns the SDK producer id and sequence of msg; ok is
// false when msg lacks them or they are malformed (a message of another
// producer: it is counted, not deduplicated).
func producerHeaders(msg *kafka.Message) (id producerID, seq uint64, ok bool) {
	var hasID, hasSeq bool
	for i := range msg.Headers {
		h := &msg.Headers[i]
		switch h.Key {
		case wire.HeaderProducer:
			if len(h.Value) != 2*len(id) {
				return id, 0, false
			}
			if _, err := hex.Decode(id[:], h.Value); err != nil {
				return id, 0, false
			}
			hasID = true
		case wire.HeaderSequence:
			if seq, hasSeq = parseSequence(h.Value); !hasSeq {
				return id, 0, false
			}
		}
	}
	if !hasID || !hasSeq {
		return id, 0, false
	}
	return id, seq, true
}

// parseSequence parses a decimal uint64 without allocating.
func parseSequence(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
