package app

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/testenv"
)

// TestProcessServesUI: the HTTP server of `vigil process` serves the UI at
// /ui/ beside /metrics, behind the UI's tokens.
func TestProcessServesUI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer http.DefaultClient.CloseIdleConnections()
	cfg := testConfig(t, testenv.Kafka(t))
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.UITokens = filepath.Join(t.TempDir(), "ui-tokens.yaml")
	if err := os.WriteFile(cfg.UITokens, []byte("tokens:\n  - {token: ui-secret, name: ops}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := Start(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.HTTP().Addr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, _ := get("/ui/", ""); status != http.StatusUnauthorized {
		t.Errorf("/ui/ without a token: %d, want 401", status)
	}
	if status, body := get("/ui/", "ui-secret"); status != http.StatusOK || !strings.Contains(body, "Vigil: models") {
		t.Errorf("/ui/ with the token: %d %.200s", status, body)
	}
	if status, _ := get("/metrics", ""); status != http.StatusOK {
		t.Errorf("/metrics: %d, want 200 (the UI's tokens guard /ui/ only)", status)
	}
}
