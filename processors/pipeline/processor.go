package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/backoff"
	"github.com/vigil-ml/vigil/processors/shard"
)

// Counters are the processor's running totals; safe for concurrent reads.
type Counters struct {
	Messages  atomic.Uint64 // Kafka messages handled
	Events    atomic.Uint64 // events decoded
	Late      atomic.Uint64 // events whose window had closed
	Skipped   atomic.Uint64 // events already in a restored state (replay)
	Malformed atomic.Uint64 // messages sent to the dead-letter topic
	// DeadLetters splits Malformed by reason.
	DeadLetters [numDeadLetterReasons]atomic.Uint64
	Counted     atomic.Uint64 // events counted in their window (not late, skipped or duplicate)
	Duplicates  atomic.Uint64 // SDK messages written again by a producer retry: skipped
	// With Config.DedupEventIDs: events whose window had counted their id
	// (skipped), and events not remembered because MaxDedupEventIDs was reached.
	DuplicateEvents atomic.Uint64
	DedupOverflow   atomic.Uint64
	Checkpoints     atomic.Uint64 // durable checkpoints
	WriteErrors     atomic.Uint64 // failed checkpoint writes and restores (retried)
	// CheckpointErrors and RestoreErrors split WriteErrors.
	CheckpointErrors atomic.Uint64
	RestoreErrors    atomic.Uint64
	// DeadLettersTruncated counts dead letters written truncated (see
	// HeaderTruncated): the dead-letter topic would not take them whole.
	DeadLettersTruncated atomic.Uint64
	// DeadLettersDropped counts dead letters the dead-letter topic refused
	// even truncated: not written, logged with their source offset.
	DeadLettersDropped atomic.Uint64
	// Quarantined counts stored window states left out on restore because
	// they cannot be decoded (see CorruptStatesError).
	Quarantined atomic.Uint64
	// FetchErrors counts failed fetches, retried inside the partition.
	FetchErrors atomic.Uint64
}

// Processor is one member of the processing consumer group.
type Processor struct {
	cfg   Config
	store WindowStore
	log   zerolog.Logger

	Counters Counters

	// leading is the id of the generation in which this member consumes
	// partition 0, or -1 (not leading, or between generations).
	leading  atomic.Int64
	assigned atomic.Int32 // partitions of the current generation
	// generation is the id of the group generation this member is in, or
	// -1 (not joined yet, or between generations).
	generation atomic.Int64
	// owned is this member's share of the jobs' models in the current
	// generation (Assignment), nil between generations and until the
	// topic's partition count is known.
	owned atomic.Pointer[shard.Assignment]

	// For metrics (metrics.go): the gauges of the partitions this member
	// owns now, and the time checkpoints take.
	gaugesMu          sync.Mutex
	gauges            map[int]*partitionGauges
	checkpointSeconds prometheus.Histogram

	mu       sync.Mutex
	group    *kafka.ConsumerGroup
	dlq      *deadLetters
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	shutdown bool
}

// New returns a processor checkpointing to store (for example a
// *clickhouse.Sink), which the caller starts before and shuts down after the
// processor.
func New(cfg Config, store WindowStore, log zerolog.Logger) (*Processor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("processor config: %w", err)
	}
	p := &Processor{cfg: cfg, store: store, log: log.With().Str("component", "processor").Logger(),
		gauges: map[int]*partitionGauges{}, checkpointSeconds: newCheckpointHistogram()}
	p.leading.Store(-1)
	p.generation.Store(-1)
	return p, nil
}

// Config returns the configuration in use, defaults applied.
func (p *Processor) Config() Config { return p.cfg }

// Leader reports whether this member consumes partition 0 of the topic in
// the current generation of the group: the one member that runs the
// group's periodic jobs (drift, performance, alerts), so that they run once
// per group, not once per process. It turns false as soon as the generation
// ends (a rebalance, Shutdown, a heartbeat that failed), before this member
// joins the next one. A member expelled without knowing yet (a pause longer
// than the session timeout) still says true until its next heartbeat fails:
// work that must not run twice is fenced with the generation of Leadership.
func (p *Processor) Leader() bool { return p.leading.Load() >= 0 }

// Leadership returns the id of the generation in which this member leads,
// and whether it leads now. Kafka numbers the generations of a group in
// increasing order.
func (p *Processor) Leadership() (generation int32, leader bool) {
	g := p.leading.Load()
	return int32(g), g >= 0
}

// Assignment is this member's part of the current generation, for the
// sharded jobs (shard.Owner): the partitions of the prediction topic it
// consumes, of how many, and its member id. False between generations
// (it owns no model then), and in a generation until the topic's
// partition count was read. Like Leader, it turns false as soon as the
// generation ends; a member expelled without knowing yet still answers
// for its old generation until its next heartbeat fails, which the jobs'
// ledger counts (shard.Recomputed).
func (p *Processor) Assignment() (shard.Assignment, bool) {
	a := p.owned.Load()
	if a == nil {
		return shard.Assignment{}, false
	}
	return *a, true
}

var _ shard.Owner = (*Processor)(nil)

// Partitions is the number of partitions this member consumes in the
// current generation.
func (p *Processor) Partitions() int { return int(p.assigned.Load()) }

// Generation is the id of the consumer-group generation this member is in
// (with or without partitions: a member of a group with more members than
// partitions is a standby), and whether it is in one: false before it
// first joined and between generations (a rebalance).
func (p *Processor) Generation() (id int32, joined bool) {
	g := p.generation.Load()
	return int32(g), g >= 0
}

// Start creates the topics if needed, joins the consumer group and starts
// consuming in the background.
func (p *Processor) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shutdown {
		return errors.New("start processor: already shut down")
	}
	if p.group != nil {
		return errors.New("start processor: already started")
	}
	dlq, err := openDeadLetters(ctx, p.cfg.Brokers, p.cfg.Topic, p.cfg.DeadLetterTopic, p.cfg.DeadLetterPartitions,
		deadLetterCounters{truncated: &p.Counters.DeadLettersTruncated, dropped: &p.Counters.DeadLettersDropped}, p.log)
	if err != nil {
		return err
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                p.cfg.Group,
		Brokers:           p.cfg.Brokers,
		Topics:            []string{p.cfg.Topic},
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  time.Second,
		// Partitions added to the topic start a new generation, in which
		// every member reads the new count (the jobs' split depends on it).
		WatchPartitionChanges: true,
		ErrorLogger:           kafka.LoggerFunc(func(f string, a ...any) { p.log.Warn().Msgf(f, a...) }),
	})
	if err != nil {
		dlq.Close()
		return fmt.Errorf("join consumer group %s at %v (is Kafka running? start it with deployments/local/kafka.sh start): %w", p.cfg.Group, p.cfg.Brokers, err)
	}
	p.group, p.dlq = group, dlq
	runCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.run(runCtx)
	}()
	p.log.Info().Str("topic", p.cfg.Topic).Str("group", p.cfg.Group).Dur("window", p.cfg.Window.Size).
		Dur("allowed_lateness", p.cfg.Window.AllowedLateness).Msg("processor started")
	return nil
}

// Shutdown leaves the consumer group after every partition wrote its last
// checkpoint. It is idempotent and safe without Start.
func (p *Processor) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shutdown {
		return nil
	}
	p.shutdown = true
	defer p.leading.Store(-1)
	defer p.owned.Store(nil)
	if p.group == nil {
		return nil
	}
	began := time.Now()
	done := make(chan error, 1)
	go func() {
		err := p.group.Close() // ends the generation: partitions checkpoint and return
		p.cancel()
		p.wg.Wait()
		done <- errors.Join(err, p.dlq.Close())
	}()
	select {
	case err := <-done:
		c := &p.Counters
		p.log.Info().Dur("took", time.Since(began)).Uint64("messages", c.Messages.Load()).Uint64("events", c.Events.Load()).
			Uint64("late", c.Late.Load()).Uint64("skipped_replayed", c.Skipped.Load()).Uint64("duplicates", c.Duplicates.Load()).
			Uint64("duplicate_events", c.DuplicateEvents.Load()).
			Uint64("malformed", c.Malformed.Load()).Msg("processor stopped")
		return err
	case <-ctx.Done():
		return fmt.Errorf("shut down processor: %w", ctx.Err())
	}
}

func (p *Processor) run(ctx context.Context) {
	join := backoff.New(joinPolicy)
	for {
		gen, err := p.group.Next(ctx)
		if err != nil {
			if errors.Is(err, kafka.ErrGroupClosed) || ctx.Err() != nil {
				return
			}
			// The group keeps trying to join in the background: errors such
			// as "group coordinator not available" (a broker that just
			// started) pass.
			wait := join.Next()
			p.log.Warn().Err(err).Int("attempt", join.Attempt()).Dur("retry_in", wait).Msg("join consumer group")
			if backoff.Sleep(ctx, wait) != nil {
				return
			}
			continue
		}
		join.Reset()
		parts := gen.Assignments[p.cfg.Topic]
		leader := slices.ContainsFunc(parts, func(a kafka.PartitionAssignment) bool { return a.ID == 0 })
		p.lead(gen, gen.ID, leader, len(parts))
		ids := make([]int, len(parts))
		for i, a := range parts {
			ids[i] = a.ID
		}
		slices.Sort(ids)
		member := gen.MemberID
		gen.Start(func(genCtx context.Context) { p.own(genCtx, gen.ID, member, ids) })
		p.log.Info().Int32("generation", gen.ID).Str("member", gen.MemberID).Int("partitions", len(parts)).Bool("leader", leader).Msg("partitions assigned")
		for _, a := range parts {
			gen.Start(func(genCtx context.Context) { p.consume(genCtx, gen, a) })
		}
	}
}

// generation is what lead needs of a *kafka.Generation.
type generation interface {
	Start(fn func(ctx context.Context))
}

// lead records this member's part in generation id, and clears it when the
// generation ends: kafka-go waits for every function given to Start to
// return before it joins the next generation, so Leader is false before the
// next assignment.
func (p *Processor) lead(gen generation, id int32, leader bool, partitions int) {
	if leader {
		p.leading.Store(int64(id))
	} else {
		p.leading.Store(-1)
	}
	p.assigned.Store(int32(partitions))
	p.generation.Store(int64(id))
	gen.Start(func(ctx context.Context) {
		<-ctx.Done()
		p.leading.CompareAndSwap(int64(id), -1)
		p.generation.CompareAndSwap(int64(id), -1)
		p.assigned.Store(0)
	})
}

// own publishes this member's share of generation id once it knows how
// many partitions the topic has, and withdraws it when the generation ends.
func (p *Processor) own(ctx context.Context, id int32, member string, partitions []int) {
	retry := backoff.New(joinPolicy)
	for {
		total, err := partitionCount(ctx, p.cfg.Brokers, p.cfg.Topic)
		if err == nil {
			a := &shard.Assignment{Generation: id, Member: member, Partitions: partitions, Total: total}
			p.owned.Store(a)
			<-ctx.Done()
			p.owned.CompareAndSwap(a, nil)
			return
		}
		wait := retry.Next()
		p.log.Warn().Err(err).Dur("retry_in", wait).Msg("read the partition count of the topic (the jobs own no model until then)")
		if backoff.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// partitionCount is how many partitions topic has, from the first broker
// of brokers that answers.
func partitionCount(ctx context.Context, brokers []string, topic string) (int, error) {
	var errs []error
	for _, b := range brokers {
		conn, err := kafka.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		parts, err := conn.ReadPartitions(topic)
		conn.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(parts) == 0 {
			return 0, fmt.Errorf("read partitions of %s: none", topic)
		}
		return len(parts), nil
	}
	return 0, fmt.Errorf("read partitions of %s at %v: %w", topic, brokers, errors.Join(errs...))
}

// fetchAhead is how many fetched messages may wait for a partition, in
// kafka-go's reader queue and again in the channel to the partition.
const fetchAhead = 64

// heldShare is one partition's share of the memory budget.
func (p *Processor) heldShare() int64 {
	return int64(p.cfg.MaxHeldBytes) / int64(max(p.assigned.Load(), 1))
}

// consume owns one partition for one generation.
func (p *Processor) consume(ctx context.Context, gen *kafka.Generation, a kafka.PartitionAssignment) {
	src := Source{Group: p.cfg.Group, Topic: p.cfg.Topic, Partition: a.ID}
	part := newPartition(p.cfg, src, &p.Counters, p.log)
	p.track(part.gauges)
	defer p.untrack(part.gauges)
	start := a.Offset
	if !p.retry(ctx, part, "restore partition", &p.Counters.RestoreErrors, func(ctx context.Context) error {
		next, wm, ok, states, err := p.store.Restore(ctx, src)
		var corrupt *CorruptStatesError
		if errors.As(err, &corrupt) {
			p.quarantine(part, corrupt, next)
			err = nil
		}
		if err != nil {
			return err
		}
		if ok {
			producers, err := p.store.RestoreProducers(ctx, src, next)
			if err != nil {
				return err
			}
			part.restore(next, wm, states)
			part.restoreProducers(producers)
			start = next
		}
		part.log.Info().Bool("checkpoint", ok).Int64("offset", start).Int("open_windows", len(states)).Msg("partition restored")
		return nil
	}) {
		return
	}

	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:       p.cfg.Brokers,
		Topic:         p.cfg.Topic,
		Partition:     a.ID,
		MinBytes:      1,
		MaxBytes:      16 << 20,
		QueueCapacity: fetchAhead,
		MaxWait:       200 * time.Millisecond,
	})
	defer reader.Close()
	if err := reader.SetOffset(start); err != nil {
		part.log.Error().Err(err).Msg("seek partition")
		return
	}
	// Few messages wait between the fetch goroutine and the partition: in a
	// catch-up they are always full, and what waits is not yet counted by
	// the memory budget (kafka-go's reader queues QueueCapacity more).
	msgs := make(chan kafka.Message, fetchAhead)
	readCtx, stopReading := context.WithCancel(ctx)
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		defer close(msgs)
		// A failed fetch backs off here, inside the partition: returning
		// would end the consumer group's generation (kafka-go ends it when
		// any partition goroutine returns) and rebalance every member.
		// kafka-go's reader reconnects by itself (to a new leader, say) and
		// reports what persists; the next FetchMessage continues.
		retry := backoff.New(fetchPolicy)
		for {
			m, err := reader.FetchMessage(readCtx)
			if err != nil {
				if readCtx.Err() != nil {
					return
				}
				p.Counters.FetchErrors.Add(1)
				wait := retry.Next()
				if kafkaRetryable(err) {
					part.log.Warn().Err(err).Int("attempt", retry.Attempt()).Dur("retry_in", wait).Msg("fetch message; retrying in the partition")
				} else {
					part.log.Error().Err(err).Int("attempt", retry.Attempt()).Dur("retry_in", wait).
						Msg("fetch message: not an error that passes by itself (check the topic's ACLs and compression codec); retrying in the partition")
				}
				if backoff.Sleep(readCtx, wait) != nil {
					return
				}
				continue
			}
			retry.Reset()
			select {
			case msgs <- m:
			case <-readCtx.Done():
				return
			}
		}
	}()
	defer readers.Wait()
	defer stopReading()

	tick := time.NewTicker(p.cfg.CheckpointInterval)
	defer tick.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				p.finalCheckpoint(gen, part)
				return
			}
			part.handle(&m)
			// Metrics see the partition at most publishEvery messages old,
			// and exactly once it waits for input.
			part.observed(len(msgs) == 0)
			// Bound the memory and the INSERT size of one checkpoint.
			if (part.heldEvents >= p.cfg.MaxCheckpointRows || part.heldBytes >= p.heldShare()) && !p.checkpoint(ctx, gen, part) {
				p.finalCheckpoint(gen, part)
				return
			}
		case <-tick.C:
			part.publish()
			if !p.checkpoint(ctx, gen, part) {
				p.finalCheckpoint(gen, part)
				return
			}
		case <-ctx.Done():
			// Drain what was fetched, then write it.
			for m := range msgs {
				part.handle(&m)
			}
			p.finalCheckpoint(gen, part)
			return
		}
	}
}

func (p *Processor) finalCheckpoint(gen *kafka.Generation, part *partition) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !p.checkpoint(ctx, gen, part) {
		part.log.Error().Msg("last checkpoint not written: the next owner replays from the previous one")
	}
}

// checkpoint writes the partition's pending output, retrying until it is
// durable or ctx ends. It reports whether it was written.
func (p *Processor) checkpoint(ctx context.Context, gen *kafka.Generation, part *partition) bool {
	cb := part.prepare()
	if !part.needed(cb) {
		return true
	}
	began := time.Now()
	ok := p.retry(ctx, part, "write checkpoint", &p.Counters.CheckpointErrors, func(ctx context.Context) error {
		// Written dead letters leave cb.dead, so that a retry of the
		// store does not write them again.
		if err := p.dlq.write(ctx, &cb.dead); err != nil {
			return err
		}
		return p.store.Checkpoint(ctx, part.src, cb.raw, cb.late, cb.states, cb.nextOffset, cb.watermarkMs, cb.producers)
	})
	if !ok {
		return false
	}
	part.done(cb)
	took := time.Since(began)
	p.checkpointSeconds.Observe(took.Seconds())
	if took > p.cfg.Window.Size {
		part.log.Warn().Dur("took", took).Dur("window", p.cfg.Window.Size).Msg("checkpoint took longer than a window")
	}
	if e := part.log.Debug(); e.Enabled() {
		e.Int("states", len(cb.states)).Int("late", len(cb.late)).Int("dead", len(cb.dead)).Int64("offset", cb.nextOffset).Dur("took", took).Msg("checkpoint")
	}
	// The commit only mirrors ClickHouse for lag monitoring; a failure is harmless.
	if err := gen.CommitOffsets(map[string]map[int]int64{part.src.Topic: {part.src.Partition: cb.nextOffset}}); err != nil && ctx.Err() == nil {
		part.log.Debug().Err(err).Msg("commit offset")
	}
	return true
}

// retry runs f until it succeeds or ctx ends, with retryPolicy's back-off,
// counting each failure in WriteErrors and errs.
// Errors that are not retryable (the store's FailureBadData and
// FailureBroken: a missing table, a schema that needs migrating, a bug) are
// retried too, since skipping a restore or a checkpoint would lose or
// double events, but at the policy's cap and logged as errors that say what
// to do: the partition waits, holding what it read (it fetches no more),
// while the other partitions and the group go on. Nothing is lost: the
// next owner of the partition replays from its last checkpoint.
func (p *Processor) retry(ctx context.Context, part *partition, what string, errs *atomic.Uint64, f func(context.Context) error) bool {
	b := backoff.New(retryPolicy)
	for {
		err := f(ctx)
		if err == nil {
			return true
		}
		p.Counters.WriteErrors.Add(1)
		errs.Add(1)
		if ctx.Err() != nil {
			return false
		}
		wait := b.Next()
		if class := p.classify(err); class == FailureRetryable {
			part.log.Warn().Err(err).Int("attempt", b.Attempt()).Dur("retry_in", wait).Msg(what)
		} else {
			wait = retryPolicy.Max
			part.log.Error().Err(err).Stringer("failure", class).Int("attempt", b.Attempt()).Dur("retry_in", wait).Int64("offset", part.lastCheckpoint).
				Msg(what + ": this does not pass by itself, the partition waits here (is the schema migrated? run `vigil migrate`; does the ClickHouse user have the rights? otherwise it is a bug: report it with this log); nothing is lost, a restart replays from the last checkpoint")
		}
		if backoff.Sleep(ctx, wait) != nil {
			return false
		}
	}
}

// classify is the store's classification of err, except that Kafka's
// (from the dead-letter writer, which returns only retryable ones) are
// retryable.
func (p *Processor) classify(err error) Failure {
	if errors.Is(err, errDeadLetters) || kafkaRetryable(err) {
		return FailureRetryable
	}
	return p.store.Classify(err)
}

// quarantine counts and logs the stored states Restore left out. The
// partition restores without them: each such window starts again empty from
// the checkpoint, so its events before the checkpoint are missing from it
// until someone replays them.
func (p *Processor) quarantine(part *partition, corrupt *CorruptStatesError, checkpoint int64) {
	p.Counters.Quarantined.Add(uint64(len(corrupt.States)))
	for _, c := range corrupt.States {
		part.log.Error().Err(c.Err).Str("model", c.Key.Model).Str("model_version", c.Key.ModelVersion).Str("segment", c.Key.Segment).
			Time("window_start", time.UnixMilli(c.Key.WindowStart).UTC()).Int64("last_offset", c.LastOffset).Int64("checkpoint", checkpoint).
			Msg("stored window state cannot be decoded: quarantined (left out); the window starts again from the checkpoint, so its events before it are missing from it. " +
				"To recount the window, reset the group's checkpoint of this partition to an offset before the window (vigil_checkpoints) and restart; to just drop the bad row, delete it from vigil_model_windows")
	}
}
