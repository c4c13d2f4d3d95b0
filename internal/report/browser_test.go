package report_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/report"
	"github.com/vigil-ml/vigil/internal/testenv/fixture"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/drift"
)

// chromium finds Debian's chromium (deployments/local/chromium.sh installs
// it); outside CI the browser tests skip without it, in CI they fail.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found: install it with deployments/local/chromium.sh install")
	}
	t.Skip("chromium not found (install it with deployments/local/chromium.sh install); skipping the browser test")
	return ""
}

// browser is a headless Chromium that records what a page does wrong: a
// console error, an uncaught exception, a logged error, a request to
// anything but the allowed origin.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	allowed  []string // URL prefixes a page may load
	errs     []string
	requests int // requests seen, allowed or not
}

func newBrowser(t *testing.T, allowed ...string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	b := &browser{ctx: ctx, allowed: allowed}
	listen := func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				b.errs = append(b.errs, "console error: "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			b.errs = append(b.errs, "exception: "+ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				b.errs = append(b.errs, "log error: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			b.requests++
			ok := false
			for _, p := range b.allowed {
				ok = ok || strings.HasPrefix(ev.Request.URL, p)
			}
			if !ok {
				b.errs = append(b.errs, "request leaving the page: "+ev.Request.URL)
			}
		}
	}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Listen(ctx, listen); err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}
	return b
}

// selfCheck proves the listener hears what it must report: the page's
// own request, and a console error the test makes (then forgotten).
func (b *browser) selfCheck(t *testing.T) {
	t.Helper()
	before := len(b.problems())
	get(t, b, "console.error", chromedp.Evaluate[bool](`console.error("self-check"), true`))
	deadline := time.Now().Add(5 * time.Second)
	for len(b.problems()) == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.requests == 0 || len(b.errs) != before+1 || !strings.Contains(b.errs[before], "self-check") {
		t.Fatalf("the browser listener heard %d requests and %v: it cannot see what it must report", b.requests, b.errs[before:])
	}
	b.errs = b.errs[:before]
}

// problems returns what went wrong so far.
func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

func (b *browser) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs an action that returns a value.
func get[T any](t *testing.T, b *browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// count returns how many elements match the CSS selector.
func (b *browser) count(t *testing.T, sel string) int {
	t.Helper()
	return get(t, b, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
}

func (b *browser) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	png := get(t, b, "screenshot "+name, chromedp.FullScreenshot(100)) // quality 100: PNG
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// screenshots is the folder the browser tests leave their screenshots in
// (VIGIL_ARTIFACTS, or a new temp folder), printed for CI to collect.
func screenshots(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("VIGIL_ARTIFACTS")
	if dir != "" {
		dir = filepath.Join(dir, "report-screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "vigil-report-screenshots-"); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "browser test screenshots: %s\n", dir)
	t.Logf("screenshots: %s", dir)
	return dir
}

// TestBrowserReportAndUI opens a generated report from a file and the live
// UI in headless Chromium: every chart is drawn, the page logs no error
// and requests nothing beyond itself, the window chooser and the sortable
// table work, and model -> feature navigation with a shareable URL works.
func TestBrowserReportAndUI(t *testing.T) {
	chromium(t)
	ctx := context.Background()
	sink, _ := testsink.Start(t, "vigil_browser")
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if err := fixture.Write(ctx, sink, fixture.Demo("fraud", start)); err != nil {
		t.Fatal(err)
	}
	shots := screenshots(t)

	// The report file.
	r, err := report.Build(ctx, stores(sink), report.Query{Model: "fraud", From: start, To: start.Add(time.Hour), By: "region"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(shots, "report.html")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := report.Render(f, r); err != nil {
		t.Fatal(err)
	}
	f.Close()
	url := "file://" + file
	b := newBrowser(t, url)
	b.run(t, "open the report", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`svg[data-chart="drift-share"]`)))
	want := map[string]int{
		`svg[data-chart="events"]`: 1, `svg[data-chart="latency"]`: 1, `svg[data-chart="drift-share"]`: 1, `svg[data-chart="alerts"]`: 1,
		`svg[data-chart="drift-score"]`: 7, `svg[data-chart="distribution"]`: 7, `svg[data-chart="quality"]`: 7,
		`svg[data-chart="sparkline"]`: 7 + 2*7, `svg[data-chart="performance"]`: 1, `svg[data-chart="label-coverage"]`: 1,
		`svg[data-chart="label-delay"]`: 1, `table[data-table="confusion"] td`: 4, `svg[data-chart="segment-share"]`: 2,
		`table[data-table="features"] tbody tr`: 7, `svg[data-chart="alerts"] rect.episode`: 1,
		// amount drifts in 3 windows: 3 marks on its drift chart.
		`section[data-feature="amount"] svg[data-chart="drift-score"] circle.mark`: 3,
		// country's new category (XX) is marked.
		`section[data-feature="country"] rect.cur.new`: 1,
	}
	for sel, n := range want {
		if got := b.count(t, sel); got != n {
			t.Errorf("report: %d elements %s, want %d", got, sel, n)
		}
	}
	for _, sel := range []string{`svg[data-chart="drift-score"] polyline`, `svg[data-chart="distribution"] rect.cur`, `svg[data-chart="quality"] polyline`, `svg[data-chart="performance"] polyline`} {
		if b.count(t, sel) == 0 {
			t.Errorf("report: no %s drawn", sel)
		}
	}
	// The features table lists the drifted features first: amount leads.
	firstRow := chromedp.CSS(`table[data-table="features"] tbody tr:first-child td:first-child`)
	first := get(t, b, "first feature", chromedp.Text(firstRow))
	if first != "amount" && first != "__prediction_score" && first != "country" {
		t.Errorf("first feature row %q, want a drifted one", first)
	}
	// Choosing an unshifted window moves amount's current bars.
	heights := func() string {
		return get(t, b, "bar heights", chromedp.Evaluate[string](`Array.from(document.querySelectorAll('svg[data-feature="amount"] rect.cur[data-bin]')).map(r => r.getAttribute("height")).join(",")`))
	}
	before := heights()
	if v := get(t, b, "choose window 0", chromedp.Evaluate[string](`(s => { s.value = "0"; s.dispatchEvent(new Event("change")); return s.value })(document.querySelector('select.window-chooser[data-feature="amount"]'))`)); v != "0" {
		t.Errorf("the chooser of amount has no window 0 (value %q)", v)
	}
	if n := b.count(t, `select.window-chooser[data-feature="amount"] option`); n != 12 {
		t.Errorf("the chooser of amount offers %d windows, want 12", n)
	}
	if after := heights(); after == before {
		t.Errorf("choosing another window left amount's bars as they were (%s)", after)
	}
	// Sorting by name puts __prediction_score first.
	b.run(t, "sort by feature", chromedp.Click(chromedp.CSS(`table[data-table="features"] th[data-sort]:first-child`)))
	first = get(t, b, "first feature", chromedp.Text(firstRow))
	if first != "__prediction_score" {
		t.Errorf("sorted by feature, first row %q, want __prediction_score", first)
	}
	b.screenshot(t, shots, "report.png")
	b.selfCheck(t)
	if p := b.problems(); len(p) > 0 {
		t.Errorf("the report file: %s", strings.Join(p, "\n"))
	}

	// The live UI.
	srv := httptest.NewServer(report.Handler("/ui/", stores(sink), drift.Options{}, nil, zerolog.Nop()))
	t.Cleanup(srv.Close)
	ui := newBrowser(t, srv.URL+"/")
	ui.run(t, "open the model list", chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`a.model-link`)))
	ui.screenshot(t, shots, "ui-models.png")
	ui.run(t, "click the model", chromedp.Click(chromedp.CSS(`a.model-link`)), chromedp.WaitVisible(chromedp.CSS(`svg[data-chart="drift-share"]`)))
	loc := get(t, ui, "model page URL", chromedp.Location())
	if !strings.Contains(loc, "/ui/models/fraud?") || !strings.Contains(loc, "from=") || !strings.Contains(loc, "to=") || !strings.Contains(loc, "version=1") {
		t.Errorf("model page URL %s does not carry the range", loc)
	}
	for sel, n := range map[string]int{`svg[data-chart="events"]`: 1, `svg[data-chart="latency"]`: 1, `svg[data-chart="alerts"]`: 1,
		`svg[data-chart="performance"]`: 1, `table[data-table="features"] tbody tr`: 7, `a.feature-link`: 7} {
		if got := ui.count(t, sel); got != n {
			t.Errorf("model page: %d elements %s, want %d", got, sel, n)
		}
	}
	ui.screenshot(t, shots, "ui-model.png")
	ui.run(t, "click amount", chromedp.Click(chromedp.CSS(`tr[data-feature="amount"] a.feature-link`)),
		chromedp.WaitVisible(chromedp.CSS(`section[data-feature="amount"] svg[data-chart="drift-score"]`)))
	loc = get(t, ui, "feature page URL", chromedp.Location())
	if !strings.Contains(loc, "/ui/models/fraud/features/amount?") || !strings.Contains(loc, "from=") {
		t.Errorf("feature page URL %s", loc)
	}
	for _, sel := range []string{`svg[data-chart="drift-score"]`, `svg[data-chart="distribution"]`, `svg[data-chart="quality"]`} {
		if got := ui.count(t, sel); got != 1 {
			t.Errorf("feature page: %d %s, want 1", got, sel)
		}
	}
	ui.screenshot(t, shots, "ui-feature.png")
	// The same URL opened afresh (shared) shows the same page.
	ui.run(t, "reopen the feature URL", chromedp.Navigate(loc), chromedp.WaitVisible(chromedp.CSS(`svg[data-chart="distribution"]`)))
	// A segment's view of the feature.
	ui.run(t, "segment eu", chromedp.Navigate(loc+"&segment=region%3Deu"), chromedp.WaitVisible(chromedp.CSS(`svg[data-chart="drift-score"]`)))
	note := get(t, ui, "segment note", chromedp.Text(chromedp.CSS(`main p.note`)))
	if !strings.Contains(note, "region=eu") {
		t.Errorf("segment page note %q", note)
	}
	// The segment page charts the segment's scores, not all events'.
	var wantScores []string
	for _, seg := range r.Segments {
		for _, f := range seg.Features {
			if seg.Segment == "region=eu" && f.Name == "amount" {
				for _, v := range f.Score {
					wantScores = append(wantScores, strconv.FormatFloat(float64(v), 'g', 6, 64))
				}
			}
		}
	}
	if got := get(t, ui, "segment scores", chromedp.Evaluate[string](`JSON.parse(document.getElementById("vigil-data").textContent).Features[0].Score.join(",")`)); got != strings.Join(wantScores, ",") || got == "" {
		t.Errorf("segment page scores %s, want region=eu's %s", got, strings.Join(wantScores, ","))
	}
	ui.screenshot(t, shots, "ui-feature-segment.png")
	ui.selfCheck(t)
	if p := ui.problems(); len(p) > 0 {
		t.Errorf("the UI: %s", strings.Join(p, "\n"))
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("context canceled")
	}
}
