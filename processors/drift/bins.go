package drift

import (
	"math"
	"slices"
	"sort"
)

// evidentlyMaxValueBins is the number of distinct reference values up to
// which Evidently bins a numeric feature by value instead of by histogram.
const evidentlyMaxValueBins = 20

// Bins holds reference and current counts over common bins, ready for PSI,
// KLDivergence, JensenShannonDistance and HellingerDistance. Exactly one of
// Edges and Values is set.
type Bins struct {
	// Edges are histogram bin edges, len(Ref)+1 of them: bin i holds
	// Edges[i] <= x < Edges[i+1], the last bin also x == Edges[len-1].
	Edges []float64
	// Values are the distinct values, ascending, when each value is a bin.
	Values []float64
	Ref    []float64 // reference count per bin
	Cur    []float64 // current count per bin
}

// EvidentlyBins bins a numeric feature as Evidently's get_binned_data does
// for its "psi", "kl_div" and "jensenshannon" stattests: when the reference
// has more than 20 distinct values, a histogram over SturgesEdges of ref and
// cur together; otherwise one bin per distinct value of ref and cur. (The
// n_bins argument those stattests take is not used by Evidently 0.7 for
// numeric data.) Values must be finite.
func EvidentlyBins(ref, cur []float64) Bins {
	if countDistinct(ref) > evidentlyMaxValueBins {
		edges := SturgesEdges(slices.Concat(ref, cur))
		return Bins{Edges: edges, Ref: HistogramCounts(ref, edges), Cur: HistogramCounts(cur, edges)}
	}
	values := distinct(slices.Concat(ref, cur))
	return Bins{Values: values, Ref: valueCounts(ref, values), Cur: valueCounts(cur, values)}
}

// HellingerBins bins a numeric feature as Evidently's "hellinger" stattest
// does: a histogram over SturgesEdges of the distinct values of ref and cur
// (not of the samples themselves). HellingerDistance(b.Ref, b.Cur) is then
// Evidently's value.
func HellingerBins(ref, cur []float64) Bins {
	edges := SturgesEdges(distinct(slices.Concat(ref, cur)))
	return Bins{Edges: edges, Ref: HistogramCounts(ref, edges), Cur: HistogramCounts(cur, edges)}
}

// SturgesEdges is numpy.histogram_bin_edges(xs, bins="sturges"): equal-width
// bins over [min, max], width (max-min)/(log2(n)+1), so ceil(log2(n)+1) bins
// up to rounding. A constant sample gets one bin [x-0.5, x+0.5]; an empty
// one [0, 1]. Values must be finite.
func SturgesEdges(xs []float64) []float64 {
	if len(xs) == 0 {
		return []float64{0, 1}
	}
	lo, hi := slices.Min(xs), slices.Max(xs)
	first, last := lo, hi
	if first == last {
		first, last = first-0.5, last+0.5
	}
	nbins := 1
	if width := (hi - lo) / (math.Log2(float64(len(xs))) + 1); width != 0 {
		nbins = int(math.Ceil((last - first) / width))
	}
	return linspace(first, last, nbins+1)
}

// linspace is numpy.linspace(start, stop, num) (endpoint included), rounding
// for rounding.
func linspace(start, stop float64, num int) []float64 {
	y := make([]float64, num)
	div := float64(num - 1)
	delta := stop - start
	step := delta / div
	for i := range y {
		if step == 0 {
			y[i] = float64(i)/div*delta + start
		} else {
			y[i] = float64(i)*step + start
		}
	}
	y[num-1] = stop
	return y
}

// HistogramCounts counts xs per bin of edges as numpy.histogram(xs, edges):
// bin i holds edges[i] <= x < edges[i+1], the last bin is closed on the
// right, values outside [edges[0], edges[last]] are not counted.
func HistogramCounts(xs, edges []float64) []float64 {
	counts := make([]float64, len(edges)-1)
	last := edges[len(edges)-1]
	for _, x := range xs {
		if x < edges[0] || x > last {
			continue
		}
		// Number of edges <= x, minus one, is the bin.
		i := sort.Search(len(edges), func(k int) bool { return edges[k] > x }) - 1
		if i == len(counts) { // x == last edge
			i--
		}
		counts[i]++
	}
	return counts
}

func distinct(xs []float64) []float64 {
	s := sortedCopy(xs)
	return slices.Compact(s)
}

func countDistinct(xs []float64) int { return len(distinct(xs)) }

func valueCounts(xs, values []float64) []float64 {
	counts := make([]float64, len(values))
	for _, x := range xs {
		i, _ := slices.BinarySearch(values, x)
		counts[i]++
	}
	return counts
}
