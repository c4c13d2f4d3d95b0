// Package demo is `vigil demo`: a simulated model service (a fraud
// classifier whose input "amount" shifts for a stretch of windows) sent
// through the whole stack of internal/app on the real Kafka and ClickHouse,
// with delayed labels, stragglers, a malformed message and two alert rules
// delivered to receivers the demo serves itself; it prints what Vigil
// stored. Nothing here is used by `vigil process`.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/app"
	"github.com/vigil-ml/vigil/internal/tableprint"
	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/multivariate"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// Model is the simulated model's name.
const Model = "fraud-demo"

// Config configures a demo run.
type Config struct {
	// App is the stack to run. The demo computes performance once at the
	// end, so App.Performance.Interval is best 0.
	App app.Config
	// Run names this run (a time stamp): the model version is "demo-"+Run.
	Run string
	// Windows of simulated traffic (the shift starts half-way) and
	// predictions per window.
	Windows, EventsPerWindow int
	// KeepTopics leaves the run's topics in place (the user named them);
	// otherwise they are deleted at the end.
	KeepTopics bool
	// Report is the HTML report the demo ends by writing (vigil report);
	// "": vigil-demo-<Run>.html in the temp folder.
	Report string
}

// Run runs the demo and prints its tables to out.
func Run(ctx context.Context, out io.Writer, cfg Config, log zerolog.Logger) error {
	began := time.Now().UTC()
	proc, labelCfg := cfg.App.Processor.WithDefaults(), cfg.App.Labels.WithDefaults()
	if !cfg.KeepTopics {
		defer deleteTopics(proc.Brokers, []string{proc.Topic, proc.DeadLetterTopic, labelCfg.Topic, labelCfg.DeadLetterTopic}, log)
	}

	a, err := app.Start(ctx, cfg.App, log)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = a.Shutdown(context.Background())
		}
	}()
	if srv := a.HTTP(); srv != nil {
		base := "http://" + srv.Addr()
		if cfg.App.HTTP.TLSCert != "" {
			base = "https://" + srv.Addr()
		}
		fmt.Fprintf(out, "While the demo runs, its processor serves %s/metrics, %s/readyz and the UI at %s/ui/\n", base, base, base)
	}

	windows, perWindow := cfg.Windows, cfg.EventsPerWindow
	size := proc.Window.Size
	// Simulated event time: the last `windows` whole windows before now.
	start := time.Now().UTC().Truncate(size).Add(-time.Duration(windows) * size)
	model := &demoModel{rng: rand.New(rand.NewPCG(1, 2)), version: "demo-" + cfg.Run}
	shiftFrom, shiftTo := windows/2, windows*3/4 // the shifted windows: [from, to)

	// The model's training data, as its team would have it: 5000 events of
	// the unshifted distribution, profiled into the reference drift is
	// measured against.
	ref, err := demoReference(model, start)
	if err != nil {
		return err
	}
	if err := a.Sink().References().WriteReference(ctx, ref); err != nil {
		return err
	}
	if err := a.RefreshModels(ctx); err != nil { // score every event with the reference's PCA
		return err
	}

	prod, err := ingest.NewProducer(proc.Brokers, proc.Topic, ingest.WithLabelTopic(labelCfg.Topic),
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
		schemas.ValueLabel("no-such-prediction-1", Model, 1, start),
		schemas.ValueLabel("no-such-prediction-2", Model, 0, start))
	for _, l := range labels {
		if err := prod.RecordLabel(ctx, l); err != nil {
			return fmt.Errorf("record label: %w", err)
		}
	}
	if err := prod.Close(ctx); err != nil {
		return fmt.Errorf("deliver simulated events: %w", err)
	}
	if err := sendMalformed(ctx, proc.Brokers, proc.Topic); err != nil {
		return err
	}

	// Wait until ClickHouse holds checkpoints up to the end of the topic
	// (everything sent, and any backlog left by an earlier run, is
	// processed) and every label.
	end, err := topicEnd(ctx, proc.Brokers, proc.Topic)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, func() bool {
		n, err := a.Sink().Windows().CheckpointedOffsets(ctx, proc.Group, proc.Topic)
		if err != nil || n < end {
			return false
		}
		l, err := a.Sink().Labels().StoredLabels(ctx, labelCfg.Topic)
		return err == nil && l >= uint64(len(labels))
	}); err != nil {
		return fmt.Errorf("wait for the processor: %w", err)
	}
	stopped = true
	if err := a.Shutdown(context.Background()); err != nil { // final checkpoint: every state is in ClickHouse
		return err
	}
	sink, err := clickhouse.New(cfg.App.Sink, zerolog.Nop())
	if err != nil {
		return err
	}
	if err := sink.Start(ctx); err != nil {
		return err
	}
	defer sink.Shutdown(context.Background())
	db := sink.Database()
	end2 := start.Add(time.Duration(windows) * size)
	if err := printWindowTable(ctx, out, sink, model.version, start, end2, proc.DeadLetterTopic); err != nil {
		return err
	}
	refs, err := sink.References().LatestReferences(ctx)
	if err != nil {
		return err
	}
	buckets, err := drift.Buckets(ctx, sink.Windows(), refs, cfg.App.Drift.Options, drift.BucketQuery{Model: Model, Version: model.version, By: "*", From: start, To: end2})
	if err != nil {
		return err
	}
	if err := sink.Windows().WriteDrift(ctx, buckets); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nDrift against the reference built from the model's training sample (Evidently's default method and threshold per feature; from %s.vigil_drift):\n\n", db)
	if err := printDrift(out, buckets); err != nil {
		return err
	}
	mv, err := multivariate.Windows(ctx, sink.Windows(), refs[[2]string{Model, model.version}], start, end2)
	if err != nil {
		return err
	}
	if err := sink.Windows().WriteMultivariate(ctx, mv); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nMultivariate drift: the mean PCA reconstruction error of each window's events (NannyML's method; from %s.vigil_multivariate_drift):\n\n", db)
	if err := printMultivariate(out, mv); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nDrift of amount by region (segment states kept with --segment-keys region):\n\n")
	if err := printDriftByRegion(out, buckets); err != nil {
		return err
	}

	// Performance: the job `vigil process` runs every --performance-interval,
	// once, now that every label is in.
	if _, err := performance.NewJob(sink.Labels(), cfg.App.Performance.Job, log).RunOnce(ctx, time.Now()); err != nil {
		return err
	}
	perf, err := sink.Labels().PerformanceStates(ctx, Model, model.version, "", start, end2)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nPerformance per prediction window, from the labels that came 5-60 minutes later (from %s.vigil_performance):\n\n", db)
	tableprint.Performance(out, perf)
	acc, err := sink.Labels().LabelAccounts(ctx, began, cfg.App.Performance.Job.Horizon) // this run's labels
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nLabels received (vigil query labels):\n\n")
	tableprint.LabelAccounts(out, acc)

	if err := runAlerts(ctx, out, sink, cfg.App, log, start, windows, model.version); err != nil {
		return err
	}
	return writeReport(ctx, out, sink, cfg, model.version, start, end2)
}

// writeReport writes the run's report (what `vigil report` writes) and
// prints its path.
func writeReport(ctx context.Context, out io.Writer, sink *clickhouse.Sink, cfg Config, version string, from, to time.Time) error {
	path := cfg.Report
	if path == "" {
		path = filepath.Join(os.TempDir(), "vigil-demo-"+cfg.Run+".html")
	}
	r, size, err := app.WriteReport(ctx, sink, app.ReportQuery{Model: Model, Version: version, From: from, To: to, By: "region", Drift: cfg.App.Drift.Options}, path)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	fmt.Fprintf(out, "\nReport of the run (%d windows, %d features, drift by region, performance, alerts; %d KB, opens offline):\n\n  file://%s\n\n"+
		"The same views live: vigil ui --clickhouse-database %s, then http://%s/ui/\n", len(r.Windows), len(r.Features), size/1024, abs, sink.Database(), app.DefaultUIAddr)
	return nil
}

func sendMalformed(ctx context.Context, brokers []string, topic string) error {
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	err := w.WriteMessages(ctx, kafka.Message{Key: []byte(Model), Value: []byte(`{"event_id": "broken", "model": 42}`)})
	if err != nil {
		return fmt.Errorf("send malformed demo message: %w", err)
	}
	return nil
}

// deleteTopics deletes the run's topics.
func deleteTopics(brokers, topics []string, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
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
