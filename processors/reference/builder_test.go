package reference

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

var testTime = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// fraudEvents returns n events: amount = 1..n (NaN at i = n+1 is added by
// the caller), country cycles DE, FR, DE, US; is_new is true on every third
// event; score = i/n; age is absent from even events.
func fraudEvents(n int) []schemas.Event {
	countries := []string{"DE", "FR", "DE", "US"}
	evs := make([]schemas.Event, n)
	for i := range evs {
		f := []schemas.Feature{
			schemas.Num("amount", float64(i+1)),
			schemas.Str("country", countries[i%4]),
			schemas.Flag("is_new", i%3 == 0),
		}
		if i%2 == 1 {
			f = append(f, schemas.Num("age", 30))
		}
		evs[i] = schemas.Event{
			ID: fmt.Sprint("e", i), Model: "fraud", ModelVersion: "3", Time: testTime.Add(time.Duration(i) * time.Second),
			Features:   f,
			Prediction: schemas.Prediction{Score: float64(i+1) / float64(n), HasScore: true, Label: "ok"},
		}
	}
	return evs
}

// records builds records of at most per events each with wire.BatchBuilder,
// the production path from events to Arrow.
func records(t testing.TB, evs []schemas.Event, per int) []arrow.Record {
	t.Helper()
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	var out []arrow.Record
	for i := range evs {
		if err := b.Append(&evs[i]); err != nil {
			t.Fatal(err)
		}
		if b.Len() == per {
			out = append(out, b.NewRecord())
		}
	}
	if b.Len() > 0 {
		out = append(out, b.NewRecord())
	}
	t.Cleanup(func() {
		for _, r := range out {
			r.Release()
		}
	})
	return out
}

func build(t testing.TB, recs []arrow.Record, opts BuilderOptions) *Profile {
	t.Helper()
	b, err := NewBuilder(Meta{Model: "fraud", ModelVersion: "3", ID: 7, CreatedAt: testTime, Source: "test"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := b.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	p, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuilder(t *testing.T) {
	evs := fraudEvents(10)
	// A NaN amount and an event without amount.
	evs = append(evs, evs[0], evs[0])
	evs[10].ID, evs[10].Features = "nan", []schemas.Feature{schemas.Num("amount", math.NaN())}
	evs[11].ID, evs[11].Features = "none", nil
	for _, per := range []int{1, 5, 100} {
		t.Run(fmt.Sprint(per, " per record"), func(t *testing.T) {
			p := build(t, records(t, evs, per), BuilderOptions{})
			if p.Rows != 12 || p.Model != "fraud" || p.ID != 7 {
				t.Fatalf("meta = %+v", p.Meta)
			}
			if got, want := p.FeatureNames(), []string{schemas.PredictionLabelFeature, schemas.PredictionScoreFeature, "age", "amount", "country", "is_new"}; !slices.Equal(got, want) {
				t.Fatalf("features = %v, want %v", got, want)
			}
			amount := p.Feature("amount")
			checkNumeric(t, amount, FeatureProfile{
				Kind: schemas.Number, Count: 10, Missing: 1, NaN: 1,
				Mean: 5.5, Std: math.Sqrt(82.5 / 9), Min: 1, Max: 10,
				// np.quantile(range(1, 11), np.arange(11)/10): see testdata/quantiles.json.
				Edges:     []float64{1, 1.9, 2.8, 3.6999999999999997, 4.6, 5.5, 6.3999999999999995, 7.3, 8.2, 9.1, 10},
				Hist:      []uint64{0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
				Quantiles: []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, Exact: true,
			})
			checkNumeric(t, p.Feature("age"), FeatureProfile{
				Kind: schemas.Number, Count: 5, Missing: 7, Mean: 30, Std: 0, Min: 30, Max: 30,
				Edges: []float64{30, 30}, Hist: []uint64{0, 5, 0}, Quantiles: []float64{30, 30, 30, 30, 30}, Exact: true,
			})
			score := p.Feature(schemas.PredictionScoreFeature)
			if score.Count != 12 || score.Min != 0.1 || score.Max != 1 || !score.Exact || len(score.Edges) != 10 {
				t.Errorf("score = %+v", score)
			}
			checkCounts(t, p.Feature("country"), schemas.String, 10, 2, map[string]uint64{"DE": 5, "FR": 3, "US": 2})
			checkCounts(t, p.Feature("is_new"), schemas.Bool, 10, 2, map[string]uint64{"true": 4, "false": 6})
			checkCounts(t, p.Feature(schemas.PredictionLabelFeature), schemas.String, 12, 0, map[string]uint64{"ok": 12})
		})
	}
}

func checkNumeric(t *testing.T, got *FeatureProfile, want FeatureProfile) {
	t.Helper()
	if got == nil {
		t.Fatal("feature missing")
	}
	same := func(a, b float64) bool { return a == b || math.Abs(a-b) < 1e-12 || (a != a && b != b) }
	if got.Kind != want.Kind || got.Count != want.Count || got.Missing != want.Missing || got.NaN != want.NaN || got.Inf != want.Inf ||
		!same(got.Mean, want.Mean) || !same(got.Std, want.Std) || !same(got.Min, want.Min) || !same(got.Max, want.Max) ||
		!slices.Equal(got.Edges, want.Edges) || !slices.Equal(got.Hist, want.Hist) ||
		!slices.Equal(got.Quantiles, want.Quantiles) || got.Exact != want.Exact || got.Counts != nil {
		t.Errorf("feature %s =\n%+v, want\n%+v", got.Name, *got, want)
	}
}

func checkCounts(t *testing.T, f *FeatureProfile, kind schemas.Kind, count, missing uint64, counts map[string]uint64) {
	t.Helper()
	if f == nil {
		t.Fatal("feature missing")
	}
	if f.Kind != kind || f.Count != count || f.Missing != missing || !maps.Equal(f.Counts, counts) || f.Edges != nil || f.Quantiles != nil {
		t.Errorf("feature %s = %+v, want kind %s count %d missing %d counts %v", f.Name, *f, kind, count, missing, counts)
	}
}

func TestBuilderLargeSummary(t *testing.T) {
	n := QuantileSummarySize + 5000
	evs := make([]schemas.Event, n)
	for i := range evs {
		evs[i] = schemas.Event{ID: "e", Model: "fraud", Time: testTime, Prediction: schemas.Score(0.5),
			Features: []schemas.Feature{schemas.Num("x", float64(n-i))}} // n..1
	}
	p := build(t, records(t, evs, 4096), BuilderOptions{Bins: 4})
	x := p.Feature("x")
	if x.Exact || len(x.Quantiles) != QuantileSummarySize || x.Quantiles[QuantileSummarySize-1] != float64(n) {
		t.Fatalf("summary: exact %v, %d quantiles, last %v", x.Exact, len(x.Quantiles), x.Quantiles[len(x.Quantiles)-1])
	}
	// x_(ceil(15000*(j+1)/10000)) for j = 0, 1: x_(2) = 2 and x_(3) = 3.
	if x.Quantiles[0] != 2 || x.Quantiles[1] != 3 {
		t.Errorf("first quantiles %v, want [2 3]", x.Quantiles[:2])
	}
	// h = 14999q: 1 + 3749.75 = 3750.75, 7500.5, 11250.25.
	if want := []float64{1, 3750.75, 7500.5, 11250.25, 15000}; !slices.Equal(x.Edges, want) {
		t.Errorf("edges %v, want %v", x.Edges, want)
	}
	if want := []uint64{0, 3750, 3750, 3750, 3750, 0}; !slices.Equal(x.Hist, want) {
		t.Errorf("hist %v, want %v", x.Hist, want)
	}
}

func TestBuilderLimits(t *testing.T) {
	if _, err := NewBuilder(Meta{Model: "m"}, BuilderOptions{Bins: -1}); err == nil {
		t.Error("negative bins accepted")
	}
	if _, err := NewBuilder(Meta{}, BuilderOptions{}); err == nil {
		t.Error("empty model accepted")
	}
	b, err := NewBuilder(Meta{Model: "fraud"}, BuilderOptions{MaxValues: 15})
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, fraudEvents(10), 10) // 10 amounts + 10 scores + 5 ages
	if err := b.Add(recs[0]); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add over the limit = %v, want ErrTooLarge", err)
	}
	if _, err := b.Finish(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Finish after the limit = %v", err)
	}
}

// TestTypeMismatch: values of another kind than the feature's first kind are
// missing and counted, and never reach the numeric values.
func TestTypeMismatch(t *testing.T) {
	evs := fraudEvents(4)
	evs[2].Features = []schemas.Feature{schemas.Str("amount", "lots")}
	evs[3].Features = []schemas.Feature{schemas.Num("amount", 99)}
	p := build(t, records(t, evs, 1), BuilderOptions{})
	a := p.Feature("amount")
	if a.Kind != schemas.Number || a.Count != 3 || a.TypeMismatch != 1 || a.Missing != 1 || len(a.Quantiles) != 3 {
		t.Fatalf("amount = %+v", *a)
	}
}

func TestBuildFromWindows(t *testing.T) {
	evs := fraudEvents(12)
	recs := records(t, evs, 4) // three records, one window each
	var states []*stats.WindowState
	for i, r := range recs {
		st := stats.NewWindowState(stats.Key{Model: "fraud", ModelVersion: "3", WindowStart: int64(i) * 60_000}, int64(i+1)*60_000)
		st.AddRange(r, 0, int(r.NumRows()))
		states = append(states, st)
	}
	// A window in which "age" never appears: 4 more missing.
	noAge := fraudEvents(4)
	for i := range noAge {
		noAge[i].Features = noAge[i].Features[:3]
	}
	st := stats.NewWindowState(stats.Key{Model: "fraud", ModelVersion: "3", WindowStart: 180_000}, 240_000)
	r := records(t, noAge, 4)[0]
	st.AddRange(r, 0, 4)
	states = append(states, st)

	p, err := BuildFromWindows(Meta{ID: 1}, states)
	if err != nil {
		t.Fatal(err)
	}
	want := build(t, append(recs, r), BuilderOptions{})
	if p.Model != "fraud" || p.ModelVersion != "3" || p.Rows != 16 ||
		p.Source != "production:1970-01-01T00:00:00Z..1970-01-01T00:04:00Z" {
		t.Fatalf("meta = %+v", p.Meta)
	}
	if !slices.Equal(p.FeatureNames(), want.FeatureNames()) {
		t.Fatalf("features %v, want %v", p.FeatureNames(), want.FeatureNames())
	}
	for i := range p.Features {
		got, w := p.Features[i], want.Features[i]
		if got.Kind == schemas.Number {
			// Windows with value sketches give the file Builder's bins too.
			checkNumeric(t, &got, w)
		} else {
			checkCounts(t, &got, w.Kind, w.Count, w.Missing, w.Counts)
		}
	}
	if age := p.Feature("age"); age.Missing != 10 || age.Count != 6 {
		t.Errorf("age = %+v", *age)
	}

	other := stats.NewWindowState(stats.Key{Model: "fraud", ModelVersion: "4"}, 60_000)
	if _, err := BuildFromWindows(Meta{}, append(states, other)); err == nil {
		t.Error("states of two versions merged")
	}
	if _, err := BuildFromWindows(Meta{}, nil); err == nil {
		t.Error("no states accepted")
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	evs := fraudEvents(QuantileSummarySize + 3)
	file := build(t, records(t, evs, 5000), BuilderOptions{})
	file.CreatedAt = testTime.Add(123456 * time.Microsecond)
	empty := &Profile{Meta: Meta{Model: "m", ID: 1, CreatedAt: testTime}}
	nullOnly := &Profile{Meta: Meta{Model: "m"}, Features: []FeatureProfile{{Name: "x", Missing: 3, Mean: math.NaN(), Std: math.NaN(), Min: math.NaN(), Max: math.NaN()}}}
	for name, p := range map[string]*Profile{"file": file, "empty": empty, "null feature": nullOnly} {
		t.Run(name, func(t *testing.T) {
			data, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var q Profile
			if err := q.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			again, err := q.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, again) {
				t.Fatal("re-encoding a decoded profile gives other bytes")
			}
			if !q.CreatedAt.Equal(p.CreatedAt) || q.Model != p.Model || q.ID != p.ID || q.Rows != p.Rows || q.Source != p.Source {
				t.Fatalf("meta %+v, want %+v", q.Meta, p.Meta)
			}
			for i := range p.Features {
				if p.Features[i].Kind == schemas.Number {
					checkNumeric(t, &q.Features[i], p.Features[i])
				} else {
					checkCounts(t, &q.Features[i], p.Features[i].Kind, p.Features[i].Count, p.Features[i].Missing, p.Features[i].Counts)
				}
			}
			// Every truncation is an error, never a panic.
			for n := 0; n < len(data); n += 1 + n/64 {
				if err := new(Profile).UnmarshalBinary(data[:n]); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("truncated to %d bytes: %v", n, err)
				}
			}
		})
	}
	data, _ := file.MarshalBinary()
	t.Logf("profile of %d rows, %d features: %d bytes", file.Rows, len(file.Features), len(data))
}

func TestEncodingRejects(t *testing.T) {
	good := build(t, records(t, fraudEvents(10), 10), BuilderOptions{})
	tests := []struct {
		name   string
		mutate func(p *Profile)
	}{
		{"unsorted features", func(p *Profile) { p.Features[0], p.Features[1] = p.Features[1], p.Features[0] }},
		{"hist does not add up", func(p *Profile) { p.Feature("amount").Hist[1]++ }},
		{"edges decrease", func(p *Profile) { e := p.Feature("amount").Edges; e[1], e[2] = e[2], e[1] }},
		{"unsorted quantiles", func(p *Profile) { q := p.Feature("amount").Quantiles; q[0], q[1] = q[1], q[0] }},
		{"exact but short", func(p *Profile) { f := p.Feature("amount"); f.Quantiles = f.Quantiles[1:] }},
		{"counts do not add up", func(p *Profile) { p.Feature("country").Counts["XX"] = 1 }},
		{"bad kind", func(p *Profile) { p.Feature("country").Kind = 9 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, _ := good.MarshalBinary()
			var p Profile
			if err := p.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			tt.mutate(&p)
			if _, err := p.MarshalBinary(); err == nil {
				t.Fatal("encoded a broken profile")
			}
		})
	}
	if err := new(Profile).UnmarshalBinary([]byte("VREF\x03")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("future version: %v", err)
	}
}

func FuzzUnmarshalProfile(f *testing.F) {
	p := build(f, records(f, fraudEvents(20), 20), BuilderOptions{Bins: 3})
	data, err := p.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("VREF\x01"))
	chunked := build(f, records(f, fraudEvents(20), 7), BuilderOptions{Bins: 3, ChunkRows: 5, ChunkScorer: meanScorer})
	if data, err = chunked.MarshalBinary(); err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	segmented := build(f, records(f, segmentEvents(40, false), 16), BuilderOptions{Bins: 3, Segment: "region"})
	if data, err = segmented.MarshalBinary(); err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Profile
		if err := p.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		again, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded profile does not encode: %v", err)
		}
		var q Profile
		if err := q.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded profile does not decode: %v", err)
		}
		if third, _ := q.MarshalBinary(); !bytes.Equal(again, third) {
			t.Fatal("encoding not stable")
		}
	})
}
