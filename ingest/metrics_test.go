package ingest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-ml/vigil/schemas"
)

// The collector reports Stats as they are: 5 sent, 1 invalid, 0 buffered
// after a flush.
func TestStatsCollector(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c.ListenAddrs(), testTopic, WithLinger(time.Millisecond))
	ctx := context.Background()
	for i := range 5 {
		if err := p.Record(ctx, testEvent("m", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Record(ctx, schemas.Event{ID: "x"}); err == nil {
		t.Fatal("an invalid event was recorded")
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewStatsCollector(p, prometheus.Labels{"producer": "test"}))
	want := `
# HELP vigil_sdk_events_buffered Events and labels accepted and held now (queued, batched or being written).
# TYPE vigil_sdk_events_buffered gauge
vigil_sdk_events_buffered{producer="test"} 0
# HELP vigil_sdk_events_invalid_total Events and labels refused by Record because they break the contract (Validate).
# TYPE vigil_sdk_events_invalid_total counter
vigil_sdk_events_invalid_total{producer="test"} 1
# HELP vigil_sdk_events_recorded_total Events and labels accepted by Record and RecordLabel.
# TYPE vigil_sdk_events_recorded_total counter
vigil_sdk_events_recorded_total{producer="test"} 5
# HELP vigil_sdk_events_sent_total Events and labels acknowledged by Kafka.
# TYPE vigil_sdk_events_sent_total counter
vigil_sdk_events_sent_total{producer="test"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_sdk_events_buffered", "vigil_sdk_events_invalid_total", "vigil_sdk_events_recorded_total", "vigil_sdk_events_sent_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(NewStatsCollector(p, nil)); n != 7 {
		t.Errorf("%d metrics, want 7", n)
	}
}
