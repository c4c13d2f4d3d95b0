// Package clickhouse is Vigil's ClickHouse sink: it writes window states, raw
// events, late events and partition checkpoints, and reads a partition's
// checkpoint and open window states back on restart (see docs/DESIGN.md,
// "Delivery guarantee", and docs/TABLES.md for the tables).
//
// It speaks the native protocol only (clickhouse-go/v2), which works with
// every server from 18.16 on. A Sink is safe for concurrent use: each
// partition goroutine calls Checkpoint and Restore for its own Source.
//
// The Sink connects, migrates and closes; what it stores is reached through
// one store per consumer's port (stores.go): Windows, Labels, Alerts,
// References and Outbox.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

// Config configures a Sink. Start from DefaultConfig: a zero RawEvents means
// "do not write raw events".
type Config struct {
	Addr        string        // host:port of the native protocol; default 127.0.0.1:9000
	Database    string        // default vigil
	User        string        // default "default"
	Password    string        // default empty
	RawEvents   bool          // write every event to vigil_events; DefaultConfig sets true
	DialTimeout time.Duration // default 10s
	TTLDays     int           // keep raw and late events this long (ClickHouse >= 22 only); default 30, negative = forever
	// Cluster, when not empty, names the ClickHouse cluster (remote_servers)
	// that Addr is a server of: the tables are created ON CLUSTER in the
	// cluster form of schemas/ddl (Distributed tables over replicated local
	// ones), and every INSERT returns once its rows are on their shards
	// (insert_distributed_sync). Empty: one server.
	Cluster string
}

// Defaults of Config.
const (
	DefaultAddr        = "127.0.0.1:9000"
	DefaultUser        = "default"
	DefaultDialTimeout = 10 * time.Second
)

// DefaultConfig returns the configuration with every default, raw events on.
func DefaultConfig() Config {
	return Config{
		Addr:        DefaultAddr,
		Database:    ddl.DefaultDatabase,
		User:        DefaultUser,
		RawEvents:   true,
		DialTimeout: DefaultDialTimeout,
		TTLDays:     ddl.DefaultTTLDays,
	}
}

// withDefaults fills empty fields (not RawEvents: false is a valid choice).
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	if c.Database == "" {
		c.Database = d.Database
	}
	if c.User == "" {
		c.User = d.User
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.TTLDays == 0 {
		c.TTLDays = d.TTLDays
	}
	return c
}

// Validate checks the configuration after defaults are applied and reports
// every problem, joined (errors.Join); nil when there is none.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	host, port, err := net.SplitHostPort(c.Addr)
	switch {
	case err != nil || host == "" || port == "":
		errs = append(errs, fmt.Errorf("clickhouse addr %q: want host:port of the native protocol, e.g. %s", c.Addr, DefaultAddr))
	case port == "8123" || port == "8443":
		errs = append(errs, fmt.Errorf("clickhouse addr %q: %s is the HTTP port; Vigil speaks the native protocol (port 9000 by default)", c.Addr, port))
	}
	if err := ddl.ValidateDatabase(c.Database); err != nil {
		errs = append(errs, fmt.Errorf("clickhouse database: %w", err))
	}
	if c.Cluster != "" {
		if err := ddl.ValidateCluster(c.Cluster); err != nil {
			errs = append(errs, fmt.Errorf("clickhouse cluster: %w", err))
		}
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("clickhouse dial timeout %v is negative", c.DialTimeout))
	}
	return errors.Join(errs...)
}

// Errors of the Sink.
var (
	// ErrNotStarted is returned by calls that need the connection before Start succeeded.
	ErrNotStarted = errors.New("clickhouse sink not started")
	// ErrClosed is returned by calls after Shutdown.
	ErrClosed = errors.New("clickhouse sink shut down")
	// ErrBadInput marks a permanent error: a record, state or restored row
	// that cannot be written or read. Retrying does not help.
	ErrBadInput = errors.New("bad input")
)

// Sink writes to and restores from one ClickHouse database.
type Sink struct {
	cfg Config
	log zerolog.Logger

	// rawInserts bounds the raw-event INSERTs in flight (rawInsertsInFlight).
	rawInserts chan struct{}

	mu      sync.Mutex
	conn    driver.Conn
	version ddl.ServerVersion
	closed  bool
}

var _ interface {
	Start(context.Context) error
	Shutdown(context.Context) error
} = (*Sink)(nil)

// New validates cfg and returns a Sink; it does not connect (Start does).
func New(cfg Config, log zerolog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sink{cfg: cfg.withDefaults(), log: log.With().Str("component", "clickhouse").Logger(),
		rawInserts: make(chan struct{}, rawInsertsInFlight)}, nil
}

// Start connects, reads the server version and applies the migrations.
func (s *Sink) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.conn != nil {
		return nil
	}
	began := time.Now()
	var settings ch.Settings
	if s.cfg.Cluster != "" {
		// A write is acknowledged once it is on its shard: the checkpoint
		// row written after a window's rows, and the Kafka offset committed
		// after both, never get ahead of what the Distributed tables return.
		settings = ddl.ClusterSettings()
	}
	conn, err := ch.Open(&ch.Options{
		Settings: settings,
		Protocol: ch.Native,
		Addr:     []string{s.cfg.Addr},
		// Connect to "default": the database may not exist yet. Every
		// statement names its database.
		Auth:            ch.Auth{Database: "default", Username: s.cfg.User, Password: s.cfg.Password},
		DialTimeout:     s.cfg.DialTimeout,
		Compression:     &ch.Compression{Method: ch.CompressionLZ4},
		MaxOpenConns:    16,
		MaxIdleConns:    8,
		ConnMaxLifetime: time.Hour,
	})
	if err != nil {
		return fmt.Errorf("open clickhouse %s: %w", s.cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return s.describeConnectError(err)
	}
	v, err := ddl.QueryVersion(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return err
	}
	if err := ddl.Migrate(ctx, conn, s.cfg.Database, ddl.Options{TTLDays: s.cfg.TTLDays, Cluster: s.cfg.Cluster}, s.log); err != nil {
		_ = conn.Close()
		return err
	}
	s.conn, s.version = conn, v
	s.log.Info().Str("addr", s.cfg.Addr).Str("database", s.cfg.Database).Str("cluster", s.cfg.Cluster).Str("server", v.String()).
		Bool("modern", v.Modern()).Bool("raw_events", s.cfg.RawEvents).Dur("took", time.Since(began)).Msg("clickhouse sink started")
	return nil
}

func (s *Sink) describeConnectError(err error) error {
	var ex *ch.Exception
	switch {
	case errors.As(err, &ex) && (ex.Code == 516 || ex.Code == 192 || ex.Code == 193):
		return fmt.Errorf("clickhouse at %s refused user %q (check the user and password): %w", s.cfg.Addr, s.cfg.User, err)
	case errors.As(err, &ex):
		return fmt.Errorf("connect to clickhouse at %s: %w", s.cfg.Addr, err)
	}
	return fmt.Errorf("cannot reach ClickHouse at %s (is it running? start it with deployments/local/clickhouse.sh start): %w", s.cfg.Addr, err)
}

// Shutdown closes the connection pool. It is idempotent and safe without Start.
// In-flight calls fail; callers stop their partitions before shutting the sink down.
func (s *Sink) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	if err != nil {
		return fmt.Errorf("close clickhouse connection: %w", err)
	}
	s.log.Info().Msg("clickhouse sink stopped")
	return nil
}

// ServerVersion is the version of the server, known after Start.
func (s *Sink) ServerVersion() ddl.ServerVersion {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Conn is the connection pool, for ad-hoc queries: tests and the benchmarks
// read tables back and drop their databases with it; Vigil's stages use the
// stores. nil before Start and after Shutdown.
func (s *Sink) Conn() driver.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// Database is the database the sink writes to.
func (s *Sink) Database() string { return s.cfg.Database }

// Cluster is the cluster the sink's tables are on ("" for one server).
func (s *Sink) Cluster() string { return s.cfg.Cluster }

// subqueries ends a query whose IN or JOIN subqueries read Distributed
// tables: on a cluster they read each shard's local tables
// (ddl.ProductModeSetting; the tables are sharded by model and these
// queries match on model), elsewhere it is q.
func (s *Sink) subqueries(q string) string {
	if s.cfg.Cluster == "" {
		return q
	}
	return q + "\nSETTINGS " + ddl.ProductModeSetting
}

func (s *Sink) connection() (driver.Conn, ddl.ServerVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, ddl.ServerVersion{}, ErrClosed
	case s.conn == nil:
		return nil, ddl.ServerVersion{}, ErrNotStarted
	}
	return s.conn, s.version, nil
}

// Classify says how the processor and the label consumer handle err
// (pipeline.ErrorClassifier): retryable errors are retried after a
// back-off, ErrBadInput is the data's fault, and anything else (a missing
// table, a syntax error, the sink shut down) is the store's.
func (s *Sink) Classify(err error) pipeline.Failure {
	switch {
	case IsRetryable(err):
		return pipeline.FailureRetryable
	case errors.Is(err, ErrBadInput):
		return pipeline.FailureBadData
	}
	return pipeline.FailureBroken
}

// IsRetryable reports whether err is worth retrying after a back-off:
// network errors, timeouts and ClickHouse errors that pass (overload, too
// many parts, a replica or the network not ready). Bad input and unknown
// server errors (a syntax error, a missing table) are not.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, ErrBadInput) || errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) {
		return false
	}
	var ex *ch.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case 159, // TIMEOUT_EXCEEDED
			164, // READONLY
			202, // TOO_MANY_SIMULTANEOUS_QUERIES
			203, // NO_FREE_CONNECTION
			209, // SOCKET_TIMEOUT
			210, // NETWORK_ERROR
			241, // MEMORY_LIMIT_EXCEEDED
			242, // TABLE_IS_READ_ONLY
			252, // TOO_MANY_PARTS
			319, // UNKNOWN_STATUS_OF_INSERT
			425, // SYSTEM_ERROR
			999: // KEEPER_EXCEPTION
			return true
		}
		return false
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, ch.ErrAcquireConnTimeout), errors.Is(err, ch.ErrConnectionClosed):
		return true
	}
	return strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}
