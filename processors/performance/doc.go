// Package performance holds mergeable model-performance states: per model,
// task and prediction window, the counts and sums from which accuracy,
// precision/recall/F1, ROC AUC, average precision, log loss, Brier score,
// MAE/RMSE/MAPE/R2 and the label coverage and delay are computed once
// delayed ground-truth labels are joined to the predictions.
//
// A State is fed (prediction, label) pairs by AddBinary, AddMulticlass or
// AddRegression and every prediction by AddPrediction; it is stored as a
// versioned binary blob (AppendBinary, UnmarshalBinary) and merged over
// partitions, coarser windows and segments (Merge). Metrics derives the
// metrics of a state.
//
// # What is exact
//
// Merging the states of two disjoint sets of pairs gives the state of their
// union. Counts (confusion matrices, label counts) are exact; sums (log loss,
// Brier, absolute and squared errors) and the labels' mean and M2 (merged
// with Chan et al.'s parallel formula) are exact up to floating-point
// rounding. Metrics match scikit-learn on the same data: the tests check
// every metric, of whole states and of states split in three, encoded,
// decoded and merged, against testdata/vectors.json (written by
// testdata/make_vectors.py with scikit-learn 1.9.1) to 1e-9 relative; the
// observed differences are below 2e-13 relative (R2 of labels 1e6 +- 0.01),
// most below 2e-15.
//
// ROC AUC and average precision are exact (ties as in scikit-learn) while a
// binary state holds at most MaxExactScores (65536) distinct scores. Beyond,
// scores are kept per cell of a grid of 2^-20 (coarser by factors of 2 if
// the cells exceed MaxCells, which scores in [0, 1] never do). A cell
// holding one distinct score stays exact; pairs whose different scores share
// a cell count as ties, so
//
//	|ROCAUC - exact| <= AUCErrorBound = 0.5 * sum_c pos_c*neg_c / (P*N)
//
// over the cells c that hold more than one distinct score, P and N the
// positive and negative labels. The bound is reported with the metrics
// (0 while exact). For scores spread evenly over [0, 1] it is at most about
// 2^-21 ~ 5e-7 (3e-7 for 180,000 uniform scores in the tests, whose actual
// error was 4e-9); it grows as the scores crowd into a narrow range, up to
// 0.5 if they all share one cell. Average precision is then computed with each cell as one
// threshold; it has no reported bound.
//
// Label-delay quantiles come from a stats.Sketch (1% relative accuracy).
//
// # Inputs
//
// NaN scores and NaN or infinite regression values are counted as invalid
// (Metrics.Invalid) and are in no metric. Binary scores outside [0, 1] are
// used as they are for the confusion counts and ROC/PR AUC, and clipped to
// [0, 1] for log loss and Brier (scikit-learn rejects them instead).
//
// # Concurrency
//
// A State is not safe for concurrent use: one goroutine owns it while it is
// fed and merged. Metrics and AppendBinary only read it. States keep no
// reference to their inputs.
//
// # Ports
//
// The Job (job.go) reads and writes through Store, which it declares and
// sinks/clickhouse's label store implements: the windows that got
// predictions or labels, a window's predictions and labels, and
// vigil_performance.
package performance
