package stats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// quantileTol is the relative accuracy the sketch promises, plus room for
// the rounding of math.Log at bucket boundaries.
const quantileTol = SketchRelativeAccuracy * (1 + 1e-9)

var testQuantiles = []float64{0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1}

// nearestRank is the exact quantile Sketch.Quantile estimates.
func nearestRank(sorted []float64, q float64) float64 {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(r, 1)-1]
}

func sketchData(name string, n int) []float64 {
	r := rand.New(rand.NewPCG(1, uint64(len(name))))
	vs := make([]float64, n)
	for i := range vs {
		switch name {
		case "lognormal":
			vs[i] = math.Exp(3 + 1.5*r.NormFloat64())
		case "uniform":
			vs[i] = 1000 * r.Float64()
		case "exponential with zeros":
			if i%10 == 0 {
				vs[i] = 0
			} else {
				vs[i] = 50 * r.ExpFloat64()
			}
		case "integers":
			vs[i] = math.Round(math.Exp(4 + r.NormFloat64()))
		case "wide range":
			vs[i] = math.Exp(r.Float64()*44 - 25) // 1e-11 .. 2e8: zeros and ~2000 buckets
		}
	}
	return vs
}

func TestSketchAccuracy(t *testing.T) {
	for _, name := range []string{"lognormal", "uniform", "exponential with zeros", "integers", "wide range"} {
		t.Run(name, func(t *testing.T) {
			vs := sketchData(name, 20_000)
			var whole Sketch
			parts := make([]Sketch, 3)
			for i, v := range vs {
				whole.Add(v)
				parts[i*7%3].Add(v)
			}
			var merged Sketch
			for i := range parts {
				merged.Merge(&parts[i])
			}
			sorted := slices.Sorted(slices.Values(vs))
			for _, s := range []*Sketch{&whole, &merged} {
				if s.Count() != uint64(len(vs)) || s.Min() != sorted[0] || s.Max() != sorted[len(sorted)-1] {
					t.Fatalf("count %d min %v max %v, want %d %v %v", s.Count(), s.Min(), s.Max(), len(vs), sorted[0], sorted[len(sorted)-1])
				}
				for _, q := range testQuantiles {
					want := nearestRank(sorted, q)
					got := s.Quantile(q)
					if want < SketchMinValue { // counted as zero: no relative accuracy
						if got >= SketchMinValue {
							t.Errorf("Quantile(%v) = %v, want below SketchMinValue (%v)", q, got, want)
						}
						continue
					}
					if math.Abs(got-want) > quantileTol*want {
						t.Errorf("Quantile(%v) = %v, want %v ±1%%", q, got, want)
					}
				}
			}
			if name == "integers" { // exact sums: merge must equal the whole exactly
				a, _ := whole.MarshalBinary()
				b, _ := merged.MarshalBinary()
				if !bytes.Equal(a, b) {
					t.Errorf("merged sketch encodes differently from the whole")
				}
			}
		})
	}
}

func TestSketchSmall(t *testing.T) {
	var s Sketch
	for _, v := range []float64{5, 1, 4, 2, 3, nan, pInf, nInf} {
		s.Add(v)
	}
	if s.Count() != 5 || s.Sum() != 15 || s.Min() != 1 || s.Max() != 5 {
		t.Fatalf("count %d sum %v min %v max %v, want 5 15 1 5", s.Count(), s.Sum(), s.Min(), s.Max())
	}
	tests := []struct {
		q, want float64
		exact   bool
	}{
		{0, 1, true}, {0.2, 1, true}, {0.21, 2, false}, {0.5, 3, false}, {0.8, 4, false}, {0.81, 5, true}, {1, 5, true},
	}
	for _, tt := range tests {
		got := s.Quantile(tt.q)
		if tt.exact && got != tt.want || math.Abs(got-tt.want) > quantileTol*tt.want {
			t.Errorf("Quantile(%v) = %v, want %v (exact: %v)", tt.q, got, tt.want, tt.exact)
		}
	}
	for _, q := range []float64{-0.1, 1.1, nan} {
		if got := s.Quantile(q); !math.IsNaN(got) {
			t.Errorf("Quantile(%v) = %v, want NaN", q, got)
		}
	}
}

func TestSketchZerosAndNegatives(t *testing.T) {
	var s Sketch
	for _, v := range []float64{0, -3, 1e-12, 10, 20} {
		s.Add(v)
	}
	// Recorded: 0, 0, 1e-12 as zeros, then 10 and 20.
	if s.Count() != 5 || s.zero != 3 || s.Min() != 0 || s.Max() != 20 {
		t.Fatalf("count %d zero %d min %v max %v", s.Count(), s.zero, s.Min(), s.Max())
	}
	if got := s.Quantile(0.6); got != 0 {
		t.Errorf("Quantile(0.6) = %v, want 0", got)
	}
	if got := s.Quantile(0.8); math.Abs(got-10) > quantileTol*10 {
		t.Errorf("Quantile(0.8) = %v, want 10", got)
	}
}

func TestSketchEmpty(t *testing.T) {
	var s Sketch
	if !math.IsNaN(s.Quantile(0.5)) || !math.IsNaN(s.Min()) || !math.IsNaN(s.Max()) || s.Count() != 0 {
		t.Fatal("empty sketch is not empty")
	}
	b, err := s.MarshalBinary()
	if err != nil || !bytes.Equal(b, []byte{1, 0}) {
		t.Fatalf("MarshalBinary() = %v, %v, want [1 0]", b, err)
	}
	s.Add(3)
	if err := s.UnmarshalBinary(b); err != nil || s.Count() != 0 {
		t.Fatalf("UnmarshalBinary(empty) = %v, count %d", err, s.Count())
	}
	var o Sketch
	o.Merge(&s)
	o.Merge(nil)
	if o.Count() != 0 {
		t.Fatal("merging empty sketches added values")
	}
}

// TestSketchCollapse spans more than SketchMaxBins buckets: the lowest ones
// collapse, high quantiles stay accurate, memory stays bounded.
func TestSketchCollapse(t *testing.T) {
	var s, rev Sketch
	var vs []float64
	for i := range 4000 {
		vs = append(vs, math.Pow(1.03, float64(i))*1e-8) // 1e-8 .. ~1e43
	}
	for i := range vs {
		s.Add(vs[i])
		rev.Add(vs[len(vs)-1-i])
	}
	for _, x := range []*Sketch{&s, &rev} {
		if len(x.bins) > SketchMaxBins || x.Count() != 4000 {
			t.Fatalf("%d bins, count %d", len(x.bins), x.Count())
		}
		// The kept buckets span a ratio of e^41: values from index 2612 on.
		for _, q := range []float64{0.66, 0.9, 0.99, 1} {
			want := nearestRank(vs, q)
			if got := x.Quantile(q); math.Abs(got-want) > quantileTol*want {
				t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
			}
		}
		if x.Quantile(0) != 1e-8 {
			t.Errorf("Quantile(0) = %v, want exact min", x.Quantile(0))
		}
	}
	rev.sum = s.sum // differs by rounding
	a, _ := s.MarshalBinary()
	b, _ := rev.MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Error("collapsed sketch depends on insertion order")
	}
}

func TestSketchBinaryRoundTrip(t *testing.T) {
	for _, name := range []string{"lognormal", "exponential with zeros", "wide range"} {
		var s Sketch
		for _, v := range sketchData(name, 5000) {
			s.Add(v)
		}
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var d Sketch
		if err := d.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: UnmarshalBinary: %v", name, err)
		}
		b2, _ := d.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Errorf("%s: re-encoding differs", name)
		}
		for _, q := range testQuantiles {
			if s.Quantile(q) != d.Quantile(q) {
				t.Errorf("%s: Quantile(%v) %v after round trip, was %v", name, q, d.Quantile(q), s.Quantile(q))
			}
		}
		if d.Sum() != s.Sum() || d.Count() != s.Count() {
			t.Errorf("%s: sum/count changed", name)
		}
		t.Logf("%s: %d values, %d bytes", name, s.Count(), len(b))
	}
}

// TestSketchBinaryFormat pins version 1 so that a change is deliberate.
func TestSketchBinaryFormat(t *testing.T) {
	var s Sketch
	s.Add(0)
	s.Add(1)
	s.Add(1)
	got, _ := s.AppendBinary([]byte{0xff})
	want := []byte{0xff,
		1,                      // version
		3,                      // count
		1,                      // zero count
		0, 0, 0, 0, 0, 0, 0, 0, // min 0
		0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // max 1
		0, 0, 0, 0, 0, 0, 0, 0x40, // sum 2
		1, // one bucket
		0, // index 0 (zigzag)
		2, // holding 2
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendBinary = %v\nwant            %v", got, want)
	}
}

func TestSketchUnmarshalCorrupt(t *testing.T) {
	var s Sketch
	s.Add(0)
	s.Add(1)
	s.Add(1)
	good, _ := s.MarshalBinary()
	edit := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	tests := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"version 2", edit(func(b []byte) []byte { b[0] = 2; return b })},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(slices.Clone(good), 0)},
		{"count too high", edit(func(b []byte) []byte { b[1] = 4; return b })},
		{"zero count too high", edit(func(b []byte) []byte { b[2] = 2; return b })},
		{"NaN min", edit(func(b []byte) []byte { b[9], b[10] = 0xf8, 0x7f; return b })},
		{"min above max", edit(func(b []byte) []byte { b[10] = 0x40; return b })},
		{"too many buckets", append(slices.Clone(good[:27]), 0x81, 0x20)},
		{"bucket index out of range", append(binary.AppendVarint(slices.Clone(good[:28]), 40_000), good[29:]...)},
		{"bucket index below range", append(binary.AppendVarint(slices.Clone(good[:28]), -2_000), good[29:]...)},
		{"bucket index overflows", append(binary.AppendVarint(slices.Clone(good[:28]), math.MaxInt64), good[29:]...)},
		{"overlong varint", append([]byte{1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := s
			err := d.UnmarshalBinary(tt.data)
			if !errors.Is(err, ErrCorruptSketch) {
				t.Fatalf("UnmarshalBinary = %v, want ErrCorruptSketch", err)
			}
			if d.Count() != 3 {
				t.Fatal("failed UnmarshalBinary changed the sketch")
			}
		})
	}
}

func FuzzSketchUnmarshal(f *testing.F) {
	for _, name := range []string{"lognormal", "exponential with zeros"} {
		var s Sketch
		for _, v := range sketchData(name, 50) {
			s.Add(v)
		}
		b, _ := s.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40, 1, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Sketch
		if err := s.UnmarshalBinary(data); err != nil {
			return
		}
		for _, q := range testQuantiles {
			s.Quantile(q)
		}
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var again Sketch
		if err := again.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-encoded sketch does not decode: %v", err)
		}
		b2, _ := again.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Fatal("encoding is not canonical")
		}
		s.Merge(&again)
		s.Add(1)
	})
}

func BenchmarkSketchAdd(b *testing.B) {
	vs := sketchData("lognormal", 1024)
	var s Sketch
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Add(vs[i&1023])
	}
}

func BenchmarkSketchMerge(b *testing.B) {
	var s, o Sketch
	for _, v := range sketchData("lognormal", 1000) {
		o.Add(v)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Merge(&o)
	}
}
