package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/urfave/cli/v2"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

func demoFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "demo-windows", EnvVars: []string{"VIGIL_DEMO_WINDOWS"}, Value: 12, Usage: "windows of simulated traffic; the shift starts half-way"},
		&cli.IntFlag{Name: "demo-events-per-window", EnvVars: []string{"VIGIL_DEMO_EVENTS_PER_WINDOW"}, Value: 2000, Usage: "simulated predictions per window"},
	}
}

// demoModel is the simulated model service: a fraud classifier whose input
// "amount" and whose score shift upwards half-way through.
type demoModel struct {
	rng     *rand.Rand
	version string
}

var demoCountries = []string{"DE", "FR", "US", "GB", "ES"}

func (m *demoModel) event(i int, t time.Time, shifted bool) schemas.Event {
	amount := math.Exp(3.5 + 0.6*m.rng.NormFloat64())
	if shifted {
		amount *= 2.5 // the injected shift
	}
	age := float64(m.rng.IntN(2000))
	isNew := age < 30
	score := 1 / (1 + math.Exp(-(-4 + amount/60 + boolF(isNew))))
	label := "ok"
	if score >= 0.5 {
		label = "fraud"
	}
	region := "eu"
	country := demoCountries[m.rng.IntN(len(demoCountries))]
	if country == "US" {
		region = "us"
	}
	return schemas.Event{
		ID:           m.version + "-" + strconv.Itoa(i),
		Model:        "fraud-demo",
		ModelVersion: m.version,
		Time:         t,
		Features: []schemas.Feature{
			schemas.Num("amount", amount),
			schemas.Num("account_age_days", age),
			schemas.Str("country", country),
			schemas.Flag("is_new_customer", isNew),
		},
		Prediction: schemas.Prediction{Score: score, HasScore: true, Label: label},
		Latency:    time.Duration(2+m.rng.ExpFloat64()*3) * time.Millisecond,
		Segments:   []schemas.Tag{{Key: "region", Value: region}},
	}
}

func boolF(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func runDemo(c *cli.Context) error {
	cfg, err := resolveConfig(c)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c.Context)
	defer stop()

	s, err := startStack(ctx, cfg, log)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.shutdown()
		}
	}()

	windows, perWindow := c.Int("demo-windows"), c.Int("demo-events-per-window")
	size := cfg.Window.Size
	// Simulated event time: the last `windows` whole windows before now.
	start := time.Now().UTC().Truncate(size).Add(-time.Duration(windows) * size)
	model := &demoModel{rng: rand.New(rand.NewPCG(1, 2)), version: "demo-" + time.Now().UTC().Format("20060102T150405")}

	prod, err := ingest.NewProducer(cfg.Kafka.Brokers, cfg.Kafka.Topic, ingest.WithLogger(log), ingest.WithFullPolicy(ingest.BlockWhenFull), ingest.WithBlockTimeout(time.Second))
	if err != nil {
		return err
	}
	total := windows * perWindow
	log.Info().Int("events", total).Int("windows", windows).Str("model_version", model.version).Msg("simulated model service sending predictions")
	for i := 0; i < total; i++ {
		w := i / perWindow
		t := start.Add(time.Duration(w)*size + time.Duration(i%perWindow)*size/time.Duration(perWindow))
		if err := prod.Record(ctx, model.event(i, t, w >= windows/2)); err != nil {
			_ = prod.Close(context.Background())
			if ctx.Err() != nil {
				return errors.New("demo interrupted")
			}
			return fmt.Errorf("record event %d: %w", i, err)
		}
	}
	// A few stragglers from the first window, far too late to count, and one
	// malformed message: both are recorded, not lost.
	const stragglers = 5
	for i := 0; i < stragglers; i++ {
		if err := prod.Record(ctx, model.event(total+i, start.Add(time.Second), false)); err != nil {
			return fmt.Errorf("record late event: %w", err)
		}
	}
	if err := prod.Close(ctx); err != nil {
		return fmt.Errorf("deliver simulated events: %w", err)
	}
	if err := sendMalformed(ctx, cfg); err != nil {
		return err
	}

	want := uint64(total + stragglers)
	if err := waitFor(ctx, func() bool { return s.proc.Counters.Events.Load() >= want && s.proc.Counters.Malformed.Load() >= 1 }); err != nil {
		return fmt.Errorf("wait for the processor: %w", err)
	}
	stopped = true
	if err := s.shutdown(); err != nil { // final checkpoint: every state is in ClickHouse
		return err
	}
	sink, err := clickhouse.New(cfg.sinkConfig(), zerolog.Nop())
	if err != nil {
		return err
	}
	if err := sink.Start(ctx); err != nil {
		return err
	}
	defer sink.Shutdown(context.Background())
	return printDemoTable(ctx, c.App.Writer, sink, cfg, model.version)
}

func sendMalformed(ctx context.Context, cfg Config) error {
	w := &kafka.Writer{Addr: kafka.TCP(cfg.Kafka.Brokers...), Topic: cfg.Kafka.Topic}
	defer w.Close()
	err := w.WriteMessages(ctx, kafka.Message{Key: []byte("fraud-demo"), Value: []byte(`{"event_id": "broken", "model": 42}`)})
	if err != nil {
		return fmt.Errorf("send malformed demo message: %w", err)
	}
	return nil
}

func waitFor(ctx context.Context, cond func() bool) error {
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("timed out")
		case <-tick.C:
		}
	}
	return nil
}

// demoQuery is the per-window table; it is documented in the README.
const demoQuery = `
SELECT
    window_start,
    sumIf(count, feature = 'amount') AS events,
    round(sumIf(sum, feature = 'amount') / sumIf(count, feature = 'amount'), 2) AS amount_mean,
    round(minIf(min, feature = 'amount'), 2) AS amount_min,
    round(maxIf(max, feature = 'amount'), 2) AS amount_max,
    round(sumIf(sum, feature = '__prediction_score') / sumIf(count, feature = '__prediction_score'), 3) AS score_mean
FROM %s.vigil_feature_windows FINAL
WHERE model = ? AND model_version = ?
GROUP BY window_start
ORDER BY window_start`

func printDemoTable(ctx context.Context, out io.Writer, sink *clickhouse.Sink, cfg Config, version string) error {
	rows, err := sink.Conn().Query(ctx, fmt.Sprintf(demoQuery, cfg.ClickHouse.Database), "fraud-demo", version)
	if err != nil {
		return fmt.Errorf("query window table: %w", err)
	}
	defer rows.Close()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(out, "\nPer-window statistics of model fraud-demo, version %s (from ClickHouse):\n\n", version)
	fmt.Fprintln(tw, "window_start\tevents\tamount_mean\tamount_min\tamount_max\tscore_mean\t")
	var baseline float64
	n := 0
	for rows.Next() {
		var (
			ws                      time.Time
			events                  uint64
			mean, mn, mx, scoreMean float64
		)
		if err := rows.Scan(&ws, &events, &mean, &mn, &mx, &scoreMean); err != nil {
			return fmt.Errorf("scan window table: %w", err)
		}
		if n == 0 {
			baseline = mean
		}
		mark := ""
		if mean > 1.5*baseline {
			mark = "  <- shift"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.3f\t%s\n", ws.UTC().Format("2006-01-02 15:04:05"), events, mean, mn, mx, scoreMean, mark)
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read window table: %w", err)
	}
	tw.Flush()
	var late uint64
	row := sink.Conn().QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.vigil_late_events FINAL WHERE model = ? AND model_version = ?", cfg.ClickHouse.Database), "fraud-demo", version)
	if err := row.Scan(&late); err != nil {
		return fmt.Errorf("count late events: %w", err)
	}
	fmt.Fprintf(out, "\n%d windows; %d late events recorded in %s.vigil_late_events; malformed messages go to %s.\n",
		n, late, cfg.ClickHouse.Database, cfg.pipelineConfig().WithDefaults().DeadLetterTopic)
	return nil
}
