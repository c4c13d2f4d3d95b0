package drift

import (
	"math"
	"slices"
	"sort"

	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// FeatureDrift is the drift of one feature of one window (or of any merge of
// window states) against a reference profile.
//
// Numeric features: PSI, KL, Jensen-Shannon and Hellinger compare the
// reference histogram on its quantile bins (reference.FeatureProfile: Edges,
// Hist, with underflow and overflow bins) with the window's values on the
// same bins; KS and Wasserstein compare the reference's quantile summary
// with the window's value summary. When both summaries hold every value
// (Approx false) KS and Wasserstein are exactly scipy's ks_2samp and
// wasserstein_distance (KSMethod "exact" or "asymp", as scipy's 'auto');
// otherwise the KS statistic is within Bounds.KSStat (the reference
// summary's 1/M plus the rank errors of both sides) of the exact one, and
// its p-value is the limiting Kolmogorov distribution's for the true sample
// sizes (KSPValueLimit, KSMethod "limit"). On large samples a KS verdict
// would flag sketch error as drift, which is one more reason Evidently's
// default there is Wasserstein. Every number carries its bound in Bounds
// (Exact when all are 0). A window kept without value summaries
// (stats.FeatureState.BinsComplete) gets the histogram distances from its
// coarse histogram, no KS or Wasserstein, and Jensen-Shannon for the verdict
// where the default would have been KS or Wasserstein.
//
// String and bool features: the same distances and chi-square compare the
// category frequencies over the union of categories.
type FeatureDrift struct {
	Feature   string
	Kind      schemas.Kind
	Method    Method  // the method the verdict uses (Evidently's default choice)
	Score     float64 // the method's value: a p-value or a distance
	Threshold float64
	Drifted   bool
	// ThresholdFromReference: Threshold is the reference's chunk scores'
	// mean + 3 std (Override.FromReference).
	ThresholdFromReference bool

	NRef, NCur uint64 // values compared (missing, NaN and Inf excluded)
	Approx     bool   // KS and Wasserstein computed from a summary on either side (see above)
	// Exact: every number is computed from every value (all Bounds 0).
	Exact bool
	// Bounds bound the error of every number against the one computed
	// from all values (see Bounds).
	Bounds Bounds
	// KSMethod says how KSPValue was computed: "exact" (scipy's exact
	// distribution), "asymp" (scipy's finite-n kstwo, as ks_2samp's
	// method='auto' for larger samples), "limit" (the limiting Kolmogorov
	// distribution, for a statistic from sketches) or "" (not computed).
	KSMethod string
	// Source of the window's numeric values: "values" (every value),
	// "sketch" (a KLL sketch), "bins" (a coarse histogram: the window was
	// kept without value sketches, KS and Wasserstein are not computed);
	// "" for categorical features.
	Source string
	// Reason is why the feature could not be evaluated (WindowDrift.Skipped);
	// "" for evaluated features.
	Reason string

	PSI, KL, JensenShannon, Hellinger float64
	Wasserstein, WassersteinNorm      float64 // numeric only, NaN otherwise
	KSStat, KSPValue                  float64 // numeric only, NaN otherwise
	ChiSquare, ChiSquarePValue        float64 // categorical only, NaN otherwise

	// Data quality of the window.
	MissingRate     float64 // missing (null, absent, type mismatch) / all events of the feature
	OutOfRangeRate  float64 // numeric: share of values outside the reference [Min, Max]
	NewCategoryRate float64 // categorical: share of values of categories the reference lacks
	// TypeMismatchRate is the share of the feature's events whose value had
	// another type than the feature's (counted as missing too).
	TypeMismatchRate float64
	// Constant: the window has at least two values of the feature and they
	// are all equal (one number, one category, or all true/all false).
	Constant bool
	// Hist is a numeric feature's window on the reference's bins (counts,
	// as FeatureDistribution's Cur); nil otherwise.
	Hist []float64

	scores map[Method]float64 // every method's score, for overrides
}

// Override replaces the default method and/or threshold of the features it
// matches. An empty Model or Feature matches any; an empty Method keeps the
// default method; a zero Threshold keeps the method's default threshold.
type Override struct {
	Model, Feature string
	Method         Method
	Threshold      float64
	// FromReference derives the threshold from the reference itself, as
	// NannyML does: when the method in force (Method, or the default one) is
	// a distance and the reference feature has ChunkScores for it (a profile
	// built with chunks, see reference.BuilderOptions.ChunkRows), the
	// threshold is the chunk scores' Mean + 3*Std, the spread of the
	// distance between the reference and samples of itself. Otherwise (a
	// p-value method, a profile without chunk scores, or a derived threshold
	// of 0, which would flag a window identical to the reference) Threshold,
	// or the method's default, applies.
	FromReference bool
}

// ReferenceSigmas is how many standard deviations of the reference's chunk
// scores above their mean an Override.FromReference threshold lies.
const ReferenceSigmas = 3

// distanceMethods are the methods whose chunk scores ChunkScorer returns.
var distanceMethods = []Method{MethodPSI, MethodJensenShannon, MethodHellinger, MethodKL, MethodWasserstein}

// ChunkScorer is reference.BuilderOptions.ChunkScorer: the scores of the
// distance methods (psi, jensenshannon, hellinger, kl_div, wasserstein,
// Wasserstein normalised as EvaluateFeature's) of a chunk of the reference
// against the whole reference, those that are defined for the feature.
// p-value methods are left out: their scores shrink with the chunk size, so
// a threshold from them says nothing about larger windows.
func ChunkScorer(ref *reference.FeatureProfile, chunk *stats.FeatureState) map[string]float64 {
	d, ok := EvaluateFeature(ref, chunk)
	if !ok {
		return nil
	}
	out := make(map[string]float64, len(distanceMethods))
	for _, m := range distanceMethods {
		if v, ok := d.scores[m]; ok && !math.IsNaN(v) {
			out[string(m)] = v
		}
	}
	return out
}

var _ = reference.BuilderOptions{ChunkScorer: ChunkScorer} // ChunkScorer has the callback's type

// Options tune an evaluation.
type Options struct {
	// Overrides, the last matching one wins: list general ones first.
	Overrides []Override
}

// Methods is every method an Override may name.
var Methods = []Method{MethodKS, MethodChiSquare, MethodZ, MethodJensenShannon, MethodWasserstein, MethodPSI, MethodKL, MethodHellinger}

// override returns the override for a model's feature, if any.
func (o Options) override(model, feature string) (Override, bool) {
	var found Override
	ok := false
	for _, ov := range o.Overrides {
		if (ov.Model == "" || ov.Model == model) && (ov.Feature == "" || ov.Feature == feature) {
			found, ok = ov, true
		}
	}
	return found, ok
}

// EvaluateFeature computes the drift of a window feature state against a
// reference feature profile. It returns ok=false when there is nothing to
// compare: a side without values, kinds that differ, or a numeric reference
// or window without value summaries (a profile built from windows stored
// before value sketches existed).
//
// When ok is false, d.Reason says why, and d holds what could be computed
// (the data quality of the window); distances and scores are NaN.
func EvaluateFeature(ref *reference.FeatureProfile, cur *stats.FeatureState) (d FeatureDrift, ok bool) {
	nan := math.NaN()
	d = FeatureDrift{
		Feature: ref.Name, Kind: ref.Kind, Score: nan, Threshold: nan,
		PSI: nan, KL: nan, JensenShannon: nan, Hellinger: nan,
		Wasserstein: nan, WassersteinNorm: nan, KSStat: nan, KSPValue: nan,
		ChiSquare: nan, ChiSquarePValue: nan, OutOfRangeRate: nan, NewCategoryRate: nan,
		MissingRate: nan, Bounds: unknownBounds(),
	}
	if cur.Kind != ref.Kind {
		d.NRef = ref.Count
		d.MissingRate = missingRate(cur.Missing(), cur.Num.Count+cur.Num.NaN+cur.Num.Inf+cur.Cat.Count)
		switch {
		case cur.Kind == schemas.Null:
			d.Reason = ReasonNoValues
		case ref.Kind == schemas.Null:
			d.Reason = ReasonNoReferenceValues
		default:
			d.Reason = "kind " + cur.Kind.String() + " in the window, " + ref.Kind.String() + " in the reference"
		}
		return d, false
	}
	d.TypeMismatchRate, d.Constant = quality(cur)
	switch ref.Kind {
	case schemas.Number:
		return evaluateNumeric(d, ref, cur)
	case schemas.String, schemas.Bool:
		return evaluateCategorical(d, ref, cur)
	}
	return d, false
}

// quality returns the type-mismatch rate and whether the window's values
// are constant.
func quality(f *stats.FeatureState) (mismatchRate float64, constant bool) {
	var present uint64
	switch f.Kind {
	case schemas.Number:
		present = f.Num.Count + f.Num.NaN + f.Num.Inf
		constant = f.Num.Count >= 2 && f.Num.Min == f.Num.Max
	case schemas.Bool:
		present = f.Num.Count
		constant = f.Num.Count >= 2 && (f.Num.Sum == 0 || f.Num.Sum == float64(f.Num.Count))
	case schemas.String:
		present = f.Cat.Count
		constant = f.Cat.Count >= 2 && len(f.Cat.Counts) == 1 && f.Cat.Other == 0
	}
	if all := present + f.Missing(); all > 0 {
		mismatchRate = float64(f.TypeMismatch) / float64(all)
	}
	return mismatchRate, constant
}

func missingRate(missing, present uint64) float64 {
	if missing+present == 0 {
		return math.NaN()
	}
	return float64(missing) / float64(missing+present)
}

// Reasons a feature could not be evaluated (FeatureDrift.Reason), besides
// a kind mismatch ("kind string in the window, number in the reference").
const (
	ReasonNoValues          = "no values in the window"
	ReasonNoReferenceValues = "no values in the reference"
	ReasonNoReferenceBins   = "reference without bins (built from windows stored without value summaries)"
	ReasonNoSummary         = "window without complete value summary (states stored by an older vigil, or merged from windows kept with and without value sketches)"
)

func evaluateNumeric(d FeatureDrift, ref *reference.FeatureProfile, cur *stats.FeatureState) (FeatureDrift, bool) {
	vs := &cur.Values
	d.NRef, d.NCur = ref.Count, cur.Num.Count
	d.MissingRate = missingRate(cur.Missing(), cur.Num.Count+cur.Num.NaN+cur.Num.Inf)
	switch {
	case ref.Count == 0:
		d.Reason = ReasonNoReferenceValues
		return d, false
	case cur.Num.Count == 0:
		d.Reason = ReasonNoValues
		return d, false
	case len(ref.Quantiles) == 0 || len(ref.Hist) == 0:
		d.Reason = ReasonNoReferenceBins
		return d, false
	}
	// The value summary's weighted values, once: the bins and the
	// distances both read them.
	var (
		values  []float64
		weights []uint64
	)
	if cur.ValuesComplete() {
		values, weights = vs.WeightedValues()
	}
	hist, curErr, source, ok := windowHistOf(ref, cur, values, weights)
	if !ok {
		d.Reason = ReasonNoSummary
		return d, false
	}
	d.Source = source
	d.Hist = hist
	refHist, refErr := referenceHist(ref)

	// Histograms on the reference bins.
	d.PSI = PSI(refHist, hist)
	d.KL = KLDivergence(refHist, hist)
	d.JensenShannon = JensenShannonDistance(refHist, hist)
	d.Hellinger = HellingerDistance(refHist, hist)
	nb := len(hist)
	d.OutOfRangeRate = (hist[0] + hist[nb-1]) / float64(cur.Num.Count)
	b := Bounds{}
	b.PSI, b.KL, b.JensenShannon, b.Hellinger = histogramBounds(refHist, hist, refErr, curErr, d.PSI, d.KL, d.JensenShannon, d.Hellinger)
	b.OutOfRangeRate = curErr[0] + curErr[len(curErr)-1] // the reference's Min and Max are exact
	if b.OutOfRangeRate > 0 {
		b.OutOfRangeRate += roundingSlack
	}
	std := math.Max(popStd(ref), evidentlyMinStd)

	nUnique := 6 // sketches and bins: large samples, taken as continuous
	if source == sourceBins {
		b.KSStat, b.KSPValue, b.Wasserstein, b.WassersteinNorm = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	} else {
		// Distances on the value summaries. The reference's quantiles stand
		// for Count values with equal weight.
		d.Approx = !ref.Exact || !vs.Exact()
		if !d.Approx {
			cs := expand(values, weights)
			var used KSMethod
			d.KSStat, d.KSPValue, used = ks2Samp(ref.Quantiles, cs, KSAuto)
			d.KSMethod = ksMethodNames[used]
			d.Wasserstein = WassersteinDistanceSorted(ref.Quantiles, cs)
		} else {
			d.KSStat, d.Wasserstein = weightedKSAndW1(ref.Quantiles, values, weights)
			d.KSPValue = KSPValueLimit(d.KSStat, int(ref.Count), int(cur.Num.Count))
			d.KSMethod = ksMethodNames[ksLimit]
			eps := vs.RankErrorBound()
			refEps := ref.RankError
			if !ref.Exact {
				refEps += 1 / float64(len(ref.Quantiles))
			}
			b.KSStat = eps + refEps
			b.Wasserstein = eps*(cur.Num.Max-cur.Num.Min) + refEps*(ref.Max-ref.Min)
			if b.KSStat > 0 {
				b.KSStat += roundingSlack
				b.Wasserstein += roundingSlack
				lo := KSPValueLimit(math.Min(d.KSStat+b.KSStat, 1), int(ref.Count), int(cur.Num.Count))
				hi := KSPValueLimit(math.Max(d.KSStat-b.KSStat, 0), int(ref.Count), int(cur.Num.Count))
				b.KSPValue = spread(d.KSPValue, lo, hi)
			}
		}
		d.WassersteinNorm = d.Wasserstein / std
		b.WassersteinNorm = b.Wasserstein / std
		if !d.Approx {
			nUnique = distinctUpTo6(ref.Quantiles, values)
		}
	}
	method := DefaultMethod(Numerical, int(ref.Count), nUnique)
	if source == sourceBins && (method == MethodKS || method == MethodWasserstein) {
		// Without value summaries the verdict falls back to Jensen-Shannon
		// on the reference bins (Evidently's choice for binned data).
		method = MethodJensenShannon
	}
	d = verdict(d, method, map[Method]float64{
		MethodKS: d.KSPValue, MethodWasserstein: d.WassersteinNorm, MethodJensenShannon: d.JensenShannon,
		MethodPSI: d.PSI, MethodKL: d.KL, MethodHellinger: d.Hellinger, MethodChiSquare: math.NaN(), MethodZ: math.NaN(),
	})
	d.Bounds = b
	d.setScoreBound()
	return d, true
}

// Sources of a window's numeric values (FeatureDrift.Source).
const (
	sourceValues = "values"
	sourceSketch = "sketch"
	sourceBins   = "bins"
)

// windowHist returns the window's counts in the reference's bins (ref.Hist's
// layout), the error of the window's CDF at each of the len(ref.Edges)
// boundaries between consecutive bins (as a share of the window's count;
// boundary j lies at Edges[j]), and where the counts come from. ok is false
// when the window has neither a complete value summary nor complete bins.
func windowHist(ref *reference.FeatureProfile, cur *stats.FeatureState) (hist, boundaryErr []float64, source string, ok bool) {
	var (
		values  []float64
		weights []uint64
	)
	if cur.ValuesComplete() {
		values, weights = cur.Values.WeightedValues()
	}
	return windowHistOf(ref, cur, values, weights)
}

// windowHistOf is windowHist given the weighted values of cur's value
// summary (cur.Values.WeightedValues(); read only when it is complete).
func windowHistOf(ref *reference.FeatureProfile, cur *stats.FeatureState, values []float64, weights []uint64) (hist, boundaryErr []float64, source string, ok bool) {
	edges := ref.Edges
	hist = make([]float64, len(ref.Hist))
	boundaryErr = make([]float64, len(edges))
	n := float64(cur.Num.Count)
	// inside reports whether the CDF at boundary j is not fixed to 0 or 1
	// by the window's exact Min and Max.
	last := len(edges) - 1
	inside := func(j int) bool {
		e := edges[j]
		if j == last { // F(e), values <= e
			return e >= cur.Num.Min && e < cur.Num.Max
		}
		return e > cur.Num.Min && e <= cur.Num.Max // F(e-), values < e
	}
	switch {
	case cur.ValuesComplete():
		vs := &cur.Values
		for i, v := range values {
			hist[ref.Bin(v)] += float64(weights[i])
		}
		if vs.Exact() {
			return hist, boundaryErr, sourceValues, true
		}
		eps := vs.RankErrorBound()
		for j := range boundaryErr {
			if inside(j) {
				boundaryErr[j] = eps
			}
		}
		return hist, boundaryErr, sourceSketch, true
	case cur.BinsComplete():
		// Cumulative counts at each boundary, interpolated within the
		// bucket holding the edge; the error is the larger part of that
		// bucket.
		cum := make([]float64, len(edges))
		for j, e := range edges {
			lo, hi := cur.Bins.Rank(e, j != last)
			est := float64(lo)
			if hi > lo && inside(j) {
				blo, bhi := stats.BucketRange(stats.CoarseBucket(e))
				blo, bhi = math.Max(blo, cur.Num.Min), math.Min(bhi, cur.Num.Max)
				frac := 0.5
				if bhi > blo {
					frac = math.Max(0, math.Min(1, (e-blo)/(bhi-blo)))
				}
				est += frac * float64(hi-lo)
				boundaryErr[j] = math.Max(est-float64(lo), float64(hi)-est) / n
			} else if !inside(j) {
				est = 0
				if e >= cur.Num.Max && (j == last || e > cur.Num.Max) {
					est = n
				}
			}
			cum[j] = est
		}
		prev := 0.0
		for j := range cum {
			hist[j] = cum[j] - prev
			prev = cum[j]
		}
		hist[len(hist)-1] = n - prev
		return hist, boundaryErr, sourceBins, true
	}
	return nil, nil, "", false
}

// referenceHist returns the reference's bin counts and the error of its
// CDF at each boundary: 0 at its Min and Max (exact), ref.RankError in
// between (0 for a profile built from a file).
func referenceHist(ref *reference.FeatureProfile) (hist, boundaryErr []float64) {
	hist = make([]float64, len(ref.Hist))
	for i, c := range ref.Hist {
		hist[i] = float64(c)
	}
	boundaryErr = make([]float64, len(ref.Edges))
	for j := 1; j < len(boundaryErr)-1; j++ {
		boundaryErr[j] = ref.RankError
	}
	return hist, boundaryErr
}

// setScoreBound sets Bounds.Score from the method in force and Exact.
func (d *FeatureDrift) setScoreBound() {
	b := &d.Bounds
	switch d.Method {
	case MethodKS:
		b.Score = b.KSPValue
	case MethodWasserstein:
		b.Score = b.WassersteinNorm
	case MethodJensenShannon:
		b.Score = b.JensenShannon
	case MethodPSI:
		b.Score = b.PSI
	case MethodKL:
		b.Score = b.KL
	case MethodHellinger:
		b.Score = b.Hellinger
	default: // chisquare, z: counts, exact when the categories are
		b.Score = b.PSI
		if d.Kind == schemas.Number {
			b.Score = math.NaN()
		}
	}
	d.Exact = b.Exact()
}

// popStd is the reference's population standard deviation (ddof 0, as
// Evidently's wasserstein stattest normalises).
func popStd(ref *reference.FeatureProfile) float64 {
	n := float64(ref.Count)
	if n < 2 || math.IsNaN(ref.Std) {
		return 0
	}
	return ref.Std * math.Sqrt((n-1)/n)
}

func expand(values []float64, weights []uint64) []float64 {
	out := make([]float64, 0, len(values))
	for i, v := range values {
		for w := weights[i]; w > 0; w-- {
			out = append(out, v)
		}
	}
	return out
}

// distinctUpTo6 counts the distinct values of two slices together, up to 6
// (all DefaultMethod needs to know).
func distinctUpTo6(a, b []float64) int {
	seen := make([]float64, 0, 6)
	for _, xs := range [][]float64{a, b} {
		for _, x := range xs {
			if !slices.Contains(seen, x) {
				seen = append(seen, x)
				if len(seen) == 6 {
					return 6
				}
			}
		}
	}
	return len(seen)
}

// weightedKSAndW1 walks the reference quantiles (equal weights) and the
// window's weighted values (sorted) once and returns sup|F_ref - F_cur| and
// the integral of |F_ref - F_cur|.
func weightedKSAndW1(ref, values []float64, weights []uint64) (ks, w1 float64) {
	var total uint64
	for _, w := range weights {
		total += w
	}
	n1, n2 := float64(len(ref)), float64(total)
	i, j := 0, 0
	var cum uint64
	prev := math.Min(ref[0], values[0])
	for i < len(ref) || j < len(values) {
		var v float64
		if j == len(values) || (i < len(ref) && ref[i] <= values[j]) {
			v = ref[i]
		} else {
			v = values[j]
		}
		if v > prev {
			w1 += math.Abs(float64(i)/n1-float64(cum)/n2) * (v - prev)
			prev = v
		}
		for i < len(ref) && ref[i] <= v {
			i++
		}
		for j < len(values) && values[j] <= v {
			cum += weights[j]
			j++
		}
		ks = math.Max(ks, math.Abs(float64(i)/n1-float64(cum)/n2))
	}
	return ks, w1
}

// KSPValueLimit is the two-sided KS p-value of statistic d for samples of n1
// and n2 values from the limiting Kolmogorov distribution (scipy's
// kstwobign.sf(d * sqrt(n1*n2/(n1+n2)))). EvaluateFeature uses it when the
// statistic comes from sketches: the statistic is then approximate anyway,
// and the exact finite-n series (KSPValueAsymp) costs ~20 ms at n = 10^5.
func KSPValueLimit(d float64, n1, n2 int) float64 {
	if n1 == 0 || n2 == 0 || math.IsNaN(d) {
		return math.NaN()
	}
	x := d * math.Sqrt(float64(n1)*float64(n2)/float64(n1+n2))
	if x < 0.2 {
		return 1 // the series converges slowly there; the sf is 1 - 1e-26
	}
	var sum float64
	for k := 1; k <= 100; k++ {
		term := math.Exp(-2 * float64(k*k) * x * x)
		if k%2 == 0 {
			sum -= term
		} else {
			sum += term
		}
		if term < 1e-17 {
			break
		}
	}
	return clip01(2 * sum)
}

// KSPValueAsymp is the two-sided KS p-value of statistic d for samples of
// n1 and n2 values, as scipy's ks_2samp(method='asymp').
func KSPValueAsymp(d float64, n1, n2 int) float64 {
	if n1 == 0 || n2 == 0 || math.IsNaN(d) {
		return math.NaN()
	}
	m, n := float64(max(n1, n2)), float64(min(n1, n2))
	return clip01(kstwoSF(d, int(math.RoundToEven(m*n/(m+n)))))
}

func evaluateCategorical(d FeatureDrift, ref *reference.FeatureProfile, cur *stats.FeatureState) (FeatureDrift, bool) {
	// Both sides as value -> count, bool features as "false"/"true".
	curCounts := cur.Cat.Counts
	present := cur.Cat.Count
	d.Source = ""
	if cur.Kind == schemas.Bool {
		t := uint64(cur.Num.Sum)
		curCounts = map[string]uint64{"true": t, "false": cur.Num.Count - t}
		present = cur.Num.Count
	}
	d.MissingRate = missingRate(cur.Missing(), present)
	d.NRef, d.NCur = ref.Count, present
	if ref.Count == 0 {
		d.Reason = ReasonNoReferenceValues
		return d, false
	}
	if present == 0 {
		d.Reason = ReasonNoValues
		return d, false
	}
	keys := make([]string, 0, len(ref.Counts)+len(curCounts))
	for k := range ref.Counts {
		keys = append(keys, k)
	}
	var fresh uint64
	for k, c := range curCounts {
		if _, ok := ref.Counts[k]; !ok {
			keys = append(keys, k)
			fresh += c
		}
	}
	sort.Strings(keys)
	refV, curV := make([]float64, len(keys)), make([]float64, len(keys))
	for i, k := range keys {
		refV[i], curV[i] = float64(ref.Counts[k]), float64(curCounts[k])
	}
	if ref.Other > 0 || cur.Cat.Other > 0 {
		refV, curV = append(refV, float64(ref.Other)), append(curV, float64(cur.Cat.Other))
	}
	d.NewCategoryRate = float64(fresh) / float64(present)
	d.PSI = PSI(refV, curV)
	d.KL = KLDivergence(refV, curV)
	d.JensenShannon = JensenShannonDistance(refV, curV)
	d.Hellinger = HellingerDistance(refV, curV)
	d.ChiSquare, d.ChiSquarePValue = ChiSquare(refV, curV)
	z := math.NaN()
	if len(refV) <= 2 {
		z = ZTest(refV, curV)
	}
	d = verdict(d, DefaultMethod(Categorical, int(ref.Count), len(keys)), map[Method]float64{
		MethodChiSquare: d.ChiSquarePValue, MethodZ: z, MethodJensenShannon: d.JensenShannon, MethodPSI: d.PSI,
		MethodKL: d.KL, MethodHellinger: d.Hellinger, MethodKS: math.NaN(), MethodWasserstein: math.NaN(),
	})
	// Category counts are exact; beyond stats.MaxCategories distinct values
	// the rest is lumped into one "other" bin, which can only lower a
	// divergence (data processing inequality): no bound is known then.
	d.Bounds = Bounds{KSStat: math.NaN(), KSPValue: math.NaN(), Wasserstein: math.NaN(), WassersteinNorm: math.NaN(), OutOfRangeRate: math.NaN()}
	if ref.Other > 0 || cur.Cat.Other > 0 {
		d.Bounds = unknownBounds()
	}
	d.setScoreBound()
	if ref.Other > 0 || cur.Cat.Other > 0 {
		d.Bounds.Score, d.Exact = math.NaN(), false
	}
	return d, true
}

func verdict(d FeatureDrift, m Method, scores map[Method]float64) FeatureDrift {
	d.Method = m
	d.Score = scores[m]
	d.Threshold = m.DefaultThreshold()
	d.Drifted = m.Drifted(d.Score, d.Threshold)
	d.scores = scores
	return d
}

// apply re-decides d with an override. A method the feature's kind has no
// score for (KS on a string feature) gives a NaN score: never drift.
func (d FeatureDrift) apply(ov Override, ref *reference.FeatureProfile) FeatureDrift {
	if ov.Method != "" {
		d.Method = ov.Method
		d.Score = math.NaN()
		if v, ok := d.scores[ov.Method]; ok {
			d.Score = v
		}
		d.Threshold = ov.Method.DefaultThreshold()
	}
	if ov.Threshold != 0 {
		d.Threshold = ov.Threshold
	}
	if ov.FromReference && !d.Method.IsPValue() {
		if cs, ok := ref.ChunkScores[string(d.Method)]; ok {
			if t := cs.Mean + ReferenceSigmas*cs.Std; t > 0 {
				d.Threshold, d.ThresholdFromReference = t, true
			}
		}
	}
	d.Drifted = d.Method.Drifted(d.Score, d.Threshold)
	d.setScoreBound()
	return d
}

// WindowDrift is the drift of every feature of a window present in both the
// reference and the window, sorted by feature, with the dataset-level share.
type WindowDrift struct {
	Features []FeatureDrift
	// Skipped are the features of both the reference and the window that
	// could not be evaluated, each with its Reason and the data quality
	// numbers that could be computed; they are not in Share.
	Skipped []FeatureDrift
	// Share is the fraction of compared features whose verdict is drift;
	// ShareBH the same after Benjamini-Hochberg at each p-value method's
	// threshold across the window's p-value features (distances unchanged).
	Share, ShareBH float64
	// Embeddings are the rows of the vector features of both the reference
	// and the window, one per feature and embedding method (EmbeddingRow);
	// those that could not be evaluated are in Skipped. They are not in
	// Share.
	Embeddings []FeatureDrift
	Drifted    bool // Share >= EvidentlyDriftShare
	// Schema changes against the reference: features the window has and the
	// reference lacks, and features of the reference the window never saw.
	NewFeatures, AbsentFeatures []string
}

// EvaluateWindow compares every feature of st that the reference knows,
// with the default methods and thresholds.
func EvaluateWindow(ref *reference.Profile, st *stats.WindowState) WindowDrift {
	return EvaluateWindowWith(ref, st, Options{})
}

// EvaluateWindowWith is EvaluateWindow with options.
func EvaluateWindowWith(ref *reference.Profile, st *stats.WindowState, opts Options) (w WindowDrift) {
	names := make([]string, 0, len(st.Features))
	for name := range st.Features {
		// processors/multivariate's derived features are evaluated there;
		// vector parts together, as embeddings.
		if !stats.IsDerived(name) && !stats.IsVectorPart(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range ref.FeatureNames() {
		if v, i, ok := stats.ParseVectorPart(name); ok {
			if i < 0 && st.Features[name] == nil {
				w.AbsentFeatures = append(w.AbsentFeatures, v)
			}
			continue
		}
		if st.Features[name] == nil {
			w.AbsentFeatures = append(w.AbsentFeatures, name)
		}
	}
	for name := range st.Features {
		if v, i, ok := stats.ParseVectorPart(name); ok && i < 0 && ref.Feature(name) == nil {
			w.NewFeatures = append(w.NewFeatures, v)
		}
	}
	var embSkipped []FeatureDrift
	w.Embeddings, embSkipped = evaluateEmbeddings(ref, st, opts)
	defer func() {
		w.Skipped = append(w.Skipped, embSkipped...)
		sort.Strings(w.NewFeatures)
		sort.Strings(w.AbsentFeatures)
	}()
	for _, name := range names {
		rf := ref.Feature(name)
		if rf == nil {
			w.NewFeatures = append(w.NewFeatures, name)
			continue
		}
		d, ok := EvaluateFeature(rf, st.Features[name])
		if !ok {
			w.Skipped = append(w.Skipped, d)
			continue
		}
		if ov, found := opts.override(st.Model, name); found {
			d = d.apply(ov, rf)
		}
		w.Features = append(w.Features, d)
	}
	if len(w.Features) == 0 {
		w.Share, w.ShareBH = math.NaN(), math.NaN()
		return w
	}
	flags := make([]bool, len(w.Features))
	var ps []float64
	var idx []int
	for i, d := range w.Features {
		flags[i] = d.Drifted
		if d.Method.IsPValue() && !math.IsNaN(d.Score) {
			ps, idx = append(ps, d.Score), append(idx, i)
		}
	}
	w.Share = DriftShare(flags)
	w.Drifted = w.Share >= EvidentlyDriftShare
	if len(ps) > 0 {
		adj, _ := BenjaminiHochberg(ps, 0.05)
		bh := slices.Clone(flags)
		for k, i := range idx {
			d := w.Features[i]
			bh[i] = d.Method.Drifted(adj[k], d.Threshold)
		}
		w.ShareBH = DriftShare(bh)
	} else {
		w.ShareBH = w.Share
	}
	return w
}
