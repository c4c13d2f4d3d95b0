package drift

import (
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// Embedding drift methods (Evidently 0.7's EmbeddingsDrift methods that fit
// a stream; docs/DRIFT.md, "Embedding drift"). Each gives one FeatureDrift
// of a vector feature, named EmbeddingRow(name, method), of kind
// schemas.Vector.
const (
	// MethodEuclidean is the Euclidean distance between the reference's
	// mean vector and the window's (Evidently's distance(dist="euclidean")).
	MethodEuclidean Method = "euclidean"
	// MethodCosine is the cosine distance, 1 - cosine similarity, of the
	// two mean vectors (Evidently's distance(dist="cosine")).
	MethodCosine Method = "cosine"
	// MethodRatio is the share of components whose normed Wasserstein
	// distance is at least RatioComponentThreshold (Evidently's ratio()).
	MethodRatio Method = "ratio"
)

// EmbeddingMethods are the embedding methods, in the order of their rows.
var EmbeddingMethods = []Method{MethodCosine, MethodEuclidean, MethodRatio}

// Evidently 0.7's defaults: distance(threshold=0.2), ratio(threshold=0.2,
// component_stattest="wasserstein", component_stattest_threshold=0.1).
// The embedding methods drift when the score is strictly above the
// threshold; a component when its normed Wasserstein is at least 0.1.
const (
	EmbeddingThreshold      = 0.2
	RatioComponentThreshold = 0.1
)

// IsEmbedding reports whether m is an embedding method.
func (m Method) IsEmbedding() bool {
	return m == MethodEuclidean || m == MethodCosine || m == MethodRatio
}

// EmbeddingRow is the feature name of the row of vector feature name and
// method m: "<name>@<method>" (vigil_drift is keyed by feature).
func EmbeddingRow(name string, m Method) string { return name + "@" + string(m) }

// vectorParts is a vector feature's header and components in a window.
type vectorParts struct {
	header     *stats.FeatureState
	components []*stats.FeatureState // by index; nil where missing
}

// windowVectors groups a window's vector parts by vector feature.
func windowVectors(st *stats.WindowState) map[string]*vectorParts {
	var out map[string]*vectorParts
	for feature, fs := range st.Features {
		name, i, ok := stats.ParseVectorPart(feature)
		if !ok {
			continue
		}
		if out == nil {
			out = make(map[string]*vectorParts)
		}
		vp := out[name]
		if vp == nil {
			vp = &vectorParts{}
			out[name] = vp
		}
		if i < 0 {
			vp.header = fs
			continue
		}
		if i >= schemas.MaxVectorDim {
			continue
		}
		for len(vp.components) <= i {
			vp.components = append(vp.components, nil)
		}
		vp.components[i] = fs
	}
	return out
}

// referenceVectors returns the names of a profile's vector features with
// their lengths (the number of components 0..d-1 it holds).
func referenceVectors(ref *reference.Profile) map[string]int {
	var out map[string]int
	for i := range ref.Features {
		name, _, ok := stats.ParseVectorPart(ref.Features[i].Name)
		if !ok {
			continue
		}
		if out == nil {
			out = make(map[string]int)
		}
		if _, seen := out[name]; !seen {
			d := 0
			for ref.Feature(stats.VectorComponent(name, d)) != nil {
				d++
			}
			out[name] = d
		}
	}
	return out
}

// evaluateEmbeddings computes the embedding rows of every vector feature of
// both the reference and the window: evaluated ones, and those that could
// not be (with their Reason). Both are sorted by row name.
func evaluateEmbeddings(ref *reference.Profile, st *stats.WindowState, opts Options) (rows, skipped []FeatureDrift) {
	refVecs := referenceVectors(ref)
	curVecs := windowVectors(st)
	names := make([]string, 0, len(curVecs))
	for name := range curVecs {
		if _, ok := refVecs[name]; ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		for _, d := range evaluateEmbedding(ref, name, refVecs[name], curVecs[name]) {
			if d.Reason != "" {
				skipped = append(skipped, d)
				continue
			}
			if ov, found := opts.override(st.Model, d.Feature); found && ov.Threshold != 0 {
				d.Threshold = ov.Threshold
				d.Drifted = d.Method.Drifted(d.Score, d.Threshold)
			}
			rows = append(rows, d)
		}
	}
	return rows, skipped
}

// ReasonNoComponentSummaries is why the ratio row of a window kept without
// value sketches is not evaluated: it needs each component's Wasserstein
// distance (the mean distances are still computed).
const ReasonNoComponentSummaries = "components without value summaries (window kept with --value-sketches=false): no per-component Wasserstein"

// evaluateEmbedding returns the rows of one vector feature; a row that
// cannot be evaluated has its Reason set and a NaN score.
func evaluateEmbedding(ref *reference.Profile, name string, refDim int, cur *vectorParts) []FeatureDrift {
	nan := math.NaN()
	rows := make([]FeatureDrift, len(EmbeddingMethods))
	for i, m := range EmbeddingMethods {
		rows[i] = FeatureDrift{
			Feature: EmbeddingRow(name, m), Kind: schemas.Vector, Method: m, Score: nan, Threshold: EmbeddingThreshold,
			PSI: nan, KL: nan, JensenShannon: nan, Hellinger: nan, Wasserstein: nan, WassersteinNorm: nan,
			KSStat: nan, KSPValue: nan, ChiSquare: nan, ChiSquarePValue: nan, MissingRate: nan,
			OutOfRangeRate: nan, NewCategoryRate: nan, Bounds: unknownBounds(),
		}
	}
	refHeader := ref.Feature(stats.VectorHeader(name))
	fail := func(reason string) []FeatureDrift {
		for i := range rows {
			rows[i].Reason = reason
		}
		return rows
	}
	h := cur.header
	if h != nil {
		present := h.Num.Count + h.Num.NaN + h.Num.Inf
		for i := range rows {
			rows[i].NCur = h.Num.Count
			rows[i].MissingRate = missingRate(h.Missing(), present)
			if all := present + h.Missing(); all > 0 {
				rows[i].TypeMismatchRate = float64(h.TypeMismatch) / float64(all)
			}
			if refHeader != nil {
				rows[i].NRef = refHeader.Count
			}
		}
	}
	switch {
	case refHeader == nil || refHeader.Count == 0 || refDim == 0:
		return fail(ReasonNoReferenceValues)
	case h == nil || h.Num.Count == 0:
		return fail(ReasonNoValues)
	}
	dim := len(cur.components)
	for i, c := range cur.components {
		if c == nil || c.Kind != schemas.Number || c.Num.Count != h.Num.Count {
			return fail("vectors of different lengths in the window (component " + strconv.Itoa(i) + " counts other vectors than the first)")
		}
	}
	if dim != refDim {
		return fail("vectors of " + strconv.Itoa(dim) + " values in the window, " + strconv.Itoa(refDim) + " in the reference")
	}

	// Mean vectors, from the exact sums.
	refMean, curMean := make([]float64, dim), make([]float64, dim)
	comps := make([]FeatureDrift, dim)
	for j := range dim {
		rf := ref.Feature(stats.VectorComponent(name, j))
		if rf.Count != refHeader.Count {
			return fail("reference components count other vectors than its header (a reference of vectors of different lengths)")
		}
		refMean[j], curMean[j] = rf.Mean, cur.components[j].Num.Mean()
		d, ok := EvaluateFeature(rf, cur.components[j])
		if !ok {
			return fail("component " + strconv.Itoa(j) + ": " + d.Reason)
		}
		comps[j] = d
	}
	for i, m := range EmbeddingMethods {
		d := &rows[i]
		switch m {
		case MethodEuclidean:
			d.Score = euclidean(refMean, curMean)
			d.Bounds = exactBounds()
		case MethodCosine:
			d.Score = cosineDistance(refMean, curMean)
			d.Bounds = exactBounds()
		case MethodRatio:
			if !slices.ContainsFunc(comps, func(c FeatureDrift) bool { return math.IsNaN(c.WassersteinNorm) }) {
				ratio(d, comps)
			} else {
				d.Reason = ReasonNoComponentSummaries
				d.Source = sourceBins
				continue
			}
		}
		d.Drifted = m.Drifted(d.Score, d.Threshold)
		d.Exact = d.Bounds.Exact()
	}
	return rows
}

// ratio sets the ratio row d from the components' drift: the share of
// components whose normed Wasserstein is at least RatioComponentThreshold;
// its bound is the share of components within their bound of it.
func ratio(d *FeatureDrift, comps []FeatureDrift) {
	drifted, uncertain := 0, 0
	var w, wn float64
	b := exactBounds()
	for _, c := range comps {
		if c.WassersteinNorm >= RatioComponentThreshold {
			drifted++
		}
		if bw := c.Bounds.WassersteinNorm; bw > 0 && math.Abs(c.WassersteinNorm-RatioComponentThreshold) <= bw {
			uncertain++
		}
		d.Approx = d.Approx || c.Approx
		w += c.Wasserstein
		wn += c.WassersteinNorm
		if !c.Exact {
			b.Wasserstein = math.Max(b.Wasserstein, c.Bounds.Wasserstein)
			b.WassersteinNorm = math.Max(b.WassersteinNorm, c.Bounds.WassersteinNorm)
		}
		if d.Source == "" || c.Source != sourceValues {
			d.Source = c.Source
		}
	}
	dim := float64(len(comps))
	d.Score = float64(drifted) / dim
	d.Wasserstein, d.WassersteinNorm = w/dim, wn/dim
	b.Score = float64(uncertain) / dim
	d.Bounds = b
}

// euclidean is scipy.spatial.distance.euclidean(u, v).
func euclidean(u, v []float64) float64 {
	var ss float64
	for i := range u {
		d := u[i] - v[i]
		ss += d * d
	}
	return math.Sqrt(ss)
}

// cosineDistance is scipy.spatial.distance.cosine(u, v): 1 - u·v/(|u||v|),
// clipped to [0, 2]; NaN when either vector is 0.
func cosineDistance(u, v []float64) float64 {
	var uv, uu, vv float64
	for i := range u {
		uv += u[i] * v[i]
		uu += u[i] * u[i]
		vv += v[i] * v[i]
	}
	d := 1 - uv/math.Sqrt(uu*vv)
	return math.Max(0, math.Min(2, d))
}
