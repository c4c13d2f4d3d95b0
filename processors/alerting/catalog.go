package alerting

import (
	"maps"
	"slices"
)

// Level says what a metric is computed on.
type Level int

const (
	// ModelLevel metrics have one value per model, segment and window
	// (Observation.Feature is empty).
	ModelLevel Level = iota + 1
	// FeatureLevel metrics have one value per feature as well.
	FeatureLevel
)

func (l Level) String() string {
	switch l {
	case ModelLevel:
		return "model"
	case FeatureLevel:
		return "feature"
	default:
		return "unknown"
	}
}

// Sources: where the reading side finds a metric.
const (
	SourceDrift          = "drift"           // drift results per feature and window
	SourceFeatureWindows = "feature_windows" // feature statistics per window
	SourceModelWindows   = "model_windows"   // model statistics per window
	SourcePerformance    = "performance"     // quality metrics once labels arrived
)

// MetricInfo describes one metric a rule may name.
type MetricInfo struct {
	Level       Level
	Source      string // one of the Source constants
	Description string
}

// Catalog maps a metric name to what it is. Rules may only name its metrics;
// the reading side iterates it to know where each one lives.
type Catalog map[string]MetricInfo

// Names returns the metric names, sorted.
func (c Catalog) Names() []string { return slices.Sorted(maps.Keys(c)) }

// DefaultCatalog returns the metrics Vigil computes. Each call returns a new
// map, which the caller may extend.
func DefaultCatalog() Catalog {
	c := Catalog{}
	add := func(level Level, source string, pairs ...string) {
		for i := 0; i < len(pairs); i += 2 {
			c[pairs[i]] = MetricInfo{Level: level, Source: source, Description: pairs[i+1]}
		}
	}
	add(FeatureLevel, SourceDrift,
		"drift_score", "score of the feature's drift method",
		"drifted", "1 when the drift method flags the feature, else 0",
		"psi", "population stability index",
		"kl", "Kullback-Leibler divergence, reference to current",
		"js", "Jensen-Shannon distance",
		"hellinger", "Hellinger distance",
		"wasserstein", "Wasserstein distance",
		"wasserstein_norm", "Wasserstein distance over the reference's standard deviation",
		"ks_stat", "two-sample Kolmogorov-Smirnov statistic",
		"ks_pvalue", "two-sample Kolmogorov-Smirnov p-value",
		"chi2_stat", "chi-squared statistic",
		"chi2_pvalue", "chi-squared p-value",
		"missing_rate", "share of missing values",
		"out_of_range_rate", "share of numeric values outside the reference range",
		"new_category_rate", "share of categories absent from the reference",
		"type_mismatch_rate", "share of values of the wrong type",
	)
	add(FeatureLevel, SourceFeatureWindows,
		"mean", "mean of the feature's values",
		"null_rate", "share of null values",
	)
	add(ModelLevel, SourceDrift,
		"drift_share", "share of the model's features that drifted",
	)
	add(ModelLevel, SourceModelWindows,
		"event_count", "prediction events in the window",
		"latency_p50", "median prediction latency",
		"latency_p95", "95th percentile of prediction latency",
		"latency_p99", "99th percentile of prediction latency",
	)
	add(ModelLevel, SourcePerformance,
		"accuracy", "accuracy",
		"precision", "precision",
		"recall", "recall",
		"f1", "F1 score",
		"roc_auc", "area under the ROC curve",
		"pr_auc", "area under the precision-recall curve",
		"log_loss", "logarithmic loss",
		"brier", "Brier score",
		"macro_f1", "F1 averaged over classes",
		"weighted_f1", "F1 averaged over classes, weighted by support",
		"mae", "mean absolute error",
		"rmse", "root mean squared error",
		"mape", "mean absolute percentage error",
		"r2", "coefficient of determination",
		"mean_error", "mean of prediction minus label",
		"label_coverage", "share of predictions with a label",
		"label_delay_p50", "median delay between prediction and label",
		"label_delay_p95", "95th percentile of the delay between prediction and label",
	)
	return c
}
