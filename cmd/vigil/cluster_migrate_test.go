package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/vigil-ml/vigil/internal/testenv"
)

// TestMigrateCommandOnCluster runs `vigil migrate --clickhouse-cluster` on
// the local ClickHouse cluster twice, through a different server each time:
// the first run creates every table on every server, the second succeeds and
// changes nothing (the same tables with the same metadata times, the same
// recorded migrations).
func TestMigrateCommandOnCluster(t *testing.T) {
	addrs, cluster := testenv.ClickHouseCluster(t)
	if len(addrs) < 2 {
		t.Fatalf("VIGIL_CLICKHOUSE_CLUSTER_ADDRS has %d servers, want at least 2", len(addrs))
	}
	bin := testenv.BuildVigil(t)
	db := "vigil_migrate_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var conns []ch.Conn
	for _, addr := range addrs {
		conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conns = append(conns, conn)
	}
	t.Cleanup(func() {
		_ = conns[0].Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" ON CLUSTER "+cluster)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	migrate := func(addr string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, "migrate", "--clickhouse", addr, "--clickhouse-database", db)
		cmd.Env = append(os.Environ(), "VIGIL_CLICKHOUSE_CLUSTER="+cluster, "VIGIL_LOG_LEVEL=warn")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("vigil migrate --clickhouse %s (cluster %s): %v\n%s", addr, cluster, err, out)
		}
	}
	// state is what every server holds: its tables with engines and
	// metadata times, and the recorded migrations.
	state := func() string {
		t.Helper()
		var b strings.Builder
		for i, conn := range conns {
			rows, err := conn.Query(ctx, "SELECT name, engine, toString(metadata_modification_time) FROM system.tables WHERE database = ? ORDER BY name", db)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var name, engine, mtime string
				if err := rows.Scan(&name, &engine, &mtime); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "server %d: %s %s %s\n", i+1, name, engine, mtime)
			}
			rows.Close()
		}
		rows, err := conns[1].Query(ctx, fmt.Sprintf("SELECT version, name, toString(applied_at), count() FROM %s.vigil_migrations GROUP BY version, name, applied_at ORDER BY version", db))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				v          uint32
				name, at   string
				recordings uint64
			)
			if err := rows.Scan(&v, &name, &at, &recordings); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "migration %d %s at %s x%d\n", v, name, at, recordings)
		}
		return b.String()
	}

	migrate(addrs[0])
	first := state()
	for _, want := range []string{
		"server 1: vigil_events Distributed", "server 1: vigil_events_local ReplicatedReplacingMergeTree",
		"server 2: vigil_events Distributed", "server 2: vigil_events_local ReplicatedReplacingMergeTree",
		"migration 1 create vigil_events at",
	} {
		if !strings.Contains(first, want) {
			t.Fatalf("after the first vigil migrate, no %q in:\n%s", want, first)
		}
	}
	time.Sleep(1100 * time.Millisecond) // a re-created table would show a later metadata time
	migrate(addrs[1])
	if second := state(); second != first {
		t.Fatalf("the second vigil migrate changed the cluster:\n--- before\n%s--- after\n%s", first, second)
	}
}
