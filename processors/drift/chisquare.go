package drift

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// ChiSquare is Evidently's "chisquare" stattest on category counts: Pearson's
// goodness-of-fit test of cur against expected frequencies ref_i * (n_cur /
// n_ref), i.e. scipy.stats.chisquare(cur, ref*n_cur/n_ref), with k-1 degrees
// of freedom for k categories. A category seen in cur but never in ref has
// expected frequency 0, so stat = +Inf and pvalue = 0 (as scipy).
//
// Categories empty in both are ignored (Evidently never lists them). With a
// single category left, scipy returns pvalue NaN (0 degrees of freedom);
// ChiSquare returns stat 0, pvalue 1 (Evidently's decision is the same: no
// drift). Either side empty (total 0), a negative or non-finite count gives
// (NaN, NaN). It panics if the lengths differ.
func ChiSquare(refCounts, curCounts []float64) (stat, pvalue float64) {
	nRef, nCur, ok := totals("ChiSquare", refCounts, curCounts)
	if !ok {
		return math.NaN(), math.NaN()
	}
	scale := nCur / nRef
	var s sum
	k := 0
	for i := range refCounts {
		obs, exp := curCounts[i], refCounts[i]*scale
		if obs == 0 && exp == 0 {
			continue
		}
		k++
		d := obs - exp
		s.add(d * d / exp)
	}
	if k < 2 {
		return 0, 1
	}
	stat = s.value()
	return stat, chi2SF(stat, k-1)
}

// ChiSquareContingency is scipy.stats.chi2_contingency on the 2 x k table
// whose rows are refCounts and curCounts (default correction=True: Yates'
// continuity correction when dof == 1, i.e. two categories). Expected
// frequencies are row total * column total / grand total; dof = k-1.
//
// Categories empty in both are dropped (scipy raises on the zero expected
// frequency they cause; the result is scipy's on the table without them).
// With one category left dof is 0 and the result is (0, 1, 0) as scipy's.
// Either row empty, a negative or non-finite count gives (NaN, NaN, 0). It
// panics if the lengths differ.
func ChiSquareContingency(refCounts, curCounts []float64) (stat, pvalue float64, dof int) {
	nRef, nCur, ok := totals("ChiSquareContingency", refCounts, curCounts)
	if !ok {
		return math.NaN(), math.NaN(), 0
	}
	var cols []int
	for i := range refCounts {
		if refCounts[i]+curCounts[i] > 0 {
			cols = append(cols, i)
		}
	}
	dof = len(cols) - 1
	if dof == 0 {
		return 0, 1, 0
	}
	total := nRef + nCur
	var s sum
	for _, row := range [2]struct {
		counts []float64
		n      float64
	}{{refCounts, nRef}, {curCounts, nCur}} {
		for _, i := range cols {
			colTotal := refCounts[i] + curCounts[i]
			exp := row.n * colTotal / total
			obs := row.counts[i]
			if dof == 1 { // Yates: move obs towards exp by at most 0.5
				diff := exp - obs
				obs += math.Min(0.5, math.Abs(diff)) * sign(diff)
			}
			d := obs - exp
			s.add(d * d / exp)
		}
	}
	stat = s.value()
	return stat, chi2SF(stat, dof), dof
}

// ZTest is Evidently's "z" stattest for a binary feature: the two-sided
// two-proportion z-test (pooled variance) of the share of "not the first
// category" in ref and cur, pvalue = 2*(1 - Phi(|z|)). The first category is
// the first bin non-empty in either; Evidently takes the smallest value, so
// give bins in ascending order of value for more than two categories. When
// both sides hold one and the same single category, pvalue is 1. Either side
// empty, a negative or non-finite count gives NaN. It panics if the lengths
// differ.
func ZTest(refCounts, curCounts []float64) (pvalue float64) {
	nRef, nCur, ok := totals("ZTest", refCounts, curCounts)
	if !ok {
		return math.NaN()
	}
	first := -1
	for i := range refCounts {
		if refCounts[i]+curCounts[i] > 0 {
			first = i
			break
		}
	}
	if refCounts[first] == nRef && curCounts[first] == nCur {
		return 1 // both constant, same value
	}
	p1 := (nRef - refCounts[first]) / nRef
	p2 := (nCur - curCounts[first]) / nCur
	pooled := (p1*nRef + p2*nCur) / (nRef + nCur)
	z := (p1 - p2) / math.Sqrt(pooled*(1-pooled)*(1/nRef+1/nCur))
	return 2 * (1 - normalCDF(math.Abs(z)))
}

func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// chi2SF is scipy.stats.chi2.sf(x, dof) = Q(dof/2, x/2).
func chi2SF(x float64, dof int) float64 {
	if math.IsInf(x, 1) {
		return 0
	}
	return distuv.ChiSquared{K: float64(dof)}.Survival(x)
}

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

// totals checks counts as proportions does and returns both totals.
func totals(fn string, refCounts, curCounts []float64) (nRef, nCur float64, ok bool) {
	if len(refCounts) != len(curCounts) {
		panic(fmt.Sprintf("drift: %s: %d reference bins but %d current bins", fn, len(refCounts), len(curCounts)))
	}
	nRef, okR := total(refCounts)
	nCur, okC := total(curCounts)
	return nRef, nCur, okR && okC && nRef > 0 && nCur > 0
}

func total(counts []float64) (float64, bool) {
	var s sum
	for _, x := range counts {
		if !(x >= 0) || math.IsInf(x, 1) {
			return 0, false
		}
		s.add(x)
	}
	return s.value(), true
}
