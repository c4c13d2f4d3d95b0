package wire

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/schemas"
)

// The example labels in schemas/testdata/labels follow
// schemas/label_event.v1.schema.json: valid/ ones decode to the labels
// below, invalid/ ones fail with the reason below.

func TestLabelSchemaExamplesValid(t *testing.T) {
	want := map[string]schemas.Label{
		"class.json":                    schemas.ClassLabel("e-1", "fraud", "fraud", time.Date(2026, 11, 27, 8, 30, 0, 250e6, time.UTC)),
		"value_unix_ms.json":            schemas.ValueLabel("e-2", "price", 12.5, time.UnixMilli(1764232200250).UTC()),
		"bool_offset_unknown_keys.json": schemas.ClassLabel("e-3", "churn", "true", time.Date(2026, 11, 27, 8, 30, 0, 5e8, time.UTC)),
		"binary_zero_any_order.json":    schemas.ValueLabel("e-4", "fraud", 0, time.UnixMilli(0).UTC()),
		"escaped_strings.json":          schemas.ClassLabel("e-5é", "intent", "café 😀", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
	}
	files := labelExampleFiles(t, "valid")
	if got := slices.Sorted(maps.Keys(want)); !slices.Equal(got, files) {
		t.Fatalf("valid examples %v, expectations for %v", files, got)
	}
	var d LabelJSONDecoder
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			var got schemas.Label
			if err := d.Decode(readLabelExample(t, "valid", name), &got); err != nil {
				t.Fatal(err)
			}
			if w := want[name]; !reflect.DeepEqual(got, w) {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
		})
	}
}

func TestLabelSchemaExamplesInvalid(t *testing.T) {
	want := map[string]string{
		"duplicate_label.json":          `malformed event: "label": duplicate key`,
		"empty_model.json":              `malformed event: invalid label: missing model`,
		"event_id_number.json":          `malformed event: "event_id": not a string`,
		"label_array.json":              `malformed event: "label": arrays and objects are not labels (want a string, number or bool)`,
		"label_empty_string.json":       `malformed event: invalid label: empty class`,
		"label_null.json":               `malformed event: "label": null is not a label (want a string, number or bool)`,
		"label_object.json":             `malformed event: "label": arrays and objects are not labels (want a string, number or bool)`,
		"label_time_bad_date.json":      `malformed event: "label_time": not RFC 3339 or Unix ms`,
		"label_time_fractional_ms.json": `malformed event: "label_time": not RFC 3339 or Unix ms`,
		"missing_event_id.json":         `malformed event: "event_id": missing`,
		"missing_label.json":            `malformed event: "label": missing`,
		"missing_label_time.json":       `malformed event: "label_time": missing`,
		"not_an_object.json":            `malformed event: not a JSON object`,
		"schema_version_2.json":         `malformed event: "schema_version": 2 not supported (want 1)`,
		"trailing_garbage.json":         `malformed event: trailing data after the label at offset 58`,
	}
	files := labelExampleFiles(t, "invalid")
	if got := slices.Sorted(maps.Keys(want)); !slices.Equal(got, files) {
		t.Fatalf("invalid examples %v, expectations for %v", files, got)
	}
	var d LabelJSONDecoder
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			var l schemas.Label
			err := d.Decode(readLabelExample(t, "invalid", name), &l)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want an ErrMalformed", err)
			}
			if err.Error() != want[name] {
				t.Errorf("got  %s\nwant %s", err, want[name])
			}
		})
	}
}

// TestLabelSchemaFileMatchesDecoder checks the parts of the JSON Schema file
// the decoder hard-codes: required and known keys.
func TestLabelSchemaFileMatchesDecoder(t *testing.T) {
	raw, err := os.ReadFile("../label_event.v1.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Schema     string                     `json:"$schema"`
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Schema != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema %q", s.Schema)
	}
	if want := []string{"event_id", "model", "label", "label_time"}; !slices.Equal(s.Required, want) {
		t.Errorf("required %v, want %v", s.Required, want)
	}
	known := []string{"event_id", "label", "label_time", "model", "schema_version"}
	if got := slices.Sorted(maps.Keys(s.Properties)); !slices.Equal(got, known) {
		t.Errorf("properties %v, want %v", got, known)
	}
}

func TestLabelJSONRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891, time.FixedZone("x", 3600))
	for _, l := range []schemas.Label{
		schemas.ClassLabel("e-1", "fraud", "fraud", at),
		schemas.ClassLabel("a\"b\\c\n\x01", "m é", "true", at),
		schemas.ValueLabel("e-2", "price", -1e-9, at),
		schemas.ValueLabel("e-3", "price", 1e300, time.UnixMilli(253402300800000)), // year 10000: written as Unix ms
		schemas.ValueLabel("e-4", "fraud", 0, time.UnixMilli(1)),
	} {
		out := AppendLabelJSON([]byte("x"), &l)
		if out[0] != 'x' {
			t.Fatal("AppendLabelJSON did not append to dst")
		}
		var d LabelJSONDecoder
		var got schemas.Label
		if err := d.Decode(out[1:], &got); err != nil {
			t.Fatalf("decode %s: %v", out[1:], err)
		}
		want := l
		want.Time = l.Time.UTC()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip through %s\ngot  %+v\nwant %+v", out[1:], got, want)
		}
	}
}

func TestAppendLabelJSONExample(t *testing.T) {
	l := schemas.ClassLabel("e-1", "fraud", "fraud", time.Date(2026, 11, 27, 8, 30, 0, 250e6, time.UTC))
	if got, want := string(AppendLabelJSON(nil, &l)),
		`{"event_id":"e-1","model":"fraud","label":"fraud","label_time":"2026-11-27T08:30:00.25Z"}`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	v := schemas.ValueLabel("e-2", "price", 12.5, time.UnixMilli(1764232200250))
	if got, want := string(AppendLabelJSON(nil, &v)),
		`{"event_id":"e-2","model":"price","label":12.5,"label_time":"2025-11-27T08:30:00.25Z"}`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestDecodeLabelJSONMalformed(t *testing.T) {
	for _, tc := range []struct{ in, reason string }{
		{``, "not a JSON object"},
		{`{"event_id":"e","model":"m","label":1,"label_time":1`, "unexpected end of JSON"},
		{`{"event_id":"e","model":"m","label":1e999,"label_time":1}`, `"label": number 1e999 out of range`},
		{`{"event_id":"e","model":"m","label":tru,"label_time":1}`, "invalid JSON"},
		{`{"event_id":"e","model":"m","label":nul,"label_time":1}`, "invalid JSON"},
		{`{"event_id":"e","model":"m","label":01,"label_time":1}`, "invalid JSON"},
		{`{"event_id":"e","model":"m","model":"m","label":1,"label_time":1}`, `"model": duplicate key`},
		{`{"event_id":"e","model":"m","label":1,"label_time":1,"x":[}`, "invalid JSON"},
		{`{"event_id":"e","model":"m","label":"` + strings.Repeat("c", schemas.MaxNameLen+1) + `","label_time":1}`, "class longer than"},
		{`{"event_id":"e","model":"m","label":"a","label_time":-62135596800000}`, "missing label time"},
		{"{\"event_id\":\"e\xff\",\"model\":\"m\",\"label\":1,\"label_time\":1}", "invalid UTF-8"},
	} {
		var d LabelJSONDecoder
		var l schemas.Label
		err := d.Decode([]byte(tc.in), &l)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("Decode(%.60q) = %v, want ErrMalformed with %q", tc.in, err, tc.reason)
		}
	}
}

// TestDecodeLabelJSONOwnsStrings: the decoded strings survive the input
// being overwritten.
func TestDecodeLabelJSONOwnsStrings(t *testing.T) {
	in := []byte(`{"event_id":"e-1","model":"fraud","label":"yes","label_time":1}`)
	var d LabelJSONDecoder
	var l schemas.Label
	if err := d.Decode(in, &l); err != nil {
		t.Fatal(err)
	}
	clear(in)
	if l.EventID != "e-1" || l.Model != "fraud" || l.Class != "yes" {
		t.Fatalf("strings alias the input: %+v", l)
	}
}

func TestDecodeLabelJSONAllocs(t *testing.T) {
	in := []byte(`{"event_id":"e-1","model":"fraud","label":"fraud","label_time":"2026-11-27T08:30:00.250Z"}`)
	var d LabelJSONDecoder
	var l schemas.Label
	if err := d.Decode(in, &l); err != nil {
		t.Fatal(err)
	}
	// The event id is carved from the decoder's string arena.
	if n := testing.AllocsPerRun(1000, func() { _ = d.Decode(in, &l) }); n > 0.01 {
		t.Errorf("Decode allocates %v times per label", n)
	}
}

func labelExampleFiles(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "labels", dir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples in testdata/labels/%s: %v", dir, err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	slices.Sort(names)
	return names
}

func readLabelExample(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "labels", dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSpace(string(b)))
}
