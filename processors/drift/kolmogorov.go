package drift

import "math"

// This file holds the null distributions behind KS2Samp, ported from scipy
// 1.17 so that p-values agree with scipy.stats.ks_2samp:
//
//   - exact two-sample probabilities (scipy.stats._stats_py
//     _compute_prob_outside_square and _stats_pythran
//     _compute_outer_prob_inside_method, after Hodges 1958);
//   - the one-sample two-sided Kolmogorov distribution K_n, used by the
//     asymptotic method with n = round(n1*n2/(n1+n2)) (scipy.stats._ksstats
//     _kolmogn, after Simard and L'Ecuyer 2011: Durbin's matrix algorithm as
//     done by Marsaglia, Tsang and Wang, Pomeranz's recursion, the Pelz-Good
//     expansion and 2*smirnov);
//   - the one-sided Smirnov survival function (xsf cephes smirnov), summed in
//     float64 with separately kept binary exponents where xsf uses
//     double-double arithmetic; the relative difference stays below about
//     n*2e-16.

// probOutsideSquare is P(D_{n,n} >= h/n) for two samples of size n.
func probOutsideSquare(n, h int) float64 {
	// P = 2 * A0 * (1 - A1*(1 - A2*(1 - ...))), each Ai a ratio of binomials.
	p := 0.0
	for k := n / h; k >= 0; k-- {
		p1 := 1.0
		for j := 0; j < h; j++ {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		p = p1 * (1 - p)
	}
	return 2 * p
}

// probOutsideInside is the proportion of lattice paths from (0,0) to (m,n)
// that leave the band |x/m - y/n| < h/lcm(m,n): P(D_{m,n} >= h/lcm).
func probOutsideInside(m, n, g, h int) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	ceilDiv := func(a, b int) int { // b > 0
		q := a / b
		if a%b != 0 && (a > 0) {
			q++
		}
		return q
	}
	floorDiv := func(a, b int) int { // b > 0
		q := a / b
		if a%b != 0 && (a < 0) {
			q--
		}
		return q
	}
	minj, maxj := 0, min(ceilDiv(h, mg), n+1)
	curlen := maxj - minj
	lenA := min(2*maxj+2, n+1)
	a := make([]float64, lenA)
	for i := range a {
		a[i] = 1
	}
	for i := minj; i < maxj && i < lenA; i++ {
		a[i] = 0
	}
	for i := 1; i <= m; i++ {
		lastminj, lastlen := minj, curlen
		minj = max(floorDiv(ng*i-h, mg)+1, 0)
		minj = min(minj, n)
		maxj = min(ceilDiv(ng*i+h, mg), n+1)
		if maxj <= minj {
			return 1
		}
		val := 0.0
		if minj != 0 {
			val = 1
		}
		for jj := 0; jj < maxj-minj; jj++ {
			j := jj + minj
			val = (a[jj+minj-lastminj]*float64(i) + val*float64(j)) / float64(i+j)
			a[jj] = val
		}
		curlen = maxj - minj
		if lastlen > curlen {
			for k := maxj - minj; k < maxj-minj+(lastlen-curlen) && k < lenA; k++ {
				a[k] = 1
			}
		}
	}
	return a[maxj-minj-1]
}

func clip01(p float64) float64 {
	return math.Max(0, math.Min(1, p)) // NaN stays NaN
}

// kstwoSF is scipy.stats.kstwo.sf(x, n): P(D_n > x) for the two-sided
// one-sample Kolmogorov-Smirnov statistic with n observations.
func kstwoSF(x float64, n int) float64 {
	switch {
	case n < 1 || math.IsNaN(x):
		return math.NaN()
	case x <= 0.5/float64(n):
		return 1
	case x >= 1:
		return 0
	}
	return kolmogornSF(n, x)
}

// kolmogornSF is scipy.stats._ksstats._kolmogn(n, x, cdf=False).
func kolmogornSF(n int, x float64) float64 {
	if x >= 1 {
		return 0
	}
	if x <= 0 {
		return 1
	}
	fn := float64(n)
	t := fn * x
	if t <= 1 { // Ruben-Gambino: 1/2n <= x <= 1/n
		if t <= 0.5 {
			return 1
		}
		var prob float64
		if n <= 140 {
			prob = 1
			for i := 1; i <= n; i++ {
				prob *= float64(i) * (1 / fn) * (2*t - 1)
			}
		} else {
			prob = math.Exp(logNFactorialDivNPowN(fn) + fn*math.Log(2*t-1))
		}
		return clip01(1 - prob)
	}
	if t >= fn-1 { // Ruben-Gambino
		return clip01(2 * math.Pow(1-x, fn))
	}
	if x >= 0.5 { // exact: 2 * smirnov
		return clip01(2 * smirnovSF(n, x))
	}
	nxsquared := t * x
	if n <= 140 {
		if nxsquared <= 0.754693 {
			return clip01(1 - kolmogornDMTW(n, x))
		}
		if nxsquared <= 4 {
			return clip01(1 - kolmogornPomeranz(n, x))
		}
		return clip01(2 * smirnovSF(n, x))
	}
	if nxsquared >= 370 {
		return 0
	}
	if nxsquared >= 2.2 {
		return clip01(2 * smirnovSF(n, x))
	}
	var cdf float64
	if n <= 100000 && fn*math.Pow(x, 1.5) <= 1.4 {
		cdf = kolmogornDMTW(n, x)
	} else {
		cdf = kolmogornPelzGood(n, x)
	}
	return clip01(1 - cdf)
}

var stirlingCoeffs = [...]float64{-2.955065359477124183e-2, 6.4102564102564102564e-3,
	-1.9175269175269175269e-3, 8.4175084175084175084e-4,
	-5.952380952380952381e-4, 7.9365079365079365079e-4,
	-2.7777777777777777778e-3, 8.3333333333333333333e-2}

// logNFactorialDivNPowN is log(n!/n^n) by Stirling's series.
func logNFactorialDivNPowN(n float64) float64 {
	rn := 1 / n
	x := rn / n
	poly := 0.0
	for _, c := range stirlingCoeffs {
		poly = poly*x + c
	}
	return math.Log(n)/2 - n + math.Log(2*math.Pi)/2 + rn*poly
}

const (
	e128  = 128
	ep128 = 0x1p128
	em128 = 0x1p-128
)

// kolmogornDMTW is P(D_n <= d) by Durbin's matrix algorithm (Marsaglia,
// Tsang and Wang 2003): the k-th diagonal entry of H^n times n!/n^n.
func kolmogornDMTW(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	nd := float64(n) * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1

	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		v[j-1] = 1 - math.Pow(h, float64(j))
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] *= fac
	}
	tt := math.Pow(math.Max(2*h-1, 0), float64(m)) - 2*math.Pow(h, float64(m))
	v[m-1] = (1 + tt) * fac

	H := newMatrix(m)
	for i := 1; i < m; i++ {
		for r := i - 1; r < m; r++ {
			H.set(r, i, w[r-(i-1)])
		}
	}
	for r := 0; r < m; r++ {
		H.set(r, 0, v[r])
	}
	for c := 0; c < m; c++ {
		H.set(m-1, c, v[m-1-c])
	}

	pwr := newMatrix(m)
	for i := 0; i < m; i++ {
		pwr.set(i, i, 1)
	}
	tmp := newMatrix(m)
	expnt, hexpnt := 0, 0
	for nn := n; nn > 0; nn /= 2 {
		if nn%2 == 1 {
			tmp.mul(pwr, H)
			pwr, tmp = tmp, pwr
			expnt += hexpnt
		}
		tmp.mul(H, H)
		H, tmp = tmp, H
		hexpnt *= 2
		if math.Abs(H.at(k-1, k-1)) > ep128 {
			for i := range H.a {
				H.a[i] /= ep128
			}
			hexpnt += e128
		}
	}
	p := pwr.at(k-1, k-1)
	for i := 1; i <= n; i++ {
		p = float64(i) * p / float64(n)
		if math.Abs(p) < em128 {
			p *= ep128
			expnt -= e128
		}
	}
	if expnt != 0 {
		p = math.Ldexp(p, expnt)
	}
	return clip01(p)
}

type matrix struct {
	m int
	a []float64
}

func newMatrix(m int) *matrix             { return &matrix{m: m, a: make([]float64, m*m)} }
func (x *matrix) at(i, j int) float64     { return x.a[i*x.m+j] }
func (x *matrix) set(i, j int, v float64) { x.a[i*x.m+j] = v }

// mul sets x = a*b (x must alias neither).
func (x *matrix) mul(a, b *matrix) {
	m := x.m
	clear(x.a)
	for i := 0; i < m; i++ {
		row := x.a[i*m : (i+1)*m]
		for k := 0; k < m; k++ {
			aik := a.a[i*m+k]
			if aik == 0 {
				continue
			}
			bk := b.a[k*m : (k+1)*m]
			for j, bkj := range bk {
				row[j] += aik * bkj
			}
		}
	}
}

func pomeranzJ1J2(i, n, ll, ceilf, roundf int) (int, int) {
	var j1, j2 int
	if i == 0 {
		j1, j2 = -ll-ceilf-1, ll+ceilf-1
	} else {
		ip1div2, ip1mod2 := (i+1)/2, (i+1)%2
		if ip1mod2 == 0 { // i is odd
			if ip1div2 == n+1 {
				j1, j2 = n-ll-ceilf-1, n+ll+ceilf-1
			} else {
				j1, j2 = ip1div2-1-ll-roundf-1, ip1div2+ll-1+ceilf-1
			}
		} else {
			j1, j2 = ip1div2-1-ll-1, ip1div2+ll+roundf-1
		}
	}
	return max(j1+2, 0), min(j2, n)
}

// kolmogornPomeranz is P(D_n <= x) by Pomeranz's recursion (1974).
func kolmogornPomeranz(n int, x float64) float64 {
	fn := float64(n)
	t := fn * x
	ll := int(math.Floor(t))
	f := t - float64(ll)
	g := math.Min(f, 1-f)
	ceilf, roundf := 0, 0
	if f > 0 {
		ceilf = 1
	}
	if f > 0.5 {
		roundf = 1
	}
	npwrs := 2 * (ll + 1)
	gpower := make([]float64, npwrs)
	twogpower := make([]float64, npwrs)
	onem2gpower := make([]float64, npwrs)
	gpower[0], twogpower[0], onem2gpower[0] = 1, 1, 1
	gOverN, twoGOverN, oneMinusTwoGOverN := g/fn, 2*g/fn, (1-2*g)/fn
	for m := 1; m < npwrs; m++ {
		gpower[m] = gpower[m-1] * gOverN / float64(m)
		twogpower[m] = twogpower[m-1] * twoGOverN / float64(m)
		onem2gpower[m] = onem2gpower[m-1] * oneMinusTwoGOverN / float64(m)
	}
	v0 := make([]float64, npwrs)
	v1 := make([]float64, npwrs)
	v1[0] = 1
	v0s, v1s := 0, 0
	expnt := 0
	j1, j2 := pomeranzJ1J2(0, n, ll, ceilf, roundf)
	var conv []float64
	for i := 1; i < 2*n+2; i++ {
		k1 := j1
		v0, v1 = v1, v0
		v0s, v1s = v1s, v0s
		clear(v1)
		j1, j2 = pomeranzJ1J2(i, n, ll, ceilf, roundf)
		var pwrs []float64
		switch {
		case i == 1 || i == 2*n+1:
			pwrs = gpower
		case i%2 == 1:
			pwrs = twogpower
		default:
			pwrs = onem2gpower
		}
		ln2 := j2 - k1 + 1
		if ln2 > 0 {
			lo := k1 - v0s
			hi := min(lo+ln2, len(v0))
			a := v0[lo:hi]
			b := pwrs[:min(ln2, len(pwrs))]
			conv = convolve(conv[:0], a, b)
			convStart := j1 - k1
			convLen := j2 - j1 + 1
			copy(v1[:convLen], conv[convStart:convStart+convLen])
			mx := 0.0
			for _, x := range v1 {
				mx = math.Max(mx, x)
			}
			if 0 < mx && mx < em128 {
				for k := range v1 {
					v1[k] *= ep128
				}
				expnt -= e128
			}
			v1s = v0s + j1 - k1
		}
	}
	ans := v1[n-v1s]
	for m := 1; m <= n; m++ {
		if math.Abs(ans) > ep128 {
			ans *= em128
			expnt += e128
		}
		ans *= float64(m)
	}
	if expnt != 0 {
		ans = math.Ldexp(ans, expnt)
	}
	return clip01(ans)
}

// convolve appends the full discrete convolution of a and b to dst.
func convolve(dst, a, b []float64) []float64 {
	if len(a) == 0 || len(b) == 0 {
		return dst
	}
	n := len(a) + len(b) - 1
	for k := 0; k < n; k++ {
		s := 0.0
		for i := max(0, k-len(b)+1); i <= min(k, len(a)-1); i++ {
			s += a[i] * b[k-i]
		}
		dst = append(dst, s)
	}
	return dst
}

// kolmogornPelzGood is the Pelz-Good (1976) approximation of P(D_n <= x).
func kolmogornPelzGood(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	const piSq = math.Pi * math.Pi
	const piFour = piSq * piSq
	const piSix = piFour * piSq
	sqrt2pi := math.Sqrt(2 * math.Pi)
	z := math.Sqrt(float64(n)) * x
	zsq, zthree, zfour, zsix := z*z, z*z*z, math.Pow(z, 4), math.Pow(z, 6)

	qlog := -piSq / 8 / zsq
	if qlog < -708 {
		return 0
	}
	q := math.Exp(qlog)

	k1a, k1b := -zsq, piSq/4
	k2a := 6*zsix + 2*zfour
	k2b := (2*zfour - 5*zsq) * piSq / 4
	k2c := piFour * (1 - 2*zsq) / 16
	k3d := piSix * (5 - 30*zsq) / 64
	k3c := piFour * (-60*zsq + 212*zfour) / 16
	k3b := piSq * (135*zfour - 96*zsix) / 4
	k3a := -30*zsix - 90*math.Pow(z, 8)

	var k0to3 [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k > 0; k-- {
		m := float64(2*k - 1)
		msq := m * m
		mfour, msix := msq*msq, msq*msq*msq
		qpower := math.Pow(q, float64(8*k))
		coeffs := [4]float64{1,
			k1a + k1b*msq,
			k2a + k2b*msq + k2c*mfour,
			k3a + k3b*msq + k3c*mfour + k3d*msix}
		for i := range k0to3 {
			k0to3[i] = k0to3[i]*qpower + coeffs[i]
		}
	}
	div := [4]float64{z, 6 * zfour, 72 * math.Pow(z, 7), 6480 * math.Pow(z, 10)}
	for i := range k0to3 {
		k0to3[i] = k0to3[i] * q * sqrt2pi / div[i]
	}

	q = math.Exp(-piSq / 2 / zsq)
	sqrt3z := math.Sqrt(3) * z
	var k2extra, k3extra float64
	for k := maxk; k > 0; k-- {
		ksq := float64(k * k)
		kspi := math.Pi * float64(k)
		qp := math.Pow(q, ksq)
		k2extra += ksq * qp
		k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp
	}
	k0to3[2] += k2extra * piSq * sqrt2pi / (-36 * zthree)
	k0to3[3] += k3extra * piSq * sqrt2pi / (216 * zsix)
	sum := 0.0
	for i := range k0to3 {
		sum += k0to3[i] / math.Pow(float64(n), float64(i)/2)
	}
	return sum
}

// smirnovSF is the one-sided Smirnov survival function P(D+_n >= x)
// (scipy.special.smirnov).
func smirnovSF(n int, x float64) float64 {
	if !(n > 0 && x >= 0 && x <= 1) {
		return math.NaN()
	}
	if n == 1 {
		return 1 - x
	}
	if x == 0 {
		return 1
	}
	if x == 1 {
		return 0
	}
	fn := float64(n)
	// floor(n*x) and its fractional part, exactly.
	nxHi := fn * x
	nxLo := math.FMA(fn, x, -nxHi)
	fl := math.Floor(nxHi)
	if fl == nxHi && nxLo < 0 {
		fl--
	}
	alpha := (nxHi - fl) + nxLo
	nxfl := int(fl)
	if alpha >= 1 {
		nxfl++
		alpha = 0
	}
	n1mxfl := n - nxfl - 1                      // last v with 1-x-v/n > 0
	if nxfl == 0 || (nxfl == 1 && alpha == 0) { // x <= 1/n
		return 1 - x*math.Pow(1+x, fn-1)
	}
	const minLog = -7.08396418532264106224e2
	if -2*fn*x*x < minLog {
		return 0
	}
	if nxfl >= n-1 { // x >= 1 - 1/n
		return math.Pow(1-x, fn)
	}
	if n > 1000000 { // xsf approximates too: p ~ exp(-(6nx+1)^2 / 18n)
		logp := -math.Pow(6*fn*x+1, 2) / 18 / fn
		if logp < -math.Ln2 {
			return math.Exp(logp)
		}
		return 1 + math.Expm1(logp) // 1 - cdf, cdf = -expm1(logp)
	}

	// Lower sum: sf = x * sum_{v=0}^{floor(n(1-x))} C(n,v) (x+v/n)^(v-1) (1-x-v/n)^(n-v).
	// (xsf switches to the upper sum only for x <= 0.5/sqrt(n), which
	// kolmogornSF never asks for.)
	nTerms := n1mxfl + 1
	var sum, comp float64 // Neumaier
	add := func(t float64) {
		s := sum + t
		if math.Abs(sum) >= math.Abs(t) {
			comp += (sum - s) + t
		} else {
			comp += (t - s) + sum
		}
		sum = s
	}
	add(math.Pow(1-x, fn) / x)   // v = 0
	cman, cexp := math.Frexp(fn) // C(n, 1)
	vmid := n / 2
	for j := 1; j < nTerms; j++ {
		v := j
		// 1 - x - v/n and x + v/n as double-doubles.
		qhi, qlo := ddQuo(float64(n-v), fn)
		b2hi, b2lo := ddAdd(qhi, qlo, -x)
		qhi, qlo = ddQuo(float64(v), fn)
		b1hi, b1lo := ddAdd(qhi, qlo, x)
		m2, e2 := powScaled(b2hi, b2lo, n-v)
		m1, e1 := powScaled(b1hi, b1lo, v-1)
		fr, fe := math.Frexp(m1 * m2 * cman)
		aj := math.Ldexp(fr, fe+cexp+e1+e2)
		if !math.IsInf(aj, 0) && aj != 0 {
			add(aj)
		}
		if aj != 0 {
			if 4*float64(nTerms-j)*math.Abs(aj) < epsilon*(sum+comp) && j != nTerms-1 {
				break
			}
		} else if j > vmid {
			break
		}
		// C(n, j+1) = C(n, j) * (n-j)/(j+1), kept as mantissa and exponent.
		var e int
		cman, e = math.Frexp(cman * (float64(n-j) / float64(j+1)))
		cexp += e
	}
	return clip01(x * (sum + comp))
}

const epsilon = 2.220446049250313e-16

// ddQuo is a/b as an unevaluated sum hi+lo.
func ddQuo(a, b float64) (float64, float64) {
	q := a / b
	r := math.FMA(-q, b, a) // exact remainder
	return q, r / b
}

func ddAdd(hi, lo, y float64) (float64, float64) {
	s := hi + y
	bb := s - hi
	e := (hi - (s - bb)) + (y - bb)
	e += lo
	h := s + e
	return h, e - (h - s)
}

// powScaled is (hi+lo)^m as mant*2^exp with mant in [0.5, 1), so that it
// neither underflows nor overflows. hi > 0, m >= 0.
func powScaled(hi, lo float64, m int) (float64, int) {
	if m == 0 {
		return 0.5, 1
	}
	y, ye := math.Frexp(hi)
	mant, exp := 1.0, 0
	b, be := y, ye
	for k := m; k > 0; k >>= 1 {
		if k&1 == 1 {
			var e int
			mant, e = math.Frexp(mant * b)
			exp += e + be
		}
		var e int
		b, e = math.Frexp(b * b)
		be = 2*be + e
	}
	// (1 + lo/hi)^m, as xsf's pow_D does.
	r := lo / hi
	adj := float64(m) * r
	if math.Abs(adj) > 1e-8 {
		if math.Abs(adj) < 1e-4 {
			adj += (float64(m) * r) * (float64(m-1) / 2 * r)
		} else {
			adj = math.Expm1(float64(m) * math.Log1p(r))
		}
	}
	mant, e := math.Frexp(mant + mant*adj)
	return mant, exp + e
}
