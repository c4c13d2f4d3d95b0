package stats

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"

	"github.com/vigil-ml/vigil/internal/binenc"
)

// ValueSketch summarises the distribution of the finite values of a numeric
// feature in a window, for two-sample tests (Kolmogorov-Smirnov,
// Wasserstein-1) against a reference, and merges so that the summary of an
// hour or a day can be built from stored 1-minute windows.
//
// Exact mode: while it holds at most ExactCap values (or the cap
// SetExactCap configures), it keeps them all; CDF, Quantile and
// WeightedValues are then exact and the merge of exact sketches stays exact
// while the total is at most the cap.
//
// Sketched mode (beyond ExactCap values): a KLL sketch (Karnin, Lang and
// Liberty, FOCS 2016) with k = ValueSketchK. Level h holds sorted values of
// weight 2^h; a full level is compacted by keeping every other value (odd or
// even positions, from a fixed-seed generator stored in the sketch, so
// results are reproducible) at twice the weight. New values go to an
// unsorted intake buffer of ExactCap values that is sorted (radix sort) and
// compacted when full, so Add is an amortised O(1) append.
//
// Error bound. A compaction at level h moves the rank of any x by 0 or
// ±2^h, with the sign from a fair coin. RankErrorBound returns, for the
// sketch's actual compaction history (W = Σ 2^h, V = Σ 4^h over all
// compactions, n values),
//
//	min(W, sqrt(2 V ln(2(n+1)/δ))) / n,   δ = ValueSketchFailureProb,
//
// and for every x, |CDF(x) - F(x)| ≤ RankErrorBound(), F the exact empirical
// CDF: always within W/n (deterministic), and within the second term with
// probability at least 1-δ over the coins (Azuma-Hoeffding on each of the at
// most n+1 distinct values of the error, union bound). The bound is 0 while
// no compaction happened. With k = 1024 it stays below 1% up to about 10^7
// values; the measured errors are about 5-10 times smaller (see
// TestValueSketchErrorBound).
//
// Memory: at most ExactCap*8 bytes in exact mode; sketched, the intake
// buffer (ExactCap*8 bytes) plus about 3k values in the levels (KLL's
// capacities shrink by 2/3 per level below the top, at least 8 per level),
// i.e. O(k + log n): about 40 KB, and about 25 KB encoded, for any n.
//
// NaN and ±Inf are not added (NumericState counts them); -0 is stored as +0.
// The zero value is an empty exact sketch. Queries sort the intake buffer in
// place, so a ValueSketch is not safe for concurrent use, even for reading.
type ValueSketch struct {
	n      uint64     // values summarised: len(buf) + Σ len(levels[h]) * 2^h
	buf    []uint64   // keys (see valueKey) of weight 1, sorted only if sorted
	sorted bool       // buf is sorted
	levels [][]uint64 // sorted keys of weight 2^h; nil in exact mode
	errSum float64    // Σ 2^h over the compactions (W above)
	errSq  float64    // Σ 4^h over the compactions (V above)
	rng    uint64     // splitmix64 state choosing compaction offsets
}

// Parameters of ValueSketch. ExactCap and ValueSketchK are part of the
// behaviour (not of the binary format: a decoded sketch keeps its values).
const (
	ExactCap               = 2048 // values a ValueSketch keeps exactly
	ValueSketchK           = 1024 // KLL k: capacity of the top level
	ValueSketchFailureProb = 1e-6 // δ of RankErrorBound's probabilistic term
	valueSketchMinWidth    = 8    // smallest level capacity
	valueSketchMaxLevels   = 64
)

const valueSketchVersion = 1

// MaxExactCap bounds SetExactCap: 65536 values, 512 KiB per exact sketch.
const MaxExactCap = 1 << 16

// exactCap is the number of values a ValueSketch keeps exactly
// (SetExactCap); ExactCap unless configured.
var exactCap = ExactCap

// SetExactCap sets how many values a ValueSketch keeps exactly before it
// turns into a KLL sketch (ExactCap, 2048, by default), between 1 and
// MaxExactCap. Exact mode costs 8 bytes per value (n <= cap); once
// sketched, the intake buffer is ExactCap values again, so a sketched
// sketch's memory does not depend on the cap. It is process-wide
// configuration: call it at start-up, before any sketch is used (it is not
// safe for use concurrently with sketches). Sketches decoded from a process
// with a larger cap stay exact until they grow.
func SetExactCap(n int) error {
	if n < 1 || n > MaxExactCap {
		return fmt.Errorf("value sketch exact cap %d: want 1..%d", n, MaxExactCap)
	}
	exactCap = n
	return nil
}

// ExactCapInUse returns the cap SetExactCap set (ExactCap by default).
func ExactCapInUse() int { return exactCap }

// bufCap is the size at which the intake buffer is flushed: the exact cap
// in exact mode, ExactCap once sketched.
func (s *ValueSketch) bufCap() int {
	if s.levels == nil {
		return exactCap
	}
	return ExactCap
}

var (
	_ encoding.BinaryMarshaler   = (*ValueSketch)(nil)
	_ encoding.BinaryUnmarshaler = (*ValueSketch)(nil)
	_ encoding.BinaryAppender    = (*ValueSketch)(nil)
)

// ErrCorruptValueSketch wraps every reason ValueSketch.UnmarshalBinary
// rejects its input for.
var ErrCorruptValueSketch = errors.New("corrupt value sketch")

// levelCaps[d] is the capacity of the level d below the top.
var levelCaps = func() [valueSketchMaxLevels]int {
	var caps [valueSketchMaxLevels]int
	c := float64(ValueSketchK)
	for d := range caps {
		caps[d] = max(valueSketchMinWidth, int(math.Ceil(c)))
		c *= 2.0 / 3
	}
	return caps
}()

// valueKey maps a finite float64 to a uint64 with the same order; -0 and
// +0 map to the same key.
func valueKey(v float64) uint64 {
	b := math.Float64bits(v + 0) // -0 + 0 = +0
	return b ^ (uint64(int64(b)>>63) | 1<<63)
}

// keyValue is the inverse of valueKey.
func keyValue(k uint64) float64 {
	if k>>63 == 1 {
		return math.Float64frombits(k &^ (1 << 63))
	}
	return math.Float64frombits(^k)
}

// Add adds v unless it is NaN or ±Inf.
func (s *ValueSketch) Add(v float64) {
	if v-v != 0 {
		return
	}
	if len(s.buf) >= s.bufCap() {
		s.flush()
	}
	s.buf = append(s.buf, valueKey(v))
	s.sorted = false
	s.n++
}

// AddFloat64s adds the finite values of vs.
func (s *ValueSketch) AddFloat64s(vs []float64) {
	for len(vs) > 0 {
		if len(s.buf) >= s.bufCap() {
			s.flush()
		}
		part := vs[:min(len(vs), s.bufCap()-len(s.buf))]
		vs = vs[len(part):]
		n := len(s.buf)
		buf := slices.Grow(s.buf, len(part))[:n+len(part)]
		// Branch-free: a non-finite value's slot is overwritten by the next.
		for _, v := range part {
			buf[n] = valueKey(v)
			if v-v == 0 {
				n++
			}
		}
		s.n += uint64(n - len(s.buf))
		s.buf = buf[:n]
		s.sorted = false
	}
}

// addValid adds the finite values of vs whose bit is set in valid, an Arrow
// validity bitmap where bit offset+i belongs to vs[i].
func (s *ValueSketch) addValid(vs []float64, valid []byte, offset int) {
	for len(vs) > 0 {
		if len(s.buf) >= s.bufCap() {
			s.flush()
		}
		part := vs[:min(len(vs), s.bufCap()-len(s.buf))]
		n := len(s.buf)
		buf := slices.Grow(s.buf, len(part))[:n+len(part)]
		for i, v := range part {
			j := uint(offset + i)
			buf[n] = valueKey(v)
			ok := int(valid[j>>3]>>(j&7)) & 1
			if v-v != 0 {
				ok = 0
			}
			n += ok
		}
		s.n += uint64(n - len(s.buf))
		s.buf = buf[:n]
		s.sorted = false
		vs = vs[len(part):]
		offset += len(part)
	}
}

// addKeys adds keys of weight 1.
func (s *ValueSketch) addKeys(keys []uint64) {
	for len(keys) > 0 {
		if len(s.buf) >= s.bufCap() {
			s.flush()
		}
		part := keys[:min(len(keys), s.bufCap()-len(s.buf))]
		keys = keys[len(part):]
		s.buf = append(s.buf, part...)
		s.n += uint64(len(part))
		s.sorted = false
	}
}

// flush moves the intake buffer into level 0 (switching to sketched mode)
// and compacts the levels that are over capacity.
func (s *ValueSketch) flush() {
	if s.levels == nil {
		s.levels = make([][]uint64, 1, 8)
	}
	s.sortBuf()
	top := len(s.levels) - 1
	if len(s.levels[0])+len(s.buf) < levelCaps[min(top, valueSketchMaxLevels-1)] {
		s.levels[0] = mergeInto(s.levels[0], s.buf)
	} else {
		// Level 0 is compacted at once (compress would): merge it with the
		// buffer in scratch memory and compact from there, instead of
		// growing level 0 to hold both and shrinking it again each time.
		if top == 0 {
			s.levels = append(s.levels, nil)
		}
		sp := mergeScratch.Get().(*[]uint64)
		merged := mergeSorted((*sp)[:0], s.levels[0], s.buf)
		s.levels[0] = s.compactFrom(0, merged, s.levels[0][:0])
		*sp = merged
		mergeScratch.Put(sp)
	}
	s.buf = s.buf[:0]
	if cap(s.buf) > 2*ExactCap {
		// Grown under a larger exact cap (SetExactCap): sketched, the intake
		// buffer is ExactCap again.
		s.buf = make([]uint64, 0, ExactCap)
	}
	s.compress()
}

var mergeScratch = sync.Pool{New: func() any { return new([]uint64) }}

// mergeSorted appends the merge of sorted a and b to dst.
func mergeSorted(dst, a, b []uint64) []uint64 {
	dst = slices.Grow(dst, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] <= b[j] {
			dst = append(dst, a[i])
			i++
		} else {
			dst = append(dst, b[j])
			j++
		}
	}
	dst = append(dst, a[i:]...)
	return append(dst, b[j:]...)
}

// compress compacts, from the bottom up, every level over its capacity.
func (s *ValueSketch) compress() {
	for h := 0; h < len(s.levels); h++ {
		top := len(s.levels) - 1
		if len(s.levels[h]) < levelCaps[min(top-h, valueSketchMaxLevels-1)] {
			continue
		}
		if h == top {
			if len(s.levels) == valueSketchMaxLevels {
				continue // cannot happen below 2^64 values
			}
			s.levels = append(s.levels, nil)
		}
		s.compact(h)
	}
}

// compact halves level h: of its values in sorted order (all but the first
// when their number is odd) it keeps the odd or the even positions and moves
// them up at twice the weight.
func (s *ValueSketch) compact(h int) {
	lv := s.levels[h]
	s.levels[h] = s.compactFrom(h, lv, lv[:0])
}

// compactFrom compacts the sorted values lv of level h (see compact) into
// level h+1, which must exist, and returns level h's new contents: the
// value left over, appended to rest, whose memory may be lv's (rest is
// then lv[:0]). lv's memory may be reused in place.
func (s *ValueSketch) compactFrom(h int, lv, rest []uint64) []uint64 {
	skip := len(lv) & 1
	part := lv[skip:]
	off := int(s.next() & 1)
	half := part[:0] // in place: writing position i/2 after reading i
	for i := off; i < len(part); i += 2 {
		half = append(half, part[i])
	}
	s.levels[h+1] = mergeInto(s.levels[h+1], half)
	w := math.Ldexp(1, h)
	s.errSum += w
	s.errSq += w * w
	// A level's capacity shrinks as levels are added above it: give back
	// memory a level no longer needs, so that the heap stays flat in n.
	if c := levelCaps[min(len(s.levels)-1-h, valueSketchMaxLevels-1)]; cap(rest) > 2*c {
		return append(make([]uint64, 0, c), lv[:skip]...)
	}
	return append(rest, lv[:skip]...)
}

// next advances the splitmix64 generator.
func (s *ValueSketch) next() uint64 {
	s.rng += 0x9e3779b97f4a7c15
	z := s.rng
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// mergeInto merges sorted b into sorted a and returns the result, which may
// reuse a's memory but not b's.
func mergeInto(a, b []uint64) []uint64 {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 || a[len(a)-1] <= b[0] {
		return append(a, b...)
	}
	na := len(a)
	a = slices.Grow(a, len(b))[:na+len(b)]
	// Merge from the back so that a's values are read before overwritten.
	i, j, k := na-1, len(b)-1, na+len(b)-1
	for j >= 0 {
		if i >= 0 && a[i] > b[j] {
			a[k] = a[i]
			i--
		} else {
			a[k] = b[j]
			j--
		}
		k--
	}
	return a
}

func (s *ValueSketch) sortBuf() {
	if !s.sorted {
		sortKeys(s.buf)
		s.sorted = true
	}
}

// Merge adds the values summarised by o to s. o is not modified (its intake
// buffer may be sorted in place). Two exact sketches stay exact while they
// hold at most ExactCap values together.
func (s *ValueSketch) Merge(o *ValueSketch) {
	if o == nil || o.n == 0 {
		return
	}
	if o.levels != nil {
		if s.levels == nil {
			s.levels = make([][]uint64, 1, 8)
		}
		for len(s.levels) < len(o.levels) {
			s.levels = append(s.levels, nil)
		}
		for h, lv := range o.levels {
			s.levels[h] = mergeInto(s.levels[h], lv)
			s.n += uint64(len(lv)) << h
		}
		s.errSum += o.errSum
		s.errSq += o.errSq
		s.rng ^= bits.RotateLeft64(o.rng, 23)
	}
	o.sortBuf()
	s.addKeys(o.buf)
	if s.levels != nil {
		s.compress()
	}
}

// Reset empties s and keeps its intake buffer.
func (s *ValueSketch) Reset() { *s = ValueSketch{buf: s.buf[:0]} }

// Clone returns a deep copy of s.
func (s *ValueSketch) Clone() ValueSketch {
	c := *s
	c.buf = slices.Clone(s.buf)
	if s.levels != nil {
		c.levels = make([][]uint64, len(s.levels), cap(s.levels))
		for h, lv := range s.levels {
			c.levels[h] = slices.Clone(lv)
		}
	}
	return c
}

// Count returns the number of values summarised.
func (s *ValueSketch) Count() uint64 { return s.n }

// Exact reports whether s holds every value it summarises.
func (s *ValueSketch) Exact() bool { return s.levels == nil }

// RankErrorBound returns the bound on |CDF(x) - F(x)| over all x that the
// type documentation states, for s's compaction history; 0 when no
// compaction happened (in particular in exact mode).
func (s *ValueSketch) RankErrorBound() float64 {
	if s.errSum == 0 || s.n == 0 {
		return 0
	}
	n := float64(s.n)
	prob := math.Sqrt(2 * s.errSq * math.Log(2*(n+1)/ValueSketchFailureProb))
	return min(s.errSum, prob) / n
}

// rankOf returns the summed weight of the values <= key (below key when
// strict).
func (s *ValueSketch) rankOf(key uint64, strict bool) uint64 {
	s.sortBuf()
	search := func(lv []uint64) int {
		i, found := slices.BinarySearch(lv, key)
		if !found || strict {
			return i
		}
		for i < len(lv) && lv[i] == key {
			i++
		}
		return i
	}
	r := uint64(search(s.buf))
	for h, lv := range s.levels {
		r += uint64(search(lv)) << h
	}
	return r
}

// CDF returns the fraction of the values that are <= x (exact in exact
// mode, within RankErrorBound otherwise); NaN when s is empty or x is NaN.
func (s *ValueSketch) CDF(x float64) float64 {
	if s.n == 0 || x != x {
		return math.NaN()
	}
	switch {
	case math.IsInf(x, 1):
		return 1
	case math.IsInf(x, -1):
		return 0
	}
	return float64(s.rankOf(valueKey(x), false)) / float64(s.n)
}

// Quantile returns the nearest-rank q-quantile: the smallest value v with
// CDF(v) >= q (the value of rank ceil(q*Count), rank 1 for q = 0). It is
// exact in exact mode; otherwise the true CDF at the returned value is
// within RankErrorBound of q. NaN when s is empty or q is not in [0, 1].
func (s *ValueSketch) Quantile(q float64) float64 {
	if s.n == 0 || !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	rank := max(uint64(math.Ceil(q*float64(s.n))), 1)
	vs, ws := s.WeightedValues()
	var cum uint64
	for i, w := range ws {
		cum += w
		if cum >= rank {
			return vs[i]
		}
	}
	return vs[len(vs)-1]
}

// WeightedValues returns the distinct values s holds in increasing order and
// the number of values each stands for (weights sum to Count). In exact
// mode they are the distinct values and their multiplicities. The slices
// are new.
func (s *ValueSketch) WeightedValues() (values []float64, weights []uint64) {
	s.sortBuf()
	total := len(s.buf)
	for _, lv := range s.levels {
		total += len(lv)
	}
	type run struct {
		keys []uint64
		w    uint64
	}
	runs := make([]run, 0, len(s.levels)+1)
	if len(s.buf) > 0 {
		runs = append(runs, run{s.buf, 1})
	}
	for h, lv := range s.levels {
		if len(lv) > 0 {
			runs = append(runs, run{lv, 1 << h})
		}
	}
	values = make([]float64, 0, total)
	weights = make([]uint64, 0, total)
	last := uint64(0)
	for len(runs) > 0 {
		// Few runs (about log n): a linear scan for the smallest head.
		best := 0
		for i := 1; i < len(runs); i++ {
			if runs[i].keys[0] < runs[best].keys[0] {
				best = i
			}
		}
		r := &runs[best]
		k := r.keys[0]
		if len(values) > 0 && k == last {
			weights[len(weights)-1] += r.w
		} else {
			values = append(values, keyValue(k))
			weights = append(weights, r.w)
			last = k
		}
		if r.keys = r.keys[1:]; len(r.keys) == 0 {
			runs = slices.Delete(runs, best, best+1)
		}
	}
	return values, weights
}

// sortKeys sorts keys: for long slices an LSD radix sort on bytes,
// skipping bytes that all keys share.
func sortKeys(keys []uint64) {
	if len(keys) < 256 {
		slices.Sort(keys)
		return
	}
	const (
		digits = 8
		width  = 8
		mask   = 1<<width - 1
	)
	sc := radixScratch.Get().(*radixBuffers)
	tmp := slices.Grow(sc.tmp[:0], len(keys))[:len(keys)]
	counts := &sc.counts
	clear(counts[:])
	for _, k := range keys {
		counts[0][k&mask]++
		counts[1][k>>width&mask]++
		counts[2][k>>(2*width)&mask]++
		counts[3][k>>(3*width)&mask]++
		counts[4][k>>(4*width)&mask]++
		counts[5][k>>(5*width)&mask]++
		counts[6][k>>(6*width)&mask]++
		counts[7][k>>(7*width)]++
	}
	// A digit that every key has needs no pass; the counts become starting
	// positions in one loop over the tables (independent sums, which the
	// CPU adds up in parallel).
	var skip [digits]bool
	for d := range digits {
		skip[d] = counts[d][keys[0]>>(width*d)&mask] == uint32(len(keys))
	}
	var sums [digits]uint32
	for i := range counts[0] {
		for d := range digits {
			n := counts[d][i]
			counts[d][i] = sums[d]
			sums[d] += n
		}
	}
	src, dst := keys, tmp
	for d := range digits {
		if skip[d] {
			continue
		}
		c := &counts[d]
		shift := uint(width * d)
		for _, k := range src {
			b := k >> shift & mask
			dst[c[b]] = k
			c[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
	sc.tmp = tmp
	radixScratch.Put(sc)
}

// radixBuffers is sortKeys' scratch: the other half of the ping-pong and
// the digit counts.
type radixBuffers struct {
	tmp    []uint64
	counts [8][1 << 8]uint32
}

var radixScratch = sync.Pool{New: func() any { return new(radixBuffers) }}

// MarshalBinary encodes s; see AppendBinary.
func (s *ValueSketch) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the encoding of s to dst. It is deterministic: equal
// states (same values per level, same history) give the same bytes. It
// sorts s's intake buffer in place.
//
// Version 1 layout: byte 1, uvarint count n; when n > 0: uvarint number of
// levels L (0 in exact mode), the intake buffer, then L levels, each a
// uvarint length followed by its sorted keys as uvarint deltas (the first
// from 0; a key is the float64's bits with the sign bit flipped for
// positive values and all bits flipped for negative ones), and when L > 0
// the compaction sums W and V as little-endian float64 and the generator
// state as 8 little-endian bytes.
func (s *ValueSketch) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, valueSketchVersion)
	dst = binary.AppendUvarint(dst, s.n)
	if s.n == 0 {
		return dst, nil
	}
	s.sortBuf()
	dst = binary.AppendUvarint(dst, uint64(len(s.levels)))
	dst = appendKeys(dst, s.buf)
	for _, lv := range s.levels {
		dst = appendKeys(dst, lv)
	}
	if s.levels != nil {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.errSum))
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.errSq))
		dst = binary.LittleEndian.AppendUint64(dst, s.rng)
	}
	return dst, nil
}

func appendKeys(dst []byte, keys []uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	prev := uint64(0)
	for _, k := range keys {
		dst = binary.AppendUvarint(dst, k-prev)
		prev = k
	}
	return dst
}

// UnmarshalBinary replaces s with the sketch encoded in data. It rejects
// (with an error wrapping ErrCorruptValueSketch) input that is truncated,
// has trailing bytes, an unknown version, unsorted or non-finite values or
// weights that do not add up to the count; s is unchanged then.
func (s *ValueSketch) UnmarshalBinary(data []byte) error {
	d := binenc.NewDecoder(data)
	if v := d.Byte(); d.Err() == nil && v != valueSketchVersion {
		return fmt.Errorf("decode value sketch: %w: unsupported version %d (this build reads version %d)", ErrCorruptValueSketch, v, valueSketchVersion)
	}
	var n ValueSketch
	n.n = d.Uvarint()
	if d.Err() == nil && n.n > 0 {
		nlevels := d.Uvarint()
		if d.Err() == nil && nlevels > valueSketchMaxLevels {
			d.Fail("%d levels, at most %d allowed", nlevels, valueSketchMaxLevels)
		}
		n.buf = decodeKeys(&d, MaxExactCap)
		n.sorted = true
		if d.Err() == nil && nlevels > 0 {
			n.levels = make([][]uint64, nlevels)
			for h := range n.levels {
				n.levels[h] = decodeKeys(&d, d.Rest())
			}
			n.errSum, n.errSq = d.Float64(), d.Float64()
			n.rng = d.Uint64()
		}
	}
	if d.Err() == nil && d.Rest() > 0 {
		d.Fail("%d trailing bytes", d.Rest())
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("decode value sketch: %w: %v", ErrCorruptValueSketch, err)
	}
	if err := n.check(); err != nil {
		return fmt.Errorf("decode value sketch: %w", err)
	}
	*s = n
	return nil
}

// decodeKeys reads a length (at most limit) and that many delta-coded keys,
// which must be increasing and finite.
func decodeKeys(d *binenc.Decoder, limit int) []uint64 {
	m := d.Uvarint()
	if d.Err() != nil {
		return nil
	}
	if m > uint64(limit) || m > uint64(d.Rest()) { // a key takes at least a byte
		d.Fail("%d values", m)
		return nil
	}
	if m == 0 {
		return nil
	}
	keys := make([]uint64, m)
	prev := uint64(0)
	for i := range keys {
		delta := d.Uvarint()
		k := prev + delta
		if d.Err() == nil && (k < prev || !finiteKey(k)) {
			d.Fail("value key %#x out of order or not finite", k)
		}
		if d.Err() != nil {
			return nil
		}
		keys[i], prev = k, k
	}
	return keys
}

// finiteKey reports whether k is the key of a finite value other than -0.
func finiteKey(k uint64) bool {
	v := keyValue(k)
	return v-v == 0 && valueKey(v) == k
}

// check validates the invariants a decoded sketch must hold.
func (s *ValueSketch) check() error {
	if s.n == 0 {
		return nil
	}
	total := uint64(len(s.buf))
	for h, lv := range s.levels {
		w := uint64(len(lv))
		if w != 0 && (h >= 64 || bits.LeadingZeros64(w) < h) {
			return fmt.Errorf("%w: level %d weight overflows", ErrCorruptValueSketch, h)
		}
		w <<= h
		if total+w < total {
			return fmt.Errorf("%w: weights overflow", ErrCorruptValueSketch)
		}
		total += w
	}
	switch {
	case total != s.n:
		return fmt.Errorf("%w: values weigh %d, count is %d", ErrCorruptValueSketch, total, s.n)
	case !(s.errSum >= 0 && s.errSum <= math.MaxFloat64 && s.errSq >= 0 && s.errSq <= math.MaxFloat64):
		return fmt.Errorf("%w: compaction sums %v, %v", ErrCorruptValueSketch, s.errSum, s.errSq)
	case s.levels == nil && s.n > MaxExactCap:
		return fmt.Errorf("%w: %d values in exact mode, at most %d", ErrCorruptValueSketch, s.n, MaxExactCap)
	case s.levels != nil && len(s.buf) > MaxExactCap:
		return fmt.Errorf("%w: %d values in the intake buffer, at most %d", ErrCorruptValueSketch, len(s.buf), MaxExactCap)
	}
	return nil
}
