package wire

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/vigil-ml/vigil/schemas"
	"go.uber.org/goleak"
)

// testLabels returns n labels of model, alternating class and value labels.
func testLabels(model string, n int) []schemas.Label {
	ls := make([]schemas.Label, n)
	for i := range ls {
		at := time.UnixMilli(1764232200000 + int64(i)).UTC()
		if i%2 == 0 {
			ls[i] = schemas.ClassLabel(fmt.Sprintf("evt-%06d", i), model, [...]string{"fraud", "ok", "true"}[i%3], at)
		} else {
			ls[i] = schemas.ValueLabel(fmt.Sprintf("evt-%06d", i), model, float64(i)/4-10, at)
		}
	}
	return ls
}

func encodeLabels(t testing.TB, c Compression, ls []schemas.Label) []byte {
	t.Helper()
	b := NewLabelBatchBuilder(memory.DefaultAllocator)
	for i := range ls {
		if err := b.Append(&ls[i]); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	data, err := NewArrowEncoder(c).Encode(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLabelArrowRoundTrip(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, c := range compressions {
		t.Run(c.String(), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			want := testLabels("fraud", 500)
			data := encodeLabels(t, c, want)
			got, err := DecodeLabelArrow(data, mem)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip: got %d labels, first %+v; want %d, first %+v", len(got), got[0], len(want), want[0])
			}
			clear(data) // the labels own their strings
			if got[0].EventID != "evt-000000" || got[0].Model != "fraud" || got[0].Class != "fraud" {
				t.Fatalf("strings alias the message: %+v", got[0])
			}
		})
	}
}

func TestLabelBatchBuilder(t *testing.T) {
	b := NewLabelBatchBuilder(memory.DefaultAllocator)
	ls := testLabels("fraud", 3)
	for i := range ls {
		if err := b.Append(&ls[i]); err != nil {
			t.Fatal(err)
		}
	}
	other := schemas.ClassLabel("e", "churn", "yes", time.Now())
	if err := b.Append(&other); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), `model "churn" in a batch of model "fraud"`) {
		t.Errorf("Append of another model: %v", err)
	}
	bad := schemas.ValueLabel("e", "fraud", math.NaN(), time.Now())
	if err := b.Append(&bad); !errors.Is(err, ErrMalformed) || !errors.Is(err, schemas.ErrInvalidLabel) {
		t.Errorf("Append of an invalid label: %v", err)
	}
	if b.Len() != 3 || b.Model() != "fraud" {
		t.Fatalf("Len %d Model %q", b.Len(), b.Model())
	}
	rec := b.NewRecord()
	defer rec.Release()
	if !rec.Schema().Equal(schemas.NewLabelSchema()) || rec.NumRows() != 3 {
		t.Fatalf("record %v", rec)
	}
	if b.Len() != 0 || b.Model() != "" {
		t.Fatal("builder not reset")
	}
	if err := b.Append(&other); err != nil { // a new batch may have another model
		t.Fatal(err)
	}
	b.NewRecord().Release()
}

// labelRecord builds a label record from raw columns, bypassing the
// builder's validation. A nil pointer is a null.
func labelRecord(schema *arrow.Schema, ids, models []*string, times []*int64, classes []*string, values []*float64) arrow.Record {
	mem := memory.DefaultAllocator
	strs := func(vs []*string) arrow.Array {
		b := array.NewStringBuilder(mem)
		defer b.Release()
		for _, v := range vs {
			if v == nil {
				b.AppendNull()
			} else {
				b.Append(*v)
			}
		}
		return b.NewArray()
	}
	tb := array.NewTimestampBuilder(mem, schemas.EventTimeType)
	defer tb.Release()
	for _, v := range times {
		if v == nil {
			tb.AppendNull()
		} else {
			tb.Append(arrow.Timestamp(*v))
		}
	}
	fb := array.NewFloat64Builder(mem)
	defer fb.Release()
	for _, v := range values {
		if v == nil {
			fb.AppendNull()
		} else {
			fb.Append(*v)
		}
	}
	cols := []arrow.Array{strs(ids), strs(models), tb.NewArray(), strs(classes), fb.NewArray()}
	rec := array.NewRecord(schema, cols, int64(len(ids)))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

func ptr[T any](v T) *T { return &v }

func encodeRecord(t *testing.T, rec arrow.Record) []byte {
	t.Helper()
	defer rec.Release()
	data, err := NewArrowEncoder(CompressionNone).Encode(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDecodeLabelArrowRowErrors: bad rows are reported by index, the valid
// rows of the batch are still returned.
func TestDecodeLabelArrowRowErrors(t *testing.T) {
	m := ptr("fraud")
	ms := ptr(int64(1764232200000))
	zero := ptr(time.Time{}.UnixMilli())
	rec := labelRecord(schemas.NewLabelSchema(),
		[]*string{ptr("ok-0"), nil, ptr("bad-2"), ptr("bad-3"), ptr("ok-4"), ptr("bad-5"), ptr("bad-6")},
		[]*string{m, m, m, m, m, nil, m},
		[]*int64{ms, ms, ms, ms, ms, ms, zero},
		[]*string{ptr("fraud"), ptr("x"), nil, ptr("x"), nil, ptr("x"), ptr("x")},
		[]*float64{nil, nil, nil, ptr(1.0), ptr(0.0), nil, nil})
	got, err := DecodeLabelArrow(encodeRecord(t, rec), nil)
	var rowsErr *LabelRowsError
	if !errors.As(err, &rowsErr) || !errors.Is(err, ErrMalformed) || !errors.Is(err, schemas.ErrInvalidLabel) {
		t.Fatalf("got %v, want a *LabelRowsError", err)
	}
	if want := []int{1, 2, 3, 5, 6}; !reflect.DeepEqual(rowsErr.Bad, want) || rowsErr.Rows != 7 {
		t.Errorf("bad rows %v of %d, want %v of 7", rowsErr.Bad, rowsErr.Rows, want)
	}
	const wantMsg = "malformed event: 5 of 7 rows of the label batch are invalid: row 1: invalid label: missing event id;" +
		" row 2: invalid label: want exactly one of class or value; row 3: invalid label: want exactly one of class or value;" +
		" row 5: invalid label: missing model; row 6: invalid label: missing label time"
	if err.Error() != wantMsg {
		t.Errorf("got  %s\nwant %s", err, wantMsg)
	}
	at := time.UnixMilli(*ms).UTC()
	if want := []schemas.Label{schemas.ClassLabel("ok-0", "fraud", "fraud", at), schemas.ValueLabel("ok-4", "fraud", 0, at)}; !reflect.DeepEqual(got, want) {
		t.Errorf("valid labels\ngot  %+v\nwant %+v", got, want)
	}
}

func TestDecodeLabelArrowManyBadRows(t *testing.T) {
	n := 1000
	ids, models, times, classes, values := make([]*string, n), make([]*string, n), make([]*int64, n), make([]*string, n), make([]*float64, n)
	for i := range n {
		ids[i], models[i], times[i], values[i] = ptr("e"), ptr("m"), ptr(int64(1)), ptr(math.NaN())
	}
	_, err := DecodeLabelArrow(encodeRecord(t, labelRecord(schemas.NewLabelSchema(), ids, models, times, classes, values)), nil)
	var rowsErr *LabelRowsError
	if !errors.As(err, &rowsErr) || len(rowsErr.Bad) != n || len(rowsErr.Errs) != maxLabelRowErrors {
		t.Fatalf("got %v", err)
	}
	if !strings.HasSuffix(err.Error(), fmt.Sprintf("and %d more", n-maxLabelRowErrors)) {
		t.Errorf("message %s", err)
	}
}

func TestDecodeLabelArrowRejects(t *testing.T) {
	m, ms := ptr("fraud"), ptr(int64(1))
	good := func(schema *arrow.Schema) arrow.Record {
		return labelRecord(schema, []*string{ptr("e")}, []*string{m}, []*int64{ms}, []*string{ptr("c")}, []*float64{nil})
	}
	withVersion := func(v string) *arrow.Schema {
		md := arrow.NewMetadata([]string{schemas.MetaSchemaVersion}, []string{v})
		return arrow.NewSchema(schemas.LabelFields, &md)
	}
	renamed := append([]arrow.Field(nil), schemas.LabelFields...)
	renamed[3].Name = "class"
	evs := layoutEvents()
	eb := NewBatchBuilder(memory.DefaultAllocator)
	if err := eb.Append(&evs[0]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"event batch", encodeRecord(t, eb.NewRecord()), `arrow schema: 12 columns, want the 5 of a label batch`},
		{"renamed column", encodeRecord(t, good(arrow.NewSchema(renamed, nil))), `arrow schema: column 3 is "class" utf8, want "label_class" utf8`},
		{"schema version 2", encodeRecord(t, good(withVersion("2"))), `arrow schema: vigil.schema_version "2" not supported (want 1)`},
		{"no rows", encodeRecord(t, labelRecord(schemas.NewLabelSchema(), nil, nil, nil, nil, nil)), `arrow record batch has no rows`},
		{"two models", encodeRecord(t, labelRecord(schemas.NewLabelSchema(), []*string{ptr("a"), ptr("b")}, []*string{m, ptr("churn")},
			[]*int64{ms, ms}, []*string{ptr("c"), ptr("c")}, []*float64{nil, nil})), `arrow column "model": more than one model ("fraud", "churn")`},
		{"not arrow", []byte("hello, world"), `arrow ipc: arrow/ipc: could not read message schema: message at offset 0: no continuation marker`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeLabelArrow(tc.data, nil)
			if err == nil || got != nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !errors.Is(err, ErrMalformed) || err.Error() != "malformed event: "+tc.want {
				t.Errorf("got  %v\nwant malformed event: %s", err, tc.want)
			}
		})
	}
	// Without metadata is fine.
	if _, err := DecodeLabelArrow(encodeRecord(t, good(arrow.NewSchema(schemas.LabelFields, nil))), nil); err != nil {
		t.Errorf("no metadata: %v", err)
	}
	// Truncated at every length: rejected, never a panic. (Without just its
	// end-of-stream marker, a stream is complete.)
	data := encodeLabels(t, CompressionZSTD, testLabels("fraud", 50))
	for n := 0; n < len(data)-8; n++ {
		if _, err := DecodeLabelArrow(data[:n], nil); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
}

func TestDecodeLabelArrowMemoryLimit(t *testing.T) {
	defer func(n int64) { maxDecodedBytes = n }(maxDecodedBytes)
	maxDecodedBytes = 1000
	ls := testLabels("fraud", 200)
	for _, c := range []Compression{CompressionZSTD, CompressionLZ4} {
		_, err := DecodeLabelArrow(encodeLabels(t, c, ls), nil)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "more than a batch may decode to") {
			t.Errorf("%v: got %v", c, err)
		}
	}
}
