package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/schemas"
)

// discard is a Publisher that takes everything: the handler's cost alone.
type discard struct{}

func (discard) Record(context.Context, schemas.Event) error      { return nil }
func (discard) RecordLabel(context.Context, schemas.Label) error { return nil }

// benchEvent is a 10-feature event (8 numbers, 2 strings) with a segment.
func benchEvent(i int) string {
	return fmt.Sprintf(`{"event_id":"e-%08d","model":"fraud","model_version":"3","event_time":"2026-11-26T10:00:00.123Z",`+
		`"features":{"f0":%d.5,"f1":1.25,"f2":3,"f3":0.001,"f4":42,"f5":7.5,"f6":-1,"f7":1e3,"country":"DE","device":"ios"},`+
		`"prediction":{"score":0.93,"label":"fraud"},"latency_ms":4.2,"segments":{"region":"eu"}}`, i, i)
}

// BenchmarkEvents: POST /v1/events through the mux (no network), per
// request of batch events as NDJSON, to a discard Publisher (handler only)
// or a real Producer on kfake (handler + the SDK's batching and Arrow
// encoding on its goroutines). events/s is of wall time; run with -cpu 1
// for a per-core figure (the producer's goroutines share that core).
// events/cpu-s divides by the CPU time of the whole process (getrusage:
// every goroutine, kfake's broker too, which makes the producer figure
// conservative), so it does not count the time the machine's other
// processes take.
func BenchmarkEvents(b *testing.B) {
	for _, pub := range []string{"discard", "producer"} {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("publisher=%s/batch=%d", pub, batch), func(b *testing.B) {
				var p Publisher = discard{}
				if pub == "producer" {
					c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					prod, err := ingest.NewProducer(c.ListenAddrs(), "t", ingest.WithFullPolicy(ingest.BlockWhenFull), ingest.WithBlockTimeout(time.Second))
					if err != nil {
						b.Fatal(err)
					}
					defer func() { _ = prod.Close(context.Background()) }()
					p = prod
				}
				h, err := New(Config{}, p, prometheus.NewRegistry(), zerolog.Nop())
				if err != nil {
					b.Fatal(err)
				}
				mux := http.NewServeMux()
				h.Mount(mux)
				var body strings.Builder
				for i := range batch {
					body.WriteString(benchEvent(i))
					body.WriteByte('\n')
				}
				data := []byte(body.String())
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				b.ResetTimer()
				start, cpu0 := time.Now(), cpuTime()
				for i := 0; i < b.N; i++ {
					r := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(data))
					r.Header.Set("Content-Type", "application/x-ndjson")
					w := httptest.NewRecorder()
					mux.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("status %d: %s", w.Code, w.Body.String())
					}
				}
				b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
				b.ReportMetric(float64(b.N*batch)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
			})
		}
	}
}

// cpuTime is the user + system CPU time of the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
