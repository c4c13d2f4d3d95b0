// Package schemas is Vigil's data contract: the prediction event (v1), the
// Arrow schema a batch of one model's events maps to, and (in schemas/ddl) the
// ClickHouse tables the results land in.
//
// The JSON form of an event is specified by prediction_event.v1.schema.json in
// this folder; the Go types below are the same contract. A change that is not
// backwards compatible gets a new SchemaVersion.
package schemas

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// SchemaVersion is the version of the prediction event contract these types describe.
const SchemaVersion = 1

// MaxNameLen bounds model, version, feature, segment and class names (bytes).
const MaxNameLen = 256

// Reserved column names in the Arrow schema and in ClickHouse: the prediction
// is summarised like a feature under these names.
const (
	PredictionScoreFeature = "__prediction_score"
	PredictionLabelFeature = "__prediction_label"
	PredictionValueFeature = "__prediction_value"

	// VectorHeaderPrefix names the features a Vector feature is kept as in
	// window states and references: "__embedding.<name>" (the norm of each
	// vector) and "__embedding.<name>[i]" (component i); docs/DRIFT.md,
	// "Embedding drift".
	VectorHeaderPrefix = "__embedding."
)

// Kind is the type of a feature value.
type Kind uint8

// Kinds of feature values. The zero Kind is Null: a feature sent as JSON null.
// A feature that is absent from an event is simply not in Event.Features.
const (
	Null Kind = iota
	Number
	String
	Bool
	// Vector is a fixed-length list of finite numbers (an embedding), 1 to
	// MaxVectorDim long; see docs/DRIFT.md, "Embedding drift".
	Vector
)

// MaxVectorDim bounds the length of a Vector feature: each component is a
// numeric feature of the window state (docs/DRIFT.md, memory).
const MaxVectorDim = 4096

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Number:
		return "number"
	case String:
		return "string"
	case Bool:
		return "bool"
	case Vector:
		return "vector"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Value is one feature value. Only the field matching Kind is meaningful.
type Value struct {
	Kind Kind
	Num  float64
	Str  string
	Bool bool
	Vec  []float64 // Kind Vector: the components (not copied by the SDK)
}

// Feature is a named model input.
type Feature struct {
	Name  string
	Value Value
}

// Num returns a numeric feature.
func Num(name string, v float64) Feature { return Feature{name, Value{Kind: Number, Num: v}} }

// Str returns a categorical (string) feature.
func Str(name, v string) Feature { return Feature{name, Value{Kind: String, Str: v}} }

// Flag returns a boolean feature.
func Flag(name string, v bool) Feature { return Feature{name, Value{Kind: Bool, Bool: v}} }

// Vec returns a vector (embedding) feature. The SDK does not copy v: do not
// modify it after Record.
func Vec(name string, v []float64) Feature { return Feature{name, Value{Kind: Vector, Vec: v}} }

// Missing returns a feature sent explicitly as null.
func Missing(name string) Feature { return Feature{Name: name} }

// ClassProbability is the probability the model gave one class.
type ClassProbability struct {
	Class string
	P     float64
}

// Prediction is what the model answered. A binary classifier sets Score (and
// usually Label); a multiclass classifier sets Label and Probabilities; a
// regressor sets Value. At least one of them must be set.
type Prediction struct {
	Score         float64 // valid when HasScore: probability of the positive class
	HasScore      bool
	Label         string // predicted class; "" = none
	Probabilities []ClassProbability
	Value         float64 // valid when HasValue: regression output
	HasValue      bool
}

// Score returns a binary classifier's prediction.
func Score(p float64) Prediction { return Prediction{Score: p, HasScore: true} }

// Class returns a classifier's predicted label with optional class probabilities.
func Class(label string, probs ...ClassProbability) Prediction {
	return Prediction{Label: label, Probabilities: probs}
}

// Regression returns a regressor's prediction.
func Regression(v float64) Prediction { return Prediction{Value: v, HasValue: true} }

// Tag is a segment tag (for example region=eu) by which statistics can be sliced.
type Tag struct {
	Key, Value string
}

// Event is one prediction made by a model: the v1 prediction event.
//
// The SDK does not copy the slices of an Event it is given: the caller must
// not modify them after Record.
type Event struct {
	ID           string // unique; used to join labels later
	Model        string
	ModelVersion string
	Time         time.Time // event time: when the prediction was made
	Features     []Feature
	Prediction   Prediction
	Latency      time.Duration // 0 = not reported
	Segments     []Tag
}

// ErrInvalidEvent wraps every reason Validate rejects an event for.
var ErrInvalidEvent = errors.New("invalid event")

// Validate reports whether e satisfies the v1 contract. It does not allocate
// when e is valid.
func (e *Event) Validate() error {
	switch {
	case e.ID == "":
		return invalid("missing event id")
	case len(e.ID) > MaxNameLen:
		return invalid("event id longer than %d bytes", MaxNameLen)
	case e.Model == "":
		return invalid("missing model")
	case len(e.Model) > MaxNameLen || len(e.ModelVersion) > MaxNameLen:
		return invalid("model or version longer than %d bytes", MaxNameLen)
	case e.Time.IsZero():
		return invalid("missing event time")
	case e.Latency < 0:
		return invalid("negative latency")
	}
	p := &e.Prediction
	if !p.HasScore && p.Label == "" && len(p.Probabilities) == 0 && !p.HasValue {
		return invalid("missing prediction")
	}
	if p.HasScore && !isFinite(p.Score) {
		return invalid("prediction score is not finite")
	}
	if p.HasValue && !isFinite(p.Value) {
		return invalid("prediction value is not finite")
	}
	for i := range p.Probabilities {
		cp := &p.Probabilities[i]
		if cp.Class == "" || len(cp.Class) > MaxNameLen {
			return invalid("class probability %d: bad class name", i)
		}
		if !(cp.P >= 0 && cp.P <= 1) {
			return invalid("class probability %q: %v not in [0,1]", cp.Class, cp.P)
		}
	}
	for i := range e.Features {
		f := &e.Features[i]
		if f.Name == "" || len(f.Name) > MaxNameLen {
			return invalid("feature %d: bad name", i)
		}
		if f.Value.Kind > Vector {
			return invalid("feature %q: unknown kind %d", f.Name, f.Value.Kind)
		}
		if f.Value.Kind == Vector {
			if err := validVector(f.Name, f.Value.Vec); err != nil {
				return err
			}
		}
	}
	for i := range e.Segments {
		if e.Segments[i].Key == "" || len(e.Segments[i].Key) > MaxNameLen {
			return invalid("segment %d: bad key", i)
		}
	}
	return nil
}

// validVector checks a vector feature: 1 to MaxVectorDim finite numbers,
// and a name that cannot be taken for one of its components (the window
// state names component i "__embedding.<name>[i]").
func validVector(name string, v []float64) error {
	switch {
	case len(v) == 0:
		return invalid("feature %q: empty vector", name)
	case len(v) > MaxVectorDim:
		return invalid("feature %q: vector of %d values, more than %d", name, len(v), MaxVectorDim)
	case name[len(name)-1] == ']':
		return invalid("feature %q: a vector's name must not end in ']'", name)
	}
	for i, x := range v {
		if !isFinite(x) {
			return invalid("feature %q: vector element %d is not finite", name, i)
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidEvent}, args...)...)
}

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
