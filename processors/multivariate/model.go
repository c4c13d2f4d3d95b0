package multivariate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/vigil-ml/vigil/internal/binenc"
	"github.com/vigil-ml/vigil/processors/stats"
)

// Method is the method name of the reconstruction error in results.
const Method = "pca_reconstruction_error"

// Feature is the feature name of the reconstruction error's results.
const Feature = "__multivariate"

// errorFeaturePrefix starts ErrorFeature's names.
const errorFeaturePrefix = stats.DerivedFeaturePrefix + "reconstruction_error."

// ErrorFeature is the derived feature of a window state holding the
// reconstruction errors computed with reference refID.
func ErrorFeature(refID uint64) string {
	return errorFeaturePrefix + strconv.FormatUint(refID, 10)
}

// Column is one feature column of a Model: how a value becomes a
// standardised number.
type Column struct {
	Name string
	// Categorical: a string or bool feature, frequency-encoded (bools as
	// "false" and "true"). Otherwise numeric.
	Categorical bool
	// Impute is the encoded value of a missing one: the reference mean of a
	// numeric column, the frequency of the most frequent category of a
	// categorical one.
	Impute float64
	// Freq is the share of each category in the imputed reference; a
	// category not in it encodes as 0.
	Freq map[string]float64
	// Mean and Scale standardise the encoded value: (x - Mean) / Scale.
	// Scale is the population standard deviation, 1 for a constant column.
	Mean, Scale float64
}

// Model is a fitted reconstruction: columns, principal components and the
// thresholds from the reference's chunks. Immutable once fitted or decoded.
type Model struct {
	Columns []Column // sorted by name
	// Components are the kept principal components, each of len(Columns)
	// numbers, orthonormal.
	Components [][]float64
	// Center is the mean of the standardised reference (0 up to rounding),
	// which the PCA subtracts before projecting.
	Center []float64
	// VarianceShare is the share of variance asked for; Explained the share
	// the kept components explain.
	VarianceShare, Explained float64

	// Rows is the number of reference rows fitted; MeanError their mean
	// reconstruction error.
	Rows      uint64
	MeanError float64
	// Chunks is the number of reference chunks scored, ChunkRows their
	// size; ChunkMean and ChunkStd the mean and population standard
	// deviation of their mean errors.
	Chunks, ChunkRows   int
	ChunkMean, ChunkStd float64
	// Lower and Upper are the thresholds ChunkMean ∓ 3·ChunkStd; NaN when
	// there is none (fewer than 2 chunks; Lower below 0).
	Lower, Upper float64
}

// ThresholdStd is the number of standard deviations of the chunk means
// the thresholds lie from their mean (NannyML's StandardDeviationThreshold).
const ThresholdStd = 3

// Drifted reports whether a mean error is outside the thresholds (NannyML:
// not lower < v < upper, a missing threshold never fires).
func (m *Model) Drifted(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	return (!math.IsNaN(m.Lower) && v <= m.Lower) || (!math.IsNaN(m.Upper) && v >= m.Upper)
}

// column returns the index of the named column, or -1.
func (m *Model) column(name string) int {
	i, ok := slices.BinarySearchFunc(m.Columns, name, func(c Column, n string) int { return strings.Compare(c.Name, n) })
	if !ok {
		return -1
	}
	return i
}

// reconstructionError returns the reconstruction error of a standardised
// vector z: the norm of c - PᵀPc for c = z - Center (the components are
// orthonormal, so this is the distance between z and sklearn's
// inverse_transform(transform(z))). r is scratch of len(z); z is kept.
func (m *Model) reconstructionError(z, r []float64) float64 {
	for j := range z {
		r[j] = z[j] - m.Center[j]
	}
	for _, p := range m.Components {
		var s float64
		for j, v := range p {
			s += v * (z[j] - m.Center[j])
		}
		for j, v := range p {
			r[j] -= s * v
		}
	}
	var ss float64
	for _, v := range r {
		ss += v * v
	}
	return math.Sqrt(ss)
}

// The binary form of a Model (reference.Profile.Multivariate): integers are
// uvarints, floats 8 bytes little endian, strings a uvarint length and
// bytes.
//
//	4 bytes  "VMVR"
//	byte     version (1)
//	uvarint  number of columns d, then per column, sorted by name:
//	  string name, byte categorical (0/1), float impute, mean, scale
//	  categorical: uvarint number of categories, then per category, sorted:
//	               string value, float share
//	uvarint  number of components k (k <= d), then k·d floats
//	d floats center
//	float    variance share, explained
//	uvarint  rows; float mean error
//	uvarint  chunks, chunk rows; float chunk mean, chunk std, lower, upper
const (
	modelMagic   = "VMVR"
	modelVersion = 1
)

// ErrCorrupt is returned by UnmarshalBinary for data that is not an
// encoded Model.
var ErrCorrupt = errors.New("corrupt multivariate model")

// MarshalBinary encodes m.
func (m *Model) MarshalBinary() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("encode multivariate model: %w", err)
	}
	dst := append([]byte(modelMagic), modelVersion)
	dst = binary.AppendUvarint(dst, uint64(len(m.Columns)))
	for _, c := range m.Columns {
		dst = appendString(dst, c.Name)
		if c.Categorical {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
		dst = appendFloats(dst, c.Impute, c.Mean, c.Scale)
		if c.Categorical {
			keys := make([]string, 0, len(c.Freq))
			for k := range c.Freq {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			dst = binary.AppendUvarint(dst, uint64(len(keys)))
			for _, k := range keys {
				dst = appendString(dst, k)
				dst = appendFloats(dst, c.Freq[k])
			}
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Components)))
	for _, p := range m.Components {
		dst = appendFloats(dst, p...)
	}
	dst = appendFloats(dst, m.Center...)
	dst = appendFloats(dst, m.VarianceShare, m.Explained)
	dst = binary.AppendUvarint(dst, m.Rows)
	dst = appendFloats(dst, m.MeanError)
	dst = binary.AppendUvarint(dst, uint64(m.Chunks))
	dst = binary.AppendUvarint(dst, uint64(m.ChunkRows))
	dst = appendFloats(dst, m.ChunkMean, m.ChunkStd, m.Lower, m.Upper)
	return dst, nil
}

// UnmarshalBinary decodes data from MarshalBinary into m; every error wraps
// ErrCorrupt.
func (m *Model) UnmarshalBinary(data []byte) error {
	if len(data) < len(modelMagic)+1 || string(data[:len(modelMagic)]) != modelMagic {
		return fmt.Errorf("%w: no %q header", ErrCorrupt, modelMagic)
	}
	if v := data[len(modelMagic)]; v != modelVersion {
		return fmt.Errorf("%w: version %d, this build reads version %d (upgrade vigil)", ErrCorrupt, v, modelVersion)
	}
	d := binenc.NewDecoder(data[len(modelMagic)+1:])
	var q Model
	nc := d.Count(26) // name length, flag, three floats
	q.Columns = make([]Column, nc)
	for i := range q.Columns {
		c := &q.Columns[i]
		c.Name = d.String()
		switch d.Byte() {
		case 0:
		case 1:
			c.Categorical = true
		default:
			d.Fail("column %q: bad categorical flag", c.Name)
		}
		c.Impute, c.Mean, c.Scale = d.Float64(), d.Float64(), d.Float64()
		if c.Categorical {
			n := d.Count(9)
			c.Freq = make(map[string]float64, n)
			prev := ""
			for i := range n {
				k := d.String()
				if i > 0 && k <= prev {
					d.Fail("column %q: categories not sorted and unique at %q", c.Name, k)
				}
				prev = k
				c.Freq[k] = d.Float64()
			}
		}
	}
	nk := d.Count(8 * max(nc, 1))
	q.Components = make([][]float64, nk)
	for k := range q.Components {
		q.Components[k] = make([]float64, nc)
		for j := range q.Components[k] {
			q.Components[k][j] = d.Float64()
		}
	}
	if d.Rest() < 8*nc {
		d.Fail("truncated center")
	}
	if d.Err() == nil {
		q.Center = make([]float64, nc)
		for j := range q.Center {
			q.Center[j] = d.Float64()
		}
	}
	q.VarianceShare, q.Explained = d.Float64(), d.Float64()
	q.Rows = d.Uvarint()
	q.MeanError = d.Float64()
	q.Chunks, q.ChunkRows = smallInt(&d, "chunks"), smallInt(&d, "chunk rows")
	q.ChunkMean, q.ChunkStd, q.Lower, q.Upper = d.Float64(), d.Float64(), d.Float64(), d.Float64()
	if d.Err() == nil && d.Rest() != 0 {
		d.Fail("%d trailing bytes", d.Rest())
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := q.check(); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	*m = q
	return nil
}

// check verifies what scoring relies on: sorted unique columns, finite
// encodings, components of the columns' length.
func (m *Model) check() error {
	if len(m.Columns) == 0 {
		return errors.New("no columns")
	}
	for i, c := range m.Columns {
		if i > 0 && m.Columns[i-1].Name >= c.Name {
			return fmt.Errorf("columns not sorted and unique at %q", c.Name)
		}
		if !finite(c.Impute) || !finite(c.Mean) || !finite(c.Scale) || c.Scale <= 0 {
			return fmt.Errorf("column %q: impute, mean and scale must be finite, scale > 0", c.Name)
		}
		for k, v := range c.Freq {
			if !(v >= 0 && v <= 1) {
				return fmt.Errorf("column %q: share %v of %q not in [0,1]", c.Name, v, k)
			}
		}
	}
	if len(m.Components) > len(m.Columns) {
		return fmt.Errorf("%d components of %d columns", len(m.Components), len(m.Columns))
	}
	for _, p := range m.Components {
		if len(p) != len(m.Columns) {
			return errors.New("component of the wrong length")
		}
		for _, v := range p {
			if !finite(v) {
				return errors.New("component not finite")
			}
		}
	}
	if len(m.Center) != len(m.Columns) {
		return errors.New("center of the wrong length")
	}
	for _, v := range m.Center {
		if !finite(v) {
			return errors.New("center not finite")
		}
	}
	return nil
}

// smallInt reads a count that MarshalBinary wrote from an int; one beyond
// int32 is refused rather than clamped, so that decoding never changes it.
func smallInt(d *binenc.Decoder, what string) int {
	v := d.Uvarint()
	if v > math.MaxInt32 {
		d.Fail("%s %d out of range", what, v)
		return 0
	}
	return int(v)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendFloats(dst []byte, vs ...float64) []byte {
	for _, v := range vs {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	}
	return dst
}
