package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/backoff"
	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// LabelConfig configures a LabelConsumer. Zero fields take the defaults
// named on them.
type LabelConfig struct {
	Brokers         []string      // required
	Topic           string        // default DefaultTopic + ".labels" (ingest.WithLabelTopic's default)
	Group           string        // consumer group; default "vigil-labels"
	DeadLetterTopic string        // default Topic + ".dlq"
	Partitions      int           // default 1: partitions of the label topic when the consumer creates it
	BatchSize       int           // default 5000: labels per insert
	FlushInterval   time.Duration // default 1s: longest a label waits for its insert
}

// Defaults of LabelConfig.
const (
	DefaultLabelTopic    = DefaultTopic + ".labels"
	DefaultLabelGroup    = "vigil-labels"
	DefaultLabelBatch    = 5000
	DefaultLabelInterval = time.Second
)

// WithDefaults returns c with zero fields set to their defaults.
func (c LabelConfig) WithDefaults() LabelConfig {
	if c.Topic == "" {
		c.Topic = DefaultLabelTopic
	}
	if c.Group == "" {
		c.Group = DefaultLabelGroup
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = c.Topic + ".dlq"
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultLabelBatch
	}
	if c.Partitions == 0 {
		c.Partitions = 1
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultLabelInterval
	}
	return c
}

// Validate reports every problem with c (after WithDefaults), joined
// (errors.Join); nil when there is none.
func (c LabelConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no Kafka brokers configured (set --kafka or VIGIL_KAFKA)"))
	}
	if c.DeadLetterTopic == c.Topic {
		errs = append(errs, fmt.Errorf("label dead-letter topic %q must differ from the label topic", c.Topic))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("label batch size %d must be positive", c.BatchSize))
	}
	if c.FlushInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("label flush interval %v is below 1ms", c.FlushInterval))
	}
	return errors.Join(errs...)
}

// LabelCounters are the label consumer's running totals.
type LabelCounters struct {
	Messages    atomic.Uint64 // Kafka messages handled
	Labels      atomic.Uint64 // labels stored
	Malformed   atomic.Uint64 // messages (or Arrow rows) sent to the dead-letter topic
	WriteErrors atomic.Uint64 // failed inserts (retried)
	// DeadLettersTruncated and DeadLettersDropped are as in Counters.
	DeadLettersTruncated atomic.Uint64
	DeadLettersDropped   atomic.Uint64
}

// LabelConsumer stores label messages (ground truth for earlier
// predictions) in vigil_labels. It joins its own consumer group, so labels
// scale with partitions like predictions. A message's offset is committed
// only after its labels are in ClickHouse (at least once; a message stored
// twice replaces itself). The join with predictions happens later, in
// ClickHouse (see cmd/vigil's performance job and docs/DESIGN.md).
type LabelConsumer struct {
	cfg    LabelConfig
	labels LabelStore
	log    zerolog.Logger

	Counters LabelCounters

	mu       sync.Mutex
	reader   *kafka.Reader
	dlq      *deadLetters
	cancel   context.CancelFunc
	done     chan struct{}
	shutdown bool

	state labelState
}

// labelState is what Ready reports: written by the run goroutine after
// each fetch, read by Ready.
type labelState struct {
	mu      sync.Mutex
	started bool
	stopped bool
	// joined: a generation of the group began (with or without
	// partitions of the label topic) or a message came.
	joined bool
	// failing is the error of the last fetch when it failed and nothing
	// showed a healthy reader since; failures count them, from since.
	failing  error
	failures int
	since    time.Time
}

// fetched records the outcome of one FetchMessage: err nil (a message),
// a fetch deadline (no message within the flush interval) or a failure.
// stats is the reader's Stats, asked for only while the state is not
// known to be good (kafka-go's Stats resets its counters: the consumer is
// their only reader): a generation that began since the last call means
// the consumer is in the group; fetches without errors mean a failure
// passed even though no message came.
func (s *labelState) fetched(err error, now time.Time, stats func() kafka.ReaderStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.joined, s.failing, s.failures = true, nil, 0
	case errors.Is(err, context.DeadlineExceeded):
		if s.joined && s.failing == nil {
			return
		}
		st := stats()
		if st.Rebalances > 0 {
			s.joined, s.failing, s.failures = true, nil, 0
		} else if s.failing != nil && st.Fetches > 0 && st.Errors == 0 {
			s.failing, s.failures = nil, 0
		}
	default:
		if s.failing == nil {
			s.since = now
		}
		s.failing = err
		s.failures++
	}
}

// Ready is a readiness check (observe.DetailCheck): it passes, with
// "member of consumer group G, reading topic T", once the consumer joined
// its group (as a member with or without partitions of the label topic)
// while its fetches succeed. It fails before Start and after Shutdown,
// while the consumer joins its group, and while its fetches fail (since
// when, how many times, the last error): kafka-go's reader retries by
// itself, so a failure that passes makes it ready again.
func (c *LabelConsumer) Ready(context.Context) (string, error) {
	s := &c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.started:
		return "", errors.New("label consumer not started")
	case s.stopped:
		return "", errors.New("label consumer stopped")
	case s.failing != nil:
		return "", fmt.Errorf("fetching labels from topic %s fails (%d times since %s): %w",
			c.cfg.Topic, s.failures, s.since.UTC().Format(time.RFC3339), s.failing)
	case !s.joined:
		return "", fmt.Errorf("joining consumer group %s (topic %s)", c.cfg.Group, c.cfg.Topic)
	}
	return fmt.Sprintf("member of consumer group %s, reading topic %s", c.cfg.Group, c.cfg.Topic), nil
}

// NewLabelConsumer returns a consumer writing to store (for example a
// *clickhouse.Sink), which the caller starts before and shuts down after it.
func NewLabelConsumer(cfg LabelConfig, store LabelStore, log zerolog.Logger) (*LabelConsumer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("label consumer config: %w", err)
	}
	return &LabelConsumer{cfg: cfg, labels: store, log: log.With().Str("component", "labels").Logger()}, nil
}

// Config returns the configuration in use, defaults applied.
func (c *LabelConsumer) Config() LabelConfig { return c.cfg }

// Start creates the topics if needed and consumes in the background.
func (c *LabelConsumer) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shutdown || c.reader != nil {
		return errors.New("start label consumer: already started or shut down")
	}
	if err := kafkatopic.Ensure(ctx, c.cfg.Brokers, c.cfg.Topic, c.cfg.Partitions); err != nil {
		return fmt.Errorf("create label topic %s (is Kafka running? start it with deployments/local/kafka.sh start): %w", c.cfg.Topic, err)
	}
	dlq, err := openDeadLetters(ctx, c.cfg.Brokers, c.cfg.Topic, c.cfg.DeadLetterTopic, 1,
		deadLetterCounters{truncated: &c.Counters.DeadLettersTruncated, dropped: &c.Counters.DeadLettersDropped}, c.log)
	if err != nil {
		return fmt.Errorf("label consumer: %w", err)
	}
	c.dlq = dlq
	c.reader = kafka.NewReader(kafka.ReaderConfig{
		Brokers:           c.cfg.Brokers,
		GroupID:           c.cfg.Group,
		Topic:             c.cfg.Topic,
		StartOffset:       kafka.FirstOffset,
		MaxWait:           250 * time.Millisecond,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  time.Second,
		CommitInterval:    0, // synchronous commits, after the insert
		ErrorLogger:       kafka.LoggerFunc(func(f string, a ...any) { c.log.Warn().Msgf(f, a...) }),
	})
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	c.state.mu.Lock()
	c.state.started = true
	c.state.mu.Unlock()
	go func() {
		defer close(c.done)
		c.run(runCtx)
	}()
	c.log.Info().Str("topic", c.cfg.Topic).Str("group", c.cfg.Group).Msg("label consumer started")
	return nil
}

// Shutdown stores and commits what was read, then leaves the group.
// Idempotent and safe without Start.
func (c *LabelConsumer) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shutdown {
		return nil
	}
	c.shutdown = true
	c.state.mu.Lock()
	c.state.stopped = true
	c.state.mu.Unlock()
	if c.reader == nil {
		return nil
	}
	began := time.Now()
	c.cancel()
	select {
	case <-c.done:
	case <-ctx.Done():
		return fmt.Errorf("shut down label consumer: %w", ctx.Err())
	}
	err := errors.Join(c.reader.Close(), c.dlq.Close())
	c.log.Info().Dur("took", time.Since(began)).Uint64("labels", c.Counters.Labels.Load()).
		Uint64("malformed", c.Counters.Malformed.Load()).Msg("label consumer stopped")
	return err
}

// labelBatch is what one insert covers.
type labelBatch struct {
	rows []LabelRow
	msgs []kafka.Message // to commit once rows are stored
	dead []kafka.Message
}

func (c *LabelConsumer) run(ctx context.Context) {
	var (
		b       labelBatch
		jsonDec wire.LabelJSONDecoder
		label   schemas.Label
		since   = time.Now()
		// kafka-go's group reader retries by itself; this only spaces the
		// errors it reports.
		fetchRetry = backoff.New(fetchPolicy)
	)
	for {
		fetchCtx, cancel := context.WithDeadline(ctx, since.Add(c.cfg.FlushInterval))
		msg, err := c.reader.FetchMessage(fetchCtx)
		cancel()
		if err == nil {
			c.Counters.Messages.Add(1)
			c.decode(&msg, &b, &jsonDec, &label)
			b.msgs = append(b.msgs, msg)
		}
		stopping := ctx.Err() != nil
		if !stopping {
			c.state.fetched(err, time.Now(), c.reader.Stats)
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !stopping {
			wait := fetchRetry.Next()
			c.log.Warn().Err(err).Int("attempt", fetchRetry.Attempt()).Dur("retry_in", wait).Msg("fetch label message")
			_ = backoff.Sleep(ctx, wait)
		} else if err == nil {
			fetchRetry.Reset()
		}
		if len(b.rows) >= c.cfg.BatchSize || time.Since(since) >= c.cfg.FlushInterval || stopping {
			if len(b.msgs) > 0 && !c.flush(ctx, &b) {
				return // stopping before the batch was stored: it is read again next time
			}
			since = time.Now()
		}
		if stopping {
			return
		}
	}
}

// decode appends msg's labels to b, or msg to the dead-letter messages.
func (c *LabelConsumer) decode(msg *kafka.Message, b *labelBatch, jsonDec *wire.LabelJSONDecoder, l *schemas.Label) {
	row := 0
	add := func(l *schemas.Label) {
		b.rows = append(b.rows, LabelRow{
			Model: l.Model, EventID: l.EventID, Time: l.Time,
			HasClass: l.HasClass, Class: l.Class, HasValue: l.HasValue, Value: l.Value,
			Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset, Row: row,
		})
		row++
	}
	switch enc := header(msg, wire.HeaderEncoding); enc {
	case wire.EncodingJSON, "":
		if err := jsonDec.Decode(msg.Value, l); err != nil {
			b.dead = append(b.dead, c.deadLetter(msg, err.Error()))
			return
		}
		add(l)
	case wire.EncodingArrow:
		labels, err := wire.DecodeLabelArrow(msg.Value, nil)
		var rowsErr *wire.LabelRowsError
		if err != nil && !errors.As(err, &rowsErr) {
			b.dead = append(b.dead, c.deadLetter(msg, err.Error()))
			return
		}
		// Some rows invalid: the valid ones are stored, and the whole
		// message goes to the dead-letter topic with the reasons.
		for i := range labels {
			add(&labels[i])
		}
		if rowsErr != nil {
			b.dead = append(b.dead, c.deadLetter(msg, rowsErr.Error()))
		}
	default:
		b.dead = append(b.dead, c.deadLetter(msg, "unknown "+wire.HeaderEncoding+" header "+strconv.Quote(enc)))
	}
}

func (c *LabelConsumer) deadLetter(msg *kafka.Message, reason string) kafka.Message {
	c.Counters.Malformed.Add(1)
	c.log.Warn().Int("partition", msg.Partition).Int64("offset", msg.Offset).Str("reason", reason).Msg("malformed label message to dead-letter topic")
	return deadLetterMessage(msg, c.cfg.DeadLetterTopic, reason)
}

// flush stores b, retrying until it succeeds or ctx ends (then it reports
// false and the messages are read again later), and commits its messages.
// Inserts after ctx ends get a few seconds of their own, so that a clean
// shutdown stores what it read. A failed commit (the partitions moved to
// another member in a rebalance, say) is not retried: the labels are
// stored, and the messages that come again replace themselves.
//
// Errors follow the processor's policy (failure.go): retryable ones back
// off; labels the store refuses as bad data are quarantined (their messages
// go to the dead-letter topic with the store's error, and are committed);
// a broken store (a missing table) is retried at the back-off's cap with
// an error that says what to do.
func (c *LabelConsumer) flush(ctx context.Context, b *labelBatch) bool {
	retry := backoff.New(retryPolicy)
	for {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := c.store(wctx, b)
		cancel()
		if err == nil {
			break
		}
		c.Counters.WriteErrors.Add(1)
		wait := retry.Next()
		class := FailureRetryable
		if !errors.Is(err, errDeadLetters) {
			class = c.labels.Classify(err)
		}
		switch class {
		case FailureRetryable:
			c.log.Warn().Err(err).Int("attempt", retry.Attempt()).Dur("retry_in", wait).Msg("store labels; retrying")
		case FailureBadData:
			c.quarantine(b, err)
			continue // the dead letters are written by the next store
		default:
			wait = retryPolicy.Max
			c.log.Error().Err(err).Stringer("failure", class).Int("attempt", retry.Attempt()).Dur("retry_in", wait).
				Msg("store labels: this does not pass by itself (is the schema migrated? run `vigil migrate`; does the ClickHouse user have the rights?); the labels wait, nothing is lost")
		}
		if backoff.Sleep(ctx, wait) != nil {
			return false
		}
	}
	c.Counters.Labels.Add(uint64(len(b.rows)))
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	if err := c.reader.CommitMessages(cctx, b.msgs...); err != nil {
		c.log.Warn().Err(err).Int("messages", len(b.msgs)).Msg("commit label offsets; those messages will be read and stored again")
	}
	cancel()
	b.rows, b.msgs, b.dead = b.rows[:0], b.msgs[:0], b.dead[:0]
	return true
}

// quarantine turns the messages of b's labels into dead letters with the
// store's reason for refusing them: their labels are not stored.
func (c *LabelConsumer) quarantine(b *labelBatch, err error) {
	c.log.Error().Err(err).Int("labels", len(b.rows)).Str("dead_letter_topic", c.cfg.DeadLetterTopic).
		Msg("the store refuses these labels as bad data: their messages go to the dead-letter topic")
	reason := "store labels: " + err.Error()
	type at struct {
		partition int
		offset    int64
	}
	stored := make(map[at]bool, len(b.rows))
	for i := range b.rows {
		stored[at{b.rows[i].Partition, b.rows[i].Offset}] = true
	}
	for i := range b.msgs {
		if stored[at{b.msgs[i].Partition, b.msgs[i].Offset}] {
			b.dead = append(b.dead, c.deadLetter(&b.msgs[i], reason))
		}
	}
	b.rows = b.rows[:0]
}

// store writes the dead letters, then the labels.
func (c *LabelConsumer) store(ctx context.Context, b *labelBatch) error {
	// Written dead letters leave b.dead: not again on a retry of the insert.
	if err := c.dlq.write(ctx, &b.dead); err != nil {
		return err
	}
	return c.labels.WriteLabels(ctx, b.rows)
}
