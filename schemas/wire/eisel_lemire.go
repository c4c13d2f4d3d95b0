package wire

import (
	"math"
	"math/big"
	"math/bits"
)

// Numbers with 16 to 19 significant digits and no exponent (what a float64
// printed with full precision looks like, 0.12345678901234567) miss
// Clinger's fast path in readNumber. strconv.ParseFloat then scans the
// digits a second time before its own Eisel-Lemire step; readNumber has the
// mantissa already, so it runs that step itself (Lemire, "Number Parsing at
// a Gigabyte per Second", 2021; the same algorithm as Go's
// strconv/eisel_lemire.go) and falls back to ParseFloat only in the rare
// cases the algorithm cannot decide.

// elMinExp10 is the smallest power of ten in elPowers: readNumber's
// mantissas have at most 19 digits, so their exponents are -19..0.
const elMinExp10 = -19

// elPowers[e-elMinExp10] holds 10^e as a 128-bit mantissa, rounded down and
// normalised (top bit set): {low 64 bits, high 64 bits}.
var elPowers = func() [1 - elMinExp10][2]uint64 {
	var t [1 - elMinExp10][2]uint64
	one := big.NewInt(1)
	for e := elMinExp10; e <= 0; e++ {
		p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-e)), nil)
		// floor(2^k / 10^-e) with k chosen so that it has 128 bits
		k := 127 + p.BitLen()
		m := new(big.Int).Lsh(one, uint(k))
		m.Quo(m, p)
		if m.BitLen() > 128 {
			m.Rsh(m, uint(m.BitLen()-128))
		}
		for m.BitLen() < 128 {
			m.Lsh(m, 1)
		}
		lo := new(big.Int).And(m, new(big.Int).SetUint64(math.MaxUint64))
		t[e-elMinExp10] = [2]uint64{lo.Uint64(), new(big.Int).Rsh(m, 64).Uint64()}
	}
	return t
}()

// eiselLemire returns man * 10^exp10 correctly rounded, negated when neg;
// ok is false when the algorithm cannot decide (then ask strconv) or when
// exp10 is out of elPowers' range.
func eiselLemire(man uint64, exp10 int, neg bool) (f float64, ok bool) {
	if man == 0 {
		if neg {
			f = math.Copysign(0, -1)
		}
		return f, true
	}
	if exp10 < elMinExp10 || exp10 > 0 {
		return 0, false
	}
	pow := &elPowers[exp10-elMinExp10]
	clz := bits.LeadingZeros64(man)
	man <<= uint(clz)
	const bias = 1023
	retExp2 := uint64(217706*exp10>>16+64+bias) - uint64(clz)
	xHi, xLo := bits.Mul64(man, pow[1])
	if xHi&0x1FF == 0x1FF && xLo+man < man {
		yHi, yLo := bits.Mul64(man, pow[0])
		mergedHi, mergedLo := xHi, xLo+yHi
		if mergedLo < xLo {
			mergedHi++
		}
		if mergedHi&0x1FF == 0x1FF && mergedLo+1 == 0 && yLo+man < man {
			return 0, false
		}
		xHi, xLo = mergedHi, mergedLo
	}
	msb := xHi >> 63
	retMantissa := xHi >> (msb + 9)
	retExp2 -= 1 ^ msb
	if xLo == 0 && xHi&0x1FF == 0 && retMantissa&3 == 1 {
		return 0, false // halfway between two floats: needs the exact digits
	}
	retMantissa += retMantissa & 1
	retMantissa >>= 1
	if retMantissa>>53 > 0 {
		retMantissa >>= 1
		retExp2++
	}
	if retExp2-1 >= 0x7FF-1 {
		return 0, false // subnormal or infinite
	}
	b := retExp2<<52 | retMantissa&(1<<52-1)
	if neg {
		b |= 1 << 63
	}
	return math.Float64frombits(b), true
}
