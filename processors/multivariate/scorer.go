package multivariate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// Errors appends to dst the reconstruction errors of rows [lo, hi) of rec,
// a record in the layout of schemas.NewSchema. A value the record lacks, a
// null, a NaN or ±Inf and a value of another kind than the column's is
// imputed; a category the reference lacks encodes as 0.
func (m *Model) Errors(dst []float64, rec arrow.Record, lo, hi int) []float64 {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	d := len(m.Columns)
	sc.z, sc.r = grow(sc.z, d), grow(sc.r, d)
	sc.cols = sc.cols[:0]
	for j := range m.Columns {
		sc.cols = append(sc.cols, nil)
		idx := rec.Schema().FieldIndices(schemas.PrefixFeature + m.Columns[j].Name)
		if len(idx) > 0 {
			sc.cols[j] = rec.Column(idx[0])
		}
	}
	for i := lo; i < hi; i++ {
		for j := range m.Columns {
			c := &m.Columns[j]
			sc.z[j] = (c.encode(sc.cols[j], i) - c.Mean) / c.Scale
		}
		dst = append(dst, m.reconstructionError(sc.z, sc.r))
	}
	return dst
}

// encode returns the encoded value of row i of col (nil: absent).
func (c *Column) encode(col arrow.Array, i int) float64 {
	switch a := col.(type) {
	case *array.Float64:
		if !c.Categorical && a.IsValid(i) && finite(a.Value(i)) {
			return a.Value(i)
		}
	case *array.String:
		if c.Categorical && a.IsValid(i) {
			return c.Freq[a.Value(i)]
		}
	case *array.Boolean:
		if c.Categorical && a.IsValid(i) {
			return c.Freq[boolName(a.Value(i))]
		}
	}
	return c.Impute
}

type scratch struct {
	z, r, errs []float64
	cols       []arrow.Array
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// ModelOf decodes the multivariate model of a reference profile: nil, nil
// when the profile has none.
func ModelOf(p *reference.Profile) (*Model, error) {
	if len(p.Multivariate) == 0 {
		return nil, nil
	}
	m := new(Model)
	if err := m.UnmarshalBinary(p.Multivariate); err != nil {
		return nil, fmt.Errorf("reference %d of %s/%s: %w", p.ID, p.Model, p.ModelVersion, err)
	}
	return m, nil
}

// ReferenceSource is where a Scorer and a Job find the references in force
// (the drift job's port; the ClickHouse sink's reference store).
type ReferenceSource interface {
	LatestReferences(ctx context.Context) (map[[2]string]*reference.Profile, error)
}

// DefaultRefresh is how often a processor reloads the models by default.
const DefaultRefresh = 30 * time.Second

// scored is the model in force for one model version.
type scored struct {
	refID   uint64
	model   *Model
	feature string
}

// Scorer adds reconstruction errors to window states as their rows are
// counted (pipeline.RowObserver), with the newest model of each model
// version that Refresh loaded. Safe for concurrent use.
type Scorer struct {
	src    ReferenceSource
	log    zerolog.Logger
	models atomic.Pointer[map[[2]string]scored]
}

// NewScorer returns a Scorer of the references of src; it scores nothing
// until Refresh (or SetModel) loads a model.
func NewScorer(src ReferenceSource, log zerolog.Logger) *Scorer {
	s := &Scorer{src: src, log: log.With().Str("component", "multivariate").Logger()}
	s.models.Store(&map[[2]string]scored{})
	return s
}

// Refresh loads the newest reference of every model version and keeps the
// multivariate models they hold. A model that does not decode is left out
// and logged; the others are kept.
func (s *Scorer) Refresh(ctx context.Context) error {
	refs, err := s.src.LatestReferences(ctx)
	if err != nil {
		return fmt.Errorf("load multivariate models: %w", err)
	}
	next := make(map[[2]string]scored, len(refs))
	for mv, p := range refs {
		m, err := ModelOf(p)
		if err != nil {
			s.log.Error().Err(err).Msg("multivariate model left out")
			continue
		}
		if m != nil {
			next[mv] = scored{refID: p.ID, model: m, feature: ErrorFeature(p.ID)}
		}
	}
	s.models.Store(&next)
	return nil
}

// Pass is Refresh as a periodic pass, its failure logged.
func (s *Scorer) Pass(ctx context.Context) {
	if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Msg("refresh multivariate models")
	}
}

// SetModel puts m in force for a model version, as reference refID's.
func (s *Scorer) SetModel(model, version string, refID uint64, m *Model) {
	old := *s.models.Load()
	next := make(map[[2]string]scored, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[[2]string{model, version}] = scored{refID: refID, model: m, feature: ErrorFeature(refID)}
	s.models.Store(&next)
}

// AddRange adds the reconstruction errors of rows [lo, hi) of rec to st,
// when st's model version has a model: to the derived feature
// ErrorFeature(refID), its moments and (unless st.NoValues) its value
// sketch.
func (s *Scorer) AddRange(st *stats.WindowState, rec arrow.Record, lo, hi int) {
	if hi <= lo {
		return
	}
	sm, ok := (*s.models.Load())[[2]string{st.Model, st.ModelVersion}]
	if !ok {
		return
	}
	sc := scratchPool.Get().(*scratch)
	sc.errs = sm.model.Errors(sc.errs[:0], rec, lo, hi)
	fs := st.Features[sm.feature]
	if fs == nil {
		fs = &stats.FeatureState{Kind: schemas.Number}
		if st.Features == nil {
			st.Features = map[string]*stats.FeatureState{}
		}
		st.Features[sm.feature] = fs
	}
	fs.Num.AddFloat64s(sc.errs)
	if !st.NoValues {
		fs.Values.AddFloat64s(sc.errs)
	}
	st.Dirty = true
	scratchPool.Put(sc)
}
