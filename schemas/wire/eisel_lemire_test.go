package wire

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestEiselLemireTable checks elPowers against 10^-1 and 10^0 and against
// the float64 each entry must round to.
func TestEiselLemireTable(t *testing.T) {
	if got := elPowers[-elMinExp10]; got != [2]uint64{0, 1 << 63} {
		t.Errorf("10^0 = %x, want {0, 8000000000000000}", got)
	}
	if got := elPowers[-1-elMinExp10]; got != [2]uint64{0xCCCCCCCCCCCCCCCC, 0xCCCCCCCCCCCCCCCC} {
		t.Errorf("10^-1 = %x, want {cccccccccccccccc, cccccccccccccccc}", got)
	}
	for e := elMinExp10; e <= 0; e++ {
		got, ok := eiselLemire(1, e, false)
		if want := math.Pow10(e); !ok || got != want {
			t.Errorf("eiselLemire(1, %d) = %v, %v; want %v", e, got, ok, want)
		}
	}
}

// TestReadNumberMatchesStrconv decodes numbers of 16 to 19 significant
// digits, the ones readNumber gives to eiselLemire, and compares each with
// strconv.ParseFloat bit for bit: random digits at every position of the
// point, leading zeros, negatives, and known hard cases (halfway between
// two float64s, just above and below, the largest mantissas).
func TestReadNumberMatchesStrconv(t *testing.T) {
	cases := []string{
		"9007199254740993", "9007199254740992", "9007199254740991", "18014398509481985",
		"0.1000000000000000055511151231257827", "0.10000000000000001", "0.30000000000000004",
		"1.7976931348623157", "2.2250738585072014", "4.9406564584124654",
		"9999999999999999999", "0.9999999999999999999", "1000000000000000000",
		"0.0000000000000000001", "-0.000000000000000000", "0.000000000000000000",
		"123456789012345678", "-12345678901234567.0", "0.12345678901234567",
		"3.1415926535897932", "2.7182818284590452", "-1.4142135623730951",
	}
	rng := rand.New(rand.NewPCG(17, 4))
	for range 200000 {
		digits := 16 + rng.IntN(4)
		b := make([]byte, 0, 24)
		if rng.IntN(2) == 0 {
			b = append(b, '-')
		}
		point := rng.IntN(digits) // digits before the point (0: "0.")
		lead := 0
		if point == 0 {
			b = append(b, '0')
			lead = rng.IntN(3) // zeros after the point, counted as digits
		}
		for i := 0; i < digits; i++ {
			if i == point {
				b = append(b, '.')
			}
			switch {
			case point == 0 && i < lead:
				b = append(b, '0')
			case i == 0:
				b = append(b, byte('1'+rng.IntN(9)))
			default:
				b = append(b, byte('0'+rng.IntN(10)))
			}
		}
		if point == 0 && len(b) > 0 && b[len(b)-1] == '.' {
			b = append(b, '0')
		}
		cases = append(cases, string(b))
	}
	// halfway cases: a 53-bit mantissa plus half an ulp, printed exactly
	for range 2000 {
		m := uint64(1)<<52 | rng.Uint64N(1<<52)
		v := math.Ldexp(float64(m), -52+rng.IntN(10))
		next := math.Nextafter(v, math.Inf(1))
		mid := strconv.FormatFloat((v+next)/2, 'f', -1, 64)
		cases = append(cases, mid, strconv.FormatFloat(v, 'f', -1, 64))
	}
	for _, c := range cases {
		want, err := strconv.ParseFloat(c, 64)
		if err != nil {
			t.Fatalf("case %q: %v", c, err)
		}
		d := JSONDecoder{data: []byte(c)}
		raw, got, err := d.readNumber()
		if err != nil || string(raw) != c {
			t.Fatalf("readNumber(%q) = %q, %v", c, raw, err)
		}
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("readNumber(%q) = %v (%x), strconv %v (%x)", c, got, math.Float64bits(got), want, math.Float64bits(want))
		}
	}
	t.Logf("%d numbers agree", len(cases))
}
