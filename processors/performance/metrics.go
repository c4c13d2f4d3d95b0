package performance

// Metrics are the performance metrics of one State. A metric that is not
// defined for the data (no labelled pair, a single label class for ROC AUC, ...)
// is NaN. Exactly one of Binary, Multiclass and Regression is set, the one of
// Task.
type Metrics struct {
	Task Task
	// Predictions counts the predictions of the window, labelled or not.
	Predictions uint64
	// Labeled counts the labelled pairs behind the metrics; Invalid the pairs
	// that were rejected (NaN score, non-finite regression value, a class
	// beyond MaxClasses) and are in no metric.
	Labeled, Invalid uint64
	// LabelCoverage is Labeled / Predictions (NaN without predictions). It
	// exceeds 1 when labels were added for predictions not counted.
	LabelCoverage float64
	// LabelDelayP50 and LabelDelayP95 are nearest-rank quantiles of the label
	// delays of the labelled pairs, in seconds, within 1% relative error
	// (stats.Sketch); NaN when no delay was recorded.
	LabelDelayP50, LabelDelayP95 float64

	Binary     *BinaryMetrics
	Multiclass *MulticlassMetrics
	Regression *RegressionMetrics
}

// BinaryMetrics are the metrics of a binary classifier. A pair is predicted
// positive when its score is >= Threshold. With no labelled pair every
// float is NaN.
type BinaryMetrics struct {
	Threshold      float64
	TP, FP, TN, FN uint64
	// Accuracy is (TP+TN) / labelled pairs.
	Accuracy float64
	// Precision = TP/(TP+FP), Recall = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN),
	// each 0 when its denominator is 0: scikit-learn's default
	// zero_division="warn" returns 0.0 (and warns).
	Precision, Recall, F1 float64
	// ROCAUC is the area under the ROC curve of the scores: the probability
	// that a random positive scores above a random negative, ties counting
	// 1/2 (sklearn roc_auc_score). NaN unless both classes are present.
	ROCAUC float64
	// PRAUC is the average precision, sum over distinct score thresholds of
	// (R_k - R_{k-1}) P_k: sklearn's average_precision_score, the step-wise
	// sum, not the trapezoidal area. NaN without positives (sklearn returns
	// 0.0 with a warning); 1 when every pair is positive.
	PRAUC float64
	// AUCErrorBound bounds |ROCAUC - exact ROC AUC| once scores were
	// quantised (ScoresQuantised): 0.5 * sum over the grid cells holding more
	// than one distinct score of pos_c*neg_c, divided by P*N. 0 while exact;
	// NaN when ROCAUC is.
	AUCErrorBound float64
	// ScoresQuantised reports that the score distribution outgrew
	// MaxExactScores and ROCAUC and PRAUC come from a grid of scores.
	ScoresQuantised bool
	// LogLoss is the mean of -ln q, q the probability given to the label
	// (p for a positive, 1-p for a negative, p the score clipped to [0, 1])
	// clipped to [eps, 1-eps], eps = 2^-52 (sklearn log_loss for float64;
	// sklearn rejects scores outside [0, 1] instead of clipping them).
	LogLoss float64
	// Brier is the mean of (label - p)^2 with the score clipped to [0, 1]
	// (sklearn brier_score_loss, which rejects scores outside [0, 1]).
	Brier float64
	// PredictedPositiveRate is (TP+FP) / labelled pairs, LabelPositiveRate
	// (TP+FN) / labelled pairs.
	PredictedPositiveRate, LabelPositiveRate float64
}

// MulticlassMetrics are the metrics of a multiclass classifier, with
// scikit-learn's semantics: the labels are the sorted union of the actual and
// predicted classes, and a precision, recall or F1 whose denominator is 0 is
// 0 (zero_division="warn"). With no labelled pair every float is NaN and the
// slices are empty.
type MulticlassMetrics struct {
	// Classes is the sorted (byte order) union of the actual and predicted
	// classes; every per-class slice and the confusion matrix follow it.
	Classes []string
	// Confusion[i][j] counts pairs of actual class i predicted as class j
	// (sklearn confusion_matrix).
	Confusion [][]uint64
	Accuracy  float64
	// Per class: Precision = TP/predicted, Recall = TP/actual,
	// F1 = 2TP/(predicted+actual), Support = actual count.
	Precision, Recall, F1 []float64
	Support               []uint64
	// Macro: unweighted mean over Classes of the per-class values (classes
	// never actual included, as sklearn does). Micro: from the summed counts;
	// in single-label multiclass all three equal Accuracy. Weighted: mean
	// weighted by Support.
	MacroPrecision, MacroRecall, MacroF1          float64
	MicroPrecision, MicroRecall, MicroF1          float64
	WeightedPrecision, WeightedRecall, WeightedF1 float64
	// LogLoss is the mean of -ln clip(p(actual), eps, 1-eps) over the
	// LogLossCount pairs added with class probabilities, eps = 2^-52. The
	// probabilities are used as given, not renormalised (scikit-learn 1.9
	// only warns when a row does not sum to 1); an actual class missing from
	// the probability classes counts as p = 0, so ln(eps) ~ 36.04. NaN when
	// LogLossCount is 0.
	LogLoss      float64
	LogLossCount uint64
	// ProbsMissing counts labelled pairs without usable probabilities (nil,
	// a length different from the classes', NaN at the actual class).
	ProbsMissing uint64
}

// RegressionMetrics are the metrics of a regression model. With N = 0 every
// float is NaN.
type RegressionMetrics struct {
	N uint64
	// MAE is mean |pred - actual|, RMSE sqrt(mean (pred - actual)^2).
	MAE, RMSE float64
	// MAPE is mean |pred - actual| / max(|actual|, eps), eps = 2^-52, as
	// sklearn's mean_absolute_percentage_error: a zero label with a wrong
	// prediction adds a huge term (|error| * 4.5e15). MAPENonZero is the mean
	// over the pairs with actual != 0 only (NaN when there are none);
	// ZeroLabels counts the others.
	MAPE        float64
	MAPENonZero float64
	ZeroLabels  uint64
	// R2 is 1 - SSres/SStot (sklearn r2_score, force_finite=True): with
	// constant labels (SStot = 0) it is 1 when every prediction is exact and
	// 0 otherwise; NaN with fewer than 2 pairs, as in sklearn.
	R2 float64
	// MeanError is mean (pred - actual): positive when the model
	// over-predicts.
	MeanError float64
}
