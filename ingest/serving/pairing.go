package serving

import (
	"bytes"
	"container/list"
	"time"
)

// Half is one half of an inference as a transport delivered it: a request or
// a response, not yet decoded.
type Half struct {
	// Response is true for the response half.
	Response bool
	// ID is the request id shared by both halves (ce-id, x-request-id, the
	// Kafka key).
	ID string
	// Served is the served model's name the transport knows ("" = the
	// payload's model_name); Component tells apart two servers that log
	// the same id (KServe's transformer and predictor).
	Served, Component string
	// Time is when the half was made (zero = unknown).
	Time time.Time
	// Body is the payload; Proto says it is a gRPC protobuf message rather
	// than JSON.
	Body  []byte
	Proto bool
	// Attrs are the transport's attributes (CloudEvent attributes and
	// extensions, Kafka headers), for segments and version_from.
	Attrs map[string]string
	// Origin is the caller's: it is kept with a pending half (the bridge
	// keeps the Kafka offset there) and returned by PendingOrigins.
	Origin any
}

func (h *Half) key() pairKey { return pairKey{h.Served, h.Component, h.ID} }

type pairKey struct{ served, component, id string }

type pending struct {
	key   pairKey
	half  Half
	added time.Time
}

// pairer holds first halves until their other half comes: at most max, each
// at most ttl. Not safe for concurrent use (the Converter locks).
type pairer struct {
	max   int
	ttl   time.Duration
	byKey map[pairKey]*list.Element
	order *list.List // of *pending, oldest first (added is non-decreasing)
}

func newPairer(max int, ttl time.Duration) *pairer {
	return &pairer{max: max, ttl: ttl, byKey: make(map[pairKey]*list.Element), order: list.New()}
}

// outcome of offering a half.
type outcome uint8

const (
	held outcome = iota
	paired
	duplicate
)

// offer pairs h with its waiting other half (returned, removed) or holds it;
// it returns how many halves it evicted to make room.
func (p *pairer) offer(h Half, now time.Time) (other Half, o outcome, evicted int) {
	k := h.key()
	if el, ok := p.byKey[k]; ok {
		pd := el.Value.(*pending)
		if pd.half.Response == h.Response {
			return Half{}, duplicate, 0
		}
		p.order.Remove(el)
		delete(p.byKey, k)
		return pd.half, paired, 0
	}
	for p.order.Len() >= p.max {
		p.removeOldest()
		evicted++
	}
	// The caller may reuse the body's buffer once Offer returns (the
	// gateway pools its request buffers): a held half owns a copy.
	h.Body = bytes.Clone(h.Body)
	p.byKey[k] = p.order.PushBack(&pending{key: k, half: h, added: now})
	return Half{}, held, evicted
}

// expire drops the halves older than the ttl and returns how many.
func (p *pairer) expire(now time.Time) int {
	n := 0
	for el := p.order.Front(); el != nil; el = p.order.Front() {
		if now.Sub(el.Value.(*pending).added) < p.ttl {
			break
		}
		p.removeOldest()
		n++
	}
	return n
}

func (p *pairer) removeOldest() {
	el := p.order.Front()
	p.order.Remove(el)
	delete(p.byKey, el.Value.(*pending).key)
}

func (p *pairer) len() int { return p.order.Len() }
