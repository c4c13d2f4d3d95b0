package ddl

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
)

// sampleRows inserts one row into every table, in SQL that both forms accept
// (times without fractions, so that DateTime takes them too). INSERT ...
// SELECT, not VALUES: clickhouse-go's Exec of INSERT ... VALUES hangs on 18.16.
// Times are far in the future so that the TTL of the modern form keeps them.
var sampleRows = []string{
	`INSERT INTO vigil.vigil_events (event_id, model, model_version, event_time, num_feature_names, num_feature_values,
  str_feature_names, str_feature_values, bool_feature_names, bool_feature_values, null_features,
  pred_score, pred_label, pred_value, proba_classes, proba_values, latency_ms, segment_keys, segment_values,
  topic, kafka_partition, kafka_offset, ingested_at)
SELECT 'e1', 'fraud', 'v1', '2099-03-14 12:00:01', ['amount'], [12.5], ['country'], ['de'], ['is_new'], [1], ['age'],
  0.9, 'fraud', NULL, ['fraud', 'ok'], [0.9, 0.1], 3.5, ['region'], ['eu'], 'events', 0, 7, '2099-03-14 12:00:02'`,
	`INSERT INTO vigil.vigil_model_windows (model, model_version, window_start, topic, kafka_partition, window_end,
  events, late_events, latency_count, latency_p50, latency_p95, latency_p99, latency_sketch, feature_states,
  is_final, last_offset, updated_at)
SELECT 'fraud', 'v1', '2099-03-14 12:00:00', 'events', 0, '2099-03-14 12:01:00', 3, 1, 3, 10, 30, 30, '', '', 1, 10, '2099-03-14 12:02:00'`,
	`INSERT INTO vigil.vigil_feature_windows (model, model_version, feature, window_start, topic, kafka_partition, window_end,
  kind, count, missing, type_mismatch, nan_count, inf_count, sum, m2, mean, variance, min, max,
  categories, category_counts, other_count, is_final, last_offset, updated_at)
SELECT 'fraud', 'v1', 'amount', '2099-03-14 12:00:00', 'events', 0, '2099-03-14 12:01:00',
  'number', 3, 0, 0, 0, 0, 6, 2, 2, 1, 1, 3, [], [], 0, 1, 10, '2099-03-14 12:02:00'`,
	`INSERT INTO vigil.vigil_late_events (topic, kafka_partition, kafka_offset, event_id, model, model_version,
  event_time, window_start, watermark, received_at)
SELECT 'events', 0, 12, 'e9', 'fraud', 'v1', '2099-03-14 12:00:10', '2099-03-14 12:00:00', '2099-03-14 12:01:30', '2099-03-14 12:01:31'`,
	`INSERT INTO vigil.vigil_checkpoints (consumer_group, topic, kafka_partition, next_offset, watermark_ms, written_at, producers)
SELECT 'g', 'events', 0, 13, 4077172890000, '2099-03-14 12:02:00', ''`,
	`INSERT INTO vigil.vigil_references (model, model_version, reference_id, created_at, source, rows, features, profile)
SELECT 'fraud', 'v1', 4077172800000000, '2099-03-14 12:00:00', 'reference.csv', 1000, ['amount', 'country'], ''`,
	`INSERT INTO vigil.vigil_drift (model, model_version, window_start, window_end, feature, kind, reference_id, method,
  score, threshold, drifted, n_ref, n_cur, approx, psi, kl, js, hellinger, wasserstein, wasserstein_norm,
  ks_stat, ks_pvalue, chi2_stat, chi2_pvalue, missing_rate, out_of_range_rate, new_category_rate,
  type_mismatch_rate, is_constant, dataset_share, dataset_share_bh, dataset_drifted, new_features, absent_features, computed_at)
SELECT 'fraud', 'v1', '2099-03-14 12:00:00', '2099-03-14 12:01:00', 'amount', 'number', 4077172800000000, 'wasserstein',
  0.4, 0.1, 1, 1000, 300, 0, 0.3, 0.2, 0.25, 0.2, 1.5, 0.4, 0.2, 0.001, nan, nan, 0, 0.01, nan, 0, 0, 0.5, 0.5, 1, ['tenure'], [], '2099-03-14 12:02:00'`,
	`INSERT INTO vigil.vigil_labels (model, event_id, label_time, has_class, label_class, has_value, label_value,
  topic, kafka_partition, kafka_offset, kafka_row, received_at)
SELECT 'fraud', 'e1', '2099-03-14 15:00:00', 1, '1', 0, 0, 'events.labels', 0, 3, 0, '2099-03-14 15:00:02'`,
	`INSERT INTO vigil.vigil_performance (model, model_version, segment, window_start, window_end, task, threshold,
  predictions, labeled, label_coverage, label_delay_p50, label_delay_p95, accuracy, precision, recall, f1,
  roc_auc, pr_auc, auc_error_bound, log_loss, brier, tp, fp, tn, fn, predicted_positive_rate, label_positive_rate,
  macro_precision, macro_recall, macro_f1, micro_f1, weighted_precision, weighted_recall, weighted_f1,
  classes, class_precision, class_recall, class_f1, class_support, confusion,
  mae, rmse, mape, mape_nonzero, zero_labels, r2, mean_error, state, computed_at, version)
SELECT 'fraud', 'v1', '', '2099-03-14 12:00:00', '2099-03-14 12:01:00', 'binary', 0.5,
  4, 3, 0.75, 10800, 10800, 0.6667, 1, 0.5, 0.6667, 0.5, 0.5833, 0, 0.6, 0.2, 1, 0, 1, 1, 0.3333, 0.6667,
  nan, nan, nan, nan, nan, nan, nan, [], [], [], [], [], [[1, 0], [1, 1]],
  nan, nan, nan, nan, 0, nan, nan, '', '2099-03-14 15:01:00', 1`,
	`INSERT INTO vigil.vigil_alerts (rule, fingerprint, model, metric, feature, segment, status, consecutive,
  last_window, previous, starts_at, value, threshold, updated_at, version)
SELECT 'AmountDrift', 'a1b2', 'fraud', 'psi', 'amount', '', 'firing', 3, '2099-03-14 12:00:00', 0.3,
  '2099-03-14 11:58:00', 0.31, 0.2, '2099-03-14 12:01:05', 1`,
	`INSERT INTO vigil.vigil_notifications (id, receiver, status, rules, models, fingerprints, alert_ids, alerts, created_at,
  state, error, updated_at, version)
SELECT 'n1', 'oncall', 'firing', ['AmountDrift'], ['fraud'], ['a1b2'], ['c3d4'], '[]', '2099-03-14 12:01:05',
  'delivered', '', '2099-03-14 12:01:06', 2`,
	`INSERT INTO vigil.vigil_leases (scope, epoch, member, generation, taken_at)
SELECT 'alerts/g', 1, 'host-1-ab12', 3, '2099-03-14 12:00:00'`,
	`INSERT INTO vigil.vigil_multivariate_drift (model, model_version, segment, window_start, window_end, feature, method,
  reference_id, score, sampling_error, lower_threshold, upper_threshold, drifted, n, events, p50, p95, components, computed_at)
SELECT 'fraud', 'v1', '', '2099-03-14 12:00:00', '2099-03-14 12:01:00', '__multivariate', 'pca_reconstruction_error',
  4077172800000000, 1.84, 0.03, 1.21, 1.36, 1, 500, 500, 1.6, 3.9, 2, '2099-03-14 12:02:00'`,
}

// sampleCheck counts the rows of every table after FINAL: "1\t1\t...".
const sampleCheck = `SELECT
  (SELECT count() FROM vigil.vigil_events FINAL),
  (SELECT count() FROM vigil.vigil_model_windows FINAL),
  (SELECT count() FROM vigil.vigil_feature_windows FINAL),
  (SELECT count() FROM vigil.vigil_late_events FINAL),
  (SELECT count() FROM vigil.vigil_checkpoints FINAL),
  (SELECT count() FROM vigil.vigil_references FINAL),
  (SELECT count() FROM vigil.vigil_drift FINAL),
  (SELECT count() FROM vigil.vigil_labels FINAL),
  (SELECT count() FROM vigil.vigil_performance FINAL),
  (SELECT count() FROM vigil.vigil_alerts FINAL),
  (SELECT count() FROM vigil.vigil_notifications FINAL),
  (SELECT count() FROM vigil.vigil_leases FINAL),
  (SELECT count() FROM vigil.vigil_multivariate_drift FINAL)`

// docQueries returns the example queries of docs/TABLES.md.
func docQueries(t *testing.T) []string {
	t.Helper()
	out := sqlBlocks(t, "../../docs/TABLES.md")
	if len(out) == 0 {
		t.Fatal("docs/TABLES.md has no sql blocks")
	}
	return out
}

// otherDocQueries returns the sql blocks of README.md and of every other page
// of docs/: they must run as written on both engines (the sample rows do not
// match all of their filters, so only TABLES.md's are checked on row counts).
func otherDocQueries(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range append([]string{"../../README.md"}, pages...) {
		if filepath.Base(p) != "TABLES.md" {
			out = append(out, sqlBlocks(t, p)...)
		}
	}
	if len(out) < 3 {
		t.Fatalf("README.md and docs/ have %d sql blocks besides TABLES.md; the README alone shows 3", len(out))
	}
	return out
}

// sqlBlocks returns the ```sql blocks of a markdown file.
func sqlBlocks(t *testing.T, path string) []string {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		out = append(out, strings.TrimSpace(m[1]))
	}
	return out
}

func inDatabase(sql, db string) string { return strings.ReplaceAll(sql, "vigil.vigil_", db+".vigil_") }

// requireService skips the test when what is not available, or fails it when
// CI=true.
func requireService(t *testing.T, available bool, what, howTo string) {
	t.Helper()
	if available {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not available, and CI=true requires this test to run (%s)", what, howTo)
	}
	t.Skipf("%s is not available; %s to run this test", what, howTo)
}

func TestMigrateIntegration(t *testing.T) {
	addr := os.Getenv("VIGIL_CLICKHOUSE")
	requireService(t, addr != "", "ClickHouse (VIGIL_CLICKHOUSE)",
		"start it with deployments/local/clickhouse.sh start and set VIGIL_CLICKHOUSE=127.0.0.1:9000")
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.Native, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	db := randomDatabase(t)
	defer func() {
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop %s: %v", db, err)
		}
	}()
	log := zerolog.New(zerolog.NewTestWriter(t))
	v, err := QueryVersion(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ClickHouse %s: %s form", v, map[bool]string{false: "plain", true: "modern"}[v.Modern()])

	for run := 1; run <= 2; run++ {
		if err := Migrate(ctx, conn, db, Options{}, log); err != nil {
			t.Fatalf("Migrate run %d: %v", run, err)
		}
		assertMigrated(t, ctx, conn, db, 1)
	}
	// A lost migrations table is rebuilt without touching the tables.
	if err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE %s.%s", db, TableMigrations)); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, conn, db, Options{}, log); err != nil {
		t.Fatal(err)
	}
	assertMigrated(t, ctx, conn, db, 1)
	checkSampleAndDocs(t, ctx, conn, db, v)
}

// checkSampleAndDocs inserts a row into every table in the SQL of the
// examples, counts them after FINAL and runs the documented queries.
func checkSampleAndDocs(t *testing.T, ctx context.Context, conn driver.Conn, db string, v ServerVersion) {
	t.Helper()
	for _, q := range sampleRows {
		if err := conn.Exec(ctx, inDatabase(q, db)); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	var counts [13]uint64
	dst := make([]any, len(counts))
	for i := range counts {
		dst[i] = &counts[i]
	}
	if err := conn.QueryRow(ctx, inDatabase(sampleCheck, db)).Scan(dst...); err != nil {
		t.Fatal(err)
	}
	if counts != [13]uint64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1} {
		t.Fatalf("rows per table after FINAL = %v, want one each", counts)
	}
	for _, q := range docQueries(t) {
		rows, err := conn.Query(ctx, inDatabase(q, db))
		if err != nil {
			t.Fatalf("documented query fails on ClickHouse %s: %v\n%s", v, err, q)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil || n != 1 {
			t.Fatalf("documented query on the sample rows: %d rows, %v\n%s", n, err, q)
		}
		rows.Close()
	}
	for _, q := range otherDocQueries(t) {
		rows, err := conn.Query(ctx, inDatabase(q, db))
		if err != nil {
			t.Fatalf("documented query fails on ClickHouse %s: %v\n%s", v, err, q)
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("documented query fails on ClickHouse %s: %v\n%s", v, err, q)
		}
		rows.Close()
	}
}

// assertMigrated checks that every migration is recorded once and that db
// holds perTable tables per table (2 in the cluster form: local and
// Distributed) on the server of conn.
func assertMigrated(t *testing.T, ctx context.Context, conn driver.Conn, db string, perTable int) {
	t.Helper()
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT version, name, count() FROM %s.%s GROUP BY version, name ORDER BY version", db, TableMigrations))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var (
			v    uint32
			name string
			n    uint64
		)
		if err := rows.Scan(&v, &name, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s x%d", v, name, n))
	}
	var want []string
	for _, st := range Migrations(ServerVersion{}, Options{})[1:] {
		want = append(want, fmt.Sprintf("%d %s x1", st.Version, st.Name))
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("vigil_migrations = %q, want %q", got, want)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ?", db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	created := len(tables) // and the alterations that create a table
	for _, a := range alterations {
		if strings.HasPrefix(a.name, "create ") {
			created++
		}
	}
	if n != uint64(perTable*created) {
		t.Fatalf("%d tables in %s, want %d", n, db, perTable*created)
	}
}

// TestMigrateClusterIntegration migrates a database in the cluster form on
// the local cluster of deployments/local/clickhouse-cluster.sh (twice, and
// once more after its migrations table was lost), checks every server's
// tables, then writes a row to every table through the Distributed tables
// and runs the documented queries as they are written, with the settings of
// ClusterSettings.
func TestMigrateClusterIntegration(t *testing.T) {
	addrs := os.Getenv("VIGIL_CLICKHOUSE_CLUSTER_ADDRS")
	requireService(t, addrs != "", "the local ClickHouse cluster (VIGIL_CLICKHOUSE_CLUSTER_ADDRS)",
		"start it with deployments/local/clickhouse-cluster.sh start and eval \"$(deployments/local/clickhouse-cluster.sh env)\"")
	cluster := os.Getenv("VIGIL_CLICKHOUSE_CLUSTER_NAME")
	if cluster == "" {
		cluster = "vigil_local"
	}
	var conns []driver.Conn
	for _, addr := range strings.Split(addrs, ",") {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.Native, DialTimeout: 10 * time.Second,
			Settings: ClusterSettings()})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	if len(conns) < 2 {
		t.Fatalf("VIGIL_CLICKHOUSE_CLUSTER_ADDRS=%s: want the addresses of at least 2 servers", addrs)
	}
	conn := conns[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := randomDatabase(t)
	defer func() {
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" ON CLUSTER "+cluster); err != nil {
			t.Errorf("drop %s: %v", db, err)
		}
	}()
	log := zerolog.New(zerolog.NewTestWriter(t))
	v, err := QueryVersion(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Cluster: cluster}
	// Migrate through each server in turn: the second run, on another
	// server, finds everything applied.
	for run := range 2 {
		if err := Migrate(ctx, conns[run%len(conns)], db, opts, log); err != nil {
			t.Fatalf("Migrate run %d: %v", run+1, err)
		}
		for _, c := range conns {
			assertMigrated(t, ctx, c, db, 2)
		}
	}
	var engines []string
	rows, err := conns[1].Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ? ORDER BY name", db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		engines = append(engines, name+" "+engine)
		if local := strings.HasSuffix(name, LocalSuffix); local != strings.HasPrefix(engine, "Replicated") || !local && engine != "Distributed" {
			t.Errorf("%s.%s has engine %s, want Replicated* for a local table, Distributed otherwise", db, name, engine)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	t.Logf("ClickHouse %s, cluster %s: %d tables on each server", v, cluster, len(engines))

	// A lost migrations table is rebuilt without touching the tables.
	for _, table := range []string{TableMigrations, TableMigrations + LocalSuffix} {
		if err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE %s.%s ON CLUSTER %s", db, table, cluster)); err != nil {
			t.Fatal(err)
		}
	}
	if err := Migrate(ctx, conns[1], db, opts, log); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		assertMigrated(t, ctx, c, db, 2)
	}
	checkSampleAndDocs(t, ctx, conn, db, v)

	// The rows were written through the Distributed tables into the local
	// table of their model's shard: one server holds all of model 'fraud'.
	var onShards []uint64
	for _, c := range conns {
		var n uint64
		if err := c.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s%s", db, TableDrift, LocalSuffix)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		onShards = append(onShards, n)
	}
	var total, holding uint64
	for _, n := range onShards {
		total += n
		if n > 0 {
			holding++
		}
	}
	if total != 1 || holding != 1 {
		t.Fatalf("rows of vigil_drift per shard = %v, want the one row on one shard", onShards)
	}
	// A shard without the tables (as a shard added to the cluster would
	// be: here the second server's database dropped on it alone) gets
	// them, as they are on the first server, when Migrate runs again; the
	// first server's rows stay.
	definitions := func(c driver.Conn) []string {
		var defs []string
		if err := c.QueryRow(ctx, "SELECT groupArray(create_table_query) FROM (SELECT create_table_query FROM system.tables WHERE database = ? ORDER BY name)", db).Scan(&defs); err != nil {
			t.Fatal(err)
		}
		return defs
	}
	before := definitions(conns[1])
	if err := conns[1].Exec(ctx, "DROP DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, conn, db, opts, log); err != nil {
		t.Fatalf("Migrate with a shard lacking the tables: %v", err)
	}
	for _, c := range conns {
		assertMigrated(t, ctx, c, db, 2)
	}
	after := definitions(conns[1])
	if len(after) != len(before) {
		t.Errorf("%d tables re-created on the second server, want %d", len(after), len(before))
	}
	for i := range min(len(after), len(before)) {
		if after[i] != before[i] {
			t.Errorf("table re-created on the second server as\n%s\nwant as before:\n%s", after[i], before[i])
		}
	}
	// The same through the server that lacks them.
	if err := conns[1].Exec(ctx, "DROP DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, conns[1], db, opts, log); err != nil {
		t.Fatalf("Migrate through the server lacking the tables: %v", err)
	}
	if again := definitions(conns[1]); strings.Join(again, "\n") != strings.Join(before, "\n") {
		t.Errorf("tables created through the server that lacked them differ from before:\n%s", strings.Join(again, "\n"))
	}
	var kept uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s%s", db, TableDrift, LocalSuffix)).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != onShards[0] {
		t.Errorf("first server's vigil_drift rows = %d after the second got its tables back, want %d", kept, onShards[0])
	}
}

// TestMigrateClusterConcurrent migrates one database from three processes
// at once (members of a group starting together), through both servers of
// the local cluster: every one succeeds, though 18.16's ADD COLUMN has no IF
// NOT EXISTS and all but one find the column added under them.
func TestMigrateClusterConcurrent(t *testing.T) {
	addrs := os.Getenv("VIGIL_CLICKHOUSE_CLUSTER_ADDRS")
	requireService(t, addrs != "", "the local ClickHouse cluster (VIGIL_CLICKHOUSE_CLUSTER_ADDRS)",
		"start it with deployments/local/clickhouse-cluster.sh start and eval \"$(deployments/local/clickhouse-cluster.sh env)\"")
	cluster := os.Getenv("VIGIL_CLICKHOUSE_CLUSTER_NAME")
	if cluster == "" {
		cluster = "vigil_local"
	}
	servers := strings.Split(addrs, ",")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := randomDatabase(t)
	const members = 3
	var conns []driver.Conn
	for i := range members {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{servers[i%len(servers)]}, Protocol: clickhouse.Native, DialTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	defer func() {
		if err := conns[0].Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" ON CLUSTER "+cluster); err != nil {
			t.Errorf("drop %s: %v", db, err)
		}
	}()
	errs := make(chan error, members)
	for i := range members {
		go func() {
			errs <- Migrate(ctx, conns[i], db, Options{Cluster: cluster}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
		}()
	}
	for i := range members {
		if err := <-errs; err != nil {
			t.Errorf("member %d of %d migrating at once: %v", i+1, members, err)
		}
	}
	var recorded uint64
	if err := conns[1].QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s FINAL", db, TableMigrations)).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if want := len(Migrations(ServerVersion{}, Options{})) - 1; recorded != uint64(want) {
		t.Errorf("%d migrations recorded after FINAL, want %d", recorded, want)
	}
	for _, c := range conns {
		var cols uint64
		if err := c.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND name = 'producers'", db).Scan(&cols); err != nil {
			t.Fatal(err)
		}
		if cols != 2 {
			t.Errorf("vigil_checkpoints and its local table have the column producers %d times on a server, want 2", cols)
		}
	}
}

func randomDatabase(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "vigil_test_" + hex.EncodeToString(b[:])
}

// TestModernDDLOnChDB runs the MODERN DDL, a sample row per table, SELECT
// ... FINAL and the documented queries through chDB (ClickHouse 26.x in
// process) with deployments/local/chdb_exec.py.
func TestModernDDLOnChDB(t *testing.T) {
	script := "../../deployments/local/chdb_exec.py"
	python := os.Getenv("VIGIL_PYTHON")
	if python == "" {
		python = "python3"
	}
	_, statErr := os.Stat(script)
	requireService(t, statErr == nil, script, "it comes with the repository")
	requireService(t, exec.Command(python, "-c", "import chdb").Run() == nil, "chDB ("+python+" -c 'import chdb')",
		"install it with deployments/local/chdb.sh")

	var in strings.Builder
	add := func(sql string) { in.WriteString(sql + "\n;;\n") }
	add("CREATE DATABASE IF NOT EXISTS vigil")
	for _, st := range Migrations(ServerVersion{Major: 26, Minor: 9}, Options{}) {
		add(st.SQL)
	}
	for _, q := range sampleRows {
		add(q)
	}
	// Sub-second times land in DateTime64(3).
	add(`INSERT INTO vigil.vigil_late_events (topic, kafka_partition, kafka_offset, event_id, model, model_version,
  event_time, window_start, watermark, received_at)
SELECT 'events', 0, 12, 'e9', 'fraud', 'v1', '2099-03-14 12:00:10.250', '2099-03-14 12:00:00', '2099-03-14 12:01:30', '2099-03-14 12:01:31'`)
	add(sampleCheck)
	add("SELECT toString(event_time) FROM vigil.vigil_late_events FINAL")
	add("SELECT name FROM system.tables WHERE database = 'vigil' AND engine_full LIKE '%TTL%' ORDER BY name")
	add("SELECT table, name, type FROM system.data_skipping_indices WHERE database = 'vigil'")
	for _, q := range append(docQueries(t), otherDocQueries(t)...) {
		add(q)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, script)
	cmd.Stdin = strings.NewReader(in.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chdb_exec.py: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	want := []string{
		"1\t1\t1\t1\t1\t1\t1\t1\t1\t1\t1\t1\t1",
		"2099-03-14 12:00:10.250",
		"vigil_events",
		"vigil_labels",
		"vigil_late_events",
		"vigil_events\tevent_id_bloom\tbloom_filter",
	}
	if len(lines) < len(want)+len(docQueries(t)) {
		t.Fatalf("chdb output has %d lines, want at least %d:\n%s", len(lines), len(want)+len(docQueries(t)), stdout.String())
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("chdb output line %d = %q, want %q\n%s", i+1, lines[i], w, stdout.String())
		}
	}
}

// singleNodeOnChDB rewrites cluster-form DDL into what chDB runs in process:
// without ON CLUSTER (chDB has no distributed DDL queue) and with each
// Replicated*MergeTree(path, replica[, args]) as *MergeTree([args]) (chDB
// creates a Replicated table against a ZooKeeper, but inserts into it hang).
// The Distributed tables stay, over a one-shard cluster of the same name
// that chdb_exec.py --cluster defines on the session itself.
func singleNodeOnChDB(sql, cluster string) string {
	sql = strings.ReplaceAll(sql, " ON CLUSTER "+cluster, "")
	return replicatedRE.ReplaceAllString(sql, "$1(")
}

var replicatedRE = regexp.MustCompile(`Replicated(\w*MergeTree)\('/clickhouse/tables/\{shard\}/\w+/\w+', '\{replica\}'(?:, )?`)

// TestModernClusterDDLOnChDB runs the MODERN cluster form through chDB as
// singleNodeOnChDB rewrites it: the local tables' columns, keys, codecs and
// TTLs, the Distributed tables created AS them with their sharding keys, the
// ALTERs of both, a sample row per table inserted and counted through the
// Distributed tables, and the documented queries as written (with
// distributed_product_mode = 'local', as docs/SCALING.md asks of a cluster).
// The ON CLUSTER clauses and the Replicated engines are checked on 18.16 by
// TestMigrateClusterIntegration only (the PLAIN form).
func TestModernClusterDDLOnChDB(t *testing.T) {
	script := "../../deployments/local/chdb_exec.py"
	python := os.Getenv("VIGIL_PYTHON")
	if python == "" {
		python = "python3"
	}
	_, statErr := os.Stat(script)
	requireService(t, statErr == nil, script, "it comes with the repository")
	requireService(t, exec.Command(python, "-c", "import chdb").Run() == nil, "chDB ("+python+" -c 'import chdb')",
		"install it with deployments/local/chdb.sh")

	const cluster = "vigil_local"
	var in strings.Builder
	add := func(sql string) { in.WriteString(sql + "\n;;\n") }
	add("CREATE DATABASE IF NOT EXISTS vigil")
	stmts := Migrations(ServerVersion{Major: 26, Minor: 9}, Options{Cluster: cluster})
	for _, st := range stmts {
		for _, sql := range append([]string{st.SQL}, st.Then...) {
			if rewritten := singleNodeOnChDB(sql, cluster); sql != "" {
				if strings.Contains(rewritten, "Replicated") || strings.Contains(rewritten, "ON CLUSTER") {
					t.Fatalf("rewrite left a cluster clause:\n%s", rewritten)
				}
				add(rewritten)
			}
		}
	}
	add("SET insert_distributed_sync = 1")
	add("SET " + ProductModeSetting)
	for _, q := range sampleRows {
		add(q)
	}
	add(sampleCheck)
	add("SELECT engine = 'Distributed', count() FROM system.tables WHERE database = 'vigil' GROUP BY engine = 'Distributed' ORDER BY 1")
	add("SELECT count() FROM vigil.vigil_drift_local")
	add("SELECT name FROM system.tables WHERE database = 'vigil' AND engine_full LIKE '%TTL%' ORDER BY name")
	add("SELECT table, name FROM system.columns WHERE database = 'vigil' AND name IN ('producers', 'reference_segment') ORDER BY table, name")
	for _, q := range append(docQueries(t), otherDocQueries(t)...) {
		add(q)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, script, "--cluster", cluster)
	cmd.Stdin = strings.NewReader(in.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chdb_exec.py: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	created := len(tables)
	for _, a := range alterations {
		if strings.HasPrefix(a.name, "create ") {
			created++
		}
	}
	want := []string{
		"1\t1\t1\t1\t1\t1\t1\t1\t1\t1\t1\t1\t1",
		fmt.Sprintf("0\t%d", created),
		fmt.Sprintf("1\t%d", created),
		"1",
		"vigil_events_local",
		"vigil_labels_local",
		"vigil_late_events_local",
		"vigil_checkpoints\tproducers",
		"vigil_checkpoints_local\tproducers",
		"vigil_drift\treference_segment",
		"vigil_drift_local\treference_segment",
	}
	if len(lines) < len(want)+len(docQueries(t)) {
		t.Fatalf("chdb output has %d lines, want at least %d:\n%s", len(lines), len(want)+len(docQueries(t)), stdout.String())
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("chdb output line %d = %q, want %q\n%s", i+1, lines[i], w, stdout.String())
		}
	}
}
