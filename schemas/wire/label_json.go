package wire

import (
	"fmt"

	"github.com/vigil-ml/vigil/schemas"
)

// LabelJSONDecoder decodes JSON labels (one per Kafka message on the labels
// topic) as specified by schemas/label_event.v1.schema.json.
//
// It shares JSONDecoder's scanner, so it is as strict (RFC 8259, UTF-8,
// duplicate keys, no trailing data) and, in steady state, allocates only the
// event id. Unknown top-level keys are skipped after checking they are
// well-formed JSON.
//
// The zero value is ready to use. Reuse one decoder across messages; it is
// not safe for concurrent use.
type LabelJSONDecoder struct {
	d     JSONDecoder
	class *nameEntry // last class, checked before the intern table
}

// Top-level keys of a label, as bits, to reject a key given twice.
const (
	labelKeyEventID = 1 << iota
	labelKeyModel
	labelKeyLabel
	labelKeyTime
	labelKeySchemaVersion
)

// Decode decodes one JSON label from data into l and validates it
// (schemas.Label.Validate). A JSON bool label becomes the class "true" or
// "false". The strings put in l never alias data or the decoder's buffers. On
// error, l holds a partial label.
//
// Every error wraps ErrMalformed and says which field is wrong, for example
// `malformed event: "label": null is not a label (want a string, number or bool)`.
func (ld *LabelJSONDecoder) Decode(data []byte, l *schemas.Label) error {
	d := &ld.d
	if d.names == nil || len(d.names) > maxInternedNames {
		d.names = make(map[string]*nameEntry, 64)
		d.model, ld.class = nil, nil
	}
	*l = schemas.Label{}
	d.data, d.pos = data, 0
	err := ld.decodeLabel(l)
	d.data = nil
	if err != nil {
		return err
	}
	if err := l.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

func (ld *LabelJSONDecoder) decodeLabel(l *schemas.Label) error {
	d := &ld.d
	return d.decodeTopObject("label", func(key []byte) (k jsonKey, err error) {
		switch string(key) {
		case "event_id":
			k = jsonKey{labelKeyEventID, "event_id"}
			var b []byte
			if b, err = d.readString(); err == nil {
				l.EventID = d.arena.str(b)
			}
		case "model":
			k = jsonKey{labelKeyModel, "model"}
			var b []byte
			if b, err = d.readString(); err == nil {
				l.Model = d.internOne(&d.model, b)
			}
		case "label":
			k = jsonKey{labelKeyLabel, "label"}
			err = ld.readLabelValue(l)
		case "label_time":
			k = jsonKey{labelKeyTime, "label_time"}
			l.Time, err = d.readEventTime()
		case "schema_version":
			k = jsonKey{labelKeySchemaVersion, "schema_version"}
			err = d.readSchemaVersion()
		default:
			err = d.skipValue(0)
		}
		return k, err
	}, labelRequired[:])
}

// labelRequired are the keys every label has.
var labelRequired = [...]jsonKey{{labelKeyEventID, "event_id"}, {labelKeyModel, "model"}, {labelKeyLabel, "label"}, {labelKeyTime, "label_time"}}

// readLabelValue reads a class (string or bool) or a value (number).
func (ld *LabelJSONDecoder) readLabelValue(l *schemas.Label) error {
	d := &ld.d
	if d.pos >= len(d.data) {
		return d.syntaxError("a value")
	}
	switch c := d.data[d.pos]; {
	case c == '"':
		b, err := d.readString()
		if err != nil {
			return err
		}
		l.Class, l.HasClass = d.internOne(&ld.class, b), true
	case c == '-' || c >= '0' && c <= '9':
		_, v, err := d.readNumber()
		if err != nil {
			return err
		}
		l.Value, l.HasValue = v, true
	case c == 't' || c == 'f':
		v, err := d.readBool()
		if err != nil {
			return d.syntaxError("a value")
		}
		l.Class, l.HasClass = "false", true
		if v {
			l.Class = "true"
		}
	case c == 'n':
		if !d.consumeNull() {
			return d.syntaxError("a value")
		}
		return badValue("null is not a label (want a string, number or bool)")
	case c == '[' || c == '{':
		return badValue("arrays and objects are not labels (want a string, number or bool)")
	default:
		return d.syntaxError("a value")
	}
	return nil
}

// AppendLabelJSON appends the JSON form of l (schemas/label_event.v1.schema.json)
// to dst and returns the extended buffer. It does not allocate beyond growing
// dst.
//
// For a valid label whose strings are valid UTF-8, LabelJSONDecoder.Decode
// gives back an equal label, except that the label time comes back in UTC
// (written as AppendJSON writes event times). A class is always written as a
// JSON string, so the class "true" comes back as the class "true".
func AppendLabelJSON(dst []byte, l *schemas.Label) []byte {
	dst = append(dst, `{"event_id":`...)
	dst = appendString(dst, l.EventID)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, l.Model)
	dst = append(dst, `,"label":`...)
	switch {
	case l.HasClass:
		dst = appendString(dst, l.Class)
	case l.HasValue:
		dst = appendFloat(dst, l.Value)
	default:
		dst = append(dst, "null"...) // invalid: the decoder says so
	}
	dst = append(dst, `,"label_time":`...)
	dst = appendTime(dst, l.Time)
	return append(dst, '}')
}
