package drift

import (
	"math"
)

// Bounds are the error bounds of a FeatureDrift's numbers: the number
// computed from every value of both sides (the exact one, scipy's and
// Evidently's) lies within the stated bound of the reported one. 0 means
// exact; NaN unknown (a number that is not computed, or a reference stored
// before profiles carried their rank error). docs/DRIFT.md ("Error bounds")
// derives each one; in short, with ε the window's rank error (the largest
// error of its CDF at any point: stats.ValueSketch.RankErrorBound, or a
// coarse histogram's bucket share) and ε_r the reference's:
//
//   - Bin masses: the mass of the window in a reference bin is the CDF
//     difference at its two edges, so it is within ε_a + ε_b of the true
//     one (an edge outside the window's [Min, Max] is exact: the CDF is 0
//     or 1 there). PSI, KL, JS and Hellinger are sums of per-bin terms; each
//     term's range over its bin's box of possible (reference, window)
//     masses is found in closed form (each term is monotone or convex in
//     each mass), and the metric's range is the range of the sum (through
//     the square root for JS and Hellinger, the renormalisation for KL).
//     The bound is the larger distance from the reported value to either
//     end.
//   - out_of_range_rate: the mass of the underflow and overflow bins,
//     within the error of the CDF at the reference's Min and Max.
//   - KS statistic: within ε + ε_r (+ 1/M for a reference quantile summary of
//     M values); its p-value within the p-values at D ± that bound.
//   - Wasserstein-1: within ε (Max-Min) of the window plus ε_r (Max-Min) of
//     the reference: the integral of the CDF error, zero outside [Min, Max].
//
// The probabilistic part of a KLL sketch's rank error holds with
// probability at least 1 - stats.ValueSketchFailureProb; everything else is
// deterministic.
type Bounds struct {
	Score                             float64 // of FeatureDrift.Score (the method in force)
	PSI, KL, JensenShannon, Hellinger float64
	Wasserstein, WassersteinNorm      float64
	KSStat, KSPValue                  float64
	OutOfRangeRate                    float64
}

// exactBounds are the bounds of numbers computed from every value.
func exactBounds() Bounds { return Bounds{} }

// unknownBounds are the bounds of numbers not computed.
func unknownBounds() Bounds {
	nan := math.NaN()
	return Bounds{Score: nan, PSI: nan, KL: nan, JensenShannon: nan, Hellinger: nan, Wasserstein: nan, WassersteinNorm: nan, KSStat: nan, KSPValue: nan, OutOfRangeRate: nan}
}

// Exact reports whether every bound is 0.
func (b Bounds) Exact() bool {
	return b.Score == 0 && b.PSI == 0 && b.KL == 0 && b.JensenShannon == 0 && b.Hellinger == 0 &&
		(b.Wasserstein == 0 || math.IsNaN(b.Wasserstein)) && (b.KSStat == 0 || math.IsNaN(b.KSStat)) &&
		(b.KSPValue == 0 || math.IsNaN(b.KSPValue)) && (b.OutOfRangeRate == 0 || math.IsNaN(b.OutOfRangeRate))
}

// roundingSlack covers floating-point rounding between the reported value
// and the ends of its range (both computed with compensated sums).
const roundingSlack = 1e-12

// massBox is the range of one bin's true proportion.
type massBox struct{ lo, hi float64 }

// binBoxes returns, per bin, the range of the true proportion given the
// estimated counts (summing to n) and the error of the CDF at each of the
// len(counts)-1 boundaries between bins (as shares of n).
func binBoxes(counts []float64, n float64, boundaryErr []float64) []massBox {
	out := make([]massBox, len(counts))
	for i, c := range counts {
		e := 0.0
		if i > 0 {
			e += boundaryErr[i-1]
		}
		if i < len(boundaryErr) {
			e += boundaryErr[i]
		}
		p := c / n
		out[i] = massBox{math.Max(0, p-e), math.Min(1, p+e)}
	}
	return out
}

// smoothedBox widens a proportion range to what Evidently's zero filling
// can make of it (see fillZeros): a bin that may hold no value (fewer than
// one value's share) may be filled with any value from min(non-zero)/1e6,
// at least 1/(n 1e6), up to evidentlyZeroFill; a non-empty one holds at
// least 1/n.
func smoothedBox(b massBox, n float64) massBox {
	if b.lo*n < 1 {
		return massBox{1 / (n * 1e6), math.Max(b.hi, evidentlyZeroFill)}
	}
	return b
}

// termRange returns the range of f over the box [r] x [c] for the per-bin
// terms of the histogram distances.
type termKind int

const (
	termPSI termKind = iota // (r-c) ln(r/c)
	termKL                  // r ln(r/c)
	termJS                  // rel_entr(r, m) + rel_entr(c, m), m = (r+c)/2
	termBC                  // sqrt(r c)
)

func termValue(k termKind, r, c float64) float64 {
	switch k {
	case termPSI:
		return (r - c) * math.Log(r/c)
	case termKL:
		return relEntr(r, c)
	case termJS:
		m := (r + c) / 2
		return relEntr(r, m) + relEntr(c, m)
	default:
		return math.Sqrt(r * c)
	}
}

func termRange(k termKind, r, c massBox) (lo, hi float64) {
	corners := [4]float64{termValue(k, r.lo, c.lo), termValue(k, r.lo, c.hi), termValue(k, r.hi, c.lo), termValue(k, r.hi, c.hi)}
	lo, hi = corners[0], corners[0]
	for _, v := range corners[1:] {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	switch k {
	case termPSI, termJS:
		// Jointly convex, 0 on r = c, increasing in |r - c| along either
		// axis: the maximum is at a corner, the minimum 0 when the ranges
		// meet, else at the nearest corner (already among the corners).
		if r.lo <= c.hi && c.lo <= r.hi {
			lo = 0
		}
	case termKL:
		// Decreasing in c; in r convex with its minimum at r = c/e: the
		// minimum is on the edge c = c.hi.
		rs := math.Min(math.Max(c.hi/math.E, r.lo), r.hi)
		lo = math.Min(lo, termValue(k, rs, c.hi))
	}
	// termBC increases in both: the corners hold both ends.
	return lo, hi
}

// sumRange sums termRange over the bins.
func sumRange(k termKind, r, c []massBox) (lo, hi float64) {
	var slo, shi sum
	for i := range r {
		a, b := termRange(k, r[i], c[i])
		slo.add(a)
		shi.add(b)
	}
	return slo.value(), shi.value()
}

// spread is the bound of a reported value v whose true value lies in
// [lo, hi].
func spread(v, lo, hi float64) float64 {
	b := math.Max(math.Max(v-lo, hi-v), 0)
	if b == 0 {
		return 0
	}
	return b + roundingSlack
}

// histogramBounds returns the bounds of PSI, KL, JS and Hellinger computed
// from the reference and window counts (ref, cur) over the same bins, given
// the errors of each side's CDF at the boundaries between bins (shares of
// each side's total). A side with every boundary error 0 is exact.
func histogramBounds(ref, cur, refErr, curErr []float64, psi, kl, js, hell float64) (bPSI, bKL, bJS, bHell float64) {
	if allZero(refErr) && allZero(curErr) {
		return 0, 0, 0, 0
	}
	if anyNaN(refErr) || anyNaN(curErr) {
		nan := math.NaN()
		return nan, nan, nan, nan
	}
	nr, nc := sumOf(ref), sumOf(cur)
	rb, cb := binBoxes(ref, nr, refErr), binBoxes(cur, nc, curErr)

	// JS and Hellinger use the raw proportions.
	dlo, dhi := sumRange(termJS, rb, cb)
	bJS = spread(js, math.Sqrt(math.Max(dlo, 0)/2), math.Sqrt(math.Max(dhi, 0)/2))
	blo, bhi := sumRange(termBC, rb, cb)
	clip := func(x float64) float64 { return math.Max(0, math.Min(1, x)) }
	bHell = spread(hell, math.Sqrt(1-clip(bhi)), math.Sqrt(1-clip(blo)))

	// PSI and KL use the zero-filled proportions.
	rs, cs := make([]massBox, len(rb)), make([]massBox, len(cb))
	for i := range rb {
		rs[i], cs[i] = smoothedBox(rb[i], nr), smoothedBox(cb[i], nc)
	}
	if allZero(refErr) { // exact: the same filling as the reported value's
		r, _ := toProportions(ref)
		fillZeros(r)
		for i := range rs {
			rs[i] = massBox{r[i], r[i]}
		}
	}
	plo, phi := sumRange(termPSI, rs, cs)
	bPSI = spread(psi, plo, phi)
	// KL renormalises the filled proportions: KL = A/Sr + ln(Sc/Sr), with A
	// the sum of r ln(r/c) terms and S each side's filled total.
	alo, ahi := sumRange(termKL, rs, cs)
	srLo, srHi := filledTotalRange(rs)
	scLo, scHi := filledTotalRange(cs)
	klLo, klHi := math.Inf(1), math.Inf(-1)
	for _, a := range []float64{alo, ahi} {
		for _, sr := range []float64{srLo, srHi} {
			for _, sc := range []float64{scLo, scHi} {
				v := a/sr + math.Log(sc/sr)
				klLo, klHi = math.Min(klLo, v), math.Max(klHi, v)
			}
		}
	}
	bKL = spread(kl, klLo, klHi)
	return bPSI, bKL, bJS, bHell
}

// filledTotalRange is the range of the sum of filled proportions: at least
// 1, plus at most evidentlyZeroFill for every bin that may be filled.
func filledTotalRange(bs []massBox) (lo, hi float64) {
	lo, hi = 1, 1
	var s sum
	exact := true
	for _, b := range bs {
		if b.lo != b.hi {
			exact = false
		}
		s.add(b.lo)
		if b.lo <= evidentlyZeroFill && b.lo < b.hi {
			hi += evidentlyZeroFill
		}
	}
	if exact {
		v := s.value()
		return v, v
	}
	return lo, math.Max(hi, 1)
}

func allZero(xs []float64) bool {
	for _, x := range xs {
		if x != 0 {
			return false
		}
	}
	return true
}

func anyNaN(xs []float64) bool {
	for _, x := range xs {
		if x != x {
			return true
		}
	}
	return false
}

func sumOf(xs []float64) float64 {
	var s sum
	for _, x := range xs {
		s.add(x)
	}
	return s.value()
}
