// Package binenc reads the compact binary encodings Vigil stores (latency
// and value sketches, feature states, reference profiles): unsigned and
// signed varints, little-endian fixed-width numbers and length-prefixed
// byte strings.
//
// A Decoder's first error sticks: later reads return zero values, so a
// caller decodes a whole record and checks Err once. Lengths read from the
// input are checked against the bytes left before anything is allocated, so
// corrupt input cannot make a decoder allocate much more than its size.
package binenc

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Decoder reads from a byte slice. The zero value reads nothing.
type Decoder struct {
	buf []byte
	pos int
	err error
}

// NewDecoder returns a decoder of data; byte strings it returns alias data.
func NewDecoder(data []byte) Decoder { return Decoder{buf: data} }

// Err returns the first error, nil when every read so far succeeded.
func (d *Decoder) Err() error { return d.err }

// Fail records an error (unless one is recorded already), with the position.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format+" (at byte %d)", append(args, d.pos)...)
	}
}

// Rest returns the number of bytes not read yet.
func (d *Decoder) Rest() int { return len(d.buf) - d.pos }

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if d.Rest() < 1 {
		d.Fail("truncated")
		return 0
	}
	b := d.buf[d.pos]
	d.pos++
	return b
}

// Uvarint reads an unsigned varint in its shortest form, the one
// binary.AppendUvarint writes: a padded form (a last byte of zero, as in
// 0x80 0x00 for 0) is refused, so that every value has one encoding and a
// decoded state re-encodes to the same bytes.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.pos:])
	if n <= 0 {
		d.Fail("truncated or overlong varint")
		return 0
	}
	if n > 1 && d.buf[d.pos+n-1] == 0 {
		d.Fail("varint not in its shortest form")
		return 0
	}
	d.pos += n
	return v
}

// Varint reads a signed (zig-zag) varint, in its shortest form as Uvarint.
func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.pos:])
	if n <= 0 {
		d.Fail("truncated or overlong varint")
		return 0
	}
	if n > 1 && d.buf[d.pos+n-1] == 0 {
		d.Fail("varint not in its shortest form")
		return 0
	}
	d.pos += n
	return v
}

// Uint64 reads 8 bytes, little-endian.
func (d *Decoder) Uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if d.Rest() < 8 {
		d.Fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.buf[d.pos:])
	d.pos += 8
	return v
}

// Float64 reads an IEEE 754 double, little-endian.
func (d *Decoder) Float64() float64 { return math.Float64frombits(d.Uint64()) }

// Count reads a number of items that take at least minBytes (>= 1) each,
// and fails when the bytes left cannot hold them.
func (d *Decoder) Count(minBytes int) int {
	n := d.Uvarint()
	if d.err == nil && n > uint64(d.Rest())/uint64(minBytes) {
		d.Fail("%d items do not fit in %d bytes", n, d.Rest())
		return 0
	}
	return int(n)
}

// Bytes reads a length-prefixed byte string; the result aliases the input.
func (d *Decoder) Bytes() []byte {
	n := d.Count(1)
	if d.err != nil {
		return nil
	}
	s := d.buf[d.pos : d.pos+n : d.pos+n]
	d.pos += n
	return s
}

// String reads a length-prefixed string (a copy).
func (d *Decoder) String() string { return string(d.Bytes()) }
