package serving

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/vigil-ml/vigil/schemas"
)

// tensor is one named input or output, flattened row-major: row i of a
// tensor of shape [n, d1, d2...] is values[i*w:(i+1)*w], w = d1*d2*...
// V1 payloads are read into the same form ("instances", "predictions").
type tensor struct {
	name     string
	datatype string // OIP datatype: BOOL, INT8..INT64, UINT8..UINT64, FP16, FP32, FP64, BYTES
	shape    []int
	values   []schemas.Value
	columns  []string // from the tensor's parameters.columns, if any
}

// rows is the tensor's first dimension; width the number of values per row.
func (t *tensor) rows() int { return t.shape[0] }
func (t *tensor) width() int {
	w := 1
	for _, d := range t.shape[1:] {
		w *= d
	}
	return w
}
func (t *tensor) row(i int) []schemas.Value { w := t.width(); return t.values[i*w : (i+1)*w] }

func (t *tensor) isFloat() bool {
	return t.datatype == "FP16" || t.datatype == "FP32" || t.datatype == "FP64"
}
func (t *tensor) isNumeric() bool {
	return t.isFloat() || (t.datatype != "BOOL" && t.datatype != "BYTES")
}

// inferMessage is one half of an inference: a request's inputs or a
// response's outputs, with the ids the payload carries.
type inferMessage struct {
	id, model, version string
	tensors            []tensor
	v1                 bool // KServe V1 (instances, predictions)
}

func (m *inferMessage) tensor(name string) *tensor {
	for i := range m.tensors {
		if m.tensors[i].name == name {
			return &m.tensors[i]
		}
	}
	return nil
}

// maxTensorValues bounds the values of one payload (a shape can claim more
// than the body holds; the body's size bounds the rest).
const maxTensorValues = 1 << 24

// oipTensor is an OIP v2 JSON tensor.
type oipTensor struct {
	Name       string                     `json:"name"`
	Shape      []int64                    `json:"shape"`
	Datatype   string                     `json:"datatype"`
	Parameters map[string]json.RawMessage `json:"parameters"`
	Data       json.RawMessage            `json:"data"`
}

// oipMessage is an OIP v2 inference request or response (JSON), or a KServe
// V1 one (instances / predictions).
type oipMessage struct {
	ID           string          `json:"id"`
	ModelName    string          `json:"model_name"`
	ModelVersion string          `json:"model_version"`
	Inputs       []oipTensor     `json:"inputs"`
	Outputs      []oipTensor     `json:"outputs"`
	Instances    json.RawMessage `json:"instances"`
	Predictions  json.RawMessage `json:"predictions"`
}

// decodeRequestJSON reads an inference request: OIP v2 (inputs) or V1
// (instances).
func decodeRequestJSON(body []byte) (inferMessage, error) {
	m, err := decodeOIPJSON(body)
	if err != nil {
		return inferMessage{}, fmt.Errorf("request: %w", err)
	}
	switch {
	case m.Inputs != nil:
		return v2Message(&m, m.Inputs, "request")
	case m.Instances != nil:
		t, err := decodeV1(m.Instances, "instances")
		if err != nil {
			return inferMessage{}, fmt.Errorf("request: %w", err)
		}
		return inferMessage{id: m.ID, tensors: t, v1: true}, nil
	}
	return inferMessage{}, invalidf("request: neither \"inputs\" (Open Inference Protocol v2) nor \"instances\" (V1)")
}

// decodeResponseJSON reads an inference response: OIP v2 (outputs) or V1
// (predictions).
func decodeResponseJSON(body []byte) (inferMessage, error) {
	m, err := decodeOIPJSON(body)
	if err != nil {
		return inferMessage{}, fmt.Errorf("response: %w", err)
	}
	switch {
	case m.Outputs != nil:
		return v2Message(&m, m.Outputs, "response")
	case m.Predictions != nil:
		t, err := decodeV1(m.Predictions, "predictions")
		if err != nil {
			return inferMessage{}, fmt.Errorf("response: %w", err)
		}
		return inferMessage{id: m.ID, tensors: t, v1: true}, nil
	}
	return inferMessage{}, invalidf("response: neither \"outputs\" (Open Inference Protocol v2) nor \"predictions\" (V1)")
}

func decodeOIPJSON(body []byte) (oipMessage, error) {
	var m oipMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return m, invalidf("not a JSON inference payload: %v", err)
	}
	return m, nil
}

func v2Message(m *oipMessage, ts []oipTensor, what string) (inferMessage, error) {
	out := inferMessage{id: m.ID, model: m.ModelName, version: m.ModelVersion, tensors: make([]tensor, 0, len(ts))}
	total := 0
	for i := range ts {
		t, err := decodeOIPTensor(&ts[i])
		if err != nil {
			return inferMessage{}, fmt.Errorf("%s: %w", what, err)
		}
		if total += len(t.values); total > maxTensorValues {
			return inferMessage{}, invalidf("%s: more than %d tensor values", what, maxTensorValues)
		}
		out.tensors = append(out.tensors, t)
	}
	return out, nil
}

// newTensor checks a tensor's header, the same in JSON and protobuf: a name,
// an OIP datatype and a shape of at most maxTensorValues values; n is the
// number of values the shape holds.
func newTensor(name, datatype string, shape []int64) (t tensor, n int64, err error) {
	t = tensor{name: name, datatype: datatype}
	if t.name == "" {
		return t, 0, invalidf("tensor without a name")
	}
	if !knownDatatype(t.datatype) {
		return t, 0, invalidf("tensor %q: datatype %q is not an OIP datatype", t.name, t.datatype)
	}
	if len(shape) == 0 {
		return t, 0, invalidf("tensor %q: no shape (want [rows, ...])", t.name)
	}
	n = 1
	t.shape = make([]int, len(shape))
	for i, d := range shape {
		if d < 0 || (d > 0 && n > maxTensorValues/d) {
			return t, 0, invalidf("tensor %q: bad shape %v", t.name, shape)
		}
		n *= d
		t.shape[i] = int(d)
	}
	return t, n, nil
}

func decodeOIPTensor(jt *oipTensor) (tensor, error) {
	t, n, err := newTensor(jt.Name, jt.Datatype, jt.Shape)
	if err != nil {
		return t, err
	}
	if raw, ok := jt.Parameters["binary_data_size"]; ok && raw != nil {
		return t, invalidf("tensor %q: the binary tensor data extension is not supported (send data as JSON)", t.name)
	}
	if raw, ok := jt.Parameters["columns"]; ok {
		if err := json.Unmarshal(raw, &t.columns); err != nil {
			return t, invalidf("tensor %q: parameters.columns is not a list of strings", t.name)
		}
	}
	t.values = make([]schemas.Value, 0, n)
	if err := flattenData(jt.Data, &t); err != nil {
		return t, err
	}
	if int64(len(t.values)) != n {
		return t, invalidf("tensor %q: %d values for shape %v", t.name, len(t.values), jt.Shape)
	}
	return t, nil
}

func knownDatatype(dt string) bool {
	switch dt {
	case "BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64", "BYTES":
		return true
	}
	return false
}

// flattenData appends the values of data (flat or nested JSON arrays) in
// row-major order, checking each against the tensor's datatype.
func flattenData(data json.RawMessage, t *tensor) error {
	if data == nil {
		return invalidf("tensor %q: no data", t.name)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return invalidf("tensor %q: bad data: %v", t.name, err)
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '[':
				depth++
			case ']':
				depth--
			default:
				return invalidf("tensor %q: data holds an object", t.name)
			}
		default:
			if len(t.values) >= maxTensorValues {
				return invalidf("tensor %q: more than %d values", t.name, maxTensorValues)
			}
			val, err := tensorValue(t, tok)
			if err != nil {
				return err
			}
			t.values = append(t.values, val)
		}
		if depth == 0 {
			if _, err := dec.Token(); err == nil {
				return invalidf("tensor %q: data has trailing values", t.name)
			}
			return nil
		}
	}
}

func tensorValue(t *tensor, tok json.Token) (schemas.Value, error) {
	switch t.datatype {
	case "BOOL":
		if b, ok := tok.(bool); ok {
			return schemas.Value{Kind: schemas.Bool, Bool: b}, nil
		}
	case "BYTES":
		if s, ok := tok.(string); ok {
			return schemas.Value{Kind: schemas.String, Str: s}, nil
		}
	default:
		if n, ok := tok.(json.Number); ok {
			f, err := strconv.ParseFloat(string(n), 64)
			if err != nil || math.IsInf(f, 0) {
				return schemas.Value{}, invalidf("tensor %q: number %s out of range", t.name, n)
			}
			if !t.isFloat() && f != math.Trunc(f) {
				return schemas.Value{}, invalidf("tensor %q: %s is not an integer (datatype %s)", t.name, n, t.datatype)
			}
			return schemas.Value{Kind: schemas.Number, Num: f}, nil
		}
	}
	return schemas.Value{}, invalidf("tensor %q: value %v does not fit datatype %s", t.name, tok, t.datatype)
}

// decodeV1 reads V1 instances or predictions into tensors: a list of lists
// (of numbers, strings, booleans) is one tensor [n, k] named name; a list of
// scalars one tensor [n]; a list of objects one tensor [n] per key (keys in
// sorted order; a key absent from a row is null there).
func decodeV1(raw json.RawMessage, name string) ([]tensor, error) {
	var rows []json.RawMessage
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, invalidf("%s is not a list: %v", name, err)
	}
	if len(rows) == 0 {
		return nil, invalidf("%s is empty", name)
	}
	if len(rows) > maxTensorValues {
		return nil, invalidf("%s: more than %d rows", name, maxTensorValues)
	}
	switch firstByte(rows[0]) {
	case '{':
		return v1Objects(rows, name)
	case '[':
		return v1Lists(rows, name)
	}
	t := tensor{name: name, shape: []int{len(rows)}, values: make([]schemas.Value, 0, len(rows))}
	for i, r := range rows {
		v, kind, err := v1Scalar(r)
		if err != nil {
			return nil, invalidf("%s[%d]: %v", name, i, err)
		}
		if err := t.addV1(v, kind); err != nil {
			return nil, invalidf("%s[%d]: %v", name, i, err)
		}
	}
	return []tensor{t}, nil
}

func v1Lists(rows []json.RawMessage, name string) ([]tensor, error) {
	t := tensor{name: name}
	k := -1
	for i, r := range rows {
		var cols []json.RawMessage
		if err := json.Unmarshal(r, &cols); err != nil {
			return nil, invalidf("%s[%d] is not a list of values: %v", name, i, err)
		}
		if k < 0 {
			k = len(cols)
			if k == 0 || len(rows)*k > maxTensorValues {
				return nil, invalidf("%s[0]: %d values per row", name, k)
			}
			t.values = make([]schemas.Value, 0, len(rows)*k)
		} else if len(cols) != k {
			return nil, invalidf("%s[%d] has %d values, %s[0] has %d", name, i, len(cols), name, k)
		}
		for j, c := range cols {
			v, kind, err := v1Scalar(c)
			if err != nil {
				return nil, invalidf("%s[%d][%d]: %v", name, i, j, err)
			}
			if err := t.addV1(v, kind); err != nil {
				return nil, invalidf("%s[%d][%d]: %v", name, i, j, err)
			}
		}
	}
	t.shape = []int{len(rows), k}
	return []tensor{t}, nil
}

func v1Objects(rows []json.RawMessage, name string) ([]tensor, error) {
	objs := make([]map[string]json.RawMessage, len(rows))
	var keys []string
	for i, r := range rows {
		if err := json.Unmarshal(r, &objs[i]); err != nil || objs[i] == nil {
			return nil, invalidf("%s[%d] is not an object", name, i)
		}
		for k := range objs[i] {
			if !slices.Contains(keys, k) {
				if len(keys) >= 4096 {
					return nil, invalidf("%s: more than 4096 keys", name)
				}
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	ts := make([]tensor, len(keys))
	for j, k := range keys {
		t := tensor{name: k, shape: []int{len(rows)}, values: make([]schemas.Value, 0, len(rows))}
		for i := range objs {
			c, ok := objs[i][k]
			if !ok {
				t.values = append(t.values, schemas.Value{})
				continue
			}
			v, kind, err := v1Scalar(c)
			if err != nil {
				return nil, invalidf("%s[%d].%s: %v", name, i, k, err)
			}
			if err := t.addV1(v, kind); err != nil {
				return nil, invalidf("%s[%d].%s: %v", name, i, k, err)
			}
		}
		if t.datatype == "" {
			t.datatype = "FP64" // all null
		}
		ts[j] = t
	}
	return ts, nil
}

// addV1 appends a V1 value and widens the tensor's datatype: integers give
// INT64, any number with a fraction or exponent FP64, strings BYTES,
// booleans BOOL; mixing strings, booleans and numbers is an error.
func (t *tensor) addV1(v schemas.Value, dt string) error {
	switch {
	case dt == "":
	case t.datatype == "" || t.datatype == dt:
		t.datatype = dt
	case (t.datatype == "INT64" && dt == "FP64") || (t.datatype == "FP64" && dt == "INT64"):
		t.datatype = "FP64"
	default:
		return fmt.Errorf("a %s among %s values", kindName(dt), kindName(t.datatype))
	}
	t.values = append(t.values, v)
	return nil
}

func kindName(dt string) string {
	switch dt {
	case "BYTES":
		return "string"
	case "BOOL":
		return "boolean"
	}
	return "number"
}

// v1Scalar reads one V1 value; its datatype is "" for null.
func v1Scalar(r json.RawMessage) (schemas.Value, string, error) {
	r = bytes.TrimSpace(r)
	switch firstByte(r) {
	case '"':
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return schemas.Value{}, "", err
		}
		return schemas.Value{Kind: schemas.String, Str: s}, "BYTES", nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(r, &b); err != nil {
			return schemas.Value{}, "", err
		}
		return schemas.Value{Kind: schemas.Bool, Bool: b}, "BOOL", nil
	case 'n':
		if string(r) != "null" {
			return schemas.Value{}, "", fmt.Errorf("bad value %q", r)
		}
		return schemas.Value{}, "", nil
	case '[', '{':
		return schemas.Value{}, "", fmt.Errorf("nested lists or objects are not supported")
	}
	f, err := strconv.ParseFloat(string(r), 64)
	if err != nil || math.IsInf(f, 0) || !json.Valid(r) {
		return schemas.Value{}, "", fmt.Errorf("bad number %q", r)
	}
	dt := "INT64"
	if bytes.ContainsAny(r, ".eE") {
		dt = "FP64"
	}
	return schemas.Value{Kind: schemas.Number, Num: f}, dt, nil
}

func firstByte(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}
