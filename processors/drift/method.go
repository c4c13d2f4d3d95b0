package drift

import "fmt"

// Kind is a feature's type as Evidently's default method choice sees it.
type Kind int

const (
	Numerical   Kind = iota // numbers, booleans as 0/1
	Categorical             // strings or codes without order
)

// Method names a drift method by its Evidently stattest name.
type Method string

const (
	MethodKS            Method = "ks"            // KS2Samp p-value
	MethodChiSquare     Method = "chisquare"     // ChiSquare p-value
	MethodZ             Method = "z"             // ZTest p-value
	MethodJensenShannon Method = "jensenshannon" // JensenShannonDistance
	MethodWasserstein   Method = "wasserstein"   // WassersteinNormed
	MethodPSI           Method = "psi"           // PSI
	MethodKL            Method = "kl_div"        // KLDivergence
	MethodHellinger     Method = "hellinger"     // HellingerDistance
)

// evidentlySmallReference is the reference size up to which Evidently's
// default choice prefers statistical tests over distances.
const evidentlySmallReference = 1000

// DefaultMethod is Evidently 0.7's default stattest choice
// (get_stattest with stattest=None) for a numeric or categorical feature.
// nRef is the number of reference values (after dropping NaN and ±Inf, as
// Evidently does before choosing) and nUnique the number of distinct values
// in reference and current together:
//
//	nRef <= 1000:  numeric:  nUnique > 5 -> ks; 3..5 -> chisquare; <= 2 -> z
//	               categorical: nUnique > 2 -> chisquare; else z
//	nRef > 1000:   numeric:  nUnique > 5 -> wasserstein; else jensenshannon
//	               categorical: jensenshannon
//
// It panics on an unknown kind.
func DefaultMethod(kind Kind, nRef, nUnique int) Method {
	switch kind {
	case Numerical:
		if nRef <= evidentlySmallReference {
			switch {
			case nUnique > 5:
				return MethodKS
			case nUnique > 2:
				return MethodChiSquare
			default:
				return MethodZ
			}
		}
		if nUnique > 5 {
			return MethodWasserstein
		}
		return MethodJensenShannon
	case Categorical:
		if nRef <= evidentlySmallReference {
			if nUnique > 2 {
				return MethodChiSquare
			}
			return MethodZ
		}
		return MethodJensenShannon
	}
	panic(fmt.Sprintf("BUG: drift: unknown feature kind %d", kind))
}

// IsPValue reports whether the method's score is a p-value (small means
// drift) rather than a distance (large means drift).
func (m Method) IsPValue() bool {
	switch m {
	case MethodKS, MethodChiSquare, MethodZ:
		return true
	}
	return false
}

// DefaultThreshold is Evidently's default threshold for the method: 0.05 for
// the p-value tests, 0.1 for the distances.
func (m Method) DefaultThreshold() float64 {
	if m.IsPValue() {
		return 0.05
	}
	if m.IsEmbedding() {
		return EmbeddingThreshold
	}
	return 0.1
}

// Drifted applies the method's threshold in Evidently's direction:
// ks: pvalue <= threshold; chisquare and z: pvalue < threshold; distances:
// score >= threshold. A NaN score is never drift.
func (m Method) Drifted(score, threshold float64) bool {
	switch m {
	case MethodKS:
		return score <= threshold
	case MethodChiSquare, MethodZ:
		return score < threshold
	case MethodEuclidean, MethodCosine, MethodRatio:
		return score > threshold // Evidently's embedding methods
	}
	return score >= threshold
}
