package pipeline

import (
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// Dead-letter headers added to a malformed message, beside its own headers.
const (
	HeaderError           = "vigil-error"
	HeaderSourceTopic     = "vigil-source-topic"
	HeaderSourcePartition = "vigil-source-partition"
	HeaderSourceOffset    = "vigil-source-offset"
)

// rowFate is what happens to one event.
type rowFate uint8

const (
	fateAdd  rowFate = iota // counted in its window
	fateLate                // its window had closed: recorded as late
	fateSkip                // already in a restored window state (replay after a crash)
	fateDup                 // its window counted an event of that id (Config.DedupEventIDs)
)

// pendingJSON buffers JSON events of one model and one window until they are
// folded into the window state as one Arrow record.
type pendingJSON struct {
	b       *wire.BatchBuilder
	key     stats.Key
	offsets []int64
}

// partition is the state of one input partition. It is owned by one
// goroutine; its methods are not safe for concurrent use.
type partition struct {
	cfg      Config
	src      Source
	log      zerolog.Logger
	mem      memory.Allocator
	counters *Counters

	wm     *window.Watermark
	states map[stats.Key]*stats.WindowState
	// A one-entry cache of states lookups: consecutive rows mostly share a
	// window. Reset whenever states changes.
	cacheKey   stats.Key
	cacheState *stats.WindowState
	cacheOK    bool
	// segCap caps the segment states of a window's segment key at
	// MaxSegmentValues (its scopes are the windows' Segment "" keys).
	segCap stats.SegmentCap

	jsonDec wire.JSONDecoder
	ev      schemas.Event
	pending map[string]*pendingJSON
	// asideJSON holds JSON events that are not counted in a window (late or
	// replayed) so that the raw events table still gets every valid event.
	asideJSON map[string]*pendingJSON

	// producers recognises SDK messages written twice (a producer retry).
	producers *producerSequences
	// eventIDs, with Config.DedupEventIDs, recognises events counted already.
	eventIDs *eventIDSets

	nextOffset int64 // offset after the last handled message; -1 before the first
	// highWatermark is the partition's high watermark (the offset after
	// its last message) as the broker said with the last fetched message.
	highWatermark int64
	// gauges are what the partition publishes for metrics (metrics.go);
	// sincePublish counts the messages handled since it last did.
	gauges       *partitionGauges
	sincePublish int
	// What the partition holds for its next checkpoint, which frees it:
	// heldEvents counts items (events, whose raw rows are held; late rows;
	// dead letters), heldBytes their memory (decoded Arrow buffers, late
	// rows, dead letters' bytes; JSON rows not yet folded into a record are
	// at most MaxPendingRows per model and not counted).
	heldEvents     int
	heldBytes      int64
	lastCheckpoint int64 // nextOffset of the last durable checkpoint

	// Output of the current checkpoint interval.
	raw  []RawBatch
	late []LateEvent
	dead []kafka.Message
}

func newPartition(cfg Config, src Source, counters *Counters, log zerolog.Logger) *partition {
	return &partition{
		cfg:            cfg,
		src:            src,
		log:            log.With().Str("topic", src.Topic).Int("partition", src.Partition).Logger(),
		mem:            memory.DefaultAllocator,
		counters:       counters,
		wm:             window.NewWatermark(cfg.Window, noWatermark),
		states:         make(map[stats.Key]*stats.WindowState),
		pending:        make(map[string]*pendingJSON),
		asideJSON:      make(map[string]*pendingJSON),
		producers:      newProducerSequences(MaxProducers),
		eventIDs:       newEventIDSets(),
		nextOffset:     -1,
		lastCheckpoint: -1,
		gauges:         &partitionGauges{partition: src.Partition},
	}
}

const noWatermark = -1 << 63

// restore installs what ClickHouse holds for this partition.
func (p *partition) restore(nextOffset, watermarkMs int64, states []*stats.WindowState) {
	p.wm = window.NewWatermark(p.cfg.Window, watermarkMs)
	p.nextOffset, p.lastCheckpoint = nextOffset, nextOffset
	p.gauges.checkpointed(nextOffset)
	for _, s := range states {
		s.NoValues = p.cfg.NoValueSketches
		p.states[s.Key] = s
	}
	p.cacheOK = false
}

// restoreProducers installs the dedup state (producer sequences, and event
// ids with Config.DedupEventIDs) stored with the checkpoint restore
// installed. Stored bytes that do not decode are replaced by an empty state:
// only a retry across this restart could then be counted twice.
func (p *partition) restoreProducers(stored []byte) {
	s, ids, err := decodeDedupState(stored, MaxProducers)
	if err != nil {
		p.log.Error().Err(err).Int("bytes", len(stored)).Int64("offset", p.nextOffset).
			Msg("restore producer sequences: starting without them (a producer retry of a message before this offset may be counted twice)")
		s, ids = newProducerSequences(MaxProducers), newEventIDSets()
	}
	p.producers, p.eventIDs = s, newEventIDSets()
	if p.cfg.DedupEventIDs {
		for k := range ids.byWindow {
			if p.wm.Closed(k.WindowStart) {
				ids.drop(k)
			}
		}
		p.eventIDs = ids
	}
}

// handle processes one Kafka message of this partition, in offset order.
func (p *partition) handle(msg *kafka.Message) {
	p.nextOffset = msg.Offset + 1
	p.highWatermark = max(p.highWatermark, msg.HighWaterMark)
	p.counters.Messages.Add(1)
	if p.duplicate(msg) {
		return
	}
	switch enc := header(msg, wire.HeaderEncoding); enc {
	case wire.EncodingArrow:
		rec, err := wire.DecodeArrow(msg.Value, p.mem)
		if err != nil {
			p.deadLetter(msg, DeadLetterInvalidArrow, err.Error())
			return
		}
		p.handleRecord(rec, msg.Offset)
	case wire.EncodingJSON, "":
		if err := p.jsonDec.Decode(msg.Value, &p.ev); err != nil {
			p.deadLetter(msg, DeadLetterInvalidJSON, err.Error())
			return
		}
		p.handleEvent(&p.ev, msg.Offset)
	default:
		p.deadLetter(msg, DeadLetterUnknownEncoding, "unknown "+wire.HeaderEncoding+" header "+strconv.Quote(enc))
	}
}

// duplicate reports whether msg is a copy, written by a producer retry, of
// an SDK message this partition has handled already, and counts it. Replays
// ask too: the producer sequences are restored with the checkpoint.
func (p *partition) duplicate(msg *kafka.Message) bool {
	id, seq, ok := producerHeaders(msg)
	if !ok || !p.producers.observe(id, seq) {
		return false
	}
	p.counters.Duplicates.Add(1)
	if e := p.log.Debug(); e.Enabled() {
		e.Int64("offset", msg.Offset).Hex("producer", id[:]).Uint64("sequence", seq).
			Msg("skipping a message its producer wrote again (retry)")
	}
	return true
}

func header(msg *kafka.Message, key string) string {
	for _, h := range msg.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (p *partition) deadLetter(msg *kafka.Message, kind DeadLetterReason, reason string) {
	p.counters.Malformed.Add(1)
	p.counters.DeadLetters[kind].Add(1)
	if e := p.log.Debug(); e.Enabled() {
		e.Int64("offset", msg.Offset).Str("reason", reason).Msg("malformed message to dead-letter topic")
	}
	p.dead = append(p.dead, deadLetterMessage(msg, p.cfg.DeadLetterTopic, reason))
	p.heldEvents++
	p.heldBytes += int64(messageSize(&p.dead[len(p.dead)-1]))
}

// deadLetterMessage is msg for the dead-letter topic: its key, value and
// headers, plus the reason and where it came from.
func deadLetterMessage(msg *kafka.Message, topic, reason string) kafka.Message {
	headers := make([]kafka.Header, 0, len(msg.Headers)+4)
	headers = append(headers, msg.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderError, Value: []byte(reason)},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(msg.Topic)},
		kafka.Header{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(msg.Partition))},
		kafka.Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(msg.Offset, 10))},
	)
	return kafka.Message{Topic: topic, Key: msg.Key, Value: msg.Value, Headers: headers}
}

// fate decides what happens to an event of window key k at offset off, and
// advances the watermark. It must be called in offset order.
func (p *partition) fate(k stats.Key, off, eventMs int64, id string) rowFate {
	f := fateAdd
	if !p.cacheOK || k != p.cacheKey {
		// Own copies: k may alias an Arrow buffer that is reused later.
		p.cacheState, p.cacheOK = p.states[k], true
		p.cacheKey = stats.Key{Model: strings.Clone(k.Model), ModelVersion: strings.Clone(k.ModelVersion), WindowStart: k.WindowStart}
	}
	if st := p.cacheState; st != nil && st.LastOffset >= off {
		f = fateSkip
	} else if p.wm.Closed(k.WindowStart) {
		f = fateLate
	}
	if p.cfg.DedupEventIDs && f != fateLate {
		// Replayed (skipped) events are recorded too: the stored ids are
		// those of the checkpoint, older than a state written after it.
		dup, full := p.eventIDs.seen(k, id)
		if full {
			p.counters.DedupOverflow.Add(1)
		}
		if dup && f == fateAdd {
			f = fateDup
		}
	}
	// Every event advances the watermark, skipped ones too: a replay must
	// move it exactly as the first run did.
	p.wm.Observe(eventMs)
	return f
}

// lateEventBytes is the memory of a LateEvent without its strings' bytes.
const lateEventBytes = int64(unsafe.Sizeof(LateEvent{}))

// handleEvent takes one decoded JSON event.
func (p *partition) handleEvent(e *schemas.Event, off int64) {
	p.counters.Events.Add(1)
	p.heldEvents++
	ms := e.Time.UnixMilli()
	k := stats.Key{Model: e.Model, ModelVersion: e.ModelVersion, WindowStart: p.cfg.Window.Start(ms)}
	switch p.fate(k, off, ms, e.ID) {
	case fateSkip:
		p.counters.Skipped.Add(1)
		p.aside(e, off)
		return
	case fateDup:
		p.counters.DuplicateEvents.Add(1)
		p.aside(e, off)
		return
	case fateLate:
		p.recordLate(off, e.Model, e.ModelVersion, e.ID, ms, k.WindowStart)
		p.aside(e, off)
		return
	}
	p.counters.Counted.Add(1)
	pj := pendingFor(p.pending, e.Model, p.mem)
	if pj.b.Len() > 0 && pj.key != k {
		p.fold(pj)
	}
	if pj.b.Len() == 0 {
		pj.key = stats.Key{Model: strings.Clone(k.Model), ModelVersion: strings.Clone(k.ModelVersion), WindowStart: k.WindowStart}
	}
	if err := pj.b.Append(e); err != nil {
		panic("BUG: batch builder refused a valid event of its own model: " + err.Error())
	}
	pj.offsets = append(pj.offsets, off)
	if pj.b.Len() >= p.cfg.MaxPendingRows {
		p.fold(pj)
	}
}

func pendingFor(m map[string]*pendingJSON, model string, mem memory.Allocator) *pendingJSON {
	pj := m[model]
	if pj == nil {
		pj = &pendingJSON{b: wire.NewBatchBuilder(mem)}
		m[strings.Clone(model)] = pj
	}
	return pj
}

// aside keeps an uncounted JSON event for the raw events table.
func (p *partition) aside(e *schemas.Event, off int64) {
	// About the event's Arrow size: its strings, 16 bytes per feature and 8
	// per vector item.
	held := 64 + len(e.ID) + len(e.Model) + len(e.ModelVersion) + 16*len(e.Features)
	for i := range e.Features {
		held += 8 * len(e.Features[i].Value.Vec)
	}
	p.heldBytes += int64(held)
	pj := pendingFor(p.asideJSON, e.Model, p.mem)
	if err := pj.b.Append(e); err != nil {
		panic("BUG: batch builder refused a valid event of its own model: " + err.Error())
	}
	pj.offsets = append(pj.offsets, off)
}

// fold turns a model's pending JSON rows into a record and adds it to its window.
func (p *partition) fold(pj *pendingJSON) {
	n := pj.b.Len()
	if n == 0 {
		return
	}
	rec := pj.b.NewRecord()
	st := p.state(pj.key)
	p.add(st, rec, 0, n)
	addMismatches(st, rec.Schema())
	touched := p.addSegments(rec, 0, n, pj.key, []*stats.WindowState{st})
	for _, t := range touched {
		t.LastOffset = max(t.LastOffset, pj.offsets[n-1])
	}
	p.raw = append(p.raw, RawBatch{Offset: pj.offsets[0], Offsets: append([]int64(nil), pj.offsets...), Record: rec})
	p.heldBytes += recordBytes(rec) + 8*int64(n)
	pj.offsets = pj.offsets[:0]
}

func addMismatches(st *stats.WindowState, s *arrow.Schema) {
	for f, n := range wire.TypeMismatches(s) {
		st.AddTypeMismatches(f, uint64(n))
	}
}

// handleRecord takes one decoded Arrow batch (all rows of one model, one
// offset). It takes ownership of rec.
func (p *partition) handleRecord(rec arrow.Record, off int64) {
	n := int(rec.NumRows())
	p.counters.Events.Add(uint64(n))
	p.heldEvents += n
	if n == 0 {
		rec.Release()
		return
	}
	model := rec.Column(1).(*array.String).Value(0)
	versions := rec.Column(2).(*array.String)
	times := rec.Column(3).(*array.Timestamp).TimestampValues()
	ids := rec.Column(0).(*array.String)

	var (
		runKey   stats.Key
		runFate  rowFate
		runStart int
		first    = true
		added    bool
		// LastOffset moves only after the whole message: rows of one window
		// split by another window's rows must not skip each other.
		touched []*stats.WindowState
	)
	flush := func(hi int) {
		switch runFate {
		case fateAdd:
			p.counters.Counted.Add(uint64(hi - runStart))
			st := p.state(runKey)
			p.add(st, rec, runStart, hi)
			touched = p.addSegments(rec, runStart, hi, runKey, append(touched, st))
			if !added {
				// Type-mismatch counts are per record: attribute them to the
				// window of the record's first counted rows.
				addMismatches(st, rec.Schema())
				added = true
			}
		case fateSkip:
			p.counters.Skipped.Add(uint64(hi - runStart))
		case fateDup:
			p.counters.DuplicateEvents.Add(uint64(hi - runStart))
		case fateLate:
			for i := runStart; i < hi; i++ {
				p.recordLate(off, model, versions.Value(i), ids.Value(i), int64(times[i]), runKey.WindowStart)
			}
		}
	}
	for i := 0; i < n; i++ {
		ms := int64(times[i])
		k := stats.Key{Model: model, ModelVersion: versions.Value(i), WindowStart: p.cfg.Window.Start(ms)}
		f := p.fate(k, off, ms, ids.Value(i))
		if first || k != runKey || f != runFate {
			if !first {
				flush(i)
			}
			runKey, runFate, runStart, first = k, f, i, false
		}
	}
	flush(n)
	for _, st := range touched {
		st.LastOffset = max(st.LastOffset, off)
	}
	p.raw = append(p.raw, RawBatch{Offset: off, Record: rec})
	p.heldBytes += recordBytes(rec)
}

// recordBytes is the memory of rec's buffers.
func recordBytes(rec arrow.Record) int64 {
	var n int64
	var add func(d arrow.ArrayData)
	add = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			add(c)
		}
	}
	for _, col := range rec.Columns() {
		add(col.Data())
	}
	return n
}

// add adds rows [lo, hi) of rec to st, and gives them to the observer.
func (p *partition) add(st *stats.WindowState, rec arrow.Record, lo, hi int) {
	st.AddRange(rec, lo, hi)
	if p.cfg.Observer != nil {
		p.cfg.Observer.AddRange(st, rec, lo, hi)
	}
}

// addSegments adds rows [lo, hi) of rec, all of window base, to the states
// of their segment values for every configured segment key, and returns
// touched with those states appended. Rows without the tag are in no segment.
func (p *partition) addSegments(rec arrow.Record, lo, hi int, base stats.Key, touched []*stats.WindowState) []*stats.WindowState {
	for _, key := range p.cfg.SegmentKeys {
		idx := rec.Schema().FieldIndices(schemas.PrefixSegment + key)
		if len(idx) == 0 {
			continue
		}
		col, ok := rec.Column(idx[0]).(*array.String)
		if !ok {
			continue
		}
		for i := lo; i < hi; {
			if col.IsNull(i) {
				i++
				continue
			}
			v, j := col.Value(i), i+1
			for j < hi && col.IsValid(j) && col.Value(j) == v {
				j++
			}
			st := p.segmentState(base, key, v)
			p.add(st, rec, i, j)
			touched = append(touched, st)
			i = j
		}
	}
	return touched
}

// segmentState returns the state of segment key=value of window base,
// creating it unless the window has MaxSegmentValues values of key already,
// in which case the value is OtherSegment.
func (p *partition) segmentState(base stats.Key, key, value string) *stats.WindowState {
	k := base
	k.Segment = key + "=" + value
	if st := p.states[k]; st != nil {
		return st
	}
	k.Segment = p.segCap.Segment(base, key, value)
	return p.state(k)
}

// state returns the window state of k, creating it. Keys are cloned on
// creation because k may alias an Arrow buffer.
func (p *partition) state(k stats.Key) *stats.WindowState {
	st := p.states[k]
	if st == nil {
		k = stats.Key{Model: strings.Clone(k.Model), ModelVersion: strings.Clone(k.ModelVersion), Segment: strings.Clone(k.Segment), WindowStart: k.WindowStart}
		st = stats.NewWindowState(k, p.cfg.Window.End(k.WindowStart))
		st.NoValues = p.cfg.NoValueSketches
		p.states[k] = st
		p.cacheOK = false
	}
	return st
}

func (p *partition) recordLate(off int64, model, version, id string, eventMs, windowStart int64) {
	p.counters.Late.Add(1)
	p.heldEvents++
	p.heldBytes += lateEventBytes + int64(len(model)+len(version)+len(id))
	p.late = append(p.late, LateEvent{
		Offset:       off,
		Model:        strings.Clone(model),
		ModelVersion: strings.Clone(version),
		EventID:      strings.Clone(id),
		EventTime:    time.UnixMilli(eventMs).UTC(),
		WindowStart:  time.UnixMilli(windowStart).UTC(),
		Watermark:    time.UnixMilli(max(p.wm.Value(), 0)).UTC(),
	})
}

// checkpointBatch is what one checkpoint writes.
type checkpointBatch struct {
	raw         []RawBatch
	late        []LateEvent
	dead        []kafka.Message
	states      []*stats.WindowState
	nextOffset  int64
	watermarkMs int64
	producers   []byte // producer sequences after every message before nextOffset
}

func (c *checkpointBatch) empty() bool {
	return len(c.raw) == 0 && len(c.late) == 0 && len(c.dead) == 0 && len(c.states) == 0
}

// prepare folds pending rows, closes the windows the watermark has passed and
// returns what must be written. It changes nothing that a failed write would
// need to redo: call done after the write is durable.
func (p *partition) prepare() *checkpointBatch {
	for _, pj := range p.pending {
		p.fold(pj)
	}
	for _, pj := range p.asideJSON {
		if n := pj.b.Len(); n > 0 {
			p.raw = append(p.raw, RawBatch{Offset: pj.offsets[0], Offsets: append([]int64(nil), pj.offsets...), Record: pj.b.NewRecord()})
			pj.offsets = pj.offsets[:0]
		}
	}
	cb := &checkpointBatch{raw: p.raw, late: p.late, dead: p.dead, nextOffset: p.nextOffset, watermarkMs: p.wm.Value()}
	for _, st := range p.states {
		if !st.Final && p.wm.Closed(st.WindowStart) {
			st.Final, st.Dirty = true, true
		}
		if st.Dirty {
			cb.states = append(cb.states, st)
		}
	}
	// Closed windows' event ids are not needed after a restart.
	cb.producers = appendDedupState(nil, p.producers, p.eventIDs, func(k stats.Key) bool { return p.wm.Closed(k.WindowStart) })
	return cb
}

// needed reports whether a checkpoint has anything to write.
func (p *partition) needed(cb *checkpointBatch) bool {
	return !cb.empty() || (cb.nextOffset >= 0 && cb.nextOffset != p.lastCheckpoint)
}

// done marks a prepared checkpoint as durable and drops what it wrote.
func (p *partition) done(cb *checkpointBatch) {
	for _, st := range cb.states {
		st.Dirty = false
		if st.Final {
			delete(p.states, st.Key)
			p.cacheOK = false
			if st.Segment == "" {
				for _, key := range p.cfg.SegmentKeys {
					p.segCap.Forget(st.Key, key)
				}
				p.eventIDs.drop(st.Key)
			}
		}
	}
	for i := range cb.raw {
		cb.raw[i].Record.Release()
	}
	p.raw, p.late, p.dead = p.raw[:0], p.late[:0], p.dead[:0]
	p.lastCheckpoint = cb.nextOffset
	p.heldEvents, p.heldBytes = 0, 0
	p.counters.Checkpoints.Add(1)
	p.gauges.checkpointed(cb.nextOffset)
	p.publish()
}
