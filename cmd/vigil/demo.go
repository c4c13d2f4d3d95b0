package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/urfave/cli/v2"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

func demoFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "demo-windows", EnvVars: []string{"VIGIL_DEMO_WINDOWS"}, Value: 12, Usage: "windows of simulated traffic; the shift starts half-way"},
		&cli.IntFlag{Name: "demo-events-per-window", EnvVars: []string{"VIGIL_DEMO_EVENTS_PER_WINDOW"}, Value: 2000, Usage: "simulated predictions per window"},
	}
}

// demoModel is the simulated model service: a fraud classifier. For a
// stretch of windows in the middle, its input "amount" arrives 2.5 times too
// large (a unit change upstream, say): the model's scores inflate while the
// real fraud rate does not move, so the amount drifts and the precision
// drops; then the upstream is fixed and both recover.
type demoModel struct {
	rng     *rand.Rand
	version string
}

var demoCountries = []string{"DE", "FR", "US", "GB", "ES"}

// demoScore is the model: the fraud probability it gives an amount.
func demoScore(amount float64, isNew bool) float64 {
	return 1 / (1 + math.Exp(-(-3 + amount/25 + 1.5*boolF(isNew))))
}

// event returns the i-th prediction at t and the ground truth that will
// come later: fraud or not, drawn from the model's own probability of the
// true (unshifted) amount.
func (m *demoModel) event(i int, t time.Time, shifted bool) (schemas.Event, bool) {
	amount := math.Exp(3.5 + 0.6*m.rng.NormFloat64())
	age := float64(m.rng.IntN(2000))
	isNew := age < 30
	fraud := m.rng.Float64() < demoScore(amount, isNew)
	if shifted {
		amount *= 2.5 // the injected shift
	}
	score := demoScore(amount, isNew)
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
	}, fraud
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
	cfg.Performance.Interval = 0 // computed once below, when everything is in
	defer deleteDemoTopics(cfg, c.IsSet("topic"), log)

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
	model := &demoModel{rng: rand.New(rand.NewPCG(1, 2)), version: "demo-" + run}
	shiftFrom, shiftTo := windows/2, windows*3/4 // the shifted windows: [from, to)

	// The model's training data, as its team would have it: 5000 events of
	// the unshifted distribution, profiled into the reference drift is
	// measured against.
	ref, err := demoReference(model, start)
	if err != nil {
		return err
	}
	if err := s.sink.References().WriteReference(ctx, ref); err != nil {
		return err
	}

	prod, err := ingest.NewProducer(cfg.Kafka.Brokers, cfg.Kafka.Topic, ingest.WithLabelTopic(cfg.labelTopic()),
		ingest.WithLogger(log), ingest.WithFullPolicy(ingest.BlockWhenFull), ingest.WithBlockTimeout(time.Second))
	if err != nil {
		return err
	}
	total := windows * perWindow
	log.Info().Int("events", total).Int("windows", windows).Str("model_version", model.version).Msg("simulated model service sending predictions")
	// The ground truth (chargeback or not) of 90% of the predictions comes
	// 5 to 60 minutes after them, in an order of its own.
	var labels []schemas.Label
	for i := 0; i < total; i++ {
		w := i / perWindow
		t := start.Add(time.Duration(w)*size + time.Duration(i%perWindow)*size/time.Duration(perWindow))
		e, fraud := model.event(i, t, w >= shiftFrom && w < shiftTo)
		if err := prod.Record(ctx, e); err != nil {
			_ = prod.Close(context.Background())
			if ctx.Err() != nil {
				return errors.New("demo interrupted")
			}
			return fmt.Errorf("record event %d: %w", i, err)
		}
		if model.rng.Float64() < 0.9 {
			delay := 5*time.Minute + time.Duration(model.rng.Float64()*float64(55*time.Minute))
			labels = append(labels, schemas.ValueLabel(e.ID, e.Model, boolF(fraud), t.Add(delay)))
		}
	}
	// A few stragglers from the first window, far too late to count, and one
	// malformed message: both are recorded, not lost.
	const stragglers = 5
	for i := 0; i < stragglers; i++ {
		e, _ := model.event(total+i, start.Add(time.Second), false)
		if err := prod.Record(ctx, e); err != nil {
			return fmt.Errorf("record late event: %w", err)
		}
	}
	// Labels arrive in any order; two are sent twice and two are for
	// predictions Vigil never saw: counted, not lost.
	model.rng.Shuffle(len(labels), func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
	labels = append(labels, labels[0], labels[1],
		schemas.ValueLabel("no-such-prediction-1", "fraud-demo", 1, start),
		schemas.ValueLabel("no-such-prediction-2", "fraud-demo", 0, start))
	for _, l := range labels {
		if err := prod.RecordLabel(ctx, l); err != nil {
			return fmt.Errorf("record label: %w", err)
		}
	}
	if err := prod.Close(ctx); err != nil {
		return fmt.Errorf("deliver simulated events: %w", err)
	}
	if err := sendMalformed(ctx, cfg); err != nil {
		return err
	}

	// Wait until ClickHouse holds checkpoints up to the end of the topic
	// (everything sent, and any backlog left by an earlier run, is
	// processed) and every label.
	end, err := topicEnd(ctx, cfg.Kafka.Brokers, cfg.Kafka.Topic)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, func() bool {
		return checkpointed(ctx, s.sink, cfg) >= end && storedLabels(ctx, s.sink, cfg) >= len(labels)
	}); err != nil {
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
	out := c.App.Writer
	if err := printDemoTable(ctx, out, sink, cfg, model.version); err != nil {
		return err
	}
	refs, err := sink.References().LatestReferences(ctx)
	if err != nil {
		return err
	}
	end2 := start.Add(time.Duration(windows) * size)
	buckets, err := drift.Buckets(ctx, sink.Windows(), refs, cfg.driftOptions(), drift.BucketQuery{Model: "fraud-demo", Version: model.version, By: "*", From: start, To: end2})
	if err != nil {
		return err
	}
	if err := sink.Windows().WriteDrift(ctx, buckets); err != nil {
		return err
	}
	if err := printDemoDrift(ctx, out, sink, cfg, model.version); err != nil {
		return err
	}
	if err := printDemoDriftByRegion(ctx, out, sink, cfg, model.version); err != nil {
		return err
	}

	// Performance: the job `vigil process` runs every --performance-interval,
	// once, now that every label is in.
	if _, err := performance.NewJob(sink.Labels(), cfg.performanceConfig(), log).RunOnce(ctx, time.Now()); err != nil {
		return err
	}
	perf, err := sink.Labels().PerformanceStates(ctx, "fraud-demo", model.version, "", start, end2)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nPerformance per prediction window, from the labels that came 5-60 minutes later (from %s.vigil_performance):\n\n", cfg.ClickHouse.Database)
	printPerformance(out, perf)
	acc, err := sink.Labels().LabelAccounts(ctx, began, cfg.Labels.Horizon) // this run's labels
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nLabels received (vigil query labels):\n\n")
	printLabelAccounts(out, acc)

	return runDemoAlerts(ctx, out, sink, cfg, log, start, windows, model.version)
}

// storedLabels counts the labels of the run's label topic in ClickHouse.
func storedLabels(ctx context.Context, sink *clickhouse.Sink, cfg Config) int {
	var n uint64
	row := sink.Conn().QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.vigil_labels WHERE topic = ?", cfg.ClickHouse.Database), cfg.labelTopic())
	if err := row.Scan(&n); err != nil {
		return -1
	}
	return int(n)
}

// demoReference profiles 5000 unshifted events, from before the demo's
// windows, as a reference built from a training file would be.
func demoReference(m *demoModel, before time.Time) (*reference.Profile, error) {
	train := &demoModel{rng: rand.New(rand.NewPCG(3, 4)), version: m.version}
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	for i := 0; i < 5000; i++ {
		e, _ := train.event(i, before.Add(-time.Hour), false)
		if err := b.Append(&e); err != nil {
			return nil, fmt.Errorf("build demo reference: %w", err)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	rb, err := reference.NewBuilder(reference.Meta{
		Model: "fraud-demo", ModelVersion: m.version, ID: reference.NewID(time.Now()),
		CreatedAt: time.Now().UTC(), Source: "demo training sample",
	}, reference.BuilderOptions{})
	if err != nil {
		return nil, err
	}
	if err := rb.Add(rec); err != nil {
		return nil, err
	}
	return rb.Finish()
}

// demoRegionQuery is the drift of amount per window and region.
const demoRegionQuery = `
SELECT window_start, groupArray(concat(segment, ' ', toString(round(score, 3)), if(drifted = 1, ' DRIFT', ' ok'))) AS regions
FROM (
    SELECT * FROM %s.vigil_drift FINAL
    WHERE model = ? AND model_version = ? AND feature = 'amount' AND segment != ''
    ORDER BY segment
)
GROUP BY window_start
ORDER BY window_start`

// printDemoDriftByRegion prints the drift of amount per region and window.
func printDemoDriftByRegion(ctx context.Context, out io.Writer, sink *clickhouse.Sink, cfg Config, version string) error {
	rows, err := sink.Conn().Query(ctx, fmt.Sprintf(demoRegionQuery, cfg.ClickHouse.Database), "fraud-demo", version)
	if err != nil {
		return fmt.Errorf("query drift by region: %w", err)
	}
	defer rows.Close()
	fmt.Fprintf(out, "\nDrift of amount by region (segment states kept with --segment-keys region):\n\n")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "window_start\tregions (segment score verdict)\t")
	for rows.Next() {
		var (
			ws      time.Time
			regions []string
		)
		if err := rows.Scan(&ws, &regions); err != nil {
			return fmt.Errorf("scan drift by region: %w", err)
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", ws.UTC().Format("2006-01-02 15:04:05"), strings.Join(regions, " | "))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read drift by region: %w", err)
	}
	return tw.Flush()
}

// demoDriftQuery is the per-window drift table; it is documented in the README.
const demoDriftQuery = `
SELECT
    window_start,
    groupArray(concat(feature, ' ', method, ' ', toString(round(score, 3)), if(drifted = 1, ' DRIFT', ' ok'))) AS features,
    any(dataset_share) AS drift_share,
    any(dataset_drifted) AS dataset_drift
FROM (
    SELECT * FROM %s.vigil_drift FINAL
    WHERE model = ? AND model_version = ? AND segment = '' AND feature IN ('amount', 'account_age_days', 'country', 'is_new_customer', '__prediction_score', '__prediction_label')
    ORDER BY feature
)
GROUP BY window_start
ORDER BY window_start`

// printDemoDrift prints, per window, the drift verdict of some features and
// of the prediction score, from vigil_drift.
func printDemoDrift(ctx context.Context, out io.Writer, sink *clickhouse.Sink, cfg Config, version string) error {
	rows, err := sink.Conn().Query(ctx, fmt.Sprintf(demoDriftQuery, cfg.ClickHouse.Database), "fraud-demo", version)
	if err != nil {
		return fmt.Errorf("query drift table: %w", err)
	}
	defer rows.Close()
	fmt.Fprintf(out, "\nDrift against the reference built from the model's training sample (Evidently's default method and threshold per feature; from %s.vigil_drift):\n\n", cfg.ClickHouse.Database)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "window_start\tfeatures (method score verdict)\tdrift_share\tdataset\t")
	for rows.Next() {
		var (
			ws       time.Time
			features []string
			share    float64
			drifted  uint8
		)
		if err := rows.Scan(&ws, &features, &share, &drifted); err != nil {
			return fmt.Errorf("scan drift table: %w", err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t\n", ws.UTC().Format("2006-01-02 15:04:05"), strings.Join(features, " | "), share, yes(drifted == 1))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read drift table: %w", err)
	}
	return tw.Flush()
}

func sendMalformed(ctx context.Context, cfg Config) error {
	w := &kafka.Writer{Addr: kafka.TCP(cfg.Kafka.Brokers...), Topic: cfg.Kafka.Topic, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	err := w.WriteMessages(ctx, kafka.Message{Key: []byte("fraud-demo"), Value: []byte(`{"event_id": "broken", "model": 42}`)})
	if err != nil {
		return fmt.Errorf("send malformed demo message: %w", err)
	}
	return nil
}

// deleteDemoTopics deletes the run's topics, unless the user named them.
func deleteDemoTopics(cfg Config, named bool, log zerolog.Logger) {
	if named {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...)}
	topics := []string{cfg.Kafka.Topic, cfg.pipelineConfig().WithDefaults().DeadLetterTopic,
		cfg.labelTopic(), cfg.labelConfig().WithDefaults().DeadLetterTopic}
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics}); err != nil {
		log.Warn().Err(err).Strs("topics", topics).Msg("delete demo topics")
	}
}

// topicEnd returns the sum over partitions of the topic's end offsets.
func topicEnd(ctx context.Context, brokers []string, topic string) (int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		return 0, fmt.Errorf("read partitions of %s: %w", topic, err)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, fmt.Errorf("read end offsets of %s: %w", topic, err)
	}
	var sum int64
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return 0, fmt.Errorf("read end offset of %s/%d: %w", topic, po.Partition, po.Error)
		}
		sum += po.LastOffset
	}
	return sum, nil
}

// checkpointed returns the sum over partitions of the processor group's
// checkpointed next offsets in ClickHouse (-1 when it cannot tell).
func checkpointed(ctx context.Context, sink *clickhouse.Sink, cfg Config) int64 {
	var n int64
	row := sink.Conn().QueryRow(ctx, fmt.Sprintf(
		"SELECT toInt64(sum(next_offset)) FROM %s.vigil_checkpoints FINAL WHERE consumer_group = ? AND topic = ?", cfg.ClickHouse.Database),
		cfg.pipelineConfig().WithDefaults().Group, cfg.Kafka.Topic)
	if err := row.Scan(&n); err != nil {
		return -1
	}
	return n
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
WHERE model = ? AND model_version = ? AND segment = ''
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
	fmt.Fprintf(out, "\n%d windows; %d late events recorded in %s.vigil_late_events; 1 malformed message sent to the dead-letter topic %s.\n",
		n, late, cfg.ClickHouse.Database, cfg.pipelineConfig().WithDefaults().DeadLetterTopic)
	return nil
}
