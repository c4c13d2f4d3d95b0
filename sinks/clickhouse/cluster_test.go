package clickhouse

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

// startClusterSinks starts one Sink per server of the local cluster
// (testenv.ClickHouseCluster), all on one fresh database in the cluster
// form, dropped ON CLUSTER when the test ends.
func startClusterSinks(t *testing.T) []*Sink {
	t.Helper()
	addrs, cluster := testenv.ClickHouseCluster(t)
	if len(addrs) < 2 {
		t.Fatalf("VIGIL_CLICKHOUSE_CLUSTER_ADDRS has %d servers, want at least 2", len(addrs))
	}
	db := testDatabase(t)
	var sinks []*Sink
	for _, addr := range addrs {
		cfg := DefaultConfig()
		cfg.Addr, cfg.Database, cfg.Cluster = addr, db, cluster
		s, err := New(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err = s.Start(ctx) // the first migrates, the others find it done
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		sinks = append(sinks, s)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sinks[0].Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+db+" ON CLUSTER "+cluster); err != nil {
			t.Errorf("drop test database %s: %v", db, err)
		}
		for _, s := range sinks {
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
	})
	return sinks
}

// TestIntegrationClusterCheckpointRestore runs the single-server checkpoint
// and label tests on a sink of the cluster: the same answers through the
// Distributed tables.
func TestIntegrationClusterCheckpointRestore(t *testing.T) {
	sinks := startClusterSinks(t)
	t.Run("checkpoint restore", func(t *testing.T) { testCheckpointRestore(t, sinks[0]) })
	t.Run("labels", func(t *testing.T) { testLabels(t, sinks[1]) })
}

// TestIntegrationClusterWriteRead writes the windows and checkpoints of many
// models and partitions through one server of the cluster and restores them
// through the other: every row is on the shard of its model (one shard per
// model, both shards used), and a checkpoint is readable from any server as
// soon as Checkpoint returns (insert_distributed_sync).
func TestIntegrationClusterWriteRead(t *testing.T) {
	sinks := startClusterSinks(t)
	writer, reader := sinks[0], sinks[1]
	ctx := testContext(t)

	const models, partitions = 12, 4
	want := map[pipeline.Source][]*stats.WindowState{}
	for p := 0; p < partitions; p++ {
		src := pipeline.Source{Group: "g", Topic: "events", Partition: p}
		var states []*stats.WindowState
		for m := p; m < models; m += partitions {
			model := fmt.Sprintf("model-%02d", m)
			for w := int64(0); w < 3; w++ {
				states = append(states, window(model, "v1", t0+w*minute, 100+w, false,
					map[string]*stats.FeatureState{"amount": numFeature(float64(m), float64(w))}, float64(m)))
			}
		}
		for round := int64(1); round <= 3; round++ {
			// Each round rewrites the windows (a later offset wins) and
			// moves the checkpoint; the reader sees it at once.
			for _, st := range states {
				st.LastOffset, st.Dirty = 100*round+int64(st.Key.WindowStart-t0)/minute, true
			}
			if err := writer.Windows().Checkpoint(ctx, src, nil, nil, states, 1000*round, t0+round, nil); err != nil {
				t.Fatal(err)
			}
			next, wm, ok, got, err := reader.Windows().Restore(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			if !ok || next != 1000*round || wm != t0+round {
				t.Fatalf("partition %d round %d: Restore = (%d, %d, %v), want (%d, %d, true)", p, round, next, wm, ok, 1000*round, t0+round)
			}
			assertStatesEqual(t, got, states)
		}
		want[src] = states
	}

	// Where the rows are: each model's on one shard, and both shards used.
	db := writer.Database()
	shardOf := map[string]int{}
	perShard := make([]uint64, len(sinks))
	for i, s := range sinks {
		for _, table := range []string{ddl.TableModelWindows, ddl.TableFeatureWindows} {
			rows, err := s.Conn().Query(ctx, fmt.Sprintf("SELECT model, count() FROM %s.%s%s FINAL GROUP BY model", db, table, ddl.LocalSuffix))
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var (
					m string
					n uint64
				)
				if err := rows.Scan(&m, &n); err != nil {
					t.Fatal(err)
				}
				if other, seen := shardOf[m]; seen && other != i {
					t.Errorf("rows of %s on shards %d and %d", m, other+1, i+1)
				}
				shardOf[m] = i
				perShard[i] += n
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
		}
	}
	if len(shardOf) != models {
		t.Errorf("%d models on the shards, want %d", len(shardOf), models)
	}
	// 12 models x 3 windows x (1 model row + 1 feature row), after FINAL.
	if perShard[0]+perShard[1] != models*3*2 || perShard[0] == 0 || perShard[1] == 0 {
		t.Errorf("window rows per shard after FINAL = %v, want %d in all, on both shards", perShard, models*3*2)
	}
	// The Distributed table sees the latest of every key once.
	var n, maxOffset uint64
	if err := reader.Conn().QueryRow(ctx, fmt.Sprintf("SELECT count(), toUInt64(max(last_offset)) FROM %s.%s FINAL", db, ddl.TableModelWindows)).Scan(&n, &maxOffset); err != nil {
		t.Fatal(err)
	}
	if n != models*3 || maxOffset != 302 {
		t.Errorf("model windows through the Distributed table after FINAL: %d rows, max last_offset %d; want %d, 302", n, maxOffset, models*3)
	}
	var checkpoints []string
	rows, err := reader.Conn().Query(ctx, fmt.Sprintf("SELECT kafka_partition, argMax(next_offset, next_offset) FROM %s.%s GROUP BY kafka_partition ORDER BY kafka_partition", db, ddl.TableCheckpoints))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			p    uint32
			next int64
		)
		if err := rows.Scan(&p, &next); err != nil {
			t.Fatal(err)
		}
		checkpoints = append(checkpoints, fmt.Sprintf("%d:%d", p, next))
	}
	rows.Close()
	sort.Strings(checkpoints)
	if got := strings.Join(checkpoints, " "); got != "0:3000 1:3000 2:3000 3:3000" {
		t.Errorf("checkpoints = %s, want every partition at 3000", got)
	}
}
