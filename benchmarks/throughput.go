// Package benchmarks measures Vigil end to end against a real Kafka and a
// real ClickHouse: how fast the SDK fills a topic, and how fast the processor
// turns that topic into window rows in ClickHouse, in wall time and in CPU
// time of this process. The hot paths also have benchmarks next to their code
// (ingest.BenchmarkRecord, pipeline.BenchmarkProcessArrow and
// BenchmarkProcessJSON); README.md says how to run all of them.
//
// RunThroughput is what `go run ./benchmarks/throughput` and
// TestThroughputSmoke both call. Every run works on its own topic, consumer
// group and database and removes them afterwards (unless Keep), so runs may
// share a Kafka and a ClickHouse with other work.
package benchmarks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/schemas/ddl"
	"github.com/vigil-ml/vigil/schemas/wire"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// ThroughputConfig configures one RunThroughput. Zero fields take the
// defaults named on them.
type ThroughputConfig struct {
	Brokers            []string      // Kafka; required
	ClickHouse         string        // native-protocol address; required
	Encoding           string        // wire.EncodingArrow (default) or wire.EncodingJSON
	Events             int           // events sent and processed; required
	Features           int           // features per event, 16:3:1 numeric:categorical:boolean; default 20
	Partitions         int           // partitions of the input topic; default 1
	Models             int           // models, spread evenly over the partitions; default Partitions
	Window             time.Duration // window size; default 1m
	CheckpointInterval time.Duration // default pipeline.DefaultCheckpointInterval (2s)
	SkipRawEvents      bool          // do not write vigil_events (production writes them); default false
	Keep               bool          // keep topic, group and database for inspection; default false
	Timeout            time.Duration // bound on the processing phase; default 5m
	MaxHeldBytes       int           // the processor's memory budget per partition; default pipeline.DefaultMaxHeldBytes
	Log                zerolog.Logger
	// CPUProfile, when not nil, receives a CPU profile of the processing phase.
	CPUProfile io.Writer
	// MemProfile, when not nil, is called to write a heap profile each time
	// the processing phase's RSS passes its previous high by 10%; the last
	// one written is the profile nearest the peak.
	MemProfile func() (io.WriteCloser, error)
}

func (c ThroughputConfig) withDefaults() ThroughputConfig {
	if c.Encoding == "" {
		c.Encoding = wire.EncodingArrow
	}
	if c.Features == 0 {
		c.Features = 20
	}
	if c.Partitions == 0 {
		c.Partitions = 1
	}
	if c.Models == 0 {
		c.Models = c.Partitions
	}
	if c.Window == 0 {
		c.Window = window.DefaultSize
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = pipeline.DefaultCheckpointInterval
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	return c
}

func (c ThroughputConfig) validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("no Kafka brokers (set -kafka or VIGIL_KAFKA)")
	case c.ClickHouse == "":
		return errors.New("no ClickHouse address (set -clickhouse or VIGIL_CLICKHOUSE)")
	case c.Encoding != wire.EncodingArrow && c.Encoding != wire.EncodingJSON:
		return fmt.Errorf("encoding %q: want %q or %q", c.Encoding, wire.EncodingArrow, wire.EncodingJSON)
	case c.Events < 1:
		return fmt.Errorf("events %d: want >= 1", c.Events)
	case c.Features < 1:
		return fmt.Errorf("features %d: want >= 1", c.Features)
	case c.Partitions < 1 || c.Models < 1:
		return fmt.Errorf("partitions %d, models %d: want >= 1", c.Partitions, c.Models)
	}
	return nil
}

// Phase is the cost of one phase of a run.
type Phase struct {
	Events int
	Wall   time.Duration
	CPU    time.Duration // of this process: user + system time of all threads
}

// EventsPerSec is the phase's throughput in wall time.
func (p Phase) EventsPerSec() float64 { return rate(p.Events, p.Wall) }

// EventsPerCPUSec is the phase's throughput per CPU-second of this process
// (events/s/core). It excludes Kafka's and ClickHouse's own CPU.
func (p Phase) EventsPerCPUSec() float64 { return rate(p.Events, p.CPU) }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ThroughputResult is what one run measured and what it found in ClickHouse.
type ThroughputResult struct {
	Config                 ThroughputConfig // defaults applied
	Topic, Group, Database string

	// Produce runs from the first Record to Close's return: every event
	// acknowledged by Kafka. It includes making the events (one ID string each).
	Produce Phase
	// Process runs from the processor's Start (joining the consumer group
	// included) until Counters.Events reached Events and Shutdown returned,
	// that is, the final checkpoint of every partition is in ClickHouse.
	Process Phase
	// Parts of Process: Start to the first event counted, and Shutdown
	// (final checkpoint, leaving the group).
	Startup, FinalCheckpoint time.Duration

	// PeakRSS is the largest resident set size of this process during the
	// processing phase (the catch-up of the prefilled backlog), in bytes:
	// Linux's VmHWM, reset after the produce phase (0 where unknown).
	PeakRSS uint64

	// Processor counters after Shutdown.
	Counted, Messages, Checkpoints, Late, Malformed, WriteErrors uint64
	// Read back from ClickHouse after Shutdown.
	FeatureCount uint64 // sum(count) of CheckedFeature in vigil_feature_windows FINAL
	ModelEvents  uint64 // sum(events) in vigil_model_windows FINAL
	RawEvents    uint64 // count() of vigil_events FINAL (a retried checkpoint may insert a row twice until a merge); 0 with SkipRawEvents
}

// Verify reports every way the run's output differs from "each event counted
// exactly once".
func (r *ThroughputResult) Verify() error {
	n := uint64(r.Config.Events)
	var errs []error
	check := func(what string, got uint64) {
		if got != n {
			errs = append(errs, fmt.Errorf("%s = %d, want %d", what, got, n))
		}
	}
	check("processor Counters.Events", r.Counted)
	check("sum(count) of "+CheckedFeature+" in vigil_feature_windows", r.FeatureCount)
	check("sum(events) in vigil_model_windows", r.ModelEvents)
	if !r.Config.SkipRawEvents {
		check("rows in vigil_events", r.RawEvents)
	}
	if r.Late+r.Malformed != 0 {
		errs = append(errs, fmt.Errorf("%d late and %d malformed events, want none", r.Late, r.Malformed))
	}
	return errors.Join(errs...)
}

// RunThroughput fills a fresh topic with cfg.Events events through the SDK,
// then runs the processor with the ClickHouse sink on it until every event is
// counted and checkpointed, and measures both phases. Topic, consumer group
// and database are removed at the end unless cfg.Keep.
func RunThroughput(ctx context.Context, cfg ThroughputConfig) (res *ThroughputResult, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("throughput config: %w", err)
	}
	log := cfg.Log
	suffix, err := randomSuffix()
	if err != nil {
		return nil, err
	}
	res = &ThroughputResult{
		Config:   cfg,
		Topic:    "vigil-bench-" + cfg.Encoding + "-" + suffix,
		Group:    "vigil-bench-" + suffix,
		Database: "vigil_bench_" + strings.ReplaceAll(suffix, "-", "_"),
	}
	log = log.With().Str("topic", res.Topic).Logger()

	if err := kafkatopic.Ensure(ctx, cfg.Brokers, res.Topic, cfg.Partitions); err != nil {
		return nil, err
	}
	deadLetterTopic := res.Topic + ".dlq"
	defer func() {
		if !cfg.Keep {
			err = errors.Join(err, deleteKafkaObjects(cfg.Brokers, res.Group, res.Topic, deadLetterTopic))
		}
	}()

	// The sink first: a ClickHouse problem shows before a minute of producing.
	chCfg := clickhouse.DefaultConfig()
	chCfg.Addr, chCfg.Database, chCfg.RawEvents = cfg.ClickHouse, res.Database, !cfg.SkipRawEvents
	sink, err := clickhouse.New(chCfg, log)
	if err != nil {
		return nil, err
	}
	if err := sink.Start(ctx); err != nil {
		return nil, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if !cfg.Keep {
			if derr := sink.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+res.Database); derr != nil {
				err = errors.Join(err, fmt.Errorf("drop database %s: %w", res.Database, derr))
			}
		}
		err = errors.Join(err, sink.Shutdown(ctx))
	}()

	// Event times end at the start of the current window, so that the whole
	// run covers Events milliseconds of whole windows in the recent past.
	span := time.Duration(cfg.Events) * time.Millisecond
	end := time.Now().UTC().Truncate(cfg.Window)
	base := end.Add(-((span + cfg.Window - 1) / cfg.Window) * cfg.Window)
	src := newEventSource(cfg.Features, modelNames(cfg.Models, cfg.Partitions), base)

	log.Info().Str("encoding", cfg.Encoding).Int("events", cfg.Events).Int("features", cfg.Features).
		Int("partitions", cfg.Partitions).Int("models", cfg.Models).Msg("producing")
	if res.Produce, err = produce(ctx, cfg, res.Topic, src, log); err != nil {
		return res, err
	}
	log.Info().Dur("took", res.Produce.Wall).Float64("events_per_s", res.Produce.EventsPerSec()).Msg("produced")

	// The producer's garbage (and memory) is not the processor's cost.
	runtime.GC()
	debug.FreeOSMemory()
	if err := process(ctx, cfg, res, sink, log); err != nil {
		return res, err
	}
	log.Info().Dur("took", res.Process.Wall).Float64("events_per_s", res.Process.EventsPerSec()).
		Float64("events_per_cpu_s", res.Process.EventsPerCPUSec()).Msg("processed")

	if err := readBack(ctx, sink, res); err != nil {
		return res, err
	}
	return res, nil
}

func produce(ctx context.Context, cfg ThroughputConfig, topic string, src *eventSource, log zerolog.Logger) (Phase, error) {
	// BlockWhenFull with a long timeout: the prefill must not drop, and the
	// Record loop outruns Kafka, so it runs at the SDK's delivery rate.
	p, err := ingest.NewProducer(cfg.Brokers, topic, ingest.WithEncoding(cfg.Encoding),
		ingest.WithFullPolicy(ingest.BlockWhenFull), ingest.WithBlockTimeout(time.Minute), ingest.WithLogger(log))
	if err != nil {
		return Phase{}, err
	}
	cpu0, t0 := processCPU(), time.Now()
	for i := range cfg.Events {
		if err := p.Record(ctx, src.event(i)); err != nil {
			_ = p.Close(context.Background())
			return Phase{}, fmt.Errorf("record event %d: %w", i, err)
		}
	}
	if err := p.Close(ctx); err != nil {
		return Phase{}, fmt.Errorf("deliver %d events to %s: %w", cfg.Events, topic, err)
	}
	ph := Phase{Events: cfg.Events, Wall: time.Since(t0), CPU: processCPU() - cpu0}
	if s := p.Stats(); s.Sent != int64(cfg.Events) {
		return ph, fmt.Errorf("producer sent %d events, want %d (%+v)", s.Sent, cfg.Events, s)
	}
	return ph, nil
}

func process(ctx context.Context, cfg ThroughputConfig, res *ThroughputResult, sink *clickhouse.Sink, log zerolog.Logger) (err error) {
	proc, err := pipeline.New(pipeline.Config{
		Brokers:            cfg.Brokers,
		Topic:              res.Topic,
		Group:              res.Group,
		Window:             window.Config{Size: cfg.Window},
		CheckpointInterval: cfg.CheckpointInterval,
		MaxHeldBytes:       cfg.MaxHeldBytes,
	}, sink.Windows(), log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	stopped := false
	defer func() {
		if !stopped {
			sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
			defer scancel()
			err = errors.Join(err, proc.Shutdown(sctx))
		}
	}()

	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	want := uint64(cfg.Events)
	reset := resetPeakRSS()
	if !reset {
		log.Warn().Msg("cannot reset the peak RSS (/proc/self/clear_refs): the figure includes the produce phase")
	}
	cpu0, t0 := processCPU(), time.Now()
	if err := proc.Start(ctx); err != nil {
		return err
	}
	// Poll the counter: a 1ms tick costs far less than the work it watches.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var high uint64
	for n, polls := uint64(0), 0; n < want; n, polls = proc.Counters.Events.Load(), polls+1 {
		if n > 0 && res.Startup == 0 {
			res.Startup = time.Since(t0)
		}
		if cfg.MemProfile != nil && polls%20 == 0 {
			if rss := currentRSS(); rss > high+high/10 {
				high = rss
				if err := writeHeapProfile(cfg.MemProfile); err != nil {
					return err
				}
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("processor counted %d of %d events before %w (write errors %d)",
				n, want, ctx.Err(), proc.Counters.WriteErrors.Load())
		}
	}
	if res.Startup == 0 {
		res.Startup = time.Since(t0)
	}
	t1 := time.Now()
	stopped = true
	if err := proc.Shutdown(ctx); err != nil { // final checkpoint of every partition
		return fmt.Errorf("shut down processor: %w", err)
	}
	res.FinalCheckpoint = time.Since(t1)
	res.PeakRSS = peakRSS()
	res.Process = Phase{Events: cfg.Events, Wall: time.Since(t0), CPU: processCPU() - cpu0}
	c := &proc.Counters
	res.Counted, res.Messages, res.Checkpoints = c.Events.Load(), c.Messages.Load(), c.Checkpoints.Load()
	res.Late, res.Malformed, res.WriteErrors = c.Late.Load(), c.Malformed.Load(), c.WriteErrors.Load()
	return nil
}

// readBack reads the run's totals from ClickHouse, the way the README says
// to query the window tables (FINAL, then sum over partitions).
func readBack(ctx context.Context, sink *clickhouse.Sink, res *ThroughputResult) error {
	db := res.Database
	queries := []struct {
		into *uint64
		sql  string
		args []any
	}{
		{&res.FeatureCount, "SELECT sum(count) FROM " + db + "." + ddl.TableFeatureWindows + " FINAL WHERE feature = ?", []any{CheckedFeature}},
		{&res.ModelEvents, "SELECT sum(events) FROM " + db + "." + ddl.TableModelWindows + " FINAL", nil},
	}
	if !res.Config.SkipRawEvents {
		queries = append(queries, struct {
			into *uint64
			sql  string
			args []any
		}{&res.RawEvents, "SELECT count() FROM " + db + "." + ddl.TableEvents + " FINAL", nil})
	}
	for _, q := range queries {
		if err := sink.Conn().QueryRow(ctx, q.sql, q.args...).Scan(q.into); err != nil {
			return fmt.Errorf("read back %q: %w", q.sql, err)
		}
	}
	return nil
}

// deleteKafkaObjects removes the run's consumer group and topics.
func deleteKafkaObjects(brokers []string, group string, topics ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
	var errs []error
	gres, err := cl.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
	if err == nil {
		err = gres.Errors[group]
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("delete consumer group %s: %w", group, err))
	}
	tres, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		errs = append(errs, fmt.Errorf("delete topics %s: %w", strings.Join(topics, ", "), err))
	} else {
		for _, t := range topics {
			if err := tres.Errors[t]; err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
				errs = append(errs, fmt.Errorf("delete topic %s: %w", t, err))
			}
		}
	}
	return errors.Join(errs...)
}

// randomSuffix names a run's objects; no '_' or '.', which Kafka's topic
// names must not mix.
func randomSuffix() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random run name: %w", err)
	}
	return time.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b[:]), nil
}

func writeHeapProfile(open func() (io.WriteCloser, error)) error {
	w, err := open()
	if err != nil {
		return fmt.Errorf("open heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(w, 0); err != nil {
		w.Close()
		return fmt.Errorf("write heap profile: %w", err)
	}
	return w.Close()
}
