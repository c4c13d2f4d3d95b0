package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/memory"
	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// The record batch of a message is loaded here rather than by the arrow IPC
// reader, which decompresses with codecs it configures itself: a ZSTD frame
// header of a few forged bytes makes it allocate 512 MiB per buffer, which
// crashes the process, and it builds a new decoder per batch. This loader
// handles exactly the flat types of the layout, checks every length against
// the message before using it, decompresses with pooled decoders bounded by
// the batch's memory budget, and refers to uncompressed buffers in place.
// The one nested type is a vector feature's fixed_size_list of float64 or
// float32 items.

// Flatbuffer slots and enum values of the Arrow IPC format
// (format/Message.fbs).
const (
	fbHeaderRecordBatch   = 3
	fbBatchLength         = 4
	fbBatchNodes          = 6
	fbBatchBuffers        = 8
	fbBatchCompression    = 10
	fbBatchVariadicCounts = 12
	fbCompressionCodec    = 4
	fbCompressionMethod   = 6
	fbCodecLZ4Frame       = 0
	fbCodecZSTD           = 1
	fbStructSize          = 16 // FieldNode and Buffer: two int64s
)

// maxZstdWindow is the largest ZSTD window accepted: the format's
// recommended decoder minimum, and more than encoders use for a buffer.
const maxZstdWindow = 8 << 20

var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxZstdWindow),
		zstd.WithDecoderMaxMemory(MaxDecodedBatchBytes))
	if err != nil {
		panic("BUG: zstd decoder options: " + err.Error())
	}
	return d
}}

var lz4Readers = sync.Pool{New: func() any { return lz4.NewReader(nil) }}

// batchLoader builds a record from a record batch message.
type batchLoader struct {
	mem    memory.Allocator
	budget int64 // bytes it may still allocate
	body   []byte
	codec  int // -1: uncompressed
	bufs   []flatbuffers.UOffsetT
	tab    flatbuffers.Table
}

// loadRecord builds the record of the record batch message meta/body.
func loadRecord(schema *arrow.Schema, meta, body []byte, mem memory.Allocator, budget int64) (arrow.Record, error) {
	root := flatbuffers.Table{Bytes: meta, Pos: flatbuffers.GetUOffsetT(meta)}
	o := flatbuffers.UOffsetT(root.Offset(fbMessageHeaderType))
	if o == 0 || root.GetUint8(root.Pos+o) != fbHeaderRecordBatch {
		return nil, errors.New("message is not a record batch")
	}
	var rb flatbuffers.Table
	if o := flatbuffers.UOffsetT(root.Offset(fbMessageHeader)); o != 0 {
		root.Union(&rb, o)
	} else {
		return nil, errors.New("record batch message without a header")
	}
	var rows int64
	if o := flatbuffers.UOffsetT(rb.Offset(fbBatchLength)); o != 0 {
		rows = rb.GetInt64(rb.Pos + o)
	}
	if o := flatbuffers.UOffsetT(rb.Offset(fbBatchVariadicCounts)); o != 0 && rb.VectorLen(o) != 0 {
		return nil, errors.New("variadic buffer counts in a batch without view types")
	}
	l := &batchLoader{mem: mem, budget: budget, body: body, codec: -1, tab: rb}
	if o := flatbuffers.UOffsetT(rb.Offset(fbBatchCompression)); o != 0 {
		var c flatbuffers.Table
		c.Bytes, c.Pos = meta, rb.Indirect(rb.Pos+o)
		l.codec = fbCodecLZ4Frame
		if o := flatbuffers.UOffsetT(c.Offset(fbCompressionCodec)); o != 0 {
			l.codec = int(c.GetInt8(c.Pos + o))
		}
		if o := flatbuffers.UOffsetT(c.Offset(fbCompressionMethod)); o != 0 && c.GetInt8(c.Pos+o) != 0 {
			return nil, errors.New("body compression method is not BUFFER")
		}
		if l.codec != fbCodecLZ4Frame && l.codec != fbCodecZSTD {
			return nil, fmt.Errorf("unknown compression codec %d", l.codec)
		}
	}
	nodes, nNodes, err := vector(&rb, fbBatchNodes, fbStructSize)
	if err != nil {
		return nil, err
	}
	bufs, nBufs, err := vector(&rb, fbBatchBuffers, fbStructSize)
	if err != nil {
		return nil, err
	}
	fields := schema.Fields()
	wantNodes := len(fields)
	for _, f := range fields {
		if _, ok := f.Type.(*arrow.FixedSizeListType); ok {
			wantNodes++ // the items' node
		}
	}
	if nNodes != wantNodes {
		return nil, fmt.Errorf("%d field nodes for %d columns", nNodes, len(fields))
	}
	if rows < 0 || rows > budget {
		return nil, fmt.Errorf("record batch length %d", rows)
	}
	cols := make([]arrow.Array, 0, len(fields))
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	ibuf, inode := 0, 0
	// loadColumn reads the node and buffers of one array of type dt and
	// want rows (and its items' after it, for a fixed_size_list).
	var loadColumn func(name string, dt arrow.DataType, want int64) (arrow.ArrayData, error)
	loadColumn = func(name string, dt arrow.DataType, want int64) (arrow.ArrayData, error) {
		node := nodes + flatbuffers.UOffsetT(inode*fbStructSize)
		inode++
		length, nulls := rb.GetInt64(node), rb.GetInt64(node+8)
		if length != want || nulls < 0 || nulls > length {
			return nil, fmt.Errorf("column %q: length %d with %d nulls, want %d rows", name, length, nulls, want)
		}
		nb := 2
		switch dt.ID() {
		case arrow.STRING:
			nb = 3
		case arrow.FIXED_SIZE_LIST:
			nb = 1
		}
		if ibuf+nb > nBufs {
			return nil, fmt.Errorf("column %q: buffers missing", name)
		}
		buffers := make([]*memory.Buffer, nb)
		defer func() {
			for _, b := range buffers {
				if b != nil {
					b.Release()
				}
			}
		}()
		for j := range buffers {
			b := bufs + flatbuffers.UOffsetT((ibuf+j)*fbStructSize)
			var err error
			if buffers[j], err = l.buffer(rb.GetInt64(b), rb.GetInt64(b+8)); err != nil {
				return nil, fmt.Errorf("column %q buffer %d: %w", name, j, err)
			}
		}
		ibuf += nb
		if buffers[0].Len() == 0 {
			buffers[0].Release()
			buffers[0] = nil
		}
		if err := checkBuffers(dt, int(length), int(nulls), buffers); err != nil {
			return nil, fmt.Errorf("column %q: %w", name, err)
		}
		if dt.ID() != arrow.FIXED_SIZE_LIST {
			return array.NewData(dt, int(length), buffers, nil, int(nulls), 0), nil
		}
		lt := dt.(*arrow.FixedSizeListType)
		if lt.Len() < 1 || rows*int64(lt.Len()) > budget {
			return nil, fmt.Errorf("column %q: %d rows of %d items", name, rows, lt.Len())
		}
		items, err := loadColumn(name+" items", lt.Elem(), rows*int64(lt.Len()))
		if err != nil {
			return nil, err
		}
		defer items.Release()
		return array.NewData(dt, int(length), buffers, []arrow.ArrayData{items}, int(nulls), 0), nil
	}
	for _, f := range fields {
		data, err := loadColumn(f.Name, f.Type, rows)
		if err != nil {
			return nil, err
		}
		cols = append(cols, array.MakeFromData(data))
		data.Release()
	}
	if ibuf != nBufs {
		return nil, fmt.Errorf("%d buffers for %d columns", nBufs, len(fields))
	}
	return array.NewRecord(schema, cols, rows), nil
}

// vector returns the start and length of a vector of structs, checked
// against the message.
func vector(t *flatbuffers.Table, slot flatbuffers.VOffsetT, elem int) (flatbuffers.UOffsetT, int, error) {
	if err := checkVector(t, slot, elem); err != nil {
		return 0, 0, err
	}
	o := flatbuffers.UOffsetT(t.Offset(slot))
	if o == 0 {
		return 0, 0, nil
	}
	return t.Vector(o), t.VectorLen(o), nil
}

// buffer returns the body buffer at off/length, decompressed if needed.
func (l *batchLoader) buffer(off, length int64) (*memory.Buffer, error) {
	if off < 0 || length < 0 || off > int64(len(l.body)) || length > int64(len(l.body))-off {
		return nil, fmt.Errorf("offset %d length %d outside the %d-byte body", off, length, len(l.body))
	}
	raw := l.body[off : off+length]
	if len(raw) == 0 {
		return memory.NewBufferBytes(nil), nil
	}
	if l.codec < 0 {
		return l.inPlace(raw)
	}
	if len(raw) < 8 {
		return nil, errors.New("compressed buffer without its length prefix")
	}
	size := int64(binary.LittleEndian.Uint64(raw))
	raw = raw[8:]
	if size == -1 {
		return l.inPlace(raw)
	}
	if size < 0 || size > l.budget {
		return nil, fmt.Errorf("decompressed size %d: %w", size, errTooLarge)
	}
	l.budget -= size
	buf := memory.NewResizableBuffer(l.mem)
	buf.Resize(int(size))
	if err := l.decompress(buf.Bytes(), raw); err != nil {
		buf.Release()
		return nil, err
	}
	return buf, nil
}

// inPlace refers to raw without copying when it is aligned for any of the
// layout's types; otherwise it copies.
func (l *batchLoader) inPlace(raw []byte) (*memory.Buffer, error) {
	if uintptr(unsafe.Pointer(unsafe.SliceData(raw)))%8 == 0 {
		return memory.NewBufferBytes(raw), nil
	}
	if int64(len(raw)) > l.budget {
		return nil, fmt.Errorf("copy of %d bytes: %w", len(raw), errTooLarge)
	}
	l.budget -= int64(len(raw))
	buf := memory.NewResizableBuffer(l.mem)
	buf.Resize(len(raw))
	copy(buf.Bytes(), raw)
	return buf, nil
}

// decompress fills dst, whose length is the size the buffer claims, from src.
func (l *batchLoader) decompress(dst, src []byte) error {
	switch l.codec {
	case fbCodecZSTD:
		var h zstd.Header
		if err := h.Decode(src); err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		if h.HasFCS && h.FrameContentSize != uint64(len(dst)) {
			return fmt.Errorf("zstd frame of %d bytes, want %d", h.FrameContentSize, len(dst))
		}
		d := zstdDecoders.Get().(*zstd.Decoder)
		out, err := d.DecodeAll(src, dst[:0])
		zstdDecoders.Put(d)
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		if len(out) != len(dst) || unsafe.SliceData(out) != unsafe.SliceData(dst) {
			return fmt.Errorf("zstd: %d bytes decompressed, want %d", len(out), len(dst))
		}
	case fbCodecLZ4Frame:
		r := lz4Readers.Get().(*lz4.Reader)
		src := bytes.NewReader(src)
		r.Reset(src)
		_, err := io.ReadFull(r, dst)
		if err == nil {
			var extra [1]byte
			if n, _ := r.Read(extra[:]); n != 0 {
				err = fmt.Errorf("more than %d bytes", len(dst))
			}
		}
		r.Reset(nil)
		lz4Readers.Put(r)
		if err != nil {
			return fmt.Errorf("lz4: %w", err)
		}
	}
	return nil
}

// checkBuffers checks that the buffers of a column of one of the layout's
// types hold n rows with the given null count, before any array is built.
func checkBuffers(dt arrow.DataType, n, nulls int, bufs []*memory.Buffer) error {
	if bitmap := bufs[0]; bitmap != nil {
		if int64(bitmap.Len()) < bitutil.BytesForBits(int64(n)) {
			return fmt.Errorf("validity bitmap of %d bytes for %d rows", bitmap.Len(), n)
		}
		if got := n - bitutil.CountSetBits(bitmap.Bytes(), 0, n); got != nulls {
			return fmt.Errorf("null count %d, validity bitmap says %d", nulls, got)
		}
	} else if nulls != 0 {
		return fmt.Errorf("null count %d without a validity bitmap", nulls)
	}
	switch dt.ID() {
	case arrow.FIXED_SIZE_LIST: // validity only; the items are checked as a column
	case arrow.FLOAT64, arrow.TIMESTAMP:
		if bufs[1].Len() < n*8 {
			return fmt.Errorf("values buffer of %d bytes for %d rows", bufs[1].Len(), n)
		}
	case arrow.FLOAT32:
		if bufs[1].Len() < n*4 {
			return fmt.Errorf("values buffer of %d bytes for %d rows", bufs[1].Len(), n)
		}
	case arrow.BOOL:
		if int64(bufs[1].Len()) < bitutil.BytesForBits(int64(n)) {
			return fmt.Errorf("values bitmap of %d bytes for %d rows", bufs[1].Len(), n)
		}
	case arrow.STRING:
		if bufs[1].Len() < (n+1)*4 {
			return fmt.Errorf("offsets buffer of %d bytes for %d rows", bufs[1].Len(), n)
		}
		offsets := arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())[:n+1]
		if offsets[0] != 0 {
			return fmt.Errorf("first offset %d, want 0", offsets[0])
		}
		for i := 1; i <= n; i++ {
			if offsets[i] < offsets[i-1] {
				return fmt.Errorf("offsets decrease at row %d", i)
			}
		}
		if int(offsets[n]) > bufs[2].Len() {
			return fmt.Errorf("offset %d past the %d bytes of data", offsets[n], bufs[2].Len())
		}
	default:
		return fmt.Errorf("type %s", dt)
	}
	return nil
}
