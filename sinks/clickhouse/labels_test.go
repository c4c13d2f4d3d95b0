package clickhouse

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/processors/pipeline"
)

// insertPredictions stores predictions of model "m" (scores) with the given
// ids and event times, as the processor would, ingested at ingested.
func insertPredictions(t *testing.T, s *Sink, ingested time.Time, preds map[string]time.Time) {
	t.Helper()
	ctx := testContext(t)
	b, err := s.Conn().PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.vigil_events (event_id, model, model_version, event_time, pred_score, segment_keys, segment_values, topic, kafka_partition, kafka_offset, ingested_at)", s.Database()))
	if err != nil {
		t.Fatal(err)
	}
	off := int64(0)
	for id, at := range preds {
		score := 0.75
		off++
		if err := b.Append(id, "m", "v1", at, &score, []string{"region"}, []string{"eu"}, "p", uint32(0), off, ingested); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationLabels(t *testing.T) { testLabels(t, startSink(t, nil)) }

// testLabels stores predictions and labels into s and reads them back
// through the label store's queries (IN and JOIN subqueries).
func testLabels(t *testing.T, s *Sink) {
	ctx := testContext(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	before := time.Now().UTC().Add(-time.Second)
	insertPredictions(t, s, before, map[string]time.Time{
		"a": t0.Add(5 * time.Second), "b": t0.Add(70 * time.Second), "c": t0.Add(75 * time.Second),
	})
	// The same prediction replayed after a crash is stored twice; it counts once.
	insertPredictions(t, s, before, map[string]time.Time{"a": t0.Add(5 * time.Second)})

	labels := []pipeline.LabelRow{
		{Model: "m", EventID: "a", Time: t0.Add(time.Hour), HasValue: true, Value: 1, Topic: "l", Offset: 1},
		{Model: "m", EventID: "a", Time: t0.Add(2 * time.Hour), HasValue: true, Value: 0, Topic: "l", Offset: 2}, // correction: newest wins
		{Model: "m", EventID: "b", Time: t0.Add(30 * 24 * time.Hour), HasClass: true, Class: "1", Topic: "l", Offset: 3},
		{Model: "m", EventID: "zz", Time: t0.Add(time.Hour), HasValue: true, Value: 1, Topic: "l", Offset: 4}, // unknown
	}
	if err := s.Labels().WriteLabels(ctx, labels); err != nil {
		t.Fatal(err)
	}
	// A redelivered message replaces itself.
	if err := s.Labels().WriteLabels(ctx, labels[3:]); err != nil {
		t.Fatal(err)
	}

	preds, err := s.Labels().WindowPredictions(ctx, "m", t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(preds) != 1 || preds[0].EventID != "a" || preds[0].Score == nil || *preds[0].Score != 0.75 || preds[0].SegmentValues[0] != "eu" {
		t.Fatalf("predictions of the first minute = %+v, want a alone", preds)
	}
	got, err := s.Labels().WindowLabels(ctx, "m", t0, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("labels = %+v, want a and b", got)
	}
	if a := got["a"]; !a.HasValue || a.Value != 0 || a.Copies != 2 || !a.Time.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("label of a = %+v, want the correction (0 at +2h, 2 copies)", a)
	}
	if b := got["b"]; !b.HasClass || b.Class != "1" || b.Copies != 1 {
		t.Errorf("label of b = %+v", b)
	}

	changed, err := s.Labels().ChangedPerformanceWindows(ctx, time.Minute, before, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []ModelWindow{{Model: "m", Start: t0}, {Model: "m", Start: t0.Add(time.Minute)}}
	if fmt.Sprint(changed) != fmt.Sprint(want) {
		t.Errorf("changed windows = %v, want %v", changed, want)
	}
	changed, err = s.Labels().ChangedPerformanceWindows(ctx, time.Minute, time.Now().Add(time.Hour), t0.Add(-time.Hour))
	if err != nil || len(changed) != 0 {
		t.Errorf("changed windows since the future = %v, %v; want none", changed, err)
	}

	acc, err := s.Labels().LabelAccounts(ctx, before, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantAcc := LabelAccount{Model: "m", Messages: 4, EventIDs: 3, Duplicates: 1, Matched: 1, Expired: 1, Unknown: 1}
	if len(acc) != 1 || acc[0] != wantAcc {
		t.Errorf("label accounts = %+v, want %+v", acc, wantAcc)
	}
}
