package stats

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/vigil-ml/vigil/internal/binenc"
)

// Sketch is a mergeable quantile sketch for non-negative values such as
// latencies in milliseconds (DDSketch: Masson, Rim and Lee, VLDB 2019).
//
// Positive values go to logarithmic buckets: bucket i holds (γ^(i-1), γ^i]
// with γ = (1+α)/(1-α), α = SketchRelativeAccuracy, and is represented by
// 2γ^i/(γ+1), which is within α relative error of every value in it. So
// Quantile returns a value within 1% of the exact nearest-rank quantile,
// as long as the values span less than SketchMaxBins buckets (a ratio of
// about 6e17 between the largest and the smallest positive value); beyond
// that the lowest buckets are collapsed into one and low quantiles lose
// their accuracy guarantee, high ones keep it. Count, zero count, min, max
// and sum are exact (sum up to floating-point rounding).
//
// Values below SketchMinValue (including negative values, which are recorded
// as 0) are counted exactly as zero. NaN and ±Inf are ignored.
//
// The zero value is an empty sketch.
type Sketch struct {
	count    uint64
	zero     uint64 // values < SketchMinValue
	min, max float64
	sum      float64
	offset   int      // bucket index of bins[0]
	bins     []uint64 // dense counts of buckets offset .. offset+len(bins)-1
}

// Parameters of Sketch. They are part of the binary format (version 1).
const (
	SketchRelativeAccuracy = 0.01
	SketchMinValue         = 1e-9 // smallest value not counted as zero
	SketchMaxBins          = 2048
)

const sketchVersion = 1

var (
	sketchGamma      = (1 + SketchRelativeAccuracy) / (1 - SketchRelativeAccuracy)
	sketchMultiplier = 1 / math.Log(sketchGamma)
	sketchMinIndex   = sketchIndex(SketchMinValue)
	sketchMaxIndex   = sketchIndex(math.MaxFloat64)
)

var (
	_ encoding.BinaryMarshaler   = (*Sketch)(nil)
	_ encoding.BinaryUnmarshaler = (*Sketch)(nil)
	_ encoding.BinaryAppender    = (*Sketch)(nil)
)

// ErrCorruptSketch wraps every reason UnmarshalBinary rejects its input for.
var ErrCorruptSketch = errors.New("corrupt sketch")

// sketchIndex returns the bucket of v >= SketchMinValue.
func sketchIndex(v float64) int { return int(math.Ceil(math.Log(v) * sketchMultiplier)) }

// sketchValue returns the representative value of bucket i.
func sketchValue(i int) float64 {
	return math.Exp(float64(i)/sketchMultiplier) * (2 / (sketchGamma + 1))
}

// Add records one value.
func (s *Sketch) Add(v float64) {
	if !(v <= math.MaxFloat64) { // NaN, +Inf
		return
	}
	if v < SketchMinValue {
		if v < -math.MaxFloat64 {
			return // -Inf
		}
		v = max(v, 0)
		s.record(v)
		s.zero++
		return
	}
	s.record(v)
	i := sketchIndex(v) - s.offset
	if uint(i) < uint(len(s.bins)) {
		s.bins[i]++
		return
	}
	s.addToBin(sketchIndex(v), 1)
}

func (s *Sketch) record(v float64) {
	if s.count == 0 {
		s.min, s.max = v, v
	} else if v < s.min {
		s.min = v
	} else if v > s.max {
		s.max = v
	}
	s.count++
	s.sum += v
}

// Count returns the number of values recorded.
func (s *Sketch) Count() uint64 { return s.count }

// Min returns the smallest value recorded, NaN when empty.
func (s *Sketch) Min() float64 {
	if s.count == 0 {
		return math.NaN()
	}
	return s.min
}

// Max returns the largest value recorded, NaN when empty.
func (s *Sketch) Max() float64 {
	if s.count == 0 {
		return math.NaN()
	}
	return s.max
}

// Sum returns the sum of the values recorded.
func (s *Sketch) Sum() float64 { return s.sum }

// Quantile returns an estimate of the nearest-rank q-quantile: the value of
// rank ceil(q*Count) (rank 1 for q = 0) in sorted order, within 1% relative
// error. Quantile(0) and Quantile(1) are the exact min and max. It returns
// NaN when the sketch is empty or q is not in [0, 1].
func (s *Sketch) Quantile(q float64) float64 {
	if s.count == 0 || !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(s.count)))
	switch {
	case rank <= 1:
		return s.min
	case rank >= s.count:
		return s.max
	case rank <= s.zero:
		return s.min // every value up to this rank is below SketchMinValue
	}
	seen := s.zero
	for i, c := range s.bins {
		seen += c
		if seen >= rank {
			return min(max(sketchValue(s.offset+i), s.min), s.max)
		}
	}
	panic("BUG: sketch bins hold fewer values than its count")
}

// Merge adds the values recorded in o to s. o is not modified.
func (s *Sketch) Merge(o *Sketch) {
	if o == nil || o.count == 0 {
		return
	}
	if s.count == 0 {
		s.min, s.max = o.min, o.max
	} else {
		s.min, s.max = min(s.min, o.min), max(s.max, o.max)
	}
	s.count += o.count
	s.zero += o.zero
	s.sum += o.sum
	lo, hi, ok := o.binRange()
	if !ok {
		return
	}
	// Grow once to the union of both ranges, then add bin by bin.
	s.addToBin(o.offset+hi, 0)
	s.addToBin(o.offset+lo, 0)
	for i := lo; i <= hi; i++ {
		if c := o.bins[i]; c != 0 {
			s.addToBin(o.offset+i, c)
		}
	}
}

// Reset empties s and keeps its buffer.
func (s *Sketch) Reset() {
	clear(s.bins)
	*s = Sketch{offset: s.offset, bins: s.bins}
}

// clone returns a deep copy of s.
func (s *Sketch) clone() Sketch {
	c := *s
	c.bins = nil
	if lo, hi, ok := s.binRange(); ok {
		c.offset = s.offset + lo
		c.bins = append([]uint64(nil), s.bins[lo:hi+1]...)
	}
	return c
}

// binRange returns the positions in s.bins of the first and last non-empty
// bucket; ok is false when there is none.
func (s *Sketch) binRange() (lo, hi int, ok bool) {
	lo, hi = 0, len(s.bins)-1
	for lo <= hi && s.bins[lo] == 0 {
		lo++
	}
	for hi >= lo && s.bins[hi] == 0 {
		hi--
	}
	return lo, hi, lo <= hi
}

// addToBin adds c to bucket idx, growing the bins to cover it. When the
// buckets in use would span more than SketchMaxBins, the lowest ones are
// collapsed into the lowest bucket kept.
func (s *Sketch) addToBin(idx int, c uint64) {
	if i := idx - s.offset; uint(i) < uint(len(s.bins)) {
		s.bins[i] += c
		return
	}
	lo, hi := idx, idx // bucket range in use after adding idx
	if l, h, ok := s.binRange(); ok {
		lo, hi = min(lo, s.offset+l), max(hi, s.offset+h)
	}
	lo = max(lo, hi-SketchMaxBins+1)
	// Leave some room on both sides so that a sketch fed with values in a
	// drifting range does not copy its bins on every new bucket.
	spare := SketchMaxBins - (hi - lo + 1)
	slackLo := min(32, spare/2)
	slackHi := min(32, spare-slackLo)
	newOffset := lo - slackLo
	bins := make([]uint64, hi+slackHi-newOffset+1)
	for i, n := range s.bins {
		if n != 0 {
			bins[max(s.offset+i, lo)-newOffset] += n
		}
	}
	s.offset, s.bins = newOffset, bins
	s.bins[max(idx, lo)-newOffset] += c
}

// MarshalBinary encodes s; see AppendBinary.
func (s *Sketch) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the encoding of s to dst. The encoding is compact
// (varints; about one byte per bucket in use, plus 26 bytes) and canonical:
// sketches holding the same buckets and statistics encode to the same bytes.
//
// Version 1 layout: version byte 1, uvarint count; when count > 0 also
// uvarint zero count, min, max and sum as little-endian float64, uvarint
// number of buckets n, and when n > 0 the varint index of the first bucket
// followed by n uvarint bucket counts. The bucket mapping is fixed by the
// version: α = 0.01, bucket i holds (γ^(i-1), γ^i].
func (s *Sketch) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, sketchVersion)
	dst = binary.AppendUvarint(dst, s.count)
	if s.count == 0 {
		return dst, nil
	}
	dst = binary.AppendUvarint(dst, s.zero)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.min))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.max))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.sum))
	lo, hi, ok := s.binRange()
	if !ok {
		return binary.AppendUvarint(dst, 0), nil
	}
	dst = binary.AppendUvarint(dst, uint64(hi-lo+1))
	dst = binary.AppendVarint(dst, int64(s.offset+lo))
	for _, c := range s.bins[lo : hi+1] {
		dst = binary.AppendUvarint(dst, c)
	}
	return dst, nil
}

// UnmarshalBinary replaces s with the sketch encoded in data. It rejects
// (with an error wrapping ErrCorruptSketch) input that is truncated, has
// trailing bytes, an unknown version, or inconsistent counts; s is unchanged
// then.
func (s *Sketch) UnmarshalBinary(data []byte) error {
	d := binenc.NewDecoder(data)
	if v := d.Byte(); d.Err() == nil && v != sketchVersion {
		return fmt.Errorf("decode sketch: %w: unsupported version %d (this build reads version %d)", ErrCorruptSketch, v, sketchVersion)
	}
	var n Sketch
	n.count = d.Uvarint()
	if d.Err() == nil && n.count > 0 {
		n.zero = d.Uvarint()
		n.min, n.max, n.sum = d.Float64(), d.Float64(), d.Float64()
		nbins := d.Uvarint()
		if d.Err() == nil && nbins > 0 {
			if nbins > SketchMaxBins {
				d.Fail("%d buckets, at most %d allowed", nbins, SketchMaxBins)
			}
			first := d.Varint()
			if d.Err() == nil && (first < int64(sketchMinIndex) || first > int64(sketchMaxIndex)-int64(nbins-1)) {
				d.Fail("%d buckets from %d out of range", nbins, first)
			}
			if d.Err() == nil {
				n.offset = int(first)
				n.bins = make([]uint64, nbins)
			}
			for i := range n.bins {
				n.bins[i] = d.Uvarint()
			}
		}
	}
	if d.Err() == nil && d.Rest() > 0 {
		d.Fail("%d trailing bytes", d.Rest())
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("decode sketch: %w: %v", ErrCorruptSketch, err)
	}
	if err := n.check(); err != nil {
		return fmt.Errorf("decode sketch: %w", err)
	}
	*s = n
	return nil
}

// check validates the invariants a decoded sketch must hold.
func (s *Sketch) check() error {
	if s.count == 0 {
		return nil
	}
	total := s.zero
	for _, c := range s.bins {
		if total+c < total {
			return fmt.Errorf("%w: bucket counts overflow", ErrCorruptSketch)
		}
		total += c
	}
	switch {
	case total != s.count:
		return fmt.Errorf("%w: buckets hold %d values, count is %d", ErrCorruptSketch, total, s.count)
	case !(s.min >= 0 && s.min <= s.max && s.max <= math.MaxFloat64):
		return fmt.Errorf("%w: min %v, max %v", ErrCorruptSketch, s.min, s.max)
	case !(s.sum >= 0):
		return fmt.Errorf("%w: sum %v", ErrCorruptSketch, s.sum)
	case s.zero > 0 && s.min >= SketchMinValue:
		return fmt.Errorf("%w: %d zero values but min %v", ErrCorruptSketch, s.zero, s.min)
	}
	return nil
}
