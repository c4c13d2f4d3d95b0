package wire

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vigil-ml/vigil/schemas"
)

// AppendJSON appends the JSON form of e (schemas/prediction_event.v1.schema.json)
// to dst and returns the extended buffer. Feature, class and segment order is
// kept. It does not allocate beyond growing dst.
//
// For a valid event whose strings are valid UTF-8, JSONDecoder.Decode gives
// back an equal event, except that the event time comes back in UTC: it is
// written as RFC 3339 in UTC with nanoseconds (as Unix milliseconds when the
// year is outside 0..9999). JSON has no NaN or infinity: such numbers are
// written as null (a NaN feature comes back as a null feature). Invalid UTF-8
// is written as U+FFFD.
func AppendJSON(dst []byte, e *schemas.Event) []byte {
	dst = append(dst, `{"event_id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, e.Model)
	if e.ModelVersion != "" {
		dst = append(dst, `,"model_version":`...)
		dst = appendString(dst, e.ModelVersion)
	}
	dst = append(dst, `,"event_time":`...)
	dst = appendTime(dst, e.Time)

	dst = append(dst, `,"features":{`...)
	for i := range e.Features {
		f := &e.Features[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, f.Name)
		dst = append(dst, ':')
		switch f.Value.Kind {
		case schemas.Number:
			dst = appendFloat(dst, f.Value.Num)
		case schemas.String:
			dst = appendString(dst, f.Value.Str)
		case schemas.Bool:
			dst = strconv.AppendBool(dst, f.Value.Bool)
		case schemas.Vector:
			dst = append(dst, '[')
			for j, x := range f.Value.Vec {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendFloat(dst, x)
			}
			dst = append(dst, ']')
		default:
			dst = append(dst, "null"...)
		}
	}

	dst = append(dst, `},"prediction":{`...)
	p := &e.Prediction
	sep := false
	comma := func(dst []byte) []byte {
		if sep {
			dst = append(dst, ',')
		}
		sep = true
		return dst
	}
	if p.HasScore {
		dst = append(comma(dst), `"score":`...)
		dst = appendFloat(dst, p.Score)
	}
	if p.Label != "" {
		dst = append(comma(dst), `"label":`...)
		dst = appendString(dst, p.Label)
	}
	if len(p.Probabilities) > 0 {
		dst = append(comma(dst), `"probabilities":{`...)
		for i := range p.Probabilities {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, p.Probabilities[i].Class)
			dst = append(dst, ':')
			dst = appendFloat(dst, p.Probabilities[i].P)
		}
		dst = append(dst, '}')
	}
	if p.HasValue {
		dst = append(comma(dst), `"value":`...)
		dst = appendFloat(dst, p.Value)
	}
	dst = append(dst, '}')

	if e.Latency != 0 {
		dst = append(dst, `,"latency_ms":`...)
		dst = appendMillis(dst, e.Latency)
	}
	if len(e.Segments) > 0 {
		dst = append(dst, `,"segments":{`...)
		for i := range e.Segments {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, e.Segments[i].Key)
			dst = append(dst, ':')
			dst = appendString(dst, e.Segments[i].Value)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendFloat writes f like encoding/json does: the shortest representation
// that round-trips, exponent only for very small or large magnitudes.
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendMillis writes a non-negative duration as exact decimal milliseconds.
func appendMillis(dst []byte, d time.Duration) []byte {
	if d < 0 {
		// Invalid (Validate rejects it); keep the sign so the decoder says so.
		return appendFloat(dst, float64(d)/1e6)
	}
	dst = strconv.AppendInt(dst, int64(d/time.Millisecond), 10)
	frac := int64(d % time.Millisecond)
	if frac == 0 {
		return dst
	}
	var buf [7]byte
	buf[0] = '.'
	for i := 6; i >= 1; i-- {
		buf[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 7
	for buf[n-1] == '0' {
		n--
	}
	return append(dst, buf[:n]...)
}

// appendTime writes t in UTC as a quoted RFC 3339 string with as many
// fractional digits as needed, or as Unix milliseconds when RFC 3339 cannot
// hold the year.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return strconv.AppendInt(dst, t.UnixMilli(), 10)
	}
	hour, minute, sec := t.Clock()
	dst = append(dst, '"')
	dst = append2(append2(dst, year/100), year%100)
	dst = append2(append(dst, '-'), int(month))
	dst = append2(append(dst, '-'), day)
	dst = append2(append(dst, 'T'), hour)
	dst = append2(append(dst, ':'), minute)
	dst = append2(append(dst, ':'), sec)
	if ns := t.Nanosecond(); ns != 0 {
		var buf [10]byte
		buf[0] = '.'
		for i := 9; i >= 1; i-- {
			buf[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for buf[n-1] == '0' {
			n--
		}
		dst = append(dst, buf[:n]...)
	}
	return append(dst, 'Z', '"')
}

func append2(dst []byte, v int) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by \ufffd, the rest verbatim.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
