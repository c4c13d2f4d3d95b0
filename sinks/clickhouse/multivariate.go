package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ml/vigil/processors/multivariate"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

var multivariateColumns = []string{
	"model", "model_version", "segment", "window_start", "window_end", "feature", "method", "reference_id",
	"score", "sampling_error", "lower_threshold", "upper_threshold", "drifted", "n", "events", "p50", "p95",
	"components", "computed_at",
}

var _ multivariate.Store = (*WindowStore)(nil)

// WriteMultivariate stores multivariate drift results in
// vigil_multivariate_drift as one INSERT. Writing the same window, segment,
// feature and method again replaces the row.
func (ws *WindowStore) WriteMultivariate(ctx context.Context, results []multivariate.Result) error {
	if len(results) == 0 {
		return nil
	}
	conn, _, err := ws.s.connection()
	if err != nil {
		return fmt.Errorf("write multivariate drift: %w", err)
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", ws.s.cfg.Database, ddl.TableMultivariateDrift, strings.Join(multivariateColumns, ", ")))
	if err != nil {
		return fmt.Errorf("write multivariate drift: prepare insert: %w", err)
	}
	defer b.Close()
	now := time.Now().UTC()
	for _, r := range results {
		if err := b.Append(r.Model, r.ModelVersion, r.Segment, r.Start.UTC(), r.End.UTC(), r.Feature, r.Method, r.RefID,
			r.Score, r.SamplingError, r.Lower, r.Upper, boolByte(r.Drifted), r.N, r.Events, r.P50, r.P95,
			uint32(r.Components), now); err != nil {
			_ = b.Abort()
			return fmt.Errorf("write multivariate drift of %s %s: %w", r.Model, r.Feature, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("write multivariate drift: insert %d rows: %w", len(results), err)
	}
	return nil
}
