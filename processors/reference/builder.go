package reference

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// DefaultMaxValues is the default of BuilderOptions.MaxValues: 50 million
// values, 400 MB.
const DefaultMaxValues = 50_000_000

// DefaultExactValues is `vigil reference build`'s default of
// BuilderOptions.ExactValues: references of up to 50,000 rows keep every
// value (400 KB per numeric feature in the stored profile).
const DefaultExactValues = 50_000

// MaxExactValues bounds BuilderOptions.ExactValues (8 MB per feature).
const MaxExactValues = 1_000_000

func (o BuilderOptions) checkExactValues() error {
	if o.ExactValues < 0 || o.ExactValues > MaxExactValues {
		return fmt.Errorf("reference exact values %d: want 0 (default %d) to %d", o.ExactValues, QuantileSummarySize, MaxExactValues)
	}
	return nil
}

// summarySize is the quantile summary size M of a numeric feature with
// more values than that (ExactValues, default QuantileSummarySize).
func (o BuilderOptions) summarySize() int {
	if o.ExactValues == 0 {
		return QuantileSummarySize
	}
	return o.ExactValues
}

// ErrTooLarge is returned by Builder.Add when the reference holds more
// numeric values than BuilderOptions.MaxValues.
var ErrTooLarge = errors.New("reference too large")

// BuilderOptions shape a Builder.
type BuilderOptions struct {
	// Bins is the number of equal-frequency bins of numeric features
	// (before equal edges are merged). Default DefaultBins (10).
	Bins int
	// MaxValues bounds the finite numeric values the builder holds until
	// Finish, over all features. Default DefaultMaxValues.
	MaxValues int
	// ExactValues is how many values of a numeric feature the profile keeps
	// exactly (FeatureProfile.Quantiles holds every value, Exact): KS and
	// Wasserstein against it are then scipy's whenever the window holds
	// every value too. A feature with more values keeps ExactValues
	// quantiles. 0 means QuantileSummarySize (10,000); the CLI's default is
	// DefaultExactValues. Each kept value costs 8 bytes in the stored
	// profile and in the memory of every process that loads it.
	ExactValues int

	// ChunkRows, when positive and ChunkScorer is set, splits the rows, in
	// the order added, into chunks of ChunkRows consecutive rows (a last
	// chunk with fewer rows is dropped: its scores would be noisier) and
	// fills FeatureProfile.ChunkScores with the mean and sample standard
	// deviation of ChunkScorer's scores of every chunk against the finished
	// profile; a method needs at least 2 chunk scores. Default 0: no chunks.
	// Each chunk keeps a window state with value summaries (up to
	// stats.ExactCap values per numeric feature) until Finish.
	// BuildFromWindowsOptions ignores both.
	ChunkRows int
	// ChunkScorer returns the drift scores, per method name, of a chunk's
	// feature against the reference's feature; NaN and infinite scores are
	// ignored. The
	// drift package's ChunkScorer is the one to use: it is a field here only
	// because drift imports this package.
	ChunkScorer func(p *FeatureProfile, chunk *stats.FeatureState) map[string]float64

	// Segment, when set, is a segment key: the profile also gets a profile
	// per value of it (Profile.Segments, "key=value", at most
	// stats.MaxSegmentValues values, the rest in key=__other__), built from
	// the rows that have the value. The value comes from the segment column
	// s.<key> (events with segment tags), else from a string feature
	// column f.<key>, which is then a segment and not a feature (production
	// events carry it as a tag). Rows without a value belong to no segment.
	// Each segment holds its own copy of its numeric values until Finish.
	// BuildFromWindowsOptions ignores it.
	Segment string
	// Multivariate, when set, is given every record added and, at Finish,
	// fills Profile.Multivariate (processors/multivariate's Fitter; an
	// interface here because that package imports this one).
	// BuildFromWindowsOptions ignores it.
	Multivariate MultivariateFitter
}

// MultivariateFitter fits a model on every row of the reference
// (processors/multivariate.ProfileFitter).
type MultivariateFitter interface {
	Add(rec arrow.Record) error
	// Finish returns the encoded model, nil when there is none to fit.
	Finish() ([]byte, error)
}

// Builder builds a Profile from Arrow records in the layout of
// schemas.NewSchema. It is not safe for concurrent use.
type Builder struct {
	meta   Meta
	opts   BuilderOptions
	state  *stats.WindowState     // moments, missing counts and categories
	values map[string]*heldValues // finite values per numeric feature
	held   int
	err    error
	// chunks are the window states of the chunks (ChunkRows > 0); the last
	// one has chunkFill rows.
	chunks    []*stats.WindowState
	chunkFill int
	// segments are the builders of the segments' profiles (Segment set).
	segments map[string]*Builder
	segCap   stats.SegmentCap

	vectorScratch stats.VectorScratch
}

// NewBuilder returns a builder of the profile described by meta; meta.Rows
// is set by Finish.
func NewBuilder(meta Meta, opts BuilderOptions) (*Builder, error) {
	if opts.Bins == 0 {
		opts.Bins = DefaultBins
	}
	if opts.Bins < 1 || opts.Bins > MaxBins {
		return nil, fmt.Errorf("reference bins %d: want 1..%d", opts.Bins, MaxBins)
	}
	if opts.MaxValues == 0 {
		opts.MaxValues = DefaultMaxValues
	}
	if err := opts.checkExactValues(); err != nil {
		return nil, err
	}
	if opts.ChunkRows < 0 {
		return nil, fmt.Errorf("reference chunk rows %d: want 0 (no chunks) or more", opts.ChunkRows)
	}
	if opts.ChunkScorer == nil {
		opts.ChunkRows = 0
	}
	if meta.Model == "" {
		return nil, errors.New("reference: model is empty")
	}
	return &Builder{
		meta:   meta,
		opts:   opts,
		state:  stats.NewWindowState(stats.Key{Model: meta.Model, ModelVersion: meta.ModelVersion}, 0),
		values: make(map[string]*heldValues),
	}, nil
}

// Add adds every row of rec. The model columns of rec are not checked: the
// rows are taken to belong to the builder's model version. Add keeps no
// reference to rec. After an error the builder is unusable.
func (b *Builder) Add(rec arrow.Record) error {
	if b.err != nil {
		return b.err
	}
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	if b.opts.Segment != "" {
		var err error
		if rec, err = b.addSegments(rec, n); err != nil {
			b.err = err
			return err
		}
		defer rec.Release()
	}
	counted := b.vectorCounts(rec)
	b.state.AddRange(rec, 0, n)
	b.addChunks(rec, n)
	if b.opts.Multivariate != nil {
		if err := b.opts.Multivariate.Add(rec); err != nil {
			b.err = err
			return err
		}
	}
	sc := rec.Schema()
	for i := range sc.NumFields() {
		if l, ok := rec.Column(i).(*array.FixedSizeList); ok {
			b.holdVectors(sc.Field(i).Name, l, counted)
			continue
		}
		col, ok := rec.Column(i).(*array.Float64)
		if !ok {
			continue
		}
		name, ok := numericFeature(sc.Field(i).Name)
		if !ok {
			continue
		}
		if fs := b.state.Features[name]; fs == nil || fs.Kind != schemas.Number {
			continue // no value, or values of another kind (type mismatches)
		}
		h := b.values[name]
		if h == nil {
			h = &heldValues{}
			b.values[name] = h
		}
		b.held += h.add(col)
	}
	if b.held > b.opts.MaxValues {
		b.err = fmt.Errorf("%w: %d numeric values held, more than the limit of %d (build from a sample of the data)", ErrTooLarge, b.held, b.opts.MaxValues)
		return b.err
	}
	return nil
}

// vectorCounts returns the number of vectors counted so far of each vector
// feature of rec (its header's count).
func (b *Builder) vectorCounts(rec arrow.Record) map[string]uint64 {
	var m map[string]uint64
	sc := rec.Schema()
	for i := range sc.NumFields() {
		if _, ok := rec.Column(i).(*array.FixedSizeList); !ok {
			continue
		}
		if name, ok := schemas.FeatureName(sc.Field(i).Name); ok {
			if m == nil {
				m = make(map[string]uint64)
			}
			if h := b.state.Features[stats.VectorHeader(name)]; h != nil {
				m[name] = h.Num.Count
			} else {
				m[name] = 0
			}
		}
	}
	return m
}

// holdVectors holds the values of a vector column's header and components
// when the state counted them (its header's count grew; a column of
// another length than the reference's is only counted as type mismatches).
func (b *Builder) holdVectors(column string, l *array.FixedSizeList, before map[string]uint64) {
	name, ok := schemas.FeatureName(column)
	if !ok {
		return
	}
	h := b.state.Features[stats.VectorHeader(name)]
	if h == nil || h.Num.Count == before[name] {
		return
	}
	stats.VectorColumns(l, 0, l.Len(), &b.vectorScratch, func(j int, vs []float64) {
		part := stats.VectorHeader(name)
		if j >= 0 {
			part = stats.VectorComponent(name, j)
		}
		hv := b.values[part]
		if hv == nil {
			hv = &heldValues{}
			b.values[part] = hv
		}
		b.held += hv.addFloats(vs)
	})
}

// addSegments adds the rows of rec to the builders of their segments, and
// returns rec without its f.<key> column if the segment came from one (a
// new reference the caller releases).
func (b *Builder) addSegments(rec arrow.Record, n int) (arrow.Record, error) {
	key := b.opts.Segment
	sc := rec.Schema()
	col, feature := -1, false
	for i := range sc.NumFields() {
		switch sc.Field(i).Name {
		case schemas.PrefixSegment + key:
			col, feature = i, false
		case schemas.PrefixFeature + key:
			if col < 0 {
				col, feature = i, true
			}
		}
	}
	if col >= 0 && feature {
		cols := make([]arrow.Array, 0, sc.NumFields()-1)
		fields := make([]arrow.Field, 0, sc.NumFields()-1)
		for i := range sc.NumFields() {
			if i != col {
				cols, fields = append(cols, rec.Column(i)), append(fields, sc.Field(i))
			}
		}
		meta := sc.Metadata()
		values := rec.Column(col)
		values.Retain()
		defer values.Release()
		rec = array.NewRecord(arrow.NewSchema(fields, &meta), cols, int64(n))
		if err := b.addSegmentRuns(rec, values, n); err != nil {
			rec.Release()
			return nil, err
		}
		return rec, nil
	}
	rec.Retain()
	if col >= 0 {
		if err := b.addSegmentRuns(rec, rec.Column(col), n); err != nil {
			rec.Release()
			return nil, err
		}
	}
	return rec, nil
}

// addSegmentRuns adds each run of rows of rec with the same value of
// values (a utf8 column; other types are an error) to its segment's
// builder.
func (b *Builder) addSegmentRuns(rec arrow.Record, values arrow.Array, n int) error {
	str, ok := values.(*array.String)
	if !ok {
		if values.NullN() == values.Len() {
			return nil // no value in this batch
		}
		return fmt.Errorf("%w: segment column %q is %s, want strings (declare it with --column %s=string)", ErrBadInput, b.opts.Segment, values.DataType(), b.opts.Segment)
	}
	scope := stats.Key{Model: b.meta.Model, ModelVersion: b.meta.ModelVersion}
	for lo := 0; lo < n; {
		hi := lo + 1
		for hi < n && str.IsNull(hi) == str.IsNull(lo) && (str.IsNull(lo) || str.Value(hi) == str.Value(lo)) {
			hi++
		}
		if str.IsValid(lo) {
			seg := b.segCap.Segment(scope, b.opts.Segment, str.Value(lo))
			sb := b.segments[seg]
			if sb == nil {
				opts := b.opts
				opts.Segment, opts.ChunkRows, opts.ChunkScorer, opts.Multivariate = "", 0, nil, nil
				var err error
				if sb, err = NewBuilder(b.meta, opts); err != nil {
					return err
				}
				if b.segments == nil {
					b.segments = make(map[string]*Builder)
				}
				b.segments[seg] = sb
			}
			part := rec.NewSlice(int64(lo), int64(hi))
			err := sb.Add(part)
			part.Release()
			if err != nil {
				return fmt.Errorf("segment %s: %w", seg, err)
			}
		}
		lo = hi
	}
	return nil
}

// addChunks adds the n rows of rec to the chunks' window states.
func (b *Builder) addChunks(rec arrow.Record, n int) {
	size := b.opts.ChunkRows
	if size <= 0 {
		return
	}
	for lo := 0; lo < n; {
		if len(b.chunks) == 0 || b.chunkFill == size {
			b.chunks = append(b.chunks, stats.NewWindowState(b.state.Key, 0))
			b.chunkFill = 0
		}
		hi := min(n, lo+size-b.chunkFill)
		b.chunks[len(b.chunks)-1].AddRange(rec, lo, hi)
		b.chunkFill += hi - lo
		lo = hi
	}
}

// numericFeature returns the feature a float64 column is summarised under,
// as stats.WindowState.AddRange names it.
func numericFeature(column string) (string, bool) {
	switch column {
	case schemas.ColPredScore:
		return schemas.PredictionScoreFeature, true
	case schemas.ColPredValue:
		return schemas.PredictionValueFeature, true
	}
	if f, ok := schemas.FeatureName(column); ok {
		return f, true
	}
	if class, ok := schemas.ProbaClass(column); ok {
		return stats.ProbaFeaturePrefix + class, true
	}
	return "", false
}

// Finish returns the profile of every row added. The builder must not be
// used afterwards.
func (b *Builder) Finish() (*Profile, error) {
	if b.err != nil {
		return nil, b.err
	}
	p := profileOf(b.meta, b.state)
	var sc sortScratch
	for i := range p.Features {
		f := &p.Features[i]
		h := b.values[f.Name]
		if f.Kind != schemas.Number || h == nil || h.n == 0 {
			continue
		}
		if uint64(h.n) != f.Count {
			panic(fmt.Sprintf("BUG: feature %q holds %d values, its moments count %d", f.Name, h.n, f.Count))
		}
		vs := h.sorted(&sc) // valid until the next feature's
		f.Edges = binEdges(vs, b.opts.Bins)
		f.Hist = histogram(vs, f.Edges)
		f.Quantiles, f.Exact = quantileSummary(vs, b.opts.summarySize())
		delete(b.values, f.Name)
	}
	b.scoreChunks(p)
	for seg, sb := range b.segments {
		sp, err := sb.Finish()
		if err != nil {
			return nil, fmt.Errorf("segment %s: %w", seg, err)
		}
		p.Segments = append(p.Segments, SegmentProfile{Segment: seg, Rows: sp.Rows, Features: sp.Features})
	}
	slices.SortFunc(p.Segments, func(a, b SegmentProfile) int { return strings.Compare(a.Segment, b.Segment) })
	if b.opts.Multivariate != nil {
		mv, err := b.opts.Multivariate.Finish()
		if err != nil {
			return nil, err
		}
		p.Multivariate = mv
	}
	b.values, b.state, b.chunks, b.segments = nil, nil, nil, nil
	b.err = errors.New("reference: builder already finished")
	return p, nil
}

// scoreChunks fills the ChunkScores of p's features from the complete
// chunks.
func (b *Builder) scoreChunks(p *Profile) {
	chunks := b.chunks
	if len(chunks) > 0 && b.chunkFill < b.opts.ChunkRows {
		chunks = chunks[:len(chunks)-1] // incomplete
	}
	if len(chunks) < 2 {
		return
	}
	for i := range p.Features {
		f := &p.Features[i]
		scores := map[string][]float64{}
		for _, ch := range chunks {
			fs := ch.Features[f.Name]
			if fs == nil {
				continue
			}
			for m, v := range b.opts.ChunkScorer(f, fs) {
				if v-v == 0 { // finite
					scores[m] = append(scores[m], v)
				}
			}
		}
		for m, vs := range scores {
			if len(vs) < 2 {
				continue
			}
			if f.ChunkScores == nil {
				f.ChunkScores = make(map[string]ChunkStats, len(scores))
			}
			f.ChunkScores[m] = chunkStatsOf(vs)
		}
	}
}

// chunkStatsOf returns the mean and sample standard deviation of vs
// (len(vs) >= 2).
func chunkStatsOf(vs []float64) ChunkStats {
	var sum float64
	for _, v := range vs {
		sum += v
	}
	mean := sum / float64(len(vs))
	var ss float64
	for _, v := range vs {
		ss += (v - mean) * (v - mean)
	}
	return ChunkStats{Chunks: len(vs), Mean: mean, Std: math.Sqrt(ss / float64(len(vs)-1))}
}

// profileOf returns the profile of st: moments and categories only.
func profileOf(meta Meta, st *stats.WindowState) *Profile {
	meta.Rows = st.Events
	p := &Profile{Meta: meta, Features: make([]FeatureProfile, 0, len(st.Features))}
	for name, fs := range st.Features {
		if stats.IsDerived(name) {
			continue // not a feature of the events (processors/multivariate's errors)
		}
		f := FeatureProfile{
			Name: name, Kind: fs.Kind, Missing: fs.Missing(), TypeMismatch: fs.TypeMismatch,
			Mean: math.NaN(), Std: math.NaN(), Min: math.NaN(), Max: math.NaN(),
		}
		switch fs.Kind {
		case schemas.Number:
			n := &fs.Num
			f.Count, f.NaN, f.Inf = n.Count, n.NaN, n.Inf
			if n.Count > 0 {
				f.Mean, f.Std, f.Min, f.Max = n.Mean(), math.Sqrt(n.VarianceSample()), n.Min, n.Max
			}
		case schemas.Bool:
			// Bools are 0/1 in the window state: the sum counts the true values.
			n := &fs.Num
			f.Count = n.Count
			f.Counts = map[string]uint64{}
			if trues := uint64(math.Round(n.Sum)); trues > 0 {
				f.Counts["true"] = trues
			}
			if falses := n.Count - uint64(math.Round(n.Sum)); falses > 0 {
				f.Counts["false"] = falses
			}
		case schemas.String:
			c := &fs.Cat
			f.Count, f.Other = c.Count, c.Other
			f.Counts = make(map[string]uint64, len(c.Counts))
			for v, k := range c.Counts {
				f.Counts[v] = k
			}
		}
		p.Features = append(p.Features, f)
	}
	slices.SortFunc(p.Features, func(a, b FeatureProfile) int { return strings.Compare(a.Name, b.Name) })
	return p
}
