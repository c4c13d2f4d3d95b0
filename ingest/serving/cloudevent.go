package serving

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The CloudEvents 1.0 HTTP protocol binding: content modes, by Content-Type.
const (
	ContentTypeStructured = "application/cloudevents+json"
	ContentTypeBatch      = "application/cloudevents-batch+json"
)

// KServe's InferenceLogger event types and extensions (kserve pkg/logger).
const (
	TypeInferenceRequest  = "org.kubeflow.serving.inference.request"
	TypeInferenceResponse = "org.kubeflow.serving.inference.response"

	AttrInferenceService = "inferenceservicename"
	AttrNamespace        = "namespace"
	AttrComponent        = "component"
	AttrEndpoint         = "endpoint"
)

// cloudEvent is one decoded CloudEvent: its context attributes (extensions
// included, by lower-case name, values as strings) and its data.
type cloudEvent struct {
	attrs map[string]string
	data  []byte
}

func (e *cloudEvent) id() string     { return e.attrs["id"] }
func (e *cloudEvent) typ() string    { return e.attrs["type"] }
func (e *cloudEvent) source() string { return e.attrs["source"] }

// decodeHTTPCloudEvents decodes the CloudEvents of one HTTP message: one in
// binary or structured mode, any number in batched mode.
func decodeHTTPCloudEvents(h http.Header, body []byte) ([]cloudEvent, error) {
	ct := h.Get("Content-Type")
	mt := ""
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, invalidf("cloudevent: bad Content-Type %q: %v", ct, err)
		}
	}
	switch {
	case mt == ContentTypeStructured:
		ev, err := decodeStructured(body)
		if err != nil {
			return nil, err
		}
		return []cloudEvent{ev}, nil
	case mt == ContentTypeBatch:
		return decodeBatch(body)
	case strings.HasPrefix(mt, "application/cloudevents"):
		return nil, invalidf("cloudevent: event format %q is not supported (only JSON)", mt)
	}
	ev, err := decodeBinary(h, body)
	if err != nil {
		return nil, err
	}
	return []cloudEvent{ev}, nil
}

// decodeBinary reads a binary-mode event: every ce-* header is an attribute
// (percent-decoded), Content-Type is datacontenttype, the body is the data.
func decodeBinary(h http.Header, body []byte) (cloudEvent, error) {
	ev := cloudEvent{attrs: make(map[string]string, 12), data: body}
	for k, vs := range h {
		if len(k) <= 3 || !strings.EqualFold(k[:3], "ce-") || len(vs) == 0 {
			continue
		}
		name := strings.ToLower(k[3:])
		// The binding says a header value is percent-encoded (space, '"', '%'
		// and what is not printable ASCII); '+' stays '+'.
		v, err := url.PathUnescape(vs[0])
		if err != nil {
			return cloudEvent{}, invalidf("cloudevent: header %s: bad percent-encoding", k)
		}
		ev.attrs[name] = v
	}
	if ct := h.Get("Content-Type"); ct != "" {
		ev.attrs["datacontenttype"] = ct
	}
	if _, ok := ev.attrs["specversion"]; !ok {
		return cloudEvent{}, invalidf("cloudevent: no ce-specversion header and Content-Type is not %s: not a CloudEvent", ContentTypeStructured)
	}
	return ev, ev.check()
}

// check applies the spec's rules common to every mode: version 1.0 and the
// required attributes.
func (e *cloudEvent) check() error {
	if v := e.attrs["specversion"]; v != "1.0" {
		return invalidf("cloudevent: specversion %q is not supported (only 1.0)", v)
	}
	for _, a := range [...]string{"id", "source", "type"} {
		if e.attrs[a] == "" {
			return invalidf("cloudevent: required attribute %q is missing or empty", a)
		}
	}
	return nil
}

func decodeStructured(body []byte) (cloudEvent, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return cloudEvent{}, invalidf("cloudevent: structured body is not a JSON object: %v", err)
	}
	return structuredFromMap(raw)
}

func decodeBatch(body []byte) ([]cloudEvent, error) {
	var raws []map[string]json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, invalidf("cloudevent: batch body is not a JSON array of objects: %v", err)
	}
	evs := make([]cloudEvent, 0, len(raws))
	for i, raw := range raws {
		ev, err := structuredFromMap(raw)
		if err != nil {
			return nil, fmt.Errorf("batch event %d: %w", i, err)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// structuredFromMap reads the JSON event format: attributes are members of
// the object; data is a JSON value when datacontenttype is JSON (or absent),
// else a string; data_base64 carries binary data.
func structuredFromMap(raw map[string]json.RawMessage) (cloudEvent, error) {
	ev := cloudEvent{attrs: make(map[string]string, len(raw))}
	var data, data64 json.RawMessage
	for k, v := range raw {
		switch k {
		case "data":
			data = v
			continue
		case "data_base64":
			data64 = v
			continue
		}
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			continue // the JSON format: null is an unset attribute
		}
		s, err := attrString(v)
		if err != nil {
			return cloudEvent{}, invalidf("cloudevent: attribute %q: %v", k, err)
		}
		ev.attrs[strings.ToLower(k)] = s
	}
	if data != nil && data64 != nil {
		return cloudEvent{}, invalidf("cloudevent: both data and data_base64 are set")
	}
	switch {
	case data64 != nil:
		var s string
		if err := json.Unmarshal(data64, &s); err != nil {
			return cloudEvent{}, invalidf("cloudevent: data_base64 is not a string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return cloudEvent{}, invalidf("cloudevent: data_base64: %v", err)
		}
		ev.data = b
	case data != nil && !bytes.Equal(data, []byte("null")):
		if isJSONContentType(ev.attrs["datacontenttype"]) {
			ev.data = data
		} else {
			var s string
			if err := json.Unmarshal(data, &s); err != nil {
				return cloudEvent{}, invalidf("cloudevent: data of content type %q is not a string", ev.attrs["datacontenttype"])
			}
			ev.data = []byte(s)
		}
	}
	return ev, ev.check()
}

// attrString renders an attribute's JSON value (string, number, boolean) as
// the string the type system's canonical form gives it.
func attrString(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", fmt.Errorf("empty")
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", err
		}
		return s, nil
	case 't', 'f':
		b, err := strconv.ParseBool(string(v))
		if err != nil {
			return "", fmt.Errorf("not a string, number or boolean")
		}
		return strconv.FormatBool(b), nil
	case 'n':
		return "", fmt.Errorf("null")
	case '{', '[':
		return "", fmt.Errorf("an attribute must be a string, number or boolean")
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return "", fmt.Errorf("not a string, number or boolean")
	}
	return n.String(), nil
}

// isJSONContentType: absent, application/json, text/json or any +json type.
func isJSONContentType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}
