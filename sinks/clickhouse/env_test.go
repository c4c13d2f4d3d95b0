package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// clickhouseAddr returns VIGIL_CLICKHOUSE, skipping the test when it is unset
// outside CI and failing it in CI.
func clickhouseAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("VIGIL_CLICKHOUSE")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("VIGIL_CLICKHOUSE is not set, and CI=true requires the integration tests to run (.ci/run starts ClickHouse)")
		}
		t.Skip("VIGIL_CLICKHOUSE is not set; start ClickHouse with deployments/local/clickhouse.sh start and set VIGIL_CLICKHOUSE=127.0.0.1:9000 to run this test")
	}
	return addr
}

// startSink starts a Sink on a fresh database vigil_test_<random>, dropped
// when the test ends.
func startSink(t testing.TB, mutate func(*Config)) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = clickhouseAddr(t)
	cfg.Database = testDatabase(t)
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			t.Errorf("drop test database %s: %v", cfg.Database, err)
		}
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

func testDatabase(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "vigil_test_" + hex.EncodeToString(b[:])
}

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
