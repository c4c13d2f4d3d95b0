package performance

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// exactRanking computes ROC AUC (ties 1/2) and average precision by
// definition, from the raw pairs.
func exactRanking(pairs []pair) (auc, ap float64) {
	sorted := slices.Clone(pairs)
	slices.SortFunc(sorted, func(a, b pair) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	var npos, nneg float64
	for _, p := range pairs {
		if p.positive {
			npos++
		} else {
			nneg++
		}
	}
	// Walk groups of equal scores from the top.
	var tps, fps, area float64
	for i := 0; i < len(sorted); {
		j := i
		var pos, neg float64
		for ; j < len(sorted) && sorted[j].score == sorted[i].score; j++ {
			if sorted[j].positive {
				pos++
			} else {
				neg++
			}
		}
		area += neg * (tps + pos/2)
		tps += pos
		fps += neg
		ap += pos / npos * tps / (tps + fps)
		i = j
	}
	return area / npos / nneg, ap
}

// bruteAUC counts ordered positive-negative pairs, O(P*N).
func bruteAUC(pairs []pair) float64 {
	var wins, n float64
	for _, p := range pairs {
		if !p.positive {
			continue
		}
		for _, q := range pairs {
			if q.positive {
				continue
			}
			n++
			switch {
			case p.score > q.score:
				wins++
			case p.score == q.score:
				wins += 0.5
			}
		}
	}
	return wins / n
}

func TestRankingMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	for trial := range 200 {
		n := 2 + rng.IntN(60)
		levels := 1 + rng.IntN(10) // few distinct scores: many ties
		pairs := make([]pair, n)
		for i := range pairs {
			pairs[i] = pair{float64(rng.IntN(levels)) / float64(levels), rng.IntN(3) == 0}
		}
		pairs[0].positive, pairs[1].positive = true, false
		m := binaryState(0.5, pairs...).Metrics().Binary
		auc, ap := exactRanking(pairs)
		if brute := bruteAUC(pairs); !closeTo(auc, brute, 1e-14) || !closeTo(m.ROCAUC, brute, 1e-14) {
			t.Fatalf("trial %d: ROCAUC %v, by groups %v, by pairs %v", trial, m.ROCAUC, auc, brute)
		}
		if !closeTo(m.PRAUC, ap, 1e-14) {
			t.Fatalf("trial %d: PRAUC %v, want %v", trial, m.PRAUC, ap)
		}
	}
}

// continuousPairs returns n pairs with distinct scores in [0, 1), positives
// likelier at high scores.
func continuousPairs(rng *rand.Rand, n int) []pair {
	pairs := make([]pair, n)
	for i := range pairs {
		s := rng.Float64()
		pairs[i] = pair{s, rng.Float64() < s}
	}
	return pairs
}

func TestQuantisedAUCBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 7))
	pairs := continuousPairs(rng, 180_000) // parts of 60000 stay exact
	whole := binaryState(0.5, pairs...)
	m := whole.Metrics().Binary
	if !m.ScoresQuantised {
		t.Fatalf("%d distinct scores did not quantise", len(pairs))
	}
	exact, exactAP := exactRanking(pairs)
	diff := math.Abs(m.ROCAUC - exact)
	t.Logf("AUC %v, exact %v, |diff| %.3g, bound %.3g; AP %v, exact %v", m.ROCAUC, exact, diff, m.AUCErrorBound, m.PRAUC, exactAP)
	if diff > m.AUCErrorBound {
		t.Errorf("|AUC - exact| = %.3g exceeds the bound %.3g", diff, m.AUCErrorBound)
	}
	if !(m.AUCErrorBound > 0 && m.AUCErrorBound < 1e-5) {
		t.Errorf("bound %v not in (0, 1e-5)", m.AUCErrorBound)
	}
	if math.Abs(m.PRAUC-exactAP) > 1e-4 {
		t.Errorf("AP %v far from exact %v", m.PRAUC, exactAP)
	}

	// Three exact parts whose union quantises merge to the same cells.
	parts := []*State{NewState(TaskBinary, 0.5), NewState(TaskBinary, 0.5), NewState(TaskBinary, 0.5)}
	for i, p := range pairs {
		parts[i%3].AddBinary(p.score, p.positive, 0)
	}
	if parts[0].Binary.quantised {
		t.Fatalf("a part of %d scores quantised", len(pairs)/3)
	}
	merged := NewState(TaskBinary, 0.5)
	for _, p := range parts {
		if err := merged.Merge(p); err != nil {
			t.Fatal(err)
		}
	}
	mm := merged.Metrics().Binary
	if mm.ROCAUC != m.ROCAUC || mm.PRAUC != m.PRAUC || mm.AUCErrorBound != m.AUCErrorBound || mm.TP != m.TP {
		t.Errorf("merged parts: AUC %v AP %v bound %v; whole: %v %v %v", mm.ROCAUC, mm.PRAUC, mm.AUCErrorBound, m.ROCAUC, m.PRAUC, m.AUCErrorBound)
	}
	// Merging an exact state into a quantised one quantises its scores.
	small := binaryState(0.5, pair{0.123456789, true}, pair{0.123456788, false})
	if err := merged.Merge(small); err != nil {
		t.Fatal(err)
	}
	if !merged.Binary.quantised || merged.Binary.gridExp != QuantisedGridExp {
		t.Errorf("merge left the state exact or on grid %d", merged.Binary.gridExp)
	}
	if err := small.Merge(merged); err != nil || !small.Binary.quantised {
		t.Errorf("merging a quantised state into an exact one: %v, quantised %v", err, small.Binary.quantised)
	}
}

func TestQuantisedCoarsening(t *testing.T) {
	defer func(l int) { cellLimit = l }(cellLimit)
	cellLimit = 5000
	rng := rand.New(rand.NewPCG(8, 9))
	pairs := make([]pair, 100_000)
	for i := range pairs { // logits: too wide for 5000 cells of 2^-20
		x := rng.NormFloat64() * 4
		pairs[i] = pair{x, rng.Float64() < 1/(1+math.Exp(-x))}
	}
	s := binaryState(0, pairs...)
	b := s.Binary
	if !b.quantised || b.gridExp >= QuantisedGridExp || len(b.cells) > cellLimit {
		t.Fatalf("quantised %v, grid 2^-%d, %d cells", b.quantised, b.gridExp, len(b.cells))
	}
	m := s.Metrics().Binary
	exact, _ := exactRanking(pairs)
	diff := math.Abs(m.ROCAUC - exact)
	t.Logf("grid 2^-%d, %d cells: AUC %v, exact %v, |diff| %.3g, bound %.3g", b.gridExp, len(b.cells), m.ROCAUC, exact, diff, m.AUCErrorBound)
	if diff > m.AUCErrorBound || !(m.AUCErrorBound > 0 && m.AUCErrorBound < 0.01) {
		t.Errorf("|AUC - exact| = %.3g, bound %.3g", diff, m.AUCErrorBound)
	}
	// A coarse state round-trips and merges with a finer one.
	enc, _ := s.AppendBinary(nil)
	var d State
	if err := d.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	fine := binaryState(0, continuousPairs(rng, MaxExactScores+10)...)
	if err := fine.Merge(&d); err != nil {
		t.Fatal(err)
	}
	if fine.Binary.gridExp > b.gridExp || len(fine.Binary.cells) > cellLimit {
		t.Errorf("merged into grid 2^-%d with %d cells", fine.Binary.gridExp, len(fine.Binary.cells))
	}
	if got := fine.Metrics().Labeled; got != uint64(len(pairs)+MaxExactScores+10) {
		t.Errorf("merged %d pairs", got)
	}
}
