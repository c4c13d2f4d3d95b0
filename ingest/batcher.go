package ingest

import (
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// sealedBatch is what the batcher hands the sender: the messages of one
// sealed model buffer, all to one topic, or a flush marker.
type sealedBatch struct {
	topic  string // of every message; "" for a flush marker
	msgs   []kafka.Message
	counts []int32 // events (labels) per message; nil: one per message
	events int64   // total events (labels) in msgs
	buf    []byte  // backing memory of the message values, recycled after the write
	// headers backs every message's headers, each message's own slice of it.
	headers []kafka.Header
	flush   *flushRequest
}

// modelBuffer holds the events, or the labels, of one model that are not
// sealed yet. A model has one buffer for its events and one for its labels.
type modelBuffer struct {
	model        string
	key          []byte // message key: the model name
	events       []schemas.Event
	labels       []schemas.Label // in a label buffer, which has no events
	isLabels     bool
	opened       time.Time // when the first item of the open batch arrived
	gen          uint64    // bumped on every seal: invalidates older lingerQueue entries
	builder      *wire.BatchBuilder
	labelBuilder *wire.LabelBatchBuilder
	idle         int // linger sweeps during which the buffer stayed empty
}

// len returns the number of items (events or labels) in the buffer.
func (mb *modelBuffer) len() int { return len(mb.events) + len(mb.labels) }

type lingerEntry struct {
	buf *modelBuffer
	gen uint64
}

// batcher is the one goroutine that owns the per-model buffers. It takes
// events and labels from the producer's queues, seals a model's buffer when
// it holds batchSize items or is linger old, encodes it and hands it to the
// sender.
type batcher struct {
	p   *Producer
	cfg *config
	out chan<- *sealedBatch
	mem memory.Allocator
	enc *wire.ArrowEncoder

	models       map[string]*modelBuffer // event buffers
	labelModels  map[string]*modelBuffer // label buffers
	lingerQ      []lingerEntry           // open buffers in the order they were opened
	held         int                     // events in all model buffers
	heldLabels   int                     // labels in all model buffers
	timer        *time.Timer
	armed        bool
	aborted      bool
	headers      []kafka.Header
	labelHeaders []kafka.Header
	bufs         chan []byte // recycled message value buffers, filled by the sender
	// seq is the sequence of the last message sealed (wire.HeaderSequence),
	// events and labels alike: messages are written in the order sealed.
	seq uint64
}

func newBatcher(p *Producer, out chan<- *sealedBatch, mem memory.Allocator) *batcher {
	b := &batcher{
		p:           p,
		cfg:         &p.cfg,
		out:         out,
		mem:         mem,
		models:      make(map[string]*modelBuffer),
		labelModels: make(map[string]*modelBuffer),
		timer:       time.NewTimer(time.Hour),
		bufs:        make(chan []byte, p.cfg.maxInFlight+1),
		headers: []kafka.Header{
			{Key: wire.HeaderEncoding, Value: []byte(p.cfg.encoding)},
			{Key: wire.HeaderSchemaVersion, Value: []byte(strconv.Itoa(schemas.SchemaVersion))},
		},
		labelHeaders: []kafka.Header{
			{Key: wire.HeaderEncoding, Value: []byte(p.cfg.encoding)},
			{Key: wire.HeaderSchemaVersion, Value: []byte(strconv.Itoa(schemas.LabelSchemaVersion))},
		},
	}
	b.timer.Stop()
	if p.cfg.encoding == wire.EncodingArrow {
		b.enc = wire.NewArrowEncoder(p.cfg.compression)
	}
	return b
}

// sweepEvery is how many linger periods pass between sweeps of idle model buffers.
const sweepEvery = 64

func (b *batcher) run() {
	defer close(b.out)
	defer b.timer.Stop()
	sweep := time.NewTicker(sweepEvery * b.cfg.linger)
	defer sweep.Stop()
	for !b.aborted {
		select {
		case e := <-b.p.events:
			b.add(e)
		case l := <-b.p.labels:
			b.addLabel(l)
		case now := <-b.timer.C:
			b.armed = false
			b.sealExpired(now)
		case req := <-b.p.flushReqs:
			// Every event recorded before Flush was called is in the queue
			// now; taking as many as the queue holds takes them all.
			for n := len(b.p.events); n > 0 && !b.aborted; n-- {
				b.add(<-b.p.events)
			}
			for n := len(b.p.labels); n > 0 && !b.aborted; n-- {
				b.addLabel(<-b.p.labels)
			}
			b.sealAll()
			b.emit(&sealedBatch{flush: req})
		case <-sweep.C:
			b.sweepIdle()
		case <-b.p.stop:
			// No Record can enqueue any more: drain, seal, let the sender finish.
			for !b.aborted {
				select {
				case e := <-b.p.events:
					b.add(e)
					continue
				case l := <-b.p.labels:
					b.addLabel(l)
					continue
				default:
				}
				break
			}
			b.sealAll()
			b.abandon()
			return
		case <-b.p.abortCtx.Done():
			b.aborted = true
		}
	}
	b.abandon()
}

// abandon counts every event still held as Unsent; it does nothing unless
// Close's ctx expired.
func (b *batcher) abandon() {
	if !b.aborted {
		return
	}
	n := int64(b.held + b.heldLabels)
	for _, mb := range b.models {
		clear(mb.events)
		mb.events = mb.events[:0]
	}
	for _, mb := range b.labelModels {
		mb.labels = mb.labels[:0]
	}
	b.held, b.heldLabels = 0, 0
	// Close has set the closed bit and waited for Records before aborting,
	// so the queues only shrink now.
	for {
		select {
		case <-b.p.events:
			n++
			continue
		case <-b.p.labels:
			n++
			continue
		default:
		}
		break
	}
	b.p.unsent.Add(n)
}

func (b *batcher) add(e schemas.Event) {
	mb := b.models[e.Model]
	if mb == nil {
		mb = &modelBuffer{model: e.Model, key: []byte(e.Model)}
		b.models[e.Model] = mb
	}
	if len(mb.events) == 0 {
		b.opened(mb)
	}
	mb.events = append(mb.events, e)
	b.added(mb)
}

func (b *batcher) addLabel(l schemas.Label) {
	mb := b.labelModels[l.Model]
	if mb == nil {
		mb = &modelBuffer{model: l.Model, key: []byte(l.Model), isLabels: true}
		b.labelModels[l.Model] = mb
	}
	if len(mb.labels) == 0 {
		b.opened(mb)
	}
	mb.labels = append(mb.labels, l)
	b.added(mb)
}

// opened starts the linger of a buffer that just received its first item.
func (b *batcher) opened(mb *modelBuffer) {
	mb.opened = time.Now()
	b.lingerQ = append(b.lingerQ, lingerEntry{mb, mb.gen})
	if !b.armed {
		b.timer.Reset(b.cfg.linger)
		b.armed = true
	}
}

// added seals mb if it is full, and the oldest buffers while too much is held.
func (b *batcher) added(mb *modelBuffer) {
	if mb.isLabels {
		b.heldLabels++
	} else {
		b.held++
	}
	if mb.len() >= b.cfg.batchSize {
		b.seal(mb)
	}
	// Many models each below batchSize could hold unbounded memory: bound the
	// events (labels) held in model buffers by the queue size, sealing the
	// oldest.
	for b.held > b.cfg.maxBuffered && !b.aborted {
		b.sealOldest(false)
	}
	for b.heldLabels > b.cfg.maxLabels && !b.aborted {
		b.sealOldest(true)
	}
}

// sealExpired seals the buffers that have been open for linger, then arms
// the timer for the oldest one left.
func (b *batcher) sealExpired(now time.Time) {
	for len(b.lingerQ) > 0 && !b.aborted {
		ent := b.lingerQ[0]
		if ent.gen != ent.buf.gen {
			b.popLinger()
			continue
		}
		wait := b.cfg.linger - now.Sub(ent.buf.opened)
		if wait > 0 {
			b.timer.Reset(wait)
			b.armed = true
			return
		}
		b.popLinger()
		b.seal(ent.buf)
	}
}

// sealOldest seals the oldest open buffer of events, or of labels. An entry
// it seals further back in the linger queue goes stale and is popped later.
func (b *batcher) sealOldest(labels bool) {
	for len(b.lingerQ) > 0 && b.lingerQ[0].gen != b.lingerQ[0].buf.gen {
		b.popLinger()
	}
	for i, ent := range b.lingerQ {
		if ent.gen == ent.buf.gen && ent.buf.isLabels == labels {
			if i == 0 {
				b.popLinger()
			}
			b.seal(ent.buf)
			return
		}
	}
	panic("BUG: ingest batcher holds events or labels but no open buffer of them")
}

func (b *batcher) popLinger() lingerEntry {
	ent := b.lingerQ[0]
	b.lingerQ[0] = lingerEntry{}
	b.lingerQ = b.lingerQ[1:]
	if len(b.lingerQ) == 0 {
		b.lingerQ = b.lingerQ[:0:0] // let the backing array go rather than creep
	}
	return ent
}

func (b *batcher) sealAll() {
	for len(b.lingerQ) > 0 && !b.aborted {
		ent := b.popLinger()
		if ent.gen == ent.buf.gen {
			b.seal(ent.buf)
		}
	}
}

// sweepIdle forgets models that sent nothing for a while, with their builders.
func (b *batcher) sweepIdle() {
	for _, models := range [...]map[string]*modelBuffer{b.models, b.labelModels} {
		for name, mb := range models {
			if mb.len() > 0 {
				mb.idle = 0
				continue
			}
			if mb.idle++; mb.idle >= 2 {
				delete(models, name)
			}
		}
	}
}

// seal encodes mb's events or labels into messages and hands them to the sender.
func (b *batcher) seal(mb *modelBuffer) {
	n := mb.len()
	if n == 0 {
		return
	}
	mb.gen++
	var sb *sealedBatch
	switch {
	case mb.isLabels && b.enc != nil:
		sb = b.encodeLabelsArrow(mb)
	case mb.isLabels:
		sb = b.encodeLabelsJSON(mb)
	case b.enc != nil:
		sb = b.encodeArrow(mb)
	default:
		sb = b.encodeJSON(mb)
	}
	clear(mb.events) // drop references to the caller's slices
	mb.events = mb.events[:0]
	mb.labels = mb.labels[:0]
	mb.idle = 0
	if mb.isLabels {
		b.heldLabels -= n
	} else {
		b.held -= n
	}
	if sb.events > 0 {
		b.emit(sb)
	}
}

// emit hands sb to the sender, waiting while the sender has maxInFlight
// batches, unless Close's ctx expires.
func (b *batcher) emit(sb *sealedBatch) {
	select {
	case b.out <- sb:
		return
	default:
	}
	select {
	case b.out <- sb:
	case <-b.p.abortCtx.Done():
		b.aborted = true
		b.p.unsent.Add(sb.events)
		if sb.flush != nil {
			sb.flush.aborted = true
			close(sb.flush.done)
		}
	}
}

func (b *batcher) buffer() []byte {
	select {
	case buf := <-b.bufs:
		return buf[:0]
	default:
		return nil
	}
}

// messageOverhead is a generous bound on what kafka-go adds to key and value
// when it sizes a message against BatchBytes (record framing and headers).
const messageOverhead = 256

func (b *batcher) fits(value []byte, key []byte) bool {
	return len(value)+len(key)+messageOverhead <= b.cfg.maxMessageBytes
}

func (b *batcher) encodeJSON(mb *modelBuffer) *sealedBatch {
	return encodeJSONMessages(b, mb.key, mb.events, wire.AppendJSON, b.p.topic, b.headers, "event")
}

// encodeJSONMessages encodes items as one message each, for topic: events
// or labels.
func encodeJSONMessages[T any](b *batcher, key []byte, items []T, appendJSON func([]byte, *T) []byte, topic string, headers []kafka.Header, what string) *sealedBatch {
	now := time.Now()
	buf := b.buffer()
	sb := &sealedBatch{topic: topic, msgs: make([]kafka.Message, 0, len(items)), headers: make([]kafka.Header, 0, (len(headers)+2)*len(items))}
	for i := range items {
		start := len(buf)
		buf = appendJSON(buf, &items[i])
		v := buf[start:len(buf):len(buf)]
		if !b.fits(v, key) {
			b.fail(1, what+" larger than max message bytes", len(v))
			continue
		}
		var h []kafka.Header
		buf, h = b.stamp(sb, buf, headers)
		sb.msgs = append(sb.msgs, kafka.Message{Topic: topic, Key: key, Value: v, Headers: h, Time: now})
	}
	sb.events = int64(len(sb.msgs))
	sb.buf = buf
	return sb
}

func (b *batcher) encodeArrow(mb *modelBuffer) *sealedBatch {
	if mb.builder == nil {
		mb.builder = wire.NewBatchBuilder(b.mem)
	}
	sb := &sealedBatch{topic: b.p.topic, buf: b.buffer()}
	b.appendArrow(sb, mb, mb.events)
	return sb
}

// appendArrow encodes events (of mb's model) as one message, or as several
// when an event does not fit the batch of those before it (a feature changed
// kind, say) or when one message would exceed the max message size.
func (b *batcher) appendArrow(sb *sealedBatch, mb *modelBuffer, events []schemas.Event) {
	bb := mb.builder
	for i := 0; i < len(events); {
		j := i
		for ; j < len(events); j++ {
			err := bb.Append(&events[j])
			if err == nil {
				continue
			}
			if bb.Len() > 0 {
				break // events[j] starts the next message
			}
			b.fail(1, "append to arrow batch: "+err.Error(), 0)
			i = j + 1
		}
		if i < j {
			b.encodeArrowSegment(sb, mb, events[i:j])
		}
		i = j
	}
}

// encodeArrowSegment encodes the builder, which holds segment, as one
// message, splitting segment in halves while the message is too large.
func (b *batcher) encodeArrowSegment(sb *sealedBatch, mb *modelBuffer, segment []schemas.Event) {
	n := mb.builder.Len()
	if n != len(segment) {
		panic(fmt.Sprintf("BUG: arrow batch builder holds %d events, want %d", n, len(segment)))
	}
	if !b.appendRecord(sb, mb.builder.NewRecord(), n, mb.key, b.p.topic, b.headers, "event") {
		b.appendArrow(sb, mb, segment[:n/2])
		b.appendArrow(sb, mb, segment[n/2:])
	}
}

// appendRecord encodes rec, n events or labels of one model, as one message
// for topic. It reports false, with sb unchanged, when the message exceeds
// the max message size and n > 1: the caller splits. One event or label too
// large, or a failed encoding, is counted as failed.
func (b *batcher) appendRecord(sb *sealedBatch, rec arrow.Record, n int, key []byte, topic string, headers []kafka.Header, what string) bool {
	start := len(sb.buf)
	buf, err := b.enc.Encode(sb.buf, rec)
	rec.Release()
	if err != nil {
		b.fail(int64(n), "encode arrow "+what+" batch: "+err.Error(), 0)
		return true
	}
	v := buf[start:len(buf):len(buf)]
	if !b.fits(v, key) {
		sb.buf = buf[:start]
		if n == 1 {
			b.fail(1, what+" larger than max message bytes", len(v))
			return true
		}
		return false
	}
	var h []kafka.Header
	sb.buf, h = b.stamp(sb, buf, headers)
	sb.msgs = append(sb.msgs, kafka.Message{Topic: topic, Key: key, Value: v, Headers: h, Time: time.Now()})
	sb.counts = append(sb.counts, int32(n))
	sb.events += int64(n)
	return true
}

func (b *batcher) encodeLabelsJSON(mb *modelBuffer) *sealedBatch {
	return encodeJSONMessages(b, mb.key, mb.labels, wire.AppendLabelJSON, b.p.labelTopic, b.labelHeaders, "label")
}

func (b *batcher) encodeLabelsArrow(mb *modelBuffer) *sealedBatch {
	if mb.labelBuilder == nil {
		mb.labelBuilder = wire.NewLabelBatchBuilder(b.mem)
	}
	sb := &sealedBatch{topic: b.p.labelTopic, buf: b.buffer()}
	b.appendLabelsArrow(sb, mb, mb.labels)
	return sb
}

// appendLabelsArrow encodes labels (of mb's model) as one message, split in
// halves while it exceeds the max message size.
func (b *batcher) appendLabelsArrow(sb *sealedBatch, mb *modelBuffer, labels []schemas.Label) {
	lb := mb.labelBuilder
	for i := range labels {
		if err := lb.Append(&labels[i]); err != nil {
			// RecordLabel validated it and the buffer holds one model.
			panic("BUG: label buffer holds a label the batch rejects: " + err.Error())
		}
	}
	n := len(labels)
	if !b.appendRecord(sb, lb.NewRecord(), n, mb.key, b.p.labelTopic, b.labelHeaders, "label") {
		b.appendLabelsArrow(sb, mb, labels[:n/2])
		b.appendLabelsArrow(sb, mb, labels[n/2:])
	}
}

// stamp takes the next sequence for a message of sb and returns its headers:
// base, then the producer id and the sequence. The sequence's digits are
// appended to buf, which it returns; the headers are sb's.
func (b *batcher) stamp(sb *sealedBatch, buf []byte, base []kafka.Header) ([]byte, []kafka.Header) {
	b.seq++
	start := len(buf)
	buf = strconv.AppendUint(buf, b.seq, 10)
	h := len(sb.headers)
	sb.headers = append(sb.headers, base...)
	sb.headers = append(sb.headers,
		kafka.Header{Key: wire.HeaderProducer, Value: b.p.id},
		kafka.Header{Key: wire.HeaderSequence, Value: buf[start:len(buf):len(buf)]})
	return buf, sb.headers[h:len(sb.headers):len(sb.headers)]
}

// fail counts events that can never be delivered.
func (b *batcher) fail(n int64, reason string, size int) {
	b.p.failed.Add(n)
	e := b.cfg.log.Error().Int64("events", n).Str("topic", b.p.topic)
	if size > 0 {
		e = e.Int("bytes", size).Int("max_message_bytes", b.cfg.maxMessageBytes)
	}
	e.Msg("ingest dropping undeliverable events: " + reason)
}
