package clickhouse

import (
	"testing"
	"time"

	"github.com/vigil-ml/vigil/processors/pipeline"
)

// The progress counts the demo waits on: checkpointed offsets summed over
// partitions (the newest checkpoint of each), labels per topic, late events
// per model version.
func TestIntegrationProgress(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	ws := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	late := []pipeline.LateEvent{
		{Offset: 3, Model: "m", ModelVersion: "v1", EventID: "a", EventTime: ws, WindowStart: ws, Watermark: ws.Add(time.Hour)},
		{Offset: 4, Model: "m", ModelVersion: "v1", EventID: "b", EventTime: ws, WindowStart: ws, Watermark: ws.Add(time.Hour)},
		{Offset: 5, Model: "m", ModelVersion: "v2", EventID: "c", EventTime: ws, WindowStart: ws, Watermark: ws.Add(time.Hour)},
	}
	for _, c := range []struct {
		part int
		next int64
		late []pipeline.LateEvent
	}{{0, 4, nil}, {0, 10, late}, {1, 7, nil}, {0, 9, nil}} { // partition 0's newest checkpoint is 10 (offsets only grow)
		if err := s.Windows().Checkpoint(ctx, pipeline.Source{Group: "g", Topic: "t", Partition: c.part}, nil, c.late, nil, c.next, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Windows().Checkpoint(ctx, pipeline.Source{Group: "other", Topic: "t", Partition: 0}, nil, nil, nil, 100, 0, nil); err != nil {
		t.Fatal(err)
	}
	labels := []pipeline.LabelRow{
		{Model: "m", EventID: "a", Time: ws, HasValue: true, Value: 1, Topic: "t.labels", Offset: 1},
		{Model: "m", EventID: "a", Time: ws, HasValue: true, Value: 1, Topic: "t.labels", Offset: 2}, // sent twice: two messages
		{Model: "m", EventID: "b", Time: ws, HasValue: true, Value: 0, Topic: "other.labels", Offset: 1},
	}
	if err := s.Labels().WriteLabels(ctx, labels); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Windows().CheckpointedOffsets(ctx, "g", "t"); err != nil || n != 17 {
		t.Errorf("checkpointed offsets %d, %v; want 17 (10 + 7)", n, err)
	}
	if n, err := s.Windows().CheckpointedOffsets(ctx, "g", "none"); err != nil || n != 0 {
		t.Errorf("checkpointed offsets of an unknown topic %d, %v; want 0", n, err)
	}
	if n, err := s.Labels().StoredLabels(ctx, "t.labels"); err != nil || n != 2 {
		t.Errorf("stored labels %d, %v; want 2", n, err)
	}
	if n, err := s.Windows().LateEventCount(ctx, "m", "v1"); err != nil || n != 2 {
		t.Errorf("late events of v1 %d, %v; want 2", n, err)
	}
}
