package stats_test

import (
	"math"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

func vectorRecordState(t *testing.T, st *stats.WindowState, vecs ...[]float64) {
	t.Helper()
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	for i, v := range vecs {
		e := schemas.Event{ID: "e", Model: "m", Time: time.UnixMilli(int64(i + 1)), Prediction: schemas.Score(0.5)}
		if v != nil {
			e.Features = []schemas.Feature{schemas.Vec("emb", v)}
		} else {
			e.Features = []schemas.Feature{schemas.Num("x", 1)}
		}
		if err := b.Append(&e); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	st.AddRange(rec, 0, int(rec.NumRows()))
	for f, n := range wire.TypeMismatches(rec.Schema()) {
		st.AddTypeMismatches(f, uint64(n))
	}
}

// TestVectorState: a vector feature becomes its header (norms) and one
// numeric feature per component; a missing vector is missing in all of
// them; a vector of another length than the batch's, or a later batch of
// another length than the window's, counts as type mismatches of the
// header and leaves the components alone.
func TestVectorState(t *testing.T) {
	st := stats.NewWindowState(stats.Key{Model: "m"}, 60000)
	vectorRecordState(t, st, []float64{3, 4}, nil, []float64{0, -2}, []float64{1, 2, 3})
	vectorRecordState(t, st, []float64{1, 1, 1})                   // another length: not counted
	vectorRecordState(t, st, []float64{6, 8}, []float64{1.5, 0.5}) // the window's length
	h := st.Features[stats.VectorHeader("emb")]
	c0, c1 := st.Features[stats.VectorComponent("emb", 0)], st.Features[stats.VectorComponent("emb", 1)]
	if h == nil || c0 == nil || c1 == nil || st.Features[stats.VectorComponent("emb", 2)] != nil {
		t.Fatalf("features %v", st.Features)
	}
	if h.Num.Count != 4 || h.TypeMismatch != 2 || h.Missing() != 3 {
		t.Errorf("header count %d mismatch %d missing %d, want 4 2 3", h.Num.Count, h.TypeMismatch, h.Missing())
	}
	if want := 5 + 2 + 10 + math.Sqrt(2.5); math.Abs(h.Num.Sum-want) > 1e-12 {
		t.Errorf("norm sum %v, want %v", h.Num.Sum, want)
	}
	if c0.Num.Count != 4 || c0.Num.Sum != 10.5 || c0.Missing() != 3 || c1.Num.Sum != 10.5 || c1.Num.Min != -2 {
		t.Errorf("components %+v %+v", c0.Num, c1.Num)
	}
	if !c0.ValuesComplete() || c0.Values.Count() != 4 {
		t.Errorf("component 0 values %d", c0.Values.Count())
	}
	for _, tc := range []struct {
		in   string
		name string
		i    int
		ok   bool
	}{
		{"__embedding.emb", "emb", -1, true},
		{"__embedding.emb[0]", "emb", 0, true},
		{"__embedding.emb[17]", "emb", 17, true},
		{"__embedding.a[b][3]", "a[b]", 3, true},
		{"__embedding.x[03]", "x[03]", -1, true},
		{"__embedding.x[]", "x[]", -1, true},
		{"emb", "", 0, false},
	} {
		name, i, ok := stats.ParseVectorPart(tc.in)
		if name != tc.name || i != tc.i || ok != tc.ok {
			t.Errorf("ParseVectorPart(%q) = %q %d %v, want %q %d %v", tc.in, name, i, ok, tc.name, tc.i, tc.ok)
		}
	}
}

// BenchmarkAddRangeVectors: one 1000-row batch of 384-dimensional vectors
// per op into a window (exact values up to the cap, then KLL sketches).
func BenchmarkAddRangeVectors(b *testing.B) {
	const rows, dim = 1000, 384
	bb := wire.NewBatchBuilder(memory.DefaultAllocator)
	for i := range rows {
		v := make([]float64, dim)
		for j := range v {
			v[j] = math.Sin(float64(i*dim + j))
		}
		e := schemas.Event{ID: "e", Model: "m", Time: time.UnixMilli(1), Features: []schemas.Feature{schemas.Vec("emb", v)}, Prediction: schemas.Score(0.5)}
		if err := bb.Append(&e); err != nil {
			b.Fatal(err)
		}
	}
	rec := bb.NewRecord()
	defer rec.Release()
	st := stats.NewWindowState(stats.Key{Model: "m"}, 60000)
	b.SetBytes(rows * dim * 8)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		st.AddRange(rec, 0, rows)
	}
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "vectors/s")
}
