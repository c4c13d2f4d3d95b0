package serving

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigil-ml/vigil/schemas"
)

// The Open Inference Protocol's gRPC messages (grpc_predict_v2.proto:
// ModelInferRequest, ModelInferResponse), read from the protobuf wire
// format without generated code: Seldon Core v2 writes them to its model
// topics. Field numbers:
//
//	ModelInferRequest:  model_name 1, model_version 2, id 3, parameters 4, inputs 5, outputs 6, raw_input_contents 7
//	ModelInferResponse: model_name 1, model_version 2, id 3, parameters 4, outputs 5, raw_output_contents 6
//	Infer{Input,Output}Tensor: name 1, datatype 2, shape 3, parameters 4, contents 5
//	InferTensorContents: bool 1, int 2, int64 3, uint 4, uint64 5, fp32 6, fp64 7, bytes 8

func decodeRequestProto(b []byte) (inferMessage, error) { return decodeInferProto(b, 5, 7, "request") }
func decodeResponseProto(b []byte) (inferMessage, error) {
	return decodeInferProto(b, 5, 6, "response")
}

// stripSchemaRegistry removes the Confluent schema-registry framing
// (magic byte 0, a 4-byte schema id, the message-index list) that Seldon
// adds when a schema registry is configured. A protobuf message never
// starts with a 0 byte (field number 0 is invalid).
func stripSchemaRegistry(b []byte) ([]byte, error) {
	if len(b) == 0 || b[0] != 0 {
		return b, nil
	}
	if len(b) < 5 {
		return nil, invalidf("schema-registry framing: %d bytes", len(b))
	}
	b = b[5:]
	n, l := protowire.ConsumeVarint(b) // zig-zag count of message indexes
	if l < 0 {
		return nil, invalidf("schema-registry framing: bad message index")
	}
	b = b[l:]
	count := protowire.DecodeZigZag(n)
	for i := int64(0); i < count; i++ {
		_, l := protowire.ConsumeVarint(b)
		if l < 0 {
			return nil, invalidf("schema-registry framing: bad message index")
		}
		b = b[l:]
	}
	return b, nil
}

func decodeInferProto(b []byte, tensorsField, rawField protowire.Number, what string) (inferMessage, error) {
	b, err := stripSchemaRegistry(b)
	if err != nil {
		return inferMessage{}, err
	}
	var m inferMessage
	var raws [][]byte
	var pts []protoTensor
	err = eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			m.model = string(v)
		case 2:
			m.version = string(v)
		case 3:
			m.id = string(v)
		case tensorsField:
			pt, err := decodeProtoTensor(v)
			if err != nil {
				return err
			}
			pts = append(pts, pt)
		case rawField:
			raws = append(raws, v)
		}
		return nil
	})
	if err != nil {
		return inferMessage{}, invalidf("%s: protobuf: %v", what, err)
	}
	if len(raws) > 0 && len(raws) != len(pts) {
		return inferMessage{}, invalidf("%s: %d raw contents for %d tensors", what, len(raws), len(pts))
	}
	total := 0
	for i := range pts {
		var raw []byte
		if len(raws) > 0 {
			raw = raws[i]
		}
		t, err := pts[i].tensor(raw)
		if err != nil {
			return inferMessage{}, invalidf("%s: %v", what, err)
		}
		if total += len(t.values); total > maxTensorValues {
			return inferMessage{}, invalidf("%s: more than %d tensor values", what, maxTensorValues)
		}
		m.tensors = append(m.tensors, t)
	}
	if len(m.tensors) == 0 {
		return inferMessage{}, invalidf("%s: protobuf message without tensors", what)
	}
	return m, nil
}

type protoTensor struct {
	name, datatype string
	shape          []int64
	contents       []byte
	hasContents    bool
}

func decodeProtoTensor(b []byte) (protoTensor, error) {
	var pt protoTensor
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			pt.name = string(v)
		case num == 2 && typ == protowire.BytesType:
			pt.datatype = string(v)
		case num == 3 && typ == protowire.VarintType:
			pt.shape = append(pt.shape, int64(x))
		case num == 3 && typ == protowire.BytesType:
			for len(v) > 0 {
				d, l := protowire.ConsumeVarint(v)
				if l < 0 {
					return protowire.ParseError(l)
				}
				pt.shape = append(pt.shape, int64(d))
				v = v[l:]
			}
		case num == 5 && typ == protowire.BytesType:
			pt.contents, pt.hasContents = v, true
		}
		return nil
	})
	return pt, err
}

func (pt *protoTensor) tensor(raw []byte) (tensor, error) {
	t, n, err := newTensor(pt.name, pt.datatype, pt.shape)
	if err != nil {
		return t, err
	}
	if raw != nil {
		err = t.fromRaw(raw, int(n))
	} else {
		err = t.fromContents(pt.contents)
	}
	if err != nil {
		return t, err
	}
	if int64(len(t.values)) != n {
		return t, invalidf("tensor %q: %d values for shape %v", t.name, len(t.values), pt.shape)
	}
	return t, nil
}

// fromContents reads InferTensorContents: the field of the tensor's
// datatype, packed or not.
func (t *tensor) fromContents(b []byte) error {
	want := protowire.Number(0)
	switch t.datatype {
	case "BOOL":
		want = 1
	case "INT8", "INT16", "INT32":
		want = 2
	case "INT64":
		want = 3
	case "UINT8", "UINT16", "UINT32":
		want = 4
	case "UINT64":
		want = 5
	case "FP32":
		want = 6
	case "FP64":
		want = 7
	case "BYTES":
		want = 8
	default:
		return invalidf("tensor %q: %s has no contents field (send raw contents)", t.name, t.datatype)
	}
	add := func(x uint64) error {
		if len(t.values) >= maxTensorValues {
			return invalidf("tensor %q: more than %d values", t.name, maxTensorValues)
		}
		var v schemas.Value
		switch want {
		case 1:
			v = schemas.Value{Kind: schemas.Bool, Bool: x != 0}
		case 2:
			v = numValue(float64(int32(x)))
		case 3:
			v = numValue(float64(int64(x)))
		case 4:
			v = numValue(float64(uint32(x)))
		case 5:
			v = numValue(float64(x))
		case 6:
			v = numValue(float64(math.Float32frombits(uint32(x))))
		case 7:
			v = numValue(math.Float64frombits(x))
		}
		t.values = append(t.values, v)
		return nil
	}
	return eachField(b, func(n protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		if n != want {
			return nil
		}
		switch {
		case want == 8 && typ == protowire.BytesType:
			if len(t.values) >= maxTensorValues {
				return invalidf("tensor %q: more than %d values", t.name, maxTensorValues)
			}
			t.values = append(t.values, schemas.Value{Kind: schemas.String, Str: string(v)})
		case typ == protowire.BytesType: // packed
			for len(v) > 0 {
				var l int
				switch want {
				case 6:
					x, l = uint64(0), 4
					if len(v) >= 4 {
						x = uint64(binary.LittleEndian.Uint32(v))
					} else {
						l = -1
					}
				case 7:
					x, l = uint64(0), 8
					if len(v) >= 8 {
						x = binary.LittleEndian.Uint64(v)
					} else {
						l = -1
					}
				default:
					x, l = protowire.ConsumeVarint(v)
				}
				if l < 0 {
					return invalidf("tensor %q: truncated packed contents", t.name)
				}
				if err := add(x); err != nil {
					return err
				}
				v = v[l:]
			}
		default:
			return add(x)
		}
		return nil
	})
}

func numValue(f float64) schemas.Value {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return schemas.Value{} // not a number: missing
	}
	return schemas.Value{Kind: schemas.Number, Num: f}
}

// fromRaw reads raw contents: n little-endian values of the datatype's
// size; BYTES elements are each a 4-byte little-endian length and the bytes.
func (t *tensor) fromRaw(b []byte, n int) error {
	if t.datatype == "BYTES" {
		for len(b) > 0 {
			if len(b) < 4 || len(t.values) >= n {
				return invalidf("tensor %q: bad raw BYTES contents", t.name)
			}
			l := binary.LittleEndian.Uint32(b)
			if uint64(l) > uint64(len(b)-4) {
				return invalidf("tensor %q: bad raw BYTES contents", t.name)
			}
			t.values = append(t.values, schemas.Value{Kind: schemas.String, Str: string(b[4 : 4+l])})
			b = b[4+l:]
		}
		return nil
	}
	size := map[string]int{"BOOL": 1, "INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2, "FP16": 2, "INT32": 4, "UINT32": 4, "FP32": 4, "INT64": 8, "UINT64": 8, "FP64": 8}[t.datatype]
	if len(b) != n*size {
		return invalidf("tensor %q: %d raw bytes for %d %s values", t.name, len(b), n, t.datatype)
	}
	t.values = make([]schemas.Value, 0, n)
	le := binary.LittleEndian
	for i := 0; i < n; i++ {
		v := b[i*size : (i+1)*size]
		var val schemas.Value
		switch t.datatype {
		case "BOOL":
			val = schemas.Value{Kind: schemas.Bool, Bool: v[0] != 0}
		case "INT8":
			val = numValue(float64(int8(v[0])))
		case "UINT8":
			val = numValue(float64(v[0]))
		case "INT16":
			val = numValue(float64(int16(le.Uint16(v))))
		case "UINT16":
			val = numValue(float64(le.Uint16(v)))
		case "FP16":
			val = numValue(halfToFloat(le.Uint16(v)))
		case "INT32":
			val = numValue(float64(int32(le.Uint32(v))))
		case "UINT32":
			val = numValue(float64(le.Uint32(v)))
		case "FP32":
			val = numValue(float64(math.Float32frombits(le.Uint32(v))))
		case "INT64":
			val = numValue(float64(int64(le.Uint64(v))))
		case "UINT64":
			val = numValue(float64(le.Uint64(v)))
		case "FP64":
			val = numValue(math.Float64frombits(le.Uint64(v)))
		}
		t.values = append(t.values, val)
	}
	return nil
}

// halfToFloat converts an IEEE 754 binary16 value.
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}

// eachField calls f for every field of a message: v holds a length-delimited
// field's bytes, x a varint's or fixed value.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, l = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var y uint32
			y, l = protowire.ConsumeFixed32(b)
			x = uint64(y)
		case protowire.Fixed64Type:
			x, l = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		default:
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}
