package serving

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestKServeExample: the example InferenceService has the logger fields of
// KServe's v1beta1 LoggerSpec pointing at the gateway's CloudEvents route,
// and its ConfigMap holds a mapping this package accepts.
func TestKServeExample(t *testing.T) {
	b, err := os.ReadFile("../../deployments/kubernetes/kserve-inferenceservice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var isvc, cm bool
	for {
		var doc struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Spec       struct {
				Predictor struct {
					Logger struct {
						Mode string `yaml:"mode"`
						URL  string `yaml:"url"`
					} `yaml:"logger"`
					Model struct {
						ModelFormat struct {
							Name string `yaml:"name"`
						} `yaml:"modelFormat"`
						ProtocolVersion string `yaml:"protocolVersion"`
						StorageURI      string `yaml:"storageUri"`
					} `yaml:"model"`
				} `yaml:"predictor"`
			} `yaml:"spec"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		switch doc.Kind {
		case "InferenceService":
			isvc = true
			p := doc.Spec.Predictor
			if doc.APIVersion != "serving.kserve.io/v1beta1" || p.Logger.Mode != "all" || !strings.HasSuffix(p.Logger.URL, "/v1/cloudevents") ||
				p.Model.ModelFormat.Name == "" || p.Model.ProtocolVersion != "v2" || p.Model.StorageURI == "" {
				t.Errorf("InferenceService: %+v", doc)
			}
		case "ConfigMap":
			cm = true
			m, err := DecodeMapping([]byte(doc.Data["mapping.yaml"]))
			if err != nil {
				t.Fatalf("the ConfigMap's mapping: %v", err)
			}
			if mm, ok := m.Models["sklearn-iris"]; !ok || len(mm.Features) != 1 || len(mm.Features[0].Columns) != 4 {
				t.Errorf("mapping: %+v", m)
			}
		}
	}
	if !isvc || !cm {
		t.Errorf("InferenceService %v, ConfigMap %v: want both", isvc, cm)
	}
}
