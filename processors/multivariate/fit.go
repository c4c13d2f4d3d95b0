package multivariate

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"gonum.org/v1/gonum/mat"

	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/schemas"
)

// Defaults of FitOptions.
const (
	// DefaultVarianceShare is NannyML's default n_components (0.65).
	DefaultVarianceShare = 0.65
	// DefaultChunks is the number of reference chunks when ChunkRows is 0
	// (NannyML's default chunker: 10 chunks).
	DefaultChunks = 10
	// DefaultMaxRows bounds the rows a Fitter holds.
	DefaultMaxRows = 10_000_000
	// MaxColumns bounds the columns of a model (the PCA is d×d).
	MaxColumns = 1000
)

// FitOptions configure a Fitter.
type FitOptions struct {
	// VarianceShare: keep the fewest components whose explained variance
	// ratio adds up to more than this, in (0, 1]. Default DefaultVarianceShare.
	VarianceShare float64
	// ChunkRows is the size of the reference chunks the thresholds come
	// from: complete chunks of consecutive rows (a last incomplete one is
	// left out). 0: DefaultChunks chunks of rows/DefaultChunks rows.
	ChunkRows int
	// MaxRows bounds the rows held until Finish (8 bytes per row and
	// numeric column, 4 per categorical one). Default DefaultMaxRows.
	MaxRows int
}

func (o FitOptions) withDefaults() FitOptions {
	if o.VarianceShare == 0 {
		o.VarianceShare = DefaultVarianceShare
	}
	if o.MaxRows == 0 {
		o.MaxRows = DefaultMaxRows
	}
	return o
}

// Validate reports an option out of range.
func (o FitOptions) Validate() error {
	o = o.withDefaults()
	switch {
	case !(o.VarianceShare > 0 && o.VarianceShare <= 1):
		return fmt.Errorf("multivariate variance share %v: want a share in (0, 1]", o.VarianceShare)
	case o.ChunkRows < 0:
		return fmt.Errorf("multivariate chunk rows %d: want 0 (10 chunks) or more", o.ChunkRows)
	case o.MaxRows < 0:
		return fmt.Errorf("multivariate max rows %d: want 0 (default) or more", o.MaxRows)
	}
	return nil
}

// ErrNoColumns is returned by Finish when the reference has no feature
// with a value (nothing to fit).
var ErrNoColumns = errors.New("no feature with a value to fit a multivariate model on")

// Fitter collects the feature values of a reference, row by row, and fits a
// Model. It holds every row until Finish.
type Fitter struct {
	opts    FitOptions
	rows    int
	columns map[string]*fitColumn
}

// fitColumn holds one feature's values over all rows: numbers (NaN =
// missing) or category codes (-1 = missing).
type fitColumn struct {
	kind  schemas.Kind // Number, or String/Bool for categorical
	nums  []float64
	codes []int32
	dict  map[string]int32
	names []string
}

// NewFitter returns a Fitter.
func NewFitter(opts FitOptions) (*Fitter, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Fitter{opts: opts.withDefaults(), columns: map[string]*fitColumn{}}, nil
}

// Add adds every row of rec, a record in the layout of schemas.NewSchema:
// its f.<name> columns. A column of another kind than the feature's first
// one (and a NaN or ±Inf number) counts as missing. It retains no memory of
// rec.
func (f *Fitter) Add(rec arrow.Record) error {
	n := int(rec.NumRows())
	if f.rows+n > f.opts.MaxRows {
		return fmt.Errorf("multivariate fit: more than %d reference rows (raise the limit or sample the reference)", f.opts.MaxRows)
	}
	sc := rec.Schema()
	for i := range sc.NumFields() {
		name, ok := schemas.FeatureName(sc.Field(i).Name)
		if !ok {
			continue
		}
		col := rec.Column(i)
		kind, ok := schemas.KindOf(col.DataType())
		if !ok || kind == schemas.Null || col.NullN() == col.Len() {
			continue
		}
		fc := f.columns[name]
		if fc == nil {
			if len(f.columns) >= MaxColumns {
				return fmt.Errorf("multivariate fit: more than %d feature columns", MaxColumns)
			}
			fc = &fitColumn{kind: kind}
			f.columns[name] = fc
		}
		if fc.kind != kind {
			continue // a type mismatch: missing, filled in below
		}
		fc.fill(f.rows)
		switch a := col.(type) {
		case *array.Float64:
			for r := range n {
				v := math.NaN()
				if a.IsValid(r) && finite(a.Value(r)) {
					v = a.Value(r)
				}
				fc.nums = append(fc.nums, v)
			}
		case *array.String:
			for r := range n {
				fc.codes = append(fc.codes, fc.code(a.IsValid(r), a.Value(r)))
			}
		case *array.Boolean:
			for r := range n {
				fc.codes = append(fc.codes, fc.code(a.IsValid(r), boolName(a.Value(r))))
			}
		}
	}
	f.rows += n
	for _, fc := range f.columns {
		fc.fill(f.rows)
	}
	return nil
}

func boolName(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// fill pads the column with missing values up to n rows.
func (c *fitColumn) fill(n int) {
	if c.kind == schemas.Number {
		for len(c.nums) < n {
			c.nums = append(c.nums, math.NaN())
		}
		return
	}
	for len(c.codes) < n {
		c.codes = append(c.codes, -1)
	}
}

func (c *fitColumn) code(valid bool, s string) int32 {
	if !valid {
		return -1
	}
	if id, ok := c.dict[s]; ok {
		return id
	}
	if c.dict == nil {
		c.dict = map[string]int32{}
	}
	id := int32(len(c.names))
	c.dict[s] = id
	c.names = append(c.names, s)
	return id
}

// Rows returns the rows added.
func (f *Fitter) Rows() int { return f.rows }

// Finish fits the model on the rows added. The Fitter must not be used
// after.
func (f *Fitter) Finish() (*Model, error) {
	if f.rows < 2 {
		return nil, fmt.Errorf("multivariate fit: %d reference rows, want at least 2", f.rows)
	}
	names := make([]string, 0, len(f.columns))
	for name, fc := range f.columns {
		if fc.present() {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, ErrNoColumns
	}
	sort.Strings(names)
	d, n := len(names), f.rows
	m := &Model{Columns: make([]Column, d), VarianceShare: f.opts.VarianceShare, Rows: uint64(n)}
	x := make([]float64, n*d) // encoded, then standardised, row-major
	for j, name := range names {
		c, vals := f.columns[name].encode(name)
		for r, v := range vals {
			x[r*d+j] = v
		}
		// Standardise as sklearn's StandardScaler: population std, a
		// constant column (std 0) is only centred.
		var sum float64
		for _, v := range vals {
			sum += v
		}
		c.Mean = sum / float64(n)
		var ss float64
		for _, v := range vals {
			ss += (v - c.Mean) * (v - c.Mean)
		}
		c.Scale = math.Sqrt(ss / float64(n))
		if !(c.Scale >= 10*epsilon) { // sklearn's _handle_zeros_in_scale
			c.Scale = 1
		}
		for r := range n {
			x[r*d+j] = (x[r*d+j] - c.Mean) / c.Scale
		}
		m.Columns[j] = c
	}
	if err := m.fitPCA(x, n, d); err != nil {
		return nil, err
	}
	errs := make([]float64, n)
	r := make([]float64, d)
	var sum float64
	for i := range n {
		errs[i] = m.reconstructionError(x[i*d:(i+1)*d], r)
		sum += errs[i]
	}
	m.MeanError = sum / float64(n)
	m.thresholds(errs, f.opts.ChunkRows)
	return m, nil
}

func (c *fitColumn) present() bool {
	if c.kind == schemas.Number {
		for _, v := range c.nums {
			if !math.IsNaN(v) {
				return true
			}
		}
		return false
	}
	for _, id := range c.codes {
		if id >= 0 {
			return true
		}
	}
	return false
}

// encode imputes and encodes the column: numbers with their mean (sklearn's
// SimpleImputer "mean"), categories with the most frequent one (ties: the
// smallest, as SimpleImputer "most_frequent"), then each category as its
// share of the imputed column (CountEncoder(normalize=True)).
func (c *fitColumn) encode(name string) (Column, []float64) {
	col := Column{Name: name, Categorical: c.kind != schemas.Number}
	if !col.Categorical {
		var sum float64
		var k int
		for _, v := range c.nums {
			if !math.IsNaN(v) {
				sum += v
				k++
			}
		}
		col.Impute = sum / float64(k)
		out := make([]float64, len(c.nums))
		for i, v := range c.nums {
			if math.IsNaN(v) {
				v = col.Impute
			}
			out[i] = v
		}
		return col, out
	}
	counts := make([]int, len(c.names))
	for _, id := range c.codes {
		if id >= 0 {
			counts[id]++
		}
	}
	mode := 0
	for id := range counts {
		if counts[id] > counts[mode] || (counts[id] == counts[mode] && c.names[id] < c.names[mode]) {
			mode = id
		}
	}
	for _, id := range c.codes {
		if id < 0 {
			counts[mode]++
		}
	}
	total := float64(len(c.codes))
	col.Freq = make(map[string]float64, len(c.names))
	for id, name := range c.names {
		col.Freq[name] = float64(counts[id]) / total
	}
	col.Impute = col.Freq[c.names[mode]]
	out := make([]float64, len(c.codes))
	for i, id := range c.codes {
		if id < 0 {
			id = int32(mode)
		}
		out[i] = float64(counts[id]) / total
	}
	return col, out
}

// fitPCA fits the components on x (n rows of d standardised values) from
// the eigenvectors of the covariance matrix (sklearn's covariance_eigh
// solver; the full SVD gives the same subspace).
func (m *Model) fitPCA(x []float64, n, d int) error {
	m.Center = make([]float64, d)
	for i := range n {
		for j := range d {
			m.Center[j] += x[i*d+j]
		}
	}
	for j := range m.Center {
		m.Center[j] /= float64(n)
	}
	cov := mat.NewSymDense(d, nil)
	row := make([]float64, d)
	for i := range n {
		for j := range d {
			row[j] = x[i*d+j] - m.Center[j]
		}
		for a := range d {
			ra := row[a]
			for b := a; b < d; b++ {
				cov.SetSym(a, b, cov.At(a, b)+ra*row[b])
			}
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		return errors.New("multivariate fit: eigendecomposition of the covariance did not converge")
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	order := make([]int, d)
	var total float64
	for j := range order {
		order[j] = d - 1 - j
		vals[j] = max(vals[j], 0)
		total += vals[j]
	}
	if !(total > 0) {
		// Every column is constant: nothing to reconstruct, error 0.
		m.Explained = 1
		return nil
	}
	// sklearn: n_components = searchsorted(cumsum(ratio), share, "right") + 1,
	// the fewest components whose cumulative ratio exceeds share.
	var cum float64
	for _, j := range order {
		p := make([]float64, d)
		for a := range d {
			p[a] = vecs.At(a, j)
		}
		m.Components = append(m.Components, p)
		cum += vals[j] / total
		if cum > m.VarianceShare || len(m.Components) == d {
			break
		}
	}
	m.Explained = min(cum, 1)
	return nil
}

// thresholds sets the chunk statistics and thresholds from the rows'
// errors.
func (m *Model) thresholds(errs []float64, chunkRows int) {
	n := len(errs)
	if chunkRows == 0 {
		chunkRows = n / DefaultChunks
	}
	m.ChunkRows = chunkRows
	m.Lower, m.Upper, m.ChunkMean, m.ChunkStd = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	if chunkRows < 1 {
		return
	}
	var means []float64
	for lo := 0; lo+chunkRows <= n; lo += chunkRows {
		var s float64
		for _, e := range errs[lo : lo+chunkRows] {
			s += e
		}
		means = append(means, s/float64(chunkRows))
	}
	m.Chunks = len(means)
	if len(means) < 2 {
		return
	}
	var s float64
	for _, v := range means {
		s += v
	}
	m.ChunkMean = s / float64(len(means))
	var ss float64
	for _, v := range means {
		ss += (v - m.ChunkMean) * (v - m.ChunkMean)
	}
	m.ChunkStd = math.Sqrt(ss / float64(len(means)))
	m.Upper = m.ChunkMean + ThresholdStd*m.ChunkStd
	if lo := m.ChunkMean - ThresholdStd*m.ChunkStd; lo > 0 { // NannyML: a lower threshold <= 0 is none
		m.Lower = lo
	}
}

// epsilon is float64's machine epsilon (numpy's finfo.eps).
const epsilon = 0x1p-52

// ProfileFitter is a Fitter as reference.BuilderOptions.Multivariate: its
// Finish returns the encoded model, nil when the reference has no feature
// with a value.
type ProfileFitter struct{ *Fitter }

var _ reference.MultivariateFitter = ProfileFitter{}

// NewProfileFitter returns a ProfileFitter.
func NewProfileFitter(opts FitOptions) (ProfileFitter, error) {
	f, err := NewFitter(opts)
	return ProfileFitter{f}, err
}

// Finish fits and encodes the model.
func (f ProfileFitter) Finish() ([]byte, error) {
	if f.Rows() < 2 {
		return nil, nil // nothing to fit a PCA on
	}
	m, err := f.Fitter.Finish()
	if errors.Is(err, ErrNoColumns) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m.MarshalBinary()
}
