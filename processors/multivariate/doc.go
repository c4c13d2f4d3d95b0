// Package multivariate computes multivariate drift as NannyML's data
// reconstruction error, streaming and mergeable.
//
// A Model is fitted on a reference (Fitter, fed the reference's Arrow
// records by processors/reference's Builder through
// reference.BuilderOptions.Multivariate): every feature column of the
// reference, numeric ones imputed with the reference mean, string and bool
// ones with the most frequent value then frequency-encoded (each category
// becomes its share of the reference, an unseen one 0: category_encoders'
// CountEncoder(normalize=True), as NannyML 0.13 does), standardised
// (population standard deviation; a constant column is only centred), then
// a PCA keeps the fewest components whose explained variance exceeds
// FitOptions.VarianceShare (default 0.65, sklearn's rule for a float
// n_components). An event's reconstruction error is the Euclidean distance
// between its standardised vector and that vector projected onto the kept
// components and back. The thresholds are NannyML's: the mean reconstruction
// error of each reference chunk, then their mean ± 3 population standard
// deviations; a lower threshold below 0 is none (NaN), as NannyML drops it.
// The encoded Model is stored in the reference profile
// (reference.Profile.Multivariate).
//
// The error of an event needs the fitted model, and a mean of Euclidean
// norms cannot be recovered from moments of the features, so the errors are
// computed where events are counted: a Scorer, given to the processor as a
// pipeline.RowObserver, holds the newest model of each model version
// (reloaded by Refresh) and adds the errors of the rows added to a window
// state to the state's derived feature ErrorFeature(refID)
// (stats.DerivedFeaturePrefix): count, sum and M2 of the errors (so the
// window mean and its sampling error merge exactly) and their value sketch.
// The feature is named after the reference the errors were computed with,
// so that a window counted while the reference changed keeps the two sets
// apart and the evaluation uses only the errors of the reference in force.
//
// A Job reads the stored window states (the same port as the drift job),
// merges each window over partitions and writes one Result per window,
// model version and segment to vigil_multivariate_drift (Store).
//
// A Model is immutable and safe to share. A Scorer is safe for concurrent
// use (its models are swapped atomically); a Fitter is not.
package multivariate
