package app

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/ingest/gateway"
	"github.com/vigil-ml/vigil/ingest/serving"
	"github.com/vigil-ml/vigil/internal/lifecycle"
	"github.com/vigil-ml/vigil/internal/observe"
)

// BridgeConfig is the configuration of `vigil bridge`: the serving stack's
// topics it reads, the conversion, and where the events go.
type BridgeConfig struct {
	Bridge  serving.BridgeConfig
	Serving serving.Config
	// Topic is Vigil's prediction topic (created with Partitions when missing).
	Topic      string
	Partitions int
	// Addr serves /metrics, /healthz and /readyz; "" = serving.DefaultBridgeAddr,
	// "off" = no server.
	Addr string
}

// Bridge is a running `vigil bridge`: the HTTP server, the producer and
// the bridge, as a lifecycle group.
type Bridge struct {
	group  *lifecycle.Group
	bridge *serving.Bridge
	server *observe.Server
}

// StartBridge starts the bridge's stack: the topic, the producer, the
// observe server, then the bridge (stopped in reverse: the bridge flushes
// and commits, then the producer closes).
func StartBridge(ctx context.Context, cfg BridgeConfig, log zerolog.Logger) (*Bridge, error) {
	reg := observe.NewRegistry()
	conv, err := serving.New(cfg.Serving, reg, log)
	if err != nil {
		return nil, err
	}
	if err := ingest.EnsureTopic(ctx, cfg.Bridge.Brokers, cfg.Topic, cfg.Partitions); err != nil {
		return nil, fmt.Errorf("prediction topic %s: %w", cfg.Topic, err)
	}
	// The bridge waits rather than drops: a full buffer slows its reading,
	// and it commits nothing the producer did not flush.
	prod, err := ingest.NewProducer(cfg.Bridge.Brokers, cfg.Topic,
		ingest.WithFullPolicy(ingest.BlockWhenFull), ingest.WithBlockTimeout(time.Minute), ingest.WithLogger(log))
	if err != nil {
		return nil, err
	}
	br, err := serving.NewBridge(cfg.Bridge, conv, prod, reg, log)
	if err != nil {
		_ = prod.Close(ctx)
		return nil, err
	}
	g := lifecycle.NewGroup(log)
	g.Add("producer", lifecycle.Funcs{OnShutdown: prod.Close}, 0)
	var srv *observe.Server
	if cfg.Addr != "off" {
		srv = observe.NewServer(first(cfg.Addr, serving.DefaultBridgeAddr), reg, nil, log)
		srv.Ready("bridge", br.Ready)
		g.Add("http", srv, 0)
	}
	g.Add("bridge", br, 0)
	if err := g.Start(ctx); err != nil {
		return nil, err
	}
	ev := log.Info().Strs("topics", cfg.Bridge.Topics()).Str("format", cfg.Bridge.Format).Str("to", cfg.Topic)
	if srv != nil {
		ev = ev.Str("http", srv.Addr())
	}
	ev.Msg("bridge started")
	return &Bridge{group: g, bridge: br, server: srv}, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Addr is the address the HTTP server listens on ("" without one).
func (b *Bridge) Addr() string {
	if b.server == nil {
		return ""
	}
	return b.server.Addr()
}

// Shutdown stops the stack; idempotent.
func (b *Bridge) Shutdown(ctx context.Context) error { return b.group.Shutdown(ctx) }

// RunBridge runs the bridge until ctx ends or the bridge fails, then stops it.
func RunBridge(ctx context.Context, cfg BridgeConfig, log zerolog.Logger) error {
	b, err := StartBridge(ctx, cfg, log)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info().Msg("stopping")
	case <-b.bridge.Done():
	}
	serr := b.Shutdown(context.Background())
	if err := b.bridge.Err(); err != nil {
		return err
	}
	return serr
}

// The gateway's port for serving-stack payloads is ingest/serving's Converter.
var _ gateway.Converter = (*serving.Converter)(nil)
