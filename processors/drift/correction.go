package drift

import (
	"cmp"
	"math"
	"slices"
)

// EvidentlyDriftShare is Evidently's default share of drifted features at
// which a whole dataset counts as drifted (DataDriftPreset drift_share).
const EvidentlyDriftShare = 0.5

// Bonferroni adjusts p-values of m tests as statsmodels' multipletests(...,
// method="bonferroni"): adjusted_i = min(m*p_i, 1), reject_i = p_i <= alpha/m.
func Bonferroni(pvalues []float64, alpha float64) (adjusted []float64, reject []bool) {
	m := float64(len(pvalues))
	adjusted = make([]float64, len(pvalues))
	reject = make([]bool, len(pvalues))
	for i, p := range pvalues {
		adjusted[i] = math.Min(p*m, 1)
		reject[i] = p <= alpha/m
	}
	return adjusted, reject
}

// BenjaminiHochberg controls the false discovery rate as statsmodels'
// multipletests(..., method="fdr_bh"): with p-values sorted ascending,
// adjusted_(k) = min_{j >= k} min(p_(j) * m / j, 1), and the hypotheses up to
// the largest k with p_(k) <= k/m * alpha are rejected. Results are in the
// order of pvalues.
func BenjaminiHochberg(pvalues []float64, alpha float64) (adjusted []float64, reject []bool) {
	n := len(pvalues)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(pvalues[a], pvalues[b]) })
	adjusted = make([]float64, n)
	reject = make([]bool, n)
	last := -1
	for k, i := range order {
		ecdf := float64(k+1) / float64(n)
		if pvalues[i] <= ecdf*alpha {
			last = k
		}
	}
	running := math.Inf(1)
	for k := n - 1; k >= 0; k-- {
		i := order[k]
		running = math.Min(running, pvalues[i]/(float64(k+1)/float64(n)))
		adjusted[i] = math.Min(running, 1)
		reject[i] = k <= last
	}
	return adjusted, reject
}

// DriftShare is the share of true flags, Evidently's share of drifted
// columns; the dataset counts as drifted when it is >= EvidentlyDriftShare.
// No flags give 0.
func DriftShare(flags []bool) float64 {
	if len(flags) == 0 {
		return 0
	}
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return float64(n) / float64(len(flags))
}
