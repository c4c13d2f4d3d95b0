// Package ddl holds Vigil's ClickHouse tables and the migrations that create
// them.
//
// Every table exists in two forms with the same column names, so that the
// insert and query code does not depend on the server:
//
//   - MODERN, for ClickHouse >= 22: LowCardinality names, DateTime64(3, 'UTC')
//     times, compression codecs, and a TTL on raw and late events.
//   - PLAIN, for older servers (tested on 18.16): String, DateTime('UTC') with
//     second precision, no codecs, no TTL.
//
// Migrate creates the database and applies the numbered migrations that
// vigil_migrations does not record yet; running it again is a no-op. A table
// created in one form keeps that form when the server is upgraded.
//
// # Cluster form
//
// With Options.Cluster set (the name of a cluster in the servers'
// remote_servers), every table of either form is created ON CLUSTER as two
// tables: the local table <name>_local on every server, whose engine is the
// Replicated variant of the single-node one (ReplacingMergeTree(ver) becomes
// ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/<db>/<name>',
// '{replica}', ver), with the servers' {shard} and {replica} macros), and a
// Distributed table under the table's own name that routes each row to a
// shard by a hash of columns of the table's ORDER BY key (model where the key
// has it). All rows of one ReplacingMergeTree key thus live on one shard, so
// FINAL and argMax read through the Distributed table mean what they mean on
// one server, and a join or IN on model (and event id) finds its rows on the
// same shard (distributed_product_mode = 'local'). Writers and readers use
// the Distributed tables, under the names of the single-node form. An ALTER
// of columns runs ON CLUSTER on both tables, any other ALTER (an index) on the
// local table only. See docs/SCALING.md.
package ddl

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Table names.
const (
	TableMigrations     = "vigil_migrations"
	TableEvents         = "vigil_events"
	TableModelWindows   = "vigil_model_windows"
	TableFeatureWindows = "vigil_feature_windows"
	TableLateEvents     = "vigil_late_events"
	TableCheckpoints    = "vigil_checkpoints"
	TableReferences     = "vigil_references"
	TableDrift          = "vigil_drift"
	TableLabels         = "vigil_labels"
	TablePerformance    = "vigil_performance"
	TableAlerts         = "vigil_alerts"
	TableNotifications  = "vigil_notifications"
	TableLeases         = "vigil_leases"
	// TableMultivariateDrift holds processors/multivariate's results.
	TableMultivariateDrift = "vigil_multivariate_drift"
	// TableJobPasses is the ledger of the sharded jobs (processors/shard).
	TableJobPasses = "vigil_job_passes"
)

// Defaults of Options.
const (
	DefaultDatabase = "vigil"
	DefaultTTLDays  = 30
)

// LocalSuffix ends the name of the local table under a Distributed table in
// the cluster form: vigil_events is Distributed over vigil_events_local.
const LocalSuffix = "_local"

// ModernMajor is the first ClickHouse major version that gets the MODERN form.
const ModernMajor = 22

// ServerVersion is a ClickHouse server version as `SELECT version()` reports it.
type ServerVersion struct {
	Major, Minor, Patch int
}

// ParseVersion parses the answer of `SELECT version()`, for example "18.16.1"
// or "24.8.4.13". Parts after the patch (build number, "-stable") are ignored;
// a missing patch is 0.
func ParseVersion(s string) (ServerVersion, error) {
	parts := strings.SplitN(strings.TrimSpace(s), ".", 4)
	if len(parts) < 2 {
		return ServerVersion{}, fmt.Errorf("parse clickhouse version %q: want major.minor[.patch]", s)
	}
	var n [3]int
	for i := 0; i < 3 && i < len(parts); i++ {
		p := parts[i]
		// tolerate a suffix such as "1-stable"
		if j := strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			p = p[:j]
		}
		v, err := strconv.Atoi(p)
		if err != nil {
			return ServerVersion{}, fmt.Errorf("parse clickhouse version %q: part %d is not a number", s, i+1)
		}
		n[i] = v
	}
	return ServerVersion{Major: n[0], Minor: n[1], Patch: n[2]}, nil
}

func (v ServerVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Modern reports whether v gets the MODERN form of the tables.
func (v ServerVersion) Modern() bool { return v.Major >= ModernMajor }

// Options shape the generated DDL.
type Options struct {
	// Database holds every table. Default "vigil".
	Database string
	// TTLDays is how long raw events and late events are kept, by event time.
	// Default 30; negative keeps them forever. Only the MODERN form has a TTL,
	// and it is fixed when the table is created.
	TTLDays int
	// Cluster, when not empty, is the cluster (a name in the servers'
	// remote_servers, with ZooKeeper and the {shard} and {replica} macros
	// configured) the tables are created on, in the cluster form (see the
	// package doc). Empty: single-node tables.
	Cluster string
}

func (o Options) withDefaults() Options {
	if o.Database == "" {
		o.Database = DefaultDatabase
	}
	if o.TTLDays == 0 {
		o.TTLDays = DefaultTTLDays
	}
	return o
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ErrBadDatabaseName is returned for a database name that is not a plain identifier.
var ErrBadDatabaseName = errors.New("bad database name")

// ErrBadClusterName is returned for a cluster name that is not a plain identifier.
var ErrBadClusterName = errors.New("bad cluster name")

// ValidateCluster checks that name (not empty) can be used unquoted in DDL.
func ValidateCluster(name string) error {
	if !identRE.MatchString(name) || len(name) > 128 {
		return fmt.Errorf("%w %q: use letters, digits and _ only, not starting with a digit", ErrBadClusterName, name)
	}
	return nil
}

// ValidateDatabase checks that name can be used unquoted in DDL.
func ValidateDatabase(name string) error {
	if !identRE.MatchString(name) || len(name) > 128 {
		return fmt.Errorf("%w %q: use letters, digits and _ only, not starting with a digit", ErrBadDatabaseName, name)
	}
	return nil
}

// Statement is one DDL statement. Version 0 is the migrations table itself,
// which Migrate creates before it reads what is applied; versions >= 1 are
// recorded in vigil_migrations once applied.
type Statement struct {
	Version uint32
	Name    string // recorded in vigil_migrations, e.g. "create vigil_events"
	Table   string
	SQL     string // without a trailing semicolon
	// Then are further statements of the migration, run in order after
	// SQL: in the cluster form, the Distributed table after the local one.
	Then []string
	// Done, when set, is a query whose count() is > 0 when SQL is in
	// effect already: Migrate then only records it. For changes that have
	// no IF NOT EXISTS on the server.
	Done string
}

// alteration is a migration that changes an existing table. Modern is its
// SQL for ClickHouse >= ModernMajor, with %s for the database; plain its SQL
// for older servers, "" when the change does not exist there (the migration
// is then recorded as applied without running anything).
type alteration struct {
	version       uint32
	name, table   string
	modern, plain string
	// column is the column that plain adds: Migrate skips plain when the
	// table has it (a re-run after vigil_migrations was lost).
	column string
	// shardKey is the sharding expression of the Distributed table of a
	// migration that creates a table (see table.shardKey).
	shardKey string
}

var alterations = []alteration{
	{
		version: 12,
		name:    "index vigil_events.event_id",
		table:   TableEvents,
		// The performance job looks events up by the ids of new labels
		// (sinks/clickhouse ChangedPerformanceWindows); without this index
		// that reads event_id over the whole label horizon. Parts written
		// before the migration are not indexed (MATERIALIZE INDEX would do
		// it, at the cost of rewriting them). 18.16 has skip indices only as
		// an experimental setting: not used there.
		modern: "ALTER TABLE %s." + TableEvents + " ADD INDEX IF NOT EXISTS event_id_bloom event_id TYPE bloom_filter(0.01) GRANULARITY 4",
	},
	{
		version: 13,
		name:    "add vigil_checkpoints.producers",
		table:   TableCheckpoints,
		// The SDK producers' last sequences seen in the partition, encoded by
		// processors/pipeline (producer sequences, and event ids with
		// --dedup-event-ids), stored in the row of the
		// offset they belong to so that a restart still skips a retried
		// message (docs/RELIABILITY.md, "Producer idempotence"). Rows written
		// before the migration read as '': no producer known.
		modern: "ALTER TABLE %s." + TableCheckpoints + " ADD COLUMN IF NOT EXISTS producers String CODEC(ZSTD)",
		// 18.16 has no IF NOT EXISTS here; the migration runs once (recorded
		// in vigil_migrations).
		plain:  "ALTER TABLE %s." + TableCheckpoints + " ADD COLUMN producers String",
		column: "producers",
	},
	{
		version: 14,
		name:    "create " + TableLeases,
		table:   TableLeases,
		// The fencing of the alert job (sinks/clickhouse Leases): one row per
		// takeover of a scope (the alert job of one consumer group); the row
		// with the largest (epoch, member) holds the lease. Rows are tiny and
		// few (one per leadership change).
		modern: "CREATE TABLE IF NOT EXISTS %s." + TableLeases + `
(
    scope LowCardinality(String),
    epoch UInt64,
    member String,
    generation Int64,
    taken_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (scope, epoch, member)`,
		plain: "CREATE TABLE IF NOT EXISTS %s." + TableLeases + `
(
    scope String,
    epoch UInt64,
    member String,
    generation Int64,
    taken_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (scope, epoch, member)`,
		shardKey: "sipHash64(scope)",
	},
	{
		version: 15,
		name:    "add vigil_drift error bounds and unevaluated features",
		table:   TableDrift,
		// Every number of a drift row with its error bound (processors/drift
		// Bounds, docs/DRIFT.md "Error bounds"), how the KS p-value was
		// computed and where the window's values came from; rows of
		// features that could not be evaluated (evaluated = 0, with the
		// reason); the reference segment the row was compared with. Rows
		// written before read exact = 1 - approx (the histogram distances
		// of such rows were exact only when approx = 0), bounds NaN
		// (unknown), evaluated = 1.
		modern: "ALTER TABLE %s." + TableDrift + `
    ADD COLUMN IF NOT EXISTS exact UInt8 DEFAULT 1 - approx,
    ADD COLUMN IF NOT EXISTS score_bound Float64 DEFAULT nan,
    ADD COLUMN IF NOT EXISTS psi_bound Float64 DEFAULT nan,
    ADD COLUMN IF NOT EXISTS kl_bound Float64 DEFAULT nan,
    ADD COLUMN IF NOT EXISTS js_bound Float64 DEFAULT nan,
    ADD COLUMN IF NOT EXISTS hellinger_bound Float64 DEFAULT nan,
    ADD COLUMN IF NOT EXISTS wasserstein_bound Float64 DEFAULT nan,
    ADD COLUMN IF NOT EXISTS ks_stat_bound Float64 DEFAULT nan,
    ADD COLUMN IF NOT EXISTS ks_pvalue_bound Float64 DEFAULT nan,
    ADD COLUMN IF NOT EXISTS out_of_range_bound Float64 DEFAULT nan,
    ADD COLUMN IF NOT EXISTS ks_method LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS value_source LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS evaluated UInt8 DEFAULT 1,
    ADD COLUMN IF NOT EXISTS reason String DEFAULT '',
    ADD COLUMN IF NOT EXISTS reference_segment LowCardinality(String) DEFAULT ''`,
		plain: "ALTER TABLE %s." + TableDrift + `
    ADD COLUMN exact UInt8 DEFAULT 1 - approx,
    ADD COLUMN score_bound Float64 DEFAULT nan,
    ADD COLUMN psi_bound Float64 DEFAULT nan,
    ADD COLUMN kl_bound Float64 DEFAULT nan,
    ADD COLUMN js_bound Float64 DEFAULT nan,
    ADD COLUMN hellinger_bound Float64 DEFAULT nan,
    ADD COLUMN wasserstein_bound Float64 DEFAULT nan,
    ADD COLUMN ks_stat_bound Float64 DEFAULT nan,
    ADD COLUMN ks_pvalue_bound Float64 DEFAULT nan,
    ADD COLUMN out_of_range_bound Float64 DEFAULT nan,
    ADD COLUMN ks_method String DEFAULT '',
    ADD COLUMN value_source String DEFAULT '',
    ADD COLUMN evaluated UInt8 DEFAULT 1,
    ADD COLUMN reason String DEFAULT '',
    ADD COLUMN reference_segment String DEFAULT ''`,
		column: "reference_segment",
	},
	{
		version: 16,
		name:    "create " + TableMultivariateDrift,
		table:   TableMultivariateDrift,
		// One row per multivariate drift evaluation of [window_start,
		// window_end), segment, feature and method: the mean PCA
		// reconstruction error (feature '__multivariate') of
		// processors/multivariate against the model of reference_id.
		// Re-evaluating replaces the row; the newest computed_at wins.
		modern: "CREATE TABLE IF NOT EXISTS %s." + TableMultivariateDrift + `
(
    model LowCardinality(String),
    model_version LowCardinality(String),
    segment LowCardinality(String),
    window_start DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    window_end DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    feature LowCardinality(String),
    method LowCardinality(String),
    reference_id UInt64,
    score Float64,
    sampling_error Float64,
    lower_threshold Float64,
    upper_threshold Float64,
    drifted UInt8,
    n UInt64,
    events UInt64,
    p50 Float64,
    p95 Float64,
    components UInt32,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (model, model_version, segment, window_start, window_end, feature, method)`,
		plain: "CREATE TABLE IF NOT EXISTS %s." + TableMultivariateDrift + `
(
    model String,
    model_version String,
    segment String,
    window_start DateTime('UTC'),
    window_end DateTime('UTC'),
    feature String,
    method String,
    reference_id UInt64,
    score Float64,
    sampling_error Float64,
    lower_threshold Float64,
    upper_threshold Float64,
    drifted UInt8,
    n UInt64,
    events UInt64,
    p50 Float64,
    p95 Float64,
    components UInt32,
    computed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (model, model_version, segment, window_start, window_end, feature, method)`,
		shardKey: "sipHash64(model)",
	},
	{
		version: 17,
		name:    "create " + TableJobPasses,
		table:   TableJobPasses,
		// The ledger of the drift, multivariate and performance jobs
		// sharded over the consumer group (processors/shard): one row per
		// window computed (job, model, version, window, a fingerprint of
		// the input, the generation and member that computed it), and one
		// per partition at the end of a performance pass (model '',
		// window_start 0: where the partition's next owner resumes); seq
		// orders the computations (nanoseconds: computed_at has seconds
		// only on old servers). A log:
		// every computation stays a row, so that a window computed twice
		// (by two members in a handover, say) shows.
		modern: "CREATE TABLE IF NOT EXISTS %s." + TableJobPasses + `
(
    job LowCardinality(String),
    partition Int32,
    model LowCardinality(String),
    model_version LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    input UInt64,
    generation Int64,
    member String,
    computed_at DateTime64(3, 'UTC'),
    seq UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (job, model, model_version, window_start)`,
		plain: "CREATE TABLE IF NOT EXISTS %s." + TableJobPasses + `
(
    job String,
    partition Int32,
    model String,
    model_version String,
    window_start DateTime('UTC'),
    input UInt64,
    generation Int64,
    member String,
    computed_at DateTime('UTC'),
    seq UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (job, model, model_version, window_start)`,
		shardKey: "sipHash64(model)",
	},
}

// Migrations returns every migration for server v in order: the CREATE
// statements of Tables, then the alterations. A Statement with empty SQL
// does not apply to v and is only recorded.
func Migrations(v ServerVersion, opts Options) []Statement {
	opts = opts.withDefaults()
	out := Tables(v, opts)
	for _, a := range alterations {
		sql := a.plain
		if v.Modern() {
			sql = a.modern
		}
		st := Statement{Version: a.version, Name: a.name, Table: a.table}
		if sql != "" {
			st.SQL = fmt.Sprintf(sql, opts.Database)
			if opts.Cluster != "" {
				st.SQL, st.Then = onCluster(st.SQL, a, opts, v.Modern())
			}
			if !v.Modern() && a.column != "" {
				st.Done = fmt.Sprintf("SELECT count() FROM system.columns WHERE database = '%s' AND table = '%s' AND name = '%s'", opts.Database, a.table, a.column)
				if opts.Cluster != "" {
					// The local table's column; Then (the Distributed
					// table re-created) runs anyway.
					st.Done = fmt.Sprintf("SELECT count() FROM system.columns WHERE database = '%s' AND table = '%s' AND name = '%s'",
						opts.Database, a.table+LocalSuffix, a.column)
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// onCluster returns the cluster form of alteration a, whose single-node SQL
// for database opts.Database is sql: a CREATE TABLE becomes the local table
// and the Distributed table over it; an ALTER runs ON CLUSTER on the local
// table and, when it changes columns only, on the Distributed table too. The
// PLAIN form re-creates the Distributed table instead (it holds no data:
// Vigil inserts with insert_distributed_sync): 18.16 refuses an ALTER ON
// CLUSTER of a table that is not replicated on shards that are ("Table ...
// isn't replicated, but shard #1 is replicated according to its cluster
// definition"), and the Distributed table takes its columns from the local
// one when it is created.
func onCluster(sql string, a alteration, o Options, modern bool) (string, []string) {
	db := o.Database
	create := "CREATE TABLE IF NOT EXISTS " + db + "." + a.table + "\n"
	alter := "ALTER TABLE " + db + "." + a.table + "\n"
	switch {
	case strings.HasPrefix(sql, create):
		head := "CREATE TABLE IF NOT EXISTS " + db + "." + a.table + LocalSuffix + " ON CLUSTER " + o.Cluster + "\n"
		local := head + sql[len(create):]
		i := strings.Index(local, "\nENGINE = ")
		j := i + len("\nENGINE = ")
		end := j + strings.IndexByte(local[j:], '\n')
		local = local[:j] + replicated(local[j:end], db, a.table) + local[end:]
		return local, []string{distributed(db, a.table, a.shardKey, o.Cluster)}
	case strings.HasPrefix(sql, alter) || strings.HasPrefix(sql, strings.TrimSuffix(alter, "\n")+" "):
		rest := sql[len(alter)-1:]
		local := "ALTER TABLE " + db + "." + a.table + LocalSuffix + " ON CLUSTER " + o.Cluster + rest
		switch {
		case !columnsOnly(rest):
			return local, nil
		case !modern:
			return local, []string{
				"DROP TABLE IF EXISTS " + db + "." + a.table + " ON CLUSTER " + o.Cluster,
				distributed(db, a.table, shardKeyOf(a.table), o.Cluster),
			}
		}
		return local, []string{"ALTER TABLE " + db + "." + a.table + " ON CLUSTER " + o.Cluster + rest}
	}
	// Every alteration is a CREATE TABLE or an ALTER TABLE of a.table
	// (TestClusterForm checks it): anything else is a programming error.
	panic(fmt.Sprintf("ddl: migration %d (%s) has no cluster form: %.60q", a.version, a.name, sql))
}

var (
	alterClauseRE  = regexp.MustCompile(`(?m)(?:^|,)\s*(ADD|DROP|MODIFY|RENAME|CLEAR|COMMENT|MATERIALIZE)\s+(\w+)`)
	columnClauseRE = regexp.MustCompile(`(?i)^COLUMN$`)
)

// columnsOnly reports whether every clause of an ALTER (after the table
// name) changes a column: those apply to a Distributed table as well.
func columnsOnly(clauses string) bool {
	ms := alterClauseRE.FindAllStringSubmatch(clauses, -1)
	if len(ms) == 0 {
		return false
	}
	for _, m := range ms {
		if !columnClauseRE.MatchString(m[2]) {
			return false
		}
	}
	return true
}

// shardKeyOf returns the sharding expression of table.
func shardKeyOf(table string) string {
	for _, t := range tables {
		if t.name == table {
			return t.shardKey
		}
	}
	for _, a := range alterations {
		if a.table == table && a.shardKey != "" {
			return a.shardKey
		}
	}
	panic("ddl: no sharding key for table " + table)
}

// replicated returns the Replicated variant of a MergeTree-family engine
// ("ReplacingMergeTree(ver)"), kept in ZooKeeper under
// /clickhouse/tables/{shard}/<db>/<table>, one replica per {replica}.
func replicated(engine, db, table string) string {
	name, args, _ := strings.Cut(engine, "(")
	args = strings.TrimSuffix(args, ")")
	out := fmt.Sprintf("Replicated%s('/clickhouse/tables/{shard}/%s/%s', '{replica}'", name, db, table)
	if args != "" {
		out += ", " + args
	}
	return out + ")"
}

// distributed returns the Distributed table db.table over db.table_local on cluster.
func distributed(db, table, shardKey, cluster string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %[1]s.%[2]s ON CLUSTER %[4]s AS %[1]s.%[2]s%[5]s\nENGINE = Distributed(%[4]s, %[1]s, %[2]s%[5]s, %[3]s)",
		db, table, shardKey, cluster, LocalSuffix)
}

// Tables returns the CREATE statements of every table for server v, in
// migration order, starting with the migrations table (Version 0). Database
// must be a valid name (see ValidateDatabase).
func Tables(v ServerVersion, opts Options) []Statement {
	opts = opts.withDefaults()
	modern := v.Modern()
	out := make([]Statement, 0, len(tables))
	for _, t := range tables {
		st := Statement{
			Version: t.version,
			Name:    "create " + t.name,
			Table:   t.name,
			SQL:     t.create(opts, modern),
		}
		if opts.Cluster != "" {
			st.Then = []string{distributed(opts.Database, t.name, t.shardKey, opts.Cluster)}
		}
		out = append(out, st)
	}
	return out
}

// column is one column in both forms. Types are written with the helpers
// below so that names and meaning cannot drift between the forms.
type column struct {
	name   string
	plain  string
	modern string // "" = same as plain
	codec  string // MODERN only, e.g. "Delta, ZSTD"
}

type table struct {
	version   uint32
	name      string
	columns   []column
	engine    string
	partition string // expression, "" = none
	orderBy   string
	ttlColumn string // MODERN only: rows expire TTLDays after this time column
	// shardKey is the sharding expression of the cluster form's Distributed
	// table: a hash of columns of orderBy (or of a column that a key
	// determines, such as the model of an event), so that every row of one
	// key lands on one shard. model where the key has it, so that the tables
	// of one model share a shard and join there.
	shardKey string
}

func (t table) create(o Options, modern bool) string {
	var b strings.Builder
	engine := t.engine
	if o.Cluster != "" {
		fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s%s ON CLUSTER %s\n(\n", o.Database, t.name, LocalSuffix, o.Cluster)
		engine = replicated(engine, o.Database, t.name)
	} else {
		fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s\n(\n", o.Database, t.name)
	}
	for i, c := range t.columns {
		typ := c.plain
		if modern && c.modern != "" {
			typ = c.modern
		}
		fmt.Fprintf(&b, "    %s %s", c.name, typ)
		if modern && c.codec != "" {
			fmt.Fprintf(&b, " CODEC(%s)", c.codec)
		}
		if i < len(t.columns)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, ")\nENGINE = %s\n", engine)
	if t.partition != "" {
		fmt.Fprintf(&b, "PARTITION BY %s\n", t.partition)
	}
	fmt.Fprintf(&b, "ORDER BY (%s)", t.orderBy)
	if modern && t.ttlColumn != "" && o.TTLDays > 0 {
		fmt.Fprintf(&b, "\nTTL toDateTime(%s) + INTERVAL %d DAY", t.ttlColumn, o.TTLDays)
	}
	return b.String()
}

// Column helpers: a name (LowCardinality when modern), a time (DateTime64(3)
// when modern) and plain types that are the same in both forms.
func name(n string) column { return column{name: n, plain: "String", modern: "LowCardinality(String)"} }
func names(n string) column {
	return column{name: n, plain: "Array(String)", modern: "Array(LowCardinality(String))"}
}
func timeCol(n, codec string) column {
	return column{name: n, plain: "DateTime('UTC')", modern: "DateTime64(3, 'UTC')", codec: codec}
}
func typed(n, typ, codec string) column { return column{name: n, plain: typ, codec: codec} }

const (
	zstd      = "ZSTD"
	deltaZstd = "Delta, ZSTD"
)

var tables = []table{
	{
		version: 0,
		name:    TableMigrations,
		columns: []column{
			typed("version", "UInt32", ""),
			typed("name", "String", ""),
			typed("applied_at", "DateTime('UTC')", ""),
		},
		engine:   "ReplacingMergeTree",
		orderBy:  "version",
		shardKey: "version",
	},
	{
		version: 1,
		name:    TableEvents,
		columns: []column{
			typed("event_id", "String", ""),
			name("model"),
			name("model_version"),
			timeCol("event_time", deltaZstd),
			names("num_feature_names"),
			typed("num_feature_values", "Array(Float64)", zstd),
			names("str_feature_names"),
			typed("str_feature_values", "Array(String)", zstd),
			names("bool_feature_names"),
			typed("bool_feature_values", "Array(UInt8)", zstd),
			names("null_features"),
			typed("pred_score", "Nullable(Float64)", ""),
			typed("pred_label", "Nullable(String)", zstd),
			typed("pred_value", "Nullable(Float64)", ""),
			names("proba_classes"),
			typed("proba_values", "Array(Float64)", zstd),
			typed("latency_ms", "Nullable(Float64)", ""),
			names("segment_keys"),
			names("segment_values"),
			name("topic"),
			typed("kafka_partition", "UInt32", ""),
			typed("kafka_offset", "Int64", deltaZstd),
			timeCol("ingested_at", deltaZstd),
		},
		engine:    "ReplacingMergeTree",
		partition: "toYYYYMM(event_time)",
		orderBy:   "model, event_time, event_id",
		shardKey:  "sipHash64(model)",
		ttlColumn: "event_time",
	},
	{
		version: 2,
		name:    TableModelWindows,
		columns: []column{
			name("model"),
			name("model_version"),
			name("segment"),
			timeCol("window_start", deltaZstd),
			name("topic"),
			typed("kafka_partition", "UInt32", ""),
			timeCol("window_end", deltaZstd),
			typed("events", "UInt64", ""),
			typed("late_events", "UInt64", ""),
			typed("latency_count", "UInt64", ""),
			typed("latency_p50", "Float64", ""),
			typed("latency_p95", "Float64", ""),
			typed("latency_p99", "Float64", ""),
			typed("latency_sketch", "String", zstd),
			// Every feature state of the window, encoded: the row alone
			// restores the whole window, so a crash between the inserts of
			// the two window tables cannot make a restored state inconsistent.
			typed("feature_states", "String", zstd),
			typed("is_final", "UInt8", ""),
			typed("last_offset", "Int64", ""),
			timeCol("updated_at", ""),
		},
		engine:    "ReplacingMergeTree(last_offset)",
		partition: "toYYYYMM(window_start)",
		orderBy:   "model, model_version, segment, window_start, topic, kafka_partition",
		shardKey:  "sipHash64(model)",
	},
	{
		version: 3,
		name:    TableFeatureWindows,
		columns: []column{
			name("model"),
			name("model_version"),
			name("segment"),
			name("feature"),
			timeCol("window_start", deltaZstd),
			name("topic"),
			typed("kafka_partition", "UInt32", ""),
			timeCol("window_end", deltaZstd),
			name("kind"),
			typed("count", "UInt64", ""),
			typed("missing", "UInt64", ""),
			typed("type_mismatch", "UInt64", ""),
			typed("nan_count", "UInt64", ""),
			typed("inf_count", "UInt64", ""),
			typed("sum", "Float64", ""),
			typed("m2", "Float64", ""),
			typed("mean", "Float64", ""),
			typed("variance", "Float64", ""),
			typed("min", "Float64", ""),
			typed("max", "Float64", ""),
			typed("categories", "Array(String)", zstd),
			typed("category_counts", "Array(UInt64)", zstd),
			typed("other_count", "UInt64", ""),
			typed("is_final", "UInt8", ""),
			typed("last_offset", "Int64", ""),
			timeCol("updated_at", ""),
		},
		engine:    "ReplacingMergeTree(last_offset)",
		partition: "toYYYYMM(window_start)",
		orderBy:   "model, model_version, segment, feature, window_start, topic, kafka_partition",
		shardKey:  "sipHash64(model)",
	},
	{
		version: 4,
		name:    TableLateEvents,
		columns: []column{
			name("topic"),
			typed("kafka_partition", "UInt32", ""),
			typed("kafka_offset", "Int64", deltaZstd),
			typed("event_id", "String", ""),
			name("model"),
			name("model_version"),
			timeCol("event_time", deltaZstd),
			timeCol("window_start", deltaZstd),
			timeCol("watermark", deltaZstd),
			timeCol("received_at", deltaZstd),
		},
		// One Kafka message (an Arrow batch) holds many events, so the
		// offset alone does not identify a late event; the event id does
		// within it. Partitioned by event time, which a replay reproduces,
		// so that a replayed row lands in the partition of the original.
		engine:    "ReplacingMergeTree",
		partition: "toYYYYMM(event_time)",
		orderBy:   "topic, kafka_partition, kafka_offset, event_id",
		// The model of a late event is the model of its event (a redelivered
		// message is the same bytes): with the events of its model.
		shardKey:  "sipHash64(model)",
		ttlColumn: "event_time",
	},
	{
		version: 5,
		name:    TableCheckpoints,
		columns: []column{
			name("consumer_group"),
			name("topic"),
			typed("kafka_partition", "UInt32", ""),
			typed("next_offset", "Int64", ""),
			typed("watermark_ms", "Int64", ""),
			timeCol("written_at", ""),
		},
		engine:   "ReplacingMergeTree(next_offset)",
		orderBy:  "consumer_group, topic, kafka_partition",
		shardKey: "sipHash64(consumer_group, topic, kafka_partition)",
	},
	{
		version: 6,
		name:    TableReferences,
		columns: []column{
			name("model"),
			name("model_version"),
			// Time-based and increasing (processors/reference.NewID): the
			// largest id of a model version is the reference in force.
			typed("reference_id", "UInt64", ""),
			timeCol("created_at", ""),
			typed("source", "String", ""),
			typed("rows", "UInt64", ""),
			names("features"),
			// The whole profile, encoded by processors/reference
			// (Profile.MarshalBinary); the columns above are for queries.
			typed("profile", "String", zstd),
		},
		engine:   "ReplacingMergeTree",
		orderBy:  "model, model_version, reference_id",
		shardKey: "sipHash64(model)",
	},
	{
		version: 7,
		name:    TableDrift,
		// One row per feature of a drift evaluation of [window_start,
		// window_end): a stored window or any merge of them (an hour, a day).
		// Re-evaluating replaces the row; the newest computed_at wins.
		columns: []column{
			name("model"),
			name("model_version"),
			name("segment"),
			timeCol("window_start", deltaZstd),
			timeCol("window_end", deltaZstd),
			name("feature"),
			name("kind"),
			typed("reference_id", "UInt64", ""),
			name("method"),
			typed("score", "Float64", ""),
			typed("threshold", "Float64", ""),
			typed("drifted", "UInt8", ""),
			typed("n_ref", "UInt64", ""),
			typed("n_cur", "UInt64", ""),
			typed("approx", "UInt8", ""),
			typed("psi", "Float64", ""),
			typed("kl", "Float64", ""),
			typed("js", "Float64", ""),
			typed("hellinger", "Float64", ""),
			typed("wasserstein", "Float64", ""),
			typed("wasserstein_norm", "Float64", ""),
			typed("ks_stat", "Float64", ""),
			typed("ks_pvalue", "Float64", ""),
			typed("chi2_stat", "Float64", ""),
			typed("chi2_pvalue", "Float64", ""),
			typed("missing_rate", "Float64", ""),
			typed("out_of_range_rate", "Float64", ""),
			typed("new_category_rate", "Float64", ""),
			typed("type_mismatch_rate", "Float64", ""),
			typed("is_constant", "UInt8", ""),
			typed("dataset_share", "Float64", ""),
			typed("dataset_share_bh", "Float64", ""),
			typed("dataset_drifted", "UInt8", ""),
			names("new_features"),
			names("absent_features"),
			timeCol("computed_at", ""),
		},
		engine:    "ReplacingMergeTree(computed_at)",
		partition: "toYYYYMM(window_start)",
		orderBy:   "model, model_version, segment, window_start, window_end, feature",
		shardKey:  "sipHash64(model)",
	},
	{
		version: 8,
		name:    TableLabels,
		// One row per label (ground truth of an earlier prediction): an
		// Arrow message holds many, told apart by kafka_row. A redelivered
		// message replaces itself (same topic, partition, offset and row); a
		// label sent twice stays twice, and readers take the one with the
		// newest label_time per event id.
		columns: []column{
			name("model"),
			typed("event_id", "String", ""),
			timeCol("label_time", deltaZstd),
			typed("has_class", "UInt8", ""),
			typed("label_class", "String", ""),
			typed("has_value", "UInt8", ""),
			typed("label_value", "Float64", ""),
			name("topic"),
			typed("kafka_partition", "UInt32", ""),
			typed("kafka_offset", "Int64", deltaZstd),
			typed("kafka_row", "UInt32", ""),
			timeCol("received_at", deltaZstd),
		},
		engine:    "ReplacingMergeTree",
		partition: "toYYYYMM(label_time)",
		orderBy:   "model, event_id, topic, kafka_partition, kafka_offset, kafka_row",
		shardKey:  "sipHash64(model)",
		ttlColumn: "label_time",
	},
	{
		version: 9,
		name:    TablePerformance,
		// One row per prediction window, model version and segment:
		// predictions joined with their labels, recomputed as labels arrive.
		// The row with the largest version wins; state merges exactly in Go.
		columns: []column{
			name("model"),
			name("model_version"),
			name("segment"),
			timeCol("window_start", deltaZstd),
			timeCol("window_end", deltaZstd),
			name("task"),
			typed("threshold", "Float64", ""),
			typed("predictions", "UInt64", ""),
			typed("labeled", "UInt64", ""),
			typed("label_coverage", "Float64", ""),
			typed("label_delay_p50", "Float64", ""),
			typed("label_delay_p95", "Float64", ""),
			typed("accuracy", "Float64", ""),
			typed("precision", "Float64", ""),
			typed("recall", "Float64", ""),
			typed("f1", "Float64", ""),
			typed("roc_auc", "Float64", ""),
			typed("pr_auc", "Float64", ""),
			typed("auc_error_bound", "Float64", ""),
			typed("log_loss", "Float64", ""),
			typed("brier", "Float64", ""),
			typed("tp", "UInt64", ""),
			typed("fp", "UInt64", ""),
			typed("tn", "UInt64", ""),
			typed("fn", "UInt64", ""),
			typed("predicted_positive_rate", "Float64", ""),
			typed("label_positive_rate", "Float64", ""),
			typed("macro_precision", "Float64", ""),
			typed("macro_recall", "Float64", ""),
			typed("macro_f1", "Float64", ""),
			typed("micro_f1", "Float64", ""),
			typed("weighted_precision", "Float64", ""),
			typed("weighted_recall", "Float64", ""),
			typed("weighted_f1", "Float64", ""),
			names("classes"),
			typed("class_precision", "Array(Float64)", ""),
			typed("class_recall", "Array(Float64)", ""),
			typed("class_f1", "Array(Float64)", ""),
			typed("class_support", "Array(UInt64)", ""),
			typed("confusion", "Array(Array(UInt64))", zstd),
			typed("mae", "Float64", ""),
			typed("rmse", "Float64", ""),
			typed("mape", "Float64", ""),
			typed("mape_nonzero", "Float64", ""),
			typed("zero_labels", "UInt64", ""),
			typed("r2", "Float64", ""),
			typed("mean_error", "Float64", ""),
			typed("state", "String", zstd),
			timeCol("computed_at", ""),
			typed("version", "UInt64", ""),
		},
		engine:    "ReplacingMergeTree(version)",
		partition: "toYYYYMM(window_start)",
		orderBy:   "model, model_version, segment, window_start",
		shardKey:  "sipHash64(model)",
	},
	{
		version: 10,
		name:    TableAlerts,
		// The state of every alert series (one rule on one model, feature
		// and segment); the row with the largest version is current.
		columns: []column{
			name("rule"),
			typed("fingerprint", "String", ""),
			name("model"),
			name("metric"),
			name("feature"),
			name("segment"),
			name("status"),
			typed("consecutive", "UInt32", ""),
			timeCol("last_window", ""),
			typed("previous", "Float64", ""),
			timeCol("starts_at", ""),
			typed("value", "Float64", ""),
			typed("threshold", "Float64", ""),
			timeCol("updated_at", ""),
			typed("version", "UInt64", ""),
		},
		engine:  "ReplacingMergeTree(version)",
		orderBy: "rule, fingerprint",
		// The fingerprint of a series names its model: with the model.
		shardKey: "sipHash64(model)",
	},
	{
		version: 11,
		name:    TableNotifications,
		// Every notification, one row per receiver and delivery id, and the
		// outbox of those not delivered yet: state goes from 'pending' to
		// 'delivered' or 'rejected' (the row with the largest version is
		// current).
		columns: []column{
			typed("id", "String", ""),
			name("receiver"),
			name("status"),
			names("rules"),
			names("models"),
			typed("fingerprints", "Array(String)", ""),
			typed("alert_ids", "Array(String)", ""),
			typed("alerts", "String", zstd),
			timeCol("created_at", ""),
			name("state"),
			typed("error", "String", ""),
			timeCol("updated_at", ""),
			typed("version", "UInt64", ""),
		},
		engine:    "ReplacingMergeTree(version)",
		partition: "toYYYYMM(created_at)",
		orderBy:   "id, receiver",
		shardKey:  "sipHash64(id)",
	},
}
