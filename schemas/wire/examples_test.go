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

// The example events in schemas/testdata and the JSON Schema file specify
// the same format as the decoder: valid/ examples decode, invalid/ ones fail
// with the reason below. No JSON Schema validator is involved: the examples
// are written to follow the schema file, and this test keeps the decoder in
// line with them.

func TestSchemaExamplesValid(t *testing.T) {
	want := map[string]schemas.Event{
		"example.json": {
			ID: "e-1", Model: "fraud", ModelVersion: "3",
			Time: time.Date(2026, 11, 26, 10, 0, 0, 123e6, time.UTC),
			Features: []schemas.Feature{
				schemas.Num("amount", 12.5), schemas.Str("country", "DE"), schemas.Flag("is_new", true), schemas.Missing("age"),
			},
			Prediction: schemas.Prediction{
				Score: 0.93, HasScore: true, Label: "fraud", Value: 1.5, HasValue: true,
				Probabilities: []schemas.ClassProbability{{Class: "fraud", P: 0.93}, {Class: "ok", P: 0.07}},
			},
			Latency:  4200 * time.Microsecond,
			Segments: []schemas.Tag{{Key: "region", Value: "eu"}},
		},
		"minimal_unix_ms.json": {
			ID: "e-2", Model: "churn", Time: time.UnixMilli(1764151200123).UTC(),
			Prediction: schemas.Regression(-3.25),
		},
		"offset_and_unknown_keys.json": {
			ID: "e-3", Model: "ranker", Time: time.Date(2026, 11, 26, 10, 0, 0, 5e8, time.UTC),
			Features: []schemas.Feature{
				schemas.Str("q", "café 😀"), schemas.Num("n", -1500), schemas.Num("zero", 0),
			},
			Prediction: schemas.Class("relevant"),
		},
		"multiclass.json": {
			ID: "e-4", Model: "intent", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			Features:   []schemas.Feature{schemas.Num("text_len", 42), schemas.Str("lang", "en")},
			Prediction: schemas.Class("", schemas.ClassProbability{Class: "buy", P: 0.7}, schemas.ClassProbability{Class: "browse", P: 0.2}, schemas.ClassProbability{Class: "leave", P: 0.1}),
			Latency:    time.Microsecond,
			Segments:   []schemas.Tag{{Key: "app", Value: "ios"}, {Key: "country", Value: "US"}},
		},
	}
	files := exampleFiles(t, "valid")
	if got := slices.Sorted(maps.Keys(want)); !slices.Equal(got, files) {
		t.Fatalf("valid examples %v, expectations for %v", files, got)
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			var d JSONDecoder
			var got schemas.Event
			if err := d.Decode(readExample(t, "valid", name), &got); err != nil {
				t.Fatal(err)
			}
			if w := want[name]; !reflect.DeepEqual(got, w) {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
		})
	}
}

func TestSchemaExamplesInvalid(t *testing.T) {
	want := map[string]string{
		"duplicate_feature.json":        `malformed event: "features.a": duplicate feature`,
		"empty_model.json":              `malformed event: invalid event: missing model`,
		"event_id_number.json":          `malformed event: "event_id": not a string`,
		"event_time_bad_date.json":      `malformed event: "event_time": not RFC 3339 or Unix ms`,
		"event_time_fractional_ms.json": `malformed event: "event_time": not RFC 3339 or Unix ms`,
		"event_time_space.json":         `malformed event: "event_time": not RFC 3339 or Unix ms`,
		"feature_array.json":            `malformed event: "features.tags": array element 0 is not a number`,
		"feature_object.json":           `malformed event: "features.geo": objects are not feature values (use number, string, bool, an array of numbers or null)`,
		"missing_event_id.json":         `malformed event: "event_id": missing`,
		"missing_features.json":         `malformed event: "features": missing`,
		"negative_latency.json":         `malformed event: "latency_ms": negative`,
		"prediction_empty.json":         `malformed event: "prediction": needs one of score, label, probabilities, value`,
		"probability_above_one.json":    `malformed event: invalid event: class probability "a": 1.5 not in [0,1]`,
		"schema_version_2.json":         `malformed event: "schema_version": 2 not supported (want 1)`,
		"segment_not_string.json":       `malformed event: "segments.tier": not a string`,
		"trailing_garbage.json":         `malformed event: trailing data after the event at offset 87`,
	}
	files := exampleFiles(t, "invalid")
	if got := slices.Sorted(maps.Keys(want)); !slices.Equal(got, files) {
		t.Fatalf("invalid examples %v, expectations for %v", files, got)
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			var d JSONDecoder
			var e schemas.Event
			err := d.Decode(readExample(t, "invalid", name), &e)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want an ErrMalformed", err)
			}
			if err.Error() != want[name] {
				t.Errorf("got  %s\nwant %s", err, want[name])
			}
		})
	}
}

// TestSchemaFileMatchesDecoder checks the parts of the JSON Schema file the
// decoder hard-codes: required and known keys.
func TestSchemaFileMatchesDecoder(t *testing.T) {
	raw, err := os.ReadFile("../prediction_event.v1.schema.json")
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
	if want := []string{"event_id", "model", "event_time", "features", "prediction"}; !slices.Equal(s.Required, want) {
		t.Errorf("required %v, want %v", s.Required, want)
	}
	known := []string{"event_id", "event_time", "features", "latency_ms", "model", "model_version", "prediction", "schema_version", "segments"}
	if got := slices.Sorted(maps.Keys(s.Properties)); !slices.Equal(got, known) {
		t.Errorf("properties %v, want %v", got, known)
	}
}

func exampleFiles(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", dir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples in testdata/%s: %v", dir, err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	slices.Sort(names)
	return names
}

func readExample(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSpace(string(b)))
}
