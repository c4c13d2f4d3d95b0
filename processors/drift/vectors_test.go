package drift

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
)

// The vectors come from testdata/drift/gen_vectors.py (scipy, statsmodels,
// Evidently); versions are recorded in the file.
const vectorsPath = "../../testdata/drift/vectors.json"

// tol is the agreement demanded of every value: absolute or relative.
const tol = 1e-9

// num decodes a JSON number or one of the strings "NaN", "+Inf", "-Inf".
type num float64

func (n *num) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "NaN":
			*n = num(math.NaN())
		case "+Inf":
			*n = num(math.Inf(1))
		case "-Inf":
			*n = num(math.Inf(-1))
		default:
			return fmt.Errorf("decode number %q", s)
		}
		return nil
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*n = num(f)
	return err
}

func floats(ns []num) []float64 {
	out := make([]float64, len(ns))
	for i, n := range ns {
		out[i] = float64(n)
	}
	return out
}

type statP struct {
	Stat   num `json:"stat"`
	PValue num `json:"pvalue"`
	Dof    int `json:"dof"`
}

type vectors struct {
	Versions map[string]string `json:"versions"`
	Numeric  []struct {
		Name              string `json:"name"`
		Ref, Cur          []num
		KSAuto            statP  `json:"ks_auto"`
		KSAsymp           statP  `json:"ks_asymp"`
		KSExact           *statP `json:"ks_exact"`
		Wasserstein       num    `json:"wasserstein"`
		EvWassersteinNorm num    `json:"ev_wasserstein_norm"`
		EvKSPValue        num    `json:"ev_ks_pvalue"`
		EvBinnedRef       []num  `json:"ev_binned_ref"`
		EvBinnedCur       []num  `json:"ev_binned_cur"`
		EvBinEdges        []num  `json:"ev_bin_edges"`
		EvPSI             num    `json:"ev_psi"`
		EvKL              num    `json:"ev_kl_div"`
		EvJS              num    `json:"ev_jensenshannon"`
		EvHellinger       num    `json:"ev_hellinger"`
		EvHellingerEdges  []num  `json:"ev_hellinger_edges"`
		EvZPValue         *num   `json:"ev_z_pvalue"`
		DefaultMethod     string `json:"default_method"`
		StdRef            num    `json:"std_ref"`
	} `json:"numeric"`
	Categorical []struct {
		Name              string
		Keys              []string
		RefCounts         []num  `json:"ref_counts"`
		CurCounts         []num  `json:"cur_counts"`
		ChiSquare         statP  `json:"chisquare"`
		EvChiSquarePValue num    `json:"ev_chisquare_pvalue"`
		Contingency       statP  `json:"chi2_contingency"`
		EvZPValue         *num   `json:"ev_z_pvalue"`
		EvPSI             num    `json:"ev_psi"`
		EvKL              num    `json:"ev_kl_div"`
		EvJS              num    `json:"ev_jensenshannon"`
		EvHellinger       num    `json:"ev_hellinger"`
		DefaultMethod     string `json:"default_method"`
	} `json:"categorical"`
	Distributions []struct {
		Name               string
		RefCounts          []num `json:"ref_counts"`
		CurCounts          []num `json:"cur_counts"`
		PSI                num   `json:"psi"`
		KLSmoothed         num   `json:"kl_smoothed"`
		KLRaw              num   `json:"kl_raw"`
		JensenShannon      num   `json:"jensenshannon"`
		JensenShannonBase2 num   `json:"jensenshannon_base2"`
		Hellinger          num   `json:"hellinger"`
	} `json:"distributions"`
	Multitest []struct {
		Name       string
		PValues    []num `json:"pvalues"`
		Alpha      float64
		Bonferroni struct {
			Adjusted []num
			Reject   []bool
		}
		FDRBH struct {
			Adjusted []num
			Reject   []bool
		} `json:"fdr_bh"`
	} `json:"multitest"`
	KStwoSF []struct {
		D  float64 `json:"d"`
		N  int     `json:"n"`
		SF num     `json:"sf"`
	} `json:"kstwo_sf"`
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("read test vectors (regenerate with testdata/drift/gen_vectors.py): %v", err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", vectorsPath, err)
	}
	return &v
}

func near(got, want float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	if math.IsInf(want, 0) || math.IsInf(got, 0) {
		return got == want
	}
	d := math.Abs(got - want)
	return d <= tol || d <= tol*math.Abs(want)
}

func check(t *testing.T, what string, got float64, want num) {
	t.Helper()
	if !near(got, float64(want)) {
		t.Errorf("%s = %.17g, want %.17g (diff %.3g)", what, got, float64(want), got-float64(want))
	}
}

func checkSlice(t *testing.T, what string, got []float64, want []num) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s has %d entries, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		check(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

func TestVectorsNumeric(t *testing.T) {
	v := loadVectors(t)
	t.Logf("reference versions: %v", v.Versions)
	for _, c := range v.Numeric {
		t.Run(c.Name, func(t *testing.T) {
			ref, cur := floats(c.Ref), floats(c.Cur)

			d, p := KS2Samp(ref, cur)
			check(t, "KS2Samp stat", d, c.KSAuto.Stat)
			check(t, "KS2Samp pvalue", p, c.KSAuto.PValue)
			check(t, "KS2Samp pvalue vs Evidently ks", p, c.EvKSPValue)
			d, p = KS2SampMethod(ref, cur, KSAsymp)
			check(t, "KS asymp stat", d, c.KSAsymp.Stat)
			check(t, "KS asymp pvalue", p, c.KSAsymp.PValue)
			if c.KSExact != nil {
				d, p = KS2SampMethod(ref, cur, KSExact)
				check(t, "KS exact stat", d, c.KSExact.Stat)
				check(t, "KS exact pvalue", p, c.KSExact.PValue)
			}

			check(t, "WassersteinDistance", WassersteinDistance(ref, cur), c.Wasserstein)
			check(t, "WassersteinNormed", WassersteinNormed(ref, cur), c.EvWassersteinNorm)
			check(t, "std(ref)", stdPopulation(ref), c.StdRef)

			b := EvidentlyBins(ref, cur)
			if c.EvBinEdges != nil {
				checkSlice(t, "EvidentlyBins edges", b.Edges, c.EvBinEdges)
			} else if b.Edges != nil {
				t.Errorf("EvidentlyBins binned by histogram, Evidently by value")
			}
			// Evidently's value bins come in hash order: compare as sums.
			checkProportions(t, b.Ref, c.EvBinnedRef, b.Edges != nil)
			checkProportions(t, b.Cur, c.EvBinnedCur, b.Edges != nil)
			check(t, "PSI", PSI(b.Ref, b.Cur), c.EvPSI)
			check(t, "KLDivergence", KLDivergence(b.Ref, b.Cur), c.EvKL)
			check(t, "JensenShannonDistance", JensenShannonDistance(b.Ref, b.Cur), c.EvJS)

			hb := HellingerBins(ref, cur)
			checkSlice(t, "HellingerBins edges", hb.Edges, c.EvHellingerEdges)
			check(t, "HellingerDistance", HellingerDistance(hb.Ref, hb.Cur), c.EvHellinger)

			if c.EvZPValue != nil {
				zb := EvidentlyBins(ref, cur)
				check(t, "ZTest", ZTest(zb.Ref, zb.Cur), *c.EvZPValue)
			}
			m := DefaultMethod(Numerical, len(ref), countDistinct(append(append([]float64(nil), ref...), cur...)))
			if string(m) != c.DefaultMethod {
				t.Errorf("DefaultMethod = %s, Evidently chose %s", m, c.DefaultMethod)
			}
		})
	}
}

// checkProportions compares counts with Evidently's proportions; value bins
// are in a different order, so only the sorted multiset is compared there.
func checkProportions(t *testing.T, counts []float64, want []num, ordered bool) {
	t.Helper()
	total := 0.0
	for _, c := range counts {
		total += c
	}
	got := make([]float64, len(counts))
	for i, c := range counts {
		got[i] = c / total
	}
	w := floats(want)
	if !ordered {
		sortFloats(got)
		sortFloats(w)
	}
	if len(got) != len(w) {
		t.Errorf("%d bins, Evidently has %d", len(got), len(w))
		return
	}
	for i := range got {
		if !near(got[i], w[i]) {
			t.Errorf("bin proportion %d = %v, Evidently %v", i, got[i], w[i])
		}
	}
}

func sortFloats(xs []float64) {
	s := sortedCopy(xs)
	copy(xs, s)
}

func TestVectorsCategorical(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Categorical {
		t.Run(c.Name, func(t *testing.T) {
			ref, cur := floats(c.RefCounts), floats(c.CurCounts)
			stat, p := ChiSquare(ref, cur)
			check(t, "ChiSquare stat", stat, c.ChiSquare.Stat)
			if math.IsNaN(float64(c.ChiSquare.PValue)) {
				// Deliberate: one category, 0 dof -> scipy NaN, ChiSquare 1.
				if p != 1 {
					t.Errorf("ChiSquare pvalue with one category = %v, want 1", p)
				}
			} else {
				check(t, "ChiSquare pvalue", p, c.ChiSquare.PValue)
				check(t, "ChiSquare pvalue vs Evidently", p, c.EvChiSquarePValue)
			}
			stat, p, dof := ChiSquareContingency(ref, cur)
			check(t, "ChiSquareContingency stat", stat, c.Contingency.Stat)
			check(t, "ChiSquareContingency pvalue", p, c.Contingency.PValue)
			if dof != c.Contingency.Dof {
				t.Errorf("ChiSquareContingency dof = %d, want %d", dof, c.Contingency.Dof)
			}
			if c.EvZPValue != nil {
				check(t, "ZTest", ZTest(ref, cur), *c.EvZPValue)
			}
			check(t, "PSI", PSI(ref, cur), c.EvPSI)
			check(t, "KLDivergence", KLDivergence(ref, cur), c.EvKL)
			check(t, "JensenShannonDistance", JensenShannonDistance(ref, cur), c.EvJS)
			check(t, "HellingerDistance", HellingerDistance(ref, cur), c.EvHellinger)
			nRef := 0
			for _, x := range ref {
				nRef += int(x)
			}
			if m := DefaultMethod(Categorical, nRef, len(c.Keys)); string(m) != c.DefaultMethod {
				t.Errorf("DefaultMethod = %s, Evidently chose %s", m, c.DefaultMethod)
			}
		})
	}
}

func TestVectorsDistributions(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Distributions {
		t.Run(c.Name, func(t *testing.T) {
			ref, cur := floats(c.RefCounts), floats(c.CurCounts)
			check(t, "PSI", PSI(ref, cur), c.PSI)
			check(t, "KLDivergence", KLDivergence(ref, cur), c.KLSmoothed)
			if !math.IsInf(float64(c.KLRaw), 0) && !hasZero(ref) && !hasZero(cur) {
				check(t, "KLDivergence vs raw scipy entropy", KLDivergence(ref, cur), c.KLRaw)
			}
			js := JensenShannonDistance(ref, cur)
			check(t, "JensenShannonDistance", js, c.JensenShannon)
			check(t, "JensenShannonDistance base 2", js/math.Sqrt(math.Ln2), c.JensenShannonBase2)
			check(t, "HellingerDistance", HellingerDistance(ref, cur), c.Hellinger)
		})
	}
}

func hasZero(xs []float64) bool {
	for _, x := range xs {
		if x == 0 {
			return true
		}
	}
	return false
}

func TestVectorsMultitest(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Multitest {
		t.Run(c.Name, func(t *testing.T) {
			p := floats(c.PValues)
			adj, rej := Bonferroni(p, c.Alpha)
			checkSlice(t, "Bonferroni adjusted", adj, c.Bonferroni.Adjusted)
			checkBools(t, "Bonferroni reject", rej, c.Bonferroni.Reject)
			adj, rej = BenjaminiHochberg(p, c.Alpha)
			checkSlice(t, "BenjaminiHochberg adjusted", adj, c.FDRBH.Adjusted)
			checkBools(t, "BenjaminiHochberg reject", rej, c.FDRBH.Reject)
		})
	}
}

func checkBools(t *testing.T, what string, got, want []bool) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestVectorsKolmogorovSF(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.KStwoSF {
		t.Run(fmt.Sprintf("d=%v,n=%d", c.D, c.N), func(t *testing.T) {
			got, want := kstwoSF(c.D, c.N), float64(c.SF)
			// Relative only: these p-values are often far below tol.
			if math.Abs(got-want) > 1e-12*want {
				t.Errorf("kstwo.sf(%v, %d) = %.17g, scipy %.17g", c.D, c.N, got, want)
			}
		})
	}
}
