package stats

import (
	"bytes"
	"math"
	"testing"
)

// TestCoarseHistogramRank: Rank brackets the true rank of every point by
// the count of the point's bucket, and merges and the encoding keep counts.
func TestCoarseHistogramRank(t *testing.T) {
	vs := valueData("normal", 20_000)
	vs = append(vs, 0, 0, -0.0, 1e300, -1e-300, math.NaN(), math.Inf(1))
	var whole, a, b CoarseHistogram
	for i, v := range vs {
		whole.Add(v)
		if i%3 == 0 {
			a.Add(v)
		} else {
			b.Add(v)
		}
	}
	a.Merge(&b)
	if whole.Count() != uint64(len(vs)-2) || a.Count() != whole.Count() {
		t.Fatalf("counts %d, %d; want %d", whole.Count(), a.Count(), len(vs)-2)
	}
	ew, _ := whole.AppendBinary(nil)
	em, _ := a.AppendBinary(nil)
	if !bytes.Equal(ew, em) {
		t.Fatal("merge differs from adding all")
	}
	var dec CoarseHistogram
	if err := dec.UnmarshalBinary(ew); err != nil || dec.Count() != whole.Count() {
		t.Fatalf("decode: %v, count %d", err, dec.Count())
	}
	for _, x := range []float64{-3, -1, -0.5, 0, 1e-310, 0.25, 0.3, 1, 2.5, 1e300} {
		var below, atMost uint64
		for _, v := range vs {
			if v-v != 0 {
				continue
			}
			if v < x {
				below++
			}
			if v <= x {
				atMost++
			}
		}
		for _, strict := range []bool{true, false} {
			lo, hi := dec.Rank(x, strict)
			want := atMost
			if strict {
				want = below
			}
			if lo > want || want > hi {
				t.Errorf("Rank(%v, strict %v) = [%d, %d], true %d", x, strict, lo, hi, want)
			}
			if blo, bhi := BucketRange(CoarseBucket(x)); !(blo <= x && x <= bhi) || (math.Abs(x) >= 0x1p-1022 && bhi-blo > math.Abs(x)/16*1.0001) {
				t.Errorf("bucket of %v spans [%v, %v]", x, blo, bhi)
			}
		}
	}
	for _, bad := range [][]byte{{1}, {2, 5, 1, 0, 1}, {1, 1, 0}, {1, 1, 1, 9}} {
		if dec.UnmarshalBinary(bad) == nil {
			t.Errorf("decoded %x", bad)
		}
	}
}

func FuzzCoarseHistogramUnmarshal(f *testing.F) {
	var h CoarseHistogram
	for _, v := range []float64{1, 2, 2, -5, 0, 1e9} {
		h.Add(v)
	}
	enc, _ := h.AppendBinary(nil)
	f.Add(enc)
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var h CoarseHistogram
		if err := h.UnmarshalBinary(data); err != nil {
			return
		}
		again, _ := h.AppendBinary(nil)
		var g CoarseHistogram
		if err := g.UnmarshalBinary(again); err != nil || g.Count() != h.Count() {
			t.Fatalf("re-encoding of %x does not decode: %v", data, err)
		}
		if third, _ := g.AppendBinary(nil); !bytes.Equal(third, again) {
			t.Fatal("encoding not stable")
		}
	})
}
