package observe

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_test_things_total", Help: "things"})
	reg.MustRegister(c)
	c.Add(3)
	s := NewServer("127.0.0.1:0", reg, nil, zerolog.Nop())
	var broken error
	s.Ready("sink", func(context.Context) error { return broken })
	s.ReadyDetail("processor", func(context.Context) (string, error) { return "standby member of generation 3", nil })
	s.Handle("GET /extra", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "mounted") }))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr()

	cases := []struct {
		name, path string
		before     func()
		status     int
		contains   string
	}{
		{"metrics", "/metrics", nil, 200, "vigil_test_things_total 3"},
		{"go runtime", "/metrics", nil, 200, "go_goroutines"},
		{"health", "/healthz", nil, 200, `"ok"`},
		{"ready", "/readyz", nil, 200, `{"checks":{"processor":"standby member of generation 3","sink":"ok"},"status":"ready"}`},
		{"not ready", "/readyz", func() { broken = errors.New("cannot reach ClickHouse") }, 503, `"failing":{"sink":"cannot reach ClickHouse"}`},
		{"not ready names only the failing", "/readyz", nil, 503, `"checks":{"processor":"standby member of generation 3","sink":"failing"}`},
		{"mounted", "/extra", nil, 200, "mounted"},
		{"unknown", "/nothing", nil, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			status, body := get(t, base+tc.path)
			if status != tc.status || !strings.Contains(body, tc.contains) {
				t.Fatalf("GET %s = %d %q, want %d containing %q", tc.path, status, body, tc.status, tc.contains)
			}
		})
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal("second Shutdown:", err)
	}
}

func TestShutdownWithoutStart(t *testing.T) {
	if err := NewServer("127.0.0.1:0", NewRegistry(), nil, zerolog.Nop()).Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestJobs(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	j, err := NewJobs(reg, "drift", "alerts")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		job, result string
	}{{"drift", JobOK}, {"drift", JobOK}, {"drift", JobError}, {"alerts", JobSkipped}, {"alerts", JobSkipped}, {"alerts", JobOK}} {
		j.Observe(o.job, o.result, 30*time.Millisecond)
	}
	want := `
# HELP vigil_job_runs_total Passes of the periodic jobs by result: ok, error (retried at the next tick), skipped (this process does not lead the group).
# TYPE vigil_job_runs_total counter
vigil_job_runs_total{job="alerts",result="error"} 0
vigil_job_runs_total{job="alerts",result="ok"} 1
vigil_job_runs_total{job="alerts",result="skipped"} 2
vigil_job_runs_total{job="drift",result="error"} 1
vigil_job_runs_total{job="drift",result="ok"} 2
vigil_job_runs_total{job="drift",result="skipped"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_job_runs_total"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() == "vigil_job_duration_seconds" {
			for _, m := range mf.GetMetric() {
				counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if counts["drift"] != 3 || counts["alerts"] != 1 {
		t.Errorf("duration observations %v, want drift 3 (skipped passes are not timed) and alerts 1", counts)
	}
}
