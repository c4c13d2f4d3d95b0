package wire

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/vigil-ml/vigil/schemas"
)

// JSONDecoder decodes JSON prediction events (one per Kafka message) as
// specified by schemas/prediction_event.v1.schema.json.
//
// It is a hand-written single-pass decoder for this one shape: strict JSON
// (RFC 8259: number grammar, string escapes, UTF-8, no trailing data) with
// no reflection and, in steady state, no allocations. Unknown top-level and
// prediction keys are skipped (after checking they are well-formed JSON) so
// that newer producers stay readable.
//
// The zero value is ready to use. Reuse one decoder across messages; it is
// not safe for concurrent use.
type JSONDecoder struct {
	data []byte
	pos  int

	scratch []byte // unescaped string being read

	// names interns model, version, feature, segment and class names.
	names      map[string]*nameEntry
	epoch      uint64 // bumped per JSON object whose keys must be unique
	featHints  []*nameEntry
	segHints   []*nameEntry
	probaHints []*nameEntry
	model      *nameEntry // last model, checked before the map
	version    *nameEntry

	arena stringArena
	vecs  floatArena
}

// nameEntry is an interned name; epoch detects a name repeated in one object.
type nameEntry struct {
	s     string
	epoch uint64
}

// maxInternedNames bounds the intern table; past it the table is dropped and
// rebuilt, so that a producer with ever-new names cannot grow it forever.
const maxInternedNames = 8192

// maxNesting bounds the depth of unknown values the decoder skips.
const maxNesting = 64

// Top-level keys, as bits, to reject a key given twice.
const (
	keyEventID = 1 << iota
	keyModel
	keyModelVersion
	keyEventTime
	keyFeatures
	keyPrediction
	keyLatency
	keySegments
	keySchemaVersion
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Decode decodes one JSON event from data into e and validates it
// (schemas.Event.Validate). It reuses the capacity of e.Features,
// e.Segments and e.Prediction.Probabilities. The strings put in e never
// alias data or the decoder's buffers. On error, e holds a partial event.
//
// Every error wraps ErrMalformed and says which field is wrong, for example
// `malformed event: "event_time": not RFC 3339 or Unix ms`.
func (d *JSONDecoder) Decode(data []byte, e *schemas.Event) error {
	if d.names == nil || len(d.names) > maxInternedNames {
		d.names = make(map[string]*nameEntry, 64)
		d.featHints, d.segHints, d.probaHints = d.featHints[:0], d.segHints[:0], d.probaHints[:0]
		d.model, d.version = nil, nil
	}
	*e = schemas.Event{
		Features:   e.Features[:0],
		Segments:   e.Segments[:0],
		Prediction: schemas.Prediction{Probabilities: e.Prediction.Probabilities[:0]},
	}
	d.data, d.pos = data, 0
	err := d.decodeEvent(e)
	d.data = nil
	if err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

func (d *JSONDecoder) decodeEvent(e *schemas.Event) error {
	return d.decodeTopObject("event", func(key []byte) (k jsonKey, err error) {
		switch string(key) {
		case "event_id":
			k = jsonKey{keyEventID, "event_id"}
			var b []byte
			if b, err = d.readString(); err == nil {
				e.ID = d.arena.str(b)
			}
		case "model":
			k = jsonKey{keyModel, "model"}
			var b []byte
			if b, err = d.readString(); err == nil {
				e.Model = d.internOne(&d.model, b)
			}
		case "model_version":
			k = jsonKey{keyModelVersion, "model_version"}
			if !d.consumeNull() {
				var b []byte
				if b, err = d.readString(); err == nil {
					e.ModelVersion = d.internOne(&d.version, b)
				}
			}
		case "event_time":
			k = jsonKey{keyEventTime, "event_time"}
			e.Time, err = d.readEventTime()
		case "features":
			k = jsonKey{keyFeatures, "features"}
			err = d.readFeatures(e)
		case "prediction":
			k = jsonKey{keyPrediction, "prediction"}
			err = d.readPrediction(&e.Prediction)
		case "latency_ms":
			k = jsonKey{keyLatency, "latency_ms"}
			if !d.consumeNull() {
				e.Latency, err = d.readLatency()
			}
		case "segments":
			k = jsonKey{keySegments, "segments"}
			if !d.consumeNull() {
				err = d.readSegments(e)
			}
		case "schema_version":
			k = jsonKey{keySchemaVersion, "schema_version"}
			err = d.readSchemaVersion()
		default:
			err = d.skipValue(0)
		}
		return k, err
	}, eventRequired[:])
}

// eventRequired are the keys every event has.
var eventRequired = [...]jsonKey{{keyEventID, "event_id"}, {keyModel, "model"}, {keyEventTime, "event_time"}, {keyFeatures, "features"}, {keyPrediction, "prediction"}}

// jsonKey names a top-level key: its bit in the set that rejects a key given
// twice, and its name for errors (the key as read may alias scratch memory
// that reading its value overwrote).
type jsonKey struct {
	bit  uint
	name string
}

// decodeTopObject decodes the message as one JSON object of kind what (an
// event, a label). field reads the value of one key and returns the key's
// jsonKey, or the zero jsonKey for a key it skipped. A known key may appear
// once, every one of required must, and nothing may follow the object.
func (d *JSONDecoder) decodeTopObject(what string, field func(key []byte) (jsonKey, error), required []jsonKey) error {
	d.skipWS()
	if !d.consume('{') {
		return malformed("not a JSON object")
	}
	var seen uint
	err := d.eachKey(what, func(key []byte) error {
		k, err := field(key)
		if err != nil {
			return fieldError(k.name, err)
		}
		if seen&k.bit != 0 {
			return malformed("%q: duplicate key", k.name)
		}
		seen |= k.bit
		return nil
	})
	if err != nil {
		return err
	}
	d.skipWS()
	if d.pos != len(d.data) {
		return malformed("trailing data after the %s at offset %d", what, d.pos)
	}
	for _, k := range required {
		if seen&k.bit == 0 {
			return malformed("%q: missing", k.name)
		}
	}
	return nil
}

// readSchemaVersion reads the value of "schema_version": 1 is the only one.
func (d *JSONDecoder) readSchemaVersion() error {
	raw, _, err := d.readNumber()
	if err == nil && string(raw) != "1" {
		return malformed(`"schema_version": %s not supported (want 1)`, raw)
	}
	return err
}

// fieldError prefixes a value error with the field it was read for.
// Errors that already carry their field (nested ones) pass through.
func fieldError(field string, err error) error {
	if fe, ok := err.(*valueError); ok {
		return malformed("%q: %s", field, fe.reason)
	}
	return err
}

// valueError is a reason without a field; fieldError names the field.
type valueError struct{ reason string }

func (e *valueError) Error() string { return e.reason }

func badValue(format string, args ...any) error {
	return &valueError{reason: fmt.Sprintf(format, args...)}
}

func (d *JSONDecoder) readFeatures(e *schemas.Event) error {
	d.skipWS()
	if !d.consume('{') {
		return badValue("not an object")
	}
	d.epoch++
	i := 0
	return d.eachKey("features", func(key []byte) error {
		ent := d.intern(&d.featHints, i, key)
		i++
		if ent.epoch == d.epoch {
			return malformed("%q: duplicate feature", "features."+clip(ent.s))
		}
		ent.epoch = d.epoch
		f := schemas.Feature{Name: ent.s}
		if d.pos >= len(d.data) {
			return d.syntaxError("a value")
		}
		switch c := d.data[d.pos]; {
		case c == '"':
			b, err := d.readString()
			if err != nil {
				return fieldError("features."+clip(ent.s), err)
			}
			f.Value = schemas.Value{Kind: schemas.String, Str: d.arena.str(b)}
		case c == '-' || c >= '0' && c <= '9':
			_, v, err := d.readNumber()
			if err != nil {
				return fieldError("features."+clip(ent.s), err)
			}
			f.Value = schemas.Value{Kind: schemas.Number, Num: v}
		case c == 't' || c == 'f':
			v, err := d.readBool()
			if err != nil {
				return fieldError("features."+clip(ent.s), err)
			}
			f.Value = schemas.Value{Kind: schemas.Bool, Bool: v}
		case c == 'n':
			if !d.consumeNull() {
				return d.syntaxError("a value")
			}
		case c == '[':
			v, err := d.readVector()
			if err != nil {
				return fieldError("features."+clip(ent.s), err)
			}
			f.Value = schemas.Value{Kind: schemas.Vector, Vec: v}
		case c == '{':
			return malformed("%q: objects are not feature values (use number, string, bool, an array of numbers or null)", "features."+clip(ent.s))
		default:
			return d.syntaxError("a value")
		}
		e.Features = append(e.Features, f)
		return nil
	})
}

// readVector reads a vector feature: a JSON array of 1 to
// schemas.MaxVectorDim numbers. The slice comes from the decoder's float
// arena: it is never written again.
func (d *JSONDecoder) readVector() ([]float64, error) {
	d.pos++ // '['
	d.skipWS()
	if d.consume(']') {
		return nil, badValue("empty array (a vector has 1 to %d numbers)", schemas.MaxVectorDim)
	}
	buf := d.vecs.start()
	for {
		d.skipWS()
		if len(buf) == schemas.MaxVectorDim {
			return nil, badValue("array longer than %d numbers", schemas.MaxVectorDim)
		}
		if d.pos >= len(d.data) || !(d.data[d.pos] == '-' || d.data[d.pos] >= '0' && d.data[d.pos] <= '9') {
			if d.pos >= len(d.data) {
				return nil, badValue("unexpected end of JSON in array")
			}
			return nil, badValue("array element %d is not a number", len(buf))
		}
		_, v, err := d.readNumber()
		if err != nil {
			return nil, badValue("array element %d: %s", len(buf), err)
		}
		buf = append(buf, v)
		d.skipWS()
		if d.consume(',') {
			continue
		}
		if d.consume(']') {
			return d.vecs.finish(buf), nil
		}
		return nil, badValue("invalid JSON in array at offset %d, want ',' or ']'", d.pos)
	}
}

func (d *JSONDecoder) readSegments(e *schemas.Event) error {
	if !d.consume('{') {
		return badValue("not an object")
	}
	d.epoch++
	i := 0
	return d.eachKey("segments", func(key []byte) error {
		ent := d.intern(&d.segHints, i, key)
		i++
		if ent.epoch == d.epoch {
			return malformed("%q: duplicate segment", "segments."+clip(ent.s))
		}
		ent.epoch = d.epoch
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return malformed("%q: not a string", "segments."+clip(ent.s))
		}
		b, err := d.readString()
		if err != nil {
			return fieldError("segments."+clip(ent.s), err)
		}
		e.Segments = append(e.Segments, schemas.Tag{Key: ent.s, Value: d.arena.str(b)})
		return nil
	})
}

func (d *JSONDecoder) readPrediction(p *schemas.Prediction) error {
	d.skipWS()
	if !d.consume('{') {
		return badValue("not an object")
	}
	var seen uint
	err := d.eachKey("prediction", func(key []byte) error {
		var bit uint
		var err error
		switch string(key) {
		case "score":
			bit = 1
			if !d.consumeNull() {
				_, p.Score, err = d.readNumber()
				p.HasScore = err == nil
			}
		case "label":
			bit = 2
			if !d.consumeNull() {
				var b []byte
				if b, err = d.readString(); err == nil {
					p.Label = d.arena.str(b)
				}
			}
		case "probabilities":
			bit = 4
			if !d.consumeNull() {
				err = d.readProbabilities(p)
			}
		case "value":
			bit = 8
			if !d.consumeNull() {
				_, p.Value, err = d.readNumber()
				p.HasValue = err == nil
			}
		default:
			return d.skipValue(0)
		}
		if err != nil {
			return fieldError("prediction."+string(key), err)
		}
		if seen&bit != 0 {
			return malformed("%q: duplicate key", "prediction."+string(key))
		}
		seen |= bit
		return nil
	})
	if err != nil {
		return err
	}
	if !p.HasScore && p.Label == "" && len(p.Probabilities) == 0 && !p.HasValue {
		return malformed(`"prediction": needs one of score, label, probabilities, value`)
	}
	return nil
}

func (d *JSONDecoder) readProbabilities(p *schemas.Prediction) error {
	if !d.consume('{') {
		return badValue("not an object")
	}
	d.epoch++
	i := 0
	return d.eachKey("prediction.probabilities", func(key []byte) error {
		ent := d.intern(&d.probaHints, i, key)
		i++
		if ent.epoch == d.epoch {
			return malformed("%q: duplicate class", "prediction.probabilities."+clip(ent.s))
		}
		ent.epoch = d.epoch
		_, v, err := d.readNumber()
		if err != nil {
			return fieldError("prediction.probabilities."+clip(ent.s), err)
		}
		p.Probabilities = append(p.Probabilities, schemas.ClassProbability{Class: ent.s, P: v})
		return nil
	})
}

// eachKey iterates over the members of an object whose '{' was consumed,
// calling fn with each key and the position at the start of its value. The
// key may alias the decoder's scratch buffer: fn must copy it before reading
// a string value.
func (d *JSONDecoder) eachKey(what string, fn func(key []byte) error) error {
	d.skipWS()
	if d.consume('}') {
		return nil
	}
	for {
		d.skipWS()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return d.syntaxError("a key in " + what)
		}
		key, err := d.readString()
		if err != nil {
			return malformed("key in %s: %s", what, err)
		}
		d.skipWS()
		if !d.consume(':') {
			return d.syntaxError("':'")
		}
		d.skipWS()
		if err := fn(key); err != nil {
			return err
		}
		d.skipWS()
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			return nil
		}
		return d.syntaxError("',' or '}' in " + what)
	}
}

func (d *JSONDecoder) syntaxError(want string) error {
	if d.pos >= len(d.data) {
		return malformed("unexpected end of JSON, want %s", want)
	}
	return malformed("invalid JSON at offset %d: got %q, want %s", d.pos, d.data[d.pos], want)
}

func (d *JSONDecoder) skipWS() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *JSONDecoder) consume(c byte) bool {
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

func (d *JSONDecoder) consumeLiteral(lit string) bool {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return true
	}
	return false
}

func (d *JSONDecoder) consumeNull() bool { return d.consumeLiteral("null") }

func (d *JSONDecoder) readBool() (bool, error) {
	switch {
	case d.consumeLiteral("true"):
		return true, nil
	case d.consumeLiteral("false"):
		return false, nil
	}
	return false, badValue("not a bool")
}

// readString reads a JSON string at d.pos. The result aliases d.data when
// the string has no escapes, d.scratch otherwise: copy it before the next read.
func (d *JSONDecoder) readString() ([]byte, error) {
	if !d.consume('"') {
		return nil, badValue("not a string")
	}
	data := d.data
	start := d.pos
	for i := start; i < len(data); i++ {
		c := data[i]
		if c == '"' {
			d.pos = i + 1
			return data[start:i], nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			d.pos = i
			return d.readStringSlow(start)
		}
	}
	return nil, badValue("unterminated string")
}

func (d *JSONDecoder) readStringSlow(start int) ([]byte, error) {
	data := d.data
	buf := append(d.scratch[:0], data[start:d.pos]...)
	i := d.pos
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.scratch = buf
			return buf, nil
		case c < 0x20:
			return nil, badValue("control character %#02x in string (escape it)", c)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, badValue("invalid UTF-8 in string")
			}
			buf = append(buf, data[i:i+size]...)
			i += size
			continue
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		// An escape.
		if i+1 >= len(data) {
			return nil, badValue("unterminated string")
		}
		esc := data[i+1]
		i += 2
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(data[i:])
			if !ok {
				return nil, badValue(`bad \u escape in string`)
			}
			i += 4
			if utf16IsHighSurrogate(r) {
				// A pair encodes one rune; a lone surrogate becomes U+FFFD
				// (as in encoding/json).
				if r2, ok := hex4After(data[i:]); ok && utf16IsLowSurrogate(r2) {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					i += 6
				} else {
					r = utf8.RuneError
				}
			} else if utf16IsLowSurrogate(r) {
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return nil, badValue("bad escape %q in string", "\\"+string(rune(esc)))
		}
	}
	return nil, badValue("unterminated string")
}

func utf16IsHighSurrogate(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func utf16IsLowSurrogate(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }

// hex4After reads `\uXXXX`.
func hex4After(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	return hex4(b[2:])
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// readNumber reads a JSON number (RFC 8259 grammar) and returns its text and
// value. Numbers beyond float64's range are an error.
func (d *JSONDecoder) readNumber() (raw []byte, v float64, err error) {
	data := d.data
	i := d.pos
	start := i
	if i < len(data) && data[i] == '-' {
		i++
	}
	var mant uint64
	digits := 0
	if i < len(data) && data[i] == '0' {
		i++
		digits++
	} else if i < len(data) && data[i] >= '1' && data[i] <= '9' {
		for ; i < len(data) && data[i] >= '0' && data[i] <= '9'; i++ {
			mant = mant*10 + uint64(data[i]-'0')
			digits++
		}
	} else {
		return nil, 0, badValue("not a number")
	}
	frac := 0
	if i < len(data) && data[i] == '.' {
		i++
		for ; i < len(data) && data[i] >= '0' && data[i] <= '9'; i++ {
			mant = mant*10 + uint64(data[i]-'0')
			digits++
			frac++
		}
		if frac == 0 {
			return nil, 0, badValue("bad number: no digits after '.'")
		}
	}
	exact := true
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		exact = false
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		n := 0
		for ; i < len(data) && data[i] >= '0' && data[i] <= '9'; i++ {
			n++
		}
		if n == 0 {
			return nil, 0, badValue("bad number: no digits in exponent")
		}
	}
	d.pos = i
	raw = data[start:i]
	// Clinger's fast path: a mantissa below 2^53 divided by an exact power of
	// ten is correctly rounded.
	if exact && digits <= 15 {
		v = float64(mant) / pow10[frac]
		if raw[0] == '-' {
			v = -v
		}
		return raw, v, nil
	}
	if exact && digits <= 19 { // mant holds every digit (see eisel_lemire.go)
		if v, ok := eiselLemire(mant, -frac, raw[0] == '-'); ok {
			return raw, v, nil
		}
	}
	v, perr := strconv.ParseFloat(unsafeString(raw), 64)
	if perr != nil || math.IsInf(v, 0) {
		return nil, 0, badValue("number %s out of range", raw)
	}
	return raw, v, nil
}

// readEventTime reads an RFC 3339 string or integer Unix milliseconds.
func (d *JSONDecoder) readEventTime() (time.Time, error) {
	const reason = "not RFC 3339 or Unix ms"
	if d.pos < len(d.data) && d.data[d.pos] == '"' {
		b, err := d.readString()
		if err != nil {
			return time.Time{}, err
		}
		t, ok := parseRFC3339(b)
		if !ok {
			return time.Time{}, badValue(reason)
		}
		return t, nil
	}
	raw, _, err := d.readNumber()
	if err != nil {
		return time.Time{}, badValue(reason)
	}
	ms, err := strconv.ParseInt(unsafeString(raw), 10, 64)
	if err != nil {
		return time.Time{}, badValue(reason)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// maxLatencyMs keeps latency_ms within time.Duration.
const maxLatencyMs = math.MaxInt64 / int64(time.Millisecond)

// readLatency reads latency_ms. Plain decimals with up to 6 fractional digits
// convert exactly to nanoseconds, so that AppendJSON's output round-trips.
func (d *JSONDecoder) readLatency() (time.Duration, error) {
	raw, v, err := d.readNumber()
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return 0, badValue("negative")
	}
	if ms, frac, ok := splitDecimal(raw); ok && len(frac) <= 6 && len(ms) <= 13 {
		m, _ := digits(ms)
		f, _ := digits(frac)
		for n := len(frac); n < 6; n++ {
			f *= 10
		}
		if int64(m) > maxLatencyMs || (int64(m) == maxLatencyMs && int64(f) > math.MaxInt64%int64(time.Millisecond)) {
			return 0, badValue("out of range")
		}
		return time.Duration(m)*time.Millisecond + time.Duration(f), nil
	}
	ns := math.Round(v * 1e6)
	if !(ns < math.MaxInt64) {
		return 0, badValue("out of range")
	}
	return time.Duration(ns), nil
}

// splitDecimal splits a non-negative JSON number without exponent into its
// integer and fraction digits.
func splitDecimal(raw []byte) (intPart, frac []byte, ok bool) {
	for i, c := range raw {
		switch c {
		case '.':
			intPart, frac = raw[:i], raw[i+1:]
		case 'e', 'E', '-':
			return nil, nil, false
		}
	}
	if intPart == nil {
		intPart = raw
	}
	return intPart, frac, true
}

// skipValue checks and skips any JSON value.
func (d *JSONDecoder) skipValue(depth int) error {
	if depth > maxNesting {
		return malformed("JSON nested deeper than %d levels", maxNesting)
	}
	if d.pos >= len(d.data) {
		return d.syntaxError("a value")
	}
	switch c := d.data[d.pos]; {
	case c == '"':
		if _, err := d.readString(); err != nil {
			return malformed("at offset %d: %s", d.pos, err)
		}
	case c == '-' || c >= '0' && c <= '9':
		if _, _, err := d.readNumber(); err != nil {
			return malformed("at offset %d: %s", d.pos, err)
		}
	case c == '{':
		d.pos++
		return d.eachKey("object", func([]byte) error { return d.skipValue(depth + 1) })
	case c == '[':
		d.pos++
		d.skipWS()
		if d.consume(']') {
			return nil
		}
		for {
			d.skipWS()
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			d.skipWS()
			if d.consume(',') {
				continue
			}
			if d.consume(']') {
				return nil
			}
			return d.syntaxError("',' or ']'")
		}
	default:
		if !d.consumeLiteral("true") && !d.consumeLiteral("false") && !d.consumeNull() {
			return d.syntaxError("a value")
		}
	}
	return nil
}

// intern returns the entry of name b, checking hints[i] (the name at the
// same position in the previous event) before the map.
func (d *JSONDecoder) intern(hints *[]*nameEntry, i int, b []byte) *nameEntry {
	if i < len(*hints) {
		if ent := (*hints)[i]; ent.s == string(b) {
			return ent
		}
	}
	ent := d.names[string(b)]
	if ent == nil {
		ent = &nameEntry{s: string(b)}
		d.names[ent.s] = ent
	}
	if i < len(*hints) {
		(*hints)[i] = ent
	} else if i == len(*hints) {
		*hints = append(*hints, ent)
	}
	return ent
}

// internOne interns b through a one-entry cache.
func (d *JSONDecoder) internOne(last **nameEntry, b []byte) string {
	if *last != nil && (*last).s == string(b) {
		return (*last).s
	}
	ent := d.names[string(b)]
	if ent == nil {
		ent = &nameEntry{s: string(b)}
		d.names[ent.s] = ent
	}
	*last = ent
	return ent.s
}

// stringArena hands out strings carved from append-only chunks: a chunk's
// bytes are never written again once a string refers to them, so the
// strings are immutable as Go requires, and many strings cost one allocation.
type stringArena struct {
	buf []byte
}

const (
	arenaChunk  = 16 << 10
	arenaMaxStr = 1 << 10 // longer strings get their own allocation
)

func (a *stringArena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > arenaMaxStr {
		return string(b)
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, arenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], len(b))
}

// floatArena hands out vectors carved from append-only chunks, as
// stringArena does strings: a returned slice is never written again (its
// capacity is clipped), and many vectors cost one allocation.
type floatArena struct {
	buf     []float64
	scratch []float64
}

const floatArenaChunk = 4096

// start returns an empty slice to append a vector's values to.
func (a *floatArena) start() []float64 { return a.scratch[:0] }

// finish returns a stable copy of vs (the slice start returned, grown).
func (a *floatArena) finish(vs []float64) []float64 {
	a.scratch = vs[:0]
	if len(vs) > floatArenaChunk/4 {
		return slices.Clone(vs)
	}
	if cap(a.buf)-len(a.buf) < len(vs) {
		a.buf = make([]float64, 0, floatArenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, vs...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// unsafeString views b as a string for a call that does not keep it.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// parseRFC3339 parses YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) into UTC.
func parseRFC3339(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") ||
		b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	i := 19
	ns := 0
	if b[i] == '.' {
		i++
		n := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if n < 9 {
				ns = ns*10 + int(b[i]-'0')
				n++
			}
		}
		if n == 0 {
			return time.Time{}, false
		}
		for ; n < 9; n++ {
			ns *= 10
		}
	}
	if i >= len(b) {
		return time.Time{}, false
	}
	offset := 0
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return time.Time{}, false
		}
		oh, ok1 := digits(b[i+1 : i+3])
		om, ok2 := digits(b[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return time.Time{}, false
	}
	if i != len(b) || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, ns, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
