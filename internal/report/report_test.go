package report_test

import (
	"bytes"
	"context"
	"encoding/json"
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
