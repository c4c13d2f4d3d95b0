package stats

import (
	"math"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/vigil-ml/vigil/schemas"
)

// A Vector feature (an embedding) of length d is kept as d + 1 numeric
// features, so that moments, value summaries, encoding, merging and
// references are those of numeric features (docs/DRIFT.md, "Embedding
// drift"):
//
//   - VectorHeader(name), "__embedding.<name>": each vector's Euclidean
//     norm. Its Num.Count is the number of vectors counted; Missing the
//     events without one (null, absent, or not counted: see below);
//     TypeMismatch the vectors that had another length than the window's,
//     or a non-finite or null item.
//   - VectorComponent(name, i), "__embedding.<name>[i]": component i of
//     the counted vectors.
//
// In a consistent state every component has the header's Num.Count; a
// merge of states of vectors of different lengths has not (drift reports
// it instead of comparing).

// VectorHeader is the name of the feature that counts vector feature name.
func VectorHeader(name string) string { return schemas.VectorHeaderPrefix + name }

// VectorComponent is the name of the feature holding component i of vector
// feature name.
func VectorComponent(name string, i int) string {
	return schemas.VectorHeaderPrefix + name + "[" + strconv.Itoa(i) + "]"
}

// IsVectorPart reports whether a feature is a header or component of a
// vector feature.
func IsVectorPart(feature string) bool {
	return len(feature) > len(schemas.VectorHeaderPrefix) && feature[:len(schemas.VectorHeaderPrefix)] == schemas.VectorHeaderPrefix
}

// ParseVectorPart splits a vector part's name: the vector feature's name
// and the component index, or -1 for the header. ok is false for a feature
// that is no vector part.
func ParseVectorPart(feature string) (name string, component int, ok bool) {
	if !IsVectorPart(feature) {
		return "", 0, false
	}
	rest := feature[len(schemas.VectorHeaderPrefix):]
	if n := len(rest); n > 2 && rest[n-1] == ']' {
		for i := n - 2; i > 0; i-- {
			c := rest[i]
			if c == '[' && i < n-2 {
				k, err := strconv.Atoi(rest[i+1 : n-1])
				if err == nil && k >= 0 && (k == 0 || rest[i+1] != '0') {
					return rest[:i], k, true
				}
				break
			}
			if c < '0' || c > '9' {
				break
			}
		}
	}
	return rest, -1, true
}

// vectorScratch holds addVectors' buffers.
type vectorScratch struct {
	names map[string][]string // vector name -> header, then component names
	cols  []float64           // the counted vectors' components, component-major
	norms []float64
	ok    []int // rows [lo, hi) counted
}

// partNames returns the header and component names of a vector feature of
// length dim, cached.
func (sc *vectorScratch) partNames(name string, dim int) []string {
	if sc.names == nil || len(sc.names) > 1024 {
		sc.names = make(map[string][]string)
	}
	ns := sc.names[name]
	if len(ns) != dim+1 {
		ns = make([]string, dim+1)
		ns[0] = VectorHeader(name)
		for i := range dim {
			ns[i+1] = VectorComponent(name, i)
		}
		sc.names[name] = ns
	}
	return ns
}

// addVectors adds rows [lo, hi) of a vector feature's column. A row is
// counted when it is not null and all its items are finite; a non-null row
// that is not, and every row when the column's length differs from the
// length of the vectors already in the window, counts as a type mismatch
// (and missing) of the header.
func (w *WindowState) addVectors(name string, l *array.FixedSizeList, lo, hi int) {
	n := hi - lo
	sc := &w.scratch.vectors
	dim, ok := schemas.VectorDim(l.DataType())
	header := w.Features[VectorHeader(name)]
	if header == nil {
		header = w.newFeature(VectorHeader(name))
	}
	w.markSeen(header)
	if header.Kind == schemas.Null {
		header.setKind(schemas.Number)
	}
	nulls := nullsIn(l, lo, hi)
	if ok {
		// The window's length: its components 0..d-1 exist and d does not.
		if w.Features[VectorComponent(name, 0)] != nil {
			ok = w.Features[VectorComponent(name, dim-1)] != nil && w.Features[VectorComponent(name, dim)] == nil
		}
	}
	if header.Kind != schemas.Number || !ok {
		header.TypeMismatch += uint64(n - nulls)
		header.addMissing(uint64(n))
		return
	}
	names := sc.partNames(name, dim)
	bad := sc.count(l, lo, hi, dim)
	header.TypeMismatch += uint64(bad)
	m := len(sc.ok)
	missing := uint64(n - m)
	w.addNumbers(header, sc.norms, missing)
	for j := range dim {
		fs := w.Features[names[j+1]]
		if fs == nil {
			fs = w.newFeature(names[j+1])
		}
		w.markSeen(fs)
		if fs.Kind == schemas.Null {
			fs.setKind(schemas.Number)
		}
		w.addNumbers(fs, sc.component(l, j), missing)
	}
}

// count finds the rows of [lo, hi) of l that are counted (not null, every
// item finite) into sc.ok with their norms in sc.norms, and returns how
// many non-null rows are not.
func (sc *vectorScratch) count(l *array.FixedSizeList, lo, hi, dim int) (bad int) {
	sc.ok, sc.norms = sc.ok[:0], sc.norms[:0]
	items := l.ListValues()
	for r := lo; r < hi; r++ {
		if l.IsNull(r) {
			continue
		}
		start, _ := l.ValueOffsets(r)
		var ss float64
		good := true
		for j := range dim {
			v, valid := item(items, int(start)+j)
			if !valid || math.IsNaN(v) || math.IsInf(v, 0) {
				good = false
				break
			}
			ss += v * v
		}
		if !good {
			bad++
			continue
		}
		sc.ok = append(sc.ok, r)
		sc.norms = append(sc.norms, math.Sqrt(ss))
	}
	return bad
}

// component returns component j of the rows count found, in scratch
// memory the next call reuses.
func (sc *vectorScratch) component(l *array.FixedSizeList, j int) []float64 {
	if cap(sc.cols) < len(sc.ok) {
		sc.cols = make([]float64, len(sc.ok))
	}
	col := sc.cols[:len(sc.ok)]
	items := l.ListValues()
	for i, r := range sc.ok {
		start, _ := l.ValueOffsets(r)
		col[i], _ = item(items, int(start)+j)
	}
	return col
}

// item returns item k of a vector column's float64 or float32 items.
func item(items arrow.Array, k int) (float64, bool) {
	if items.IsNull(k) {
		return 0, false
	}
	switch a := items.(type) {
	case *array.Float64:
		return a.Value(k), true
	case *array.Float32:
		return float64(a.Value(k)), true
	}
	return 0, false
}

// VectorScratch holds the buffers of VectorColumns, reused across calls.
type VectorScratch struct{ sc vectorScratch }

// VectorColumns calls fn with the values a window state counts from rows
// [lo, hi) of a vector feature's column (when it counts the column at
// all): the norms (j = -1), then each component j. The slice is valid
// during the call only. It is how a reference builder holds the values of
// the features addVectors fills.
func VectorColumns(l *array.FixedSizeList, lo, hi int, s *VectorScratch, fn func(j int, vs []float64)) {
	dim, ok := schemas.VectorDim(l.DataType())
	if !ok {
		return
	}
	s.sc.count(l, lo, hi, dim)
	fn(-1, s.sc.norms)
	for j := range dim {
		fn(j, s.sc.component(l, j))
	}
}

// markSeen records that the current AddRange had a column for fs.
func (w *WindowState) markSeen(fs *FeatureState) {
	if fs.seen != newInThisCall {
		fs.seen = w.epoch
	}
}

// addNumbers adds finite values vs and missing missing values to a Number
// feature: moments, and the value summary or the coarse bins.
func (w *WindowState) addNumbers(fs *FeatureState, vs []float64, missing uint64) {
	fs.addMissing(missing)
	if len(vs) == 0 {
		return
	}
	fs.Num.AddFloat64s(vs)
	if w.NoValues {
		for _, v := range vs {
			fs.Bins.Add(v)
		}
		return
	}
	fs.Values.AddFloat64s(vs)
}
