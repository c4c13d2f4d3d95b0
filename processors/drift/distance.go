package drift

import (
	"fmt"
	"math"
)

// Evidently's zero filling (get_binned_data, feel_zeroes=True): a zero
// proportion becomes evidentlyZeroFill, or min(non-zero)/1e6 when the
// smallest non-zero proportion is itself <= evidentlyZeroFill.
const evidentlyZeroFill = 0.0001

// PSI is the population stability index of cur against ref over the same
// bins: sum_i (r_i - c_i) * ln(r_i / c_i), with r, c the proportions
// count/total after Evidently's zero filling (see the package doc). It is
// Evidently's "psi" stattest on binned data.
//
// It panics if the lengths differ. An empty distribution (total 0), a
// negative or non-finite count gives NaN.
func PSI(refCounts, curCounts []float64) float64 {
	r, c, ok := smoothedProportions("PSI", refCounts, curCounts)
	if !ok {
		return math.NaN()
	}
	var s sum
	for i := range r {
		s.add((r[i] - c[i]) * math.Log(r[i]/c[i]))
	}
	return s.value()
}

// KLDivergence is KL(ref || cur) = sum_i r_i * ln(r_i / c_i) in nats, on the
// proportions after Evidently's zero filling, renormalised to sum to 1: it
// equals scipy.stats.entropy(ref, cur) on the filled proportions and
// Evidently's "kl_div" stattest. Without empty bins it is exactly
// scipy.stats.entropy(refCounts, curCounts).
//
// It panics if the lengths differ. An empty distribution (total 0), a
// negative or non-finite count gives NaN.
func KLDivergence(refCounts, curCounts []float64) float64 {
	r, c, ok := smoothedProportions("KLDivergence", refCounts, curCounts)
	if !ok {
		return math.NaN()
	}
	normalize(r)
	normalize(c)
	var s sum
	for i := range r {
		s.add(relEntr(r[i], c[i]))
	}
	return s.value()
}

// JensenShannonDistance is scipy.spatial.distance.jensenshannon(ref, cur)
// with the natural logarithm: sqrt((KL(p||m) + KL(q||m)) / 2), m = (p+q)/2,
// on the raw proportions (no zero filling: every term is finite). It lies in
// [0, sqrt(ln 2)] ~ [0, 0.8326]. Evidently's "jensenshannon" stattest calls
// jensenshannon with base=None, so this is its value too; divide by
// sqrt(ln 2) for the base-2 distance in [0, 1].
//
// It panics if the lengths differ. An empty distribution (total 0), a
// negative or non-finite count gives NaN.
func JensenShannonDistance(refCounts, curCounts []float64) float64 {
	p, q, ok := proportions("JensenShannonDistance", refCounts, curCounts)
	if !ok {
		return math.NaN()
	}
	var left, right sum
	for i := range p {
		m := (p[i] + q[i]) / 2
		left.add(relEntr(p[i], m))
		right.add(relEntr(q[i], m))
	}
	return math.Sqrt((left.value() + right.value()) / 2)
}

// HellingerDistance is sqrt(1 - sum_i sqrt(p_i * q_i)) on the raw
// proportions, the Bhattacharyya coefficient clipped to [0, 1] first; it lies
// in [0, 1] and equals (1/sqrt 2) * ||sqrt p - sqrt q||_2. This is
// Evidently's "hellinger" stattest for categorical features; for numeric
// ones Evidently bins with HellingerBins.
//
// It panics if the lengths differ. An empty distribution (total 0), a
// negative or non-finite count gives NaN.
func HellingerDistance(refCounts, curCounts []float64) float64 {
	p, q, ok := proportions("HellingerDistance", refCounts, curCounts)
	if !ok {
		return math.NaN()
	}
	var s sum
	for i := range p {
		s.add(math.Sqrt(p[i] * q[i]))
	}
	bc := math.Max(0, math.Min(1, s.value()))
	return math.Sqrt(1 - bc)
}

// relEntr is scipy.special.rel_entr for x, y >= 0.
func relEntr(x, y float64) float64 {
	switch {
	case x > 0 && y > 0:
		return x * math.Log(x/y)
	case x == 0 && y >= 0:
		return 0
	default:
		return math.Inf(1)
	}
}

// proportions returns count/total for both distributions; ok is false when
// either is empty or holds a negative or non-finite count.
func proportions(fn string, refCounts, curCounts []float64) (r, c []float64, ok bool) {
	if len(refCounts) != len(curCounts) {
		panic(fmt.Sprintf("drift: %s: %d reference bins but %d current bins", fn, len(refCounts), len(curCounts)))
	}
	r, okR := toProportions(refCounts)
	c, okC := toProportions(curCounts)
	return r, c, okR && okC
}

func toProportions(counts []float64) ([]float64, bool) {
	var total sum
	for _, x := range counts {
		if !(x >= 0) || math.IsInf(x, 1) {
			return nil, false
		}
		total.add(x)
	}
	t := total.value()
	if t == 0 {
		return nil, false
	}
	p := make([]float64, len(counts))
	for i, x := range counts {
		p[i] = x / t
	}
	return p, true
}

func smoothedProportions(fn string, refCounts, curCounts []float64) (r, c []float64, ok bool) {
	r, c, ok = proportions(fn, refCounts, curCounts)
	if ok {
		fillZeros(r)
		fillZeros(c)
	}
	return r, c, ok
}

// fillZeros replaces zero proportions as Evidently's get_binned_data does.
// p has at least one non-zero entry.
func fillZeros(p []float64) {
	minNZ := math.Inf(1)
	for _, x := range p {
		if x != 0 {
			minNZ = math.Min(minNZ, x)
		}
	}
	fill := evidentlyZeroFill
	if minNZ <= evidentlyZeroFill {
		fill = minNZ / 1e6
	}
	for i, x := range p {
		if x == 0 {
			p[i] = fill
		}
	}
}

func normalize(p []float64) {
	var s sum
	for _, x := range p {
		s.add(x)
	}
	t := s.value()
	for i := range p {
		p[i] /= t
	}
}

// sum is Neumaier's compensated summation: its error does not grow with the
// number of terms, so results stay within a few ulps of numpy's pairwise
// sums whatever the order.
type sum struct{ s, c float64 }

func (s *sum) add(x float64) {
	t := s.s + x
	if math.Abs(s.s) >= math.Abs(x) {
		s.c += (s.s - t) + x
	} else {
		s.c += (x - t) + s.s
	}
	s.s = t
}

func (s *sum) value() float64 {
	if math.IsInf(s.s, 0) || math.IsNaN(s.s) {
		return s.s // the compensation is NaN once an infinity was added
	}
	return s.s + s.c
}
