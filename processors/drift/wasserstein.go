package drift

import "math"

// evidentlyMinStd is the floor Evidently's "wasserstein" stattest puts under
// the reference standard deviation: norm = max(std(ref), 0.001).
const evidentlyMinStd = 0.001

// WassersteinDistance is the first Wasserstein (earth mover's) distance
// between the empirical distributions of ref and cur, the integral of
// |F_ref(x) - F_cur(x)| dx, as scipy.stats.wasserstein_distance(ref, cur).
// It sorts copies; the inputs are not modified. Values must be finite;
// either sample empty gives NaN.
func WassersteinDistance(ref, cur []float64) float64 {
	if len(ref) == 0 || len(cur) == 0 {
		return math.NaN()
	}
	return WassersteinDistanceSorted(sortedCopy(ref), sortedCopy(cur))
}

// WassersteinDistanceSorted is WassersteinDistance on samples already sorted
// ascending. It does not check the order.
func WassersteinDistanceSorted(ref, cur []float64) float64 {
	if len(ref) == 0 || len(cur) == 0 {
		return math.NaN()
	}
	n1, n2 := float64(len(ref)), float64(len(cur))
	var s sum
	i, j := 0, 0
	// Walk the merged order: between consecutive merged values x_k < x_{k+1}
	// both ECDFs are constant, at (#ref <= x_k)/n1 and (#cur <= x_k)/n2.
	prev := math.Min(ref[0], cur[0])
	for i < len(ref) || j < len(cur) {
		var v float64
		if j == len(cur) || (i < len(ref) && ref[i] <= cur[j]) {
			v = ref[i]
		} else {
			v = cur[j]
		}
		if v > prev {
			s.add(math.Abs(float64(i)/n1-float64(j)/n2) * (v - prev))
			prev = v
		}
		for i < len(ref) && ref[i] <= v {
			i++
		}
		for j < len(cur) && cur[j] <= v {
			j++
		}
	}
	return s.value()
}

// WassersteinNormed is Evidently's "wasserstein" stattest:
// WassersteinDistance(ref, cur) / max(std(ref), 0.001), std the population
// standard deviation (numpy's default ddof=0). A constant reference is
// therefore divided by 0.001. Either sample empty gives NaN.
func WassersteinNormed(ref, cur []float64) float64 {
	if len(ref) == 0 || len(cur) == 0 {
		return math.NaN()
	}
	return WassersteinDistance(ref, cur) / math.Max(stdPopulation(ref), evidentlyMinStd)
}

// stdPopulation is numpy.std(xs) (ddof=0), by two compensated passes.
func stdPopulation(xs []float64) float64 {
	var s sum
	for _, x := range xs {
		s.add(x)
	}
	mean := s.value() / float64(len(xs))
	var ss sum
	for _, x := range xs {
		d := x - mean
		ss.add(d * d)
	}
	return math.Sqrt(ss.value() / float64(len(xs)))
}
