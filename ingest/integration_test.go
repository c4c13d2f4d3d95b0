package ingest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/schemas/wire"
)

// kafkaBrokers returns the real Kafka of VIGIL_KAFKA, skipping the test when
// it is unset outside CI.
func kafkaBrokers(t *testing.T) []string {
	t.Helper()
	addr := os.Getenv("VIGIL_KAFKA")
	if addr == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("VIGIL_KAFKA is unset in CI: .ci/run must start Kafka and export it")
		}
		t.Skip("VIGIL_KAFKA unset: start Kafka with deployments/local/kafka.sh and export VIGIL_KAFKA=127.0.0.1:9092 to run")
	}
	return strings.Split(addr, ",")
}

// deleteTopic removes a test's topic from the real Kafka, best effort.
func deleteTopic(t *testing.T, brokers []string, topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
	res, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Logf("delete topic %s: %v", topic, err)
	}
}

func TestIntegrationRealKafka(t *testing.T) {
	brokers := kafkaBrokers(t)
	for _, enc := range []string{wire.EncodingArrow, wire.EncodingJSON} {
		t.Run(enc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			topic := fmt.Sprintf("vigil-ingest-it-%s-%d", enc, time.Now().UnixNano())
			if err := EnsureTopic(ctx, brokers, topic, 3); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { deleteTopic(t, brokers, topic) })
			p := newTestProducer(t, brokers, topic, WithEncoding(enc), WithBatchSize(128), WithLinger(20*time.Millisecond))
			models := []string{"fraud", "churn"}
			const perModel = 500
			for i := range perModel {
				for _, m := range models {
					if err := p.Record(ctx, testEvent(m, i)); err != nil {
						t.Fatalf("Record: %v", err)
					}
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			want := Stats{Recorded: 2 * perModel, Sent: 2 * perModel}
			if got := p.Stats(); got != want {
				t.Fatalf("Stats = %+v, want %+v", got, want)
			}
			msgs := consume(t, brokers, topic, 2*perModel)
			for _, m := range msgs {
				if m.Headers[wire.HeaderEncoding] != enc || m.Headers[wire.HeaderSchemaVersion] != "1" {
					t.Fatalf("headers %v", m.Headers)
				}
			}
			byModel := rowsByModel(t, msgs)
			for _, m := range models {
				if d := diffRows(byModel[m], wantRows(m, 0, perModel)); d != "" {
					t.Errorf("model %s: %s", m, d)
				}
			}
		})
	}
}
