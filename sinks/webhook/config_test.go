package webhook

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ml/vigil/processors/alerting"
)

// The receivers of a rules file, secrets resolved from env and file, each of
// the right type and encoding with the resolved values.
func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "pd-key")
	if err := os.WriteFile(keyFile, []byte("R0UTING\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_TEST_HOOK_URL", "http://hook.example/in")
	t.Setenv("VIGIL_TEST_HMAC", "hmac-key")
	t.Setenv("VIGIL_TEST_SLACK_URL", "https://hooks.slack.example/T/B/X")
	y := `
receivers:
  - {name: hook, type: webhook, url: env:VIGIL_TEST_HOOK_URL, secret: env:VIGIL_TEST_HMAC}
  - {name: am, type: alertmanager, url: http://am.example/hook, group_by: [model]}
  - {name: chat, type: slack, url: env:VIGIL_TEST_SLACK_URL}
  - {name: pager, type: pagerduty, routing_key: "file:` + keyFile + `", source: vigil-test}
`
	cfg, err := alerting.Load(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(nil); err != nil {
		t.Fatal(err)
	}
	rs, err := FromConfig(cfg.ReceiverConfigs)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []any{&SignedWebhook{}, &Alertmanager{}, &Slack{}, &PagerDuty{}}
	wantNames := []string{"hook", "am", "chat", "pager"}
	if len(rs) != len(wantNames) {
		t.Fatalf("%d receivers, want %d", len(rs), len(wantNames))
	}
	alert := Alert{Fingerprint: "fp", Status: StatusFiring, Model: "fraud", Metric: "psi"}
	for i, r := range rs {
		if r.Name() != wantNames[i] {
			t.Errorf("receiver %d is %q, want %q", i, r.Name(), wantNames[i])
		}
		if got, want := fmt.Sprintf("%T", r), fmt.Sprintf("%T", wantTypes[i]); got != want {
			t.Errorf("receiver %s is a %s, want %s", r.Name(), got, want)
		}
		req, err := r.Encode([]Alert{alert})
		if err != nil {
			t.Fatalf("%s: encode: %v", r.Name(), err)
		}
		if i == 0 && req.URL.String() != "http://hook.example/in" {
			t.Errorf("hook URL = %s, want the env value", req.URL)
		}
		if i == 0 && req.Header.Get(HeaderSignature) == "" {
			t.Error("hook request is not signed")
		}
		if i == 2 && req.URL.Host != "hooks.slack.example" {
			t.Errorf("slack URL host = %s", req.URL.Host)
		}
		if i == 3 {
			checkPagerDutyKey(t, req, "R0UTING")
		}
	}

	t.Run("unresolved secrets", func(t *testing.T) {
		y := `
receivers:
  - {name: hook, type: webhook, url: env:VIGIL_TEST_UNSET_URL, secret: x}
  - {name: chat, type: slack, url: "not a url"}
`
		cfg, err := alerting.Load(strings.NewReader(y))
		if err != nil {
			t.Fatal(err)
		}
		_, err = FromConfig(cfg.ReceiverConfigs)
		if err == nil {
			t.Fatal("no error")
		}
		for _, w := range []string{`build receiver "hook"`, "VIGIL_TEST_UNSET_URL", `build receiver "chat"`} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error does not mention %q:\n%v", w, err)
			}
		}
		if strings.Contains(err.Error(), "not a url") {
			t.Errorf("error reveals the secret URL: %v", err)
		}
	})
}

func checkPagerDutyKey(t *testing.T, req *http.Request, key string) {
	t.Helper()
	body, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"routing_key":"`+key+`"`) {
		t.Errorf("pagerduty body has no routing key %s: %s", key, b)
	}
}
