package observe

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
		{"ready", "/readyz", nil, 200, `"ready"`},
		{"not ready", "/readyz", func() { broken = errors.New("cannot reach ClickHouse") }, 503, `"sink":"cannot reach ClickHouse"`},
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
