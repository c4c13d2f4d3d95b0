package multivariate_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/multivariate"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// TestIntegrationMultivariate runs the whole path on the real Kafka and
// ClickHouse: a reference with a multivariate model is stored, a processor
// scoring with it (loaded from ClickHouse) counts six windows of events,
// Arrow and JSON, two of them with the correlation of x and y broken, and
// the job writes one vigil_multivariate_drift row per window: drifted
// exactly in the two broken windows, every event scored.
func TestIntegrationMultivariate(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic := "vigil-mv-" + suffix
	sink := testsink.Open(t, "vigil_mv_"+suffix, nil)
	if err := kafkatopic.Ensure(ctx, brokers, topic, 2); err != nil {
		t.Fatal(err)
	}

	// The reference, built as `vigil reference build` does.
	rng := rand.New(rand.NewPCG(21, 22))
	fitter, err := multivariate.NewProfileFitter(multivariate.FitOptions{ChunkRows: 500})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := reference.NewBuilder(reference.Meta{Model: "m", ModelVersion: "1", ID: reference.NewID(time.Now()), CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Source: "test"},
		reference.BuilderOptions{Multivariate: fitter})
	if err != nil {
		t.Fatal(err)
	}
	bb := wire.NewBatchBuilder(memory.DefaultAllocator)
	for _, e := range correlated(rng, 5000, false) {
		if err := bb.Append(&e); err != nil {
			t.Fatal(err)
		}
	}
	rec := bb.NewRecord()
	if err := rb.Add(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	ref, err := rb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.References().WriteReference(ctx, ref); err != nil {
		t.Fatal(err)
	}

	scorer := multivariate.NewScorer(sink.References(), zerolog.Nop())
	if err := scorer.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	proc, err := pipeline.New(pipeline.Config{
		Brokers: brokers, Topic: topic, Group: "g-" + suffix,
		Window:             window.Config{Size: time.Minute, AllowedLateness: time.Hour},
		CheckpointInterval: 200 * time.Millisecond,
		Observer:           scorer,
	}, sink.Windows(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer proc.Shutdown(context.Background())

	const windows, perWindow = 6, 600
	broken := map[int]bool{2: true, 3: true}
	start := time.Now().UTC().Truncate(time.Minute).Add(-(windows + 1) * time.Minute)
	arrowProd, err := ingest.NewProducer(brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	jsonProd, err := ingest.NewProducer(brokers, topic, ingest.WithEncoding(wire.EncodingJSON))
	if err != nil {
		t.Fatal(err)
	}
	for w := range windows {
		prod := arrowProd
		if w%2 == 1 {
			prod = jsonProd
		}
		for i, e := range correlated(rng, perWindow, broken[w]) {
			e.ID = "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
			e.Time = start.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/perWindow)
			if err := prod.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range []*ingest.Producer{arrowProd, jsonProd} {
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Every event counted and checkpointed.
	deadline := time.Now().Add(90 * time.Second)
	for {
		states, err := sink.Windows().WindowStates(ctx, "m", "1", start, start.Add(windows*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, st := range states {
			if st.Segment == "" {
				n += st.Events
			}
		}
		if n == windows*perWindow {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events checkpointed", n, windows*perWindow)
		}
		time.Sleep(100 * time.Millisecond)
	}

	job := multivariate.NewJob(sink.Windows(), sink.References(), time.Hour, zerolog.Nop())
	if n, err := job.RunOnce(ctx); err != nil || n != windows {
		t.Fatalf("job stored %d results, %v; want %d", n, err, windows)
	}
	m, err := multivariate.ModelOf(ref)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := sink.Conn().Query(ctx, "SELECT window_start, score, lower_threshold, upper_threshold, drifted, n, events, reference_id, components "+
		"FROM vigil_mv_"+suffix+".vigil_multivariate_drift FINAL WHERE model = 'm' AND segment = '' AND feature = '__multivariate' ORDER BY window_start")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	w := 0
	for rows.Next() {
		var (
			ws                  time.Time
			score, lower, upper float64
			drifted             uint8
			n, events, refID    uint64
			components          uint32
		)
		if err := rows.Scan(&ws, &score, &lower, &upper, &drifted, &n, &events, &refID, &components); err != nil {
			t.Fatal(err)
		}
		if !ws.Equal(start.Add(time.Duration(w) * time.Minute)) {
			t.Errorf("row %d: window %v, want %v", w, ws, start.Add(time.Duration(w)*time.Minute))
		}
		if n != perWindow || events != perWindow || refID != ref.ID || int(components) != len(m.Components) {
			t.Errorf("window %d: n %d events %d reference %d components %d", w, n, events, refID, components)
		}
		if math.Abs(upper-m.Upper) > 1e-12 || (drifted == 1) != broken[w] {
			t.Errorf("window %d: error %.4f, thresholds %.4f..%.4f, drifted %d; want drifted %v", w, score, lower, upper, drifted, broken[w])
		}
		t.Logf("window %d: mean reconstruction error %.4f (thresholds %.4f..%.4f) drifted %d", w, score, lower, upper, drifted)
		w++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if w != windows {
		t.Fatalf("%d rows, want %d", w, windows)
	}
}
