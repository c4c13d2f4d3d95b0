package wire

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/vigil-ml/vigil/schemas"
)

// FuzzLabelJSON: Decode never panics; an accepted label is valid, goes into
// a label batch, and re-encodes to JSON that decodes to the same label.
func FuzzLabelJSON(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		paths, _ := filepath.Glob(filepath.Join("..", "testdata", "labels", dir, "*.json"))
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	var d LabelJSONDecoder
	f.Fuzz(func(t *testing.T, data []byte) {
		var l schemas.Label
		if err := d.Decode(data, &l); err != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("accepted an invalid label: %v", err)
		}
		b := NewLabelBatchBuilder(memory.DefaultAllocator)
		if err := b.Append(&l); err != nil {
			t.Fatalf("label batch rejects a decoded label: %v", err)
		}
		b.NewRecord().Release()
		out := AppendLabelJSON(nil, &l)
		var again schemas.Label
		if err := d.Decode(out, &again); err != nil {
			t.Fatalf("re-encoded label %s: %v", out, err)
		}
		if !reflect.DeepEqual(l, again) {
			t.Fatalf("round trip through %s\ngot  %+v\nwant %+v", out, again, l)
		}
	})
}

// FuzzLabelArrow: DecodeLabelArrow never panics nor allocates beyond its
// budget (the checked allocator would show a leak, the budget a huge
// allocation); every label it returns is valid, and they re-encode to a batch
// that decodes to the same labels.
func FuzzLabelArrow(f *testing.F) {
	for _, c := range compressions {
		f.Add(encodeLabels(f, c, testLabels("fraud", 3)))
		f.Add(encodeLabels(f, c, testLabels("churn", 1)))
	}
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "labels", "valid", "*.json"))
	var d LabelJSONDecoder
	var ls []schemas.Label
	for _, p := range paths {
		var l schemas.Label
		if b, err := os.ReadFile(p); err == nil && d.Decode(b, &l) == nil {
			ls = append(ls, l)
			f.Add(encodeLabels(f, CompressionNone, ls[len(ls)-1:]))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		defer mem.AssertSize(t, 0)
		labels, err := DecodeLabelArrow(data, mem)
		if err != nil && labels == nil {
			return
		}
		for i := range labels {
			if err := labels[i].Validate(); err != nil {
				t.Fatalf("returned label %d is invalid: %v", i, err)
			}
		}
		if len(labels) == 0 {
			return
		}
		again, err := DecodeLabelArrow(encodeLabels(t, CompressionNone, labels), mem)
		if err != nil {
			t.Fatalf("re-encoded labels: %v", err)
		}
		if !reflect.DeepEqual(again, labels) {
			t.Fatalf("round trip\ngot  %+v\nwant %+v", again, labels)
		}
	})
}
