package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/processors/window"
)

// Config configures a Processor. Zero fields take the defaults named on them.
type Config struct {
	Brokers            []string      // required
	Topic              string        // default "vigil.predictions"
	Group              string        // consumer group; default "vigil-processor"
	DeadLetterTopic    string        // default Topic + ".dlq"
	Window             window.Config // default 1m windows, 30s allowed lateness
	CheckpointInterval time.Duration // default 2s: how often states go to ClickHouse
	MaxPendingRows     int           // default 4096: JSON rows buffered per model before they are folded into window states
	MaxCheckpointRows  int           // default 100000: items (events, late rows, dead letters) held for the next checkpoint before it is written early
	// MaxHeldBytes is the memory budget, in bytes, of what the processor
	// holds for its next checkpoints, over all its partitions: decoded rows
	// (Arrow buffers), late rows and dead letters. A partition checkpoints
	// early once it holds its share (MaxHeldBytes divided by the partitions
	// this member owns). Default 32 MiB; see DefaultMaxHeldBytes.
	MaxHeldBytes         int
	DeadLetterPartitions int // default 1, when the processor creates the dead-letter topic
	// NoValueSketches turns off the per-window value summaries of numeric
	// features (stats.FeatureState.Values) that KS and Wasserstein drift
	// need; on by default. Off, the processor is about 2.5x faster on windows
	// of more than stats.ExactCap events per model.
	NoValueSketches bool
	// SegmentKeys are the segment tags (schemas.Tag keys, for example
	// "region") by which window states are also kept per value, so that
	// statistics and drift can be sliced by them. Default none. At most
	// MaxSegmentValues values per key, model version and window; further
	// values share the state of value OtherSegment.
	SegmentKeys []string
	// DedupEventIDs makes each partition skip an event whose window has
	// counted an event of the same id already: for producers other than the
	// SDK (whose retries are recognised by producer id and sequence anyway),
	// a message written twice is then counted once. Off by default; it costs
	// 8 bytes per event of an open window in the checkpoint row, rewritten
	// at every checkpoint, and some 40 bytes of memory per event, for at most
	// MaxDedupEventIDs events per partition (more are counted in
	// Counters.DedupOverflow and not deduplicated). Only events of the same
	// model version and window are compared.
	DedupEventIDs bool
	// Observer, when set, derives more from every range of rows added to a
	// window state (processors/multivariate's reconstruction errors). Nil:
	// none.
	Observer RowObserver
}

// Segment slicing limits (stats.SegmentCap applies them).
const (
	MaxSegmentValues = stats.MaxSegmentValues
	OtherSegment     = stats.OtherSegment
)

// Defaults used by WithDefaults.
const (
	DefaultTopic              = "vigil.predictions"
	DefaultGroup              = "vigil-processor"
	DefaultCheckpointInterval = 2 * time.Second
	DefaultMaxPendingRows     = 4096
	DefaultMaxCheckpointRows  = 100_000
	// DefaultMaxHeldBytes keeps a catch-up of a 1M-event, 8-model backlog
	// (20 features) under 400 MB RSS with 1 to 8 partitions; see
	// benchmarks/README.md, "Memory during catch-up".
	DefaultMaxHeldBytes = 32 << 20
	// MinMaxHeldBytes is the smallest budget Validate accepts.
	MinMaxHeldBytes = 1 << 20
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = c.Topic + ".dlq"
	}
	if c.Window.Size == 0 {
		c.Window.Size = time.Minute
	}
	if c.Window.AllowedLateness == 0 {
		c.Window.AllowedLateness = 30 * time.Second
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.MaxPendingRows == 0 {
		c.MaxPendingRows = DefaultMaxPendingRows
	}
	if c.MaxCheckpointRows == 0 {
		c.MaxCheckpointRows = DefaultMaxCheckpointRows
	}
	if c.MaxHeldBytes == 0 {
		c.MaxHeldBytes = DefaultMaxHeldBytes
	}
	if c.DeadLetterPartitions == 0 {
		c.DeadLetterPartitions = 1
	}
	return c
}

// Validate reports every problem with c (after WithDefaults), joined
// (errors.Join); nil when there is none.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no Kafka brokers configured (set --kafka or VIGIL_KAFKA)"))
	}
	if c.DeadLetterTopic == c.Topic {
		errs = append(errs, fmt.Errorf("dead-letter topic %q must differ from the input topic", c.Topic))
	}
	if c.CheckpointInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("checkpoint interval %v is below 10ms", c.CheckpointInterval))
	}
	if c.MaxPendingRows < 1 {
		errs = append(errs, fmt.Errorf("max pending rows %d must be positive", c.MaxPendingRows))
	}
	if slices.Contains(c.SegmentKeys, "") {
		errs = append(errs, errors.New("an empty segment key"))
	}
	if c.MaxCheckpointRows < 1 {
		errs = append(errs, fmt.Errorf("max checkpoint rows %d must be positive", c.MaxCheckpointRows))
	}
	if c.MaxHeldBytes < MinMaxHeldBytes {
		errs = append(errs, fmt.Errorf("max held bytes %d is below %d (1 MiB)", c.MaxHeldBytes, MinMaxHeldBytes))
	}
	if err := c.Window.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("window: %w", err))
	}
	return errors.Join(errs...)
}
