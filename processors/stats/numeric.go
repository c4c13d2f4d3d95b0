package stats

import (
	"math"

	"github.com/apache/arrow/go/v17/arrow/array"
)

// Add records one value. NaN and ±Inf are counted in NaN and Inf only.
func (s *NumericState) Add(v float64) {
	switch {
	case v != v:
		s.NaN++
	case math.IsInf(v, 0):
		s.Inf++
	default:
		s.mergeMoments(1, v, 0, v, v)
	}
}

// AddFloat64s records every value of vs (none is missing).
//
// It takes the fast path when all values are finite: one pass for sum, min
// and max, one pass for the squared deviations from the slice mean, then an
// exact merge into s. The two-pass M2 is more accurate than updating the
// mean value by value.
func (s *NumericState) AddFloat64s(vs []float64) {
	if len(vs) == 0 {
		return
	}
	sum, lo, hi := sumMinMax(vs)
	if sum-sum != 0 { // NaN or ±Inf among the values (or an overflowing sum)
		s.addMasked(vs, nil, 0)
		return
	}
	n := float64(len(vs))
	s.mergeMoments(uint64(len(vs)), sum, sumSquaredDeviations(vs, sum/n), lo, hi)
}

// AddFloat64sValid records the values of vs whose bit is set in valid, an
// Arrow validity bitmap (least significant bit first) where bit offset+i
// belongs to vs[i]; the others are counted as Missing. A nil valid means no
// value is missing.
func (s *NumericState) AddFloat64sValid(vs []float64, valid []byte, offset int) {
	if valid == nil {
		s.AddFloat64s(vs)
		return
	}
	s.addValid(vs, valid, offset)
}

// AddArray records rows [lo, hi) of a; nulls are counted as Missing.
func (s *NumericState) AddArray(a *array.Float64, lo, hi int) {
	vs := a.Float64Values()[lo:hi]
	if nulls := nullsIn(a, lo, hi); nulls == 0 {
		s.AddFloat64s(vs)
	} else if nulls == hi-lo {
		s.Missing += uint64(nulls)
	} else {
		s.addValid(vs, a.NullBitmapBytes(), a.Data().Offset()+lo)
	}
}

// addValid is AddFloat64sValid's path when some values are null. Branches on
// validity bits mispredict, so it compacts the valid values of each chunk
// into a buffer without branching (a null's slot is overwritten by the next
// value) and adds the chunk with the dense kernel; chunk states merge exactly.
func (s *NumericState) addValid(vs []float64, valid []byte, offset int) {
	const chunk = 256
	var buf [chunk]float64
	for start := 0; start < len(vs); start += chunk {
		part := vs[start:min(start+chunk, len(vs))]
		k := 0
		for i, v := range part {
			j := uint(offset + start + i)
			buf[k&(chunk-1)] = v
			k += int(valid[j>>3]>>(j&7)) & 1
		}
		s.Missing += uint64(len(part) - k)
		s.AddFloat64s(buf[:k])
	}
}

// addBools records rows [lo, hi) of a as 0 (false) and 1 (true).
func (s *NumericState) addBools(a *array.Boolean, lo, hi int) {
	var n, ones uint64
	for i := lo; i < hi; i++ {
		if a.IsNull(i) {
			s.Missing++
			continue
		}
		n++
		if a.Value(i) {
			ones++
		}
	}
	if n == 0 {
		return
	}
	// Sum of squared deviations of n0 zeros and n1 ones: n*p*(1-p) with p = n1/n.
	p := float64(ones) / float64(n)
	lo01, hi01 := 0.0, 1.0
	if ones == n {
		lo01 = 1
	}
	if ones == 0 {
		hi01 = 0
	}
	s.mergeMoments(n, float64(ones), float64(n)*p*(1-p), lo01, hi01)
}

// addMasked is the general path: values that are null (valid bit clear, when
// valid is not nil) count as Missing, NaN and ±Inf are counted apart.
func (s *NumericState) addMasked(vs []float64, valid []byte, offset int) {
	var n, missing, nan, inf uint64
	sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for i, v := range vs {
		if valid != nil && valid[uint(offset+i)>>3]&(1<<(uint(offset+i)&7)) == 0 {
			missing++
			continue
		}
		if v-v != 0 {
			if v != v {
				nan++
			} else {
				inf++
			}
			continue
		}
		n++
		sum += v
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	s.Missing += missing
	s.NaN += nan
	s.Inf += inf
	if n == 0 {
		return
	}
	mean := sum / float64(n)
	m2 := 0.0
	for i, v := range vs {
		if valid != nil && valid[uint(offset+i)>>3]&(1<<(uint(offset+i)&7)) == 0 || v-v != 0 {
			continue
		}
		d := v - mean
		m2 += d * d
	}
	s.mergeMoments(n, sum, m2, lo, hi)
}

// sumMinMax returns the sum, min and max of vs (not empty); min and max are
// meaningless when vs holds a NaN. Four independent sums let the CPU overlap
// the additions.
func sumMinMax(vs []float64) (sum, lo, hi float64) {
	lo, hi = vs[0], vs[0]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(vs); i += 4 {
		v := vs[i : i+4 : i+4]
		a, b, c, d := v[0], v[1], v[2], v[3]
		s0 += a
		s1 += b
		s2 += c
		s3 += d
		// Branches, not the builtin min/max: those handle NaN and -0 and
		// cost ~5x more here; the branches are rarely taken.
		if a < lo {
			lo = a
		}
		if a > hi {
			hi = a
		}
		if b < lo {
			lo = b
		}
		if b > hi {
			hi = b
		}
		if c < lo {
			lo = c
		}
		if c > hi {
			hi = c
		}
		if d < lo {
			lo = d
		}
		if d > hi {
			hi = d
		}
	}
	for ; i < len(vs); i++ {
		v := vs[i]
		s0 += v
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return (s0 + s1) + (s2 + s3), lo, hi
}

// sumSquaredDeviations returns the sum of (v-mean)² over vs.
func sumSquaredDeviations(vs []float64, mean float64) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(vs); i += 4 {
		v := vs[i : i+4 : i+4]
		d0, d1, d2, d3 := v[0]-mean, v[1]-mean, v[2]-mean, v[3]-mean
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(vs); i++ {
		d := vs[i] - mean
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// mergeMoments merges n > 0 finite values with the given sum, M2, min and
// max into s (Chan, Golub and LeVeque's pairwise update).
func (s *NumericState) mergeMoments(n uint64, sum, m2, lo, hi float64) {
	if n == 0 {
		return
	}
	if s.Count == 0 {
		s.Count, s.Sum, s.M2, s.Min, s.Max = n, sum, m2, lo, hi
		return
	}
	na, nb := float64(s.Count), float64(n)
	delta := sum/nb - s.Sum/na
	s.M2 += m2 + delta*delta*(na*nb/(na+nb))
	s.Sum += sum
	s.Count += n
	s.Min = min(s.Min, lo)
	s.Max = max(s.Max, hi)
}

// Merge adds the values summarised by o to s.
func (s *NumericState) Merge(o NumericState) {
	s.Missing += o.Missing
	s.NaN += o.NaN
	s.Inf += o.Inf
	s.mergeMoments(o.Count, o.Sum, o.M2, o.Min, o.Max)
}

// Mean returns the mean of the finite values, NaN when there is none.
func (s *NumericState) Mean() float64 {
	if s.Count == 0 {
		return math.NaN()
	}
	return s.Sum / float64(s.Count)
}

// VarianceSample returns the sample variance M2/(n-1), NaN when n < 2.
func (s *NumericState) VarianceSample() float64 {
	if s.Count < 2 {
		return math.NaN()
	}
	return s.M2 / float64(s.Count-1)
}

// VariancePop returns the population variance M2/n, NaN when n = 0.
func (s *NumericState) VariancePop() float64 {
	if s.Count == 0 {
		return math.NaN()
	}
	return s.M2 / float64(s.Count)
}
