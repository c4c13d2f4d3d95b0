package serving

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/schemas"
)

// readHTTP reads a fixture: "# source" comment lines, header lines, a blank
// line, the body.
func readHTTP(t *testing.T, name string) (http.Header, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	sc := bufio.NewReader(bytes.NewReader(b))
	for {
		line, err := sc.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: no blank line after the headers", name)
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "#") {
			continue
		}
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("%s: bad header line %q", name, line)
		}
		h.Add(k, strings.TrimSpace(v))
	}
	body, _ := readAll(sc)
	return h, body
}

func readAll(r *bufio.Reader) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

func TestDecodeCloudEvents(t *testing.T) {
	c234 := map[string]string{
		"specversion": "1.0", "type": "com.example.someevent", "source": "/mycontext", "id": "C234-1234-1234",
		"time": "2018-04-05T17:31:00Z", "comexampleextension1": "value", "comexampleothervalue": "5", "datacontenttype": "application/json",
	}
	c234data := []byte(`{"appinfoA": "abc", "appinfoB": 123, "appinfoC": true}`)
	d234 := map[string]string{"specversion": "1.0", "type": "com.example.someevent", "source": "/mycontext", "id": "D234-1234-1234"}
	for _, tc := range []struct {
		file  string
		attrs map[string]string
		data  []byte
	}{
		{"ce_binary_json_format.http", c234, c234data},
		{"ce_structured_json_format.http", c234, c234data},
		{"ce_structured_xml.http", map[string]string{
			"specversion": "1.0", "type": "com.example.someevent", "source": "/mycontext", "id": "B234-1234-1234",
			"time": "2018-04-05T17:31:00Z", "comexampleextension1": "value", "comexampleothervalue": "5", "datacontenttype": "application/xml",
		}, []byte(`<much wow="xml"/>`)},
		{"ce_structured_base64.http", d234, []byte(`{ "xyz": 123 }`)},
		{"ce_binary_base64.http", d234, []byte("{ \"xyz\": 123 }\n")},
	} {
		t.Run(tc.file, func(t *testing.T) {
			h, body := readHTTP(t, tc.file)
			evs, err := decodeHTTPCloudEvents(h, body)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 {
				t.Fatalf("%d events, want 1", len(evs))
			}
			if !reflect.DeepEqual(evs[0].attrs, tc.attrs) {
				t.Errorf("attributes\n got %v\nwant %v", evs[0].attrs, tc.attrs)
			}
			if !jsonEqual(t, evs[0].data, tc.data) || (tc.data[0] != '{' && !bytes.Equal(evs[0].data, tc.data)) {
				t.Errorf("data %q, want %q", evs[0].data, tc.data)
			}
		})
	}
}

func TestDecodeCloudEventsRefused(t *testing.T) {
	bin := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	structured := bin("Content-Type", ContentTypeStructured)
	for _, tc := range []struct {
		name string
		h    http.Header
		body string
		want string
	}{
		{"no ce headers", bin("Content-Type", "application/json"), `{}`, "not a CloudEvent"},
		{"no id", bin("ce-specversion", "1.0", "ce-type", "t", "ce-source", "s"), `{}`, `"id" is missing`},
		{"version 0.3", bin("ce-specversion", "0.3", "ce-type", "t", "ce-source", "s", "ce-id", "1"), `{}`, "specversion"},
		{"bad percent", bin("ce-specversion", "1.0", "ce-type", "t", "ce-source", "s", "ce-id", "%zz"), `{}`, "percent"},
		{"data and data_base64", structured, `{"specversion":"1.0","type":"t","source":"s","id":"1","data":{},"data_base64":"e30="}`, "both"},
		{"object attribute", structured, `{"specversion":"1.0","type":"t","source":"s","id":"1","x":{}}`, "attribute"},
		{"not json", structured, `{`, "not a JSON object"},
		{"avro format", bin("Content-Type", "application/cloudevents+avro"), ``, "not supported"},
		{"batch item", bin("Content-Type", ContentTypeBatch), `[{"specversion":"1.0","type":"t","source":"s"}]`, "batch event 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeHTTPCloudEvents(tc.h, []byte(tc.body))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeCloudEventsBinaryPercentAndBatch(t *testing.T) {
	h := http.Header{}
	h.Set("ce-specversion", "1.0")
	h.Set("ce-type", "t")
	h.Set("ce-source", "s")
	h.Set("ce-id", "1")
	h.Set("ce-myext", "Euro%20%E2%82%AC%20%F0%9F%98%80+plus") // the binding's own example of a percent-encoded value
	evs, err := decodeHTTPCloudEvents(h, []byte("x"))
	if err != nil || evs[0].attrs["myext"] != "Euro € 😀+plus" {
		t.Fatalf("got %v, %v", evs, err)
	}
	b := http.Header{"Content-Type": {ContentTypeBatch}}
	evs, err = decodeHTTPCloudEvents(b, []byte(`[{"specversion":"1.0","type":"t","source":"s","id":"1","data":{"a":1}},{"specversion":"1.0","type":"t","source":"s","id":"2","data_base64":"eyJiIjoyfQ=="}]`))
	if err != nil || len(evs) != 2 || string(evs[0].data) != `{"a":1}` || string(evs[1].data) != `{"b":2}` {
		t.Fatalf("batch: %v, %v", evs, err)
	}
	evs, err = decodeHTTPCloudEvents(b, []byte(`[]`))
	if err != nil || len(evs) != 0 {
		t.Fatalf("empty batch: %v, %v", evs, err)
	}
}

func newTestConverter(t *testing.T, mappingYAML string, mutate ...func(*Config)) (*Converter, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig()
	m, err := DecodeMapping([]byte(mappingYAML))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Mapping = m
	for _, f := range mutate {
		f(&cfg)
	}
	reg := prometheus.NewRegistry()
	c, err := New(cfg, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

// metric returns the value of a counter or gauge (with label values in
// label order) from reg.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for i, l := range m.GetLabel() {
				if l.GetValue() != labels[i] {
					continue next
				}
			}
			return value(m)
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func value(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func num(name string, v float64) schemas.Feature { return schemas.Num(name, v) }

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestConverterKServeV1(t *testing.T) {
	const id = "0009174a-24a8-4603-b098-09c8799950e9"
	reqTime := mustTime("2021-04-10T00:23:26.0789529Z")
	latency := mustTime("2021-04-10T00:23:26.080736102Z").Sub(reqTime)
	iris := func(i int, label string) []schemas.Feature {
		rows := [][]float64{{6.8, 2.8, 4.8, 1.4}, {6.0, 3.4, 4.5, 1.6}}
		names := []string{"sepal_length", "sepal_width", "petal_length", "petal_width"}
		if label == "" {
			names = []string{"instances_0", "instances_1", "instances_2", "instances_3"}
		}
		fs := make([]schemas.Feature, 4)
		for j := range fs {
			fs[j] = num(names[j], rows[i][j])
		}
		return fs
	}
	for _, tc := range []struct {
		name     string
		mapping  string
		reversed bool // the response arrives first
		want     []schemas.Event
	}{
		{name: "no mapping", want: []schemas.Event{
			{ID: id + "-0", Model: "sklearn-iris", Time: reqTime, Latency: latency, Features: iris(0, ""), Prediction: schemas.Prediction{Label: "1"}},
			{ID: id + "-1", Model: "sklearn-iris", Time: reqTime, Latency: latency, Features: iris(1, ""), Prediction: schemas.Prediction{Label: "1"}},
		}},
		{name: "mapping, response first", reversed: true, mapping: `
models:
  sklearn-iris:
    model: iris
    version: "1.0"
    features:
      - tensor: instances
        columns: [sepal_length, sepal_width, petal_length, petal_width]
    prediction:
      label: predictions
      classes: [setosa, versicolor, virginica]
    segments: [namespace, endpoint]
`, want: []schemas.Event{
			{ID: id + "-0", Model: "iris", ModelVersion: "1.0", Time: reqTime, Latency: latency, Features: iris(0, "x"), Prediction: schemas.Prediction{Label: "versicolor"}, Segments: []schemas.Tag{{Key: "namespace", Value: "default"}}},
			{ID: id + "-1", Model: "iris", ModelVersion: "1.0", Time: reqTime, Latency: latency, Features: iris(1, "x"), Prediction: schemas.Prediction{Label: "versicolor"}, Segments: []schemas.Tag{{Key: "namespace", Value: "default"}}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, reg := newTestConverter(t, tc.mapping)
			files := []string{"kserve_v1_request.http", "kserve_v1_response.http"}
			if tc.reversed {
				files[0], files[1] = files[1], files[0]
			}
			h, body := readHTTP(t, files[0])
			evs, err := c.CloudEvent(h, body)
			if err != nil || len(evs) != 0 {
				t.Fatalf("first half: %v, %v", evs, err)
			}
			if got := metric(t, reg, "vigil_serving_pending_pairs"); got != 1 {
				t.Fatalf("pending %v, want 1", got)
			}
			h, body = readHTTP(t, files[1])
			evs, err = c.CloudEvent(h, body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(evs, tc.want) {
				t.Errorf("events\n got %+v\nwant %+v", evs, tc.want)
			}
			if got := metric(t, reg, "vigil_serving_pairs_total", "paired"); got != 1 {
				t.Errorf("paired %v, want 1", got)
			}
			if got := metric(t, reg, "vigil_serving_events_total", "v1"); got != 2 {
				t.Errorf("v1 events %v, want 2", got)
			}
			if got := metric(t, reg, "vigil_serving_pending_pairs"); got != 0 {
				t.Errorf("pending %v, want 0", got)
			}
		})
	}
}

// structuredCE wraps a fixture payload in a structured-mode CloudEvent as
// KServe's logger would fill it.
func structuredCE(t *testing.T, typ, id, tm string, data []byte) (http.Header, []byte) {
	t.Helper()
	ev := map[string]any{
		"specversion": "1.0", "type": typ, "source": "http://localhost:9081/", "id": id, "time": tm,
		"inferenceservicename": "sklearn-irisv2", "namespace": "kserve-test", "component": "predictor", "endpoint": "default",
		"datacontenttype": "application/json", "data": json.RawMessage(data),
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{"Content-Type": {ContentTypeStructured + "; charset=utf-8"}}, b
}

func TestConverterKServeV2(t *testing.T) {
	req, resp := fixture(t, "kserve_v2_request.json"), fixture(t, "kserve_v2_response.json")
	const id = "823248cc-d770-4a51-9606-16803395569c"
	t0, t1 := "2026-11-26T10:00:00Z", "2026-11-26T10:00:00.004Z"
	row := func(i int, names ...string) []schemas.Feature {
		rows := [][]float64{{6.8, 2.8, 4.8, 1.4}, {6.0, 3.4, 4.5, 1.6}}
		fs := make([]schemas.Feature, 0, 4)
		for j, n := range names {
			if n != "" {
				fs = append(fs, num(n, rows[i][j]))
			}
		}
		return fs
	}
	base := schemas.Event{Model: "iris-classifier", ModelVersion: "v1.0.0", Time: mustTime(t0), Latency: 4 * time.Millisecond}
	ev := func(i int, fs []schemas.Feature, p schemas.Prediction, mut ...func(*schemas.Event)) schemas.Event {
		e := base
		e.ID, e.Features, e.Prediction = id+"-"+string(rune('0'+i)), fs, p
		for _, f := range mut {
			f(&e)
		}
		return e
	}
	for _, tc := range []struct {
		name, mapping string
		want          []schemas.Event
	}{
		{name: "no mapping: columns input-0_j, FP32 output is the score", want: []schemas.Event{
			ev(0, row(0, "input-0_0", "input-0_1", "input-0_2", "input-0_3"), schemas.Score(1)),
			ev(1, row(1, "input-0_0", "input-0_1", "input-0_2", "input-0_3"), schemas.Score(2)),
		}},
		{name: "mapping by the InferenceService name: named columns, a skipped one, label classes, segments", mapping: `
models:
  sklearn-irisv2:
    model: iris
    features:
      - tensor: input-0
        columns: [sepal_length, sepal_width, "", petal_width]
    prediction:
      label: predict
      classes: [setosa, versicolor, virginica]
    segments: [namespace, component]
`, want: []schemas.Event{
			ev(0, row(0, "sepal_length", "sepal_width", "", "petal_width"), schemas.Class("versicolor"), func(e *schemas.Event) {
				e.Model, e.Segments = "iris", []schemas.Tag{{Key: "namespace", Value: "kserve-test"}, {Key: "component", Value: "predictor"}}
			}),
			ev(1, row(1, "sepal_length", "sepal_width", "", "petal_width"), schemas.Class("virginica"), func(e *schemas.Event) {
				e.Model, e.Segments = "iris", []schemas.Tag{{Key: "namespace", Value: "kserve-test"}, {Key: "component", Value: "predictor"}}
			}),
		}},
		{name: "mapping by model_name, value output, version from the mapping", mapping: `
models:
  iris-classifier:
    version: "7"
    prediction:
      value: predict
`, want: []schemas.Event{
			ev(0, row(0, "input-0_0", "input-0_1", "input-0_2", "input-0_3"), schemas.Regression(1), func(e *schemas.Event) { e.ModelVersion = "7" }),
			ev(1, row(1, "input-0_0", "input-0_1", "input-0_2", "input-0_3"), schemas.Regression(2), func(e *schemas.Event) { e.ModelVersion = "7" }),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestConverter(t, tc.mapping)
			h, b := structuredCE(t, TypeInferenceRequest, id, t0, req)
			if evs, err := c.CloudEvent(h, b); err != nil || evs != nil {
				t.Fatalf("request: %v, %v", evs, err)
			}
			h, b = structuredCE(t, TypeInferenceResponse, id, t1, resp)
			evs, err := c.CloudEvent(h, b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(evs, tc.want) {
				t.Errorf("events\n got %+v\nwant %+v", evs, tc.want)
			}
		})
	}
}

func TestConverterOIPPair(t *testing.T) {
	req, resp := fixture(t, "mlserver_pandas_request.json"), fixture(t, "int64_nested_response.json")
	now := mustTime("2026-11-26T10:00:00Z")
	pair := func(req, resp []byte) []byte {
		return []byte(`{"request": ` + string(req) + `, "response": ` + string(resp) + `}`)
	}
	people := func(i int) []schemas.Feature {
		return [][]schemas.Feature{
			{schemas.Str("First Name", "Joanne"), num("Age", 34)},
			{schemas.Str("First Name", "Michael"), num("Age", 22)},
		}[i]
	}
	for _, tc := range []struct {
		name, mapping string
		body          []byte
		want          []schemas.Event
		wantErr       string
	}{
		// By default an INT64 [2, 2] output is class probabilities: 1, 2 are
		// not in [0, 1], so the events are invalid.
		{name: "BYTES and INT32 inputs, INT64 [2,2] output by default: refused", body: pair(req, resp), wantErr: "not in [0,1]"},
		{name: "BYTES and INT32 inputs, INT64 [2,2] output as features-free labels: refused (one value per row)", body: pair(req, resp), mapping: "models:\n  people:\n    prediction: {label: output0}\n", wantErr: "want one value per row"},
		{name: "INT64 output as a label, id from an input tensor", body: pair(req, []byte(`{"model_name":"people","outputs":[{"name":"cls","shape":[2,1],"datatype":"INT64","data":[[0],[1]]}]}`)), mapping: `
models:
  people:
    event_id: input:First Name
    prediction:
      label: cls
      classes: [adult, senior]
`, want: []schemas.Event{
			{ID: "Joanne", Model: "people", Time: now, Features: []schemas.Feature{num("Age", 34)}, Prediction: schemas.Class("adult")},
			{ID: "Michael", Model: "people", Time: now, Features: []schemas.Feature{num("Age", 22)}, Prediction: schemas.Class("senior")},
		}},
		{name: "BYTES output label, request id", body: pair(req, []byte(`{"id":"r-9","outputs":[{"name":"o","shape":[2],"datatype":"BYTES","data":["yes","no"]}]}`)), want: []schemas.Event{
			{ID: "r-9-0", Model: "people", Time: now, Features: people(0), Prediction: schemas.Class("yes")},
			{ID: "r-9-1", Model: "people", Time: now, Features: people(1), Prediction: schemas.Class("no")},
		}},
		{name: "probabilities with a positive class", body: pair(req, []byte(`{"id":"r-1","outputs":[{"name":"p","shape":[2,2],"datatype":"FP64","data":[0.25,0.75,0.5,0.5]}]}`)), mapping: `
models:
  people:
    prediction:
      probabilities: p
      classes: ["no", "yes"]
      positive_class: "yes"
`, want: []schemas.Event{
			{ID: "r-1-0", Model: "people", Time: now, Features: people(0), Prediction: schemas.Prediction{Score: 0.75, HasScore: true, Label: "yes", Probabilities: []schemas.ClassProbability{{Class: "no", P: 0.25}, {Class: "yes", P: 0.75}}}},
			{ID: "r-1-1", Model: "people", Time: now, Features: people(1), Prediction: schemas.Prediction{Score: 0.5, HasScore: true, Label: "no", Probabilities: []schemas.ClassProbability{{Class: "no", P: 0.5}, {Class: "yes", P: 0.5}}}},
		}},
		{name: "one row, event_id request", body: pair([]byte(`{"id":"only","inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3],"parameters":{"columns":["a","b","c"]}}]}`), []byte(`{"outputs":[{"name":"y","shape":[1],"datatype":"BOOL","data":[true]}]}`)), mapping: `
default:
  event_id: request
`, want: []schemas.Event{
			{ID: "only", Model: "people", Time: now, Features: []schemas.Feature{num("a", 1), num("b", 2), num("c", 3)}, Prediction: schemas.Class("true")},
		}},
		{name: "the OIP spec's request example (shape [3], one value)", body: pair(fixture(t, "oip_spec_request.json"), resp), wantErr: `tensor "input1": 1 values for shape [3]`},
		{name: "rows differ", body: pair(req, []byte(`{"outputs":[{"name":"o","shape":[3],"datatype":"FP32","data":[1,2,3]}]}`)), wantErr: "has 3 rows, others 2"},
		{name: "no response", body: []byte(`{"request": {}}`), wantErr: "want both"},
		{name: "V1 object instances", body: pair(fixture(t, "kserve_v1_mixedtype_request.json"), []byte(`{"predictions": [208500.5]}`)), mapping: `
models:
  people:
    event_id: request
    prediction: {value: predictions}
`, want: []schemas.Event{{ID: "oip-", Model: "people", Time: now, Features: []schemas.Feature{
			num("GarageArea", 548), num("LotArea", 8450), schemas.Str("LotShape", "Reg"), schemas.Str("MSZoning", "RL"), schemas.Str("Neighborhood", "CollgCr"),
			num("OverallQual", 7), schemas.Str("SaleType", "WD"), schemas.Str("Utilities", "AllPub"), num("YearBuilt", 2003), num("YrSold", 2008),
		}, Prediction: schemas.Regression(208500.5)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestConverter(t, tc.mapping)
			c.now = func() time.Time { return now }
			evs, err := c.OIPPair("people", tc.body)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want ErrInvalid containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.want) == 1 && tc.want[0].ID == "oip-" {
				if !strings.HasPrefix(evs[0].ID, "oip-") || len(evs[0].ID) != 20 {
					t.Fatalf("hashed id %q", evs[0].ID)
				}
				tc.want[0].ID = evs[0].ID
			}
			if !reflect.DeepEqual(evs, tc.want) {
				t.Errorf("events\n got %+v\nwant %+v", evs, tc.want)
			}
		})
	}
}

func TestPairingBounds(t *testing.T) {
	c, reg := newTestConverter(t, "", func(cfg *Config) { cfg.MaxPending = 3; cfg.PendingTTL = 10 * time.Second })
	now := mustTime("2026-11-26T10:00:00Z")
	c.now = func() time.Time { return now }
	req := []byte(`{"instances": [[1.5]]}`)
	resp := []byte(`{"predictions": [0.5]}`)
	half := func(id string, response bool) Half {
		b := req
		if response {
			b = resp
		}
		return Half{ID: id, Served: "m", Response: response, Body: b, Origin: id}
	}
	offer := func(id string, response bool, wantEvents int) {
		t.Helper()
		evs, err := c.Offer(half(id, response))
		if err != nil || len(evs) != wantEvents {
			t.Fatalf("offer %s: %d events, %v; want %d", id, len(evs), err, wantEvents)
		}
	}
	counts := func(paired, expired, evicted, duplicate, pending float64) {
		t.Helper()
		for _, m := range []struct {
			r    string
			want float64
		}{{"paired", paired}, {"expired", expired}, {"evicted", evicted}, {"duplicate", duplicate}} {
			if got := metric(t, reg, "vigil_serving_pairs_total", m.r); got != m.want {
				t.Errorf("pairs{%s} = %v, want %v", m.r, got, m.want)
			}
		}
		if got := metric(t, reg, "vigil_serving_pending_pairs"); got != pending {
			t.Errorf("pending = %v, want %v", got, pending)
		}
	}
	offer("a", false, 0)
	offer("a", false, 0) // duplicate request half
	offer("b", false, 0)
	now = now.Add(5 * time.Second)
	offer("c", true, 0) // a response first
	counts(0, 0, 0, 1, 3)
	offer("d", false, 0) // full: evicts a, the oldest
	counts(0, 0, 1, 1, 3)
	offer("a", true, 0) // a's request is gone: this response waits; b evicted
	counts(0, 0, 2, 1, 3)
	offer("c", false, 1) // pairs with c's response
	counts(1, 0, 2, 1, 2)
	var origins []any
	c.PendingOrigins(func(o any) { origins = append(origins, o) })
	if !reflect.DeepEqual(origins, []any{"d", "a"}) {
		t.Errorf("pending origins %v, want [d a]", origins)
	}
	now = now.Add(10 * time.Second) // d and a (added at +5s) are 10s old: expired
	c.Sweep()
	counts(1, 2, 2, 1, 0)
	offer("d", true, 0) // d's request expired: this half waits alone
	counts(1, 2, 2, 1, 1)
	// Halves of the same id from another component (KServe's transformer
	// and predictor share a ce-id) do not pair.
	h := half("d", false)
	h.Component = "transformer"
	if evs, _ := c.Offer(h); len(evs) != 0 {
		t.Fatal("paired across components")
	}
	counts(1, 2, 2, 1, 2)
}

func TestMappingDecode(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"models:\n  m:\n    modle: x\n", "field modle not found"},
		{"models:\n  m:\n    event_id: row\n", "event_id"},
		{"models:\n  m:\n    features: [{tensor: a}, {tensor: a}]\n", "listed twice"},
		{"models:\n  m:\n    features: [{tensor: a, name: b, columns: [c]}]\n", "exclusive"},
		{"models:\n  m:\n    prediction: {positive_class: x}\n", "needs prediction.probabilities"},
		{"models:\n  m:\n    prediction: {probabilities: p, classes: [a, b], positive_class: c}\n", "not one of"},
		{"default:\n  features: [{}]\n", "no tensor"},
	} {
		if _, err := DecodeMapping([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.yaml, err, tc.want)
		}
	}
	m, err := DecodeMapping(nil)
	if err != nil || m.Models != nil {
		t.Fatalf("empty mapping: %v %v", m, err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, f := range []func(*Config){func(c *Config) { c.MaxPending = 0 }, func(c *Config) { c.PendingTTL = 0 }} {
		cfg := DefaultConfig()
		f(&cfg)
		if _, err := New(cfg, nil, zerolog.Nop()); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

// TestHeldHalfOwnsItsBody: the caller reuses its buffer after the call (the
// gateway pools request bodies); the waiting half must not change with it.
func TestHeldHalfOwnsItsBody(t *testing.T) {
	c, _ := newTestConverter(t, "")
	buf := []byte(`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]}]}`)
	if evs, err := c.Offer(Half{ID: "1", Served: "m", Body: buf}); err != nil || evs != nil {
		t.Fatal(evs, err)
	}
	for i := range buf {
		buf[i] = 'z'
	}
	evs, err := c.Offer(Half{ID: "1", Served: "m", Response: true, Body: []byte(`{"outputs":[{"name":"y","shape":[2],"datatype":"FP32","data":[0.5,0.25]}]}`)})
	if err != nil || len(evs) != 2 || !reflect.DeepEqual(evs[1].Features[0], num("x", 2)) || evs[1].Prediction.Score != 0.25 {
		t.Fatalf("got %+v, %v", evs, err)
	}
}
