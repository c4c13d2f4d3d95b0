// Package observe is the HTTP face of Vigil's long-running commands
// (`vigil process`, `vigil gateway`): one server on one address that
// serves
//
//	/metrics  Prometheus text exposition of a registry (prometheus/client_golang)
//	/healthz  200 while the process runs (liveness)
//	/readyz   200 when every readiness check passes, else 503 naming the failing ones
//
// and whatever else a command mounts with Handle before Start (the
// gateway's /v1/ routes, the UI's /ui/). The server is a
// lifecycle.Component; Shutdown drains in-flight requests within its ctx.
//
// Metrics are registered by the packages that own them on the registry
// the application gives them (prometheus.Registerer); observe only
// serves it. The metric names are documented in docs/METRICS.md.
package observe

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Check is a readiness check: nil when the component it watches is ready.
// It should answer within a second; its ctx ends after 2s.
type Check func(ctx context.Context) error

// DetailCheck is a readiness check that also says, when it passes, in what
// state it found the component ("standby member of generation 4").
type DetailCheck func(ctx context.Context) (string, error)

// Server serves /metrics, /healthz, /readyz and the mounted handlers.
// Handle and Ready must be called before Start.
type Server struct {
	addr string
	tls  *tls.Config
	reg  *prometheus.Registry
	log  zerolog.Logger
	mux  *http.ServeMux

	mu     sync.Mutex
	checks map[string]DetailCheck
	srv    *http.Server
	ln     net.Listener
	done   chan error
}

// DefaultAddr is where `vigil process` serves by default: the port
// OpenTelemetry's Prometheus exporter uses, on loopback only, so that
// nothing is exposed unless the operator chooses an address
// (--http-addr 0.0.0.0:9464 in a container).
const DefaultAddr = "127.0.0.1:9464"

// NewRegistry is a registry with the Go runtime and process collectors, as
// every long-running command exports them.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewServer is a server on addr (host:port; port 0 picks a free one, see
// Addr) for the registry reg. tlsConfig nil serves plain HTTP.
func NewServer(addr string, reg *prometheus.Registry, tlsConfig *tls.Config, log zerolog.Logger) *Server {
	s := &Server{addr: addr, tls: tlsConfig, reg: reg, log: log.With().Str("component", "http").Logger(), mux: http.NewServeMux(), checks: map[string]DetailCheck{}}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorLog: promLogger{s.log}}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	return s
}

// Registry is the server's registry, for the packages that register
// metrics on it.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Handle mounts h at pattern (net/http ServeMux patterns, methods
// included: "POST /v1/events").
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Ready adds a named readiness check.
func (s *Server) Ready(name string, c Check) {
	s.ReadyDetail(name, func(ctx context.Context) (string, error) { return "ok", c(ctx) })
}

// ReadyDetail adds a named readiness check that describes what it found.
func (s *Server) ReadyDetail(name string, c DetailCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// ready answers 200 {"status":"ready","checks":{name: detail}} when every
// check passes, else 503 {"status":"not ready","failing":{name: error},
// "checks":{...}}.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	checks := make(map[string]DetailCheck, len(s.checks))
	for n, c := range s.checks {
		checks[n] = c
	}
	s.mu.Unlock()
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	failing, details := map[string]string{}, map[string]string{}
	for _, n := range names {
		detail, err := checks[n](ctx)
		if err != nil {
			failing[n] = err.Error()
			detail = "failing"
		}
		details[n] = detail
	}
	if len(failing) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failing": failing, "checks": details})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": details})
}

// Start listens on the address and serves in a goroutine of its own.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	s.mu.Lock()
	s.srv, s.ln, s.done = srv, ln, make(chan error, 1)
	s.mu.Unlock()
	go func() { s.done <- srv.Serve(ln) }()
	s.log.Info().Str("addr", ln.Addr().String()).Bool("tls", s.tls != nil).Msg("serving /metrics, /healthz, /readyz")
	return nil
}

// Addr is the address the server listens on once started ("" before).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting and waits for in-flight requests within ctx;
// idempotent and safe without Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// promLogger routes promhttp's errors to zerolog.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) { l.log.Error().Msg(fmt.Sprint(v...)) }
