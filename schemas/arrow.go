package schemas

import (
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
)

// The Arrow form of a batch of events of ONE model: one row per event, flat
// columns, so that statistics run on typed arrays. Fixed columns come first,
// in this order; then one column per prediction class probability, per
// feature and per segment key, each under a prefix, sorted by name.
const (
	ColEventID      = "event_id"      // utf8, not null
	ColModel        = "model"         // utf8, not null (same value on every row)
	ColModelVersion = "model_version" // utf8, not null ("" when not set)
	ColEventTime    = "event_time"    // timestamp[ms, UTC], not null
	ColLatencyMs    = "latency_ms"    // float64, null when not reported
	ColPredScore    = "pred_score"    // float64, null when not set
	ColPredLabel    = "pred_label"    // utf8, null when not set
	ColPredValue    = "pred_value"    // float64, null when not set

	PrefixProba   = "proba." // float64 per class: proba.<class>
	PrefixFeature = "f."     // f.<name>: float64 (Number), utf8 (String), bool (Bool), fixed_size_list<float64> (Vector; float32 items are read too); null = missing
	PrefixSegment = "s."     // s.<key>: utf8; null = tag not set on that event

	// MetaSchemaVersion is the Arrow schema metadata key holding SchemaVersion.
	MetaSchemaVersion = "vigil.schema_version"
)

// EventTimeType is the Arrow type of ColEventTime.
var EventTimeType = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}

// FixedFields are the fields every batch starts with, in order.
var FixedFields = []arrow.Field{
	{Name: ColEventID, Type: arrow.BinaryTypes.String},
	{Name: ColModel, Type: arrow.BinaryTypes.String},
	{Name: ColModelVersion, Type: arrow.BinaryTypes.String},
	{Name: ColEventTime, Type: EventTimeType},
	{Name: ColLatencyMs, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColPredScore, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColPredLabel, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColPredValue, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}

// ArrowType returns the Arrow type of a feature column of kind k. A feature
// only ever seen as null is stored as float64, all null.
func ArrowType(k Kind) arrow.DataType {
	switch k {
	case String:
		return arrow.BinaryTypes.String
	case Bool:
		return arrow.FixedWidthTypes.Boolean
	}
	return arrow.PrimitiveTypes.Float64
}

// VectorType returns the Arrow type of a Vector feature column of length dim.
func VectorType(dim int) arrow.DataType {
	return arrow.FixedSizeListOf(int32(dim), arrow.PrimitiveTypes.Float64)
}

// VectorDim returns the length of a Vector feature column's type:
// fixed_size_list<float64 or float32> of 1 to MaxVectorDim items. ok is
// false for any other type.
func VectorDim(t arrow.DataType) (dim int, ok bool) {
	l, isList := t.(*arrow.FixedSizeListType)
	if !isList || l.Len() < 1 || l.Len() > MaxVectorDim {
		return 0, false
	}
	switch l.Elem().ID() {
	case arrow.FLOAT64, arrow.FLOAT32:
		return int(l.Len()), true
	}
	return 0, false
}

// KindOf is the inverse of ArrowType for the scalar kinds; ok is false for
// a type no scalar feature has (see VectorDim for vectors).
func KindOf(t arrow.DataType) (k Kind, ok bool) {
	switch t.ID() {
	case arrow.FLOAT64:
		return Number, true
	case arrow.STRING:
		return String, true
	case arrow.BOOL:
		return Bool, true
	}
	return Null, false
}

// NewSchema returns the Arrow schema of a batch with the given extra fields
// (proba.*, f.*, s.*), which must already be sorted by name within each prefix.
func NewSchema(extra []arrow.Field) *arrow.Schema {
	fields := make([]arrow.Field, 0, len(FixedFields)+len(extra))
	fields = append(fields, FixedFields...)
	fields = append(fields, extra...)
	md := arrow.NewMetadata([]string{MetaSchemaVersion}, []string{strconv.Itoa(SchemaVersion)})
	return arrow.NewSchema(fields, &md)
}

// FeatureName returns the feature name of a column, if it is a feature column.
func FeatureName(column string) (string, bool) { return strings.CutPrefix(column, PrefixFeature) }

// SegmentKey returns the segment key of a column, if it is a segment column.
func SegmentKey(column string) (string, bool) { return strings.CutPrefix(column, PrefixSegment) }

// ProbaClass returns the class of a probability column, if it is one.
func ProbaClass(column string) (string, bool) { return strings.CutPrefix(column, PrefixProba) }
