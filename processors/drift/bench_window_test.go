package drift_test

// Issue 3, target 1: the drift of a 356k-row window of 100 numeric features
// against a reference of the same size, well under a second on one core.
// The reference build and the window's ingest are timed apart from the
// evaluation: they are paid once per reference and spread over the window's
// events, while EvaluateWindow runs when the window closes.
//
//	go test -run '^$' -bench '356kx100' -benchtime 3x -count 3 -cpu 1 ./processors/drift/

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

const (
	bigRows     = 356_000
	bigFeatures = 100
	// bigShift moves every even feature of the window by half its standard
	// deviation: a normed Wasserstein distance of 0.5, five times
	// Evidently's 0.1 threshold (the method for references of > 1000 rows).
	bigShift = 0.5
	// bigBatchRows is the size of the ranges the window ingests, as the
	// processor sees them (one SDK batch).
	bigBatchRows = 1000
)

// bigShifted reports whether feature j of the window is shifted.
func bigShifted(j int) bool { return j%2 == 0 }

// bigRecord returns a record of bigRows rows and the f.x000..f.x099 float64
// columns (no fixed columns: AddRange and the builder only read the
// feature columns). Feature j is normal with mean j and standard deviation
// 1+j/10, plus shift*std on the shifted features when shift != 0. The
// columns wrap Go slices, so the record is not released.
func bigRecord(seed uint64, shift float64) arrow.Record {
	rng := rand.New(rand.NewPCG(seed, 3))
	fields := make([]arrow.Field, bigFeatures)
	cols := make([]arrow.Array, bigFeatures)
	for j := range bigFeatures {
		fields[j] = arrow.Field{Name: fmt.Sprintf("%sx%03d", schemas.PrefixFeature, j), Type: arrow.PrimitiveTypes.Float64}
		mean, std := float64(j), 1+float64(j)/10
		if shift != 0 && bigShifted(j) {
			mean += shift * std
		}
		vs := make([]float64, bigRows)
		for i := range vs {
			vs[i] = mean + std*rng.NormFloat64()
		}
		data := array.NewData(arrow.PrimitiveTypes.Float64, bigRows,
			[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(vs))}, nil, 0, 0)
		cols[j] = array.NewFloat64Data(data)
		data.Release()
	}
	return array.NewRecord(arrow.NewSchema(fields, nil), cols, bigRows)
}

// bigFixture holds the reference and window records (285 MB each) and,
// built from them, the profile and the window state; one per test binary.
var bigFixture = sync.OnceValue(func() (f struct {
	refRec, curRec arrow.Record
	profile        *reference.Profile
	state          *stats.WindowState
}) {
	f.refRec, f.curRec = bigRecord(1, 0), bigRecord(2, bigShift)
	var err error
	if f.profile, err = buildBigProfile(f.refRec); err != nil {
		panic(err)
	}
	f.state = ingestBig(f.curRec)
	return f
})

func buildBigProfile(rec arrow.Record) (*reference.Profile, error) {
	b, err := reference.NewBuilder(reference.Meta{Model: "big", ModelVersion: "1"}, reference.BuilderOptions{})
	if err != nil {
		return nil, err
	}
	// Records of DefaultBatchRows rows, as the file readers hand them over.
	for lo := int64(0); lo < rec.NumRows(); lo += reference.DefaultBatchRows {
		part := rec.NewSlice(lo, min(lo+reference.DefaultBatchRows, rec.NumRows()))
		err := b.Add(part)
		part.Release()
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

func ingestBig(rec arrow.Record) *stats.WindowState {
	st := stats.NewWindowState(stats.Key{Model: "big", ModelVersion: "1"}, 60_000)
	n := int(rec.NumRows())
	for lo := 0; lo < n; lo += bigBatchRows {
		st.AddRange(rec, lo, min(lo+bigBatchRows, n))
	}
	return st
}

// TestEvaluateWindow356kx100 checks that the benchmark's window flags
// exactly the shifted features (and so that it measures the real work).
func TestEvaluateWindow356kx100(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two 356k x 100 samples (600 MB, a few seconds)")
	}
	f := bigFixture()
	w := drift.EvaluateWindow(f.profile, f.state)
	if len(w.Features) != bigFeatures {
		t.Fatalf("%d features compared, want %d", len(w.Features), bigFeatures)
	}
	for j, d := range w.Features {
		if want := fmt.Sprintf("x%03d", j); d.Feature != want {
			t.Fatalf("feature %d is %q, want %q", j, d.Feature, want)
		}
		if d.Drifted != bigShifted(j) {
			t.Errorf("%s: drifted=%v, want %v (%s %.4g, threshold %g)", d.Feature, d.Drifted, bigShifted(j), d.Method, d.Score, d.Threshold)
		}
		if d.NRef != bigRows || d.NCur != bigRows || !d.Approx {
			t.Errorf("%s: compared %d/%d values (approx %v), want %d each from sketches", d.Feature, d.NRef, d.NCur, d.Approx, bigRows)
		}
	}
	if w.Share != 0.5 {
		t.Errorf("drift share %g, want 0.5", w.Share)
	}
	x0, x1 := w.Features[0], w.Features[1]
	t.Logf("method %s; x000 (shifted) %.4f, x001 %.4f; x001 KS %.4f (p %.3g), window sketch rank error bound %.4f",
		x0.Method, x0.Score, x1.Score, x1.KSStat, x1.KSPValue, f.state.Features["x001"].Values.RankErrorBound())
}

// BenchmarkReferenceBuild356kx100 is building the reference profile from its
// records: moments, then sorting every feature's values for the bins and
// the quantile summary.
func BenchmarkReferenceBuild356kx100(b *testing.B) {
	rec := bigFixture().refRec
	b.ReportAllocs()
	for b.Loop() {
		if _, err := buildBigProfile(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(bigRows*bigFeatures)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
}

// BenchmarkWindowIngest356kx100 is the window's ingest: AddRange of 1000-row
// ranges into a fresh state (moments and value sketches).
func BenchmarkWindowIngest356kx100(b *testing.B) {
	rec := bigFixture().curRec
	b.ReportAllocs()
	for b.Loop() {
		ingestBig(rec)
	}
	b.ReportMetric(float64(bigRows*bigFeatures)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
}

// BenchmarkEvaluateWindow356kx100 times only drift.EvaluateWindow. Each
// iteration gets a fresh copy of the window state (made with the timer
// stopped), since a query sorts the sketches' intake buffers in place and
// the processor evaluates a window once.
func BenchmarkEvaluateWindow356kx100(b *testing.B) {
	f := bigFixture()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		st := f.state.Clone()
		b.StartTimer()
		drift.EvaluateWindow(f.profile, st)
	}
}
