package reference

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// BuildFromWindows is BuildFromWindowsOptions with the default options.
func BuildFromWindows(meta Meta, states []*stats.WindowState) (*Profile, error) {
	return BuildFromWindowsOptions(meta, BuilderOptions{}, states)
}

// BuildFromWindowsOptions returns the profile of the union of stored
// production window states of one model version (for example every
// partition's state of a week of windows, as Sink.WindowStates returns
// them). The states are merged exactly (stats.WindowState.Merge): counts,
// missing values, moments, min, max, category counts and value sketches are
// those of the union. Late events are not part of any window and are not
// counted. Of opts only Bins is used.
//
// Numeric features get Edges, Hist and Quantiles from the merged value
// sketch (stats.FeatureState.Values) when it is complete
// (stats.FeatureState.ValuesComplete):
//
//   - Exact sketch (the union holds at most stats.ExactCap values of the
//     feature): the sketch holds every value, and the feature's profile is
//     the one the file Builder makes from the same values, bit for bit
//     (except that the sketch stores -0 as +0): Edges are the numpy 'linear'
//     quantiles, Hist the exact counts, Quantiles every value, Exact true.
//
//   - Sketched (KLL, more values): let n = Count and ε the merged sketch's
//     RankErrorBound (deterministically at most W/n, and with probability
//     at least 1-stats.ValueSketchFailureProb the tighter Azuma term; below
//     1% up to about 10^7 values). The sketch's weighted values stand for
//     the sorted sample (a value of weight w repeated w times), and:
//     Edges are that sample's numpy 'linear' quantiles at 1/B, ..., (B-1)/B
//     between the exact Min and Max, equal edges merged: the empirical CDF F
//     of the production values has F(e) >= i/B - ε - 1/n and
//     F(e-) <= i/B + ε + 1/n at edge e of level i/B. Hist counts the
//     weighted values in those bins: each count is within 2εn of the true
//     count of its bin, and the counts add up to Count. Quantiles are the
//     M = min(n, QuantileSummarySize) order statistics of the sample at
//     ranks ceil(n(j+1)/M) (the last one is the exact Max; for M = n, the
//     sample itself), Exact false: the summary's CDF is within 1/M of the
//     sketch's (equal to it for M = n) and therefore within 1/M + ε of F
//     everywhere, which bounds the error of a KS statistic against this
//     reference by 1/M + ε (1e-4 + ε from 10^4 values on), plus the
//     production side's own error.
//
// Incomplete values (window states stored before window states carried value
// sketches, or any union including one): the feature keeps moments only, as
// profiles from production windows always had: Edges, Hist and Quantiles
// nil, Exact false; drift statistics that need bins or quantiles (PSI, KS,
// Wasserstein) are then not computed for it. Other features are not affected.
//
// meta.Model and meta.ModelVersion default to those of the states, which
// must all agree; meta.Source defaults to Production(first window start,
// last window end); meta.Rows is set to the events of the union.
func BuildFromWindowsOptions(meta Meta, opts BuilderOptions, states []*stats.WindowState) (*Profile, error) {
	if opts.Bins == 0 {
		opts.Bins = DefaultBins
	}
	if opts.Bins < 1 || opts.Bins > MaxBins {
		return nil, fmt.Errorf("reference bins %d: want 1..%d", opts.Bins, MaxBins)
	}
	if err := opts.checkExactValues(); err != nil {
		return nil, err
	}
	if len(states) == 0 {
		return nil, errors.New("reference from production: no window states")
	}
	first := states[0]
	if first == nil {
		return nil, errors.New("reference from production: nil window state")
	}
	if meta.Model == "" {
		meta.Model, meta.ModelVersion = first.Model, first.ModelVersion
	}
	key := stats.Key{Model: meta.Model, ModelVersion: meta.ModelVersion}
	union := stats.NewWindowState(key, 0)
	from, to := first.WindowStart, first.WindowEnd
	for _, st := range states {
		if st == nil {
			return nil, errors.New("reference from production: nil window state")
		}
		if st.Model != meta.Model || st.ModelVersion != meta.ModelVersion {
			return nil, fmt.Errorf("reference from production of %s/%s: window state of %s/%s", meta.Model, meta.ModelVersion, st.Model, st.ModelVersion)
		}
		// Merge reads o only (it clones what it keeps); a shallow copy
		// re-keyed to the union's key lets windows of different times merge.
		o := *st
		o.Key, o.WindowEnd = key, 0
		union.Merge(&o)
		from, to = min(from, st.WindowStart), max(to, st.WindowEnd)
	}
	if meta.Source == "" {
		meta.Source = Production(time.UnixMilli(from), time.UnixMilli(to))
	}
	p := profileOf(meta, union)
	for i := range p.Features {
		f := &p.Features[i]
		fs := union.Features[f.Name]
		if f.Kind != schemas.Number || f.Count == 0 || fs == nil || !fs.ValuesComplete() {
			continue
		}
		if fs.Values.Exact() {
			sorted := expand(fs.Values.WeightedValues())
			f.Edges = binEdges(sorted, opts.Bins)
			f.Hist = histogram(sorted, f.Edges)
			f.Quantiles, f.Exact = quantileSummary(sorted, opts.summarySize())
			continue
		}
		s := newWeightedSample(fs.Values.WeightedValues())
		if s.n != f.Count {
			panic(fmt.Sprintf("BUG: feature %q: sketch weighs %d values, its moments count %d", f.Name, s.n, f.Count))
		}
		f.Edges = s.binEdges(opts.Bins, f.Min, f.Max)
		f.Hist = s.histogram(f.Edges)
		f.Quantiles = s.quantileSummary(int(min(s.n, uint64(opts.summarySize()))), f.Max)
		f.RankError = fs.Values.RankErrorBound()
	}
	return p, nil
}

// expand returns the sorted values that values and weights stand for.
func expand(values []float64, weights []uint64) []float64 {
	var n uint64
	for _, w := range weights {
		n += w
	}
	out := make([]float64, 0, n)
	for i, v := range values {
		for range weights[i] {
			out = append(out, v)
		}
	}
	return out
}

// weightedSample is the sorted sample a sketch's weighted values stand for
// (value i repeated weight i times), indexed without expanding it.
type weightedSample struct {
	values []float64
	cum    []uint64 // cum[i]: total weight of values[0..i]
	n      uint64
}

func newWeightedSample(values []float64, weights []uint64) weightedSample {
	cum := make([]uint64, len(weights))
	var n uint64
	for i, w := range weights {
		n += w
		cum[i] = n
	}
	return weightedSample{values: values, cum: cum, n: n}
}

// at returns the element of 0-based index i (< n) of the sample.
func (s weightedSample) at(i uint64) float64 {
	j := sort.Search(len(s.cum), func(j int) bool { return s.cum[j] > i })
	return s.values[j]
}

// linearQuantile is linearQuantile of the sample.
func (s weightedSample) linearQuantile(q float64) float64 {
	h := float64(s.n-1) * q
	lo := uint64(math.Floor(h))
	if lo >= s.n-1 {
		return s.at(s.n - 1)
	}
	// The two-value case of linearQuantile is numpy's lerp at h - lo.
	return linearQuantile([]float64{s.at(lo), s.at(lo + 1)}, h-float64(lo))
}

// binEdges is binEdges of the sample, with the exact lo and hi (the
// feature's Min and Max, which a sketch may have compacted away) as the
// outer edges.
func (s weightedSample) binEdges(bins int, lo, hi float64) []float64 {
	edges := make([]float64, 0, bins+1)
	for i := 0; i <= bins; i++ {
		var e float64
		switch i {
		case 0:
			e = lo
		case bins:
			e = hi
		default:
			e = min(max(s.linearQuantile(float64(i)/float64(bins)), lo), hi)
		}
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

// histogram counts the weighted values in the bins of edges.
func (s weightedSample) histogram(edges []float64) []uint64 {
	hist := make([]uint64, len(edges)+1)
	prev := uint64(0)
	for i, v := range s.values {
		if b := binOf(edges, v); b >= 0 {
			hist[b] += s.cum[i] - prev
		}
		prev = s.cum[i]
	}
	return hist
}

// quantileSummary returns the size order statistics of ranks
// ceil(n(j+1)/size), j = 0..size-1, the last one replaced by the exact max.
func (s weightedSample) quantileSummary(size int, hi float64) []float64 {
	m := uint64(size)
	q := make([]float64, size)
	a, r := s.n/m, s.n%m // n = a*m + r: ceil(n(j+1)/m) = a(j+1) + ceil(r(j+1)/m) without overflow
	j := 0               // index into values, advancing with the ranks
	for i := range q {
		k := uint64(i + 1)
		rank := a*k + (r*k+m-1)/m // 1-based
		for s.cum[j] < rank {
			j++
		}
		q[i] = s.values[j]
	}
	q[size-1] = max(q[size-1], hi)
	if !slices.IsSorted(q) {
		panic("BUG: quantile summary of a sketch not sorted")
	}
	return q
}
