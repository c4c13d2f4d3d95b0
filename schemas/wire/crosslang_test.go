package wire

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/schemas"
)

// The cross-language vectors (testdata/wire at the repository root): the Go
// side writes go/, the Python SDK (sdk/python) writes python/, and each
// side decodes the other's. See testdata/wire/cases.json.

var update = flag.Bool("update", false, "rewrite the Go cross-language vectors in testdata/wire/go")

const vectorDir = "../../testdata/wire"

type vectorCases struct {
	Events []struct {
		Case   string        `json:"case"`
		Events []vectorEvent `json:"events"`
	} `json:"events"`
	Labels []struct {
		Case   string        `json:"case"`
		Labels []vectorLabel `json:"labels"`
	} `json:"labels"`
}

type vectorEvent struct {
	ID            string               `json:"event_id"`
	Model         string               `json:"model"`
	ModelVersion  string               `json:"model_version"`
	TimeNs        int64                `json:"time_ns"`
	Features      [][2]json.RawMessage `json:"features"`
	Score         *float64             `json:"score"`
	Label         string               `json:"label"`
	Probabilities [][2]json.RawMessage `json:"probabilities"`
	Value         *float64             `json:"value"`
	LatencyNs     int64                `json:"latency_ns"`
	Segments      [][2]string          `json:"segments"`
}

type vectorLabel struct {
	EventID string   `json:"event_id"`
	Model   string   `json:"model"`
	Class   *string  `json:"class"`
	Value   *float64 `json:"value"`
	TimeNs  int64    `json:"time_ns"`
}

func loadVectorCases(t *testing.T) vectorCases {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c vectorCases
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	if len(c.Events) == 0 || len(c.Labels) == 0 {
		t.Fatal("cases.json has no event or no label case")
	}
	return c
}

func (v *vectorEvent) event(t *testing.T) schemas.Event {
	t.Helper()
	e := schemas.Event{
		ID: v.ID, Model: v.Model, ModelVersion: v.ModelVersion,
		Time:    time.Unix(0, v.TimeNs).UTC(),
		Latency: time.Duration(v.LatencyNs),
	}
	for _, f := range v.Features {
		var name string
		if err := json.Unmarshal(f[0], &name); err != nil {
			t.Fatal(err)
		}
		var val any
		if err := json.Unmarshal(f[1], &val); err != nil {
			t.Fatal(err)
		}
		switch x := val.(type) {
		case nil:
			e.Features = append(e.Features, schemas.Missing(name))
		case float64:
			e.Features = append(e.Features, schemas.Num(name, x))
		case string:
			e.Features = append(e.Features, schemas.Str(name, x))
		case bool:
			e.Features = append(e.Features, schemas.Flag(name, x))
		case []any:
			var vec []float64
			if err := json.Unmarshal(f[1], &vec); err != nil {
				t.Fatalf("feature %q: %v", name, err)
			}
			e.Features = append(e.Features, schemas.Vec(name, vec))
		default:
			t.Fatalf("feature %q: value %s", name, f[1])
		}
	}
	p := &e.Prediction
	if v.Score != nil {
		p.Score, p.HasScore = *v.Score, true
	}
	p.Label = v.Label
	for _, cp := range v.Probabilities {
		var c string
		var pr float64
		if err := json.Unmarshal(cp[0], &c); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(cp[1], &pr); err != nil {
			t.Fatal(err)
		}
		p.Probabilities = append(p.Probabilities, schemas.ClassProbability{Class: c, P: pr})
	}
	if v.Value != nil {
		p.Value, p.HasValue = *v.Value, true
	}
	for _, s := range v.Segments {
		e.Segments = append(e.Segments, schemas.Tag{Key: s[0], Value: s[1]})
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("vector event %q: %v", v.ID, err)
	}
	return e
}

func (v *vectorLabel) label() schemas.Label {
	l := schemas.Label{EventID: v.EventID, Model: v.Model, Time: time.Unix(0, v.TimeNs).UTC()}
	if v.Class != nil {
		l.Class, l.HasClass = *v.Class, true
	}
	if v.Value != nil {
		l.Value, l.HasValue = *v.Value, true
	}
	return l
}

// canonicalRecord is the decoded form of an Arrow batch both languages
// compute the same way: fields (name, type, nullable), schema metadata,
// rows, and each column's values (null, number, string, bool; timestamps
// as Unix milliseconds), compared after a JSON round trip.
func canonicalRecord(t *testing.T, rec arrow.Record) any {
	t.Helper()
	fields := []any{}
	cols := map[string]any{}
	for i, f := range rec.Schema().Fields() {
		var typ string
		col := rec.Column(i)
		vals := make([]any, col.Len())
		switch a := col.(type) {
		case *array.String:
			typ = "utf8"
			for r := range vals {
				if a.IsValid(r) {
					vals[r] = a.Value(r)
				}
			}
		case *array.Float64:
			typ = "float64"
			for r := range vals {
				if a.IsValid(r) {
					vals[r] = a.Value(r)
				}
			}
		case *array.Boolean:
			typ = "bool"
			for r := range vals {
				if a.IsValid(r) {
					vals[r] = a.Value(r)
				}
			}
		case *array.Timestamp:
			typ = "timestamp[ms, tz=UTC]"
			if tt := a.DataType().(*arrow.TimestampType); tt.Unit != arrow.Millisecond || tt.TimeZone != "UTC" {
				typ = a.DataType().String()
			}
			for r := range vals {
				if a.IsValid(r) {
					vals[r] = int64(a.Value(r))
				}
			}
		case *array.FixedSizeList:
			dim, _ := schemas.VectorDim(a.DataType())
			typ = fmt.Sprintf("fixed_size_list<float64>[%d]", dim)
			for r := range vals {
				if a.IsValid(r) {
					vals[r], _ = vectorAt(a, r)
				}
			}
		default:
			t.Fatalf("column %q: unexpected type %s", f.Name, col.DataType())
		}
		fields = append(fields, map[string]any{"name": f.Name, "type": typ, "nullable": f.Nullable})
		cols[f.Name] = vals
	}
	md := map[string]any{}
	for i, k := range rec.Schema().Metadata().Keys() {
		md[k] = rec.Schema().Metadata().Values()[i]
	}
	return roundTrip(t, map[string]any{"fields": fields, "metadata": md, "rows": rec.NumRows(), "columns": cols})
}

func roundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func readCanonical(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// goVectors returns what the Go side writes for each case: file name -> bytes.
func goVectors(t *testing.T, c vectorCases) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	enc := NewArrowEncoder(CompressionZSTD)
	for _, ec := range c.Events {
		bb := NewBatchBuilder(memory.NewGoAllocator())
		var jsonl []byte
		for i := range ec.Events {
			e := ec.Events[i].event(t)
			if err := bb.Append(&e); err != nil {
				t.Fatalf("%s: %v", ec.Case, err)
			}
			jsonl = append(AppendJSON(jsonl, &e), '\n')
		}
		rec := bb.NewRecord()
		msg, err := enc.Encode(nil, rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		files[ec.Case+".arrow"] = msg
		files[ec.Case+".jsonl"] = jsonl
		dec, err := DecodeArrow(msg, nil)
		if err != nil {
			t.Fatalf("%s: decode own message: %v", ec.Case, err)
		}
		canon, _ := json.MarshalIndent(canonicalRecord(t, dec), "", " ")
		dec.Release()
		files[ec.Case+".canonical.json"] = append(canon, '\n')
	}
	for _, lc := range c.Labels {
		lb := NewLabelBatchBuilder(memory.NewGoAllocator())
		var jsonl []byte
		for i := range lc.Labels {
			l := lc.Labels[i].label()
			if err := lb.Append(&l); err != nil {
				t.Fatalf("%s: %v", lc.Case, err)
			}
			jsonl = append(AppendLabelJSON(jsonl, &l), '\n')
		}
		rec := lb.NewRecord()
		msg, err := enc.Encode(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		files[lc.Case+".canonical.json"] = append(must(json.MarshalIndent(canonicalRecord(t, rec), "", " ")), '\n')
		rec.Release()
		files[lc.Case+".arrow"] = msg
		files[lc.Case+".jsonl"] = jsonl
	}
	return files
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestCrossLanguageGoVectors checks that the committed Go vectors are what
// the Go encoders write today (-update rewrites them).
func TestCrossLanguageGoVectors(t *testing.T) {
	files := goVectors(t, loadVectorCases(t))
	dir := filepath.Join(vectorDir, "go")
	for name, want := range files {
		path := filepath.Join(dir, name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./schemas/wire -run TestCrossLanguage -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what Go writes now (%d bytes committed, %d now): the wire format changed; run -update if intended and regenerate sdk/python's vectors", path, len(got), len(want))
		}
	}
}

// TestCrossLanguagePythonVectors decodes what the Python SDK wrote for the
// same cases with the real decoders: each Arrow message must pass
// DecodeArrow (DecodeLabelArrow) and decode to exactly what Go's own
// message decodes to, be ZSTD-compressed, and each JSON message must be
// byte for byte what AppendJSON (AppendLabelJSON) writes and decode to the
// case's event.
func TestCrossLanguagePythonVectors(t *testing.T) {
	c := loadVectorCases(t)
	goFiles := goVectors(t, c)
	dir := filepath.Join(vectorDir, "python")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v (regenerate with sdk/python/tests/make_vectors.py)", err)
		}
		return b
	}
	zstdMagic := []byte{0x28, 0xB5, 0x2F, 0xFD}
	for _, ec := range c.Events {
		t.Run(ec.Case, func(t *testing.T) {
			msg := read(ec.Case + ".arrow")
			if !bytes.Contains(msg, zstdMagic) {
				t.Errorf("python %s.arrow: no ZSTD frame in the body", ec.Case)
			}
			rec, err := DecodeArrow(msg, nil)
			if err != nil {
				t.Fatalf("DecodeArrow(python %s.arrow): %v", ec.Case, err)
			}
			got := canonicalRecord(t, rec)
			events := recordEvents(rec)
			rec.Release()
			var want any
			if err := json.Unmarshal(goFiles[ec.Case+".canonical.json"], &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("python %s.arrow decodes to\n%s\nwant (what Go's message decodes to)\n%s", ec.Case,
					must(json.Marshal(got)), must(json.Marshal(want)))
			}
			if len(events) != len(ec.Events) {
				t.Fatalf("%d rows, want %d", len(events), len(ec.Events))
			}

			lines := strings.SplitAfter(string(read(ec.Case+".jsonl")), "\n")
			lines = lines[:len(lines)-1]
			if len(lines) != len(ec.Events) {
				t.Fatalf("python %s.jsonl: %d messages, want %d", ec.Case, len(lines), len(ec.Events))
			}
			var d JSONDecoder
			for i, line := range lines {
				e := ec.Events[i].event(t)
				line = strings.TrimSuffix(line, "\n")
				if want := string(AppendJSON(nil, &e)); line != want {
					t.Errorf("python %s.jsonl message %d:\n%s\nwant (AppendJSON)\n%s", ec.Case, i, line, want)
				}
				var got schemas.Event
				if err := d.Decode([]byte(line), &got); err != nil {
					t.Fatalf("decode python %s.jsonl message %d: %v", ec.Case, i, err)
				}
				if got.ID != e.ID || !got.Time.Equal(e.Time) || len(got.Features) != len(e.Features) || got.Latency != e.Latency {
					t.Errorf("python %s.jsonl message %d decodes to %+v, want %+v", ec.Case, i, got, e)
				}
			}
		})
	}
	for _, lc := range c.Labels {
		t.Run(lc.Case, func(t *testing.T) {
			msg := read(lc.Case + ".arrow")
			if !bytes.Contains(msg, zstdMagic) {
				t.Errorf("python %s.arrow: no ZSTD frame in the body", lc.Case)
			}
			labels, err := DecodeLabelArrow(msg, nil)
			if err != nil {
				t.Fatalf("DecodeLabelArrow(python %s.arrow): %v", lc.Case, err)
			}
			lines := strings.Split(strings.TrimSuffix(string(read(lc.Case+".jsonl")), "\n"), "\n")
			if len(labels) != len(lc.Labels) || len(lines) != len(lc.Labels) {
				t.Fatalf("%d labels in arrow, %d json lines, want %d", len(labels), len(lines), len(lc.Labels))
			}
			var d LabelJSONDecoder
			for i := range lc.Labels {
				want := lc.Labels[i].label()
				want.Time = time.UnixMilli(want.Time.UnixMilli()).UTC() // Arrow keeps milliseconds
				if labels[i] != want {
					t.Errorf("arrow label %d = %+v, want %+v", i, labels[i], want)
				}
				full := lc.Labels[i].label()
				if w := string(AppendLabelJSON(nil, &full)); lines[i] != w {
					t.Errorf("python %s.jsonl message %d:\n%s\nwant (AppendLabelJSON)\n%s", lc.Case, i, lines[i], w)
				}
				var got schemas.Label
				if err := d.Decode([]byte(lines[i]), &got); err != nil {
					t.Fatalf("decode python %s.jsonl message %d: %v", lc.Case, i, err)
				}
				if got != full {
					t.Errorf("json label %d = %+v, want %+v", i, got, full)
				}
			}
		})
	}
	if t.Failed() {
		fmt.Fprintln(os.Stderr, "regenerate the Python vectors with sdk/python/tests/make_vectors.py")
	}
}
