package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/vigil-ml/vigil/processors/stats"
)

// WindowStore is where a partition's progress is durable: the processor
// restores a partition from it on assignment and checkpoints to it after
// each closed window. sinks/clickhouse implements it.
type WindowStore interface {
	// Restore returns the last checkpoint of src (ok is false when there is
	// none) and the window states a replay from nextOffset continues from.
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

// LabelStore is where the label consumer writes labels before it commits
// their offsets. Writing a message again must replace it.
type LabelStore interface {
	WriteLabels(ctx context.Context, labels []LabelRow) error
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
