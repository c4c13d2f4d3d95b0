package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/ingest"
)

// Bridge formats: whose topics the bridge reads.
const (
	FormatMLServer = "mlserver"
	FormatSeldon   = "seldon"
)

// Headers and topic parts of the serving stacks' Kafka integrations.
const (
	// MLServer (mlserver/kafka/handlers.py): the served model and version of a request.
	HeaderMLServerModel   = "mlserver-model"
	HeaderMLServerVersion = "mlserver-version"
	// Seldon Core v2 (scheduler/pkg/util/ids.go): the request id on every message of an inference.
	HeaderRequestID = "x-request-id"
)

// DefaultBridgeAddr is where `vigil bridge` serves /metrics, /healthz and
// /readyz unless --http-addr says otherwise (next to vigil process's 9464).
const DefaultBridgeAddr = "127.0.0.1:9465"

// BridgeConfig configures a Bridge.
type BridgeConfig struct {
	Brokers []string
	Group   string // consumer group
	Format  string // FormatMLServer or FormatSeldon
	// MLServer: the topics of its Kafka server (settings kafka_topic_input, kafka_topic_output).
	RequestTopic, ResponseTopic string
	// Seldon Core v2: <prefix>.<namespace>.model.<model>.inputs / .outputs for each model.
	SeldonPrefix, SeldonNamespace string
	SeldonModels                  []string
	// CommitInterval is how often the bridge flushes the producer and commits.
	CommitInterval time.Duration
}

// DefaultBridgeConfig returns the defaults: MLServer's default topics.
func DefaultBridgeConfig() BridgeConfig {
	return BridgeConfig{
		Group:           "vigil-bridge",
		Format:          FormatMLServer,
		RequestTopic:    "mlserver-input",
		ResponseTopic:   "mlserver-output",
		SeldonPrefix:    "seldon",
		SeldonNamespace: "default",
		CommitInterval:  time.Second,
	}
}

// Validate checks the config.
func (c *BridgeConfig) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("bridge: no Kafka brokers")
	case c.Group == "":
		return errors.New("bridge: no consumer group")
	case c.CommitInterval <= 0:
		return fmt.Errorf("bridge: commit interval %v: want > 0", c.CommitInterval)
	}
	switch c.Format {
	case FormatMLServer:
		if c.RequestTopic == "" || c.ResponseTopic == "" || c.RequestTopic == c.ResponseTopic {
			return fmt.Errorf("bridge: request topic %q and response topic %q must be set and differ", c.RequestTopic, c.ResponseTopic)
		}
	case FormatSeldon:
		if len(c.SeldonModels) == 0 {
			return errors.New("bridge: format seldon needs the models whose topics to read (--seldon-models)")
		}
		if c.SeldonPrefix == "" || c.SeldonNamespace == "" {
			return errors.New("bridge: format seldon needs a topic prefix and a namespace")
		}
	default:
		return fmt.Errorf("bridge: format %q: want %s or %s", c.Format, FormatMLServer, FormatSeldon)
	}
	return nil
}

// topic is what the bridge knows of one topic it reads.
type topic struct {
	response bool
	model    string // Seldon: the model of the topic
}

// Topics maps every topic the bridge reads to its role.
func (c *BridgeConfig) topics() map[string]topic {
	if c.Format == FormatMLServer {
		return map[string]topic{c.RequestTopic: {}, c.ResponseTopic: {response: true}}
	}
	ts := make(map[string]topic, 2*len(c.SeldonModels))
	for _, m := range c.SeldonModels {
		base := strings.Join([]string{c.SeldonPrefix, c.SeldonNamespace, "model", m}, ".")
		ts[base+".inputs"] = topic{model: m}
		ts[base+".outputs"] = topic{response: true, model: m}
	}
	return ts
}

// Topics lists the topics the bridge reads.
func (c *BridgeConfig) Topics() []string {
	var out []string
	for t := range c.topics() {
		out = append(out, t)
	}
	return out
}

// Bridge reads a serving stack's request and response topics in a consumer
// group, converts the pairs with a Converter and publishes the events
// through an ingest.Producer. It is a lifecycle component: Start runs its
// goroutine, Shutdown stops it, flushes and commits. Offsets are committed
// only after the producer flushed the events of the messages before them,
// and never past a half that still waits for its other half.
type Bridge struct {
	cfg    BridgeConfig
	topics map[string]topic
	conv   *Converter
	prod   *ingest.Producer
	log    zerolog.Logger

	messages  *prometheus.CounterVec
	commits   prometheus.Counter
	pubErrors prometheus.Counter

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	reader *kafka.Reader
	joined bool
}

// origin is where a pending half was read.
type origin struct {
	topic     string
	partition int
	offset    int64
}

type partitionKey struct {
	topic     string
	partition int
}

// NewBridge returns a bridge; its metrics are registered on reg (nil: not
// registered).
func NewBridge(cfg BridgeConfig, conv *Converter, prod *ingest.Producer, reg prometheus.Registerer, log zerolog.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bridge{
		cfg: cfg, topics: cfg.topics(), conv: conv, prod: prod, log: log,
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bridge_messages_total",
			Help: "Kafka messages the bridge read, by topic and result (ok, invalid: skipped).",
		}, []string{"topic", "result"}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_bridge_commits_total",
			Help: "Offset commits of the bridge, each after the producer flushed.",
		}),
		pubErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_bridge_publish_errors_total",
			Help: "Producer flushes that failed (the bridge stops; the offsets are not committed).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{b.messages, b.commits, b.pubErrors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("bridge: register metrics: %w", err)
			}
		}
	}
	return b, nil
}

// Start starts reading.
func (b *Bridge) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done != nil {
		return errors.New("bridge: started twice")
	}
	b.reader = kafka.NewReader(kafka.ReaderConfig{
		Brokers:        b.cfg.Brokers,
		GroupID:        b.cfg.Group,
		GroupTopics:    b.cfg.Topics(),
		StartOffset:    kafka.FirstOffset,
		MinBytes:       1,
		MaxBytes:       16 << 20,
		MaxWait:        250 * time.Millisecond,
		CommitInterval: 0, // synchronous commits, when run says
		Logger:         kafka.LoggerFunc(func(string, ...any) {}),
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) {
			b.log.Warn().Msgf("bridge: kafka: "+f, a...)
		}),
	})
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel, b.done = cancel, make(chan struct{})
	go b.run(rctx)
	return nil
}

// Done is closed when the bridge stopped (Shutdown, or a failure: Err).
func (b *Bridge) Done() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// Err is why the bridge stopped on its own (nil after Shutdown).
func (b *Bridge) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Ready is a readiness check: nil once the bridge read from its topics.
func (b *Bridge) Ready(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	if !b.joined {
		return errors.New("bridge: not consuming yet")
	}
	return nil
}

// Shutdown stops reading, flushes the producer and commits; idempotent.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func (b *Bridge) run(ctx context.Context) {
	defer close(b.done)
	read := map[partitionKey]int64{}      // next offset to read, per partition
	committed := map[partitionKey]int64{} // committed offset, per partition
	lastCommit := time.Now()
	var err error
	for {
		fctx, cancel := context.WithTimeout(ctx, b.cfg.CommitInterval)
		m, ferr := b.reader.FetchMessage(fctx)
		cancel()
		if ferr == nil {
			b.mu.Lock()
			b.joined = true
			b.mu.Unlock()
			if err = b.handle(ctx, &m); errors.Is(err, errStopping) {
				err = nil // this message is not committed: read again after a restart
				break
			} else if err != nil {
				break
			}
			read[partitionKey{m.Topic, m.Partition}] = m.Offset + 1
		} else if ctx.Err() != nil {
			break
		} else if !errors.Is(ferr, context.DeadlineExceeded) {
			b.log.Warn().Err(ferr).Msg("bridge: fetch")
		}
		if time.Since(lastCommit) >= b.cfg.CommitInterval {
			lastCommit = time.Now()
			b.conv.Sweep()
			if err = b.commit(ctx, read, committed); err != nil {
				break
			}
		}
	}
	if err == nil {
		// Stopping: deliver what was converted and commit it.
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = b.commit(sctx, read, committed)
		cancel()
	}
	if cerr := b.reader.Close(); cerr != nil {
		b.log.Warn().Err(cerr).Msg("bridge: close reader")
	}
	if err != nil {
		b.log.Error().Err(err).Msg("bridge: stopped")
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}
}

// errStopping: the bridge stopped while a message's events were recorded.
var errStopping = errors.New("bridge: stopping")

// handle converts one message and records its events. A malformed message
// is counted and skipped; an error is returned only when the producer
// refuses an event (its buffer stayed full).
func (b *Bridge) handle(ctx context.Context, m *kafka.Message) error {
	tp, ok := b.topics[m.Topic]
	if !ok {
		return nil
	}
	h, err := b.half(m, tp)
	if err != nil {
		b.messages.WithLabelValues(m.Topic, "invalid").Inc()
		b.log.Warn().Err(err).Str("topic", m.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).Msg("bridge: message skipped")
		return nil
	}
	b.messages.WithLabelValues(m.Topic, "ok").Inc()
	evs, err := b.conv.Offer(h)
	if err != nil {
		b.log.Warn().Err(err).Str("topic", m.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).Str("request_id", h.ID).Msg("bridge: pair refused")
		return nil
	}
	for i := range evs {
		if err := b.prod.Record(ctx, evs[i]); err != nil {
			if ctx.Err() != nil {
				return errStopping
			}
			return fmt.Errorf("bridge: record event %s: %w", evs[i].ID, err)
		}
	}
	return nil
}

// half reads one message as a request or response half.
func (b *Bridge) half(m *kafka.Message, tp topic) (Half, error) {
	h := Half{Response: tp.response, Served: tp.model, Time: m.Time, Body: m.Value,
		Attrs:  make(map[string]string, len(m.Headers)),
		Origin: origin{m.Topic, m.Partition, m.Offset}}
	for _, hd := range m.Headers {
		h.Attrs[strings.ToLower(hd.Key)] = string(hd.Value)
	}
	if len(bytes.TrimSpace(m.Value)) == 0 {
		return Half{}, errors.New("empty message")
	}
	h.Proto = firstByte(m.Value) != '{'
	switch b.cfg.Format {
	case FormatMLServer:
		// MLServer: the key is the request id (it takes precedence over
		// the body's id, and is copied to the response's key and id).
		h.ID = string(m.Key)
		if h.ID == "" && !h.Proto {
			var body struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(m.Value, &body) == nil {
				h.ID = body.ID
			}
		}
	case FormatSeldon:
		h.ID = h.Attrs[HeaderRequestID]
		if h.ID == "" {
			h.ID = string(m.Key)
		}
	}
	if h.ID == "" {
		return Half{}, errors.New("no request id (MLServer: a key or a body id; Seldon: the x-request-id header)")
	}
	return h, nil
}

// commit flushes the producer, then commits every partition up to what it
// read, held back to the oldest half that still waits there.
func (b *Bridge) commit(ctx context.Context, read, committed map[partitionKey]int64) error {
	if err := b.prod.Flush(ctx); err != nil {
		b.pubErrors.Inc()
		return fmt.Errorf("bridge: flush producer: %w", err)
	}
	next := make(map[partitionKey]int64, len(read))
	for k, off := range read {
		next[k] = off
	}
	b.conv.PendingOrigins(func(o any) {
		if o, ok := o.(origin); ok {
			k := partitionKey{o.topic, o.partition}
			if off, ok := next[k]; ok && o.offset < off {
				next[k] = o.offset
			}
		}
	})
	var msgs []kafka.Message
	for k, off := range next {
		if off > committed[k] {
			// kafka-go commits a message's offset + 1.
			msgs = append(msgs, kafka.Message{Topic: k.topic, Partition: k.partition, Offset: off - 1})
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := b.reader.CommitMessages(ctx, msgs...); err != nil {
		// A rebalance took the partition away; its next owner reads again
		// from the last commit (the events have the same ids).
		b.log.Warn().Err(err).Msg("bridge: commit offsets")
		return nil
	}
	for _, m := range msgs {
		committed[partitionKey{m.Topic, m.Partition}] = m.Offset + 1
	}
	b.commits.Inc()
	return nil
}
