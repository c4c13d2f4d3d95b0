package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// runReference runs `vigil reference ARGS...` in process.
func runReference(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "vigil", Writer: &out, ErrWriter: &out, Commands: []*cli.Command{referenceCommand()}}
	err := app.Run(append([]string{"vigil", "reference"}, args...))
	return out.String(), err
}

func referenceFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "train.csv")
	body := "amount,country,zip,prediction_score\n12.5,DE,01234,0.9\n3,FR,99,0.1\n,DE,,0.4\n7,US,10115,0.7\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReferenceBuildDryRun(t *testing.T) {
	out, err := runReference(t, "build", "--model", "fraud", "--version", "3", "--column", "zip=string", "--dry-run", "--log-level", "warn", referenceFile(t))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		`of fraud version "3" built (dry run, not stored): 4 rows from`,
		"FEATURE", "__prediction_score  number  4",
		"amount              number  3      1 (25.0%)  7.5",
		`country             string  4      0`, `"DE" 50%`,
		`zip                 string  3      1 (25.0%)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{
		{"build", "--model", "fraud", "--dry-run"},
		{"build", "--model", "fraud", "--dry-run", "--column", "zip", referenceFile(t)},
		{"build", "--model", "fraud", "--dry-run", filepath.Join(t.TempDir(), "x.xlsx")},
		{"build", "--version", "3", referenceFile(t)},
	} {
		if _, err := runReference(t, args...); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
}

func TestReferenceCLIIntegration(t *testing.T) {
	addr := testenv.ClickHouse(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	db := "vigil_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		conn, err := ch.Open(&ch.Options{Addr: []string{addr}, Protocol: ch.Native})
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop %s: %v", db, err)
		}
	})
	flags := []string{"--clickhouse", testenv.ClickHouse(t), "--clickhouse-database", db, "--log-level", "warn"}
	file := referenceFile(t)
	for range 2 {
		out, err := runReference(t, append(append([]string{"build", "--model", "fraud", "--version", "3"}, flags...), file)...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(out, "stored: 4 rows") {
			t.Fatalf("build output:\n%s", out)
		}
	}
	out, err := runReference(t, append([]string{"list"}, flags...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	row := regexp.MustCompile(`^fraud\s+3\s+\d+\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+4\s+\S*train\.csv\s*(yes)?$`)
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "MODEL") || !row.MatchString(lines[1]) || !row.MatchString(lines[2]) ||
		strings.HasSuffix(lines[1], "yes") || !strings.HasSuffix(lines[2], "yes") {
		t.Fatalf("list output:\n%s", out)
	}
}

// TestReferenceFromProductionIntegration stores window states in ClickHouse
// (two partitions per window), builds references from them with
// `vigil reference build --from-production` and checks the stored bins and
// quantiles: those of the file Builder on the same events while the windows
// hold at most stats.ExactCap values together, a KLL summary beyond.
func TestReferenceFromProductionIntegration(t *testing.T) {
	ctx := context.Background()
	sink, db := startTestSink(t, "vigil_refprod")

	rng := mrand.New(mrand.NewPCG(5, 6))
	hour := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	// store checkpoints minutes windows of per events of model, each split
	// over two partitions, and returns the events.
	store := func(model string, minutes, per int) []schemas.Event {
		var (
			parts [2][]*stats.WindowState
			evs   []schemas.Event
		)
		for m := range minutes {
			start := hour.Add(time.Duration(m) * time.Minute)
			for i := range per {
				e := schemas.Event{ID: strconv.Itoa(m*per + i), Model: model, ModelVersion: "1", Time: start.Add(time.Duration(i) * time.Millisecond),
					Features: []schemas.Feature{
						schemas.Num("x", math.Round(rng.NormFloat64()*1000)/100+0),
						schemas.Str("c", []string{"a", "b"}[rng.IntN(2)]),
					},
					Prediction: schemas.Score(0.5)}
				if err := b.Append(&e); err != nil {
					t.Fatal(err)
				}
				evs = append(evs, e)
			}
			rec := b.NewRecord()
			for p, rows := range [2][2]int{{0, per / 3}, {per / 3, per}} {
				st := stats.NewWindowState(stats.Key{Model: model, ModelVersion: "1", WindowStart: start.UnixMilli()}, start.Add(time.Minute).UnixMilli())
				st.AddRange(rec, rows[0], rows[1])
				st.Final, st.LastOffset = true, int64(m)
				parts[p] = append(parts[p], st)
			}
			rec.Release()
		}
		for p := range parts {
			if err := sink.Windows().Checkpoint(ctx, pipeline.Source{Group: "g", Topic: model, Partition: p}, nil, nil, parts[p], int64(minutes), 0, nil); err != nil {
				t.Fatal(err)
			}
		}
		return evs
	}
	small := store("small", 3, 500) // 1500 values: exact
	store("big", 5, 1000)           // 5000 values: sketched

	flags := []string{"--clickhouse", testenv.ClickHouse(t), "--clickhouse-database", db, "--log-level", "warn"}
	from, to := hour.Format(time.RFC3339), hour.Add(time.Hour).Format(time.RFC3339)
	for _, model := range []string{"small", "big"} {
		out, err := runReference(t, append([]string{"build", "--model", model, "--version", "1", "--from-production", "--from", from, "--to", to}, flags...)...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(out, "stored: ") || !strings.Contains(out, "from production:2026-05-01T10:00:00Z..") ||
			!regexp.MustCompile(`\nx\s+number\s+\d+\s+0\s+\S+\s+\S+\s+\S+\s+\S+\s+10 bins, (exact|5000) quantiles`).MatchString(out) {
			t.Errorf("build output:\n%s", out)
		}
	}
	refs, err := sink.References().LatestReferences(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Exact: the file Builder's bins and quantiles.
	rb, err := reference.NewBuilder(reference.Meta{Model: "small", ModelVersion: "1"}, reference.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range small {
		if err := b.Append(&small[i]); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecord()
	if err := rb.Add(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	want, err := rb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	p := refs[[2]string{"small", "1"}]
	if p == nil || p.Rows != 1500 || p.Source != "production:2026-05-01T10:00:00Z..2026-05-01T10:03:00Z" {
		t.Fatalf("stored reference of small: %+v", p)
	}
	got, w := p.Feature("x"), want.Feature("x")
	if !got.Exact || got.Count != 1500 || !slices.Equal(got.Edges, w.Edges) || !slices.Equal(got.Hist, w.Hist) || !slices.Equal(got.Quantiles, w.Quantiles) {
		t.Errorf("x from production: edges %v hist %v, %d quantiles (exact %v)\nfrom the file Builder: edges %v hist %v, %d quantiles",
			got.Edges, got.Hist, len(got.Quantiles), got.Exact, w.Edges, w.Hist, len(w.Quantiles))
	}

	// Sketched: a summary of min(5000, QuantileSummarySize) values between
	// min and max.
	p = refs[[2]string{"big", "1"}]
	if p == nil || p.Rows != 5000 {
		t.Fatalf("stored reference of big: %+v", p)
	}
	x := p.Feature("x")
	var sum uint64
	for _, c := range x.Hist {
		sum += c
	}
	if x.Exact || x.Count != 5000 || len(x.Quantiles) != min(5000, reference.QuantileSummarySize) || x.Quantiles[len(x.Quantiles)-1] != x.Max ||
		len(x.Edges) < 2 || x.Edges[0] != x.Min || x.Edges[len(x.Edges)-1] != x.Max || sum != 5000 {
		t.Errorf("x of big: exact %v, count %d, %d quantiles, edges %v (min %v, max %v), hist %v", x.Exact, x.Count, len(x.Quantiles), x.Edges, x.Min, x.Max, x.Hist)
	}

	// Errors.
	for _, args := range [][]string{
		{"build", "--model", "small", "--version", "1", "--from-production", "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-02T00:00:00Z"},
		{"build", "--model", "small", "--version", "2", "--from-production", "--from", from, "--to", to},
		{"build", "--model", "small", "--version", "1", "--from-production", "--from", from, "--to", to, referenceFile(t)},
		{"build", "--model", "small", "--version", "1", "--from", from, referenceFile(t)},
		{"build", "--model", "small", "--version", "1", "--from-production", "--to", to},
	} {
		out, err := runReference(t, append(args, flags...)...)
		if err == nil {
			t.Errorf("%v succeeded:\n%s", args, out)
		} else {
			t.Logf("%v: %v", args[5:], err)
		}
	}
}

// TestReferenceBuildWarnings: a reference whose prediction column is named
// score, and one whose columns match no feature of the stored production
// windows, are built with a warning that names the columns.
func TestReferenceBuildWarnings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "train.jsonl")
	if err := os.WriteFile(path, []byte(`{"amount": 1.5, "score": 0.9}`+"\n"+`{"amount": 3, "score": 0.2}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, status := runBinary(t, "reference", "build", "--model", "fraud", "--dry-run", path)
	if status != 0 {
		t.Fatalf("status %d:\n%s", status, stderr)
	}
	want := `reference of model fraud has no prediction column (prediction_score, prediction_label, prediction_value or proba.<class>): ` +
		`the drift of the model's predictions will not be computed; its columns are \"amount\", \"score\" (rename the prediction column, e.g. score to prediction_score)`
	if !strings.Contains(stderr, `"level":"warn"`) || !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks the warning %s:\n%s", want, stderr)
	}

	// Against stored production features.
	ctx := context.Background()
	sink, db := startTestSink(t, "vigil_refwarn")
	batch, err := sink.Conn().PrepareBatch(ctx, "INSERT INTO "+db+".vigil_feature_windows (model, model_version, segment, feature, window_start)")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, r := range [][2]string{{"", "amount"}, {"", "country"}, {"", "__prediction_score"}, {"region=eu", "zip"}} {
		if err := batch.Append("fraud", "3", r[0], r[1], now); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	typo := filepath.Join(t.TempDir(), "train.csv")
	if err := os.WriteFile(typo, []byte("amout,country,prediction_score\n1,DE,0.5\n2,FR,0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out, status := runBinary(t, "reference", "build", "--model", "fraud", "--version", "3", "--clickhouse", testenv.ClickHouse(t), "--clickhouse-database", db, typo)
	if status != 0 {
		t.Fatalf("status %d:\n%s", status, out)
	}
	for _, want := range []string{
		`reference columns that match no feature of model fraud version 3's production events: \"amout\" (no drift is computed for them; the events have \"__prediction_score\", \"amount\", \"country\": check the column names)`,
		`features of model fraud version 3's production events that the reference lacks: \"amount\" (no drift is computed for them)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks the warning %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "no prediction column") {
		t.Errorf("a reference with prediction_score warned about its prediction:\n%s", out)
	}
}
