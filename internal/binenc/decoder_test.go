package binenc

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestDecoder(t *testing.T) {
	var b []byte
	b = append(b, 7)
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendVarint(b, -5)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(2.5))
	b = binary.AppendUvarint(b, 2)
	b = append(b, "hi"...)
	d := NewDecoder(b)
	if got := d.Byte(); got != 7 {
		t.Errorf("Byte = %d", got)
	}
	if got := d.Uvarint(); got != 300 {
		t.Errorf("Uvarint = %d", got)
	}
	if got := d.Varint(); got != -5 {
		t.Errorf("Varint = %d", got)
	}
	if got := d.Float64(); got != 2.5 {
		t.Errorf("Float64 = %v", got)
	}
	if got := d.String(); got != "hi" {
		t.Errorf("String = %q", got)
	}
	if d.Err() != nil || d.Rest() != 0 {
		t.Fatalf("err %v, %d bytes left", d.Err(), d.Rest())
	}
}

func TestDecoderErrorsStick(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		read func(*Decoder)
		want string
	}{
		{"empty byte", nil, func(d *Decoder) { d.Byte() }, "truncated (at byte 0)"},
		{"short float", []byte{1, 2, 3}, func(d *Decoder) { d.Float64() }, "truncated (at byte 0)"},
		{"bad varint", []byte{0x80}, func(d *Decoder) { d.Uvarint() }, "truncated or overlong varint (at byte 0)"},
		{"padded varint", []byte{0x80, 0x00}, func(d *Decoder) { d.Uvarint() }, "varint not in its shortest form (at byte 0)"},
		{"padded signed varint", []byte{0x81, 0x80, 0x00}, func(d *Decoder) { d.Varint() }, "varint not in its shortest form (at byte 0)"},
		{"count too big", []byte{5, 1, 2}, func(d *Decoder) { d.Count(1) }, "5 items do not fit in 2 bytes (at byte 1)"},
		{"string too long", []byte{3, 'a'}, func(d *Decoder) { _ = d.String() }, "3 items do not fit in 1 bytes (at byte 1)"},
	}
	for _, tt := range tests {
		d := NewDecoder(tt.data)
		tt.read(&d)
		if d.Err() == nil || d.Err().Error() != tt.want {
			t.Errorf("%s: err %v, want %q", tt.name, d.Err(), tt.want)
		}
		if d.Byte() != 0 || d.Uvarint() != 0 || d.String() != "" || d.Err().Error() != tt.want {
			t.Errorf("%s: reads after an error are not zero or the error changed: %v", tt.name, d.Err())
		}
	}
}
