package performance

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/vigil-ml/vigil/internal/binenc"
)

// stateVersion is the first byte of every encoded State.
const stateVersion = 1

// ErrCorruptState wraps every reason UnmarshalBinary rejects its input for.
// It is permanent: the bytes will not decode on a retry.
var ErrCorruptState = errors.New("corrupt performance state")

var (
	_ encoding.BinaryMarshaler   = (*State)(nil)
	_ encoding.BinaryUnmarshaler = (*State)(nil)
	_ encoding.BinaryAppender    = (*State)(nil)
)

// MarshalBinary encodes s; see AppendBinary.
func (s *State) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the encoding of s to dst. The encoding is canonical:
// states holding the same counts encode to the same bytes, whatever the order
// their pairs came in (floating-point sums aside).
//
// Version 1 layout (uvarint and varint as in encoding/binary, f64 a
// little-endian IEEE 754 double):
//
//	byte version = 1, byte task (1 binary, 2 multiclass, 3 regression)
//	binary only: f64 threshold
//	uvarint predictions
//	task body
//	label-delay sketch (stats.Sketch encoding) up to the end
//
// Binary body: uvarint TP, FP, TN, FN, invalid; f64 log-loss sum, Brier sum;
// byte 0 (exact scores) or 1 (quantised; then varint grid exponent e, cells
// of width 2^-e); uvarint number of cells, then per cell in increasing score
// order: uvarint delta of the cell key's order-preserving bits (the float's
// bits with the sign bit flipped when positive, all bits flipped when
// negative; the first delta from 0), uvarint positives, uvarint negatives,
// and when quantised a byte 1 for a cell holding several distinct scores or
// 0 followed by the cell's one score as f64.
//
// Multiclass body: uvarint number of classes, each a uvarint length and the
// bytes, in strictly increasing byte order; uvarint invalid, pairs without
// probabilities, pairs with; f64 log-loss sum; uvarint number of non-zero
// confusion cells, each uvarint actual class, predicted class (positions in
// the class list) and count, in increasing (actual, predicted) order.
//
// Regression body: uvarint n, invalid, zero labels; f64 sum |e|, sum e^2,
// sum e, sum APE, sum APE over non-zero labels, first label (shift), mean of
// label - shift, M2 of the labels.
func (s *State) AppendBinary(dst []byte) ([]byte, error) {
	if !s.Task.valid() {
		return dst, fmt.Errorf("encode performance state: invalid task %d", s.Task)
	}
	dst = append(dst, stateVersion, byte(s.Task))
	if s.Task == TaskBinary {
		dst = appendFloat(dst, s.Threshold)
	}
	dst = binary.AppendUvarint(dst, s.Predictions)
	switch s.Task {
	case TaskBinary:
		b := s.Binary
		if b == nil {
			b = &BinaryState{}
		}
		dst = b.appendBinary(dst)
	case TaskMulticlass:
		m := s.Multiclass
		if m == nil {
			m = &MulticlassState{}
		}
		dst = m.appendBinary(dst)
	case TaskRegression:
		r := s.Regression
		if r == nil {
			r = &RegressionState{}
		}
		dst = r.appendBinary(dst)
	}
	return s.Delay.AppendBinary(dst)
}

func appendFloat(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

// orderedBits maps a float64 to a uint64 in the same order (NaN aside).
func orderedBits(f float64) uint64 {
	b := math.Float64bits(f)
	if b>>63 == 0 {
		return b | 1<<63
	}
	return ^b
}

func orderedFloat(k uint64) float64 {
	if k>>63 == 1 {
		return math.Float64frombits(k &^ (1 << 63))
	}
	return math.Float64frombits(^k)
}

func (b *BinaryState) appendBinary(dst []byte) []byte {
	for _, v := range [...]uint64{b.tp, b.fp, b.tn, b.fn, b.invalid} {
		dst = binary.AppendUvarint(dst, v)
	}
	dst = appendFloat(dst, b.logLossSum)
	dst = appendFloat(dst, b.brierSum)
	if b.quantised {
		dst = append(dst, 1)
		dst = binary.AppendVarint(dst, int64(b.gridExp))
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.cells)))
	prev := uint64(0)
	for _, key := range b.sortedKeys() {
		c := b.cells[key]
		k := orderedBits(key)
		dst = binary.AppendUvarint(dst, k-prev)
		prev = k
		dst = binary.AppendUvarint(dst, c.pos)
		dst = binary.AppendUvarint(dst, c.neg)
		if b.quantised {
			if c.mixed {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
				dst = appendFloat(dst, c.score)
			}
		}
	}
	return dst
}

func (m *MulticlassState) appendBinary(dst []byte) []byte {
	classes, rank := m.sortedClasses()
	dst = binary.AppendUvarint(dst, uint64(len(classes)))
	for _, c := range classes {
		dst = binary.AppendUvarint(dst, uint64(len(c)))
		dst = append(dst, c...)
	}
	dst = binary.AppendUvarint(dst, m.invalid)
	dst = binary.AppendUvarint(dst, m.probsMissing)
	dst = binary.AppendUvarint(dst, m.logLossCount)
	dst = appendFloat(dst, m.logLossSum)
	type entry struct {
		key uint64 // actual<<32 | predicted, in sorted positions
		n   uint64
	}
	entries := make([]entry, 0, len(m.confusion))
	for k, n := range m.confusion {
		entries = append(entries, entry{uint64(rank[k>>32])<<32 | uint64(rank[uint32(k)]), n})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	for _, e := range entries {
		dst = binary.AppendUvarint(dst, e.key>>32)
		dst = binary.AppendUvarint(dst, uint64(uint32(e.key)))
		dst = binary.AppendUvarint(dst, e.n)
	}
	return dst
}

func (r *RegressionState) appendBinary(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, r.n)
	dst = binary.AppendUvarint(dst, r.invalid)
	dst = binary.AppendUvarint(dst, r.zeroLabels)
	for _, f := range [...]float64{r.sumAbs, r.sumSq, r.sumErr, r.sumAPE, r.sumAPENonZero, r.labelShift, r.labelMean, r.labelM2} {
		dst = appendFloat(dst, f)
	}
	return dst
}

// UnmarshalBinary replaces s with the state encoded in data (see
// AppendBinary). It rejects, with an error wrapping ErrCorruptState, input
// that is truncated, has an unknown version or task, or counts that do not
// add up; s is unchanged then. Corrupt input cannot make it allocate much
// more than len(data) (except MaxCells-bounded map growth) or panic.
func (s *State) UnmarshalBinary(data []byte) error {
	d := binenc.NewDecoder(data)
	if v := d.Byte(); d.Err() == nil && v != stateVersion {
		return fmt.Errorf("decode performance state: %w: unsupported version %d (this build reads version %d)",
			ErrCorruptState, v, stateVersion)
	}
	n := State{Task: Task(d.Byte()), Threshold: DefaultThreshold}
	if d.Err() == nil && !n.Task.valid() {
		d.Fail("unknown task %d", n.Task)
	}
	if n.Task == TaskBinary {
		n.Threshold = d.Float64()
		if d.Err() == nil && (math.IsNaN(n.Threshold) || math.Float64bits(n.Threshold) == 1<<63) {
			d.Fail("threshold %v", n.Threshold)
		}
	}
	n.Predictions = d.Uvarint()
	if d.Err() == nil {
		switch n.Task {
		case TaskBinary:
			n.Binary = decodeBinary(&d, n.Threshold)
		case TaskMulticlass:
			n.Multiclass = decodeMulticlass(&d)
		case TaskRegression:
			n.Regression = decodeRegression(&d)
		}
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("decode performance state: %w: %v", ErrCorruptState, err)
	}
	if err := n.Delay.UnmarshalBinary(data[len(data)-d.Rest():]); err != nil {
		return fmt.Errorf("decode performance state: %w: label delays: %v", ErrCorruptState, err)
	}
	*s = n
	return nil
}

// addCounts returns a+b, failing d on overflow.
func addCounts(d *binenc.Decoder, a, b uint64) uint64 {
	if a+b < a {
		d.Fail("counts overflow")
	}
	return a + b
}

func decodeBinary(d *binenc.Decoder, threshold float64) *BinaryState {
	b := &BinaryState{}
	b.tp, b.fp, b.tn, b.fn, b.invalid = d.Uvarint(), d.Uvarint(), d.Uvarint(), d.Uvarint(), d.Uvarint()
	b.logLossSum, b.brierSum = d.Float64(), d.Float64()
	if d.Err() == nil && !(b.logLossSum >= 0 && b.logLossSum <= math.MaxFloat64 && b.brierSum >= 0 && b.brierSum <= math.MaxFloat64) {
		d.Fail("log-loss sum %v, Brier sum %v", b.logLossSum, b.brierSum)
	}
	switch mode := d.Byte(); mode {
	case 0:
	case 1:
		b.quantised = true
		e := d.Varint()
		if d.Err() == nil && (e < minGridExp || e > QuantisedGridExp) {
			d.Fail("grid exponent %d", e)
		}
		b.gridExp = int(e)
	default:
		d.Fail("score mode %d", mode)
	}
	minCell := 3 // key delta, positives, negatives
	limit := MaxExactScores
	if b.quantised {
		minCell, limit = 4, MaxCells
	}
	ncells := d.Count(minCell)
	if d.Err() == nil && ncells > limit {
		d.Fail("%d score cells, at most %d", ncells, limit)
	}
	if d.Err() != nil {
		return nil
	}
	if ncells > 0 {
		b.cells = make(map[float64]cell, ncells)
	}
	// Confusion counts at the threshold: exact from pure cells, within the
	// mixed cells' counts otherwise.
	var pos, neg, tp, fp, mixedPos, mixedNeg uint64
	prev := uint64(0)
	for i := 0; i < ncells && d.Err() == nil; i++ {
		delta := d.Uvarint()
		k := prev + delta
		if d.Err() == nil && (k <= prev || k < orderedBits(math.Inf(-1)) || k > orderedBits(math.Inf(1)) || k == orderedBits(math.Copysign(0, -1))) {
			d.Fail("score key %#x out of order or not a number", k)
		}
		prev = k
		key := orderedFloat(k)
		c := cell{pos: d.Uvarint(), neg: d.Uvarint(), score: key}
		if d.Err() == nil && c.pos == 0 && c.neg == 0 {
			d.Fail("empty score cell")
		}
		if b.quantised {
			switch flag := d.Byte(); flag {
			case 0:
				c.score = d.Float64()
				if d.Err() == nil && (math.IsNaN(c.score) || quantise(c.score, b.gridExp) != key || math.Float64bits(c.score) == 1<<63) {
					d.Fail("score %v not in cell %v", c.score, key)
				}
			case 1:
				c.mixed, c.score = true, 0
				if d.Err() == nil && quantise(key, b.gridExp) != key {
					d.Fail("cell %v not on the grid 2^-%d", key, b.gridExp)
				}
			default:
				d.Fail("cell flag %d", flag)
			}
		}
		if d.Err() != nil {
			return nil
		}
		pos, neg = addCounts(d, pos, c.pos), addCounts(d, neg, c.neg)
		switch {
		case c.mixed:
			mixedPos, mixedNeg = addCounts(d, mixedPos, c.pos), addCounts(d, mixedNeg, c.neg)
		case c.score >= threshold:
			tp, fp = addCounts(d, tp, c.pos), addCounts(d, fp, c.neg)
		}
		b.cells[key] = c
	}
	if d.Err() != nil {
		return nil
	}
	switch {
	case addCounts(d, b.tp, b.fn) != pos || addCounts(d, b.fp, b.tn) != neg:
		d.Fail("confusion counts %d %d %d %d do not match %d positive and %d negative scores", b.tp, b.fp, b.tn, b.fn, pos, neg)
	case b.tp < tp || b.tp-tp > mixedPos || b.fp < fp || b.fp-fp > mixedNeg:
		d.Fail("confusion counts %d %d do not match the scores at threshold %v", b.tp, b.fp, threshold)
	case pos+neg == 0 && (b.logLossSum != 0 || b.brierSum != 0):
		d.Fail("loss sums without pairs")
	}
	return b
}

func decodeMulticlass(d *binenc.Decoder) *MulticlassState {
	m := &MulticlassState{}
	k := d.Count(1)
	if d.Err() != nil {
		return nil
	}
	if k > 0 {
		m.classes = make([]string, 0, k)
		m.index = make(map[string]uint32, k)
	}
	for i := 0; i < k && d.Err() == nil; i++ {
		c := d.String()
		if d.Err() == nil && i > 0 && c <= m.classes[i-1] {
			d.Fail("class %q out of order", c)
		}
		if d.Err() == nil && i >= math.MaxUint32 {
			d.Fail("too many classes")
		}
		m.index[c] = uint32(i)
		m.classes = append(m.classes, c)
	}
	m.invalid, m.probsMissing, m.logLossCount = d.Uvarint(), d.Uvarint(), d.Uvarint()
	m.logLossSum = d.Float64()
	if d.Err() == nil && !(m.logLossSum >= 0 && m.logLossSum <= math.MaxFloat64) {
		d.Fail("log-loss sum %v", m.logLossSum)
	}
	ne := d.Count(3)
	if d.Err() != nil {
		return nil
	}
	if ne > 0 {
		m.confusion = make(map[uint64]uint64, ne)
	}
	used := make([]bool, k)
	var total uint64
	prev := uint64(0)
	for i := 0; i < ne && d.Err() == nil; i++ {
		a, p, n := d.Uvarint(), d.Uvarint(), d.Uvarint()
		if d.Err() != nil {
			break
		}
		key := a<<32 | p
		if a >= uint64(k) || p >= uint64(k) || n == 0 || (i > 0 && key <= prev) {
			d.Fail("confusion cell (%d, %d) = %d out of order or range", a, p, n)
			break
		}
		prev = key
		used[a], used[p] = true, true
		total = addCounts(d, total, n)
		m.confusion[key] = n
	}
	if d.Err() != nil {
		return nil
	}
	switch {
	case slices.Contains(used, false):
		d.Fail("a class with no pair")
	case addCounts(d, m.logLossCount, m.probsMissing) != total:
		d.Fail("%d pairs with and %d without probabilities, %d pairs", m.logLossCount, m.probsMissing, total)
	case m.logLossCount == 0 && m.logLossSum != 0:
		d.Fail("log-loss sum without pairs")
	}
	return m
}

func decodeRegression(d *binenc.Decoder) *RegressionState {
	r := &RegressionState{n: d.Uvarint(), invalid: d.Uvarint(), zeroLabels: d.Uvarint()}
	r.sumAbs, r.sumSq, r.sumErr = d.Float64(), d.Float64(), d.Float64()
	r.sumAPE, r.sumAPENonZero = d.Float64(), d.Float64()
	r.labelShift, r.labelMean, r.labelM2 = d.Float64(), d.Float64(), d.Float64()
	if d.Err() != nil {
		return nil
	}
	// Sums of finite values can overflow to +Inf and then meet -Inf, so
	// only what no input can produce is rejected.
	switch {
	case r.zeroLabels > r.n:
		d.Fail("%d zero labels of %d", r.zeroLabels, r.n)
	case r.sumAbs < 0 || r.sumSq < 0 || r.sumAPE < 0 || r.sumAPENonZero < 0 || r.labelM2 < 0:
		d.Fail("negative sum of non-negative terms")
	case r.n == 0 && *r != RegressionState{invalid: r.invalid}:
		d.Fail("sums without pairs")
	}
	return r
}
