package serving

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
)

// The fuzz targets check that no body panics the decoders, and that what
// they refuse is ErrInvalid (a 400, never a 500).

func seeds(f *testing.F, files ...string) {
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func mustInvalid(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, ErrInvalid) {
		t.Fatalf("error not ErrInvalid: %v", err)
	}
}

func FuzzCloudEventStructured(f *testing.F) {
	seeds(f, "kserve_v2_request.json")
	f.Add([]byte(`{"specversion":"1.0","type":"org.kubeflow.serving.inference.request","source":"s","id":"1","inferenceservicename":"m","data":{"instances":[[1,2]]}}`))
	f.Add([]byte(`{"specversion":"1.0","type":"org.kubeflow.serving.inference.response","source":"s","id":"1","inferenceservicename":"m","data_base64":"eyJwcmVkaWN0aW9ucyI6WzFdfQ=="}`))
	c, err := New(DefaultConfig(), nil, zerolog.Nop())
	if err != nil {
		f.Fatal(err)
	}
	h := http.Header{"Content-Type": {ContentTypeStructured}}
	hb := http.Header{"Content-Type": {ContentTypeBatch}}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := c.CloudEvent(h, body)
		mustInvalid(t, err)
		_, err = c.CloudEvent(hb, append(append([]byte("["), body...), ']'))
		mustInvalid(t, err)
	})
}

func FuzzV1(f *testing.F) {
	seeds(f, "kserve_v1_mixedtype_request.json")
	f.Add([]byte(`{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}`))
	f.Add([]byte(`{"predictions": [[0.1, 0.9], [0.5, 0.5]]}`))
	f.Add([]byte(`{"predictions": ["a", "b"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := decodeRequestJSON(body)
		mustInvalid(t, err)
		_, err = decodeResponseJSON(body)
		mustInvalid(t, err)
	})
}

func FuzzV2(f *testing.F) {
	seeds(f, "kserve_v2_request.json", "kserve_v2_response.json", "oip_spec_request.json", "mlserver_pandas_request.json", "int64_nested_response.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := decodeRequestJSON(body)
		mustInvalid(t, err)
		_, err = decodeResponseJSON(body)
		mustInvalid(t, err)
	})
}

func FuzzOIPPair(f *testing.F) {
	f.Add([]byte(`{"request": {"id":"1","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}, "response": {"outputs":[{"name":"y","shape":[2],"datatype":"INT64","data":[0,1]}]}}`))
	f.Add([]byte(`{"request": {"instances":[{"a":1,"b":"x"}]}, "response": {"predictions":[[0.2,0.8]]}}`))
	mapping, err := DecodeMapping([]byte("default:\n  event_id: input:x\n  prediction: {probabilities: y, positive_class: \"1\"}\n"))
	if err != nil {
		f.Fatal(err)
	}
	cfg := DefaultConfig()
	plain, err := New(cfg, nil, zerolog.Nop())
	if err != nil {
		f.Fatal(err)
	}
	cfg.Mapping = mapping
	mapped, err := New(cfg, nil, zerolog.Nop())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, c := range []*Converter{plain, mapped} {
			evs, err := c.OIPPair("m", body)
			mustInvalid(t, err)
			for i := range evs {
				if err := evs[i].Validate(); err != nil {
					t.Fatalf("event %d invalid: %v", i, err)
				}
			}
		}
	})
}

func FuzzProto(f *testing.F) {
	f.Add(pbBytes(nil, 5, pbTensor("x", "FP32", []int64{1, 2}, pbBytes(nil, 6, []byte{0, 0, 128, 63, 0, 0, 0, 64}), nil)))
	f.Add(append([]byte{0, 0, 0, 0, 1, 0}, pbBytes(nil, 5, pbTensor("s", "BYTES", []int64{1}, nil, nil))...))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := decodeRequestProto(body)
		mustInvalid(t, err)
		_, err = decodeResponseProto(body)
		mustInvalid(t, err)
	})
}

func FuzzMapping(f *testing.F) {
	f.Add([]byte("models:\n  m:\n    model: x\n    features: [{tensor: input-0, columns: [a, b]}]\n    prediction: {probabilities: p, classes: [n, y], positive_class: y}\n    event_id: input:id\n    segments: [namespace]\n"))
	f.Add([]byte("default:\n  version_from: endpoint\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMapping(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded mapping fails Validate: %v", err)
		}
	})
}
