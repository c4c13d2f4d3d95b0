package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/sinks/webhook"
)

// runCLI runs the vigil command line with args and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"vigil"}, args...))
	return out.String(), err
}

func TestAlertsValidateCommand(t *testing.T) {
	good := writeFile(t, `
receivers:
  - {name: hook, type: webhook, url: "http://127.0.0.1:1/x", secret: k}
rules:
  - {name: A, metric: psi, features: [amount], condition: {above: 0.2}, receivers: [hook]}
`)
	out, err := runCLI(t, "alerts", "validate", good)
	if err != nil || !strings.Contains(out, "1 rules, 1 receivers ok") {
		t.Errorf("valid file: %q, %v", out, err)
	}
	bad := writeFile(t, `
receivers:
  - {name: hook, type: webhook, url: "http://127.0.0.1:1/x", secret: k}
rules:
  - {name: A, metric: psi_typo, condition: {above: 0.2}, receivers: [hook]}
  - {name: B, metric: accuracy, features: [x], condition: {below: 0.5}, receivers: [nobody]}
`)
	_, err = runCLI(t, "alerts", "validate", bad)
	if err == nil {
		t.Fatal("invalid file accepted")
	}
	for _, want := range []string{"psi_typo", "features", "nobody"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := runCLI(t, "alerts", "validate"); err == nil {
		t.Error("no file: no error")
	}
}

// `vigil alerts test` sends one signed sample notification and reports a
// receiver that refuses it.
func TestAlertsTestCommand(t *testing.T) {
	var got atomic.Int32
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := webhook.Verify("k", r.Header.Get("X-Vigil-Timestamp"), r.Header.Get("X-Vigil-Signature"), b, time.Now(), time.Minute); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		got.Add(1)
		body.Store(b)
	}))
	defer srv.Close()
	rules := writeFile(t, fmt.Sprintf(`
receivers:
  - {name: hook, type: webhook, url: "%[1]s/ok", secret: k}
  - {name: refusing, type: webhook, url: "%[1]s/refuse", secret: k}
rules:
  - {name: A, metric: psi, features: [amount], condition: {above: 0.2}, receivers: [hook]}
`, srv.URL))
	out, err := runCLI(t, "alerts", "test", "--rules", rules, "--receiver", "hook")
	if err != nil || !strings.Contains(out, "accepted") || got.Load() != 1 {
		t.Fatalf("test hook: %q, %v, %d requests", out, err, got.Load())
	}
	var msg struct {
		Alerts []webhook.Alert `json:"alerts"`
	}
	if err := json.Unmarshal(body.Load().([]byte), &msg); err != nil || len(msg.Alerts) != 1 || msg.Alerts[0].Labels["alertname"] != "VigilTest" {
		t.Errorf("sample body: %s (%v)", body.Load(), err)
	}
	if _, err := runCLI(t, "alerts", "test", "--rules", rules, "--receiver", "refusing"); err == nil {
		t.Error("a refusing receiver: no error")
	}
	if _, err := runCLI(t, "alerts", "test", "--rules", rules, "--receiver", "nope"); err == nil || !strings.Contains(err.Error(), `no receiver "nope"`) {
		t.Errorf("unknown receiver: %v", err)
	}
}

func TestConfigValidateChecksAlertRules(t *testing.T) {
	rules := writeFile(t, "rules:\n  - {name: A, metric: nope}\n")
	if _, err := runCLI(t, "config", "validate", "--alert-rules", rules); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("config validate with bad rules: %v", err)
	}
}
