package drift

import (
	"math"
	"sort"
	"strconv"

	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// Distribution is the reference and the current distribution of a feature
// on the bins EvaluateFeature compares: the reference's quantile bins for a
// number (underflow and overflow included), the union of the categories for
// a string or bool (sorted, then "other" when either side has values beyond
// the kept categories).
type Distribution struct {
	Kind schemas.Kind
	// Bins name the bins: "[lo, hi)" ranges for a number (the underflow
	// "< lo" and overflow "> hi"), the category for a string or bool.
	Bins []string
	// Lo and Hi are a number's bin bounds (-Inf and +Inf for the outer
	// bins); nil for categories.
	Lo, Hi   []float64
	Ref, Cur []uint64
	// New marks the categories the reference lacks (nil for a number).
	New []bool
}

// FeatureDistribution returns the distributions of ref and cur, or ok false
// when EvaluateFeature would have nothing to compare (kinds differ, a
// numeric side without bins or value summary).
func FeatureDistribution(ref *reference.FeatureProfile, cur *stats.FeatureState) (Distribution, bool) {
	d := Distribution{Kind: ref.Kind}
	if cur.Kind != ref.Kind {
		return d, false
	}
	switch ref.Kind {
	case schemas.Number:
		if len(ref.Hist) == 0 {
			return d, false
		}
		hist, _, _, ok := windowHist(ref, cur)
		if !ok {
			return d, false
		}
		d.Ref = append([]uint64(nil), ref.Hist...)
		d.Cur = make([]uint64, len(hist))
		for i, c := range hist {
			d.Cur[i] = uint64(math.Round(c))
		}
		d.Bins, d.Lo, d.Hi = ReferenceBins(ref)
		return d, true
	case schemas.String, schemas.Bool:
		curCounts, other := cur.Cat.Counts, cur.Cat.Other
		if cur.Kind == schemas.Bool {
			t := uint64(cur.Num.Sum)
			curCounts, other = map[string]uint64{"true": t, "false": cur.Num.Count - t}, 0
		}
		keys := make([]string, 0, len(ref.Counts)+len(curCounts))
		for k := range ref.Counts {
			keys = append(keys, k)
		}
		for k := range curCounts {
			if _, ok := ref.Counts[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			_, known := ref.Counts[k]
			d.Bins, d.New = append(d.Bins, k), append(d.New, !known)
			d.Ref, d.Cur = append(d.Ref, ref.Counts[k]), append(d.Cur, curCounts[k])
		}
		if ref.Other > 0 || other > 0 {
			d.Bins, d.New = append(d.Bins, "(other)"), append(d.New, false)
			d.Ref, d.Cur = append(d.Ref, ref.Other), append(d.Cur, other)
		}
		return d, true
	}
	return d, false
}

// ReferenceBins names a numeric reference's bins (see Distribution.Bins)
// and returns their bounds: len(ref.Edges)+1 of each, none without edges.
func ReferenceBins(ref *reference.FeatureProfile) (names []string, lo, hi []float64) {
	n := len(ref.Edges)
	if n == 0 {
		return nil, nil, nil
	}
	for i := 0; i <= n; i++ {
		l, h := math.Inf(-1), math.Inf(1)
		if i > 0 {
			l = ref.Edges[i-1]
		}
		if i < n {
			h = ref.Edges[i]
		}
		var name string
		switch {
		case i == 0:
			name = "< " + fmtEdge(h)
		case i == n:
			name = "> " + fmtEdge(l)
		case i == n-1:
			name = "[" + fmtEdge(l) + ", " + fmtEdge(h) + "]"
		default:
			name = "[" + fmtEdge(l) + ", " + fmtEdge(h) + ")"
		}
		names, lo, hi = append(names, name), append(lo, l), append(hi, h)
	}
	return names, lo, hi
}

func fmtEdge(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
