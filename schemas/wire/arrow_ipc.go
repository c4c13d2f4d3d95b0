package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/vigil-ml/vigil/schemas"
)

// Compression is the body compression of an Arrow IPC message.
type Compression uint8

// Compressions. The zero value is CompressionZSTD.
const (
	CompressionZSTD Compression = iota // default: best ratio for the CPU it costs
	CompressionLZ4                     // LZ4_FRAME: faster, larger
	CompressionNone
)

func (c Compression) String() string {
	switch c {
	case CompressionZSTD:
		return "zstd"
	case CompressionLZ4:
		return "lz4"
	case CompressionNone:
		return "none"
	}
	return "compression(" + strconv.Itoa(int(c)) + ")"
}

// ArrowEncoder encodes records as Arrow IPC messages: one IPC stream each,
// holding the schema and exactly one record batch, with body compression.
//
// Creating a compressor is expensive (a ZSTD encoder allocates megabytes),
// so the encoder keeps the IPC writers, with their compressors, of the last
// few schemas it saw and replays the schema message it captured for each.
// It is not safe for concurrent use.
type ArrowEncoder struct {
	compression Compression
	writers     []*schemaWriter // most recently used first
}

// schemaWriter is an IPC stream writer kept open for one schema: every
// Encode writes one record batch through it into a new message.
type schemaWriter struct {
	schema    *arrow.Schema
	w         *ipc.Writer
	out       appendWriter
	schemaMsg []byte // the schema message the writer wrote first
}

// maxSchemaWriters bounds the writers (and compressors) an encoder keeps.
const maxSchemaWriters = 4

// NewArrowEncoder returns an encoder that compresses with c.
func NewArrowEncoder(c Compression) *ArrowEncoder {
	return &ArrowEncoder{compression: c}
}

// Encode appends the IPC stream of rec to dst and returns the extended
// buffer. It does not retain rec.
func (enc *ArrowEncoder) Encode(dst []byte, rec arrow.Record) ([]byte, error) {
	sw, err := enc.writer(rec.Schema())
	if err != nil {
		return dst, err
	}
	start := len(dst)
	if sw.schemaMsg != nil {
		sw.out.b = append(dst, sw.schemaMsg...)
	} else {
		sw.out.b = dst // the writer's first Write starts with the schema
	}
	err = sw.w.Write(rec)
	out := sw.out.b
	sw.out.b = nil
	if err != nil {
		enc.writers = enc.writers[1:] // its state is unknown: drop it
		return dst, fmt.Errorf("encode arrow record: %w", err)
	}
	if sw.schemaMsg == nil {
		metaLen := int(binary.LittleEndian.Uint32(out[start+4:]))
		sw.schemaMsg = slices.Clone(out[start : start+8+metaLen])
	}
	return append(out, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0), nil // end of stream
}

// writer returns the writer for schema s, moved to the front.
func (enc *ArrowEncoder) writer(s *arrow.Schema) (*schemaWriter, error) {
	for i, sw := range enc.writers {
		if sw.schema.Equal(s) && sw.schema.Metadata().Equal(s.Metadata()) {
			copy(enc.writers[1:i+1], enc.writers[:i])
			enc.writers[0] = sw
			return sw, nil
		}
	}
	opts := []ipc.Option{ipc.WithSchema(s), ipc.WithAllocator(memory.DefaultAllocator)}
	switch enc.compression {
	case CompressionZSTD:
		opts = append(opts, ipc.WithZstd())
	case CompressionLZ4:
		opts = append(opts, ipc.WithLZ4())
	case CompressionNone:
	default:
		return nil, fmt.Errorf("encode arrow record: unknown compression %v", enc.compression)
	}
	sw := &schemaWriter{schema: s}
	sw.w = ipc.NewWriter(&sw.out, opts...)
	if len(enc.writers) == maxSchemaWriters {
		enc.writers = enc.writers[:maxSchemaWriters-1]
	}
	enc.writers = slices.Insert(enc.writers, 0, sw)
	return sw, nil
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// MaxDecodedBatchBytes bounds the memory DecodeArrow allocates for one
// message, so that a corrupt or hostile message claiming huge buffers is
// rejected instead of exhausting memory. A message may also decode to at
// most maxExpansion times its size (but always to 1 MiB): far more than
// compression achieves on real batches, far less than a forged length claims.
const MaxDecodedBatchBytes = 256 << 20

const (
	maxExpansion    = 1024
	minDecodeBudget = 1 << 20
)

// maxDecodedBytes is MaxDecodedBatchBytes, lowered by tests.
var maxDecodedBytes int64 = MaxDecodedBatchBytes

func decodeBudget(n int) int64 {
	return min(maxDecodedBytes, max(minDecodeBudget, maxExpansion*int64(n)))
}

// DecodeArrow decodes one Arrow IPC message (a stream with the schema and
// exactly one record batch) and checks that it is a valid batch of one
// model's events in the layout of schemas/arrow.go:
//
//   - the fixed columns come first, in order, with their types;
//   - the other columns are proba.* (float64), f.* (float64, utf8 or bool)
//     and s.* (utf8), in that order, each group sorted by name without
//     duplicates, names non-empty and at most schemas.MaxNameLen bytes;
//   - at least one row; event_id, model, model_version and event_time have no
//     nulls; one non-empty model on every row; every row passes what
//     schemas.Event.Validate checks (ids, event time, latency, a prediction,
//     finite scores, probabilities in [0,1]);
//   - the buffers are consistent (offsets, lengths, null counts), the body
//     compression is ZSTD, LZ4_FRAME or none, and the batch decodes to at
//     most MaxDecodedBatchBytes (and 1024 times the message size).
//
// Anything else is an error wrapping ErrMalformed. DecodeArrow never panics
// on corrupt input and keeps no state: it is safe for concurrent use.
//
// Decompressed buffers are allocated from mem (nil means
// memory.DefaultAllocator); uncompressed buffers are used in place, so the
// record may refer to data: do not modify data until the record is
// released. The caller must Release the record.
func DecodeArrow(data []byte, mem memory.Allocator) (rec arrow.Record, err error) {
	rec, err = decodeOneBatch(data, mem, checkSchema)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil { // the loader checked the buffers: a bug, but of a decoder of outside input
			rec.Release()
			rec, err = nil, malformed("arrow record batch: %v", p)
		}
	}()
	if err := checkRecord(rec); err != nil {
		rec.Release()
		return nil, err
	}
	return rec, nil
}

// decodeOneBatch decodes an IPC stream with exactly one record batch whose
// schema passes check, with the hardened loader and its memory budget: the
// arrow reader decodes the schema message only; the record batch is loaded
// by loadRecord. Predictions (DecodeArrow) and labels (DecodeLabelArrow)
// share it.
func decodeOneBatch(data []byte, mem memory.Allocator, check func(*arrow.Schema) error) (rec arrow.Record, err error) {
	defer func() {
		if p := recover(); p != nil {
			if rec != nil {
				rec.Release()
			}
			rec, err = nil, malformed("arrow ipc: %v", p)
		}
	}()
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	mr := &sliceMessageReader{data: data[:len(data):len(data)], refs: 1}
	r, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(mem))
	if err != nil {
		return nil, malformed("arrow ipc: %v", err)
	}
	schema := r.Schema()
	r.Release()
	if err := check(schema); err != nil {
		return nil, err
	}
	meta, body, err := mr.next()
	if err == io.EOF {
		return nil, malformed("arrow ipc: no record batch")
	}
	if err != nil {
		return nil, malformed("arrow ipc: %v", err)
	}
	if rec, err = loadRecord(schema, meta, body, mem, decodeBudget(len(data))); err != nil {
		return nil, malformed("arrow record batch: %v", err)
	}
	if _, _, err := mr.next(); err != io.EOF {
		rec.Release()
		if err == nil {
			return nil, malformed("arrow ipc: more than one record batch")
		}
		return nil, malformed("arrow ipc: %v", err)
	}
	if mr.off != len(data) {
		rec.Release()
		return nil, malformed("arrow ipc: %d bytes of trailing data after the end of stream", len(data)-mr.off)
	}
	return rec, nil
}

// sliceMessageReader reads IPC messages from a byte slice, checking every
// length against the bytes left before anything is allocated.
type sliceMessageReader struct {
	data []byte
	off  int
	msg  *ipc.Message
	refs int64
}

var _ ipc.MessageReader = (*sliceMessageReader)(nil)

const ipcContinuation = 0xFFFFFFFF

// next returns the metadata and body of the next message, io.EOF at the end
// of the stream.
func (r *sliceMessageReader) next() (meta, body []byte, err error) {
	rest := r.data[r.off:]
	if len(rest) == 0 {
		return nil, nil, io.EOF // a stream may end without the end-of-stream marker
	}
	start := r.off
	if len(rest) < 8 || binary.LittleEndian.Uint32(rest) != ipcContinuation {
		return nil, nil, fmt.Errorf("message at offset %d: no continuation marker", start)
	}
	metaLen := int64(binary.LittleEndian.Uint32(rest[4:]))
	r.off += 8
	if metaLen == 0 {
		return nil, nil, io.EOF // end-of-stream marker
	}
	rest = rest[8:]
	if metaLen < 8 || metaLen > int64(len(rest)) {
		return nil, nil, fmt.Errorf("message at offset %d: metadata length %d out of bounds", start, metaLen)
	}
	// Full slice expressions: flatbuffer reads slice without checking
	// capacity, which must not reach past the message.
	meta = rest[:metaLen:metaLen]
	if err := checkSchemaMessage(meta); err != nil {
		return nil, nil, fmt.Errorf("message at offset %d: %w", start, err)
	}
	probe := ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(nil))
	bodyLen := probe.BodyLen()
	probe.Release()
	rest = rest[metaLen:]
	if bodyLen < 0 || bodyLen > int64(len(rest)) {
		return nil, nil, fmt.Errorf("message at offset %d: body length %d out of bounds", start, bodyLen)
	}
	r.off += int(metaLen + bodyLen)
	return meta, rest[:bodyLen:bodyLen], nil
}

// Message implements ipc.MessageReader for the arrow reader.
func (r *sliceMessageReader) Message() (*ipc.Message, error) {
	if r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
	meta, body, err := r.next()
	if err != nil {
		return nil, err
	}
	r.msg = ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(body))
	return r.msg, nil
}

func (r *sliceMessageReader) Retain() { atomic.AddInt64(&r.refs, 1) }

func (r *sliceMessageReader) Release() {
	if atomic.AddInt64(&r.refs, -1) == 0 && r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
}

var errTooLarge = errors.New("more than a batch may decode to (MaxDecodedBatchBytes, and 1024 times the message size)")

// Column groups after the fixed columns, in layout order.
const (
	groupProba = iota + 1
	groupFeature
	groupSegment
)

// checkLeadingFields checks that s, which has at least len(want) columns,
// starts with the columns want (names and types) and is little-endian.
func checkLeadingFields(s *arrow.Schema, want []arrow.Field) error {
	fields := s.Fields()
	for i, w := range want {
		if got := fields[i]; got.Name != w.Name || !arrow.TypeEqual(got.Type, w.Type) {
			return malformed("arrow schema: column %d is %q %s, want %q %s", i, clip(got.Name), got.Type, w.Name, w.Type)
		}
	}
	if !s.IsNativeEndian() {
		return malformed("arrow schema: not little-endian")
	}
	return nil
}

func checkSchema(s *arrow.Schema) error {
	fields := s.Fields()
	if len(fields) < len(schemas.FixedFields) {
		return malformed("arrow schema: %d columns, want at least the %d fixed ones", len(fields), len(schemas.FixedFields))
	}
	if err := checkLeadingFields(s, schemas.FixedFields); err != nil {
		return err
	}
	group, prev := 0, ""
	for _, f := range fields[len(schemas.FixedFields):] {
		var g int
		var name string
		var ok bool
		if name, ok = schemas.ProbaClass(f.Name); ok {
			g = groupProba
			ok = f.Type.ID() == arrow.FLOAT64
		} else if name, ok = schemas.FeatureName(f.Name); ok {
			g = groupFeature
			if _, ok = schemas.KindOf(f.Type); !ok {
				_, ok = schemas.VectorDim(f.Type)
			}
		} else if name, ok = schemas.SegmentKey(f.Name); ok {
			g = groupSegment
			ok = f.Type.ID() == arrow.STRING
		} else {
			return malformed("arrow schema: unknown column %q (want a %s, %s or %s prefix)", clip(f.Name),
				schemas.PrefixProba, schemas.PrefixFeature, schemas.PrefixSegment)
		}
		switch {
		case !ok:
			return malformed("arrow schema: column %q has type %s", clip(f.Name), f.Type)
		case name == "" || len(name) > schemas.MaxNameLen:
			return malformed("arrow schema: column %q: name empty or longer than %d bytes", clip(f.Name), schemas.MaxNameLen)
		case g < group || (g == group && name <= prev):
			return malformed("arrow schema: column %q out of order (groups proba., f., s., each sorted by name, no duplicates)", f.Name)
		}
		group, prev = g, name
	}
	md := s.Metadata()
	for i, k := range md.Keys() {
		v := md.Values()[i]
		if k == schemas.MetaSchemaVersion && v != strconv.Itoa(schemas.SchemaVersion) {
			return malformed("arrow schema: %s %q not supported (want %d)", k, clip(v), schemas.SchemaVersion)
		}
		if strings.HasPrefix(k, MetaTypeMismatchPrefix) {
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				return malformed("arrow schema: %s %q is not a count", clip(k), clip(v))
			}
		}
	}
	return nil
}

// zeroTimeMs is time.Time{} (year 1) in Unix ms: Validate's "missing event time".
var zeroTimeMs = time.Time{}.UnixMilli()

func checkRecord(rec arrow.Record) error {
	n := int(rec.NumRows())
	if n == 0 {
		return malformed("arrow record batch has no rows")
	}
	ids := rec.Column(0).(*array.String)
	models := rec.Column(1).(*array.String)
	versions := rec.Column(2).(*array.String)
	times := rec.Column(3).(*array.Timestamp)
	for i := 0; i < 4; i++ {
		if rec.Column(i).NullN() != 0 {
			return malformed("arrow column %q has nulls", rec.ColumnName(i))
		}
	}
	model := models.Value(0)
	if model == "" || len(model) > schemas.MaxNameLen {
		return malformed("arrow column %q: model empty or longer than %d bytes", schemas.ColModel, schemas.MaxNameLen)
	}
	for row := 0; row < n; row++ {
		if models.Value(row) != model {
			return malformed("arrow column %q: more than one model (%q, %q)", schemas.ColModel, model, clip(models.Value(row)))
		}
		if id := ids.ValueLen(row); id == 0 || id > schemas.MaxNameLen {
			return malformed("arrow row %d: event id empty or longer than %d bytes", row, schemas.MaxNameLen)
		}
		if versions.ValueLen(row) > schemas.MaxNameLen {
			return malformed("arrow row %d: model version longer than %d bytes", row, schemas.MaxNameLen)
		}
		if int64(times.Value(row)) == zeroTimeMs {
			return malformed("arrow row %d: missing event time", row)
		}
	}
	latency := rec.Column(4).(*array.Float64)
	score := rec.Column(5).(*array.Float64)
	label := rec.Column(6).(*array.String)
	value := rec.Column(7).(*array.Float64)
	if err := checkFloats(latency, schemas.ColLatencyMs, 0, float64(maxLatencyMs)); err != nil {
		return err
	}
	if err := checkFloats(score, schemas.ColPredScore, -math.MaxFloat64, math.MaxFloat64); err != nil {
		return err
	}
	if err := checkFloats(value, schemas.ColPredValue, -math.MaxFloat64, math.MaxFloat64); err != nil {
		return err
	}
	var probas []*array.Float64
	for i := len(schemas.FixedFields); i < int(rec.NumCols()); i++ {
		if !strings.HasPrefix(rec.ColumnName(i), schemas.PrefixProba) {
			break
		}
		p := rec.Column(i).(*array.Float64)
		if err := checkFloats(p, rec.ColumnName(i), 0, 1); err != nil {
			return err
		}
		probas = append(probas, p)
	}
	// Every row needs a prediction, as in Validate.
	if score.NullN() == 0 || value.NullN() == 0 {
		return nil
	}
rows:
	for row := 0; row < n; row++ {
		if score.IsValid(row) || value.IsValid(row) || (label.IsValid(row) && label.ValueLen(row) > 0) {
			continue
		}
		for _, p := range probas {
			if p.IsValid(row) {
				continue rows
			}
		}
		return malformed("arrow row %d: missing prediction", row)
	}
	return nil
}

// checkFloats checks that the non-null values of a are within [lo, hi] (so
// not NaN).
func checkFloats(a *array.Float64, name string, lo, hi float64) error {
	vals := a.Float64Values()
	for row, v := range vals {
		if !(v >= lo && v <= hi) && a.IsValid(row) {
			return malformed("arrow column %q row %d: %v not in [%v, %v]", name, row, v, lo, hi)
		}
	}
	return nil
}

// clip shortens a string from the input for an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
