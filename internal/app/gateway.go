package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/ingest/gateway"
	"github.com/vigil-ml/vigil/ingest/serving"
	"github.com/vigil-ml/vigil/internal/auth"
	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/lifecycle"
	"github.com/vigil-ml/vigil/internal/observe"
)

// GatewayConfig is the configuration of `vigil gateway`.
type GatewayConfig struct {
	Brokers    []string
	Topic      string // prediction events
	LabelTopic string // labels; "": ingest.DefaultLabelTopic(Topic)
	Partitions int    // of the topics when the gateway creates them
	// Addr is the HTTP server's address; "": gateway.DefaultAddr.
	Addr string
	// TLSCert and TLSKey (PEM files), both or neither: HTTPS only.
	TLSCert, TLSKey string
	// Tokens is the bearer tokens file (internal/auth); "": no
	// authentication.
	Tokens string
	// Handler holds the limits (its Tokens are loaded from Tokens).
	Handler  gateway.Config
	Producer GatewayProducerConfig
	// Serving converts the bodies of /v1/cloudevents and /v1/oip/{model}
	// (ingest/serving); nil: those routes are not mounted (404).
	Serving *serving.Config
}

// GatewayProducerConfig are the SDK options of the gateway's producer that
// its command exposes; zero values take the SDK's defaults.
type GatewayProducerConfig struct {
	Encoding     string // wire.EncodingArrow or wire.EncodingJSON
	Buffer       int    // WithMaxBufferedEvents
	LabelBuffer  int    // WithMaxBufferedLabels
	BatchSize    int
	Linger       time.Duration
	BlockTimeout time.Duration // BlockWhenFull's wait before a 503
}

func (c GatewayProducerConfig) options(log zerolog.Logger) []ingest.Option {
	opts := []ingest.Option{ingest.WithLogger(log), ingest.WithFullPolicy(ingest.BlockWhenFull)}
	if c.Encoding != "" {
		opts = append(opts, ingest.WithEncoding(c.Encoding))
	}
	if c.Buffer > 0 {
		opts = append(opts, ingest.WithMaxBufferedEvents(c.Buffer))
	}
	if c.LabelBuffer > 0 {
		opts = append(opts, ingest.WithMaxBufferedLabels(c.LabelBuffer))
	}
	if c.BatchSize > 0 {
		opts = append(opts, ingest.WithBatchSize(c.BatchSize))
	}
	if c.Linger > 0 {
		opts = append(opts, ingest.WithLinger(c.Linger))
	}
	if c.BlockTimeout > 0 {
		opts = append(opts, ingest.WithBlockTimeout(c.BlockTimeout))
	}
	return opts
}

// Gateway is the running stack of `vigil gateway`, in start order:
//
//	topics        the prediction and label topics, created when missing
//	producer      ingest.Producer (its goroutines run from construction): Shutdown flushes it
//	http server   internal/observe with the routes of ingest/gateway; /readyz: Kafka answers for the topic
//	pair sweep    drops request/response halves older than the serving ttl (with Serving)
//
// Shutdown stops them in reverse: the server stops accepting and drains
// its requests, then the producer delivers what it holds (a loss is
// logged with its counts).
type Gateway struct {
	group  *lifecycle.Group
	server *observe.Server
}

// StartGateway builds the stack of cfg and starts it.
func StartGateway(ctx context.Context, cfg GatewayConfig, log zerolog.Logger) (*Gateway, error) {
	log = log.With().Str("component", "gateway").Logger()
	if cfg.LabelTopic == "" {
		cfg.LabelTopic = ingest.DefaultLabelTopic(cfg.Topic)
	}
	if cfg.Addr == "" {
		cfg.Addr = gateway.DefaultAddr
	}
	hc := cfg.Handler
	if cfg.Tokens != "" {
		toks, err := auth.Load(cfg.Tokens)
		if err != nil {
			return nil, err
		}
		hc.Tokens = toks
		log.Info().Strs("tokens", toks.Names()).Msg("bearer tokens loaded")
	} else {
		log.Warn().Msg("no tokens file (--gateway-tokens): the gateway accepts every request without authentication")
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load TLS key pair %s, %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	reg := observe.NewRegistry()
	var conv *serving.Converter
	if cfg.Serving != nil {
		var err error
		if conv, err = serving.New(*cfg.Serving, reg, log); err != nil {
			return nil, err
		}
		hc.Converter = conv
	}
	prod, err := ingest.NewProducer(cfg.Brokers, cfg.Topic, append(cfg.Producer.options(log), ingest.WithLabelTopic(cfg.LabelTopic))...)
	if err != nil {
		return nil, err
	}
	var closeOnce sync.Once
	var closeErr error
	closeProducer := func(ctx context.Context) error {
		closeOnce.Do(func() { closeErr = closeGatewayProducer(ctx, prod, log) })
		return closeErr
	}
	reg.MustRegister(ingest.NewStatsCollector(prod, nil))
	h, err := gateway.New(hc, prod, reg, log)
	if err != nil {
		_ = closeProducer(context.Background())
		return nil, err
	}
	srv := observe.NewServer(cfg.Addr, reg, tlsConfig, log)
	h.Mount(srv)
	srv.Ready("kafka", func(ctx context.Context) error { return reachable(ctx, cfg.Brokers, cfg.Topic) })

	g := lifecycle.NewGroup(log)
	g.Add("topics", lifecycle.Funcs{OnStart: func(ctx context.Context) error {
		if err := kafkatopic.Ensure(ctx, cfg.Brokers, cfg.Topic, cfg.Partitions); err != nil {
			return err
		}
		return kafkatopic.Ensure(ctx, cfg.Brokers, cfg.LabelTopic, cfg.Partitions)
	}}, 0)
	g.Add("producer", lifecycle.Funcs{OnShutdown: closeProducer}, 0)
	g.Add("http server", srv, 0)
	if conv != nil {
		g.Add("pair sweep", lifecycle.NewPeriodic(max(time.Second, cfg.Serving.PendingTTL/4), func(context.Context) { conv.Sweep() }), 0)
	}
	if err := g.Start(ctx); err != nil {
		_ = closeProducer(context.Background()) // when the topics failed, the group never started (so never stops) it
		return nil, err
	}
	return &Gateway{group: g, server: srv}, nil
}

// closeGatewayProducer closes the producer within ctx and logs what it
// could not deliver. Events refused with a 503 (Dropped) were reported to
// their clients; Failed and Unsent ones are lost, and an error.
func closeGatewayProducer(ctx context.Context, p *ingest.Producer, log zerolog.Logger) error {
	err := p.Close(ctx)
	s := p.Stats()
	var loss *ingest.LossError
	if errors.As(err, &loss) {
		if loss.Failed+loss.Unsent == 0 {
			log.Info().Int64("refused_503", loss.Dropped).Int64("sent", s.Sent).
				Msg("producer closed: every accepted event delivered; the refused ones were answered 503")
			return nil
		}
		log.Error().Int64("failed", loss.Failed).Int64("unsent", loss.Unsent).Int64("refused_503", loss.Dropped).Int64("sent", s.Sent).
			Msg("producer closed with accepted events not delivered to Kafka")
		return fmt.Errorf("close gateway producer: %w", err)
	}
	if err != nil {
		return fmt.Errorf("close gateway producer: %w", err)
	}
	log.Info().Int64("sent", s.Sent).Msg("producer closed: every accepted event delivered")
	return nil
}

// reachable reports whether a broker answers with topic's partitions.
func reachable(ctx context.Context, brokers []string, topic string) error {
	var errs []error
	for _, b := range brokers {
		conn, err := kafka.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		parts, err := conn.ReadPartitions(topic)
		_ = conn.Close()
		if err == nil && len(parts) > 0 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("topic %s has no partitions", topic)
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("no Kafka broker answers for topic %s: %w", topic, errors.Join(errs...))
}

// Addr is the address the HTTP server listens on.
func (g *Gateway) Addr() string { return g.server.Addr() }

// Registry is the registry /metrics serves.
func (g *Gateway) Registry() *prometheus.Registry { return g.server.Registry() }

// Shutdown stops accepting requests, drains those in flight, then flushes
// the producer; idempotent.
func (g *Gateway) Shutdown(ctx context.Context) error { return g.group.Shutdown(ctx) }

// RunGateway runs the gateway until ctx ends, then stops it.
func RunGateway(ctx context.Context, cfg GatewayConfig, log zerolog.Logger) error {
	g, err := StartGateway(ctx, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info().Msg("stopping")
	return g.Shutdown(context.Background())
}
