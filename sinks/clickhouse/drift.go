package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

var driftColumns = []string{
	"model", "model_version", "segment", "window_start", "window_end", "feature", "kind", "reference_id", "method",
	"score", "threshold", "drifted", "n_ref", "n_cur", "approx", "psi", "kl", "js", "hellinger", "wasserstein", "wasserstein_norm",
	"ks_stat", "ks_pvalue", "chi2_stat", "chi2_pvalue", "missing_rate", "out_of_range_rate", "new_category_rate",
	"type_mismatch_rate", "is_constant", "dataset_share", "dataset_share_bh", "dataset_drifted", "new_features", "absent_features", "computed_at",
	"exact", "score_bound", "psi_bound", "kl_bound", "js_bound", "hellinger_bound", "wasserstein_bound", "ks_stat_bound", "ks_pvalue_bound",
	"out_of_range_bound", "ks_method", "value_source", "evaluated", "reason", "reference_segment",
}

// DriftWindow is one drift evaluation to store: the features of a model
// version over [Start, End) against reference RefID.
type DriftWindow = drift.Bucket

// WriteDrift stores drift evaluations in vigil_drift, one row per feature,
// as one INSERT: the evaluated features (evaluated = 1) and those that could
// not be evaluated (drift.WindowDrift.Skipped: evaluated = 0, reason set,
// score NaN, drifted 0), and a row per vector feature and embedding method
// (drift.WindowDrift.Embeddings: feature "<name>@<method>", kind "vector"). Writing the same window again replaces its rows.
func (ws *WindowStore) WriteDrift(ctx context.Context, windows []DriftWindow) error {
	conn, _, err := ws.s.connection()
	if err != nil {
		return fmt.Errorf("write drift: %w", err)
	}
	n := 0
	for _, w := range windows {
		n += len(w.Drift.Features) + len(w.Drift.Embeddings) + len(w.Drift.Skipped)
	}
	if n == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", ws.s.cfg.Database, ddl.TableDrift, strings.Join(driftColumns, ", ")))
	if err != nil {
		return fmt.Errorf("write drift: prepare insert: %w", err)
	}
	defer b.Close()
	now := time.Now().UTC()
	for _, w := range windows {
		for i, d := range slices.Concat(w.Drift.Features, w.Drift.Embeddings, w.Drift.Skipped) {
			evaluated := i < len(w.Drift.Features)+len(w.Drift.Embeddings)
			bd := d.Bounds
			if err := b.Append(w.Model, w.ModelVersion, w.Segment, w.Start.UTC(), w.End.UTC(), d.Feature, d.Kind.String(), w.RefID, string(d.Method),
				d.Score, d.Threshold, boolByte(d.Drifted), d.NRef, d.NCur, boolByte(d.Approx),
				d.PSI, d.KL, d.JensenShannon, d.Hellinger, d.Wasserstein, d.WassersteinNorm,
				d.KSStat, d.KSPValue, d.ChiSquare, d.ChiSquarePValue, d.MissingRate, d.OutOfRangeRate, d.NewCategoryRate,
				d.TypeMismatchRate, boolByte(d.Constant), w.Drift.Share, w.Drift.ShareBH, boolByte(w.Drift.Drifted),
				nonNil(w.Drift.NewFeatures), nonNil(w.Drift.AbsentFeatures), now,
				boolByte(d.Exact), bd.Score, bd.PSI, bd.KL, bd.JensenShannon, bd.Hellinger, bd.Wasserstein, bd.KSStat, bd.KSPValue,
				bd.OutOfRangeRate, d.KSMethod, d.Source, boolByte(evaluated), d.Reason, w.RefSegment); err != nil {
				_ = b.Abort()
				return fmt.Errorf("write drift of %s %s: %w", w.Model, d.Feature, err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("write drift: insert %d rows: %w", n, err)
	}
	return nil
}

// nonNil gives an empty array column value for a nil slice.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
