package wire

import (
	"fmt"

	flatbuffers "github.com/google/flatbuffers/go"
)

// The arrow IPC reader trusts the flatbuffer of a schema message: it sizes
// slices by vector lengths read from it and recurses into child fields, so
// a corrupt length or an offset cycle would exhaust memory or the stack,
// which no recover can catch. checkSchemaMessage walks the few parts of the
// flatbuffer that the reader uses that way: it checks that those vectors fit
// in the message and rejects nested fields beyond the one level of the
// layout of schemas/arrow.go (a vector feature's fixed_size_list has one
// child without children). Out-of-range reads panic, and the
// panic becomes an error.

// Flatbuffer vtable slots (4 + 2*field index) and enum values of the Arrow
// IPC format (format/Message.fbs, format/Schema.fbs).
const (
	fbMessageHeaderType  = 6
	fbMessageHeader      = 8
	fbMessageCustomMeta  = 12
	fbSchemaFields       = 6
	fbSchemaCustomMeta   = 8
	fbSchemaFeatures     = 10
	fbFieldChildren      = 14
	fbFieldCustomMeta    = 16
	fbHeaderSchema       = 1
	fbUOffsetSize        = 4
	fbMaxFieldsPerSchema = 1 << 16
)

func checkSchemaMessage(meta []byte) error {
	root := flatbuffers.Table{Bytes: meta, Pos: flatbuffers.GetUOffsetT(meta)}
	if err := checkVector(&root, fbMessageCustomMeta, fbUOffsetSize); err != nil {
		return err
	}
	o := flatbuffers.UOffsetT(root.Offset(fbMessageHeaderType))
	if o == 0 || root.GetUint8(root.Pos+o) != fbHeaderSchema {
		return nil // not a schema: the reader rejects it by type
	}
	var schema flatbuffers.Table
	if o := flatbuffers.UOffsetT(root.Offset(fbMessageHeader)); o != 0 {
		root.Union(&schema, o)
	} else {
		return fmt.Errorf("schema message without a schema")
	}
	for _, v := range [...]struct {
		slot flatbuffers.VOffsetT
		elem int
	}{{fbSchemaFields, fbUOffsetSize}, {fbSchemaCustomMeta, fbUOffsetSize}, {fbSchemaFeatures, 8}} {
		if err := checkVector(&schema, v.slot, v.elem); err != nil {
			return err
		}
	}
	o = flatbuffers.UOffsetT(schema.Offset(fbSchemaFields))
	if o == 0 {
		return nil
	}
	n := schema.VectorLen(o)
	if n > fbMaxFieldsPerSchema {
		return fmt.Errorf("schema with %d fields", n)
	}
	start := schema.Vector(o)
	for i := 0; i < n; i++ {
		field := flatbuffers.Table{Bytes: meta, Pos: schema.Indirect(start + flatbuffers.UOffsetT(i)*fbUOffsetSize)}
		if err := checkVector(&field, fbFieldCustomMeta, fbUOffsetSize); err != nil {
			return err
		}
		if err := checkChildren(meta, &field, i); err != nil {
			return err
		}
	}
	return nil
}

// checkVector checks that the vector in slot, if any, fits in the buffer.
func checkVector(t *flatbuffers.Table, slot flatbuffers.VOffsetT, elem int) error {
	o := flatbuffers.UOffsetT(t.Offset(slot))
	if o == 0 {
		return nil
	}
	n := t.VectorLen(o)
	if start := int(t.Vector(o)); n < 0 || n > (len(t.Bytes)-start)/elem {
		return fmt.Errorf("flatbuffer vector of %d elements past the end of the message", n)
	}
	return nil
}

// checkChildren allows field i at most one child field, itself without
// children (the item field of a fixed_size_list).
func checkChildren(meta []byte, field *flatbuffers.Table, i int) error {
	if err := checkVector(field, fbFieldChildren, fbUOffsetSize); err != nil {
		return err
	}
	o := flatbuffers.UOffsetT(field.Offset(fbFieldChildren))
	if o == 0 {
		return nil
	}
	switch n := field.VectorLen(o); n {
	case 0:
		return nil
	case 1:
	default:
		return fmt.Errorf("field %d: nested type with %d children", i, n)
	}
	child := flatbuffers.Table{Bytes: meta, Pos: field.Indirect(field.Vector(o))}
	if err := checkVector(&child, fbFieldCustomMeta, fbUOffsetSize); err != nil {
		return err
	}
	if err := checkVector(&child, fbFieldChildren, fbUOffsetSize); err != nil {
		return err
	}
	if o := flatbuffers.UOffsetT(child.Offset(fbFieldChildren)); o != 0 && child.VectorLen(o) != 0 {
		return fmt.Errorf("field %d: nested type more than one level deep", i)
	}
	return nil
}
