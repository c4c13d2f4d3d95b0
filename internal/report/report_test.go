package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/internal/report"
	"github.com/vigil-ml/vigil/internal/testenv/fixture"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

func stores(sink *clickhouse.Sink) report.Stores {
	return report.Stores{Windows: sink.Windows(), References: sink.References(), Performance: sink.Labels(), Alerts: sink.Alerts()}
}

var demoStart = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// embedded returns the data a report file embeds.
func embedded(t *testing.T, html []byte) *report.Report {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script type="application/json" id="vigil-data">(.*?)</script>`).FindSubmatch(html)
	if m == nil {
		t.Fatal("no embedded data in the report")
	}
	var r report.Report
	if err := json.Unmarshal(m[1], &r); err != nil {
		t.Fatalf("embedded data: %v", err)
	}
	return &r
}

func TestRenderDemoModel(t *testing.T) {
	ctx := context.Background()
	sink, _ := testsink.Start(t, "vigil_report")
	if err := fixture.Write(ctx, sink, fixture.Demo("fraud", demoStart)); err != nil {
		t.Fatal(err)
	}
	r, err := report.Build(ctx, stores(sink), report.Query{Model: "fraud", From: demoStart, To: demoStart.Add(time.Hour), By: "region"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := report.Render(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(os.TempDir(), "vigil-report-dev.html")
	os.WriteFile(out, buf.Bytes(), 0o644)
	t.Logf("report: %s (%d bytes)", out, buf.Len())
	got := embedded(t, buf.Bytes())
	if len(got.Windows) != 12 {
		t.Errorf("windows = %d", len(got.Windows))
	}
}

// An embedding's drift rows are features of kind vector: drifted in the
// shifted windows (every component moved by 1.5, the mean-embedding
// Euclidean distance about 1.5*sqrt(4) = 3 > 0.2), not elsewhere.
func TestReportShowsEmbeddings(t *testing.T) {
	ctx := context.Background()
	sink, _ := testsink.Start(t, "vigil_report_emb")
	spec := fixture.Demo("fraud", demoStart)
	spec.Embedding = 4
	if err := fixture.Write(ctx, sink, spec); err != nil {
		t.Fatal(err)
	}
	r, err := report.Build(ctx, stores(sink), report.Query{Model: "fraud", From: demoStart, To: demoStart.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := report.Render(&buf, r); err != nil {
		t.Fatal(err)
	}
	got := embedded(t, buf.Bytes())
	byName := map[string]report.Feature{}
	for _, f := range got.Features {
		byName[f.Name] = f
	}
	for _, name := range []string{"emb@euclidean", "emb@cosine", "emb@ratio"} {
		f, ok := byName[name]
		if !ok {
			t.Errorf("no feature %s in the report", name)
			continue
		}
		if f.Kind != "vector" || len(f.Score) != 12 {
			t.Errorf("%s: kind %q, %d scores", name, f.Kind, len(f.Score))
		}
		if !bytes.Contains(buf.Bytes(), []byte(`id="f-`+name+`"`)) {
			t.Errorf("%s: no section in the HTML", name)
		}
	}
	euc := byName["emb@euclidean"]
	for i, s := range euc.Score {
		shifted := i >= spec.ShiftFrom && i < spec.ShiftTo
		if euc.Drifted[i] != shifted {
			t.Errorf("window %d: euclidean %v, drifted %v, want %v", i, s, euc.Drifted[i], shifted)
		}
		if shifted && math.Abs(float64(s)-3) > 0.3 {
			t.Errorf("window %d: euclidean %v, want about 3", i, s)
		}
	}
	if euc.DriftedWindows != spec.ShiftTo-spec.ShiftFrom {
		t.Errorf("euclidean drifted in %d windows", euc.DriftedWindows)
	}
}
