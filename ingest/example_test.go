package ingest_test

import (
	"context"
	"errors"
	"log"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

// A serving service creates one Producer at start-up, shares it between its
// request handlers and closes it on shutdown. Needs Kafka at 127.0.0.1:9092
// (deployments/local/kafka.sh).
func ExampleNewProducer() {
	ctx := context.Background()
	brokers := []string{"127.0.0.1:9092"}
	if err := ingest.EnsureTopic(ctx, brokers, "vigil.events", 12); err != nil {
		log.Fatal(err)
	}
	p, err := ingest.NewProducer(brokers, "vigil.events",
		ingest.WithEncoding(wire.EncodingArrow), // the default
		ingest.WithMaxBufferedEvents(200_000),   // memory bound: events waiting for Kafka
		ingest.WithLinger(250*time.Millisecond), // bigger batches, later statistics
		ingest.WithFullPolicy(ingest.BlockWhenFull),
		ingest.WithBlockTimeout(2*time.Millisecond), // the serving path's budget
		ingest.WithLogger(zerolog.New(os.Stderr).With().Timestamp().Logger()),
	)
	if err != nil {
		log.Fatal(err)
	}

	// ... serve, calling p.Record for every prediction ...

	shutdown, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Close(shutdown); err != nil {
		var loss *ingest.LossError
		if errors.As(err, &loss) {
			log.Printf("monitoring lost %d events: %v", loss.Lost(), loss)
		}
	}
}

// Record an event for every prediction the model makes. Record does not wait
// for Kafka; an error means this one event is not monitored, never that the
// prediction failed, so log or count it and serve on.
func ExampleProducer_Record() {
	p, err := ingest.NewProducer([]string{"127.0.0.1:9092"}, "vigil.events")
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	handle := func(ctx context.Context, requestID string, amount float64, country string) {
		score := 0.87 // the model's answer
		err := p.Record(ctx, schemas.Event{
			ID:           requestID,
			Model:        "fraud",
			ModelVersion: "2026-03-01",
			Time:         time.Now(),
			Features: []schemas.Feature{
				schemas.Num("amount", amount),
				schemas.Str("country", country),
			},
			Prediction: schemas.Score(score),
			Latency:    3 * time.Millisecond,
			Segments:   []schemas.Tag{{Key: "region", Value: "eu"}},
		})
		switch {
		case errors.Is(err, schemas.ErrInvalidEvent): // a bug in the caller: fix the event
			log.Printf("vigil: %v", err)
		case errors.Is(err, ingest.ErrBufferFull): // Kafka is behind; counted in p.Stats().Dropped
		}
	}
	handle(context.Background(), "req-1", 42.5, "de")
}

// Record the ground truth once it is known (a chargeback a week later, the
// price the item sold for), joined to the prediction by its event id. Labels
// go to their own topic, "vigil.events.labels" here (WithLabelTopic), which
// must exist. Needs Kafka at 127.0.0.1:9092 (deployments/local/kafka.sh).
func ExampleProducer_RecordLabel() {
	ctx := context.Background()
	brokers := []string{"127.0.0.1:9092"}
	for _, topic := range []string{"vigil.events", ingest.DefaultLabelTopic("vigil.events")} {
		if err := ingest.EnsureTopic(ctx, brokers, topic, 12); err != nil {
			log.Fatal(err)
		}
	}
	p, err := ingest.NewProducer(brokers, "vigil.events")
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)

	onChargeback := func(requestID string, at time.Time) {
		err := p.RecordLabel(ctx, schemas.ClassLabel(requestID, "fraud", "fraud", at))
		if errors.Is(err, schemas.ErrInvalidLabel) { // a bug in the caller: fix the label
			log.Printf("vigil: %v", err)
		}
	}
	onSale := func(requestID string, price float64, at time.Time) {
		_ = p.RecordLabel(ctx, schemas.ValueLabel(requestID, "price", price, at))
	}
	onChargeback("req-1", time.Now())
	onSale("req-2", 129.90, time.Now())
}
