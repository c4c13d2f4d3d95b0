package drift_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

type evidentlyEmbeddings struct {
	Dim     int
	Windows map[string]struct {
		Vectors [][]float64
		// Evidently's DistanceDriftMethod and RatioDriftMethod.
		Euclidean, Cosine, Ratio struct {
			Score   float64
			Drifted bool
		}
		ComponentWassersteinNorm []float64 `json:"component_wasserstein_norm"`
	}
}

// embeddingReference builds the reference of testdata/embedding from its
// JSON Lines file, as `vigil reference build` does.
func embeddingReference(t *testing.T) *reference.Profile {
	t.Helper()
	b, err := reference.NewBuilder(reference.Meta{Model: "ranker", ModelVersion: "1"}, reference.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = reference.ReadFile(context.Background(), "../../testdata/embedding/reference.jsonl",
		reference.ReadOptions{Model: "ranker", ModelVersion: "1", BatchRows: 700}, b.Add)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// embeddingWindow counts vectors as the processor does: events with a
// vector feature through the batch builder, every other batch through
// Arrow IPC (the SDK's wire form), into two partitions' states merged.
func embeddingWindow(t *testing.T, vectors [][]float64) *stats.WindowState {
	return embeddingWindowKept(t, vectors, false)
}

// embeddingWindowKept is embeddingWindow, with the window's values kept in
// coarse bins instead of value sketches when noValues.
func embeddingWindowKept(t *testing.T, vectors [][]float64, noValues bool) *stats.WindowState {
	t.Helper()
	key := stats.Key{Model: "ranker", ModelVersion: "1", WindowStart: 0}
	parts := [2]*stats.WindowState{stats.NewWindowState(key, 60000), stats.NewWindowState(key, 60000)}
	parts[0].NoValues, parts[1].NoValues = noValues, noValues
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	enc := wire.NewArrowEncoder(wire.CompressionZSTD)
	batch := 0
	flush := func() {
		rec := b.NewRecord()
		defer rec.Release()
		if batch%2 == 1 {
			msg, err := enc.Encode(nil, rec)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := wire.DecodeArrow(msg, memory.DefaultAllocator)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Release()
			rec = dec
		}
		parts[batch%2].AddRange(rec, 0, int(rec.NumRows()))
		batch++
	}
	for i, v := range vectors {
		e := schemas.Event{
			ID: fmt.Sprint("e-", i), Model: "ranker", ModelVersion: "1", Time: time.UnixMilli(int64(i)),
			Features:   []schemas.Feature{schemas.Vec("emb", v), schemas.Num("x", float64(i))},
			Prediction: schemas.Score(0.5),
		}
		if err := b.Append(&e); err != nil {
			t.Fatal(err)
		}
		if b.Len() == 150 {
			flush()
		}
	}
	if b.Len() > 0 {
		flush()
	}
	parts[0].Merge(parts[1])
	return parts[0]
}

// TestEmbeddingDriftEvidently: the embedding rows of windows built from
// events agree with Evidently 0.7.23's DistanceDriftMethod (euclidean,
// cosine) and RatioDriftMethod on the same vectors
// (testdata/embedding/evidently.json, from gen_evidently.py). The mean
// distances come from exact sums (tolerance 1e-12: numpy and Vigil sum in
// another order, which moves the last bits only); the ratio is a count of
// components, equal on windows that hold every value, within its stated
// bound on the sketched window of 3000 vectors.
func TestEmbeddingDriftEvidently(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/embedding/evidently.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev evidentlyEmbeddings
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ref := embeddingReference(t)
	if got := ref.Feature(stats.VectorComponent("emb", ev.Dim-1)); got == nil || ref.Feature(stats.VectorComponent("emb", ev.Dim)) != nil {
		t.Fatalf("reference components: want %d", ev.Dim)
	}
	const tol = 1e-12
	for _, name := range []string{"unshifted", "shifted", "sketched"} {
		t.Run(name, func(t *testing.T) {
			want := ev.Windows[name]
			st := embeddingWindow(t, want.Vectors)
			w := drift.EvaluateWindow(ref, st)
			if len(w.Embeddings) != 3 {
				t.Fatalf("embedding rows %+v, skipped %+v", w.Embeddings, w.Skipped)
			}
			for _, f := range w.Features {
				if stats.IsVectorPart(f.Feature) {
					t.Errorf("vector part %s evaluated as a feature", f.Feature)
				}
			}
			sketched := len(want.Vectors) > stats.ExactCap
			for _, d := range w.Embeddings {
				if d.Kind != schemas.Vector || d.NCur != uint64(len(want.Vectors)) || d.NRef != 2000 || d.MissingRate != 0 {
					t.Errorf("%s: kind %v n_cur %d n_ref %d missing %v", d.Feature, d.Kind, d.NCur, d.NRef, d.MissingRate)
				}
				var exp struct {
					Score   float64
					Drifted bool
				}
				switch d.Method {
				case drift.MethodEuclidean:
					exp = want.Euclidean
				case drift.MethodCosine:
					exp = want.Cosine
				case drift.MethodRatio:
					exp = want.Ratio
				}
				if d.Feature != drift.EmbeddingRow("emb", d.Method) || d.Threshold != 0.2 {
					t.Errorf("row %s method %s threshold %v", d.Feature, d.Method, d.Threshold)
				}
				bound := tol
				if d.Method == drift.MethodRatio {
					bound = 0
					if sketched {
						bound = d.Bounds.Score
					}
				}
				if diff := math.Abs(d.Score - exp.Score); diff > bound || math.IsNaN(d.Score) {
					t.Errorf("%s = %.17g, Evidently %.17g (diff %.3g, bound %.3g)", d.Feature, d.Score, exp.Score, diff, bound)
				}
				if !sketched || d.Method != drift.MethodRatio {
					if d.Drifted != exp.Drifted {
						t.Errorf("%s drifted = %v, Evidently %v", d.Feature, d.Drifted, exp.Drifted)
					}
				}
				if exact := !sketched || d.Method != drift.MethodRatio; d.Exact != exact {
					t.Errorf("%s exact = %v, want %v", d.Feature, d.Exact, exact)
				}
				t.Logf("%s: %.17g (Evidently %.17g, diff %.2g, bound %.3g) drifted %v", d.Feature, d.Score, exp.Score, math.Abs(d.Score-exp.Score), d.Bounds.Score, d.Drifted)
			}
			// Each component's normed Wasserstein, as Evidently's stattest.
			for j, wn := range want.ComponentWassersteinNorm {
				c := stats.VectorComponent("emb", j)
				d, ok := drift.EvaluateFeature(ref.Feature(c), st.Features[c])
				if !ok {
					t.Fatalf("%s: %s", c, d.Reason)
				}
				b := tol
				if sketched {
					b = d.Bounds.WassersteinNorm
				}
				if diff := math.Abs(d.WassersteinNorm - wn); diff > b {
					t.Errorf("%s wasserstein_norm %.17g, Evidently %.17g (diff %.3g > %.3g)", c, d.WassersteinNorm, wn, diff, b)
				}
			}
		})
	}
}

// TestEmbeddingNotEvaluated: a window of vectors of another length than
// the reference's, and a merge of windows of two lengths, get rows with a
// reason and no score; neither is counted in the dataset share.
func TestEmbeddingNotEvaluated(t *testing.T) {
	ref := embeddingReference(t)
	short := [][]float64{{1, 2, 3}, {4, 5, 6}}
	st := embeddingWindow(t, short)
	w := drift.EvaluateWindow(ref, st)
	if len(w.Embeddings) != 0 {
		t.Fatalf("evaluated %+v", w.Embeddings)
	}
	n := 0
	for _, d := range w.Skipped {
		if d.Kind == schemas.Vector {
			n++
			if d.Reason != "vectors of 3 values in the window, 12 in the reference" || !math.IsNaN(d.Score) {
				t.Errorf("%s: reason %q score %v", d.Feature, d.Reason, d.Score)
			}
		}
	}
	if n != 3 {
		t.Errorf("%d vector rows skipped, want 3", n)
	}
	long := make([][]float64, 2)
	for i := range long {
		long[i] = make([]float64, 12)
	}
	mixed := embeddingWindow(t, long)
	mixed.Merge(st)
	w = drift.EvaluateWindow(ref, mixed)
	if len(w.Embeddings) != 0 || len(w.Skipped) < 3 {
		t.Fatalf("mixed lengths: evaluated %+v skipped %+v", w.Embeddings, w.Skipped)
	}
	for _, d := range w.Skipped {
		if d.Kind == schemas.Vector && d.Reason[:len("vectors of different lengths")] != "vectors of different lengths" {
			t.Errorf("%s: reason %q", d.Feature, d.Reason)
		}
	}
}

// TestEmbeddingWithoutValueSketches: a window kept without value sketches
// still gets Evidently's mean distances; its ratio row is not evaluated
// and says why.
func TestEmbeddingWithoutValueSketches(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/embedding/evidently.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev evidentlyEmbeddings
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	want := ev.Windows["shifted"]
	w := drift.EvaluateWindow(embeddingReference(t), embeddingWindowKept(t, want.Vectors, true))
	if len(w.Embeddings) != 2 {
		t.Fatalf("rows %+v", w.Embeddings)
	}
	for _, d := range w.Embeddings {
		exp := want.Euclidean.Score
		if d.Method == drift.MethodCosine {
			exp = want.Cosine.Score
		}
		if math.Abs(d.Score-exp) > 1e-12 || !d.Exact {
			t.Errorf("%s = %v, Evidently %v (exact %v)", d.Feature, d.Score, exp, d.Exact)
		}
	}
	var ratio *drift.FeatureDrift
	for i := range w.Skipped {
		if w.Skipped[i].Feature == "emb@ratio" {
			ratio = &w.Skipped[i]
		}
	}
	if ratio == nil || ratio.Reason != drift.ReasonNoComponentSummaries || !math.IsNaN(ratio.Score) {
		t.Fatalf("ratio row %+v", ratio)
	}
}

// TestEmbeddingReferenceFromProduction: a reference merged from stored
// window states of the reference's vectors (`reference build
// --from-production`) gives the same embedding rows as the file's.
func TestEmbeddingReferenceFromProduction(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/embedding/evidently.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev evidentlyEmbeddings
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	// The reference file's vectors, as production windows.
	fileRef := embeddingReference(t)
	lines, err := os.ReadFile("../../testdata/embedding/reference.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var vecs [][]float64
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		var row struct{ Emb []float64 }
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Fatal(err)
		}
		vecs = append(vecs, row.Emb)
	}
	first, second := embeddingWindow(t, vecs[:1000]), embeddingWindow(t, vecs[1000:])
	second.Key.WindowStart, second.WindowEnd = 60000, 120000
	prodRef, err := reference.BuildFromWindows(reference.Meta{Model: "ranker", ModelVersion: "1"}, []*stats.WindowState{first, second})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"unshifted", "shifted"} {
		st := embeddingWindow(t, ev.Windows[name].Vectors)
		a, b := drift.EvaluateWindow(fileRef, st), drift.EvaluateWindow(prodRef, st)
		if len(a.Embeddings) != 3 || len(b.Embeddings) != 3 {
			t.Fatalf("%s: rows %d and %d (skipped %+v)", name, len(a.Embeddings), len(b.Embeddings), b.Skipped)
		}
		for i := range a.Embeddings {
			da, db := a.Embeddings[i], b.Embeddings[i]
			if da.Feature != db.Feature || math.Abs(da.Score-db.Score) > 1e-12 || da.Drifted != db.Drifted || db.NRef != 2000 {
				t.Errorf("%s %s: file %v, production %v (n_ref %d)", name, da.Feature, da.Score, db.Score, db.NRef)
			}
		}
	}
}
