package reference

import "math"

// linearQuantile returns the q-quantile (0 <= q <= 1) of sorted (not empty)
// by linear interpolation between order statistics: Hyndman and Fan's type
// 7, numpy's np.quantile(x, q, method="linear") and R's default. With
// h = (n-1)q it is x[floor(h)] + (h-floor(h)) * (x[floor(h)+1] - x[floor(h)]).
func linearQuantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	h := float64(n-1) * q
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return sorted[n-1]
	}
	if lo < 0 {
		return sorted[0]
	}
	frac := h - float64(lo)
	a, b := sorted[lo], sorted[lo+1]
	if frac == 0 || a == b {
		return a
	}
	// numpy's lerp: exact at both ends, monotone in frac.
	if frac < 0.5 {
		return a + (b-a)*frac
	}
	return b - (b-a)*(1-frac)
}

// binEdges returns the equal-frequency edges of sorted (not empty): its
// linear quantiles at i/bins for i = 0..bins, equal edges merged; a constant
// sample gets [v, v].
func binEdges(sorted []float64, bins int) []float64 {
	edges := make([]float64, 0, bins+1)
	for i := 0; i <= bins; i++ {
		e := linearQuantile(sorted, float64(i)/float64(bins))
		if len(edges) > 0 && e <= edges[len(edges)-1] {
			continue
		}
		edges = append(edges, e)
	}
	if len(edges) == 1 {
		edges = append(edges, edges[0])
	}
	return edges
}

// histogram counts the values of sorted in the bins of edges (see
// FeatureProfile.Bin).
func histogram(sorted, edges []float64) []uint64 {
	hist := make([]uint64, len(edges)+1)
	for _, v := range sorted {
		if b := binOf(edges, v); b >= 0 {
			hist[b]++
		}
	}
	return hist
}

// quantileSummary returns the sorted values themselves when there are at
// most size of them (exact), else the order statistics
// x_(ceil(n*(j+1)/size)) for j = 0..size-1 (see FeatureProfile).
func quantileSummary(sorted []float64, size int) (q []float64, exact bool) {
	n := len(sorted)
	if n <= size {
		return append([]float64(nil), sorted...), true
	}
	q = make([]float64, size)
	for j := range q {
		k := (n*(j+1)+size-1)/size - 1 // ceil(n(j+1)/size), 0-based
		q[j] = sorted[k]
	}
	return q, false
}
