package serving

import (
	"encoding/binary"
	"math"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigil-ml/vigil/schemas"
)

// The protobuf tests encode grpc_predict_v2.proto messages field by field
// (the field numbers of kserve docs/predict-api/v2/grpc_predict_v2.proto).

func pbString(b []byte, n protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func pbBytes(b []byte, n protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func pbTensor(name, dt string, shape []int64, contents, params []byte) []byte {
	var t []byte
	t = pbString(t, 1, name)
	t = pbString(t, 2, dt)
	var packed []byte
	for _, d := range shape {
		packed = protowire.AppendVarint(packed, uint64(d))
	}
	t = pbBytes(t, 3, packed)
	if params != nil {
		t = pbBytes(t, 4, params)
	}
	if contents != nil {
		t = pbBytes(t, 5, contents)
	}
	return t
}

func TestDecodeProto(t *testing.T) {
	// inputs: x FP32 [2,2] packed fp32_contents; n INT64 [2] unpacked
	// int64_contents; s BYTES [2] bytes_contents.
	var fp32 []byte
	for _, f := range []float32{1.5, 2, -3, 0.25} {
		fp32 = binary.LittleEndian.AppendUint32(fp32, math.Float32bits(f))
	}
	x := pbBytes(nil, 6, fp32)
	var n []byte
	for _, v := range []int64{7, -1} {
		n = protowire.AppendTag(n, 3, protowire.VarintType)
		n = protowire.AppendVarint(n, uint64(v))
	}
	var s []byte
	s = pbString(s, 8, "eu")
	s = pbString(s, 8, "us")
	var req []byte
	req = pbString(req, 1, "fraud")
	req = pbString(req, 2, "3")
	req = pbString(req, 3, "req-1")
	req = pbBytes(req, 5, pbTensor("x", "FP32", []int64{2, 2}, x, pbString(nil, 1, "ignored-parameter")))
	req = pbBytes(req, 5, pbTensor("n", "INT64", []int64{2}, n, nil))
	req = pbBytes(req, 5, pbTensor("s", "BYTES", []int64{2}, s, nil))
	m, err := decodeRequestProto(req)
	if err != nil {
		t.Fatal(err)
	}
	nv := func(f float64) schemas.Value { return schemas.Value{Kind: schemas.Number, Num: f} }
	sv := func(s string) schemas.Value { return schemas.Value{Kind: schemas.String, Str: s} }
	want := inferMessage{id: "req-1", model: "fraud", version: "3", tensors: []tensor{
		{name: "x", datatype: "FP32", shape: []int{2, 2}, values: []schemas.Value{nv(1.5), nv(2), nv(-3), nv(0.25)}},
		{name: "n", datatype: "INT64", shape: []int{2}, values: []schemas.Value{nv(7), nv(-1)}},
		{name: "s", datatype: "BYTES", shape: []int{2}, values: []schemas.Value{sv("eu"), sv("us")}},
	}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v\nwant %+v", m, want)
	}

	// A response with raw_output_contents (FP16 and BYTES), framed by a
	// schema registry (magic 0, id 1, one message index 0).
	var resp []byte
	resp = pbString(resp, 1, "fraud")
	resp = pbString(resp, 3, "req-1")
	resp = pbBytes(resp, 5, pbTensor("p", "FP16", []int64{2, 1}, nil, nil))
	resp = pbBytes(resp, 5, pbTensor("l", "BYTES", []int64{2}, nil, nil))
	resp = pbBytes(resp, 6, []byte{0x00, 0x3c, 0x00, 0x38}) // 1.0, 0.5 in binary16
	rawBytes := binary.LittleEndian.AppendUint32(nil, 3)
	rawBytes = append(rawBytes, "yes"...)
	rawBytes = binary.LittleEndian.AppendUint32(rawBytes, 0)
	resp = pbBytes(resp, 6, rawBytes)
	framed := append([]byte{0, 0, 0, 0, 1, 0}, resp...)
	m, err = decodeResponseProto(framed)
	if err != nil {
		t.Fatal(err)
	}
	want = inferMessage{id: "req-1", model: "fraud", tensors: []tensor{
		{name: "p", datatype: "FP16", shape: []int{2, 1}, values: []schemas.Value{nv(1), nv(0.5)}},
		{name: "l", datatype: "BYTES", shape: []int{2}, values: []schemas.Value{sv("yes"), sv("")}},
	}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v\nwant %+v", m, want)
	}

	for name, b := range map[string][]byte{
		"truncated":        req[:len(req)-3],
		"count mismatch":   pbBytes(nil, 5, pbTensor("x", "FP32", []int64{3}, x, nil)),
		"unknown datatype": pbBytes(nil, 5, pbTensor("x", "FP8", []int64{1}, nil, nil)),
		"empty":            {},
	} {
		if _, err := decodeRequestProto(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
