package main

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/internal/testenv"
)

// TestDemoBesideProcess: `vigil demo` on the real Kafka and ClickHouse
// while something (a `vigil process`, here a plain listener) holds vigil
// process's default port 127.0.0.1:9464: the demo serves on a free port of
// its own, says where, answers there while it runs, and ends with its
// drift, alerts and report.
func TestDemoBesideProcess(t *testing.T) {
	kafkaAddr, chAddr := testenv.Kafka(t), testenv.ClickHouse(t)
	if l, err := net.Listen("tcp", "127.0.0.1:9464"); err == nil {
		defer l.Close()
	} else {
		t.Logf("127.0.0.1:9464 is taken already (%v): the condition of the test", err)
	}
	db := "vigil_demo_" + strings.ReplaceAll(time.Now().UTC().Format("150405.000"), ".", "")
	openTestDatabase(t, chAddr, db)
	report := t.TempDir() + "/report.html"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.BuildVigil(t), "demo", "--kafka", kafkaAddr, "--clickhouse", chAddr, "--clickhouse-database", db,
		"--demo-windows", "8", "--demo-events-per-window", "300", "--demo-report", report, "--log-level", "warn")
	out := &watchWriter{want: regexp.MustCompile(`serves (http://127\.0\.0\.1:(\d+))/metrics`)}
	cmd.Stdout, cmd.Stderr = out, out
	began := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("vigil demo: %v\n%s", err, out.b.String())
	}
	t.Logf("vigil demo ran in %v", time.Since(began).Round(time.Millisecond))
	text := out.b.String()
	if out.url == "" {
		t.Fatalf("the demo did not say where it serves:\n%s", text)
	}
	if strings.HasSuffix(out.url, ":9464") {
		t.Errorf("the demo served on %s, vigil process's default port", out.url)
	}
	if out.status != http.StatusOK {
		t.Errorf("GET %s/metrics while the demo ran: %d (%v)", out.url, out.status, out.err)
	}
	for _, want := range []string{"Drift against the reference", "AmountDrift", "file://" + report} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output has no %q:\n%s", want, text)
		}
	}
}

// watchWriter keeps what a command prints and, the first time a line
// matches want, GETs the metrics at the URL it names (the command runs on
// while it does).
type watchWriter struct {
	want   *regexp.Regexp
	b      strings.Builder
	url    string
	status int
	err    error
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.b.Write(p)
	if w.url == "" {
		if m := w.want.FindStringSubmatch(w.b.String()); m != nil {
			w.url = m[1]
			resp, err := http.Get(w.url + "/metrics")
			if err == nil {
				w.status = resp.StatusCode
				resp.Body.Close()
			}
			w.err = err
		}
	}
	return len(p), nil
}
