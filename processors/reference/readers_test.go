package reference

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/vigil-ml/vigil/schemas"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func buildFile(t *testing.T, path string, opts ReadOptions) (*Profile, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	opts.Mem = mem
	if opts.BatchRows == 0 {
		opts.BatchRows = 2 // several records even for small files
	}
	return BuildFromFile(context.Background(), path, Meta{Model: "fraud", ModelVersion: "3", ID: 1, CreatedAt: testTime, Source: "x"}, opts, BuilderOptions{})
}

func mustBuildFile(t *testing.T, path string, opts ReadOptions) *Profile {
	t.Helper()
	p, err := buildFile(t, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const csvFile = "amount,country,is_new,empty,prediction_score,prediction_label,zip\n" +
	"1.5,DE,true,,0.9,1,01234\n" +
	"2.5,FR,false,,0.1,0,99\n" +
	",DE,TRUE,,0.5,1,\n" +
	"NaN,\"US\",false,,,,123\n"

func TestReadCSV(t *testing.T) {
	path := writeFile(t, "ref.csv", csvFile)
	p := mustBuildFile(t, path, ReadOptions{})
	if p.Rows != 4 {
		t.Fatalf("rows = %d", p.Rows)
	}
	checkNumeric(t, p.Feature("amount"), FeatureProfile{Kind: schemas.Number, Count: 2, Missing: 1, NaN: 1, Mean: 2, Std: 0.7071067811865476,
		Min: 1.5, Max: 2.5, Edges: []float64{1.5, 1.6, 1.7, 1.8, 1.9, 2, 2.1, 2.2, 2.3, 2.4, 2.5}, Hist: []uint64{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0},
		Quantiles: []float64{1.5, 2.5}, Exact: true})
	checkCounts(t, p.Feature("country"), schemas.String, 4, 0, map[string]uint64{"DE": 2, "FR": 1, "US": 1})
	checkCounts(t, p.Feature("is_new"), schemas.Bool, 4, 0, map[string]uint64{"true": 2, "false": 2})
	checkCounts(t, p.Feature(schemas.PredictionLabelFeature), schemas.String, 3, 1, map[string]uint64{"1": 2, "0": 1})
	if f := p.Feature("empty"); f.Kind != schemas.Null || f.Missing != 4 {
		t.Errorf("empty = %+v", *f)
	}
	if f := p.Feature(schemas.PredictionScoreFeature); f.Count != 3 || f.Missing != 1 || f.Max != 0.9 {
		t.Errorf("score = %+v", *f)
	}
	if f := p.Feature("zip"); f.Kind != schemas.Number || f.Max != 1234 {
		t.Errorf("zip (inferred) = %+v", *f)
	}

	p = mustBuildFile(t, path, ReadOptions{Kinds: map[string]schemas.Kind{"zip": schemas.String}, Exclude: []string{"country"}})
	checkCounts(t, p.Feature("zip"), schemas.String, 3, 1, map[string]uint64{"01234": 1, "99": 1, "123": 1})
	if p.Feature("country") != nil {
		t.Error("excluded column read")
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name, file, content string
		opts                ReadOptions
		want                string
	}{
		{"csv empty", "a.csv", "", ReadOptions{}, "a.csv:1: empty file"},
		{"csv ragged", "a.csv", "a,b\n1,2\n3\n", ReadOptions{}, "a.csv:3: wrong number of fields"},
		{"csv repeated column", "a.csv", "a,b,a\n1,2,3\n", ReadOptions{}, `a.csv:1: column "a" twice`},
		{"csv unnamed column", "a.csv", "a,,c\n1,2,3\n", ReadOptions{}, "a.csv:1: column 2 has no name"},
		{"csv declared number", "a.csv", "a\n1\nx\n", ReadOptions{Kinds: map[string]schemas.Kind{"a": schemas.Number}}, `a.csv:3: column "a": "x" is not a number`},
		{"csv score not a number", "a.csv", "prediction_score\n0.5\nhigh\n", ReadOptions{}, `a.csv:3: column "prediction_score": "high" is not a number`},
		{"csv bad quote", "a.csv", "a\n\"x\n", ReadOptions{}, "a.csv:2:"},
		{"jsonl not json", "a.jsonl", "{\"a\":1}\n{\"a\":\n", ReadOptions{}, "a.jsonl:2: not JSON"},
		{"jsonl not object", "a.jsonl", "\n[1]\n", ReadOptions{}, "a.jsonl:2: not a JSON object"},
		{"jsonl kind changes", "a.jsonl", "{\"a\":1}\n{\"a\":null}\n{\"a\":\"x\"}\n", ReadOptions{}, `a.jsonl:3: key "a": string value where earlier values are number`},
		{"jsonl declared", "a.jsonl", "{\"a\":true}\n", ReadOptions{Kinds: map[string]schemas.Kind{"a": schemas.Number}}, `a.jsonl:1: key "a": bool value where the column is number`},
		{"jsonl nested", "a.jsonl", "{\"a\":{\"b\":1}}\n", ReadOptions{}, `a.jsonl:1: key "a": a object is not a feature value`},
		{"jsonl repeated key", "a.jsonl", "{\"a\":1,\"a\":2}\n", ReadOptions{}, `a.jsonl:1: key "a" twice`},
		{"jsonl event score", "a.jsonl", "{\"features\":{},\"prediction\":{\"score\":\"high\"}}\n", ReadOptions{}, `a.jsonl:1: key "prediction.score": string value where the column is number`},
		{"jsonl repeated score", "a.jsonl", "{\"features\":{},\"prediction\":{\"score\":1,\"score\":2}}\n", ReadOptions{}, `a.jsonl:1: key "prediction.score": value given twice`},
		{"unknown format", "a.txt", "a\n1\n", ReadOptions{}, "unknown format"},
		{"not parquet", "a.parquet", "a\n1\n", ReadOptions{}, "a.parquet: not a Parquet file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.content)
			_, err := buildFile(t, path, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			if tt.file != "a.txt" && !errors.Is(err, ErrBadInput) {
				t.Errorf("error does not wrap ErrBadInput: %v", err)
			}
		})
	}
}

const jsonlFile = `{"event_id":"e-1","model":"fraud","event_time":"2026-11-26T10:00:00Z","features":{"amount":12.5,"country":"DE","is_new":true,"age":null},"prediction":{"score":0.93,"label":"fraud","probabilities":{"fraud":0.93,"ok":0.07}},"latency_ms":4}
{"amount": 3, "country": "FR", "prediction_score": 0.2, "prediction_label": 0}

{"amount": null, "is_new": false}
`

func TestReadJSONL(t *testing.T) {
	for _, name := range []string{"ref.jsonl", "ref.NDJSON"} {
		p := mustBuildFile(t, writeFile(t, name, jsonlFile), ReadOptions{})
		if p.Rows != 3 {
			t.Fatalf("rows = %d", p.Rows)
		}
		if got, want := strings.Join(p.FeatureNames(), ","), "__prediction_label,__prediction_score,__proba.fraud,__proba.ok,age,amount,country,is_new"; got != want {
			t.Fatalf("features %s, want %s", got, want)
		}
		if f := p.Feature("amount"); f.Count != 2 || f.Missing != 1 || f.Min != 3 || f.Max != 12.5 {
			t.Errorf("amount = %+v", *f)
		}
		if f := p.Feature("age"); f.Kind != schemas.Null || f.Missing != 3 {
			t.Errorf("age = %+v", *f)
		}
		checkCounts(t, p.Feature(schemas.PredictionLabelFeature), schemas.String, 2, 1, map[string]uint64{"fraud": 1, "0": 1})
		checkCounts(t, p.Feature("is_new"), schemas.Bool, 2, 1, map[string]uint64{"true": 1, "false": 1})
		if f := p.Feature("__proba.ok"); f.Count != 1 || f.Mean != 0.07 {
			t.Errorf("proba ok = %+v", *f)
		}
	}
}

// writeParquet writes rec to a Parquet file with pqarrow.
func writeParquet(t *testing.T, rec arrow.Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ref.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(3)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // closes f
		t.Fatal(err)
	}
	return path
}

func TestReadParquet(t *testing.T) {
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int32},
		{Name: "country", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "is_new", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "prediction_score", Type: arrow.PrimitiveTypes.Float32},
		{Name: "prediction_label", Type: arrow.PrimitiveTypes.Int64},
		{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_ms},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{1, 2, 0, 4}, []bool{true, true, false, true})
	b.Field(1).(*array.Int32Builder).AppendValues([]int32{10, 20, 30, 40}, nil)
	b.Field(2).(*array.StringBuilder).AppendValues([]string{"DE", "", "DE", "FR"}, []bool{true, false, true, true})
	b.Field(3).(*array.BooleanBuilder).AppendValues([]bool{true, false, false, false}, nil)
	b.Field(4).(*array.Float32Builder).AppendValues([]float32{0.5, 0.25, 0.75, 1}, nil)
	b.Field(5).(*array.Int64Builder).AppendValues([]int64{1, 0, 1, 1}, nil)
	b.Field(6).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{1, 2, 3, 4}, nil)
	rec := b.NewRecord()
	defer rec.Release()
	path := writeParquet(t, rec)

	if _, err := buildFile(t, path, ReadOptions{}); err == nil || !strings.Contains(err.Error(), `column "ts" has type timestamp`) {
		t.Fatalf("timestamp column: %v", err)
	}
	p := mustBuildFile(t, path, ReadOptions{Exclude: []string{"ts"}, Kinds: map[string]schemas.Kind{"n": schemas.String}})
	if p.Rows != 4 {
		t.Fatalf("rows = %d", p.Rows)
	}
	if f := p.Feature("amount"); f.Count != 3 || f.Missing != 1 || f.Mean != 7.0/3 || f.Max != 4 {
		t.Errorf("amount = %+v", *f)
	}
	checkCounts(t, p.Feature("n"), schemas.String, 4, 0, map[string]uint64{"10": 1, "20": 1, "30": 1, "40": 1})
	checkCounts(t, p.Feature("country"), schemas.String, 3, 1, map[string]uint64{"DE": 2, "FR": 1})
	checkCounts(t, p.Feature("is_new"), schemas.Bool, 4, 0, map[string]uint64{"true": 1, "false": 3})
	checkCounts(t, p.Feature(schemas.PredictionLabelFeature), schemas.String, 4, 0, map[string]uint64{"1": 3, "0": 1})
	if f := p.Feature(schemas.PredictionScoreFeature); f.Count != 4 || f.Mean != 0.625 {
		t.Errorf("score = %+v", *f)
	}
	if _, err := buildFile(t, path, ReadOptions{Exclude: []string{"ts"}, Kinds: map[string]schemas.Kind{"country": schemas.Number}}); err == nil ||
		!strings.Contains(err.Error(), `column "country" holds string values, but it is declared number`) {
		t.Fatalf("declared number over strings: %v", err)
	}
}

// TestFormatsAgree: the same table as CSV, JSON Lines and Parquet gives the
// same profile, byte for byte.
func TestFormatsAgree(t *testing.T) {
	csvPath := writeFile(t, "t.csv", "x,c,b,prediction_score\n1.5,a,true,0.5\n,b,false,0.25\n-2,a,,1\n8,,true,0\n")
	jsonPath := writeFile(t, "t.jsonl", `{"x":1.5,"c":"a","b":true,"prediction_score":0.5}
{"c":"b","b":false,"prediction_score":0.25}
{"features":{"x":-2,"c":"a","b":null},"prediction":{"score":1}}
{"x":8,"b":true,"prediction_score":0}
`)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "c", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "prediction_score", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{1.5, 0, -2, 8}, []bool{true, false, true, true})
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"a", "b", "a", ""}, []bool{true, true, true, false})
	b.Field(2).(*array.BooleanBuilder).AppendValues([]bool{true, false, false, true}, []bool{true, true, false, true})
	b.Field(3).(*array.Float64Builder).AppendValues([]float64{0.5, 0.25, 1, 0}, nil)
	rec := b.NewRecord()
	defer rec.Release()
	pqPath := writeParquet(t, rec)

	var want []byte
	for _, path := range []string{csvPath, jsonPath, pqPath} {
		data, err := mustBuildFile(t, path, ReadOptions{}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = data
		} else if !bytes.Equal(data, want) {
			t.Errorf("%s gives another profile than %s", filepath.Base(path), filepath.Base(csvPath))
		}
	}
}

func fuzzRead(t *testing.T, read func(r *bytes.Reader, b *Builder) error, data []byte) {
	b, err := NewBuilder(Meta{Model: "m"}, BuilderOptions{MaxValues: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := read(bytes.NewReader(data), b); err != nil {
		if !errors.Is(err, ErrBadInput) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error is neither ErrBadInput nor ErrTooLarge: %v", err)
		}
		return
	}
	p, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := p.MarshalBinary()
	if err != nil {
		t.Fatalf("profile of a file that reads does not encode: %v", err)
	}
	if err := new(Profile).UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
}

func FuzzReadCSV(f *testing.F) {
	f.Add([]byte(csvFile))
	f.Add([]byte("a,b\n1,true\nx,false\n"))
	f.Add([]byte("\ufeffa\n\"1\"\"\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, func(r *bytes.Reader, b *Builder) error {
			return ReadCSV(r, "fuzz.csv", ReadOptions{Model: "m", BatchRows: 3, Kinds: map[string]schemas.Kind{"s": schemas.String}}, b.Add)
		}, data)
	})
}

func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(jsonlFile))
	f.Add([]byte("{\"a\":1e999}\n{\"a\":-0}\n"))
	f.Add([]byte(`{"features":{"prediction_score":"x"},"prediction":{"probabilities":{"a":1}}}`))
	f.Add([]byte("{\"emb\":[1,2.5],\"s\":[3]}\n{\"emb\":null}\n{\"emb\":[0,-1e300]}\n{\"emb\":[1]}\n"))
	f.Add([]byte(`{"event_id":"e","features":{"v":[1,2,3]},"prediction":{"score":0.5}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, func(r *bytes.Reader, b *Builder) error {
			return ReadJSONL(r, "fuzz.jsonl", ReadOptions{Model: "m", BatchRows: 3, Kinds: map[string]schemas.Kind{"s": schemas.String}}, b.Add)
		}, data)
	})
}
