package schemas

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
)

// LabelSchemaVersion is the version of the label event contract
// (label_event.v1.schema.json) that Label describes.
const LabelSchemaVersion = 1

// Label is the ground truth (the actual outcome) for one earlier prediction,
// joined to it by event id and model. A classifier's label sets Class, a
// regressor's (or a binary outcome as 0/1) sets Value: exactly one of them.
//
// Labels travel on their own topic (by default "<events topic>.labels"), one
// JSON label per Kafka message or one Arrow record batch of one model's
// labels per message, keyed by model.
type Label struct {
	EventID  string // event_id of the prediction this is the truth for
	Model    string
	Class    string // the true class; valid when HasClass
	HasClass bool
	Value    float64 // the true value (regression, or 0/1); valid when HasValue
	HasValue bool
	Time     time.Time // label time: when the ground truth became known
}

// ClassLabel returns the true class of the prediction eventID of model.
func ClassLabel(eventID, model, class string, t time.Time) Label {
	return Label{EventID: eventID, Model: model, Class: class, HasClass: true, Time: t}
}

// ValueLabel returns the true value of the prediction eventID of model.
func ValueLabel(eventID, model string, v float64, t time.Time) Label {
	return Label{EventID: eventID, Model: model, Value: v, HasValue: true, Time: t}
}

// ErrInvalidLabel wraps every reason Label.Validate rejects a label for.
var ErrInvalidLabel = errors.New("invalid label")

// Validate reports whether l satisfies the v1 label contract: an event id and
// a model (non-empty, at most MaxNameLen bytes), a label time, and exactly
// one of a class (non-empty, at most MaxNameLen bytes) or a finite value. It
// does not allocate when l is valid.
func (l *Label) Validate() error {
	switch {
	case l.EventID == "":
		return invalidLabel("missing event id")
	case len(l.EventID) > MaxNameLen:
		return invalidLabel("event id longer than %d bytes", MaxNameLen)
	case l.Model == "":
		return invalidLabel("missing model")
	case len(l.Model) > MaxNameLen:
		return invalidLabel("model longer than %d bytes", MaxNameLen)
	case l.Time.IsZero():
		return invalidLabel("missing label time")
	case l.HasClass == l.HasValue:
		return invalidLabel("want exactly one of class or value")
	case l.HasClass && l.Class == "":
		return invalidLabel("empty class")
	case l.HasClass && len(l.Class) > MaxNameLen:
		return invalidLabel("class longer than %d bytes", MaxNameLen)
	case l.HasValue && !isFinite(l.Value):
		return invalidLabel("value is not finite")
	}
	return nil
}

func invalidLabel(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidLabel}, args...)...)
}

// Positive reads l as the outcome of a binary classifier: value 1 or class
// "1" or "true" is positive, value 0 or class "0" or "false" is negative (a
// JSON true or false label decodes to those classes). Anything else is not a
// binary outcome and ok is false. Classes are compared exactly ("True" is
// not "true").
func (l *Label) Positive() (positive, ok bool) {
	if l.HasValue {
		switch l.Value {
		case 1:
			return true, true
		case 0:
			return false, true
		}
		return false, false
	}
	if l.HasClass {
		switch l.Class {
		case "1", "true":
			return true, true
		case "0", "false":
			return false, true
		}
	}
	return false, false
}

// The Arrow form of a batch of labels of ONE model: one row per label, these
// columns in this order and no others. Exactly one of label_class and
// label_value is non-null on each row.
const (
	ColLabelTime  = "label_time"  // timestamp[ms, UTC], not null
	ColLabelClass = "label_class" // utf8, null when the label is a value
	ColLabelValue = "label_value" // float64, null when the label is a class
)

// LabelFields are the columns of a label batch, in order. event_id and model
// are named as in an event batch (ColEventID, ColModel).
var LabelFields = []arrow.Field{
	{Name: ColEventID, Type: arrow.BinaryTypes.String},
	{Name: ColModel, Type: arrow.BinaryTypes.String},
	{Name: ColLabelTime, Type: EventTimeType},
	{Name: ColLabelClass, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColLabelValue, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}

// NewLabelSchema returns the Arrow schema of a label batch, with
// MetaSchemaVersion set to LabelSchemaVersion.
func NewLabelSchema() *arrow.Schema {
	md := arrow.NewMetadata([]string{MetaSchemaVersion}, []string{strconv.Itoa(LabelSchemaVersion)})
	return arrow.NewSchema(LabelFields, &md)
}
