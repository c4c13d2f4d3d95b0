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
	"github.com/apache/arrow/go/v17/arrow/bitutil"
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
// rejected instead of exhausting memory.
const MaxDecodedBatchBytes = 256 << 20

// maxDecodedBytes is MaxDecodedBatchBytes, lowered by tests.
var maxDecodedBytes int64 = MaxDecodedBatchBytes

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
//   - the buffers are consistent (offsets, lengths, null counts).
//
// Anything else is an error wrapping ErrMalformed. DecodeArrow never panics
// on corrupt input. The record's memory comes from mem (nil means
// memory.DefaultAllocator) and does not alias data; the caller must Release
// it.
func DecodeArrow(data []byte, mem memory.Allocator) (rec arrow.Record, err error) {
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
	lim := &limitedAllocator{mem: mem}
	lim.left.Store(maxDecodedBytes)
	mr := &sliceMessageReader{data: data, refs: 1}
	r, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(lim))
	if err != nil {
		return nil, malformed("arrow ipc: %v", err)
	}
	defer r.Release()
	if err := checkSchema(r.Schema()); err != nil {
		return nil, err
	}
	if !r.Next() {
		if r.Err() != nil {
			return nil, malformed("arrow ipc: %v", r.Err())
		}
		return nil, malformed("arrow ipc: no record batch")
	}
	rec = r.Record()
	rec.Retain()
	if r.Next() {
		rec.Release()
		return nil, malformed("arrow ipc: more than one record batch")
	}
	if r.Err() != nil {
		rec.Release()
		return nil, malformed("arrow ipc: %v", r.Err())
	}
	if mr.off != len(data) {
		rec.Release()
		return nil, malformed("arrow ipc: %d bytes of trailing data after the end of stream", len(data)-mr.off)
	}
	if err := checkRecord(rec); err != nil {
		rec.Release()
		return nil, err
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

func (r *sliceMessageReader) Message() (*ipc.Message, error) {
	if r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
	rest := r.data[r.off:]
	if len(rest) == 0 {
		return nil, io.EOF // a stream may end without the end-of-stream marker
	}
	if len(rest) < 8 || binary.LittleEndian.Uint32(rest) != ipcContinuation {
		return nil, fmt.Errorf("message at offset %d: no continuation marker", r.off)
	}
	metaLen := int64(binary.LittleEndian.Uint32(rest[4:]))
	r.off += 8
	if metaLen == 0 {
		return nil, io.EOF // end-of-stream marker
	}
	rest = rest[8:]
	if metaLen < 8 || metaLen > int64(len(rest)) {
		return nil, fmt.Errorf("message at offset %d: metadata length %d out of bounds", r.off-8, metaLen)
	}
	if err := checkSchemaMessage(rest[:metaLen]); err != nil {
		return nil, fmt.Errorf("message at offset %d: %w", r.off-8, err)
	}
	meta := memory.NewBufferBytes(rest[:metaLen])
	probe := ipc.NewMessage(meta, memory.NewBufferBytes(nil))
	bodyLen := probe.BodyLen()
	probe.Release()
	rest = rest[metaLen:]
	if bodyLen < 0 || bodyLen > int64(len(rest)) {
		return nil, fmt.Errorf("message at offset %d: body length %d out of bounds", r.off-8, bodyLen)
	}
	r.msg = ipc.NewMessage(meta, memory.NewBufferBytes(rest[:bodyLen]))
	r.off += int(metaLen + bodyLen)
	return r.msg, nil
}

func (r *sliceMessageReader) Retain() { atomic.AddInt64(&r.refs, 1) }

func (r *sliceMessageReader) Release() {
	if atomic.AddInt64(&r.refs, -1) == 0 && r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
}

// limitedAllocator fails (by panicking, which the IPC reader recovers into
// an error) once its budget is spent. Frees are passed on; they do not
// refill the budget.
type limitedAllocator struct {
	mem  memory.Allocator
	left atomic.Int64
}

var errTooLarge = errors.New("batch needs more than MaxDecodedBatchBytes")

func (a *limitedAllocator) take(n int) {
	if n < 0 {
		panic(fmt.Errorf("allocation of %d bytes", n))
	}
	if a.left.Add(-int64(n)) < 0 {
		panic(errTooLarge)
	}
}

func (a *limitedAllocator) Allocate(size int) []byte {
	a.take(size)
	return a.mem.Allocate(size)
}

func (a *limitedAllocator) Reallocate(size int, b []byte) []byte {
	if size > len(b) {
		a.take(size - len(b))
	}
	return a.mem.Reallocate(size, b)
}

func (a *limitedAllocator) Free(b []byte) { a.mem.Free(b) }

// Column groups after the fixed columns, in layout order.
const (
	groupProba = iota + 1
	groupFeature
	groupSegment
)

func checkSchema(s *arrow.Schema) error {
	fields := s.Fields()
	if len(fields) < len(schemas.FixedFields) {
		return malformed("arrow schema: %d columns, want at least the %d fixed ones", len(fields), len(schemas.FixedFields))
	}
	for i, want := range schemas.FixedFields {
		if got := fields[i]; got.Name != want.Name || !arrow.TypeEqual(got.Type, want.Type) {
			return malformed("arrow schema: column %d is %q %s, want %q %s", i, got.Name, got.Type, want.Name, want.Type)
		}
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
			_, ok = schemas.KindOf(f.Type)
		} else if name, ok = schemas.SegmentKey(f.Name); ok {
			g = groupSegment
			ok = f.Type.ID() == arrow.STRING
		} else {
			return malformed("arrow schema: unknown column %q (want a %s, %s or %s prefix)", f.Name,
				schemas.PrefixProba, schemas.PrefixFeature, schemas.PrefixSegment)
		}
		switch {
		case !ok:
			return malformed("arrow schema: column %q has type %s", f.Name, f.Type)
		case name == "" || len(name) > schemas.MaxNameLen:
			return malformed("arrow schema: column %q: name empty or longer than %d bytes", f.Name, schemas.MaxNameLen)
		case g < group || (g == group && name <= prev):
			return malformed("arrow schema: column %q out of order (groups proba., f., s., each sorted by name, no duplicates)", f.Name)
		}
		group, prev = g, name
	}
	md := s.Metadata()
	for i, k := range md.Keys() {
		v := md.Values()[i]
		if k == schemas.MetaSchemaVersion && v != strconv.Itoa(schemas.SchemaVersion) {
			return malformed("arrow schema: %s %q not supported (want %d)", k, v, schemas.SchemaVersion)
		}
		if strings.HasPrefix(k, MetaTypeMismatchPrefix) {
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				return malformed("arrow schema: %s %q is not a count", k, v)
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
	for i, col := range rec.Columns() {
		if err := checkArray(col, n); err != nil {
			return malformed("arrow column %q: %s", rec.ColumnName(i), err)
		}
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
			return malformed("arrow column %q: more than one model (%q, %q)", schemas.ColModel, model, models.Value(row))
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

// checkArray checks what the IPC reader does not: that the buffers of a
// column of one of the layout's types hold n rows consistently.
func checkArray(a arrow.Array, n int) error {
	d := a.Data()
	if d.Len() != n || d.Offset() != 0 {
		return fmt.Errorf("length %d offset %d, want %d rows", d.Len(), d.Offset(), n)
	}
	bufs := d.Buffers()
	nulls := d.NullN()
	if nulls < 0 || nulls > n {
		return fmt.Errorf("null count %d", nulls)
	}
	if len(bufs) > 0 && bufs[0] != nil && bufs[0].Len() > 0 {
		bitmap := bufs[0].Bytes()
		if int64(len(bitmap)) < bitutil.BytesForBits(int64(n)) {
			return fmt.Errorf("validity bitmap of %d bytes for %d rows", len(bitmap), n)
		}
		if got := n - bitutil.CountSetBits(bitmap, 0, n); got != nulls {
			return fmt.Errorf("null count %d, validity bitmap says %d", nulls, got)
		}
	} else if nulls != 0 {
		return fmt.Errorf("null count %d without a validity bitmap", nulls)
	}
	size := func(i int) int {
		if i >= len(bufs) || bufs[i] == nil {
			return 0
		}
		return bufs[i].Len()
	}
	switch d.DataType().ID() {
	case arrow.FLOAT64, arrow.TIMESTAMP:
		if size(1) < n*8 {
			return fmt.Errorf("values buffer of %d bytes for %d rows", size(1), n)
		}
	case arrow.BOOL:
		if int64(size(1)) < bitutil.BytesForBits(int64(n)) {
			return fmt.Errorf("values bitmap of %d bytes for %d rows", size(1), n)
		}
	case arrow.STRING:
		if size(1) < (n+1)*4 {
			return fmt.Errorf("offsets buffer of %d bytes for %d rows", size(1), n)
		}
		offsets := arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())[:n+1]
		if offsets[0] < 0 {
			return fmt.Errorf("negative offset")
		}
		for i := 1; i <= n; i++ {
			if offsets[i] < offsets[i-1] {
				return fmt.Errorf("offsets decrease at row %d", i)
			}
		}
		if int(offsets[n]) > size(2) {
			return fmt.Errorf("offset %d past the %d bytes of data", offsets[n], size(2))
		}
	default:
		return fmt.Errorf("type %s", d.DataType())
	}
	return nil
}
