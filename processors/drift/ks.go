package drift

import (
	"math"
	"slices"
)

// KSMethod chooses how KS2SampMethod computes the p-value, as scipy's
// ks_2samp method argument does.
type KSMethod int

const (
	// KSAuto is exact when max(n1, n2) <= 10000, else asymptotic (scipy's
	// method='auto', and what Evidently's "ks" stattest uses).
	KSAuto KSMethod = iota
	// KSExact is the exact distribution of D_{n1,n2}; it falls back to
	// KSAsymp when lcm(n1, n2) is too large (n1/g >= MaxInt32/(n2/g)) or the
	// computation fails, as scipy does.
	KSExact
	// KSAsymp is the one-sample Kolmogorov distribution with
	// n = round(n1*n2/(n1+n2)), as scipy's method='asymp' (two-sided).
	KSAsymp
)

// ksMaxAutoN is scipy's MAX_AUTO_N: 'auto' is exact up to this sample size.
const ksMaxAutoN = 10000

// KS2Samp is the two-sample Kolmogorov-Smirnov test (two-sided) with
// scipy.stats.ks_2samp's method='auto': stat is D = sup|F_ref - F_cur| and
// pvalue its p-value. It sorts copies of ref and cur; the inputs are not
// modified. Values must be finite. Either sample empty gives (NaN, NaN).
func KS2Samp(ref, cur []float64) (stat, pvalue float64) {
	return KS2SampMethod(ref, cur, KSAuto)
}

// KS2SampMethod is KS2Samp with the p-value method chosen explicitly.
func KS2SampMethod(ref, cur []float64, method KSMethod) (stat, pvalue float64) {
	if len(ref) == 0 || len(cur) == 0 {
		return math.NaN(), math.NaN()
	}
	return KS2SampSorted(sortedCopy(ref), sortedCopy(cur), method)
}

// KS2SampSorted is KS2SampMethod on samples already sorted ascending (a
// reference profile kept sorted saves one sort per window). It does not
// check the order.
func KS2SampSorted(ref, cur []float64, method KSMethod) (stat, pvalue float64) {
	stat, pvalue, _ = ks2Samp(ref, cur, method)
	return stat, pvalue
}

// ksLimit marks a p-value from the limiting Kolmogorov distribution
// (KSPValueLimit), for FeatureDrift.KSMethod.
const ksLimit KSMethod = -1

// ksMethodNames are the FeatureDrift.KSMethod names.
var ksMethodNames = map[KSMethod]string{KSExact: "exact", KSAsymp: "asymp", ksLimit: "limit"}

// ks2Samp is KS2SampSorted that also returns the method the p-value came
// from (KSExact or KSAsymp: 'auto' resolved, and exact's fallbacks taken).
func ks2Samp(ref, cur []float64, method KSMethod) (stat, pvalue float64, used KSMethod) {
	n1, n2 := len(ref), len(cur)
	if n1 == 0 || n2 == 0 {
		return math.NaN(), math.NaN(), method
	}
	minS, maxS := ksExtremes(ref, cur)
	minS = math.Max(0, math.Min(1, -minS))
	d := maxS
	if minS > maxS {
		d = minS
	}

	g := gcd(n1, n2)
	n1g, n2g := n1/g, n2/g
	mode := method
	switch method {
	case KSAuto:
		mode = KSAsymp
		if max(n1, n2) <= ksMaxAutoN {
			mode = KSExact
		}
	case KSExact:
		if float64(n1g) >= float64(math.MaxInt32)/float64(n2g) {
			mode = KSAsymp
		}
	}
	prob := math.Inf(-1)
	if mode == KSExact {
		lcm := n1g * n2
		h := int(math.RoundToEven(d * float64(lcm)))
		d = float64(h) / float64(lcm)
		switch {
		case h == 0:
			prob = 1
		case n1 == n2:
			prob = probOutsideSquare(n1, h)
		default:
			prob = probOutsideInside(n1, n2, g, h)
		}
		if !(prob >= 0 && prob <= 1) {
			mode = KSAsymp
		}
	}
	if mode == KSAsymp {
		m, n := float64(max(n1, n2)), float64(min(n1, n2))
		en := m * n / (m + n)
		prob = kstwoSF(d, int(math.RoundToEven(en)))
	}
	return d, clip01(prob), mode
}

// ksExtremes walks both sorted samples once and returns the minimum and
// maximum of F_ref(x) - F_cur(x) over all sample points x, each ECDF
// computed as count/n as scipy does (searchsorted side='right').
func ksExtremes(a, b []float64) (lo, hi float64) {
	n1, n2 := float64(len(a)), float64(len(b))
	lo, hi = math.Inf(1), math.Inf(-1)
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var v float64
		switch {
		case j == len(b) || (i < len(a) && a[i] <= b[j]):
			v = a[i]
		default:
			v = b[j]
		}
		for i < len(a) && a[i] <= v {
			i++
		}
		for j < len(b) && b[j] <= v {
			j++
		}
		diff := float64(i)/n1 - float64(j)/n2
		lo = math.Min(lo, diff)
		hi = math.Max(hi, diff)
	}
	return lo, hi
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func sortedCopy(xs []float64) []float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s
}
