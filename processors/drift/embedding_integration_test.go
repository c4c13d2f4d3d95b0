package drift_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/window"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// TestIntegrationEmbeddingDrift runs the whole path on the real Kafka and
// ClickHouse: the reference of testdata/embedding is stored, the SDK sends
// two windows of events with a 12-dimensional embedding (the unshifted
// window as Arrow, the shifted one as JSON), the processor counts them and
// the drift job writes the embedding rows: Evidently's numbers for the same
// vectors, drifted in the shifted window only (the cosine distance, 0.10,
// stays below its threshold in both, as in Evidently).
func TestIntegrationEmbeddingDrift(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic := "vigil-emb-" + suffix
	db := "vigil_emb_" + suffix
	sink := testsink.Open(t, db, nil)
	if err := kafkatopic.Ensure(ctx, brokers, topic, 2); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../testdata/embedding/evidently.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev evidentlyEmbeddings
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ref := embeddingReference(t)
	ref.ID, ref.CreatedAt, ref.Source = reference.NewID(time.Now()), time.Now().UTC().Truncate(time.Microsecond), "test"
	if err := sink.References().WriteReference(ctx, ref); err != nil {
		t.Fatal(err)
	}

	proc, err := pipeline.New(pipeline.Config{
		Brokers: brokers, Topic: topic, Group: "g-" + suffix,
		Window:             window.Config{Size: time.Minute, AllowedLateness: time.Hour},
		CheckpointInterval: 200 * time.Millisecond,
	}, sink.Windows(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer proc.Shutdown(context.Background())

	names := []string{"unshifted", "shifted"}
	start := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Minute)
	total := 0
	for w, name := range names {
		var opts []ingest.Option
		if w == 1 {
			opts = append(opts, ingest.WithEncoding(wire.EncodingJSON))
		}
		prod, err := ingest.NewProducer(brokers, topic, opts...)
		if err != nil {
			t.Fatal(err)
		}
		vecs := ev.Windows[name].Vectors
		for i, v := range vecs {
			e := schemas.Event{
				ID: name + "-" + strconv.Itoa(i), Model: "ranker", ModelVersion: "1",
				Time:       start.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Minute/time.Duration(len(vecs))),
				Features:   []schemas.Feature{schemas.Vec("emb", v)},
				Prediction: schemas.Score(0.5),
			}
			if err := prod.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if err := prod.Close(ctx); err != nil {
			t.Fatal(err)
		}
		total += len(vecs)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		states, err := sink.Windows().WindowStates(ctx, "ranker", "1", start, start.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, st := range states {
			if st.Segment == "" {
				n += int(st.Events)
			}
		}
		if n == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events checkpointed", n, total)
		}
		time.Sleep(100 * time.Millisecond)
	}

	job := drift.NewJob(sink.Windows(), sink.References(), drift.Options{}, time.Hour, zerolog.Nop())
	if _, err := job.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := sink.Conn().Query(ctx, "SELECT window_start, feature, method, score, threshold, drifted, n_cur, exact, evaluated "+
		"FROM "+db+".vigil_drift FINAL WHERE model = 'ranker' AND segment = '' AND kind = 'vector' ORDER BY window_start, feature")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var (
			ws                        time.Time
			feature, method           string
			score, threshold          float64
			drifted, exact, evaluated uint8
			nCur                      uint64
		)
		if err := rows.Scan(&ws, &feature, &method, &score, &threshold, &drifted, &nCur, &exact, &evaluated); err != nil {
			t.Fatal(err)
		}
		w := int(ws.Sub(start) / time.Minute)
		if w < 0 || w >= len(names) {
			t.Fatalf("row of window %v", ws)
		}
		want := ev.Windows[names[w]]
		var exp struct {
			Score   float64
			Drifted bool
		}
		switch drift.Method(method) {
		case drift.MethodEuclidean:
			exp = want.Euclidean
		case drift.MethodCosine:
			exp = want.Cosine
		case drift.MethodRatio:
			exp = want.Ratio
		default:
			t.Fatalf("method %q", method)
		}
		if feature != drift.EmbeddingRow("emb", drift.Method(method)) || threshold != 0.2 || evaluated != 1 || exact != 1 ||
			nCur != uint64(len(want.Vectors)) || math.Abs(score-exp.Score) > 1e-12 || (drifted == 1) != exp.Drifted {
			t.Errorf("%s %s: score %.15g (Evidently %.15g) threshold %v drifted %d (Evidently %v) n %d exact %d evaluated %d",
				names[w], feature, score, exp.Score, threshold, drifted, exp.Drifted, nCur, exact, evaluated)
		}
		t.Logf("%s window: %s = %.6f drifted %d", names[w], feature, score, drifted)
		got++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got != 2*len(drift.EmbeddingMethods) {
		t.Fatalf("%d embedding rows, want %d", got, 2*len(drift.EmbeddingMethods))
	}
}
