package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/processors/multivariate"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// demoModel is the simulated model service: a fraud classifier. For a
// stretch of windows in the middle, its input "amount" arrives 2.5 times too
// large (a unit change upstream, say): the model's scores inflate while the
// real fraud rate does not move, so the amount drifts and the precision
// drops; then the upstream is fixed and both recover. Older accounts spend
// more (the log amount grows with account_age_days), so the shift also
// breaks the relation between the two: what the multivariate drift (the
// PCA reconstruction error) sees.
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
	age := float64(m.rng.IntN(2000))
	amount := math.Exp(3 + age/2000 + 0.35*m.rng.NormFloat64())
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
	fit, err := multivariate.NewProfileFitter(multivariate.FitOptions{ChunkRows: 500})
	if err != nil {
		return nil, err
	}
	rb, err := reference.NewBuilder(reference.Meta{
		Model: "fraud-demo", ModelVersion: m.version, ID: reference.NewID(time.Now()),
		CreatedAt: time.Now().UTC(), Source: "demo training sample",
	}, reference.BuilderOptions{Multivariate: fit})
	if err != nil {
		return nil, err
	}
	if err := rb.Add(rec); err != nil {
		return nil, err
	}
	return rb.Finish()
}
