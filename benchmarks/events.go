package benchmarks

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/schemas"
)

// CheckedFeature is the feature whose ClickHouse count a run checks: the
// first numeric feature, present in every event.
const CheckedFeature = "num_00"

// distinctRows is how many different feature rows an eventSource cycles
// through. Rows are shared between events (the SDK only reads them), so the
// producer's measured cost is the SDK's, not the benchmark's allocations.
const distinctRows = 1024

// segments is shared by every event; the SDK does not modify it.
var segments = []schemas.Tag{{Key: "region", Value: "eu"}}

// eventSource makes the benchmark's events: event i belongs to model
// i%len(models) and happens i milliseconds after base.
type eventSource struct {
	models []string
	base   time.Time
	rows   [][]schemas.Feature
	scores []float64
}

// featureMix splits n features into numeric, categorical and boolean ones in
// the proportions of a typical tabular model (20 -> 16, 3, 1). There is at
// least one numeric feature when n >= 1.
func featureMix(n int) (numeric, categorical, boolean int) {
	categorical, boolean = n*3/20, n/20
	return n - categorical - boolean, categorical, boolean
}

// categoryCards are the cardinalities of the categorical features, in turn:
// a country-like one, a device-like one and a high-cardinality one.
var categoryCards = []int{4, 20, 200}

func newEventSource(features int, models []string, base time.Time) *eventSource {
	rng := rand.New(rand.NewPCG(7, 11))
	numeric, categorical, boolean := featureMix(features)
	s := &eventSource{models: models, base: base, rows: make([][]schemas.Feature, distinctRows), scores: make([]float64, distinctRows)}
	for r := range s.rows {
		fs := make([]schemas.Feature, 0, features)
		for j := range numeric {
			fs = append(fs, schemas.Num(fmt.Sprintf("num_%02d", j), float64(j)+(1+float64(j)/4)*rng.NormFloat64()))
		}
		for j := range categorical {
			card := categoryCards[j%len(categoryCards)]
			fs = append(fs, schemas.Str(fmt.Sprintf("cat_%d", j), "v"+strconv.Itoa(rng.IntN(card))))
		}
		for j := range boolean {
			fs = append(fs, schemas.Flag(fmt.Sprintf("flag_%d", j), rng.IntN(3) == 0))
		}
		s.rows[r] = fs
		s.scores[r] = rng.Float64()
	}
	return s
}

// event returns event i. It allocates only its ID.
func (s *eventSource) event(i int) schemas.Event {
	var id [24]byte
	r := i % distinctRows
	return schemas.Event{
		ID:           string(strconv.AppendInt(append(id[:0], "e-"...), int64(i), 10)),
		Model:        s.models[i%len(s.models)],
		ModelVersion: "1",
		Time:         s.base.Add(time.Duration(i) * time.Millisecond),
		Features:     s.rows[r],
		Prediction:   schemas.Score(s.scores[r]),
		Latency:      time.Duration(1+i%13) * time.Millisecond,
		Segments:     segments,
	}
}

// modelNames returns n model names that the SDK's partitioner (kafka-go's
// Hash balancer on the model key) spreads round robin over the partitions, so
// that with as many models as partitions every partition gets an equal share.
func modelNames(n, partitions int) []string {
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	balancer := &kafka.Hash{}
	names := make([]string, 0, n)
	for i := 0; len(names) < n; i++ {
		name := "bench-" + strconv.Itoa(i)
		if balancer.Balance(kafka.Message{Key: []byte(name)}, parts...) == len(names)%partitions {
			names = append(names, name)
		}
	}
	return names
}
