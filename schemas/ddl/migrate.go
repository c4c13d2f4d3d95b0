package ddl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
)

// QueryVersion asks the server for its version.
func QueryVersion(ctx context.Context, conn driver.Conn) (ServerVersion, error) {
	var s string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&s); err != nil {
		return ServerVersion{}, fmt.Errorf("query clickhouse version: %w", err)
	}
	return ParseVersion(s)
}

// Migrate creates database (default opts.Database, then "vigil") if needed
// and the tables that vigil_migrations does not record as applied yet, in the
// form the server's version calls for. Each applied migration is recorded
// once; running Migrate again is a no-op.
//
// Two processes migrating at the same time both succeed (every statement is
// CREATE ... IF NOT EXISTS); the migrations table is a ReplacingMergeTree, so
// a migration recorded twice collapses to one row.
//
// With opts.Cluster, conn may be any server of the cluster: the database and
// every table are created ON CLUSTER (each statement returns once every
// server ran it, or fails naming the server that did not), and
// vigil_migrations is itself a Distributed table over replicated local ones,
// written with insert_distributed_sync so that the record is on its shard
// when Migrate returns.
func Migrate(ctx context.Context, conn driver.Conn, database string, opts Options, log zerolog.Logger) error {
	if database != "" {
		opts.Database = database
	}
	opts = opts.withDefaults()
	if err := ValidateDatabase(opts.Database); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	v, err := QueryVersion(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", opts.Database, err)
	}
	form := "plain"
	if v.Modern() {
		form = "modern"
	}
	createDB := "CREATE DATABASE IF NOT EXISTS " + opts.Database
	// On a cluster, the statements that run on every start are skipped
	// when this server has the migrations tables: an ON CLUSTER statement
	// waits for every server of the cluster, so a restart would wait for
	// (and, after distributed_ddl_task_timeout, fail on) one that is down.
	bookkeeping := true
	if opts.Cluster != "" {
		if err := checkCluster(ctx, conn, opts.Cluster); err != nil {
			return fmt.Errorf("migrate %s: %w", opts.Database, err)
		}
		form += " cluster " + opts.Cluster
		createDB += " ON CLUSTER " + opts.Cluster
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(ClusterSettings()))
		var have uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name IN (?, ?)",
			opts.Database, TableMigrations, TableMigrations+LocalSuffix).Scan(&have); err != nil {
			return fmt.Errorf("migrate %s: %w", opts.Database, err)
		}
		bookkeeping = have < 2
		// Before the migrations: they are recorded, so a new shard would
		// not get its tables from them.
		if err := completeShards(ctx, conn, opts.Database, opts.Cluster, log); err != nil {
			return fmt.Errorf("migrate %s: %w", opts.Database, err)
		}
	}
	stmts := Migrations(v, opts)
	if bookkeeping {
		if err := conn.Exec(ctx, createDB); err != nil {
			return fmt.Errorf("migrate: create database %s: %w", opts.Database, err)
		}
		if err := apply(ctx, conn, stmts[0]); err != nil {
			return fmt.Errorf("migrate: create %s.%s: %w", opts.Database, stmts[0].Table, err)
		}
	}
	applied, err := appliedVersions(ctx, conn, opts.Database)
	if err != nil {
		return err
	}
	n := 0
	for _, st := range stmts[1:] {
		if applied[st.Version] {
			continue
		}
		start := time.Now()
		done, err := inEffect(ctx, conn, st)
		if err != nil {
			return fmt.Errorf("migrate %s: check migration %d (%s): %w", opts.Database, st.Version, st.Name, err)
		}
		if done {
			// In effect already; what follows it (in the cluster form, the
			// Distributed table over the changed local table) is idempotent.
			st.SQL = ""
		}
		if st.SQL == "" && len(st.Then) == 0 {
			// Not available on this server, or in effect already: recorded,
			// so that it is not tried again (an upgraded server keeps the old form).
		} else if err := apply(ctx, conn, st); err != nil {
			// A change without IF NOT EXISTS that another process applied
			// meanwhile (two members starting at once) fails here, and is in
			// effect now: go on with what follows it.
			if done, derr := inEffect(ctx, conn, st); derr != nil || !done || st.SQL == "" {
				return fmt.Errorf("migrate %s: apply migration %d (%s) on clickhouse %s: %w", opts.Database, st.Version, st.Name, v, err)
			}
			log.Info().Err(err).Uint32("migration", st.Version).Msg("migration applied by another process meanwhile")
			st.SQL = ""
			if err := apply(ctx, conn, st); err != nil {
				return fmt.Errorf("migrate %s: apply migration %d (%s) on clickhouse %s: %w", opts.Database, st.Version, st.Name, v, err)
			}
		}
		if err := record(ctx, conn, opts.Database, st); err != nil {
			return err
		}
		n++
		log.Info().Str("database", opts.Database).Uint32("migration", st.Version).Str("name", st.Name).
			Str("form", form).Dur("took", time.Since(start)).Msg("applied migration")
	}
	log.Debug().Str("database", opts.Database).Str("server", v.String()).Str("form", form).
		Int("applied", n).Int("already", len(applied)).Msg("migrations up to date")
	return nil
}

// completeShards gives a shard that lacks tables of db (a shard added to
// the cluster after the migrations ran, see docs/SCALING.md) the tables as
// they are on the other shards: each CREATE TABLE of
// system.tables.create_table_query runs again ON CLUSTER with IF NOT
// EXISTS, the local tables first, so that servers that have them keep
// them. It reads one replica of each shard (the cluster table function), so
// conn may be a server of any shard, the new one too; when a shard does not
// answer, the check is skipped with a warning.
func completeShards(ctx context.Context, conn driver.Conn, db, cluster string, log zerolog.Logger) error {
	var here, everywhere, shards uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ?", db).Scan(&here); err != nil {
		return fmt.Errorf("count tables: %w", err)
	}
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM cluster('%s', system, tables) WHERE database = ?", cluster), db).Scan(&everywhere); err != nil {
		// A shard that does not answer: it will not take writes either
		// (they fail and are retried), but a restart should not wait on it.
		log.Warn().Err(err).Str("database", db).Str("cluster", cluster).Msg("cannot count the tables of every shard; not checking for a shard without them")
		return nil
	}
	if err := conn.QueryRow(ctx, "SELECT uniqExact(shard_num) FROM system.clusters WHERE cluster = ?", cluster).Scan(&shards); err != nil {
		return fmt.Errorf("count shards of %s: %w", cluster, err)
	}
	if everywhere == here*shards {
		return nil // every shard has what this server has (nothing, on a new cluster)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT name, any(create_table_query) FROM cluster('%s', system, tables)
WHERE database = ? GROUP BY name ORDER BY endsWith(name, ?) DESC, name`, cluster), db, LocalSuffix)
	if err != nil {
		return fmt.Errorf("read table definitions on the shards of %s: %w", cluster, err)
	}
	var creates []string
	for rows.Next() {
		var name, create string
		if err := rows.Scan(&name, &create); err != nil {
			rows.Close()
			return fmt.Errorf("read table definitions: %w", err)
		}
		head := "CREATE TABLE " + db + "." + name
		if !strings.HasPrefix(create, head) || len(create) == len(head) || !strings.ContainsRune(" \n(", rune(create[len(head)])) {
			rows.Close()
			return fmt.Errorf("table %s.%s: definition %.60q does not start with %q", db, name, create, head)
		}
		creates = append(creates, "CREATE TABLE IF NOT EXISTS "+db+"."+name+" ON CLUSTER "+cluster+create[len(head):])
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read table definitions: %w", err)
	}
	log.Info().Str("database", db).Str("cluster", cluster).Uint64("shards", shards).Uint64("tables_here", here).
		Uint64("tables_on_shards", everywhere).Int("tables", len(creates)).Msg("a shard lacks tables; creating them there as they are on the others")
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db+" ON CLUSTER "+cluster); err != nil {
		return fmt.Errorf("create database %s on the shards of %s: %w", db, cluster, err)
	}
	for _, q := range creates {
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("create on the shards of %s: %w", cluster, err)
		}
	}
	return nil
}

// ClusterSettings are the connection settings of Vigil's writers and
// readers on a cluster (docs/SCALING.md): insert_distributed_sync = 1, so
// that an INSERT into a Distributed table returns once every shard has its
// rows (not when they are queued on the server that took the INSERT), and a
// checkpoint committed after it, or any read after it, finds them.
//
// Readers also need distributed_product_mode = 'local' (ProductModeSetting),
// which clickhouse-go cannot send to servers before 19.x (it sends integer
// settings only): the sink adds it to its queries, and the servers' profile
// of the users that query must set it for the documented SQL.
func ClusterSettings() clickhouse.Settings {
	return clickhouse.Settings{"insert_distributed_sync": 1}
}

// ProductModeSetting makes IN and JOIN subqueries on Distributed tables read
// each shard's local table, which holds every row of the shard's models (the
// tables are sharded by model, and Vigil's subqueries join on model): the
// SETTINGS clause the sink ends such queries with on a cluster.
const ProductModeSetting = "distributed_product_mode = 'local'"

// checkCluster fails unless the server knows cluster.
func checkCluster(ctx context.Context, conn driver.Conn, cluster string) error {
	if err := ValidateCluster(cluster); err != nil {
		return err
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.clusters WHERE cluster = ?", cluster).Scan(&n); err != nil {
		return fmt.Errorf("look up cluster %s: %w", cluster, err)
	}
	if n == 0 {
		return fmt.Errorf("the server does not know cluster %q (system.clusters; configure it in remote_servers, see docs/SCALING.md)", cluster)
	}
	return nil
}

// apply runs st.SQL (unless empty) and then st.Then.
func apply(ctx context.Context, conn driver.Conn, st Statement) error {
	for _, sql := range append([]string{st.SQL}, st.Then...) {
		if sql == "" {
			continue
		}
		if err := conn.Exec(ctx, sql); err != nil {
			return err
		}
	}
	return nil
}

// inEffect runs st.Done, if any.
func inEffect(ctx context.Context, conn driver.Conn, st Statement) (bool, error) {
	if st.Done == "" {
		return false, nil
	}
	var n uint64
	if err := conn.QueryRow(ctx, st.Done).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

func appliedVersions(ctx context.Context, conn driver.Conn, db string) (map[uint32]bool, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT version FROM %s.%s", db, TableMigrations))
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s.%s: %w", db, TableMigrations, err)
	}
	defer rows.Close()
	applied := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("migrate: read %s.%s: %w", db, TableMigrations, err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: read %s.%s: %w", db, TableMigrations, err)
	}
	return applied, nil
}

func record(ctx context.Context, conn driver.Conn, db string, st Statement) error {
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (version, name, applied_at)", db, TableMigrations))
	if err != nil {
		return fmt.Errorf("migrate: record migration %d: %w", st.Version, err)
	}
	if err := b.Append(st.Version, st.Name, time.Now().UTC()); err != nil {
		_ = b.Abort()
		return fmt.Errorf("migrate: record migration %d: %w", st.Version, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("migrate: record migration %d: %w", st.Version, err)
	}
	return nil
}
