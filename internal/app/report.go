package app

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/auth"
	"github.com/vigil-ml/vigil/internal/observe"
	"github.com/vigil-ml/vigil/internal/report"
	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// ReportStores are the sink's stores a report and the UI read.
func ReportStores(sink *clickhouse.Sink) report.Stores {
	return report.Stores{Windows: sink.Windows(), References: sink.References(), Performance: sink.Labels(), Alerts: sink.Alerts()}
}

// ReportQuery selects what a report covers (report.Query).
type ReportQuery = report.Query

// WriteReport builds the report q selects from what sink stores and writes
// it to path as one self-contained HTML file (written beside it, then
// renamed: a reader never sees half a file). It returns the report and the
// file's size.
func WriteReport(ctx context.Context, sink *clickhouse.Sink, q report.Query, path string) (*report.Report, int64, error) {
	r, err := report.Build(ctx, ReportStores(sink), q)
	if err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	if err := report.Render(&buf, r); err != nil {
		return nil, 0, fmt.Errorf("render report: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vigil-report-*.html")
	if err != nil {
		return nil, 0, fmt.Errorf("write report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return nil, 0, fmt.Errorf("write report %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return nil, 0, fmt.Errorf("write report %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, 0, fmt.Errorf("write report %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, 0, fmt.Errorf("write report %s: %w", path, err)
	}
	return r, int64(buf.Len()), nil
}

// UIPrefix is where the live UI is mounted.
const UIPrefix = "/ui/"

// MountUI mounts the live, read-only UI at UIPrefix on srv (before its
// Start), reading through sink's stores. With tokens (internal/auth), a
// request needs a bearer token (401 otherwise) and sees only the models
// its token allows; tokens nil: no authentication.
func MountUI(srv *observe.Server, sink *clickhouse.Sink, opts drift.Options, tokens *auth.Tokens, log zerolog.Logger) {
	srv.Handle(UIPrefix, UIHandler(sink, opts, tokens, log))
}

// UIHandler is the handler MountUI mounts.
func UIHandler(sink *clickhouse.Sink, opts drift.Options, tokens *auth.Tokens, log zerolog.Logger) http.Handler {
	allow := func(r *http.Request, model string) bool {
		tok := auth.FromContext(r.Context())
		return tok == nil || tok.AllowsModel(model)
	}
	return tokens.Middleware(report.Handler(UIPrefix, ReportStores(sink), opts, allow, log))
}

// loadUITokens loads the UI's tokens file; "" is no authentication (and a
// warning).
func loadUITokens(path string, log zerolog.Logger) (*auth.Tokens, error) {
	if path == "" {
		log.Warn().Msg("no tokens file (--ui-tokens): the UI at " + UIPrefix + " answers every request without authentication")
		return nil, nil
	}
	tokens, err := auth.Load(path)
	if err != nil {
		return nil, err
	}
	log.Info().Strs("tokens", tokens.Names()).Msg("UI bearer tokens loaded")
	return tokens, nil
}

// DefaultUIAddr is the address of `vigil ui` when --http-addr names none.
const DefaultUIAddr = "127.0.0.1:9480"

// UIConfig configures `vigil ui`.
type UIConfig struct {
	Sink clickhouse.Config
	// Addr is the HTTP server's address; "": DefaultUIAddr.
	Addr string
	// TLSCert and TLSKey (PEM files), both or neither: HTTPS only.
	TLSCert, TLSKey string
	// Tokens is the bearer tokens file (internal/auth); "": no
	// authentication.
	Tokens string
	Drift  drift.Options
}

// UI is `vigil ui`'s stack: the sink and an HTTP server with /ui/ (and
// observe's /metrics, /healthz, /readyz).
type UI struct {
	sink *clickhouse.Sink
	srv  *observe.Server
}

// StartUI starts the sink and the server of cfg.
func StartUI(ctx context.Context, cfg UIConfig, log zerolog.Logger) (*UI, error) {
	sink, err := clickhouse.New(cfg.Sink, log)
	if err != nil {
		return nil, err
	}
	if err := sink.Start(ctx); err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultUIAddr
	}
	tokens, err := loadUITokens(cfg.Tokens, log)
	if err != nil {
		_ = sink.Shutdown(context.Background())
		return nil, err
	}
	tlsConfig, err := HTTPConfig{TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey}.tlsConfig()
	if err != nil {
		_ = sink.Shutdown(context.Background())
		return nil, err
	}
	srv := observe.NewServer(cfg.Addr, observe.NewRegistry(), tlsConfig, log)
	MountUI(srv, sink, cfg.Drift, tokens, log)
	srv.Ready("clickhouse", func(ctx context.Context) error { return sink.Conn().Ping(ctx) })
	if err := srv.Start(ctx); err != nil {
		_ = sink.Shutdown(context.Background())
		return nil, err
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	log.Info().Str("url", scheme+"://"+srv.Addr()+UIPrefix).Msg("UI serving")
	return &UI{sink: sink, srv: srv}, nil
}

// Addr is the server's address (host:port).
func (u *UI) Addr() string { return u.srv.Addr() }

// Shutdown stops the server, then the sink; idempotent.
func (u *UI) Shutdown(ctx context.Context) error {
	err := u.srv.Shutdown(ctx)
	if e := u.sink.Shutdown(ctx); err == nil {
		err = e
	}
	return err
}

// RunUI serves the UI until ctx ends.
func RunUI(ctx context.Context, cfg UIConfig, log zerolog.Logger) error {
	u, err := StartUI(ctx, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return u.Shutdown(context.Background())
}
