package clickhouse

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

// PerformanceWindow is the performance of one prediction window (or any
// merge of windows) of a model version and segment.
type PerformanceWindow = performance.Window

var performanceColumns = []string{
	"model", "model_version", "segment", "window_start", "window_end", "task", "threshold",
	"predictions", "labeled", "label_coverage", "label_delay_p50", "label_delay_p95",
	"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "auc_error_bound", "log_loss", "brier",
	"tp", "fp", "tn", "fn", "predicted_positive_rate", "label_positive_rate",
	"macro_precision", "macro_recall", "macro_f1", "micro_f1", "weighted_precision", "weighted_recall", "weighted_f1",
	"classes", "class_precision", "class_recall", "class_f1", "class_support", "confusion",
	"mae", "rmse", "mape", "mape_nonzero", "zero_labels", "r2", "mean_error", "state", "computed_at", "version",
}

// WritePerformance stores performance windows in vigil_performance as one
// INSERT; a window written again replaces its row (the newest version wins).
func (ls *LabelStore) WritePerformance(ctx context.Context, windows []PerformanceWindow) error {
	if len(windows) == 0 {
		return nil
	}
	conn, _, err := ls.s.connection()
	if err != nil {
		return fmt.Errorf("write performance: %w", err)
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", ls.s.cfg.Database, ddl.TablePerformance, strings.Join(performanceColumns, ", ")))
	if err != nil {
		return fmt.Errorf("write performance: prepare insert: %w", err)
	}
	defer b.Close()
	now := time.Now().UTC()
	version := uint64(now.UnixNano())
	nan := math.NaN()
	for i, w := range windows {
		state, err := w.State.AppendBinary(nil)
		if err != nil {
			_ = b.Abort()
			return fmt.Errorf("write performance of %s: encode state: %w", w.Model, err)
		}
		m := w.State.Metrics()
		var (
			threshold                                     = nan
			acc, prec, rec, f1, auc, ap, bound, ll, brier = nan, nan, nan, nan, nan, nan, nan, nan, nan
			tp, fp, tn, fn                                uint64
			ppr, lpr                                      = nan, nan
			macP, macR, macF, micF, wP, wR, wF            = nan, nan, nan, nan, nan, nan, nan
			classes                                       = []string{}
			cP, cR, cF                                    = []float64{}, []float64{}, []float64{}
			support                                       = []uint64{}
			confusion                                     = [][]uint64{}
			mae, rmse, mape, mapeNZ, r2, bias             = nan, nan, nan, nan, nan, nan
			zeros                                         uint64
		)
		switch {
		case m.Binary != nil:
			x := m.Binary
			threshold = x.Threshold
			acc, prec, rec, f1, auc, ap, bound, ll, brier = x.Accuracy, x.Precision, x.Recall, x.F1, x.ROCAUC, x.PRAUC, x.AUCErrorBound, x.LogLoss, x.Brier
			tp, fp, tn, fn = x.TP, x.FP, x.TN, x.FN
			ppr, lpr = x.PredictedPositiveRate, x.LabelPositiveRate
			confusion = [][]uint64{{tn, fp}, {fn, tp}}
		case m.Multiclass != nil:
			x := m.Multiclass
			acc, ll = x.Accuracy, x.LogLoss
			macP, macR, macF, micF, wP, wR, wF = x.MacroPrecision, x.MacroRecall, x.MacroF1, x.MicroF1, x.WeightedPrecision, x.WeightedRecall, x.WeightedF1
			prec, rec, f1 = x.MacroPrecision, x.MacroRecall, x.MacroF1
			classes, cP, cR, cF, support = nonNil(x.Classes), nonNilF(x.Precision), nonNilF(x.Recall), nonNilF(x.F1), nonNilU(x.Support)
			if x.Confusion != nil {
				confusion = x.Confusion
			}
		case m.Regression != nil:
			x := m.Regression
			mae, rmse, mape, mapeNZ, zeros, r2, bias = x.MAE, x.RMSE, x.MAPE, x.MAPENonZero, x.ZeroLabels, x.R2, x.MeanError
		}
		if err := b.Append(w.Model, w.ModelVersion, w.Segment, w.Start.UTC(), w.End.UTC(), m.Task.String(), threshold,
			m.Predictions, m.Labeled, m.LabelCoverage, m.LabelDelayP50, m.LabelDelayP95,
			acc, prec, rec, f1, auc, ap, bound, ll, brier, tp, fp, tn, fn, ppr, lpr,
			macP, macR, macF, micF, wP, wR, wF, classes, cP, cR, cF, support, confusion,
			mae, rmse, mape, mapeNZ, zeros, r2, bias, string(state), now, version+uint64(i)); err != nil {
			_ = b.Abort()
			return fmt.Errorf("write performance of %s: %w", w.Model, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("write performance: insert %d rows: %w", len(windows), err)
	}
	return nil
}

// LastPerformanceWrite returns when vigil_performance was last written (the
// zero time when it is empty): where a restarted performance job resumes.
func (ls *LabelStore) LastPerformanceWrite(ctx context.Context) (time.Time, error) {
	conn, _, err := ls.s.connection()
	if err != nil {
		return time.Time{}, fmt.Errorf("read last performance write: %w", err)
	}
	var n uint64
	var t time.Time
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(), max(computed_at) FROM %s.%s", ls.s.cfg.Database, ddl.TablePerformance)).Scan(&n, &t); err != nil {
		return time.Time{}, fmt.Errorf("read last performance write: %w", err)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// PerformanceStates reads the stored performance windows of model (every
// version when version is "*") and segment ("*": every segment) that start
// in [from, to), oldest first.
func (ls *LabelStore) PerformanceStates(ctx context.Context, model, version, segment string, from, to time.Time) ([]PerformanceWindow, error) {
	conn, _, err := ls.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read performance: %w", err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT model_version, segment, window_start, window_end, state
FROM %s.%s FINAL
WHERE model = ? AND (? = '*' OR model_version = ?) AND (? = '*' OR segment = ?) AND window_start >= ? AND window_start < ?
ORDER BY window_start, model_version, segment`, ls.s.cfg.Database, ddl.TablePerformance),
		model, version, version, segment, segment, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read performance of %s: %w", model, err)
	}
	defer rows.Close()
	var out []PerformanceWindow
	for rows.Next() {
		w := PerformanceWindow{Model: model, State: new(performance.State)}
		var state string
		if err := rows.Scan(&w.ModelVersion, &w.Segment, &w.Start, &w.End, &state); err != nil {
			return nil, fmt.Errorf("read performance of %s: %w", model, err)
		}
		if err := w.State.UnmarshalBinary([]byte(state)); err != nil {
			return nil, fmt.Errorf("read performance of %s at %s: %w", model, w.Start.Format(time.RFC3339), err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

func nonNilF(s []float64) []float64 {
	if s == nil {
		return []float64{}
	}
	return s
}

func nonNilU(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}
