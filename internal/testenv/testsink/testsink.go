// Package testsink starts a ClickHouse sink for a test, on the real
// ClickHouse that testenv finds, in a database of its own.
package testsink

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// Start starts a sink on the real ClickHouse in a fresh database named
// prefix_<random>, dropped when the test ends; it returns the sink and the
// database.
func Start(t testing.TB, prefix string) (*clickhouse.Sink, string) {
	t.Helper()
	db := prefix + "_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	return Open(t, db, nil), db
}

// Open starts a sink on the real ClickHouse in database db, dropped when the
// test ends; configure, when not nil, changes the sink's config first.
func Open(t testing.TB, db string, configure func(*clickhouse.Config)) *clickhouse.Sink {
	t.Helper()
	cfg := clickhouse.Config{Addr: testenv.ClickHouse(t), Database: db, User: "default"}
	if configure != nil {
		configure(&cfg)
	}
	ctx := context.Background()
	sink, err := clickhouse.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sink.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+db)
		_ = sink.Shutdown(ctx)
	})
	return sink
}

// OpenCluster starts a sink on server node (0-based) of the local ClickHouse
// cluster (testenv.ClickHouseCluster) in database db, in the cluster form;
// the database is dropped ON CLUSTER when the test ends. configure, when not
// nil, changes the sink's config first. Sinks of the same db on other
// servers share its tables.
func OpenCluster(t testing.TB, db string, node int, configure func(*clickhouse.Config)) *clickhouse.Sink {
	t.Helper()
	addrs, cluster := testenv.ClickHouseCluster(t)
	if node < 0 || node >= len(addrs) {
		t.Fatalf("cluster server %d: VIGIL_CLICKHOUSE_CLUSTER_ADDRS has %d", node, len(addrs))
	}
	cfg := clickhouse.Config{Addr: addrs[node], Database: db, User: "default", Cluster: cluster}
	if configure != nil {
		configure(&cfg)
	}
	ctx := context.Background()
	sink, err := clickhouse.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sink.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+db+" ON CLUSTER "+cluster)
		_ = sink.Shutdown(ctx)
	})
	return sink
}
