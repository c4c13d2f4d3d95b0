package main

import (
	"context"
	"testing"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// startTestSink starts a sink on the real ClickHouse in a fresh database
// named prefix_<random>, dropped when the test ends.
func startTestSink(t *testing.T, prefix string) (*clickhouse.Sink, string) {
	t.Helper()
	return testsink.Start(t, prefix)
}

// openTestDatabase opens a connection to the real ClickHouse at addr for a
// test whose binaries write to database db; the database is dropped and the
// connection closed when the test ends.
func openTestDatabase(t *testing.T, addr, db string) driver.Conn {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
	return conn
}
