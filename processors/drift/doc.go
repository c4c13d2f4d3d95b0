// Package drift computes how far a feature's production data moved from its
// reference: distances between binned distributions, two-sample tests,
// multiple-testing corrections and Evidently's default choice among them.
// It is pure computation: no I/O, no goroutines, no shared state; every
// function is safe for concurrent use and keeps no reference to its inputs.
//
// Numbers match scipy and Evidently on the same data. The tests check every
// function against testdata/drift/vectors.json, written by
// testdata/drift/gen_vectors.py with scipy 1.17.1, statsmodels 0.15.0 and
// Evidently 0.7.23, to 1e-9 absolute or relative; the observed differences
// are below 1e-13 relative (a few ulps; Hellinger's sqrt(1-x) near 0 loses a
// few more digits, still < 3e-15 absolute).
//
// # Inputs
//
// Sample functions (KS2Samp, WassersteinDistance, WassersteinNormed,
// EvidentlyBins, HellingerBins, SturgesEdges) take finite values only: the
// caller drops NaN and ±Inf and counts them (stats.NumericState does), as
// Evidently drops them before its tests. A NaN among the samples gives an
// unspecified result. The functions sort copies; the *Sorted variants take
// samples already sorted, so a reference kept sorted is sorted once.
//
// Distribution functions (PSI, KLDivergence, JensenShannonDistance,
// HellingerDistance, ChiSquare, ChiSquareContingency, ZTest) take counts per
// bin or category, reference and current over the same bins in the same
// order (a length mismatch panics: it is a bug in the caller). Counts are
// turned into proportions inside. A distribution with total 0, or with a
// negative, NaN or +Inf count, gives NaN.
//
// # Distances on binned distributions
//
// With r_i and c_i the reference and current proportions of bin i:
//
//	PSI         sum_i (r_i - c_i) ln(r_i / c_i)                     zero-filled
//	KL          sum_i r_i ln(r_i / c_i)   (KL(ref||cur), nats)      zero-filled, renormalised
//	JS          sqrt((KL(r||m) + KL(c||m)) / 2),  m = (r+c)/2       raw proportions
//	Hellinger   sqrt(1 - sum_i sqrt(r_i c_i))                        raw proportions
//
// Zero filling is Evidently's (get_binned_data): in each distribution
// separately, a zero proportion becomes 0.0001, or min(non-zero)/1e6 when the
// smallest non-zero proportion is itself <= 0.0001; proportions are not
// renormalised for PSI (as Evidently), and are for KL (scipy.stats.entropy
// renormalises). So PSI and KL stay finite when a bin is empty on one side;
// PSI of a bin empty on both sides is 0 unless the two fills differ. KL
// without empty bins equals scipy.stats.entropy(ref, cur).
//
// JS equals scipy.spatial.distance.jensenshannon(ref, cur) with the natural
// logarithm, which is also Evidently's default (its stattest passes
// base=None): range [0, sqrt(ln 2)] ~ [0, 0.833]. Divide by sqrt(ln 2) for
// the base-2 distance in [0, 1]. Hellinger is Evidently's normed distance
// in [0, 1]. Both are finite for any bins; identical distributions give 0,
// disjoint ones the maximum.
//
// Binning numeric samples: EvidentlyBins reproduces Evidently's
// get_binned_data (a Sturges histogram over ref and cur together when ref
// has more than 20 distinct values, else one bin per distinct value);
// HellingerBins reproduces the Sturges histogram over distinct values that
// Evidently's hellinger stattest uses.
//
// # Tests on samples
//
// KS2Samp is scipy.stats.ks_2samp (two-sided, method='auto'): D = max over
// sample points of |F_ref - F_cur|; p-value exact (Hodges' lattice-path
// recursion) when max(n1, n2) <= 10000, else asymptotic: the one-sample
// Kolmogorov distribution K_n with n = round(n1 n2 / (n1 + n2)), computed as
// scipy does (Durbin/MTW matrix, Pomeranz, Pelz-Good, 2*Smirnov by range).
// In exact mode D is rounded to a multiple of 1/lcm(n1, n2) as scipy does.
// KS2SampMethod selects 'exact' or 'asymp' explicitly; all three match scipy
// (p-values to 7e-14 relative in the vectors). Ties are handled as scipy:
// ECDFs count values <= x. Either sample empty gives (NaN, NaN) where scipy
// raises; samples of one value each give (1, 1) in 'auto' and p = NaN in
// 'asymp' (round(0.5) = 0 observations), as scipy.
//
// WassersteinDistance is scipy.stats.wasserstein_distance: the integral of
// |F_ref - F_cur|. WassersteinNormed is Evidently's "wasserstein" stattest:
// W1 / max(std(ref), 0.001), std with ddof=0 (numpy's default). A constant
// reference therefore divides by 0.001. Either sample empty gives NaN.
//
// # Tests on categorical counts
//
// ChiSquare is Evidently's "chisquare" stattest: scipy.stats.chisquare of
// the current counts against expected ref_i * n_cur/n_ref, dof = k-1. A
// category never seen in the reference gives stat +Inf, p-value 0; a single
// category gives (0, 1) where scipy gives p NaN (deliberate: no drift, the
// decision Evidently reaches on NaN too). ChiSquareContingency is
// scipy.stats.chi2_contingency on the 2 x k table [ref; cur] with Yates'
// correction when dof = 1; categories empty in both are dropped (scipy would
// raise on their zero expected frequency). ZTest is Evidently's "z"
// stattest for binary features, p = 2(1 - Phi(|z|)). Chi-square p-values
// use gonum's regularized incomplete gamma (a port of cephes igamc, as
// scipy's chdtrc).
//
// # Choosing a method and correcting for many features
//
// DefaultMethod is Evidently 0.7's default stattest by feature kind,
// reference size and distinct values; each Method carries Evidently's
// default threshold (0.05 for p-values, 0.1 for distances) and direction
// (Method.Drifted: ks p <= t, chisquare and z p < t, distances >= t).
// Bonferroni and BenjaminiHochberg adjust per-feature p-values as
// statsmodels' multipletests 'bonferroni' and 'fdr_bh' (adjusted values and
// reject flags), taking finite p-values in [0, 1]. DriftShare is the share
// of drifted features; Evidently flags the dataset at >= 0.5.
//
// # Error bounds
//
// EvaluateFeature states, for every number, a bound on its distance from
// the number computed from every value (FeatureDrift.Bounds, bounds.go):
// from each side's rank error (a KLL sketch's RankErrorBound, a coarse
// histogram's bucket share, a production reference's RankError) to bin-mass
// boxes, and from those to the range of PSI, KL, JS and Hellinger; KS and
// Wasserstein from the CDF errors directly. docs/DRIFT.md derives them;
// bounds_test.go checks them on 24 pairs of distributions.
//
// # Ports
//
// The functions above are pure computation. Buckets and the Job read and
// write through ports this package declares (job.go, buckets.go), which
// sinks/clickhouse's stores implement: WindowStore (the stored window
// states), Store (those plus WriteDrift, vigil_drift) and ReferenceSource
// (the newest reference profile of each model version).
package drift
