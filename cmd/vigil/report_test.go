package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/internal/report"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/internal/testenv/fixture"
)

// columns splits a left-aligned tabwriter table into rows of cells, by the
// header's column starts (cells may be empty).
func columns(out string) (header []string, rows [][]string) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var starts []int
	head := []rune(lines[0]) // by runes: a header may hold "±"
	for k := 0; k < len(head); k++ {
		if head[k] != ' ' && (k == 0 || head[k-1] == ' ') {
			starts = append(starts, k)
			e := k
			for e < len(head) && head[e] != ' ' {
				e++
			}
			header = append(header, string(head[k:e]))
		}
	}
	for _, line := range lines[1:] {
		l := []rune(line)
		row := make([]string, len(starts))
		for k, s := range starts {
			e := len(l)
			if k+1 < len(starts) {
				e = min(starts[k+1], len(l))
			}
			if s < len(l) {
				row[k] = strings.TrimSpace(string(l[s:e]))
			}
		}
		rows = append(rows, row)
	}
	return header, rows
}

// reportData runs vigil report and returns the data the file embeds.
func reportData(t *testing.T, args ...string) *report.Report {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.html")
	stdout, stderr, status := runBinary(t, append([]string{"report", "-o", out}, args...)...)
	if status != 0 || strings.TrimSpace(stdout) != out {
		t.Fatalf("vigil report: status %d, stdout %q, stderr %s", status, stdout, stderr)
	}
	html, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)<script type="application/json" id="vigil-data">(.*?)</script>`).FindSubmatch(html)
	if m == nil {
		t.Fatal("the report embeds no data")
	}
	var r report.Report
	if err := json.Unmarshal(m[1], &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// six is how both commands print a number (num, and Num's JSON).
func six(n report.Num) string {
	if !n.Valid() {
		return "-"
	}
	return strconv.FormatFloat(float64(n), 'g', 6, 64)
}

func three(n report.Num) string {
	if !n.Valid() {
		return "-"
	}
	return fmt.Sprintf("%.3f", float64(n))
}

// TestReportNumbersEqualQueries: on the same stored model, the data behind
// every drift, data-quality and performance chart of `vigil report` is what
// `vigil query drift` and `vigil query performance` print for the same
// version, range and bucket size: per window, and in 5-minute buckets; the
// whole traffic and each region.
func TestReportNumbersEqualQueries(t *testing.T) {
	sink, db := startTestSink(t, "vigil_report_golden")
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if err := fixture.Write(context.Background(), sink, fixture.Demo("fraud", start)); err != nil {
		t.Fatal(err)
	}
	common := []string{"--clickhouse", testenv.ClickHouse(t), "--clickhouse-database", db, "--model", "fraud", "--version", "1",
		"--from", start.Format(time.RFC3339), "--to", start.Add(time.Hour).Format(time.RFC3339)}
	for _, every := range []string{"0s", "5m"} {
		t.Run("every="+every, func(t *testing.T) {
			args := append(append([]string(nil), common...), "--every", every)
			r := reportData(t, append(args, "--by", "region")...)
			wantBuckets := map[string]int{"0s": 12, "5m": 3}[every]
			if len(r.Windows) != wantBuckets || len(r.Features) != 7 || r.Version != "1" {
				t.Fatalf("report: %d buckets, %d features, version %q; want %d, 7, 1", len(r.Windows), len(r.Features), r.Version, wantBuckets)
			}
			checkDrift(t, r, "", args)
			for _, region := range []string{"eu", "us"} {
				checkDrift(t, r, "region="+region, append(args, "--by", "region"))
			}
			checkPerformance(t, r, args)
		})
	}
}

func checkDrift(t *testing.T, r *report.Report, segment string, args []string) {
	t.Helper()
	stdout, stderr, status := runBinary(t, append([]string{"query", "drift"}, args...)...)
	if status != 0 {
		t.Fatalf("vigil query drift: %d %s", status, stderr)
	}
	header, rows := columns(stdout)
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	windows := map[string]int{}
	for i, w := range r.Windows {
		windows[w.Format("2006-01-02 15:04:05")] = i
	}
	scores := map[string]*report.Feature{}
	for i := range r.Features {
		scores[r.Features[i].Name] = &r.Features[i]
	}
	var seg *report.Segment
	if segment != "" {
		for i := range r.Segments {
			if r.Segments[i].Segment == segment {
				seg = &r.Segments[i]
			}
		}
		if seg == nil {
			t.Fatalf("the report has no segment %s", segment)
		}
	}
	compared := 0
	for _, row := range rows {
		if row[col["segment"]] != segment {
			continue
		}
		start := row[0] + " " + row[1] // the window start's date and time split at the space
		if h := header[1]; h == "version" {
			start = row[0]
		}
		i, ok := windows[start]
		if !ok {
			t.Fatalf("query drift window %q is not in the report (%v)", start, r.Windows)
		}
		feature := row[col["feature"]]
		drift := map[bool]string{true: "DRIFT", false: "ok"}
		if feature == "(dataset)" {
			share := r.Overview.Share[i]
			if seg != nil {
				share = seg.Share[i]
			}
			if got := six(share); got != row[col["score"]] {
				t.Errorf("%s %s dataset share: report %s, query %s", segment, start, got, row[col["score"]])
			}
			compared++
			continue
		}
		if seg != nil {
			var sf *report.SegmentFeature
			for k := range seg.Features {
				if seg.Features[k].Name == feature {
					sf = &seg.Features[k]
				}
			}
			if sf == nil {
				t.Fatalf("segment %s: no feature %s in the report", segment, feature)
			}
			got := []string{sf.Method, six(sf.Score[i]), six(sf.Threshold[i]), drift[sf.Drifted[i]]}
			want := []string{row[col["method"]], row[col["score"]], row[col["threshold"]], row[col["drift"]]}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s %s %s: report %v, query %v", segment, start, feature, got, want)
			}
			compared++
			continue
		}
		f := scores[feature]
		if f == nil {
			t.Fatalf("no feature %s in the report", feature)
		}
		newCat, outOfRange := six(f.NewCategory[i]), six(f.OutOfRange[i])
		got := []string{f.Method, six(f.Score[i]), six(f.Threshold[i]), drift[f.Drifted[i]], six(f.Missing[i]), outOfRange, newCat}
		// out_of_range may carry its sketch's bound ("0.02375±0.0015"): the report charts the rate.
		oor, _, _ := strings.Cut(row[col["out_of_range"]], "±")
		want := []string{row[col["method"]], row[col["score"]], row[col["threshold"]], row[col["drift"]], row[col["missing"]], oor, row[col["new_cat"]]}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s %s: report %v, query %v", start, feature, got, want)
		}
		compared++
	}
	want := len(r.Windows) * 8 // 7 features and the dataset row per bucket
	if compared != want {
		t.Errorf("segment %q: compared %d rows, want %d", segment, compared, want)
	}
	if segment == "" {
		// The shift of windows 6-8 shows: amount drifts there and nowhere else.
		f := scores["amount"]
		for i, w := range r.Windows {
			shifted := w.Sub(r.Windows[0]) >= 6*time.Minute && w.Sub(r.Windows[0]) < 9*time.Minute
			if every := r.Every; every == "" && f.Drifted[i] != shifted {
				t.Errorf("amount at %s drifted=%v, want %v", w, f.Drifted[i], shifted)
			}
		}
	}
}

func checkPerformance(t *testing.T, r *report.Report, args []string) {
	t.Helper()
	stdout, stderr, status := runBinary(t, append([]string{"query", "performance"}, args...)...)
	if status != 0 {
		t.Fatalf("vigil query performance: %d %s", status, stderr)
	}
	p := r.Performance
	if p == nil || p.Task != "binary" {
		t.Fatalf("report performance: %+v", p)
	}
	metric := map[string][]report.Num{}
	for k, m := range p.Metrics {
		metric[m] = p.Values[k]
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines)-1 != len(p.Windows) {
		t.Fatalf("query performance: %d windows, report %d", len(lines)-1, len(p.Windows))
	}
	delay := func(n report.Num) string {
		if !n.Valid() {
			return "-"
		}
		return (time.Duration(float64(n)) * time.Second).String()
	}
	for i, l := range lines[1:] {
		// window_start (2 fields) version segment predictions labeled coverage delay_p50 accuracy precision recall f1 roc_auc ...
		f := strings.Fields(l)
		got := []string{p.Windows[i].Format("2006-01-02 15:04:05"), strconv.FormatUint(p.Predictions[i], 10), strconv.FormatUint(p.Labeled[i], 10),
			three(p.Coverage[i]), delay(p.DelayP50[i]), three(metric["accuracy"][i]), three(metric["precision"][i]), three(metric["recall"][i]),
			three(metric["f1"][i]), three(metric["roc_auc"][i])}
		want := []string{f[0] + " " + f[1], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12]}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("performance window %d: report %v, query %v", i, got, want)
		}
	}
	// The precision drop of the shifted windows shows.
	if r.Every == "" {
		low, high := math.Inf(1), math.Inf(-1)
		for i := range p.Windows {
			v := float64(metric["precision"][i])
			if i >= 6 && i < 9 {
				high = math.Max(high, v)
			} else {
				low = math.Min(low, v)
			}
		}
		if high >= low {
			t.Errorf("precision of the shifted windows (max %.3f) is not below the others' (min %.3f)", high, low)
		}
	}
}
