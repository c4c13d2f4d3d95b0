// Command gateway is the load benchmark of `vigil gateway`'s HTTP path: it
// serves ingest/gateway's routes on a loopback TCP port, publishing through
// an ingest.Producer to the real Kafka (a fresh topic per run, deleted
// after), and drives it with a local load generator:
//
//   - latency: single-event POSTs at a fixed rate (-rate per second, open
//     loop: each request's latency counts from when it was due, so a stall
//     shows in the percentiles instead of slowing the generator down), for
//     -duration; it reports p50, p99, p99.9 and max.
//   - throughput: -concurrency clients posting NDJSON batches of -batch
//     events back to back; it reports events/s and events per CPU-second
//     of the process (server, producer and the generator share it).
//
// Usage:
//
//	go run ./benchmarks/gateway -runs 3
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/ingest/gateway"
	"github.com/vigil-ml/vigil/internal/kafkatopic"
)

func main() {
	broker := flag.String("kafka", envOr("VIGIL_KAFKA", "127.0.0.1:9092"), "Kafka broker")
	runs := flag.Int("runs", 3, "runs of each mode (the table shows each and the medians)")
	rate := flag.Int("rate", 2000, "latency mode: single-event requests per second")
	duration := flag.Duration("duration", 10*time.Second, "length of each run")
	batch := flag.Int("batch", 100, "throughput mode: events per NDJSON request")
	conc := flag.Int("concurrency", 4, "throughput mode: clients")
	flag.Parse()
	if err := run(*broker, *runs, *rate, *duration, *batch, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "gateway benchmark:", err)
		os.Exit(1)
	}
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

// rig is one gateway on a loopback port over a producer to a fresh topic.
type rig struct {
	url   string
	prod  *ingest.Producer
	srv   *http.Server
	topic string
	kafka string
}

func newRig(broker string) (*rig, error) {
	ctx := context.Background()
	topic := fmt.Sprintf("vigil-bench-gateway-%d", time.Now().UnixNano())
	if err := kafkatopic.Ensure(ctx, []string{broker}, topic, 1); err != nil {
		return nil, err
	}
	prod, err := ingest.NewProducer([]string{broker}, topic, ingest.WithFullPolicy(ingest.BlockWhenFull))
	if err != nil {
		return nil, err
	}
	h, err := gateway.New(gateway.Config{}, prod, prometheus.NewRegistry(), zerolog.Nop())
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &rig{url: "http://" + ln.Addr().String() + "/v1/events", prod: prod, srv: srv, topic: topic, kafka: broker}, nil
}

func (r *rig) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	err := r.prod.Close(ctx)
	client := &kafka.Client{Addr: kafka.TCP(r.kafka)}
	_, _ = client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{r.topic}})
	return err
}

func event(i int) string {
	return fmt.Sprintf(`{"event_id":"e-%09d","model":"fraud","model_version":"3","event_time":%d,`+
		`"features":{"f0":%d.5,"f1":1.25,"f2":3,"f3":0.001,"f4":42,"f5":7.5,"f6":-1,"f7":1e3,"country":"DE","device":"ios"},`+
		`"prediction":{"score":0.93,"label":"fraud"},"latency_ms":4.2,"segments":{"region":"eu"}}`, i, time.Now().UnixMilli(), i%1000)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func client() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute}, Timeout: 30 * time.Second}
}

func post(c *http.Client, url string, body []byte, ndjson bool) error {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	if ndjson {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

type latencyResult struct {
	requests              int
	p50, p99, p999, worst time.Duration
	cpuPerEvent           time.Duration
}

// latency sends single events at rate per second for d, open loop.
func latency(r *rig, rate int, d time.Duration) (latencyResult, error) {
	c := client()
	n := int(float64(rate) * d.Seconds())
	lat := make([]time.Duration, n)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			if err := post(c, r.url, []byte(event(i)), false); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
			lat[i] = time.Since(due)
		}(i, due)
	}
	wg.Wait()
	cpu := cpuTime() - cpu0
	if f := failed.Load(); f > 0 {
		return latencyResult{}, fmt.Errorf("%d of %d requests failed: %v", f, n, firstErr.Load())
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(n-1, int(p*float64(n)))] }
	return latencyResult{requests: n, p50: q(0.50), p99: q(0.99), p999: q(0.999), worst: lat[n-1], cpuPerEvent: cpu / time.Duration(n)}, nil
}

type throughputResult struct {
	events                  int
	perSecond, perCPUSecond float64
	requestP50, requestP99  time.Duration
}

// throughput posts NDJSON batches from conc clients for d.
func throughput(r *rig, batch, conc int, d time.Duration) (throughputResult, error) {
	c := client()
	var bodies [][]byte
	for k := 0; k < 16; k++ {
		var b bytes.Buffer
		for i := 0; i < batch; i++ {
			b.WriteString(event(k*batch + i))
			b.WriteByte('\n')
		}
		bodies = append(bodies, b.Bytes())
	}
	var mu sync.Mutex
	var lat []time.Duration
	var errs []error
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), cpuTime()
	end := start.Add(d)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []time.Duration
			for k := w; time.Now().Before(end); k++ {
				t := time.Now()
				if err := post(c, r.url, bodies[k%len(bodies)], true); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	// Until Kafka acknowledged every accepted event.
	if err := r.prod.Flush(context.Background()); err != nil {
		return throughputResult{}, err
	}
	wall, cpu := time.Since(start), cpuTime()-cpu0
	if len(errs) > 0 {
		return throughputResult{}, fmt.Errorf("%d clients failed: %v", len(errs), errs[0])
	}
	n := len(lat) * batch
	slices.Sort(lat)
	return throughputResult{events: n, perSecond: float64(n) / wall.Seconds(), perCPUSecond: float64(n) / cpu.Seconds(),
		requestP50: lat[len(lat)/2], requestP99: lat[min(len(lat)-1, len(lat)*99/100)]}, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[len(s)/2]
}

func run(broker string, runs, rate int, d time.Duration, batch, conc int) error {
	fmt.Printf("gateway benchmark: Kafka %s, %d runs of %v each; GOMAXPROCS %s\n\n", broker, runs, d, envOr("GOMAXPROCS", "(all cores)"))
	fmt.Printf("latency: single-event POST at %d/s (open loop)\n%4s %8s %9s %9s %9s %9s %12s\n", rate, "run", "requests", "p50", "p99", "p99.9", "max", "cpu/event")
	var p50s, p99s, p999s, cpus []float64
	for i := 0; i < runs; i++ {
		r, err := newRig(broker)
		if err != nil {
			return err
		}
		res, err := latency(r, rate, d)
		if cerr := r.close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Printf("%4d %8d %9s %9s %9s %9s %12s\n", i+1, res.requests, ms(res.p50), ms(res.p99), ms(res.p999), ms(res.worst), res.cpuPerEvent.Round(100*time.Nanosecond))
		p50s, p99s, p999s = append(p50s, res.p50.Seconds()), append(p99s, res.p99.Seconds()), append(p999s, res.p999.Seconds())
		cpus = append(cpus, float64(res.cpuPerEvent))
	}
	fmt.Printf("%4s %8s %9s %9s %9s %9s %12s\n\n", "med", "", ms(sec(median(p50s))), ms(sec(median(p99s))), ms(sec(median(p999s))), "", time.Duration(median(cpus)).Round(100*time.Nanosecond))

	fmt.Printf("throughput: NDJSON batches of %d, %d clients\n%4s %10s %10s %12s %10s %10s\n", batch, conc, "run", "events", "events/s", "events/cpu-s", "req p50", "req p99")
	var eps, epc []float64
	for i := 0; i < runs; i++ {
		r, err := newRig(broker)
		if err != nil {
			return err
		}
		res, err := throughput(r, batch, conc, d)
		if cerr := r.close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Printf("%4d %10d %10.0f %12.0f %10s %10s\n", i+1, res.events, res.perSecond, res.perCPUSecond, ms(res.requestP50), ms(res.requestP99))
		eps, epc = append(eps, res.perSecond), append(epc, res.perCPUSecond)
	}
	fmt.Printf("%4s %10s %10.0f %12.0f\n", "med", "", median(eps), median(epc))
	return nil
}

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func ms(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 2, 64) + "ms" }
