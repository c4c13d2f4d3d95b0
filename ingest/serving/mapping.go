package serving

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Mapping says, per served model, how its tensors become a Vigil event. It
// is read from YAML (DecodeMapping, LoadMapping; unknown keys are errors):
//
//	default:                 # for served models not listed (optional)
//	  segments: [namespace]
//	models:
//	  income:                # the served model's name (OIP model_name, KServe InferenceService, URL, topic)
//	    model: income-v      # the Vigil model name (default: the served name)
//	    version: "3"         # default: the payload's model_version, else the attribute version_from names
//	    version_from: endpoint
//	    features:            # default: every input tensor
//	      - tensor: input-0  # a V2 input tensor; "instances" for V1 lists
//	        columns: [age, hours_per_week, capital_gain]
//	      - tensor: country
//	        name: country_code
//	    prediction:          # default: the first output, by its datatype
//	      probabilities: predict_proba
//	      classes: ["<=50K", ">50K"]
//	      positive_class: ">50K"
//	    event_id: request-row # request-row (default), request, or input:<tensor>
//	    segments: [namespace, component]
type Mapping struct {
	Default *ModelMapping           `yaml:"default"`
	Models  map[string]ModelMapping `yaml:"models"`
}

// ModelMapping is the mapping of one served model.
type ModelMapping struct {
	// Model is the Vigil model name; "" = the served model's name.
	Model string `yaml:"model"`
	// Version is the model version; "" = the payload's model_version (the
	// response's, then the request's), else the value of the attribute
	// VersionFrom names (a CloudEvent attribute or extension, or a Kafka
	// header), else "".
	Version     string `yaml:"version"`
	VersionFrom string `yaml:"version_from"`
	// Features lists the input tensors that are features; none = every input
	// tensor, each named by its tensor (and <tensor>_<j> for columns).
	Features []FeatureMapping `yaml:"features"`
	// Prediction says which outputs are the prediction.
	Prediction PredictionMapping `yaml:"prediction"`
	// EventID is where an event's id comes from: "request-row" (the
	// default): the request id, "-" and the row index; "request": the
	// request id alone when the request has one row (so labels can join on
	// it), as request-row otherwise; "input:<tensor>": the row's value of that
	// input tensor (which is then not a feature).
	EventID string `yaml:"event_id"`
	// Segments are attribute names (CloudEvent extensions such as namespace,
	// component, endpoint; Kafka headers) whose values become segment tags.
	Segments []string `yaml:"segments"`
}

// FeatureMapping names the features of one input tensor.
type FeatureMapping struct {
	// Tensor is the input tensor's name ("instances" for V1 list instances,
	// or the key of V1 object instances).
	Tensor string `yaml:"tensor"`
	// Name is the feature name of a tensor with one value per row ([n] or
	// [n, 1]); "" = the tensor name.
	Name string `yaml:"name"`
	// Columns name the values of a row of a wider tensor ([n, k]), in order;
	// "" skips a column. None = the tensor's parameters.columns, else
	// <tensor>_0 ... <tensor>_<k-1>.
	Columns []string `yaml:"columns"`
}

// PredictionMapping names the outputs that make the prediction. For V1 the
// one output is "predictions". With none set, the first output is the
// prediction: one float per row is the score; one integer, boolean or
// string per row the label; k > 1 numbers per row the class probabilities
// (classes "0".."k-1" unless Classes names them), the label their argmax
// and, when k = 2, the score the probability of the second class.
type PredictionMapping struct {
	Score         string   `yaml:"score"`          // output: probability of the positive class, one per row
	Label         string   `yaml:"label"`          // output: the predicted class, one per row (an integer i is Classes[i] when Classes is set)
	Value         string   `yaml:"value"`          // output: a regressor's prediction, one per row
	Probabilities string   `yaml:"probabilities"`  // output: k class probabilities per row
	Classes       []string `yaml:"classes"`        // the classes of Probabilities' columns (and of integer labels)
	PositiveClass string   `yaml:"positive_class"` // with Probabilities: the score is this class's probability
}

func (p *PredictionMapping) isDefault() bool {
	return p.Score == "" && p.Label == "" && p.Value == "" && p.Probabilities == ""
}

// Event id sources (ModelMapping.EventID).
const (
	EventIDRequestRow = "request-row"
	EventIDRequest    = "request"
	eventIDInput      = "input:"
)

// LoadMapping reads a mapping file; "" is the empty mapping.
func LoadMapping(path string) (Mapping, error) {
	if path == "" {
		return Mapping{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Mapping{}, fmt.Errorf("read serving mapping: %w", err)
	}
	m, err := DecodeMapping(b)
	if err != nil {
		return Mapping{}, fmt.Errorf("serving mapping %s: %w", path, err)
	}
	return m, nil
}

// DecodeMapping decodes and validates a mapping (strict YAML).
func DecodeMapping(b []byte) (Mapping, error) {
	var m Mapping
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
		return Mapping{}, fmt.Errorf("decode: %w", err)
	}
	return m, m.Validate()
}

// Validate checks every model's mapping.
func (m *Mapping) Validate() error {
	if m.Default != nil {
		if err := m.Default.Validate(); err != nil {
			return fmt.Errorf("default: %w", err)
		}
	}
	for name, mm := range m.Models {
		if name == "" {
			return fmt.Errorf("models: empty model name")
		}
		if err := mm.Validate(); err != nil {
			return fmt.Errorf("models.%s: %w", name, err)
		}
	}
	return nil
}

// Validate checks one model's mapping.
func (mm *ModelMapping) Validate() error {
	switch {
	case mm.EventID == "", mm.EventID == EventIDRequestRow, mm.EventID == EventIDRequest:
	case strings.HasPrefix(mm.EventID, eventIDInput) && len(mm.EventID) > len(eventIDInput):
	default:
		return fmt.Errorf("event_id %q: want %s, %s or input:<tensor>", mm.EventID, EventIDRequestRow, EventIDRequest)
	}
	seen := map[string]bool{}
	for i, f := range mm.Features {
		if f.Tensor == "" {
			return fmt.Errorf("features[%d]: no tensor", i)
		}
		if seen[f.Tensor] {
			return fmt.Errorf("features[%d]: tensor %q listed twice", i, f.Tensor)
		}
		seen[f.Tensor] = true
		if f.Name != "" && len(f.Columns) > 0 {
			return fmt.Errorf("features[%d] (%s): name and columns are exclusive", i, f.Tensor)
		}
	}
	p := &mm.Prediction
	if p.PositiveClass != "" && p.Probabilities == "" {
		return fmt.Errorf("prediction.positive_class needs prediction.probabilities")
	}
	if p.PositiveClass != "" && len(p.Classes) > 0 && !slices.Contains(p.Classes, p.PositiveClass) {
		return fmt.Errorf("prediction.positive_class %q is not one of prediction.classes", p.PositiveClass)
	}
	for i, c := range p.Classes {
		if c == "" {
			return fmt.Errorf("prediction.classes[%d] is empty", i)
		}
	}
	return nil
}

// lookup returns the mapping of a served model: its own, else the default,
// else the zero mapping.
func (m *Mapping) lookup(served string) *ModelMapping {
	if mm, ok := m.Models[served]; ok {
		return &mm
	}
	if m.Default != nil {
		return m.Default
	}
	return &ModelMapping{}
}
