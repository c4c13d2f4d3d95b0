package main

// The labels end-to-end test: predictions and, hours later in event time,
// their labels (some before their predictions, some twice, some for unknown
// ids, some past the horizon) through the REAL Kafka into the vigil binary,
// killed and restarted, with every performance metric asserted from
// vigil_performance against values computed here, independently.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// perfPair is one prediction and its label as the test sent them.
type perfPair struct {
	window  int
	score   float64 // binary
	pred    string  // multiclass
	value   float64 // regression
	label   schemas.Label
	labeled bool // a label within the horizon was sent
}

// perfExpect computes the metrics of one window from the pairs sent.
type perfExpect struct {
	predictions int
	bin         []perfPair
	multi       []perfPair
	reg         []perfPair
}

func (x perfExpect) labeled() int { return len(x.bin) + len(x.multi) + len(x.reg) }

// binaryMetrics: accuracy, precision, recall, ROC AUC (pairwise, ties 1/2),
// log loss and Brier.
func binaryMetrics(ps []perfPair) map[string]float64 {
	var tp, fp, tn, fn float64
	var ll, brier float64
	for _, p := range ps {
		pos := p.label.Value == 1
		switch {
		case p.score >= 0.5 && pos:
			tp++
		case p.score >= 0.5:
			fp++
		case pos:
			fn++
		default:
			tn++
		}
		q := p.score
		y := 0.0
		if pos {
			y = 1
		} else {
			q = 1 - q
		}
		ll -= math.Log(q)
		brier += (p.score - y) * (p.score - y)
	}
	var wins, pairs float64
	for _, a := range ps {
		for _, b := range ps {
			if a.label.Value == 1 && b.label.Value == 0 {
				pairs++
				switch {
				case a.score > b.score:
					wins++
				case a.score == b.score:
					wins += 0.5
				}
			}
		}
	}
	n := float64(len(ps))
	return map[string]float64{
		"accuracy": (tp + tn) / n, "precision": tp / (tp + fp), "recall": tp / (tp + fn),
		"roc_auc": wins / pairs, "log_loss": ll / n, "brier": brier / n,
	}
}

// multiclassMetrics: accuracy and macro F1 over the union of classes.
func multiclassMetrics(ps []perfPair) map[string]float64 {
	classes := map[string]bool{}
	correct := 0.0
	for _, p := range ps {
		classes[p.pred], classes[p.label.Class] = true, true
		if p.pred == p.label.Class {
			correct++
		}
	}
	macro := 0.0
	for c := range classes {
		var tp, predicted, actual float64
		for _, p := range ps {
			if p.pred == c {
				predicted++
			}
			if p.label.Class == c {
				actual++
			}
			if p.pred == c && p.label.Class == c {
				tp++
			}
		}
		if predicted+actual > 0 {
			macro += 2 * tp / (predicted + actual)
		}
	}
	return map[string]float64{"accuracy": correct / float64(len(ps)), "macro_f1": macro / float64(len(classes))}
}

// regressionMetrics: MAE, RMSE, R2, mean error.
func regressionMetrics(ps []perfPair) map[string]float64 {
	var abs, sq, bias, mean float64
	n := float64(len(ps))
	for _, p := range ps {
		e := p.value - p.label.Value
		abs += math.Abs(e)
		sq += e * e
		bias += e
		mean += p.label.Value
	}
	mean /= n
	var tot float64
	for _, p := range ps {
		tot += (p.label.Value - mean) * (p.label.Value - mean)
	}
	return map[string]float64{"mae": abs / n, "rmse": math.Sqrt(sq / n), "r2": 1 - sq/tot, "mean_error": bias / n}
}

func TestEndToEndLabelsAndPerformance(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	chAddr := testenv.ClickHouse(t)
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	r := &e2eRun{
		t: t, bin: testenv.BuildVigil(t), logDir: t.TempDir(), kafka: brokers,
		topic: "vigil-perf-" + suffix, group: "vigil-perf-" + suffix, database: "vigil_perf_" + suffix,
	}
	r.args = []string{
		"--kafka", brokers[0], "--topic", r.topic, "--group", r.group, "--label-group", r.group + "-labels",
		"--clickhouse", chAddr, "--clickhouse-database", r.database,
		"--window", "1m", "--allowed-lateness", "1h", "--checkpoint-interval", "200ms",
		"--performance-interval", "300ms", "--label-horizon", "24h", "--drift-interval", "0",
	}
	r.conn = openTestDatabase(t, chAddr, r.database)
	for _, topic := range []string{r.topic, ingest.DefaultLabelTopic(r.topic)} {
		if err := kafkatopic.Ensure(ctx, brokers, topic, 2); err != nil {
			t.Fatal(err)
		}
	}
	arrowP, err := ingest.NewProducer(brokers, r.topic, ingest.WithLinger(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	jsonP, err := ingest.NewProducer(brokers, r.topic, ingest.WithEncoding(wire.EncodingJSON), ingest.WithLinger(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}

	// Three 1-minute windows, five hours ago: within the 24h horizon.
	const windows, perWindow = 3, 30
	base := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Hour)
	rng := rand.New(rand.NewPCG(3, 5))
	classes := []string{"cat", "dog", "eel"}
	var events []schemas.Event
	pairs := map[string]*perfPair{} // by event id
	var labels []schemas.Label
	var unknown, expired, dupes int
	for w := 0; w < windows; w++ {
		for i := 0; i < perWindow; i++ {
			at := base.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Second)
			lt := at.Add(2*time.Hour + time.Duration(rng.IntN(3600))*time.Second) // hours later
			for _, m := range []string{"pe-bin", "pe-multi", "pe-reg"} {
				id := fmt.Sprintf("%s-%d-%d", m, w, i)
				e := schemas.Event{ID: id, Model: m, ModelVersion: "v1", Time: at, Features: []schemas.Feature{schemas.Num("x", float64(i))}}
				p := &perfPair{window: w}
				switch m {
				case "pe-bin":
					p.score = math.Round(rng.Float64()*100) / 100 // ties
					e.Prediction = schemas.Score(p.score)
					y := 0.0
					if rng.Float64() < p.score*0.8+0.1 {
						y = 1
					}
					p.label = schemas.ValueLabel(id, m, y, lt)
				case "pe-multi":
					probs := []float64{rng.Float64(), rng.Float64(), rng.Float64()}
					sum := probs[0] + probs[1] + probs[2]
					var cps []schemas.ClassProbability
					best := 0
					for k := range probs {
						probs[k] /= sum
						cps = append(cps, schemas.ClassProbability{Class: classes[k], P: probs[k]})
						if probs[k] > probs[best] {
							best = k
						}
					}
					p.pred = classes[best]
					e.Prediction = schemas.Class(p.pred, cps...)
					actual := p.pred
					if rng.IntN(3) == 0 {
						actual = classes[rng.IntN(3)]
					}
					p.label = schemas.ClassLabel(id, m, actual, lt)
				case "pe-reg":
					p.value = math.Round(rng.NormFloat64()*1000) / 100
					e.Prediction = schemas.Regression(p.value)
					p.label = schemas.ValueLabel(id, m, p.value+math.Round(rng.NormFloat64()*100)/100, lt)
				}
				events = append(events, e)
				pairs[id] = p
				switch k := rng.IntN(10); {
				case k < 7: // labelled
					p.labeled = true
					labels = append(labels, p.label)
					if rng.IntN(6) == 0 { // sent twice
						labels = append(labels, p.label)
						dupes++
					}
				case k == 7 && expired < 4: // past the horizon: not in the metrics
					l := p.label
					l.Time = at.Add(30 * time.Hour)
					labels = append(labels, l)
					expired++
				}
			}
		}
	}
	for i := 0; i < 3; i++ {
		labels = append(labels, schemas.ValueLabel("nobody-"+strconv.Itoa(i), "pe-bin", 1, base))
		unknown++
	}
	rng.Shuffle(len(labels), func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
	producerFor := func(model string) *ingest.Producer {
		if model == "pe-reg" {
			return jsonP
		}
		return arrowP
	}
	sendEvents := func(keep func(e *schemas.Event) bool) {
		t.Helper()
		for i := range events {
			if keep(&events[i]) {
				if err := producerFor(events[i].Model).Record(ctx, events[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	windowOf := func(id string) int {
		if p, ok := pairs[id]; ok {
			return p.window
		}
		return -1
	}
	sendLabels := func(keep func(l *schemas.Label) bool) {
		t.Helper()
		for i := range labels {
			if keep(&labels[i]) {
				if err := producerFor(labels[i].Model).RecordLabel(ctx, labels[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	flush := func() {
		t.Helper()
		if err := arrowP.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := jsonP.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// expect returns what each (model, window) must show once the labels
	// that keep accepts are in.
	expect := func(keep func(id string) bool) map[string]map[int]*perfExpect {
		out := map[string]map[int]*perfExpect{}
		for id, p := range pairs {
			m := id[:len(id)-len(fmt.Sprintf("-%d-%d", 0, 0))]
			for _, mm := range []string{"pe-bin", "pe-multi", "pe-reg"} {
				if len(id) > len(mm) && id[:len(mm)] == mm {
					m = mm
				}
			}
			if out[m] == nil {
				out[m] = map[int]*perfExpect{}
			}
			x := out[m][p.window]
			if x == nil {
				x = &perfExpect{}
				out[m][p.window] = x
			}
			x.predictions++
			if !p.labeled || !keep(id) {
				continue
			}
			switch m {
			case "pe-bin":
				x.bin = append(x.bin, *p)
			case "pe-multi":
				x.multi = append(x.multi, *p)
			case "pe-reg":
				x.reg = append(x.reg, *p)
			}
		}
		return out
	}
	// Phase 1: predictions of windows 0 and 1, the labels of window 0.
	r.start()
	sendEvents(func(e *schemas.Event) bool { return windowOf(e.ID) < 2 })
	flush()
	sendLabels(func(l *schemas.Label) bool { return windowOf(l.EventID) == 0 })
	flush()
	phase1 := expect(func(id string) bool { return windowOf(id) == 0 })
	waitPerformance(t, r, phase1, 2)
	assertPerformance(t, r, phase1, 2)
	r.kill()

	// While the processor is down: the labels of window 2 before its
	// predictions, then its predictions, then the rest (duplicates,
	// unknown ids and expired labels among them).
	sendLabels(func(l *schemas.Label) bool { return windowOf(l.EventID) == 2 })
	flush()
	sendEvents(func(e *schemas.Event) bool { return windowOf(e.ID) == 2 })
	flush()
	sendLabels(func(l *schemas.Label) bool { w := windowOf(l.EventID); return w == 1 || w == -1 })
	if err := arrowP.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := jsonP.Close(ctx); err != nil {
		t.Fatal(err)
	}
	final := expect(func(string) bool { return true })
	r.start()
	waitPerformance(t, r, final, windows)
	assertPerformance(t, r, final, windows)
	r.stop()

	sink, err := clickhouse.New(clickhouse.Config{Addr: chAddr, Database: r.database, User: "default"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sink.Shutdown(ctx)
	acc, err := sink.Labels().LabelAccounts(ctx, base.Add(-24*time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var got clickhouse.LabelAccount
	for _, a := range acc {
		got.Messages += a.Messages
		got.Duplicates += a.Duplicates
		got.Matched += a.Matched
		got.Expired += a.Expired
		got.Unknown += a.Unknown
	}
	matched := 0
	for _, p := range pairs {
		if p.labeled {
			matched++
		}
	}
	want := clickhouse.LabelAccount{Messages: uint64(len(labels)), Duplicates: uint64(dupes), Matched: uint64(matched), Expired: uint64(expired), Unknown: uint64(unknown)}
	if got != want {
		t.Errorf("label accounts %+v, want %+v", got, want)
	}
}

// waitPerformance waits until vigil_performance shows, for the first n
// windows of every model, the expected labelled and prediction counts.
func waitPerformance(t *testing.T, r *e2eRun, want map[string]map[int]*perfExpect, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok := true
		last = ""
		for m, ws := range want {
			for w := 0; w < n; w++ {
				var labeled, predictions uint64
				err := r.conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT labeled, predictions FROM %s.vigil_performance FINAL
WHERE model = ? AND segment = '' ORDER BY window_start LIMIT 1 OFFSET %d`, r.database, w), m).Scan(&labeled, &predictions)
				if err != nil || labeled != uint64(ws[w].labeled()) || predictions != uint64(ws[w].predictions) {
					ok = false
					last += fmt.Sprintf(" %s/%d: %d/%d labelled, want %d/%d (%v);", m, w, labeled, predictions, ws[w].labeled(), ws[w].predictions, err)
				}
			}
		}
		if ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("performance never matched:%s (logs in %s)", last, r.logDir)
}

func assertPerformance(t *testing.T, r *e2eRun, want map[string]map[int]*perfExpect, n int) {
	t.Helper()
	models := slices.Sorted(func(yield func(string) bool) {
		for m := range want {
			if !yield(m) {
				return
			}
		}
	})
	for _, m := range models {
		for w := 0; w < n; w++ {
			x := want[m][w]
			var exp map[string]float64
			switch m {
			case "pe-bin":
				exp = binaryMetrics(x.bin)
			case "pe-multi":
				exp = multiclassMetrics(x.multi)
			case "pe-reg":
				exp = regressionMetrics(x.reg)
			}
			if x.labeled() == 0 {
				continue
			}
			exp["label_coverage"] = float64(x.labeled()) / float64(x.predictions)
			names := make([]string, 0, len(exp))
			for k := range exp {
				names = append(names, k)
			}
			sort.Strings(names)
			got := make([]float64, len(names))
			dst := make([]any, len(names))
			for i := range got {
				dst[i] = &got[i]
			}
			q := fmt.Sprintf("SELECT %s FROM %s.vigil_performance FINAL WHERE model = ? AND segment = '' ORDER BY window_start LIMIT 1 OFFSET %d",
				joinNames(names), r.database, w)
			if err := r.conn.QueryRow(context.Background(), q, m).Scan(dst...); err != nil {
				t.Fatalf("%s window %d: %v", m, w, err)
			}
			for i, k := range names {
				if d := math.Abs(got[i] - exp[k]); d > 1e-9*math.Max(1, math.Abs(exp[k])) || math.IsNaN(got[i]) {
					t.Errorf("%s window %d: %s = %v, want %v", m, w, k, got[i], exp[k])
				}
			}
		}
	}
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
