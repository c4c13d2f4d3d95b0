// Package stats holds the mergeable state of one window: per model, model
// version and window, the event count, late count, latency sketch and, per
// feature, moments, min/max and category counts. States are computed on Arrow
// arrays and merge exactly: merging the states of two disjoint sets of events
// gives the state of their union (category counts are exact up to
// MaxCategories distinct values per feature; the rest is counted in Other).
//
// Numeric moments (count, sum, M2 = sum of squared deviations, min, max)
// merge exactly up to floating-point rounding (Chan et al.), so a mean or
// variance over any union of windows and partitions can be derived from the
// stored sums. Latency quantiles come from a Sketch with 1% relative
// accuracy whose binary encoding is stable across versions of this package.
//
// The values of a Number feature are summarised in FeatureState.Values, a
// ValueSketch for Kolmogorov-Smirnov and Wasserstein tests: exact up to
// ExactCap values, or the cap SetExactCap configures (8 bytes per value),
// beyond that a KLL sketch whose
// CDF is within RankErrorBound (below 1% up to about 10^7 values; about
// 0.8% at 10^5..10^6) of the exact one, in O(k + log n) memory (about 3k
// kept values, k = ValueSketchK), for single windows and for any merge of
// them.
//
// WindowState.AddRange reads an Arrow record in the layout of
// schemas.NewSchema through its typed arrays (no per-value boxing) and keeps
// no reference to the record's memory: category keys are copied.
//
// A WindowState is owned by one goroutine; nothing here is safe for
// concurrent use.
package stats

import "github.com/vigil-ml/vigil/schemas"

// MaxCategories bounds the distinct values kept per categorical feature and
// window; further values are counted in CategoricalState.Other.
const MaxCategories = 1000

// Key identifies a window state within one source partition.
type Key struct {
	Model        string
	ModelVersion string
	// Segment is "" for the state of all the window's events, or "key=value"
	// for the state of the events carrying that segment tag (for example
	// "region=eu"), kept for the segment keys the processor is told to slice by.
	Segment     string
	WindowStart int64 // Unix milliseconds, inclusive
}

// NumericState summarises a numeric (or boolean, as 0/1) feature.
// Sum and M2 follow Chan et al.'s parallel algorithm so that Merge is exact
// up to floating-point rounding.
type NumericState struct {
	Count   uint64  // non-missing, finite values
	Missing uint64  // null values
	NaN     uint64  // NaN values (not in Count)
	Inf     uint64  // +-Inf values (not in Count)
	Sum     float64 // of finite values
	M2      float64 // sum of squared deviations from the mean
	Min     float64 // valid when Count > 0
	Max     float64 // valid when Count > 0
}

// CategoricalState summarises a string feature.
type CategoricalState struct {
	Count   uint64            // non-missing values
	Missing uint64            // null values
	Counts  map[string]uint64 // per value, at most MaxCategories entries
	Other   uint64            // values beyond MaxCategories distinct ones
}

// FeatureState is the state of one feature (or of a prediction column under
// the schemas.Prediction*Feature names) in one window.
//
// A FeatureState holds slices (Cat.Counts, Values): copy it with Clone.
//
// Kind is schemas.Null while only missing values have been seen (an all-null
// column says nothing about the feature's type); Missing is then held in
// Num.Missing and moves to Cat.Missing if the feature turns out a String.
type FeatureState struct {
	Kind         schemas.Kind // Number, String or Bool; Bool uses Num with 0/1; Null: only missing values so far
	Num          NumericState
	Cat          CategoricalState
	TypeMismatch uint64 // values of another kind than Kind, counted as missing too (see Missing)

	// Values summarises the distribution of the finite values of a Number
	// feature (empty for other kinds); see ValuesComplete.
	Values ValueSketch
	// Bins counts the finite values of a Number feature in coarse buckets
	// instead, when the window keeps no value sketches
	// (WindowState.NoValues); see BinsComplete.
	Bins CoarseHistogram

	seen uint64 // WindowState.epoch of the last AddRange that had a column for it
}

// WindowState is the mergeable state of one window of one model version.
type WindowState struct {
	Key
	WindowEnd  int64  // Unix milliseconds, exclusive
	Events     uint64 // events counted in the window
	Late       uint64 // events that arrived after the window closed (not in Events)
	Latency    Sketch // latency in milliseconds of events that reported one
	Features   map[string]*FeatureState
	LastOffset int64 // highest source offset included; -1 when none
	Final      bool  // the window is closed: no more events will be added
	Dirty      bool  // changed since last written

	// NoValues turns off the value summaries (FeatureState.Values) of new
	// values: they are what KS and Wasserstein drift need, and most of
	// AddRange's cost once a window holds more than ExactCap values of a
	// feature. Features added to without them report !ValuesComplete; their
	// values are counted in FeatureState.Bins instead (BinsComplete), from
	// which the histogram distances are computed.
	NoValues bool

	scratch *addScratch // AddRange's reusable buffers; nil until first used
	epoch   uint64      // counts AddRange calls, to find features a batch lacks
}
