package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/vigil-ml/vigil/processors/stats"
)

// WindowStore is where a partition's progress is durable: the processor
// restores a partition from it on assignment and checkpoints to it after
// each closed window. sinks/clickhouse implements it.
type WindowStore interface {
	ErrorClassifier
	// Restore returns the last checkpoint of src (ok is false when there is
	// none) and the window states a replay from nextOffset continues from.
	// A stored state that cannot be decoded is left out, and reported by a
	// *CorruptStatesError returned beside the other results (ok and states
	// are then valid): the processor quarantines it instead of retrying.
	Restore(ctx context.Context, src Source) (nextOffset, watermarkMs int64, ok bool, states []*stats.WindowState, err error)
	// RestoreProducers returns the producer sequences stored with the
	// checkpoint of src at nextOffset (as Restore returned it), nil when
	// none were.
	RestoreProducers(ctx context.Context, src Source, nextOffset int64) ([]byte, error)
	// Checkpoint durably writes raw and late events, the states and the
	// checkpoint (nextOffset, watermarkMs, and the opaque producer
	// sequences, stored in one row) of src. It is idempotent: after an
	// error the processor calls it again with the same arguments.
	Checkpoint(ctx context.Context, src Source, raw []RawBatch, late []LateEvent, states []*stats.WindowState, nextOffset, watermarkMs int64, producers []byte) error
}

// RowObserver derives more from the rows a partition counts than
// processors/stats' summaries: AddRange is called on the partition's
// goroutine right after rows [lo, hi) of rec were added to st (a segment's
// state too), and may add derived features (stats.DerivedFeaturePrefix) to
// st, which are checkpointed and restored with it. It must be safe for
// concurrent use by the partitions and must not retain rec.
// processors/multivariate's Scorer implements it.
type RowObserver interface {
	AddRange(st *stats.WindowState, rec arrow.Record, lo, hi int)
}

// LabelStore is where the label consumer writes labels before it commits
// their offsets. Writing a message again must replace it.
type LabelStore interface {
	ErrorClassifier
	WriteLabels(ctx context.Context, labels []LabelRow) error
}

// ErrorClassifier says how the processor and the label consumer handle a
// store's error (see failure.go).
type ErrorClassifier interface {
	Classify(err error) Failure
}

// Failure is the class of a store's error.
type Failure uint8

const (
	// FailureRetryable passes by itself (a timeout, a connection refused, an
	// overloaded server): back off and try again.
	FailureRetryable Failure = iota
	// FailureBadData is the data's fault: the same data fails again.
	FailureBadData
	// FailureBroken is the store's fault (a missing table or column, a
	// schema that needs `vigil migrate`, a bug): retrying the same call
	// fails until someone fixes it, and skipping it would lose data.
	FailureBroken
)

func (f Failure) String() string {
	switch f {
	case FailureRetryable:
		return "retryable"
	case FailureBadData:
		return "bad data"
	case FailureBroken:
		return "broken"
	}
	return "Failure(" + strconv.Itoa(int(f)) + ")"
}

// CorruptState is one stored window state that Restore could not decode.
type CorruptState struct {
	Key        stats.Key
	LastOffset int64
	Err        error
}

// CorruptStatesError reports the stored window states Restore left out.
type CorruptStatesError struct {
	Source Source
	States []CorruptState
}

func (e *CorruptStatesError) Error() string {
	msg := fmt.Sprintf("restore %s: %d stored window states cannot be decoded", e.Source, len(e.States))
	if len(e.States) > 0 {
		msg += fmt.Sprintf(" (first: %s/%s window %d segment %q: %v)", e.States[0].Key.Model, e.States[0].Key.ModelVersion,
			e.States[0].Key.WindowStart, e.States[0].Key.Segment, e.States[0].Err)
	}
	return msg
}

// Source identifies a Kafka partition of the input.
type Source struct {
	Group, Topic string
	Partition    int
}

func (s Source) String() string {
	return fmt.Sprintf("%s/%d (group %s)", s.Topic, s.Partition, s.Group)
}

// LateEvent is an event whose window had already closed when it arrived.
type LateEvent struct {
	Offset       int64
	Model        string
	ModelVersion string
	EventID      string
	EventTime    time.Time
	WindowStart  time.Time
	Watermark    time.Time
}

// RawBatch is one decoded Kafka message: an Arrow record in the layout of
// schemas/arrow.go. Records folded from several JSON messages carry one
// offset per row in Offsets; otherwise every row has Offset. The store does
// not retain or release the record.
type RawBatch struct {
	Offset  int64
	Offsets []int64 // per row; nil = every row at Offset
	Record  arrow.Record
}

// LabelRow is one label of a label message, as the label consumer stores it.
type LabelRow struct {
	Model, EventID string
	Time           time.Time // label time
	HasClass       bool
	Class          string
	HasValue       bool
	Value          float64
	Topic          string
	Partition      int
	Offset         int64
	Row            int // index of the label in its message (Arrow batches hold many)
}
