package stats

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/vigil-ml/vigil/internal/binenc"
)

// CoarseHistogram counts the finite values of a numeric feature in fixed,
// data-independent buckets, so that the values' mass in any bins (a
// reference's quantile bins) can be counted without keeping the values:
// what a window keeps when value sketches are off (WindowState.NoValues).
//
// A bucket is the top 16 bits of the order-preserving key of a float64
// (valueKey): its sign, its 11 exponent bits and the top 4 bits of its
// mantissa, so a bucket spans 1/16 of a binary order of magnitude (6.25%
// relative width at most; subnormal values, below 2^-1022, share 16 buckets
// of absolute width 2^-1026). For any x,
// every value of a bucket below x's bucket is below x and every value of a
// bucket above it is above x: Rank counts the values below (or at most) x
// to within the count of x's own bucket, a deterministic bound.
//
// Memory: one map entry per bucket used, at most a few hundred for data
// within a few orders of magnitude (16 per factor of 2 per sign), 65536 at
// most. Merge is exact (counts add). The zero value is empty.
type CoarseHistogram struct {
	counts map[uint16]uint64
	n      uint64
	// The last bucket added, to skip the map lookup on runs of similar values.
	last      uint16
	lastCount uint64
	hasLast   bool
}

// CoarseBucket returns the bucket of a finite x (see BucketRange).
func CoarseBucket(x float64) uint16 { return uint16(valueKey(x) >> 48) }

// Add adds v unless it is NaN or ±Inf.
func (h *CoarseHistogram) Add(v float64) {
	if v-v != 0 {
		return
	}
	b := CoarseBucket(v)
	h.n++
	if h.hasLast && b == h.last {
		h.lastCount++
		return
	}
	h.spill()
	h.last, h.lastCount, h.hasLast = b, 1, true
}

// spill moves the run count into the map.
func (h *CoarseHistogram) spill() {
	if !h.hasLast || h.lastCount == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make(map[uint16]uint64, 16)
	}
	h.counts[h.last] += h.lastCount
	h.lastCount = 0
}

// Count returns the number of values added.
func (h *CoarseHistogram) Count() uint64 { return h.n }

// Merge adds the counts of o to h; o is not modified.
func (h *CoarseHistogram) Merge(o *CoarseHistogram) {
	if o == nil || o.n == 0 {
		return
	}
	h.spill()
	if h.counts == nil {
		h.counts = make(map[uint16]uint64, len(o.counts)+1)
	}
	for b, c := range o.counts {
		h.counts[b] += c
	}
	if o.hasLast && o.lastCount > 0 {
		h.counts[o.last] += o.lastCount
	}
	h.n += o.n
}

// Clone returns a deep copy of h.
func (h *CoarseHistogram) Clone() CoarseHistogram {
	var c CoarseHistogram
	c.Merge(h)
	return c
}

// Buckets returns the buckets used, ascending, with their counts (new
// slices).
func (h *CoarseHistogram) Buckets() (buckets []uint16, counts []uint64) {
	h.spill()
	buckets = make([]uint16, 0, len(h.counts))
	for b, c := range h.counts {
		if c > 0 {
			buckets = append(buckets, b)
		}
	}
	slices.Sort(buckets)
	counts = make([]uint64, len(buckets))
	for i, b := range buckets {
		counts[i] = h.counts[b]
	}
	return buckets, counts
}

// Rank returns bounds on the number of values below x (strict) or at most
// x (not strict): lo <= rank <= hi, hi - lo being the count of x's bucket.
func (h *CoarseHistogram) Rank(x float64, strict bool) (lo, hi uint64) {
	_ = strict // the bounds are the same: x's bucket is the only unknown
	switch {
	case x != x:
		return 0, 0
	case math.IsInf(x, -1):
		return 0, 0
	case math.IsInf(x, 1):
		return h.n, h.n
	}
	bx := CoarseBucket(x)
	h.spill()
	for b, c := range h.counts {
		switch {
		case b < bx:
			lo += c
		case b == bx:
			hi += c
		}
	}
	return lo, lo + hi
}

// BucketRange returns the smallest and largest finite values of bucket b.
func BucketRange(b uint16) (lo, hi float64) {
	k := uint64(b) << 48
	lo, hi = keyValue(k), keyValue(k|(1<<48-1))
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

// AppendBinary appends the encoding of h: uvarint number of buckets, then
// per bucket, ascending, uvarint bucket delta (the first from 0) and uvarint
// count. It is deterministic.
func (h *CoarseHistogram) AppendBinary(dst []byte) ([]byte, error) {
	bs, cs := h.Buckets()
	dst = binary.AppendUvarint(dst, uint64(len(bs)))
	prev := uint16(0)
	for i, b := range bs {
		dst = binary.AppendUvarint(dst, uint64(b-prev))
		dst = binary.AppendUvarint(dst, cs[i])
		prev = b
	}
	return dst, nil
}

// UnmarshalBinary replaces h with the histogram encoded in data (see
// AppendBinary); it rejects truncated input, trailing bytes, buckets out of
// order and zero or overflowing counts, leaving h unchanged.
func (h *CoarseHistogram) UnmarshalBinary(data []byte) error {
	d := binenc.NewDecoder(data)
	m := d.Uvarint()
	if d.Err() == nil && m > 1<<16 {
		d.Fail("%d buckets", m)
	}
	var n CoarseHistogram
	prev := uint64(0)
	for i := uint64(0); i < m && d.Err() == nil; i++ {
		delta, c := d.Uvarint(), d.Uvarint()
		b := prev + delta
		if d.Err() != nil {
			break
		}
		if (i > 0 && delta == 0) || b > math.MaxUint16 || c == 0 || n.n+c < n.n {
			d.Fail("bucket %d count %d out of order, empty or overflowing", b, c)
			break
		}
		if n.counts == nil {
			n.counts = make(map[uint16]uint64, m)
		}
		n.counts[uint16(b)] = c
		n.n += c
		prev = b
	}
	if d.Err() == nil && d.Rest() > 0 {
		d.Fail("%d trailing bytes", d.Rest())
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("decode coarse histogram: %w", err)
	}
	*h = n
	return nil
}
