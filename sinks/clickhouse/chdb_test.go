package clickhouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/schemas/ddl"
	"github.com/vigil-ml/vigil/sinks/webhook"
)

// recordingConn records the read queries the sink sends, with their
// arguments, and fails them, so that a test can run the same SQL elsewhere.
type recordingConn struct {
	driver.Conn // nil: only the methods below are called
	queries     []string
}

var errRecorded = errors.New("recorded, not run")

type failedRow struct{}

func (failedRow) Err() error           { return errRecorded }
func (failedRow) Scan(...any) error    { return errRecorded }
func (failedRow) ScanStruct(any) error { return errRecorded }

func (c *recordingConn) Query(_ context.Context, q string, args ...any) (driver.Rows, error) {
	c.queries = append(c.queries, bindLiterals(q, args))
	return nil, errRecorded
}

func (c *recordingConn) QueryRow(_ context.Context, q string, args ...any) driver.Row {
	c.queries = append(c.queries, bindLiterals(q, args))
	return failedRow{}
}

// bindLiterals replaces each ? of q by its argument as a SQL literal.
func bindLiterals(q string, args []any) string {
	var b strings.Builder
	for _, r := range q {
		if r != '?' || len(args) == 0 {
			b.WriteRune(r)
			continue
		}
		switch a := args[0].(type) {
		case string:
			b.WriteString(quote(a))
		case []string:
			quoted := make([]string, len(a))
			for i, v := range a {
				quoted[i] = quote(v)
			}
			b.WriteString("[" + strings.Join(quoted, ", ") + "]")
		case time.Time:
			b.WriteString("toDateTime('" + a.UTC().Format("2006-01-02 15:04:05") + "', 'UTC')")
		default:
			fmt.Fprint(&b, a)
		}
		args = args[1:]
	}
	return b.String()
}

// Every read query of the sink, run on the modern engine: chDB (ClickHouse
// 26.x in process) with the modern DDL and a few rows. The integration
// tests run the same queries on the 18.16 server.
func TestReadQueriesOnChDB(t *testing.T) {
	python := os.Getenv("VIGIL_PYTHON")
	if python == "" {
		python = "python3"
	}
	if exec.Command(python, "-c", "import chdb").Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chDB is not available, and CI=true requires this test to run (install it with deployments/local/chdb.sh)")
		}
		t.Skip("chDB is not available; install it with deployments/local/chdb.sh to run this test")
	}
	rec := &recordingConn{}
	s := &Sink{cfg: DefaultConfig(), log: zerolog.Nop(), conn: rec, version: ddl.ServerVersion{Major: 26, Minor: 9}}
	ctx := context.Background()
	t0 := time.Date(2099, 3, 14, 12, 0, 0, 0, time.UTC)
	calls := []error{}
	call := func(_ any, err error) { calls = append(calls, err) }
	call(s.Labels().WindowPredictions(ctx, "fraud", t0, t0.Add(time.Minute)))
	call(s.Labels().WindowLabels(ctx, "fraud", t0, t0.Add(time.Minute)))
	call(s.Labels().ChangedPerformanceWindows(ctx, time.Minute, t0.Add(-time.Hour), t0.Add(-24*time.Hour)))
	call(s.Labels().LabelAccounts(ctx, t0.Add(-time.Hour), 7*24*time.Hour))
	for _, src := range []string{alerting.SourceDrift, alerting.SourceModelWindows, alerting.SourceFeatureWindows, alerting.SourcePerformance} {
		call(s.Alerts().RecentMetrics(ctx, time.Minute, t0.Add(-time.Hour), t0.Add(time.Hour), map[string]bool{src: true}, "v1"))
	}
	call(s.Alerts().LastSeen(ctx))
	call(s.Labels().PerformanceStates(ctx, "fraud", "*", "", t0, t0.Add(time.Hour)))
	call(s.Labels().LastPerformanceWrite(ctx))
	call(s.Alerts().LoadAlertStates(ctx))
	call(s.Outbox().Pending(ctx))
	call(nil, s.Outbox().Save(ctx, webhookDelivery()))
	call(s.Outbox().Known(ctx, "hook", []string{"a1", "b2"}))
	for i, err := range calls {
		if !errors.Is(err, errRecorded) {
			t.Fatalf("call %d: %v, want the recorded error", i, err)
		}
	}

	var in strings.Builder
	add := func(sql string) { in.WriteString(sql + "\n;;\n") }
	add("CREATE DATABASE IF NOT EXISTS vigil")
	for _, st := range ddl.Migrations(s.version, ddl.Options{}) {
		add(st.SQL)
	}
	add(`INSERT INTO vigil.vigil_events (event_id, model, model_version, event_time, pred_score, segment_keys, segment_values, topic, kafka_partition, kafka_offset, ingested_at)
SELECT 'e1', 'fraud', 'v1', '2099-03-14 12:00:01.250', 0.9, ['region'], ['eu'], 't', 0, 1, '2099-03-14 12:00:02'`)
	add(`INSERT INTO vigil.vigil_labels (model, event_id, label_time, has_class, label_class, has_value, label_value, topic, kafka_partition, kafka_offset, kafka_row, received_at)
SELECT 'fraud', 'e1', '2099-03-14 15:00:00.500', 0, '', 1, 1, 'l', 0, 3, 0, '2099-03-14 15:00:01'`)
	for _, q := range rec.queries {
		add(q)
	}
	cmd := exec.Command(python, "../../deployments/local/chdb_exec.py")
	cmd.Stdin = strings.NewReader(in.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chdb_exec.py: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	// The sample prediction's window (minute 67952880) changed since an hour
	// before, its label joins it, and the label accounting matches it.
	for _, want := range []string{"fraud\t67952880", "fraud\t1\t1\t0\t1\t0\t0", "e1\tv1\t2099-03-14 12:00:01.250"} {
		if !strings.Contains(out, want) {
			t.Errorf("chDB output lacks %q:\n%s", want, out)
		}
	}
	if len(rec.queries) != len(calls) {
		t.Errorf("%d queries recorded for %d calls", len(rec.queries), len(calls))
	}
}

func webhookDelivery() webhook.Delivery {
	return webhook.Delivery{ID: "n1", Receiver: "hook", CreatedAt: time.Date(2099, 3, 14, 12, 0, 0, 0, time.UTC)}
}
