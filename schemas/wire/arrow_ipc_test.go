package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/vigil-ml/vigil/schemas"
	"go.uber.org/goleak"
)

var compressions = []Compression{CompressionZSTD, CompressionLZ4, CompressionNone}

// TestArrowRoundTrip: builder -> Encode -> DecodeArrow gives the same rows,
// schema and metadata, with every compression, and frees all memory.
func TestArrowRoundTrip(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, c := range compressions {
		t.Run(c.String(), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			b := NewBatchBuilder(mem)
			evs := layoutEvents()
			for i := 0; i < 500; i++ { // enough rows for the codecs to compress
				evs = append(evs, *benchEvent(i, 5))
				evs[len(evs)-1].Model = "fraud"
			}
			for i := range evs {
				if err := b.Append(&evs[i]); err != nil {
					t.Fatal(err)
				}
			}
			rec := b.NewRecord()
			defer rec.Release()
			enc := NewArrowEncoder(c)
			var data []byte
			for i := 0; i < 3; i++ { // the second and third reuse the cached writer
				var err error
				if data, err = enc.Encode([]byte("keep"), rec); err != nil {
					t.Fatal(err)
				}
				if string(data[:4]) != "keep" {
					t.Fatalf("Encode did not append to dst")
				}
				got, err := DecodeArrow(data[4:], mem)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Schema().Equal(rec.Schema()) || !got.Schema().Metadata().Equal(rec.Schema().Metadata()) {
					t.Errorf("schema\ngot  %s\nwant %s", got.Schema(), rec.Schema())
				}
				if !array.RecordEqual(got, rec) {
					t.Errorf("records differ")
				}
				if w := TypeMismatches(got.Schema()); !reflect.DeepEqual(w, map[string]int64{"amount": 1, "country": 1}) {
					t.Errorf("TypeMismatches %v", w)
				}
				gotEvs, wantEvs := recordEvents(got), expectedRows(evs)
				if !reflect.DeepEqual(gotEvs, wantEvs) {
					t.Errorf("rows\ngot  %+v\nwant %+v", gotEvs[:3], wantEvs[:3])
				}
				got.Release()
			}
		})
	}
}

// expectedRows is what a batch of evs reads back as: times in ms, features,
// probabilities and segments in column order, nulls and mismatches dropped,
// the first of repeated names kept.
func expectedRows(evs []schemas.Event) []schemas.Event {
	kinds := map[string]schemas.Kind{}
	for _, e := range evs {
		for _, f := range e.Features {
			if _, ok := kinds[f.Name]; !ok && f.Value.Kind != schemas.Null {
				kinds[f.Name] = f.Value.Kind
			}
		}
	}
	out := make([]schemas.Event, len(evs))
	for i, e := range evs {
		o := schemas.Event{ID: e.ID, Model: e.Model, ModelVersion: e.ModelVersion, Prediction: e.Prediction, Latency: e.Latency,
			Time: time.UnixMilli(e.Time.UnixMilli()).UTC()}
		o.Prediction.Probabilities = slices.Clone(e.Prediction.Probabilities)
		slices.SortFunc(o.Prediction.Probabilities, func(a, b schemas.ClassProbability) int { return cmpString(a.Class, b.Class) })
		seen := map[string]bool{}
		for _, f := range e.Features {
			if !seen[f.Name] && f.Value.Kind != schemas.Null && f.Value.Kind == kinds[f.Name] {
				o.Features = append(o.Features, f)
			}
			seen[f.Name] = true
		}
		slices.SortFunc(o.Features, func(a, b schemas.Feature) int { return cmpString(a.Name, b.Name) })
		o.Segments = slices.Clone(e.Segments)
		slices.SortFunc(o.Segments, func(a, b schemas.Tag) int { return cmpString(a.Key, b.Key) })
		out[i] = o
	}
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// goodColumns returns the fields and columns of a valid 3-row batch.
func goodColumns(t *testing.T) ([]arrow.Field, []arrow.Array) {
	t.Helper()
	b := NewBatchBuilder(memory.DefaultAllocator)
	evs := layoutEvents()
	for i := range evs {
		if err := b.Append(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecord()
	return rec.Schema().Fields(), rec.Columns()
}

func strArray(vals ...any) arrow.Array {
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	for _, v := range vals {
		if v == nil {
			sb.AppendNull()
		} else {
			sb.Append(v.(string))
		}
	}
	return sb.NewArray()
}

func f64Array(vals ...any) arrow.Array {
	fb := array.NewFloat64Builder(memory.DefaultAllocator)
	for _, v := range vals {
		if v == nil {
			fb.AppendNull()
		} else {
			fb.Append(v.(float64))
		}
	}
	return fb.NewArray()
}

func encodeColumns(t *testing.T, fields []arrow.Field, cols []arrow.Array, md map[string]string) []byte {
	t.Helper()
	m := arrow.MetadataFrom(md)
	rows := int64(0)
	if len(cols) > 0 {
		rows = int64(cols[0].Len())
	}
	rec := array.NewRecord(arrow.NewSchema(fields, &m), cols, rows)
	defer rec.Release()
	data, err := NewArrowEncoder(CompressionNone).Encode(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDecodeArrowRejects(t *testing.T) {
	version := map[string]string{schemas.MetaSchemaVersion: "1"}
	type edit func(f []arrow.Field, c []arrow.Array) ([]arrow.Field, []arrow.Array, map[string]string)
	set := func(i int, name string, a arrow.Array) edit {
		return func(f []arrow.Field, c []arrow.Array) ([]arrow.Field, []arrow.Array, map[string]string) {
			f[i] = arrow.Field{Name: name, Type: a.DataType(), Nullable: true}
			c[i] = a
			return f, c, version
		}
	}
	add := func(name string, a arrow.Array) edit {
		return func(f []arrow.Field, c []arrow.Array) ([]arrow.Field, []arrow.Array, map[string]string) {
			return append(f, arrow.Field{Name: name, Type: a.DataType(), Nullable: true}), append(c, a), version
		}
	}
	meta := func(k, v string) edit {
		return func(f []arrow.Field, c []arrow.Array) ([]arrow.Field, []arrow.Array, map[string]string) {
			return f, c, map[string]string{k: v}
		}
	}
	i64 := func() arrow.Array {
		b := array.NewInt64Builder(memory.DefaultAllocator)
		b.AppendValues([]int64{1, 2, 3}, nil)
		return b.NewArray()
	}
	dict := func() arrow.Array {
		b := array.NewDictionaryBuilder(memory.DefaultAllocator, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
		for _, s := range []string{"a", "b", "a"} {
			if err := b.AppendString(s); err != nil {
				panic(err)
			}
		}
		return b.NewArray()
	}
	// Columns of the good batch: 0..7 fixed, 8 proba.fraud, 9 proba.ok,
	// 10 f.age, 11 f.amount, 12 f.country, 13 f.is_new, 14 f.zeta, 15 s.region, 16 s.tier.
	for _, tc := range []struct {
		name string
		edit edit
		want string
	}{
		{"fixed column missing", func(f []arrow.Field, c []arrow.Array) ([]arrow.Field, []arrow.Array, map[string]string) {
			return slices.Delete(f, 7, 8), slices.Delete(c, 7, 8), version
		}, `arrow schema: column 7 is "proba.fraud" float64, want "pred_value" float64`},
		{"too few columns", func(f []arrow.Field, c []arrow.Array) ([]arrow.Field, []arrow.Array, map[string]string) {
			return f[:3], c[:3], version
		}, `arrow schema: 3 columns, want at least the 8 fixed ones`},
		{"event_time as int64", set(3, "event_time", i64()), `arrow schema: column 3 is "event_time" int64, want "event_time" timestamp[ms, tz=UTC]`},
		{"fixed columns swapped", func(f []arrow.Field, c []arrow.Array) ([]arrow.Field, []arrow.Array, map[string]string) {
			f[0], f[1], c[0], c[1] = f[1], f[0], c[1], c[0]
			return f, c, version
		}, `arrow schema: column 0 is "model" utf8, want "event_id" utf8`},
		{"unknown prefix", add("x.foo", strArray("a", "b", "c")), `arrow schema: unknown column "x.foo" (want a proba., f. or s. prefix)`},
		{"int64 feature", add("s.zz", i64()), `arrow schema: column "s.zz" has type int64`},
		{"int64 feature", set(14, "f.zeta", i64()), `arrow schema: column "f.zeta" has type int64`},
		{"dictionary feature", set(14, "f.zeta", dict()), `arrow schema: column "f.zeta" has type dictionary<values=utf8, indices=int32, ordered=false>`},
		{"utf8 probability", set(9, "proba.ok", strArray("a", "b", "c")), `arrow schema: column "proba.ok" has type utf8`},
		{"features unsorted", set(10, "f.b", f64Array(nil, nil, nil)), `arrow schema: column "f.amount" out of order (groups proba., f., s., each sorted by name, no duplicates)`},
		{"duplicate feature", set(10, "f.amount", f64Array(nil, nil, nil)), `arrow schema: column "f.amount" out of order (groups proba., f., s., each sorted by name, no duplicates)`},
		{"segment before feature", add("f.zz", f64Array(1.0, 2.0, 3.0)), `arrow schema: column "f.zz" out of order (groups proba., f., s., each sorted by name, no duplicates)`},
		{"empty feature name", set(10, "f.", f64Array(nil, nil, nil)), `arrow schema: column "f.": name empty or longer than 256 bytes`},
		{"schema version 2", meta(schemas.MetaSchemaVersion, "2"), `arrow schema: vigil.schema_version "2" not supported (want 1)`},
		{"bad mismatch count", meta(MetaTypeMismatchPrefix+"a", "-1"), `arrow schema: vigil.type_mismatch.a "-1" is not a count`},
		{"null event id", set(0, "event_id", strArray("a", nil, "c")), `arrow column "event_id" has nulls`},
		{"null model version", set(2, "model_version", strArray("a", nil, "c")), `arrow column "model_version" has nulls`},
		{"two models", set(1, "model", strArray("fraud", "fraud", "spam")), `arrow column "model": more than one model ("fraud", "spam")`},
		{"empty model", set(1, "model", strArray("", "", "")), `arrow column "model": model empty or longer than 256 bytes`},
		{"empty event id", set(0, "event_id", strArray("a", "", "c")), `arrow row 1: event id empty or longer than 256 bytes`},
		{"negative latency", set(4, "latency_ms", f64Array(nil, -1.0, nil)), `arrow column "latency_ms" row 1: -1 not in [0, 9.223372036854e+12]`},
		{"NaN score", set(5, "pred_score", f64Array(math.NaN(), nil, nil)), `arrow column "pred_score" row 0: NaN not in [-1.7976931348623157e+308, 1.7976931348623157e+308]`},
		{"probability above 1", set(9, "proba.ok", f64Array(nil, 1.5, nil)), `arrow column "proba.ok" row 1: 1.5 not in [0, 1]`},
		{"missing prediction", func(f []arrow.Field, c []arrow.Array) ([]arrow.Field, []arrow.Array, map[string]string) {
			c[5], c[6], c[7] = f64Array(0.5, nil, nil), strArray(nil, nil, ""), f64Array(nil, 1.0, nil)
			return slices.Delete(f, 8, 10), slices.Delete(c, 8, 10), version
		}, `arrow row 2: missing prediction`},
		{"zero event time", func(f []arrow.Field, c []arrow.Array) ([]arrow.Field, []arrow.Array, map[string]string) {
			tb := array.NewTimestampBuilder(memory.DefaultAllocator, schemas.EventTimeType)
			tb.AppendValues([]arrow.Timestamp{1, arrow.Timestamp(time.Time{}.UnixMilli()), 3}, nil)
			c[3] = tb.NewArray()
			return f, c, version
		}, `arrow row 1: missing event time`},
		{"no rows", func(f []arrow.Field, c []arrow.Array) ([]arrow.Field, []arrow.Array, map[string]string) {
			for i := range c {
				c[i] = array.NewSlice(c[i], 0, 0)
			}
			return f, c, version
		}, `arrow record batch has no rows`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := goodColumns(t)
			f, c, md := tc.edit(slices.Clone(f), slices.Clone(c))
			data := encodeColumns(t, f, c, md)
			rec, err := DecodeArrow(data, nil)
			if err == nil {
				rec.Release()
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrMalformed) || err.Error() != "malformed event: "+tc.want {
				t.Errorf("got  %v\nwant malformed event: %s", err, tc.want)
			}
		})
	}
}

func TestDecodeArrowRejectsStreams(t *testing.T) {
	f, c := goodColumns(t)
	good := encodeColumns(t, f, c, map[string]string{schemas.MetaSchemaVersion: "1"})
	// Two batches in one stream.
	var two appendWriter
	rec := array.NewRecord(arrow.NewSchema(f, nil), c, 3)
	w := ipc.NewWriter(&two, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	schemaOnly := good[:8+binary.LittleEndian.Uint32(good[4:])]
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, `arrow ipc: arrow/ipc: could not read message schema: EOF`},
		{"not arrow", []byte("hello, world"), `arrow ipc: arrow/ipc: could not read message schema: message at offset 0: no continuation marker`},
		{"metadata past the end", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0}, `arrow ipc: arrow/ipc: could not read message schema: message at offset 0: metadata length 2147483647 out of bounds`},
		{"schema only", schemaOnly, `arrow ipc: no record batch`},
		{"two batches", two.b, `arrow ipc: more than one record batch`},
		{"trailing data", append(slices.Clone(good), 1, 2, 3), `arrow ipc: 3 bytes of trailing data after the end of stream`},
		{"truncated body", good[:len(good)-100], `arrow ipc: message at offset 1032: body length 560 out of bounds`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := DecodeArrow(tc.data, nil)
			if err == nil {
				rec.Release()
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrMalformed) || err.Error() != "malformed event: "+tc.want {
				t.Errorf("got  %v\nwant malformed event: %s", err, tc.want)
			}
		})
	}
}

func TestDecodeArrowMemoryLimit(t *testing.T) {
	defer func(n int64) { maxDecodedBytes = n }(maxDecodedBytes)
	maxDecodedBytes = 1000
	if got := decodeBudget(1 << 30); got != 1000 {
		t.Errorf("budget %d", got)
	}
	rec := benchRecord(t, 100)
	defer rec.Release()
	for _, c := range compressions {
		data, err := NewArrowEncoder(c).Encode(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeArrow(data, nil)
		if c == CompressionNone {
			// Used in place: nothing to allocate.
			if err != nil {
				t.Errorf("none: %v", err)
			} else {
				got.Release()
			}
			continue
		}
		const want = `malformed event: arrow record batch: column "event_id" buffer 2: decompressed size 1200: more than a batch may decode to (MaxDecodedBatchBytes, and 1024 times the message size)`
		if !errors.Is(err, ErrMalformed) || err.Error() != want {
			t.Errorf("%v: got %v, want %s", c, err, want)
		}
	}
}

// TestDecodeArrowZstdWindowBomb: a ZSTD frame header claiming a 512 MiB
// window (a 2-byte change) is rejected without allocating it.
func TestDecodeArrowZstdWindowBomb(t *testing.T) {
	rec := benchRecord(t, 50)
	data, err := NewArrowEncoder(CompressionZSTD).Encode(nil, rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte{0x28, 0xb5, 0x2f, 0xfd}) // zstd frame magic
	data[i+4], data[i+5] = 0x00, 0x98                      // no content size, window 2^29
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = DecodeArrow(data, nil)
	runtime.ReadMemStats(&after)
	const want = `malformed event: arrow record batch: column "event_id" buffer 1: zstd: window size exceeded`
	if !errors.Is(err, ErrMalformed) || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Errorf("allocated %d bytes", n)
	}
}
