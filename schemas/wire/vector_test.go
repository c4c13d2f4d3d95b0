package wire

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/schemas"
)

// TestVectorJSONRoundTrip: vector features encode as JSON arrays and decode
// to the same values.
func TestVectorJSONRoundTrip(t *testing.T) {
	var d JSONDecoder
	for _, e := range vectorEvents() {
		b := AppendJSON(nil, &e)
		var got schemas.Event
		if err := d.Decode(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("%s\ngot  %+v\nwant %+v", b, got, e)
		}
	}
	// A decoded vector is not overwritten by the next event's.
	var e1, e2 schemas.Event
	if err := d.Decode([]byte(`{"event_id":"a","model":"m","event_time":1,"features":{"v":[1,2]},"prediction":{"score":1}}`), &e1); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode([]byte(`{"event_id":"b","model":"m","event_time":1,"features":{"v":[3,4]},"prediction":{"score":1}}`), &e2); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e1.Features[0].Value.Vec, []float64{1, 2}) || !reflect.DeepEqual(e2.Features[0].Value.Vec, []float64{3, 4}) {
		t.Errorf("vectors %v %v", e1.Features[0].Value.Vec, e2.Features[0].Value.Vec)
	}
}

// TestVectorValidate: the SDK refuses vectors that are empty, too long, not
// finite or named like a component.
func TestVectorValidate(t *testing.T) {
	for _, tc := range []struct {
		f    schemas.Feature
		want string
	}{
		{schemas.Vec("v", nil), `invalid event: feature "v": empty vector`},
		{schemas.Vec("v", make([]float64, schemas.MaxVectorDim+1)), `invalid event: feature "v": vector of 4097 values, more than 4096`},
		{schemas.Vec("v", []float64{1, math.NaN()}), `invalid event: feature "v": vector element 1 is not finite`},
		{schemas.Vec("v", []float64{math.Inf(-1)}), `invalid event: feature "v": vector element 0 is not finite`},
		{schemas.Vec("v[2]", []float64{1}), `invalid event: feature "v[2]": a vector's name must not end in ']'`},
		{schemas.Vec("v", make([]float64, schemas.MaxVectorDim)), ``},
	} {
		e := vectorEvents()[0]
		e.Features = []schemas.Feature{tc.f}
		err := e.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.f.Name, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want || !errors.Is(err, schemas.ErrInvalidEvent)):
			t.Errorf("%s: got %v, want %s", tc.f.Name, err, tc.want)
		}
	}
}

// TestBatchBuilderVectors: a vector feature is a fixed_size_list<float64>
// column of the batch's first vector's length; a vector of another length
// and a value of another kind are nulls counted as type mismatches of the
// vector's header feature; the batch survives Arrow IPC in every
// compression.
func TestBatchBuilderVectors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	b := NewBatchBuilder(mem)
	evs := vectorEvents()
	for i := range evs {
		if err := b.Append(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	idx := rec.Schema().FieldIndices("f.emb")
	if len(idx) != 1 {
		t.Fatalf("schema %s", rec.Schema())
	}
	col := rec.Column(idx[0]).(*array.FixedSizeList)
	if dim, ok := schemas.VectorDim(col.DataType()); !ok || dim != 3 {
		t.Fatalf("f.emb type %s", col.DataType())
	}
	valid := []bool{true, false, false, false, true}
	for i, v := range valid {
		if col.IsValid(i) != v {
			t.Errorf("row %d valid = %v", i, col.IsValid(i))
		}
	}
	if got := TypeMismatches(rec.Schema()); !reflect.DeepEqual(got, map[string]int64{"__embedding.emb": 2}) {
		t.Errorf("mismatches %v", got)
	}
	if v, ok := vectorAt(col, 4); !ok || !reflect.DeepEqual(v, []float64{1e300, 0, -2.5}) {
		t.Errorf("row 4 = %v", v)
	}
	want := recordEvents(rec)
	for _, c := range compressions {
		data, err := NewArrowEncoder(c).Encode(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeArrow(data, mem)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if !reflect.DeepEqual(recordEvents(got), want) {
			t.Errorf("%v: round trip\ngot  %+v\nwant %+v", c, recordEvents(got), want)
		}
		got.Release()
	}
	// The next batch may have another length.
	e := evs[2]
	if err := b.Append(&e); err != nil {
		t.Fatal(err)
	}
	rec2 := b.NewRecord()
	defer rec2.Release()
	if dim, _ := schemas.VectorDim(rec2.Column(rec2.Schema().FieldIndices("f.emb")[0]).DataType()); dim != 2 {
		t.Errorf("second batch length %d", dim)
	}
}

// float32VectorBatch is a batch with a fixed_size_list<float32> vector
// column (as pyarrow writes float32 embeddings), a NaN item in row 1.
func float32VectorBatch(tb testing.TB) []byte {
	tb.Helper()
	b := NewBatchBuilder(memory.DefaultAllocator)
	for _, e := range vectorEvents()[:2] {
		e.Features = []schemas.Feature{schemas.Num("x", 1)}
		if err := b.Append(&e); err != nil {
			tb.Fatal(err)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	lb := array.NewFixedSizeListBuilder(memory.DefaultAllocator, 2, arrow.PrimitiveTypes.Float32)
	defer lb.Release()
	items := lb.ValueBuilder().(*array.Float32Builder)
	lb.Append(true)
	items.AppendValues([]float32{0.25, -1}, nil)
	lb.Append(true)
	items.AppendValues([]float32{float32(math.NaN()), 2}, nil)
	vec := lb.NewArray()
	defer vec.Release()
	cols := append(append([]arrow.Array{}, rec.Columns()...), vec)
	fields := append(append([]arrow.Field{}, rec.Schema().Fields()...), arrow.Field{Name: "f.y", Type: vec.DataType(), Nullable: true})
	out := array.NewRecord(schemas.NewSchema(fields[len(schemas.FixedFields):]), cols, rec.NumRows())
	defer out.Release()
	data, err := NewArrowEncoder(CompressionNone).Encode(nil, out)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// TestDecodeArrowVectors: float32 items are read; nested types other than
// a fixed_size_list of floats are refused.
func TestDecodeArrowVectors(t *testing.T) {
	rec, err := DecodeArrow(float32VectorBatch(t), memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	evs := recordEvents(rec)
	rec.Release()
	if len(evs) != 2 || !reflect.DeepEqual(evs[0].Features[1], schemas.Vec("y", []float64{0.25, -1})) || len(evs[1].Features) != 1 {
		t.Fatalf("events %+v", evs)
	}
	for _, dt := range []arrow.DataType{
		arrow.FixedSizeListOf(2, arrow.BinaryTypes.String),
		arrow.FixedSizeListOf(1, arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Float64)),
		arrow.ListOf(arrow.PrimitiveTypes.Float64),
	} {
		b := NewBatchBuilder(memory.DefaultAllocator)
		e := vectorEvents()[0]
		e.Features = nil
		if err := b.Append(&e); err != nil {
			t.Fatal(err)
		}
		rec := b.NewRecord()
		ab := array.NewBuilder(memory.DefaultAllocator, dt)
		ab.AppendNull()
		a := ab.NewArray()
		ab.Release()
		cols := append(append([]arrow.Array{}, rec.Columns()...), a)
		out := array.NewRecord(schemas.NewSchema([]arrow.Field{{Name: "f.z", Type: dt, Nullable: true}}), cols, 1)
		data, err := NewArrowEncoder(CompressionNone).Encode(nil, out)
		out.Release()
		rec.Release()
		a.Release()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeArrow(data, memory.DefaultAllocator); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", dt, err)
		}
	}
}
