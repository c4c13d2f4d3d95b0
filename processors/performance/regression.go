package performance

import "math"

// RegressionState is the state of a regression model: error sums and the
// labels' count, mean and sum of squared deviations (M2), merged with Chan
// et al.'s parallel formula, for R2. The mean is kept relative to a shift,
// the state's first label, so that labels with a large offset and a small
// spread (1e6 +- 0.01) keep their digits through merges.
type RegressionState struct {
	n, invalid, zeroLabels uint64
	sumAbs, sumSq, sumErr  float64 // of e = pred - actual
	sumAPE                 float64 // |e| / max(|actual|, eps)
	sumAPENonZero          float64 // |e| / |actual| over actual != 0
	labelShift             float64 // the first label
	labelMean, labelM2     float64 // of label - labelShift
}

// AddRegression adds a labelled pair of a regression model: the prediction,
// the actual value and the label's delay in seconds. A pair with a NaN or
// infinite value is counted as invalid and nothing else is recorded.
func (s *State) AddRegression(pred, actual float64, delaySeconds float64) {
	r := s.regression()
	if math.IsNaN(pred-pred) || math.IsNaN(actual-actual) { // NaN or ±Inf
		r.invalid++
		return
	}
	r.n++
	e := pred - actual
	ae := math.Abs(e)
	r.sumAbs += ae
	r.sumSq += e * e
	r.sumErr += e
	r.sumAPE += ae / max(math.Abs(actual), probEps)
	if actual == 0 {
		r.zeroLabels++
	} else {
		r.sumAPENonZero += ae / math.Abs(actual)
	}
	if r.n == 1 {
		r.labelShift = actual
	}
	y := actual - r.labelShift
	d := y - r.labelMean
	r.labelMean += d / float64(r.n)
	r.labelM2 += d * (y - r.labelMean)
	s.addDelay(delaySeconds)
}

func (r *RegressionState) merge(o *RegressionState) {
	r.invalid += o.invalid
	if o.n == 0 {
		return
	}
	if r.n == 0 {
		invalid := r.invalid
		*r = *o
		r.invalid = invalid
		return
	}
	na, nb := float64(r.n), float64(o.n)
	n := na + nb
	d := (o.labelShift - r.labelShift) + (o.labelMean - r.labelMean)
	r.labelMean += d * (nb / n)
	r.labelM2 += o.labelM2 + d*d*(na*nb/n)
	r.n += o.n
	r.zeroLabels += o.zeroLabels
	r.sumAbs += o.sumAbs
	r.sumSq += o.sumSq
	r.sumErr += o.sumErr
	r.sumAPE += o.sumAPE
	r.sumAPENonZero += o.sumAPENonZero
}

func (r *RegressionState) metrics() RegressionMetrics {
	m := RegressionMetrics{N: r.n, ZeroLabels: r.zeroLabels}
	nan := math.NaN()
	if r.n == 0 {
		m.MAE, m.RMSE, m.MAPE, m.MAPENonZero, m.R2, m.MeanError = nan, nan, nan, nan, nan, nan
		return m
	}
	n := float64(r.n)
	m.MAE = r.sumAbs / n
	m.RMSE = math.Sqrt(r.sumSq / n)
	m.MAPE = r.sumAPE / n
	m.MAPENonZero = nan
	if nz := r.n - r.zeroLabels; nz > 0 {
		m.MAPENonZero = r.sumAPENonZero / float64(nz)
	}
	m.MeanError = r.sumErr / n
	switch {
	case r.n < 2:
		m.R2 = nan
	case r.labelM2 != 0:
		m.R2 = 1 - r.sumSq/r.labelM2
	case r.sumSq != 0:
		m.R2 = 0
	default:
		m.R2 = 1
	}
	return m
}
