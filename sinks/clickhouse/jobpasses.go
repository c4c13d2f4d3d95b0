package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ml/vigil/processors/shard"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

var _ shard.Ledger = (*WindowStore)(nil)

// Passes returns the window passes of job (of model; "": every model) in
// vigil_job_passes whose windows start at or after from (processors/shard's
// ledger).
func (ws *WindowStore) Passes(ctx context.Context, job, model string, from time.Time) ([]shard.Pass, error) {
	conn, _, err := ws.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read job passes: %w", err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT partition, model, model_version, window_start, input, generation, member, max(computed_at), max(seq) FROM %s.%s "+
		"WHERE job = ? AND model != '' AND (? = '' OR model = ?) AND window_start >= ? GROUP BY partition, model, model_version, window_start, input, generation, member",
		ws.s.cfg.Database, ddl.TableJobPasses), job, model, model, from.UTC())
	if err != nil {
		return nil, fmt.Errorf("read %s passes: %w", job, err)
	}
	defer rows.Close()
	var out []shard.Pass
	for rows.Next() {
		p := shard.Pass{Job: job}
		var part int32
		if err := rows.Scan(&part, &p.Model, &p.Version, &p.WindowStart, &p.Input, &p.Generation, &p.Member, &p.ComputedAt, &p.Seq); err != nil {
			return nil, fmt.Errorf("read %s passes: %w", job, err)
		}
		p.Partition = int(part)
		p.WindowStart, p.ComputedAt = p.WindowStart.UTC(), p.ComputedAt.UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// PartitionPasses returns when the newest pass of job over each
// partition's models began.
func (ws *WindowStore) PartitionPasses(ctx context.Context, job string) (map[int]time.Time, error) {
	conn, _, err := ws.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read job partition passes: %w", err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT partition, max(computed_at) FROM %s.%s WHERE job = ? AND model = '' GROUP BY partition",
		ws.s.cfg.Database, ddl.TableJobPasses), job)
	if err != nil {
		return nil, fmt.Errorf("read %s partition passes: %w", job, err)
	}
	defer rows.Close()
	out := map[int]time.Time{}
	for rows.Next() {
		var part int32
		var t time.Time
		if err := rows.Scan(&part, &t); err != nil {
			return nil, fmt.Errorf("read %s partition passes: %w", job, err)
		}
		out[int(part)] = t.UTC()
	}
	return out, rows.Err()
}

// RecordPasses stores passes in vigil_job_passes as one INSERT.
func (ws *WindowStore) RecordPasses(ctx context.Context, passes []shard.Pass) error {
	if len(passes) == 0 {
		return nil
	}
	conn, _, err := ws.s.connection()
	if err != nil {
		return fmt.Errorf("record job passes: %w", err)
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (job, partition, model, model_version, window_start, input, generation, member, computed_at, seq)",
		ws.s.cfg.Database, ddl.TableJobPasses))
	if err != nil {
		return fmt.Errorf("record job passes: prepare insert: %w", err)
	}
	defer b.Close()
	for _, p := range passes {
		start := p.WindowStart
		if start.IsZero() {
			start = time.Unix(0, 0)
		}
		if err := b.Append(p.Job, int32(p.Partition), p.Model, p.Version, start.UTC(), p.Input, p.Generation, p.Member, p.ComputedAt.UTC(), p.Seq); err != nil {
			_ = b.Abort()
			return fmt.Errorf("record %s passes: %w", p.Job, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record job passes: insert %d rows: %w", len(passes), err)
	}
	return nil
}
