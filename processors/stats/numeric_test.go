package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

var (
	nan  = math.NaN()
	pInf = math.Inf(1)
	nInf = math.Inf(-1)
)

// relClose reports whether a and b agree within rel relative error (or are
// both NaN).
func relClose(a, b, rel float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= rel*max(math.Abs(a), math.Abs(b)) || a == b
}

func TestNumericState(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		nulls  []bool // true = null; nil = none
		want   NumericState
		mean   float64
		varS   float64
		varP   float64
	}{
		{
			name: "empty",
			want: NumericState{},
			mean: nan, varS: nan, varP: nan,
		},
		{
			name:   "one value",
			values: []float64{-2.5},
			want:   NumericState{Count: 1, Sum: -2.5, Min: -2.5, Max: -2.5},
			mean:   -2.5, varS: nan, varP: 0,
		},
		{
			name:   "1..4",
			values: []float64{1, 2, 3, 4},
			want:   NumericState{Count: 4, Sum: 10, M2: 5, Min: 1, Max: 4},
			mean:   2.5, varS: 5.0 / 3, varP: 1.25,
		},
		{
			name:   "NaN and Inf counted apart",
			values: []float64{4, nan, 1, pInf, 3, nInf, 2},
			want:   NumericState{Count: 4, NaN: 1, Inf: 2, Sum: 10, M2: 5, Min: 1, Max: 4},
			mean:   2.5, varS: 5.0 / 3, varP: 1.25,
		},
		{
			name:   "nulls with garbage under them",
			values: []float64{1, 99, 2, nan, 3, 4, -7},
			nulls:  []bool{false, true, false, true, false, false, true},
			want:   NumericState{Count: 4, Missing: 3, Sum: 10, M2: 5, Min: 1, Max: 4},
			mean:   2.5, varS: 5.0 / 3, varP: 1.25,
		},
		{
			name:   "all null",
			values: []float64{1, 2},
			nulls:  []bool{true, true},
			want:   NumericState{Missing: 2},
			mean:   nan, varS: nan, varP: nan,
		},
		{
			name:   "only non-finite",
			values: []float64{nan, pInf},
			want:   NumericState{NaN: 1, Inf: 1},
			mean:   nan, varS: nan, varP: nan,
		},
		{
			name:   "nine values, nulls and NaN (unrolled loop tail)",
			values: []float64{0.5, -1, nan, 2, 8, 1, 1, 1, -0.5},
			nulls:  []bool{false, false, false, true, false, false, false, false, false},
			// finite valid: 0.5 -1 8 1 1 1 -0.5: sum 10, mean 10/7
			want: NumericState{Count: 7, Missing: 1, NaN: 1, Sum: 10, M2: 0.5*0.5 + 1 + 64 + 3 + 0.25 - 100.0/7, Min: -1, Max: 8},
			mean: 10.0 / 7, varS: (0.5*0.5 + 1 + 64 + 3 + 0.25 - 100.0/7) / 6, varP: (0.5*0.5 + 1 + 64 + 3 + 0.25 - 100.0/7) / 7,
		},
	}
	for _, tt := range tests {
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		b := array.NewFloat64Builder(mem)
		b.AppendValues(tt.values, validFromNulls(tt.nulls))
		arr := b.NewFloat64Array()
		b.Release()

		ways := map[string]func(s *NumericState){
			"Add": func(s *NumericState) {
				for i, v := range tt.values {
					if tt.nulls != nil && tt.nulls[i] {
						s.Missing++
						continue
					}
					s.Add(v)
				}
			},
			"AddFloat64sValid": func(s *NumericState) {
				s.AddFloat64sValid(arr.Float64Values(), bitmapOrNil(arr), arr.Data().Offset())
			},
			"AddArray": func(s *NumericState) { s.AddArray(arr, 0, arr.Len()) },
		}
		if tt.nulls == nil {
			ways["AddFloat64s"] = func(s *NumericState) { s.AddFloat64s(tt.values) }
		}
		for way, add := range ways {
			t.Run(tt.name+"/"+way, func(t *testing.T) {
				var s NumericState
				add(&s)
				checkNumeric(t, s, tt.want)
				if got := s.Mean(); !relClose(got, tt.mean, 1e-15) {
					t.Errorf("Mean() = %v, want %v", got, tt.mean)
				}
				if got := s.VarianceSample(); !relClose(got, tt.varS, 1e-12) {
					t.Errorf("VarianceSample() = %v, want %v", got, tt.varS)
				}
				if got := s.VariancePop(); !relClose(got, tt.varP, 1e-12) {
					t.Errorf("VariancePop() = %v, want %v", got, tt.varP)
				}
			})
		}
		arr.Release()
		mem.AssertSize(t, 0)
	}
}

func validFromNulls(nulls []bool) []bool {
	if nulls == nil {
		return nil
	}
	valid := make([]bool, len(nulls))
	for i, n := range nulls {
		valid[i] = !n
	}
	return valid
}

func bitmapOrNil(a *array.Float64) []byte {
	if a.NullN() == 0 {
		return nil
	}
	return a.NullBitmapBytes()
}

// checkNumeric compares exactly, except M2 within 1e-12 relative.
func checkNumeric(t *testing.T, got, want NumericState) {
	t.Helper()
	m2ok := relClose(got.M2, want.M2, 1e-12)
	got.M2, want.M2 = 0, 0
	if got.Count == 0 { // Min and Max are meaningless
		got.Min, got.Max, want.Min, want.Max = 0, 0, 0, 0
	}
	if got != want || !m2ok {
		t.Errorf("state = %+v (M2 ok: %v), want %+v", got, m2ok, want)
	}
}

// TestNumericSplitMerge splits a data set at every point; merging the two
// halves must give the whole.
func TestNumericSplitMerge(t *testing.T) {
	// Multiples of 1/4 with few significant bits: every partial sum is exact.
	vs := make([]float64, 41)
	for i := range vs {
		vs[i] = float64((i*17)%23)*0.25 - 2
	}
	var whole NumericState
	whole.AddFloat64s(vs)
	var byOne NumericState
	for _, v := range vs {
		byOne.Add(v)
	}
	checkNumeric(t, byOne, whole)

	// Two-pass reference.
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	m2 := 0.0
	for _, v := range vs {
		m2 += (v - sum/41) * (v - sum/41)
	}
	if whole.Sum != sum || !relClose(whole.M2, m2, 1e-12) || whole.Min != -2 || whole.Max != 3.5 {
		t.Fatalf("whole = %+v, want sum %v, M2 %v, min -2, max 3.5", whole, sum, m2)
	}

	for k := 0; k <= len(vs); k++ {
		var a, b NumericState
		a.AddFloat64s(vs[:k])
		b.AddFloat64s(vs[k:])
		a.Merge(b)
		if a.Count != whole.Count || a.Sum != whole.Sum || a.Min != whole.Min || a.Max != whole.Max ||
			!relClose(a.M2, whole.M2, 1e-9) {
			t.Errorf("split at %d: merged %+v, want %+v", k, a, whole)
		}
	}
}

func TestNumericMergeCounts(t *testing.T) {
	a := NumericState{Count: 2, Missing: 1, NaN: 2, Inf: 3, Sum: 2, M2: 2, Min: 0, Max: 2}  // {0, 2}
	b := NumericState{Count: 2, Missing: 4, NaN: 5, Inf: 6, Sum: 10, M2: 2, Min: 4, Max: 6} // {4, 6}
	a.Merge(b)
	// {0,2,4,6}: mean 3, M2 9+1+1+9 = 20
	checkNumeric(t, a, NumericState{Count: 4, Missing: 5, NaN: 7, Inf: 9, Sum: 12, M2: 20, Min: 0, Max: 6})
	a.Merge(NumericState{Missing: 1}) // nothing but a missing value
	checkNumeric(t, a, NumericState{Count: 4, Missing: 6, NaN: 7, Inf: 9, Sum: 12, M2: 20, Min: 0, Max: 6})
}

func BenchmarkNumericMerge(b *testing.B) {
	parts := make([]NumericState, 64)
	for i := range parts {
		for j := range 10 {
			parts[i].Add(float64(i*10 + j))
		}
	}
	b.ReportAllocs()
	var s NumericState
	for i := 0; b.Loop(); i++ {
		s.Merge(parts[i&63])
	}
}

func BenchmarkNumericAddFloat64s(b *testing.B) {
	vs := make([]float64, 1000)
	for i := range vs {
		vs[i] = float64(i%97) * 1.5
	}
	b.ReportAllocs()
	b.SetBytes(8 * int64(len(vs)))
	var s NumericState
	for b.Loop() {
		s.AddFloat64s(vs)
	}
}

// TestNumericArrayMatchesAdd checks the chunked, masked kernels against Add
// value by value on longer arrays, sliced at offsets that are not byte
// aligned, with nulls, NaN and Inf.
func TestNumericArrayMatchesAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	tests := []struct {
		name           string
		n              int
		nullP, nonFinP float64
	}{
		{"dense", 1000, 0, 0},
		{"10% nulls", 1000, 0.1, 0},
		{"90% nulls", 700, 0.9, 0},
		{"nulls and NaN", 1000, 0.2, 0.01},
		{"all null", 600, 1, 0},
	}
	for _, tt := range tests {
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		b := array.NewFloat64Builder(mem)
		for range tt.n {
			switch x := r.Float64(); {
			case x < tt.nullP:
				b.AppendNull()
			case x < tt.nullP+tt.nonFinP/2:
				b.Append(nan)
			case x < tt.nullP+tt.nonFinP:
				b.Append(pInf)
			default:
				b.Append(math.Round(r.NormFloat64()*1000) / 8) // exact sums
			}
		}
		whole := b.NewFloat64Array()
		b.Release()
		for _, off := range []int{0, 3, 13} {
			t.Run(fmt.Sprintf("%s/offset %d", tt.name, off), func(t *testing.T) {
				a := array.NewSlice(whole, int64(off), int64(tt.n-off%5)).(*array.Float64)
				defer a.Release()
				var want NumericState
				for i := range a.Len() {
					if a.IsNull(i) {
						want.Missing++
					} else {
						want.Add(a.Value(i))
					}
				}
				for _, r := range [][2]int{{0, a.Len()}, {5, a.Len() - 1}} {
					var got, ref NumericState
					got.AddArray(a, r[0], r[1])
					for i := r[0]; i < r[1]; i++ {
						if a.IsNull(i) {
							ref.Missing++
						} else {
							ref.Add(a.Value(i))
						}
					}
					checkNumeric(t, got, ref)
				}
			})
		}
		whole.Release()
		mem.AssertSize(t, 0)
	}
}
