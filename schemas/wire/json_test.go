package wire

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/schemas"
)

func exampleEvent() schemas.Event {
	return schemas.Event{
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
	}
}

func TestAppendJSONExample(t *testing.T) {
	e := exampleEvent()
	got := string(AppendJSON([]byte("prefix:"), &e))
	want := `prefix:{"event_id":"e-1","model":"fraud","model_version":"3","event_time":"2026-11-26T10:00:00.123Z",` +
		`"features":{"amount":12.5,"country":"DE","is_new":true,"age":null},` +
		`"prediction":{"score":0.93,"label":"fraud","probabilities":{"fraud":0.93,"ok":0.07},"value":1.5},` +
		`"latency_ms":4.2,"segments":{"region":"eu"}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAppendJSONValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(e *schemas.Event)
		want string // a substring of the output
	}{
		{"escapes", func(e *schemas.Event) { e.ID = "a\"b\\c\n\r\t\b\f\x01\x1f/<>&" }, `"event_id":"a\"b\\c\n\r\t\b\f\u0001\u001f/<>&"`},
		{"unicode verbatim", func(e *schemas.Event) { e.ID = "é😀\u2028" }, `"event_id":"é😀` + "\u2028" + `"`},
		{"invalid UTF-8", func(e *schemas.Event) { e.ID = "a\xffb" }, `"event_id":"a\ufffdb"`},
		{"nanoseconds", func(e *schemas.Event) { e.Time = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC) }, `"event_time":"2026-01-02T03:04:05.000000006Z"`},
		{"offset to UTC", func(e *schemas.Event) { e.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", -3600)) }, `"event_time":"2026-01-02T04:04:05Z"`},
		{"year beyond RFC 3339", func(e *schemas.Event) { e.Time = time.UnixMilli(253402300800000).UTC() }, `"event_time":253402300800000,`},
		{"large float", func(e *schemas.Event) { e.Features = []schemas.Feature{schemas.Num("x", 1e21)} }, `"features":{"x":1e+21}`},
		{"small float", func(e *schemas.Event) { e.Features = []schemas.Feature{schemas.Num("x", -1e-7)} }, `"features":{"x":-1e-7}`},
		{"plain float", func(e *schemas.Event) { e.Features = []schemas.Feature{schemas.Num("x", 123456789.25)} }, `"features":{"x":123456789.25}`},
		{"NaN as null", func(e *schemas.Event) { e.Features = []schemas.Feature{schemas.Num("x", math.NaN())} }, `"features":{"x":null}`},
		{"latency ns", func(e *schemas.Event) { e.Latency = 1500*time.Millisecond + 1 }, `"latency_ms":1500.000001,`},
		{"latency whole", func(e *schemas.Event) { e.Latency = 7 * time.Millisecond }, `"latency_ms":7,`},
		{"no latency, version, segments", func(e *schemas.Event) { e.Latency, e.ModelVersion, e.Segments = 0, "", nil },
			`"model":"fraud","event_time"`},
		{"regression only", func(e *schemas.Event) { e.Prediction = schemas.Regression(-2) }, `"prediction":{"value":-2}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := exampleEvent()
			tc.edit(&e)
			got := string(AppendJSON(nil, &e))
			if !strings.Contains(got, tc.want) {
				t.Errorf("%s\ndoes not contain %s", got, tc.want)
			}
		})
	}
}

// TestJSONRoundTrip: AppendJSON then Decode gives back the same event.
func TestJSONRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(e *schemas.Event)
	}{
		{"example", func(e *schemas.Event) {}},
		{"escapes", func(e *schemas.Event) {
			e.ID = "a\"b\\c\n\r\t\b\f\x00\x01\x1f/"
			e.Features = append(e.Features, schemas.Str("quote\"d", "\\\"\u007f"))
		}},
		{"unicode", func(e *schemas.Event) {
			e.Model = "modèle-模型"
			e.Features = []schemas.Feature{schemas.Str("città", "München 😀 \u2028\u2029 \U0010FFFF")}
			e.Segments = []schemas.Tag{{Key: "région", Value: "Île-de-France"}}
		}},
		{"unix ms far future", func(e *schemas.Event) { e.Time = time.UnixMilli(math.MaxInt64).UTC() }},
		{"unix ms before 0000", func(e *schemas.Event) { e.Time = time.UnixMilli(-62167219200001).UTC() }},
		{"nanoseconds", func(e *schemas.Event) { e.Time = time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC) }},
		{"latency exact", func(e *schemas.Event) { e.Latency = 1234567*time.Hour + 987654321 }},
		{"latency max", func(e *schemas.Event) { e.Latency = math.MaxInt64 }},
		{"floats", func(e *schemas.Event) {
			e.Features = []schemas.Feature{
				schemas.Num("max", math.MaxFloat64), schemas.Num("min", math.SmallestNonzeroFloat64),
				schemas.Num("third", 1.0/3), schemas.Num("neg", -0.1), schemas.Num("e21", 1e21), schemas.Num("zero", 0),
				schemas.Num("big int", 9007199254740993), schemas.Num("17 digits", 142.71428571428572),
			}
			e.Prediction = schemas.Prediction{Score: 5e-324, HasScore: true, Value: -1.7976931348623157e308, HasValue: true}
		}},
		{"only nulls", func(e *schemas.Event) { e.Features = []schemas.Feature{schemas.Missing("a"), schemas.Missing("b")} }},
		{"no features", func(e *schemas.Event) { e.Features = nil; e.Segments = nil; e.Latency = 0; e.ModelVersion = "" }},
		{"label only", func(e *schemas.Event) { e.Prediction = schemas.Class("x") }},
		{"probabilities only", func(e *schemas.Event) {
			e.Prediction = schemas.Class("", schemas.ClassProbability{Class: "a", P: 1}, schemas.ClassProbability{Class: "b", P: 0})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := exampleEvent()
			tc.edit(&want)
			data := AppendJSON(nil, &want)
			var d JSONDecoder
			var got schemas.Event
			if err := d.Decode(data, &got); err != nil {
				t.Fatalf("decode %s: %v", data, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s\ngot  %+v\nwant %+v", data, got, want)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	const head = `{"event_id":"e","model":"m","prediction":{"score":1},"features":{}`
	for _, tc := range []struct {
		name string
		in   string
		want func(e *schemas.Event)
	}{
		{"positive offset", head + `,"event_time":"2026-11-26T12:00:00.123+02:00"}`,
			func(e *schemas.Event) { e.Time = time.Date(2026, 11, 26, 10, 0, 0, 123e6, time.UTC) }},
		{"negative offset, lower case", head + `,"event_time":"2026-11-25t23:30:00-10:30"}`,
			func(e *schemas.Event) { e.Time = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) }},
		{"more than 9 fraction digits", head + `,"event_time":"2026-11-26T10:00:00.1234567891234z"}`,
			func(e *schemas.Event) { e.Time = time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC) }},
		{"leap day", head + `,"event_time":"2024-02-29T00:00:00Z"}`,
			func(e *schemas.Event) { e.Time = time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC) }},
		{"negative unix ms", head + `,"event_time":-1}`,
			func(e *schemas.Event) { e.Time = time.UnixMilli(-1).UTC() }},
		{"whitespace everywhere", " \t\r\n{ \"event_id\" : \"e\" , \"model\" :\"m\", \"event_time\":1 ,\"features\" : { \"a\" : 1 , \"b\" : null } ,\n\"prediction\":{ \"score\" : 1 } } \n",
			func(e *schemas.Event) {
				e.Time = time.UnixMilli(1).UTC()
				e.Features = []schemas.Feature{schemas.Num("a", 1), schemas.Missing("b")}
			}},
		{"escapes in keys and values", head[:len(head)-2] + `{"\u0061\n":"\ud83d\ude00\u00e9\/","b":"\ud800x"},"event_time":1}`,
			func(e *schemas.Event) {
				e.Time = time.UnixMilli(1).UTC()
				e.Features = []schemas.Feature{schemas.Str("a\n", "😀é/"), schemas.Str("b", "\uFFFDx")}
			}},
		{"numbers", head[:len(head)-2] + `{"a":-0,"b":1E2,"c":2.5e-3,"d":0.1,"e":12345678901234567890},"event_time":1}`,
			func(e *schemas.Event) {
				e.Time = time.UnixMilli(1).UTC()
				e.Features = []schemas.Feature{schemas.Num("a", math.Copysign(0, -1)), schemas.Num("b", 100), schemas.Num("c", 0.0025),
					schemas.Num("d", 0.1), schemas.Num("e", 12345678901234567890)}
			}},
		{"latency forms", head + `,"event_time":1,"latency_ms":1e3}`,
			func(e *schemas.Event) { e.Time = time.UnixMilli(1).UTC(); e.Latency = time.Second }},
		{"latency rounds past ns", head + `,"event_time":1,"latency_ms":0.0000016}`,
			func(e *schemas.Event) { e.Time = time.UnixMilli(1).UTC(); e.Latency = 2 }},
		{"nulls for optional fields", head + `,"event_time":1,"model_version":null,"latency_ms":null,"segments":null}`,
			func(e *schemas.Event) { e.Time = time.UnixMilli(1).UTC() }},
		{"unknown prediction keys", `{"event_id":"e","model":"m","event_time":1,"features":{},"prediction":{"x":[{}],"value":2,"score":null}}`,
			func(e *schemas.Event) { e.Time = time.UnixMilli(1).UTC(); e.Prediction = schemas.Regression(2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := schemas.Event{ID: "e", Model: "m", Prediction: schemas.Score(1)}
			tc.want(&want)
			var d JSONDecoder
			var got schemas.Event
			if err := d.Decode([]byte(tc.in), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestDecodeJSONMalformed(t *testing.T) {
	const ok = `"event_id":"e","model":"m","event_time":1,"features":{},"prediction":{"score":1}`
	long := strings.Repeat("x", schemas.MaxNameLen+1)
	for _, tc := range []struct{ in, want string }{
		{``, `not a JSON object`},
		{`[]`, `not a JSON object`},
		{`{` + ok, `unexpected end of JSON, want ',' or '}' in event`},
		{`{` + ok + `}x`, `trailing data after the event at offset 82`},
		{`{` + ok + `,}`, `invalid JSON at offset 82: got '}', want a key in event`},
		{`{` + ok + `,"x" 1}`, `invalid JSON at offset 86: got '1', want ':'`},
		{`{"event_id":"e","model":"m","event_time":1,"features":{}}`, `"prediction": missing`},
		{`{"event_id":"e","model":"m","features":{},"prediction":{"score":1}}`, `"event_time": missing`},
		{`{"event_id":"e","event_time":1,"features":{},"prediction":{"score":1}}`, `"model": missing`},
		{`{` + ok + `,"model":"n"}`, `"model": duplicate key`},
		{`{"event_id":null,` + ok[15:] + `}`, `"event_id": not a string`},
		{`{"event_id":"` + long + `",` + ok[15:] + `}`, `invalid event: event id longer than 256 bytes`},
		{`{` + ok + `,"model_version":3}`, `"model_version": not a string`},
		{`{` + ok + `,"event_time":2}`, `"event_time": duplicate key`},
		{`{"event_time":"2026-11-26T10:00:00",` + ok[42:] + `,"event_id":"e","model":"m"}`, `"event_time": not RFC 3339 or Unix ms`},
		{`{"event_time":"2026-13-01T00:00:00Z",` + ok[42:] + `,"event_id":"e","model":"m"}`, `"event_time": not RFC 3339 or Unix ms`},
		{`{"event_time":"2026-01-01T24:00:00Z",` + ok[42:] + `,"event_id":"e","model":"m"}`, `"event_time": not RFC 3339 or Unix ms`},
		{`{"event_time":"2026-01-01T00:00:60Z",` + ok[42:] + `,"event_id":"e","model":"m"}`, `"event_time": not RFC 3339 or Unix ms`},
		{`{"event_time":"2026-01-01T00:00:00+24:00",` + ok[42:] + `,"event_id":"e","model":"m"}`, `"event_time": not RFC 3339 or Unix ms`},
		{`{"event_time":"2026-01-01T00:00:00.Z",` + ok[42:] + `,"event_id":"e","model":"m"}`, `"event_time": not RFC 3339 or Unix ms`},
		{`{"event_time":1e3,` + ok[42:] + `,"event_id":"e","model":"m"}`, `"event_time": not RFC 3339 or Unix ms`},
		{`{"event_time":99999999999999999999,` + ok[42:] + `,"event_id":"e","model":"m"}`, `"event_time": not RFC 3339 or Unix ms`},
		{`{"event_time":true,` + ok[42:] + `,"event_id":"e","model":"m"}`, `"event_time": not RFC 3339 or Unix ms`},
		{`{"event_time":"0001-01-01T00:00:00Z",` + ok[42:] + `,"event_id":"e","model":"m"}`, `invalid event: missing event time`},
		{`{` + ok[:41] + `,"features":[],` + ok[55:] + `}`, `"features": not an object`},
		{`{` + ok[:41] + `,"features":{"a":{}}` + ok[55:] + `}`, `"features.a": objects are not feature values (use number, string, bool, an array of numbers or null)`},
		{`{` + ok[:41] + `,"features":{"a":[]}` + ok[55:] + `}`, `"features.a": empty array (a vector has 1 to 4096 numbers)`},
		{`{` + ok[:41] + `,"features":{"a":["x"]}` + ok[55:] + `}`, `"features.a": array element 0 is not a number`},
		{`{` + ok[:41] + `,"features":{"a":[1,null]}` + ok[55:] + `}`, `"features.a": array element 1 is not a number`},
		{`{` + ok[:41] + `,"features":{"a":[1,[2]]}` + ok[55:] + `}`, `"features.a": array element 1 is not a number`},
		{`{` + ok[:41] + `,"features":{"a":[1,]}` + ok[55:] + `}`, `"features.a": array element 1 is not a number`},
		{`{` + ok[:41] + `,"features":{"a":[1 2]}` + ok[55:] + `}`, `"features.a": invalid JSON in array at offset 62, want ',' or ']'`},
		{`{` + ok[:41] + `,"features":{"a":[1e999]}` + ok[55:] + `}`, `"features.a": array element 0: number 1e999 out of range`},
		{`{` + ok[:41] + `,"features":{"a":[1` + strings.Repeat(",1", 4096) + `]}` + ok[55:] + `}`, `"features.a": array longer than 4096 numbers`},
		{`{` + ok[:41] + `,"features":{"a]":[1]}` + ok[55:] + `}`, `invalid event: feature "a]": a vector's name must not end in ']'`},
		{`{` + ok[:41] + `,"features":{"a":tru}` + ok[55:] + `}`, `"features.a": not a bool`},
		{`{` + ok[:41] + `,"features":{"a":nul}` + ok[55:] + `}`, `invalid JSON at offset 59: got 'n', want a value`},
		{`{` + ok[:41] + `,"features":{"a":+1}` + ok[55:] + `}`, `invalid JSON at offset 59: got '+', want a value`},
		{`{` + ok[:41] + `,"features":{"a":01}` + ok[55:] + `}`, `invalid JSON at offset 60: got '1', want ',' or '}' in features`},
		{`{` + ok[:41] + `,"features":{"a":1.}` + ok[55:] + `}`, `"features.a": bad number: no digits after '.'`},
		{`{` + ok[:41] + `,"features":{"a":1e}` + ok[55:] + `}`, `"features.a": bad number: no digits in exponent`},
		{`{` + ok[:41] + `,"features":{"a":1e999}` + ok[55:] + `}`, `"features.a": number 1e999 out of range`},
		{`{` + ok[:41] + `,"features":{"a":NaN}` + ok[55:] + `}`, `invalid JSON at offset 59: got 'N', want a value`},
		{`{` + ok[:41] + `,"features":{"a":"x\qy"}` + ok[55:] + `}`, `"features.a": bad escape "\\q" in string`},
		{`{` + ok[:41] + `,"features":{"a":"\u12"}` + ok[55:] + `}`, `"features.a": bad \u escape in string`},
		{`{` + ok[:41] + `,"features":{"a":"x` + "\n" + `"}` + ok[55:] + `}`, `"features.a": control character 0x0a in string (escape it)`},
		{`{` + ok[:41] + `,"features":{"a":"x` + "\xff" + `"}` + ok[55:] + `}`, `"features.a": invalid UTF-8 in string`},
		{`{` + ok[:41] + `,"features":{"a` + "\xc3" + `":1}` + ok[55:] + `}`, `key in features: invalid UTF-8 in string`},
		{`{` + ok[:41] + `,"features":{"a":"x`, `"features.a": unterminated string`},
		{`{` + ok[:41] + `,"features":{"":1}` + ok[55:] + `}`, `invalid event: feature 0: bad name`},
		{`{` + ok[:41] + `,"features":{"a":1,"a":null}` + ok[55:] + `}`, `"features.a": duplicate feature`},
		{`{` + ok[:55] + `,"prediction":{}}`, `"prediction": needs one of score, label, probabilities, value`},
		{`{` + ok[:55] + `,"prediction":{"label":""}}`, `"prediction": needs one of score, label, probabilities, value`},
		{`{` + ok[:55] + `,"prediction":{"probabilities":{}}}`, `"prediction": needs one of score, label, probabilities, value`},
		{`{` + ok[:55] + `,"prediction":1}`, `"prediction": not an object`},
		{`{` + ok[:55] + `,"prediction":{"score":"0.5"}}`, `"prediction.score": not a number`},
		{`{` + ok[:55] + `,"prediction":{"label":1}}`, `"prediction.label": not a string`},
		{`{` + ok[:55] + `,"prediction":{"value":1,"value":2}}`, `"prediction.value": duplicate key`},
		{`{` + ok[:55] + `,"prediction":{"probabilities":[0.5]}}`, `"prediction.probabilities": not an object`},
		{`{` + ok[:55] + `,"prediction":{"probabilities":{"a":null}}}`, `"prediction.probabilities.a": not a number`},
		{`{` + ok[:55] + `,"prediction":{"probabilities":{"a":0.5,"a":0.5}}}`, `"prediction.probabilities.a": duplicate class`},
		{`{` + ok[:55] + `,"prediction":{"probabilities":{"a":-0.5}}}`, `invalid event: class probability "a": -0.5 not in [0,1]`},
		{`{` + ok + `,"latency_ms":"4"}`, `"latency_ms": not a number`},
		{`{` + ok + `,"latency_ms":-0.5}`, `"latency_ms": negative`},
		{`{` + ok + `,"latency_ms":9223372036854.775808}`, `"latency_ms": out of range`},
		{`{` + ok + `,"latency_ms":1e300}`, `"latency_ms": out of range`},
		{`{` + ok + `,"segments":[]}`, `"segments": not an object`},
		{`{` + ok + `,"segments":{"a":null}}`, `"segments.a": not a string`},
		{`{` + ok + `,"segments":{"a":"x","a":"y"}}`, `"segments.a": duplicate segment`},
		{`{` + ok + `,"segments":{"":"x"}}`, `invalid event: segment 0: bad key`},
		{`{` + ok + `,"schema_version":"1"}`, `"schema_version": not a number`},
		{`{` + ok + `,"schema_version":1.0}`, `"schema_version": 1.0 not supported (want 1)`},
		{`{` + ok + `,"unknown":[1,{"a":tx}]}`, `invalid JSON at offset 100: got 't', want a value`},
		{`{` + ok + `,"unknown":"\x"}`, `at offset 93: bad escape "\\x" in string`},
		{`{` + ok + `,"unknown":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, `JSON nested deeper than 64 levels`},
	} {
		var d JSONDecoder
		var e schemas.Event
		err := d.Decode([]byte(tc.in), &e)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want an ErrMalformed", tc.in, err)
			continue
		}
		if got, want := err.Error(), "malformed event: "+tc.want; got != want {
			t.Errorf("%s:\ngot  %s\nwant %s", tc.in, got, want)
		}
	}
}

// TestDecodeJSONOwnsStrings: decoded strings survive the input being
// overwritten and the decoder decoding other events.
func TestDecodeJSONOwnsStrings(t *testing.T) {
	var d JSONDecoder
	var first, e schemas.Event
	in := AppendJSON(nil, benchEvent(1, 8))
	if err := d.Decode(in, &first); err != nil {
		t.Fatal(err)
	}
	want := *benchEvent(1, 8)
	for i := range in {
		in[i] = 'x'
	}
	for i := 0; i < 2000; i++ { // enough to go through several arena chunks
		if err := d.Decode(AppendJSON(nil, benchEvent(i+2, 8)), &e); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("got  %+v\nwant %+v", first, want)
	}
}

func TestDecodeJSONAllocs(t *testing.T) {
	msgs := benchJSON(t, 64)
	var d JSONDecoder
	var e schemas.Event
	i := 0
	decode := func() {
		if err := d.Decode(msgs[i%len(msgs)], &e); err != nil {
			t.Fatal(err)
		}
		i++
	}
	decode() // warm up: intern table, slices
	if n := testing.AllocsPerRun(1000, decode); n != 0 {
		t.Errorf("%v allocations per decode, want 0 (amortised)", n)
	}
}
