package reference

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// meanScorer scores a chunk by the mean of its numeric values ("mean"), its
// count of string values ("n"), NaN ("nan", ignored) and, in the first
// chunk of amounts only, "once" (one score: too few).
func meanScorer(p *FeatureProfile, chunk *stats.FeatureState) map[string]float64 {
	switch p.Kind {
	case schemas.Number:
		out := map[string]float64{"mean": chunk.Num.Mean(), "nan": math.NaN()}
		if chunk.Num.Min == 1 && p.Name == "amount" {
			out["once"] = 1
		}
		return out
	case schemas.String:
		return map[string]float64{"n": float64(chunk.Cat.Count)}
	}
	return nil
}

func TestChunkScores(t *testing.T) {
	// amount = 1..10 in records of 3 rows; chunks of 4 rows: 1-4, 5-8 and
	// the incomplete 9-10, which is dropped. Means 2.5 and 6.5: mean 4.5,
	// sample std sqrt(2*2^2/1) = 2*sqrt(2).
	p := build(t, records(t, fraudEvents(10), 3), BuilderOptions{ChunkRows: 4, ChunkScorer: meanScorer})
	amount := p.Feature("amount")
	want := map[string]ChunkStats{"mean": {Chunks: 2, Mean: 4.5, Std: 2 * math.Sqrt2}}
	if len(amount.ChunkScores) != 1 || amount.ChunkScores["mean"].Chunks != 2 || amount.ChunkScores["mean"].Mean != 4.5 ||
		math.Abs(amount.ChunkScores["mean"].Std-2*math.Sqrt2) > 1e-15 {
		t.Fatalf("amount chunk scores %+v, want %+v", amount.ChunkScores, want)
	}
	if got := p.Feature("country").ChunkScores; len(got) != 1 || got["n"] != (ChunkStats{Chunks: 2, Mean: 4, Std: 0}) {
		t.Fatalf("country chunk scores %+v", got)
	}
	if got := p.Feature("is_new").ChunkScores; got != nil {
		t.Fatalf("is_new chunk scores %+v, want none", got)
	}

	data, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if data[len(encodingMagic)] != 2 {
		t.Fatalf("version %d, want 2", data[len(encodingMagic)])
	}
	var q Profile
	if err := q.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if again, _ := q.MarshalBinary(); !bytes.Equal(data, again) {
		t.Fatal("re-encoding a decoded profile gives other bytes")
	}
	if got := q.Feature("amount").ChunkScores["mean"]; got != amount.ChunkScores["mean"] {
		t.Fatalf("decoded %+v, want %+v", got, amount.ChunkScores["mean"])
	}
	for n := 0; n < len(data); n++ {
		if err := new(Profile).UnmarshalBinary(data[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}

	// Without chunk scores: version 1, the same bytes as without chunks.
	plain := build(t, records(t, fraudEvents(10), 3), BuilderOptions{})
	plainData, _ := plain.MarshalBinary()
	if plainData[len(encodingMagic)] != 1 {
		t.Fatalf("version %d without chunk scores, want 1", plainData[len(encodingMagic)])
	}
	for name, opts := range map[string]BuilderOptions{
		"one complete chunk": {ChunkRows: 6, ChunkScorer: meanScorer},
		"no scorer":          {ChunkRows: 4},
	} {
		p := build(t, records(t, fraudEvents(10), 3), opts)
		if d, _ := p.MarshalBinary(); !bytes.Equal(d, plainData) {
			t.Errorf("%s: profile differs from one built without chunks", name)
		}
	}

	// Version 2 must carry chunk scores; broken chunk scores do not encode.
	v2 := bytes.Clone(plainData)
	v2[len(encodingMagic)] = 2
	if err := new(Profile).UnmarshalBinary(v2); !errors.Is(err, ErrCorrupt) {
		t.Errorf("version 2 without chunk scores: %v", err)
	}
	for _, cs := range []ChunkStats{{Chunks: 1}, {Chunks: 2, Mean: math.NaN()}, {Chunks: 2, Std: -1}, {Chunks: 2, Std: math.Inf(1)}} {
		bad := build(t, records(t, fraudEvents(10), 3), BuilderOptions{})
		bad.Feature("amount").ChunkScores = map[string]ChunkStats{"psi": cs}
		if _, err := bad.MarshalBinary(); err == nil {
			t.Errorf("encoded chunk scores %+v", cs)
		}
	}
	if _, err := NewBuilder(Meta{Model: "fraud"}, BuilderOptions{ChunkRows: -1}); err == nil {
		t.Error("negative chunk rows accepted")
	}
}
