package wire

import (
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/vigil-ml/vigil/schemas"
)

func layoutEvents() []schemas.Event {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	return []schemas.Event{
		{
			ID: "a", Model: "fraud", ModelVersion: "3", Time: t0,
			Features:   []schemas.Feature{schemas.Num("amount", 12.5), schemas.Str("country", "DE"), schemas.Missing("age")},
			Prediction: schemas.Prediction{Score: 0.9, HasScore: true, Label: "fraud"},
			Latency:    4200 * time.Microsecond,
			Segments:   []schemas.Tag{{Key: "region", Value: "eu"}},
		},
		{
			ID: "b", Model: "fraud", Time: t0.Add(time.Second),
			// amount as a string: a type mismatch, stored as null.
			Features:   []schemas.Feature{schemas.Str("amount", "12"), schemas.Flag("is_new", true), schemas.Missing("age")},
			Prediction: schemas.Class("ok", schemas.ClassProbability{Class: "ok", P: 0.8}, schemas.ClassProbability{Class: "fraud", P: 0.2}),
			Segments:   []schemas.Tag{{Key: "tier", Value: "gold"}, {Key: "region", Value: "us"}},
		},
		{
			ID: "c", Model: "fraud", Time: t0.Add(2 * time.Second),
			// country first seen as a string: a bool is a mismatch; amount repeated: first wins.
			Features:   []schemas.Feature{schemas.Flag("country", false), schemas.Num("amount", 3), schemas.Num("amount", 4), schemas.Num("zeta", math.Inf(1))},
			Prediction: schemas.Regression(7.5),
		},
	}
}

func TestBatchBuilderLayout(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	b := NewBatchBuilder(mem)
	evs := layoutEvents()
	for i := range evs {
		if err := b.Append(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if b.Len() != 3 || b.Model() != "fraud" {
		t.Fatalf("Len %d Model %q", b.Len(), b.Model())
	}
	rec := b.NewRecord()
	defer rec.Release()
	if b.Len() != 0 || b.Model() != "" {
		t.Errorf("after NewRecord: Len %d Model %q", b.Len(), b.Model())
	}

	var got []string
	for _, f := range rec.Schema().Fields() {
		got = append(got, f.Name+":"+f.Type.String())
	}
	want := []string{
		"event_id:utf8", "model:utf8", "model_version:utf8", "event_time:timestamp[ms, tz=UTC]",
		"latency_ms:float64", "pred_score:float64", "pred_label:utf8", "pred_value:float64",
		"proba.fraud:float64", "proba.ok:float64",
		"f.age:float64", "f.amount:float64", "f.country:utf8", "f.is_new:bool", "f.zeta:float64",
		"s.region:utf8", "s.tier:utf8",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("columns\ngot  %v\nwant %v", got, want)
	}
	md := rec.Schema().Metadata()
	if got, want := md.ToMap(), map[string]string{
		"vigil.schema_version":        "1",
		"vigil.type_mismatch.amount":  "1",
		"vigil.type_mismatch.country": "1",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("metadata %v, want %v", got, want)
	}
	if got, want := TypeMismatches(rec.Schema()), map[string]int64{"amount": 1, "country": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("TypeMismatches %v, want %v", got, want)
	}

	// Column values, nulls as "null".
	cols := map[string]string{}
	for i, f := range rec.Schema().Fields() {
		cols[f.Name] = columnString(rec.Column(i))
	}
	for name, want := range map[string]string{
		"event_id":      "[a b c]",
		"model":         "[fraud fraud fraud]",
		"model_version": "[3  ]",
		"event_time":    "[1795687200123 1795687201123 1795687202123]",
		"latency_ms":    "[4.2 null null]",
		"pred_score":    "[0.9 null null]",
		"pred_label":    "[fraud ok null]",
		"pred_value":    "[null null 7.5]",
		"proba.fraud":   "[null 0.2 null]",
		"proba.ok":      "[null 0.8 null]",
		"f.age":         "[null null null]",
		"f.amount":      "[12.5 null 3]",
		"f.country":     "[DE null null]",
		"f.is_new":      "[null true null]",
		"f.zeta":        "[null null +Inf]",
		"s.region":      "[eu us null]",
		"s.tier":        "[null gold null]",
	} {
		if cols[name] != want {
			t.Errorf("%s = %s, want %s", name, cols[name], want)
		}
	}
}

func columnString(a arrow.Array) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := 0; i < a.Len(); i++ {
		if i > 0 {
			sb.WriteByte(' ')
		}
		if a.IsNull(i) {
			sb.WriteString("null")
			continue
		}
		switch a := a.(type) {
		case *array.Timestamp:
			sb.WriteString(strconv.FormatInt(int64(a.Value(i)), 10))
		default:
			sb.WriteString(a.ValueStr(i))
		}
	}
	sb.WriteByte(']')
	return sb.String()
}

// TestBatchBuilderBatches: columns come and go between records, records stay
// valid after the builder moves on, and all memory is returned.
func TestBatchBuilderBatches(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	b := NewBatchBuilder(mem)
	e1 := schemas.Event{ID: "1", Model: "m", Time: time.UnixMilli(1), Prediction: schemas.Score(0.5),
		Features: []schemas.Feature{schemas.Num("x", 1), schemas.Str("y", "a")}}
	e2 := schemas.Event{ID: "2", Model: "n", Time: time.UnixMilli(2), Prediction: schemas.Score(0.5),
		Features: []schemas.Feature{schemas.Str("x", "now a string"), schemas.Flag("z", true)}}
	if err := b.Append(&e1); err != nil {
		t.Fatal(err)
	}
	r1 := b.NewRecord()
	defer r1.Release()
	if err := b.Append(&e2); err != nil {
		t.Fatal(err)
	}
	r2 := b.NewRecord()
	defer r2.Release()
	if got := fieldNames(r1); got != "f.x:float64 f.y:utf8" {
		t.Errorf("first record %s", got)
	}
	if got := fieldNames(r2); got != "f.x:utf8 f.z:bool" {
		t.Errorf("second record %s", got)
	}
	if got := columnString(r1.Column(8)); got != "[1]" {
		t.Errorf("first record f.x %s", got)
	}
	if TypeMismatches(r2.Schema()) != nil {
		t.Errorf("mismatches %v", TypeMismatches(r2.Schema()))
	}
	empty := b.NewRecord()
	defer empty.Release()
	if empty.NumRows() != 0 || empty.NumCols() != int64(len(schemas.FixedFields)) {
		t.Errorf("empty record %d rows %d columns", empty.NumRows(), empty.NumCols())
	}
}

func fieldNames(rec arrow.Record) string {
	var names []string
	for _, f := range rec.Schema().Fields()[len(schemas.FixedFields):] {
		names = append(names, f.Name+":"+f.Type.String())
	}
	return strings.Join(names, " ")
}

func TestBatchBuilderRejects(t *testing.T) {
	b := NewBatchBuilder(memory.DefaultAllocator)
	ok := schemas.Event{ID: "1", Model: "m", Time: time.UnixMilli(1), Prediction: schemas.Score(0.5)}
	if err := b.Append(&ok); err != nil {
		t.Fatal(err)
	}
	other := ok
	other.Model = "other"
	noPred := ok
	noPred.Prediction = schemas.Prediction{}
	for _, tc := range []struct {
		e    *schemas.Event
		want string
	}{
		{&other, `malformed event: model "other" in a batch of model "m"`},
		{&noPred, `malformed event: invalid event: missing prediction`},
	} {
		err := b.Append(tc.e)
		if !errors.Is(err, ErrMalformed) || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
	if b.Len() != 1 {
		t.Errorf("Len %d after rejected events, want 1", b.Len())
	}
	b.NewRecord().Release()
}

func TestTypeMismatchesIgnoresOtherMetadata(t *testing.T) {
	md := arrow.NewMetadata([]string{"vigil.schema_version", "vigil.type_mismatch.a", "vigil.type_mismatch.b", "other"},
		[]string{"1", "3", "x", "7"})
	got := TypeMismatches(arrow.NewSchema(nil, &md))
	if want := map[string]int64{"a": 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := TypeMismatches(arrow.NewSchema(nil, nil)); got != nil {
		t.Errorf("got %v, want nil", got)
	}
}

// TestBatchBuilderAllocs: a record costs allocations per column, none per
// event: the builder reserves the previous record's capacity.
func TestBatchBuilderAllocs(t *testing.T) {
	perBatch := func(n int) float64 {
		evs := make([]*schemas.Event, n)
		for i := range evs {
			evs[i] = benchEvent(i, benchFeatures)
		}
		b := NewBatchBuilder(memory.DefaultAllocator)
		return testing.AllocsPerRun(5, func() {
			for _, e := range evs {
				if err := b.Append(e); err != nil {
					t.Fatal(err)
				}
			}
			b.NewRecord().Release()
		})
	}
	n100, n2000 := perBatch(100), perBatch(2000)
	if n100 != n2000 {
		t.Errorf("%v allocations for a batch of 100 events, %v for 2000: want the same", n100, n2000)
	}
	t.Logf("%v allocations per record of %d columns", n100, len(schemas.FixedFields)+2+benchFeatures+2)
}
