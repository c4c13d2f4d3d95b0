package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/app"
	"github.com/vigil-ml/vigil/internal/auth"
	"github.com/vigil-ml/vigil/internal/testenv/fixture"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/drift"
)

// TestUITokens: with a tokens file the UI answers 401 without a known
// bearer token, and a token limited to some models lists only those and
// gets 403 for the others' pages; WriteReport writes the file whole.
func TestUITokens(t *testing.T) {
	ctx := context.Background()
	sink, _ := testsink.Start(t, "vigil_ui_tokens")
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, m := range []string{"fraud", "churn"} {
		if err := fixture.Write(ctx, sink, fixture.Demo(m, start)); err != nil {
			t.Fatal(err)
		}
	}
	tokens, err := auth.Parse([]byte("tokens:\n  - {token: all-models, name: ops}\n  - {token: churn-only, name: churn-team, models: [churn]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.UIHandler(sink, drift.Options{}, tokens, zerolog.Nop()))
	t.Cleanup(srv.Close)
	get := func(token, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	page := "/ui/models/fraud?version=1&from=2026-11-26T10:00:00Z&to=2026-11-26T11:00:00Z"
	for _, tt := range []struct {
		token, path string
		status      int
		has, hasnt  string
	}{
		{"", "/ui/", http.StatusUnauthorized, "", ""},
		{"wrong", page, http.StatusUnauthorized, "", ""},
		{"all-models", "/ui/", http.StatusOK, `href="/ui/models/fraud?version=1"`, ""},
		{"all-models", page, http.StatusOK, `data-chart="drift-share"`, ""},
		{"churn-only", "/ui/", http.StatusOK, `href="/ui/models/churn?version=1"`, "/ui/models/fraud"},
		{"churn-only", page, http.StatusForbidden, "", ""},
		{"churn-only", "/ui/models/fraud/features/amount?version=1&from=2026-11-26T10:00:00Z&to=2026-11-26T11:00:00Z", http.StatusForbidden, "", ""},
		{"churn-only", strings.ReplaceAll(page, "fraud", "churn"), http.StatusOK, `data-chart="drift-share"`, ""},
	} {
		status, body := get(tt.token, tt.path)
		if status != tt.status || !strings.Contains(body, tt.has) || (tt.hasnt != "" && strings.Contains(body, tt.hasnt)) {
			t.Errorf("token %q GET %s: %d (want %d), has %q: %v, has %q: %v", tt.token, tt.path, status, tt.status,
				tt.has, strings.Contains(body, tt.has), tt.hasnt, tt.hasnt != "" && strings.Contains(body, tt.hasnt))
		}
	}
	// A page without a range redirects to its default range's URL.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ui/models/churn", nil)
	req.Header.Set("Authorization", "Bearer churn-only")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/ui/models/churn?from=2026-11-26T10%3A00%3A00Z&to=2026-11-26T10%3A12%3A00Z&version=1" {
		t.Errorf("no range: %d to %q", resp.StatusCode, loc)
	}

	out := filepath.Join(t.TempDir(), "r.html")
	r, size, err := app.WriteReport(ctx, sink, app.ReportQuery{Model: "churn", From: start, To: start.Add(time.Hour)}, out)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != size || r.Model != "churn" || len(r.Windows) != 12 {
		t.Fatalf("report file: %v %v, report of %s with %d windows", fi, err, r.Model, len(r.Windows))
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".vigil-report-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
