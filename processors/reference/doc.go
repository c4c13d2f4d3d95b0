// Package reference builds, encodes and serves reference profiles: what
// "normal" looks like for one model version, the baseline the drift
// statistics compare production windows with.
//
// A Profile holds, per feature (and per prediction column, under the names
// schemas.PredictionScoreFeature, PredictionLabelFeature,
// PredictionValueFeature and "__proba.<class>"):
//
//   - numeric features: count, missing, NaN and Inf counts, mean, sample
//     standard deviation, min, max, equal-frequency bin edges with the
//     reference histogram on them, and a quantile summary for KS and
//     Wasserstein distances (see FeatureProfile);
//   - string and bool features: count, missing and the count of each value
//     (at most stats.MaxCategories distinct values, the rest in Other).
//
// Two sources, one code path: a Builder reads Arrow records in the layout
// of schemas/arrow.go (ReadCSV, ReadJSONL and ReadParquet turn reference
// files into such records), and moments and categories are computed by
// processors/stats exactly as for production windows. BuildFromWindows
// merges stored production window states instead; those carry no bins or
// quantiles yet (see BuildFromWindows).
//
// Memory: a Builder holds every finite numeric value of the reference until
// Finish (8 bytes per value; bounded by BuilderOptions.MaxValues), which is
// fine for files of a few million rows. Category keys are copied; no
// record memory is retained.
//
// A Profile is immutable once built or decoded: it may be shared read-only
// between goroutines. A Builder is not safe for concurrent use.
//
// BuildFromStore reads the window states through WindowStore (stored.go),
// which sinks/clickhouse's window store implements.
package reference
