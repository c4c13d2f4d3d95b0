package reference

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
)

// TestBinsByHand checks edges and histograms worked out on paper with the
// linear (numpy "linear", Hyndman-Fan type 7) definition h = (n-1)q.
func TestBinsByHand(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		bins   int
		edges  []float64
		hist   []uint64
	}{
		{
			// h = 9q: q=0.1 gives x[0]+0.9*(x[1]-x[0]) = 1.9, q=0.5 gives 5.5.
			name: "1..10 in 2 bins", values: []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, bins: 2,
			edges: []float64{1, 5.5, 10}, hist: []uint64{0, 5, 5, 0},
		},
		{
			// x = [0 2 4 6], h = 3q: q=1/4 gives h=0.75, 0+0.75*2 = 1.5;
			// q=1/2 gives 3; q=3/4 gives 4.5.
			name: "even spacing", values: []float64{6, 0, 4, 2}, bins: 4,
			edges: []float64{0, 1.5, 3, 4.5, 6}, hist: []uint64{0, 1, 1, 1, 1, 0},
		},
		{
			// The max is in the last, closed, inner bin; the min opens the first.
			name: "ties at the edges", values: []float64{1, 1, 1, 2, 3, 3}, bins: 2,
			edges: []float64{1, 1.5, 3}, hist: []uint64{0, 3, 3, 0},
		},
		{
			name: "constant", values: []float64{7, 7}, bins: 10,
			edges: []float64{7, 7}, hist: []uint64{0, 2, 0},
		},
		{
			name: "one value", values: []float64{-2}, bins: 3,
			edges: []float64{-2, -2}, hist: []uint64{0, 1, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sorted := slices.Sorted(slices.Values(tt.values))
			edges := binEdges(sorted, tt.bins)
			if !slices.Equal(edges, tt.edges) {
				t.Fatalf("edges = %v, want %v", edges, tt.edges)
			}
			if hist := histogram(sorted, edges); !slices.Equal(hist, tt.hist) {
				t.Fatalf("hist = %v, want %v", hist, tt.hist)
			}
		})
	}
}

func TestBinOf(t *testing.T) {
	edges := []float64{0, 1, 2}
	tests := []struct {
		x    float64
		want int
	}{
		{math.Inf(-1), 0}, {-0.5, 0}, {0, 1}, {0.5, 1}, {1, 2}, {1.5, 2}, {2, 2}, {2.0000001, 3}, {math.Inf(1), 3}, {math.NaN(), -1},
	}
	for _, tt := range tests {
		if got := binOf(edges, tt.x); got != tt.want {
			t.Errorf("binOf(%v) = %d, want %d", tt.x, got, tt.want)
		}
	}
	for x, want := range map[float64]int{6.9: 0, 7: 1, 7.1: 2} {
		if got := binOf([]float64{7, 7}, x); got != want {
			t.Errorf("binOf([7 7], %v) = %d, want %d", x, got, want)
		}
	}
	if got := binOf(nil, 1); got != -1 {
		t.Errorf("binOf(nil) = %d", got)
	}
}

// TestNumpyVectors compares with testdata/quantiles.json, written by
// testdata/quantiles.py with numpy.
func TestNumpyVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/quantiles.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors struct {
		Numpy string
		Cases []struct {
			Name        string
			Values      []float64
			Bins        int
			Edges       []float64
			Hist        []uint64
			SummarySize int `json:"summary_size"`
			Summary     []float64
		}
	}
	if err := json.Unmarshal(data, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range vectors.Cases {
		t.Run(c.Name, func(t *testing.T) {
			sorted := slices.Sorted(slices.Values(c.Values))
			edges := binEdges(sorted, c.Bins)
			if !slices.Equal(edges, c.Edges) {
				t.Errorf("edges = %v,\nnumpy %s: %v", edges, vectors.Numpy, c.Edges)
			}
			if hist := histogram(sorted, c.Edges); !slices.Equal(hist, c.Hist) {
				t.Errorf("hist = %v, numpy %v", hist, c.Hist)
			}
			q, exact := quantileSummary(sorted, c.SummarySize)
			if exact || !slices.Equal(q, c.Summary) {
				t.Errorf("summary = %v (exact %v),\nnumpy inverted_cdf %v", q, exact, c.Summary)
			}
		})
	}
}

// TestSummaryCDFBound checks the documented bound of the quantile summary:
// F(x) - 1/M < CDF(x) <= F(x) at every value, F the empirical CDF.
func TestSummaryCDFBound(t *testing.T) {
	const n = 3*QuantileSummarySize + 17
	vs := make([]float64, n)
	x := uint64(12345)
	for i := range vs {
		x = x*6364136223846793005 + 1442695040888963407
		vs[i] = float64(x>>40) / 1000 // many ties
	}
	slices.Sort(vs)
	q, exact := quantileSummary(vs, QuantileSummarySize)
	if exact || len(q) != QuantileSummarySize || q[len(q)-1] != vs[n-1] {
		t.Fatalf("summary of %d values: exact %v, %d quantiles, last %v (max %v)", n, exact, len(q), q[len(q)-1], vs[n-1])
	}
	f := FeatureProfile{Quantiles: q}
	m := float64(QuantileSummarySize)
	for i := 0; i < n; i++ {
		if i+1 < n && vs[i+1] == vs[i] {
			continue
		}
		ecdf := float64(i+1) / n
		got := f.CDF(vs[i])
		if !(got <= ecdf && got > ecdf-1/m) {
			t.Fatalf("CDF(%v) = %v, empirical %v: outside (F-1/M, F]", vs[i], got, ecdf)
		}
		if want := float64(QuantileSummarySize*(i+1)/n) / m; got != want { // floor(M F(x)) / M
			t.Fatalf("CDF(%v) = %v, want floor(M F)/M = %v", vs[i], got, want)
		}
	}
	if got := f.CDF(vs[0] - 1); got != 0 {
		t.Errorf("CDF below the min = %v", got)
	}
}
