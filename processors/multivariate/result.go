package multivariate

import (
	"math"
	"time"

	"github.com/vigil-ml/vigil/processors/stats"
)

// Result is one multivariate drift evaluation of a window (a row of
// vigil_multivariate_drift): the reconstruction error of a window against
// the model of reference RefID, or an embedding method's distance.
type Result struct {
	Model, ModelVersion string
	Segment             string // "" for all events, "key=value" for a segment
	Start, End          time.Time
	// Feature is Feature ("__multivariate") for the reconstruction error,
	// the feature's name for an embedding method.
	Feature string
	Method  string
	RefID   uint64
	// Score is the window's mean reconstruction error (or the method's
	// distance); NaN when the window has no scored event.
	Score float64
	// SamplingError is NannyML's: the sample standard deviation of the
	// window's errors over the square root of their number (NaN below 2).
	SamplingError float64
	// Lower and Upper are the thresholds; NaN: none.
	Lower, Upper float64
	Drifted      bool
	// N is the number of events scored (or vectors compared), Events the
	// events of the window.
	N, Events uint64
	// P50 and P95 are quantiles of the window's errors, from their value
	// sketch (NaN when the window was counted without value sketches).
	P50, P95 float64
	// Components is the number of principal components (or the embedding's
	// dimension).
	Components int
}

// Evaluate returns the reconstruction-error result of window state st (a
// merge of partitions or windows) against m, the model of reference refID:
// the mean of the errors st holds under ErrorFeature(refID). A window
// without them (counted before the reference, or by a processor that had
// not loaded it yet) has N 0 and Score NaN, and does not drift.
func Evaluate(m *Model, refID uint64, st *stats.WindowState) Result {
	r := Result{
		Model: st.Model, ModelVersion: st.ModelVersion, Segment: st.Segment,
		Start: time.UnixMilli(st.WindowStart).UTC(), End: time.UnixMilli(st.WindowEnd).UTC(),
		Feature: Feature, Method: Method, RefID: refID,
		Score: math.NaN(), SamplingError: math.NaN(), P50: math.NaN(), P95: math.NaN(),
		Lower: m.Lower, Upper: m.Upper, Events: st.Events, Components: len(m.Components),
	}
	fs := st.Features[ErrorFeature(refID)]
	if fs == nil || fs.Num.Count == 0 {
		return r
	}
	r.N = fs.Num.Count
	r.Score = fs.Num.Mean()
	if r.N >= 2 {
		r.SamplingError = math.Sqrt(fs.Num.VarianceSample() / float64(r.N))
	}
	if fs.Values.Count() > 0 {
		r.P50, r.P95 = fs.Values.Quantile(0.5), fs.Values.Quantile(0.95)
	}
	r.Drifted = m.Drifted(r.Score)
	return r
}
