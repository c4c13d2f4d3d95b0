package wire

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/vigil-ml/vigil/schemas"
)

// FuzzDecodeJSON: Decode never panics; an accepted event is valid, goes into
// a batch, and re-encodes to JSON that decodes to the same event.
func FuzzDecodeJSON(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		paths, _ := filepath.Glob(filepath.Join("..", "testdata", dir, "*.json"))
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	for i := 0; i < 4; i++ {
		f.Add(AppendJSON(nil, benchEvent(i, 6)))
	}
	for _, e := range vectorEvents() {
		f.Add(AppendJSON(nil, &e))
	}
	f.Add([]byte(`{"event_id":"e","model":"m","event_time":1,"features":{"v":[1, -2.5e-3 ,3E2],"w":[0]},"prediction":{"score":1}}`))
	var d JSONDecoder
	f.Fuzz(func(t *testing.T, data []byte) {
		var e schemas.Event
		if err := d.Decode(data, &e); err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted an invalid event: %v", err)
		}
		b := NewBatchBuilder(memory.DefaultAllocator)
		if err := b.Append(&e); err != nil {
			t.Fatalf("batch rejects a decoded event: %v", err)
		}
		b.NewRecord().Release()
		out := AppendJSON(nil, &e)
		var again schemas.Event
		if err := d.Decode(out, &again); err != nil {
			t.Fatalf("re-encoded event %s: %v", out, err)
		}
		if !reflect.DeepEqual(e, again) {
			t.Fatalf("round trip through %s\ngot  %+v\nwant %+v", out, again, e)
		}
	})
}

// FuzzDecodeArrow: DecodeArrow never panics; every row of an accepted batch
// is a valid event, and the batch re-encodes to the same rows.
func FuzzDecodeArrow(f *testing.F) {
	for _, c := range compressions {
		enc := NewArrowEncoder(c)
		b := NewBatchBuilder(memory.DefaultAllocator)
		evs := layoutEvents()
		for i := range evs {
			if err := b.Append(&evs[i]); err != nil {
				f.Fatal(err)
			}
		}
		for _, n := range []int{3, 1} {
			rec := b.NewRecord()
			data, err := enc.Encode(nil, rec)
			rec.Release()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			if n == 3 {
				if err := b.Append(benchEvent(1, 3)); err != nil {
					f.Fatal(err)
				}
			}
		}
	}
	for _, c := range compressions {
		b := NewBatchBuilder(memory.DefaultAllocator)
		for _, e := range vectorEvents() {
			if err := b.Append(&e); err != nil {
				f.Fatal(err)
			}
		}
		rec := b.NewRecord()
		data, err := NewArrowEncoder(c).Encode(nil, rec)
		rec.Release()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(float32VectorBatch(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeArrow(data, memory.DefaultAllocator)
		if err != nil {
			return
		}
		defer rec.Release()
		evs := recordEvents(rec)
		for i := range evs {
			if err := evs[i].Validate(); err != nil {
				t.Fatalf("accepted row %d is invalid: %v", i, err)
			}
		}
		out, err := NewArrowEncoder(CompressionNone).Encode(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeArrow(out, memory.DefaultAllocator)
		if err != nil {
			t.Fatalf("re-encoded batch: %v", err)
		}
		defer again.Release()
		// Compared as text: NaN features are allowed in Arrow and never equal.
		if got := recordEvents(again); fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", evs) {
			t.Fatalf("round trip\ngot  %+v\nwant %+v", got, evs)
		}
	})
}
