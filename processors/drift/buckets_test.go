package drift_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// TestDriftOfAnHourFromSixtyMinutes: sixty 1-minute window states, stored in
// ClickHouse over two partitions, merge into exactly the drift of the hour
// computed from all its events at once.
func TestDriftOfAnHourFromSixtyMinutes(t *testing.T) {
	ctx := context.Background()
	sink, db := testsink.Start(t, "vigil_query")

	rng := rand.New(rand.NewPCG(9, 9))
	event := func(i int, tm time.Time, shift float64) schemas.Event {
		return schemas.Event{ID: strconv.Itoa(i), Model: "m", ModelVersion: "1", Time: tm,
			Features: []schemas.Feature{
				schemas.Num("x", math.Round((rng.NormFloat64()+shift)*1000)/1000),
				schemas.Str("c", []string{"a", "b", "c", "d"}[rng.IntN(4)]),
			},
			Prediction: schemas.Score(0.5)}
	}
	hour := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

	// Reference: 1500 events (> 1000: Evidently picks distances).
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	for i := 0; i < 1500; i++ {
		e := event(i, hour.Add(-time.Hour), 0)
		if err := b.Append(&e); err != nil {
			t.Fatal(err)
		}
	}
	rb, err := reference.NewBuilder(reference.Meta{Model: "m", ModelVersion: "1", ID: 7, CreatedAt: hour}, reference.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := b.NewRecord()
	if err := rb.Add(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	ref, err := rb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.References().WriteReference(ctx, ref); err != nil {
		t.Fatal(err)
	}

	// Sixty minutes of 30 events, shifted by 0.3, each minute split over two
	// partitions; and the whole hour as one state.
	whole := stats.NewWindowState(stats.Key{Model: "m", ModelVersion: "1", WindowStart: hour.UnixMilli()}, hour.Add(time.Hour).UnixMilli())
	parts := [2][]*stats.WindowState{}
	for m := 0; m < 60; m++ {
		start := hour.Add(time.Duration(m) * time.Minute)
		for i := 0; i < 30; i++ {
			e := event(m*30+i, start.Add(time.Duration(i)*time.Second), 0.3)
			if err := b.Append(&e); err != nil {
				t.Fatal(err)
			}
		}
		rec := b.NewRecord()
		whole.AddRange(rec, 0, 30)
		for p, rows := range [2][2]int{{0, 12}, {12, 30}} {
			st := stats.NewWindowState(stats.Key{Model: "m", ModelVersion: "1", WindowStart: start.UnixMilli()}, start.Add(time.Minute).UnixMilli())
			st.AddRange(rec, rows[0], rows[1])
			st.Final, st.LastOffset = true, int64(m)
			parts[p] = append(parts[p], st)
		}
		rec.Release()
	}
	for p := range parts {
		if err := sink.Windows().Checkpoint(ctx, pipeline.Source{Group: "g", Topic: "t", Partition: p}, nil, nil, parts[p], 60, 0, nil); err != nil {
			t.Fatal(err)
		}
	}

	refs, err := sink.References().LatestReferences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buckets, err := drift.Buckets(ctx, sink.Windows(), refs, drift.Options{}, drift.BucketQuery{Model: "m", Version: "1", From: hour, To: hour.Add(time.Hour), Every: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(buckets) != 1 || buckets[0].Events != 1800 || buckets[0].RefID != 7 {
		t.Fatalf("buckets = %+v, want one hour of 1800 events against reference 7", buckets)
	}
	got, want := buckets[0].Drift, drift.EvaluateWindow(ref, whole)
	if len(got.Features) != 3 || len(want.Features) != 3 { // __prediction_score, c, x
		t.Fatalf("features: got %d, want 3 (%+v)", len(got.Features), got.Features)
	}
	for i := range want.Features {
		g, w := got.Features[i], want.Features[i]
		same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
		if g.Approx || g.Method != w.Method || !same(g.Score, w.Score) || g.Drifted != w.Drifted || !same(g.KSStat, w.KSStat) ||
			!same(g.KSPValue, w.KSPValue) || !same(g.Wasserstein, w.Wasserstein) || !same(g.PSI, w.PSI) || !same(g.ChiSquarePValue, w.ChiSquarePValue) {
			t.Errorf("%s: from sixty stored minutes %+v\nfrom the hour at once %+v", w.Feature, g, w)
		}
	}
	if x := got.Features[2]; x.Feature != "x" || x.Method != drift.MethodWasserstein || !x.Drifted {
		t.Errorf("x: %s %v drifted=%v, want wasserstein drift for a 0.3 sd shift", x.Method, x.Score, x.Drifted)
	}

	// Stored, the hour is one row per feature in vigil_drift, read by plain SQL.
	if err := sink.Windows().WriteDrift(ctx, buckets); err != nil {
		t.Fatal(err)
	}
	var (
		method        string
		score         float64
		drifted       uint8
		minutes       int64
		share, shareW float64
	)
	row := sink.Conn().QueryRow(ctx, "SELECT method, score, drifted, toInt64((toUnixTimestamp(window_end) - toUnixTimestamp(window_start)) / 60), dataset_share FROM "+db+
		".vigil_drift FINAL WHERE model = 'm' AND feature = 'x'")
	if err := row.Scan(&method, &score, &drifted, &minutes, &share); err != nil {
		t.Fatal(err)
	}
	x := got.Features[2]
	shareW = got.Share
	if method != string(x.Method) || score != x.Score || drifted != 1 || minutes != 60 || share != shareW {
		t.Errorf("stored row: %s %v %d over %d min, share %v; want %s %v 1 over 60 min, share %v", method, score, drifted, minutes, share, x.Method, x.Score, shareW)
	}

	// With every value held, the row is exact and says how KS was computed.
	var (
		exact, evaluated uint8
		bound            float64
		ksMethod, source string
	)
	if err := sink.Conn().QueryRow(ctx, "SELECT exact, score_bound, ks_method, value_source, evaluated FROM "+db+
		".vigil_drift FINAL WHERE model = 'm' AND feature = 'x'").Scan(&exact, &bound, &ksMethod, &source, &evaluated); err != nil {
		t.Fatal(err)
	}
	if exact != 1 || bound != 0 || ksMethod != "exact" || source != "values" || evaluated != 1 {
		t.Errorf("stored row: exact %d, score bound %v, ks method %q, source %q, evaluated %d; want 1, 0, exact, values, 1", exact, bound, ksMethod, source, evaluated)
	}

	// The job of `vigil process` stores every recent stored window.
	job := drift.NewJob(sink.Windows(), sink.References(), drift.Options{}, time.Since(hour)+time.Hour, zerolog.Nop())
	n, err := job.RunOnce(ctx)
	if err != nil || n != 60 {
		t.Fatalf("drift job: %d windows, %v; want 60", n, err)
	}
	var perMinute uint64
	if err := sink.Conn().QueryRow(ctx, "SELECT count() FROM "+db+".vigil_drift FINAL WHERE window_end = window_start + 60").Scan(&perMinute); err != nil {
		t.Fatal(err)
	}
	if perMinute != 60*3 {
		t.Errorf("per-minute drift rows = %d, want 180 (60 windows x 3 features)", perMinute)
	}
}

// TestDriftWithoutValueSketchesStored: windows kept without value sketches
// (vigil process --value-sketches=false), stored in ClickHouse and merged
// into an hour, still get the histogram distances of their numeric
// features (from the coarse histograms), with bounds, KS and Wasserstein
// marked unavailable; vigil_drift holds the row, and a feature that cannot
// be evaluated as a row with its reason.
func TestDriftWithoutValueSketchesStored(t *testing.T) {
	ctx := context.Background()
	sink, db := testsink.Start(t, "vigil_novalues")
	rng := rand.New(rand.NewPCG(4, 4))
	hour := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	add := func(n int, tm time.Time, shift float64, reference bool) arrow.Record {
		for i := range n {
			fs := []schemas.Feature{schemas.Num("x", rng.NormFloat64()+shift)}
			if reference {
				fs = append(fs, schemas.Str("c", "a"))
			} else {
				fs = append(fs, schemas.Num("c", 1)) // c of another kind: cannot be compared
			}
			e := schemas.Event{ID: strconv.Itoa(i), Model: "m", ModelVersion: "1", Time: tm, Features: fs, Prediction: schemas.Score(0.5)}
			if err := b.Append(&e); err != nil {
				t.Fatal(err)
			}
		}
		return b.NewRecord()
	}
	rb, err := reference.NewBuilder(reference.Meta{Model: "m", ModelVersion: "1", ID: 8, CreatedAt: hour}, reference.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := add(3000, hour.Add(-time.Hour), 0, true)
	if err := rb.Add(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	ref, err := rb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.References().WriteReference(ctx, ref); err != nil {
		t.Fatal(err)
	}
	var states []*stats.WindowState
	for m := range 60 {
		start := hour.Add(time.Duration(m) * time.Minute)
		st := stats.NewWindowState(stats.Key{Model: "m", ModelVersion: "1", WindowStart: start.UnixMilli()}, start.Add(time.Minute).UnixMilli())
		st.NoValues = true
		rec := add(100, start, 1, false) // x shifted by one sd
		st.AddRange(rec, 0, 100)
		rec.Release()
		st.Final, st.LastOffset = true, int64(m)
		states = append(states, st)
	}
	if err := sink.Windows().Checkpoint(ctx, pipeline.Source{Group: "g", Topic: "t", Partition: 0}, nil, nil, states, 60, 0, nil); err != nil {
		t.Fatal(err)
	}
	refs, err := sink.References().LatestReferences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buckets, err := drift.Buckets(ctx, sink.Windows(), refs, drift.Options{}, drift.BucketQuery{Model: "m", Version: "1", From: hour, To: hour.Add(time.Hour), Every: time.Hour})
	if err != nil || len(buckets) != 1 {
		t.Fatalf("buckets %d, %v", len(buckets), err)
	}
	var x *drift.FeatureDrift
	for i, d := range buckets[0].Drift.Features {
		if d.Feature == "x" {
			x = &buckets[0].Drift.Features[i]
		}
	}
	if x == nil || x.Source != "bins" || x.Method != drift.MethodJensenShannon || !x.Drifted || !(x.Bounds.JensenShannon > 0) || !math.IsNaN(x.KSStat) || x.KSMethod != "" {
		t.Fatalf("x from stored coarse histograms: %+v", x)
	}
	if err := sink.Windows().WriteDrift(ctx, buckets); err != nil {
		t.Fatal(err)
	}
	var (
		source, reason string
		evaluated      uint8
		bound          float64
	)
	if err := sink.Conn().QueryRow(ctx, "SELECT value_source, js_bound, evaluated FROM "+db+".vigil_drift FINAL WHERE feature = 'x'").Scan(&source, &bound, &evaluated); err != nil {
		t.Fatal(err)
	}
	if source != "bins" || bound != x.Bounds.JensenShannon || evaluated != 1 {
		t.Errorf("stored x: source %q, js bound %v, evaluated %d", source, bound, evaluated)
	}
	skipped := buckets[0].Drift.Skipped
	if len(skipped) != 1 || skipped[0].Feature != "c" {
		t.Fatalf("skipped %+v, want c", skipped)
	}
	if err := sink.Conn().QueryRow(ctx, "SELECT reason, evaluated FROM "+db+".vigil_drift FINAL WHERE feature = 'c'").Scan(&reason, &evaluated); err != nil {
		t.Fatal(err)
	}
	if reason != "kind number in the window, string in the reference" || evaluated != 0 {
		t.Errorf("stored c: reason %q, evaluated %d", reason, evaluated)
	}
}
