package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

var referenceColumns = []string{
	"model", "model_version", "reference_id", "created_at", "source", "rows", "features", "profile",
}

// WriteReference stores p in vigil_references, where it becomes the
// reference in force of its model version when its ID is the largest.
// Writing a profile with the same model, version and ID again replaces it.
// Errors wrapping ErrBadInput (no model, no ID, a profile that does not
// encode) are permanent.
func (rs *ReferenceStore) WriteReference(ctx context.Context, p *reference.Profile) error {
	conn, _, err := rs.s.connection()
	if err != nil {
		return fmt.Errorf("write reference: %w", err)
	}
	if p == nil || p.Model == "" || p.ID == 0 {
		return fmt.Errorf("write reference: %w: a reference needs a model and an id", ErrBadInput)
	}
	data, err := p.MarshalBinary()
	if err != nil {
		return fmt.Errorf("write reference %s/%s: %w: %v", p.Model, p.ModelVersion, ErrBadInput, err)
	}
	db := rs.s.cfg.Database
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", db, ddl.TableReferences, strings.Join(referenceColumns, ", ")))
	if err != nil {
		return fmt.Errorf("write reference %s/%s: prepare insert into %s.%s: %w", p.Model, p.ModelVersion, db, ddl.TableReferences, err)
	}
	defer b.Close()
	if err := b.Append(p.Model, p.ModelVersion, p.ID, p.CreatedAt.UTC(), p.Source, p.Rows, p.FeatureNames(), string(data)); err != nil {
		_ = b.Abort()
		return fmt.Errorf("write reference %s/%s: %w", p.Model, p.ModelVersion, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("write reference %s/%s: insert into %s.%s: %w", p.Model, p.ModelVersion, db, ddl.TableReferences, err)
	}
	rs.s.log.Info().Str("model", p.Model).Str("model_version", p.ModelVersion).Uint64("reference_id", p.ID).
		Str("source", p.Source).Uint64("rows", p.Rows).Int("bytes", len(data)).Msg("reference written")
	return nil
}

// LatestReferences returns, per model and model version, the reference
// with the largest id: the one in force. A stored profile that does not
// decode (for example one written by a newer Vigil) is logged and left out,
// so that it cannot stop the references of other models from loading. It
// has the shape of reference.LoadFunc.
func (rs *ReferenceStore) LatestReferences(ctx context.Context) (map[[2]string]*reference.Profile, error) {
	conn, _, err := rs.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read references: %w", err)
	}
	db := rs.s.cfg.Database
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT model, model_version, max(reference_id), argMax(profile, reference_id)
FROM %s.%s FINAL GROUP BY model, model_version`, db, ddl.TableReferences))
	if err != nil {
		return nil, fmt.Errorf("read references from %s.%s: %w", db, ddl.TableReferences, err)
	}
	defer rows.Close()
	out := map[[2]string]*reference.Profile{}
	for rows.Next() {
		var (
			model, version, data string
			id                   uint64
		)
		if err := rows.Scan(&model, &version, &id, &data); err != nil {
			return nil, fmt.Errorf("read references from %s.%s: %w", db, ddl.TableReferences, err)
		}
		p := new(reference.Profile)
		if err := p.UnmarshalBinary([]byte(data)); err != nil {
			rs.s.log.Error().Err(err).Str("model", model).Str("model_version", version).Uint64("reference_id", id).
				Msg("cannot decode the latest reference; the model version has none")
			continue
		}
		if p.Model != model || p.ModelVersion != version || p.ID != id {
			rs.s.log.Error().Str("model", model).Str("model_version", version).Uint64("reference_id", id).
				Str("profile", fmt.Sprintf("%s/%s#%d", p.Model, p.ModelVersion, p.ID)).
				Msg("stored reference does not match its row; the model version has none")
			continue
		}
		out[[2]string{model, version}] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read references from %s.%s: %w", db, ddl.TableReferences, err)
	}
	return out, nil
}

// ListReferences returns the metadata of every stored reference, by model,
// model version and id. CreatedAt has the precision of the table's column:
// seconds on ClickHouse older than 22.
func (rs *ReferenceStore) ListReferences(ctx context.Context) ([]reference.Meta, error) {
	conn, _, err := rs.s.connection()
	if err != nil {
		return nil, fmt.Errorf("list references: %w", err)
	}
	db := rs.s.cfg.Database
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT model, model_version, reference_id, created_at, source, rows
FROM %s.%s FINAL ORDER BY model, model_version, reference_id`, db, ddl.TableReferences))
	if err != nil {
		return nil, fmt.Errorf("list references in %s.%s: %w", db, ddl.TableReferences, err)
	}
	defer rows.Close()
	var out []reference.Meta
	for rows.Next() {
		var m reference.Meta
		var created time.Time
		if err := rows.Scan(&m.Model, &m.ModelVersion, &m.ID, &created, &m.Source, &m.Rows); err != nil {
			return nil, fmt.Errorf("list references in %s.%s: %w", db, ddl.TableReferences, err)
		}
		m.CreatedAt = created.UTC()
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list references in %s.%s: %w", db, ddl.TableReferences, err)
	}
	return out, nil
}
