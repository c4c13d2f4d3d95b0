package clickhouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/processors/reference"
)

// testReference builds a profile of a small CSV file whose amounts depend
// on seed.
func testReference(t *testing.T, model, version string, id uint64, seed int) *reference.Profile {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("amount,country,is_new,prediction_score\n")
	for i := range 50 {
		fmt.Fprintf(&b, "%d.5,%s,%v,0.%d\n", i*seed, []string{"DE", "FR", "US"}[i%3], i%4 == 0, i%10)
	}
	path := filepath.Join(t.TempDir(), "ref.csv")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 26, 10, 0, seed, 123456000, time.UTC)
	p, err := reference.BuildFromFile(context.Background(), path,
		reference.Meta{Model: model, ModelVersion: version, ID: id, CreatedAt: created}, reference.ReadOptions{}, reference.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func encoded(t *testing.T, p *reference.Profile) []byte {
	t.Helper()
	data, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestReferencesIntegration(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)

	none, err := s.References().LatestReferences(ctx)
	if err != nil || len(none) != 0 {
		t.Fatalf("LatestReferences of an empty table = %v, %v", none, err)
	}
	old := testReference(t, "fraud", "3", 100, 1)
	newer := testReference(t, "fraud", "3", 200, 2)
	v4 := testReference(t, "fraud", "4", 150, 3)
	churn := testReference(t, "churn", "", 50, 4)
	// Written out of id order, and one twice: the largest id wins, the
	// rewrite replaces.
	for _, p := range []*reference.Profile{newer, old, v4, churn, newer} {
		if err := s.References().WriteReference(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	latest, err := s.References().LatestReferences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]*reference.Profile{{"fraud", "3"}: newer, {"fraud", "4"}: v4, {"churn", ""}: churn}
	if len(latest) != len(want) {
		t.Fatalf("%d references, want %d: %v", len(latest), len(want), latest)
	}
	for k, w := range want {
		got := latest[k]
		if got == nil {
			t.Fatalf("no reference for %v", k)
		}
		if !bytes.Equal(encoded(t, got), encoded(t, w)) {
			t.Errorf("%v: read back reference %d differs from the one written (%d)", k, got.ID, w.ID)
		}
		if !got.CreatedAt.Equal(w.CreatedAt) {
			t.Errorf("%v: created at %v, want %v (to the microsecond)", k, got.CreatedAt, w.CreatedAt)
		}
	}
	if f := latest[[2]string{"fraud", "3"}].Feature("amount"); f == nil || len(f.Edges) == 0 || !f.Exact {
		t.Errorf("amount of the latest reference = %+v", f)
	}

	list, err := s.References().ListReferences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range list {
		got = append(got, fmt.Sprintf("%s/%s#%d %d rows %s %s", m.Model, m.ModelVersion, m.ID, m.Rows, m.Source[len(m.Source)-7:], m.CreatedAt.Format(time.TimeOnly)))
	}
	wantList := []string{
		"churn/#50 50 rows ref.csv 10:00:04",
		"fraud/3#100 50 rows ref.csv 10:00:01",
		"fraud/3#200 50 rows ref.csv 10:00:02",
		"fraud/4#150 50 rows ref.csv 10:00:03",
	}
	if fmt.Sprint(got) != fmt.Sprint(wantList) {
		t.Fatalf("ListReferences =\n%q\nwant\n%q", got, wantList)
	}

	// The table answers plain SQL.
	var n uint64
	var features []string
	if err := s.Conn().QueryRow(ctx, fmt.Sprintf("SELECT count(), any(features) FROM %s.vigil_references FINAL WHERE model = 'fraud'", s.Database())).Scan(&n, &features); err != nil {
		t.Fatal(err)
	}
	if n != 3 || fmt.Sprint(features) != "[__prediction_score amount country is_new]" {
		t.Errorf("SQL: %d rows, features %v", n, features)
	}

	// A row whose profile does not decode is left out; the others load.
	b, err := s.Conn().PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.vigil_references (model, model_version, reference_id, created_at, source, rows, features, profile)", s.Database()))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("fraud", "4", uint64(999), time.Now().UTC(), "future", uint64(1), []string{}, "VREF\x09"); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	latest, err = s.References().LatestReferences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if latest[[2]string{"fraud", "4"}] != nil || latest[[2]string{"fraud", "3"}] == nil || len(latest) != 2 {
		t.Errorf("after a corrupt row: %v", latest)
	}
}

func TestWriteReferenceRejects(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	for _, p := range []*reference.Profile{nil, {}, {Meta: reference.Meta{Model: "m"}}} {
		if err := s.References().WriteReference(ctx, p); !errors.Is(err, ErrBadInput) {
			t.Errorf("WriteReference(%v) = %v, want ErrBadInput", p, err)
		}
	}
}
