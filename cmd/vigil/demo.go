package main

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/internal/demo"
)

func runDemo(c *cli.Context) error {
	cfg, log, err := setup(c)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c.Context)
	defer stop()

	// The demo keeps states per region too, for drift by region.
	if !c.IsSet("segment-keys") {
		cfg.SegmentKeys = []string{"region"}
	}
	// Each run has topics and consumer groups of its own (unless --topic or
	// --group name them), so that a second run's simulated event times do
	// not meet the first run's watermark, and nothing a run leaves behind (an
	// interrupted run's backlog) holds up the next.
	began := time.Now().UTC()
	run := began.Format("20060102T150405")
	if !c.IsSet("topic") {
		cfg.Kafka.Topic = "vigil.demo." + run
	}
	if !c.IsSet("group") {
		cfg.Kafka.Group = "vigil-demo-" + run
	}
	if !c.IsSet("label-group") {
		cfg.Labels.Group = "vigil-demo-labels-" + run
	}
	cfg.Performance.Interval = 0 // computed once at the end, when everything is in
	cfg.HTTP.Addr = demoHTTPAddr(cfg.HTTP.Addr)
	return demo.Run(ctx, c.App.Writer, demo.Config{
		App: cfg.appConfig(), Run: run, Windows: cfg.Demo.Windows, EventsPerWindow: cfg.Demo.EventsPerWindow,
		KeepTopics: c.IsSet("topic"), Report: cfg.Demo.Report,
	}, log)
}

// demoHTTPAddr is where the demo's stack serves /metrics, /readyz and the
// UI: a free port unless --http-addr (or VIGIL_HTTP_ADDR, http.addr) names
// one ("off": none), so that a demo runs next to a `vigil process` on its
// default 127.0.0.1:9464. The demo prints the address it got.
func demoHTTPAddr(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}
