package app

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/testenv"
)

// TestProcessReadyz: /readyz of `vigil process` on the real Kafka and
// ClickHouse answers 503 naming what is not ready until every stage is,
// then 200 with each check's state, the label consumer's among them.
func TestProcessReadyz(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer http.DefaultClient.CloseIdleConnections()
	cfg := testConfig(t, testenv.Kafka(t))
	cfg.HTTP.Addr = "127.0.0.1:0"
	a, err := New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		Status  string
		Failing map[string]string
		Checks  map[string]string
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	readyz := func() (int, answer) {
		t.Helper()
		resp, err := http.Get("http://" + a.HTTP().Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans answer
		if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, ans
	}
	var status int
	var ans answer
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if status, ans = readyz(); status == http.StatusOK {
			break
		}
		if status != http.StatusServiceUnavailable || ans.Status != "not ready" || len(ans.Failing) == 0 {
			t.Fatalf("/readyz while starting: %d %+v, want 503 naming the failing checks", status, ans)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never 200: %+v", ans)
		}
	}
	labels := cfg.Labels.WithDefaults()
	if want := "member of consumer group " + labels.Group + ", reading topic " + labels.Topic; ans.Checks["labels"] != want {
		t.Errorf("labels check %q, want %q (all: %v)", ans.Checks["labels"], want, ans.Checks)
	}
	for _, name := range []string{"startup", "clickhouse", "processor"} {
		if ans.Checks[name] == "" || ans.Checks[name] == "failing" {
			t.Errorf("check %s: %q", name, ans.Checks[name])
		}
	}
}
