package performance

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkAddBinary(b *testing.B) {
	rng := rand.New(rand.NewPCG(10, 11))
	for _, bc := range []struct {
		name  string
		score func() float64
	}{
		// Probabilities rounded to 3 digits: a few hundred exact scores.
		{"rounded", func() float64 { return float64(rng.IntN(1001)) / 1000 }},
		// Continuous scores: quantised after MaxExactScores.
		{"continuous", rng.Float64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const n = 1 << 16
			scores := make([]float64, n)
			labels := make([]bool, n)
			for i := range scores {
				scores[i] = bc.score()
				labels[i] = rng.Float64() < scores[i]
			}
			s := NewState(TaskBinary, DefaultThreshold)
			for i := range 4 * MaxExactScores { // warm up: the state holds its steady number of cells
				s.AddBinary(scores[i%n], labels[i%n], 60)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				j := i & (n - 1)
				s.AddBinary(scores[j], labels[j], 60)
			}
		})
	}
}

func BenchmarkAddMulticlass(b *testing.B) {
	classes := []string{"cat", "dog", "fox", "owl"}
	probs := []float64{0.1, 0.2, 0.3, 0.4}
	s := NewState(TaskMulticlass, DefaultThreshold)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.AddMulticlass(classes[i&3], classes[(i>>2)&3], classes, probs, 60)
	}
}
