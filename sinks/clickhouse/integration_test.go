package clickhouse

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// t0 is a window start in whole seconds (plain servers store seconds).
var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC).UnixMilli()

const minute = int64(60_000)

// window builds a state of model/version in the window starting at start.
func window(model, version string, start int64, lastOffset int64, final bool, features map[string]*stats.FeatureState, latencies ...float64) *stats.WindowState {
	st := stats.NewWindowState(stats.Key{Model: model, ModelVersion: version, WindowStart: start}, start+minute)
	st.Features = features
	for _, l := range latencies {
		st.Latency.Add(l)
	}
	st.Events = uint64(len(latencies))
	st.LastOffset, st.Final, st.Dirty = lastOffset, final, true
	return st
}

func assertStatesEqual(t *testing.T, got, want []*stats.WindowState) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d states, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		name := keyString(w.Key)
		if g.Key != w.Key || g.WindowEnd != w.WindowEnd || g.Events != w.Events || g.Late != w.Late ||
			g.LastOffset != w.LastOffset || g.Final != w.Final {
			t.Errorf("state %d (%s): got key=%+v end=%d events=%d late=%d last=%d final=%v, want key=%+v end=%d events=%d late=%d last=%d final=%v",
				i, name, g.Key, g.WindowEnd, g.Events, g.Late, g.LastOffset, g.Final, w.Key, w.WindowEnd, w.Events, w.Late, w.LastOffset, w.Final)
		}
		if g.Dirty {
			t.Errorf("state %d (%s): restored with Dirty = true", i, name)
		}
		gs, _ := g.Latency.MarshalBinary()
		ws, _ := w.Latency.MarshalBinary()
		if string(gs) != string(ws) || g.Latency.Count() != w.Latency.Count() || !sameFloat(g.Latency.Quantile(0.95), w.Latency.Quantile(0.95)) {
			t.Errorf("state %d (%s): latency sketch differs (count %d, want %d)", i, name, g.Latency.Count(), w.Latency.Count())
		}
		if !featuresEqual(g.Features, w.Features) {
			t.Errorf("state %d (%s): features differ:\n got %s\nwant %s", i, name, dumpFeatures(g.Features), dumpFeatures(w.Features))
		}
	}
}

func TestIntegrationCheckpointRestore(t *testing.T) { testCheckpointRestore(t, startSink(t, nil)) }

// testCheckpointRestore checkpoints window states and producer sequences of
// two partitions into s and restores them.
func testCheckpointRestore(t *testing.T, s *Sink) {
	ctx := testContext(t)
	src := pipeline.Source{Group: "g", Topic: "events", Partition: 3}
	other := pipeline.Source{Group: "g", Topic: "events", Partition: 4}

	open := window("fraud", "v1", t0, 41, false, map[string]*stats.FeatureState{
		"amount":                       numFeature(12.5, 99, -3, math.NaN(), math.Inf(-1)),
		"country":                      catFeature("de", "fr", "de", "it"),
		"is_new":                       boolFeature(true, false, true),
		schemas.PredictionScoreFeature: numFeature(0.1, 0.8, 0.95),
	}, 3, 7.5, 12, 250, 0)
	open.Late = 2
	open.Features["amount"].Num.Missing = 1
	open.Features["amount"].TypeMismatch = 1
	open.Features["country"].Cat.Missing = 2
	closedBefore := window("fraud", "v1", t0-minute, 30, true, map[string]*stats.FeatureState{"amount": numFeature(1)}, 1)
	closedAfter := window("fraud", "v2", t0-minute, 45, true, map[string]*stats.FeatureState{"amount": numFeature(2, 3)}, 4, 5)
	noLatency := window("churn", "", t0, 44, false, map[string]*stats.FeatureState{})
	wide := window("fraud", "v3", t0, 46, false, map[string]*stats.FeatureState{"id": catFeature()})
	for i := 0; i < stats.MaxCategories+10; i++ {
		wide.Features["id"].Cat.Add(fmt.Sprintf("user-%d", i%(stats.MaxCategories+3)))
	}

	// Before any checkpoint: nothing.
	if _, _, ok, states, err := s.Windows().Restore(ctx, src); err != nil || ok || len(states) != 0 {
		t.Fatalf("Restore of a new partition = ok %v, %d states, %v; want nothing", ok, len(states), err)
	}
	if err := s.Windows().Checkpoint(ctx, src, nil, nil, []*stats.WindowState{open, closedBefore, closedAfter, noLatency, wide}, 40, t0-5000, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Windows().Checkpoint(ctx, other, nil, nil, []*stats.WindowState{window("fraud", "v1", t0, 9, false, nil, 1)}, 10, t0, nil); err != nil {
		t.Fatal(err)
	}
	next, wm, ok, states, err := s.Windows().Restore(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if !ok || next != 40 || wm != t0-5000 {
		t.Fatalf("Restore checkpoint = (%d, %d, %v), want (40, %d, true)", next, wm, ok, t0-5000)
	}
	// Ordered by model, version, window start; closedBefore is final and
	// older than the checkpoint, so a replay never needs it.
	assertStatesEqual(t, states, []*stats.WindowState{noLatency, open, closedAfter, wide})

	// A later checkpoint moves the offset; a stale one written after it does
	// not win. The producer sequences are bytes, stored as they are with
	// the offset they belong to.
	producers60, producers50 := []byte{1, 0, 0xff, 'x', 0}, []byte{1, 7}
	if err := s.Windows().Checkpoint(ctx, src, nil, nil, nil, 60, t0+1000, producers60); err != nil {
		t.Fatal(err)
	}
	if err := s.Windows().Checkpoint(ctx, src, nil, nil, nil, 50, t0, producers50); err != nil {
		t.Fatal(err)
	}
	next, wm, _, states, err = s.Windows().Restore(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if next != 60 || wm != t0+1000 {
		t.Fatalf("Restore checkpoint = (%d, %d), want (60, %d)", next, wm, t0+1000)
	}
	assertStatesEqual(t, states, []*stats.WindowState{noLatency, open, wide}) // closedAfter (45) < 60 now
	for _, tt := range []struct {
		src  pipeline.Source
		next int64
		want []byte
	}{
		{src, 60, producers60},
		{src, 50, producers50},
		{src, 40, nil}, // written without
		{src, 41, nil}, // no such checkpoint
		{other, 60, nil},
	} {
		got, err := s.Windows().RestoreProducers(ctx, tt.src, tt.next)
		if err != nil || !bytes.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Fatalf("RestoreProducers(%s, %d) = %x, %v; want %x", tt.src, tt.next, got, err, tt.want)
		}
	}

	if _, _, ok, _, err := s.Windows().Restore(ctx, pipeline.Source{Group: "other", Topic: "events", Partition: 3}); err != nil || ok {
		t.Fatalf("Restore of another group = ok %v, %v; want no checkpoint", ok, err)
	}
}

func TestIntegrationRewriteReplaces(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	src := pipeline.Source{Group: "g", Topic: "events", Partition: 0}
	versions := []struct {
		last   int64
		values []float64
	}{
		{10, []float64{1, 2}},
		{20, []float64{1, 2, 3}},
		{15, []float64{1, 2, 9}}, // written last but older: must not win
	}
	for _, v := range versions {
		st := window("fraud", "v1", t0, v.last, false, map[string]*stats.FeatureState{"amount": numFeature(v.values...)}, v.values...)
		if err := s.Windows().Checkpoint(ctx, src, nil, nil, []*stats.WindowState{st}, v.last+1, t0, nil); err != nil {
			t.Fatal(err)
		}
	}
	db := s.Database()
	var (
		rows        uint64
		count, last int64
		sum, hi     float64
	)
	q := fmt.Sprintf("SELECT count() AS rows, any(toInt64(count)), any(last_offset), any(sum), any(max) FROM %s.vigil_feature_windows FINAL WHERE model = 'fraud' AND feature = 'amount'", db)
	if err := s.Conn().QueryRow(ctx, q).Scan(&rows, &count, &last, &sum, &hi); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || count != 3 || last != 20 || sum != 6 || hi != 3 {
		t.Fatalf("feature row after FINAL: rows=%d count=%d last_offset=%d sum=%v max=%v; want 1 row, count 3, offset 20, sum 6, max 3", rows, count, last, sum, hi)
	}
	var events uint64
	q = fmt.Sprintf("SELECT count() AS rows, any(events), any(last_offset) FROM %s.vigil_model_windows FINAL WHERE model = 'fraud'", db)
	if err := s.Conn().QueryRow(ctx, q).Scan(&rows, &events, &last); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || events != 3 || last != 20 {
		t.Fatalf("model row after FINAL: rows=%d events=%d last_offset=%d; want 1 row, 3 events, offset 20", rows, events, last)
	}
}

// TestIntegrationTornCheckpoint simulates a crash between the model and the
// feature inserts of a checkpoint: Restore must return the newer state whole
// and repair the feature rows.
func TestIntegrationTornCheckpoint(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	src := pipeline.Source{Group: "g", Topic: "events", Partition: 1}
	v1 := window("fraud", "v1", t0, 8, false, map[string]*stats.FeatureState{"amount": numFeature(1, 2)}, 5, 6)
	if err := s.Windows().Checkpoint(ctx, src, nil, nil, []*stats.WindowState{v1}, 10, t0, nil); err != nil {
		t.Fatal(err)
	}
	v2 := window("fraud", "v1", t0, 15, true, map[string]*stats.FeatureState{"amount": numFeature(1, 2, 30)}, 5, 6, 7)
	w := writer{conn: s.Conn(), db: s.Database(), src: src}
	if err := w.modelWindows(ctx, []*stats.WindowState{v2}, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, _, states, err := s.Windows().Restore(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	assertStatesEqual(t, states, []*stats.WindowState{v2})
	var count uint64
	var last int64
	var final uint8
	q := fmt.Sprintf("SELECT count, last_offset, is_final FROM %s.vigil_feature_windows FINAL WHERE feature = 'amount'", s.Database())
	if err := s.Conn().QueryRow(ctx, q).Scan(&count, &last, &final); err != nil {
		t.Fatal(err)
	}
	if count != 3 || last != 15 || final != 1 {
		t.Fatalf("feature row after Restore: count=%d last_offset=%d is_final=%d, want the repaired 3, 15, 1", count, last, final)
	}
}

func TestIntegrationLateEventsDedupe(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	src := pipeline.Source{Group: "g", Topic: "events", Partition: 2}
	ws, wm := time.UnixMilli(t0).UTC(), time.UnixMilli(t0+3*minute).UTC()
	late := []pipeline.LateEvent{
		{Offset: 5, Model: "fraud", ModelVersion: "v1", EventID: "a", EventTime: ws.Add(10 * time.Second), WindowStart: ws, Watermark: wm},
		{Offset: 5, Model: "fraud", ModelVersion: "v1", EventID: "b", EventTime: ws.Add(20 * time.Second), WindowStart: ws, Watermark: wm},
		{Offset: 6, Model: "fraud", ModelVersion: "v1", EventID: "c", EventTime: ws.Add(30 * time.Second), WindowStart: ws, Watermark: wm},
	}
	for i := 0; i < 2; i++ { // the second call is a replay
		if err := s.Windows().Checkpoint(ctx, src, nil, late, nil, 7, t0, nil); err != nil {
			t.Fatal(err)
		}
	}
	var all, final uint64
	db := s.Database()
	if err := s.Conn().QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.vigil_late_events", db)).Scan(&all); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn().QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.vigil_late_events FINAL", db)).Scan(&final); err != nil {
		t.Fatal(err)
	}
	if all != 6 || final != 3 {
		t.Fatalf("late events: %d rows, %d after FINAL; want 6 and 3", all, final)
	}
	var (
		id                            string
		off                           int64
		part                          uint32
		eventTime, windowStart, wmGot time.Time
	)
	q := fmt.Sprintf("SELECT event_id, kafka_offset, kafka_partition, event_time, window_start, watermark FROM %s.vigil_late_events FINAL WHERE event_id = 'c'", db)
	if err := s.Conn().QueryRow(ctx, q).Scan(&id, &off, &part, &eventTime, &windowStart, &wmGot); err != nil {
		t.Fatal(err)
	}
	if off != 6 || part != 2 || !eventTime.Equal(late[2].EventTime) || !windowStart.Equal(ws) || !wmGot.Equal(wm) {
		t.Fatalf("late event c = offset %d partition %d event_time %v window %v watermark %v", off, part, eventTime, windowStart, wmGot)
	}
}

// rawRecord builds a two-row batch of model fraud in the schemas/arrow.go layout.
func rawRecord(t testing.TB, ids ...string) arrow.Record {
	t.Helper()
	extra := []arrow.Field{
		{Name: "proba.fraud", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "proba.ok", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "f.amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "f.country", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "f.is_new", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "s.region", Type: arrow.BinaryTypes.String, Nullable: true},
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schemas.NewSchema(extra))
	defer b.Release()
	str := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	f64 := func(i int) *array.Float64Builder { return b.Field(i).(*array.Float64Builder) }
	// row 0: everything set
	str(0).Append(ids[0])
	str(1).Append("fraud")
	str(2).Append("v1")
	b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(t0 + 1234))
	f64(4).Append(12.5)
	f64(5).Append(0.75)
	str(6).Append("fraud")
	f64(7).AppendNull()
	f64(8).Append(0.75)
	f64(9).Append(0.25)
	f64(10).Append(99.5)
	str(11).Append("de")
	b.Field(12).(*array.BooleanBuilder).Append(true)
	str(13).Append("eu")
	// row 1: nulls
	str(0).Append(ids[1])
	str(1).Append("fraud")
	str(2).Append("v1")
	b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(t0 + 5000))
	f64(4).AppendNull()
	f64(5).AppendNull()
	str(6).AppendNull()
	f64(7).Append(3.5)
	f64(8).AppendNull()
	f64(9).AppendNull()
	f64(10).AppendNull()
	str(11).Append("fr")
	b.Field(12).(*array.BooleanBuilder).AppendNull()
	str(13).AppendNull()
	return b.NewRecord()
}

func TestIntegrationRawEvents(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		t.Run(fmt.Sprintf("raw_events=%v", enabled), func(t *testing.T) {
			s := startSink(t, func(c *Config) { c.RawEvents = enabled })
			ctx := testContext(t)
			src := pipeline.Source{Group: "g", Topic: "events", Partition: 5}
			arrowBatch := rawRecord(t, "e1", "e2")
			defer arrowBatch.Release()
			folded := rawRecord(t, "e3", "e4") // two JSON messages folded into one record
			defer folded.Release()
			raw := []pipeline.RawBatch{{Offset: 7, Record: arrowBatch}, {Offset: 8, Offsets: []int64{8, 9}, Record: folded}}
			for i := 0; i < 2; i++ { // the second call is a replay
				if err := s.Windows().Checkpoint(ctx, src, raw, nil, nil, 10, t0, nil); err != nil {
					t.Fatal(err)
				}
			}
			db := s.Database()
			var n uint64
			if err := s.Conn().QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.vigil_events FINAL", db)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if !enabled {
				if n != 0 {
					t.Fatalf("%d raw events written with RawEvents off", n)
				}
				return
			}
			if n != 4 {
				t.Fatalf("%d raw events after FINAL, want 4", n)
			}
			type rawEvent struct {
				ID, Model, Version  string
				Time                time.Time
				NumNames            []string
				NumValues           []float64
				StrNames, StrValues []string
				BoolNames           []string
				BoolValues          []uint8
				Nulls               []string
				Score               *float64
				Label               *string
				Value               *float64
				ProbaClasses        []string
				ProbaValues         []float64
				Latency             *float64
				SegKeys, SegValues  []string
				Topic               string
				Partition           uint32
				Offset              int64
			}
			read := func(id string) rawEvent {
				var e rawEvent
				q := fmt.Sprintf(`SELECT event_id, model, model_version, event_time, num_feature_names, num_feature_values,
  str_feature_names, str_feature_values, bool_feature_names, bool_feature_values, null_features,
  pred_score, pred_label, pred_value, proba_classes, proba_values, latency_ms, segment_keys, segment_values,
  topic, kafka_partition, kafka_offset
FROM %s.vigil_events FINAL WHERE event_id = ?`, db)
				if err := s.Conn().QueryRow(ctx, q, id).Scan(&e.ID, &e.Model, &e.Version, &e.Time, &e.NumNames, &e.NumValues,
					&e.StrNames, &e.StrValues, &e.BoolNames, &e.BoolValues, &e.Nulls,
					&e.Score, &e.Label, &e.Value, &e.ProbaClasses, &e.ProbaValues, &e.Latency, &e.SegKeys, &e.SegValues,
					&e.Topic, &e.Partition, &e.Offset); err != nil {
					t.Fatalf("read raw event %s: %v", id, err)
				}
				return e
			}
			precision := time.Millisecond
			if !s.ServerVersion().Modern() {
				precision = time.Second
			}
			f := func(v float64) *float64 { return &v }
			label := "fraud"
			tests := []struct {
				id   string
				want rawEvent
			}{
				{"e1", rawEvent{ID: "e1", Model: "fraud", Version: "v1", Time: time.UnixMilli(t0 + 1234).UTC().Truncate(precision),
					NumNames: []string{"amount"}, NumValues: []float64{99.5}, StrNames: []string{"country"}, StrValues: []string{"de"},
					BoolNames: []string{"is_new"}, BoolValues: []uint8{1}, Nulls: []string{},
					Score: f(0.75), Label: &label, ProbaClasses: []string{"fraud", "ok"}, ProbaValues: []float64{0.75, 0.25},
					Latency: f(12.5), SegKeys: []string{"region"}, SegValues: []string{"eu"}, Topic: "events", Partition: 5, Offset: 7}},
				{"e2", rawEvent{ID: "e2", Model: "fraud", Version: "v1", Time: time.UnixMilli(t0 + 5000).UTC(),
					NumNames: []string{}, NumValues: []float64{}, StrNames: []string{"country"}, StrValues: []string{"fr"},
					BoolNames: []string{}, BoolValues: []uint8{}, Nulls: []string{"amount", "is_new"},
					Value: f(3.5), ProbaClasses: []string{}, ProbaValues: []float64{},
					SegKeys: []string{}, SegValues: []string{}, Topic: "events", Partition: 5, Offset: 7}},
				{"e4", rawEvent{ID: "e4", Model: "fraud", Version: "v1", Time: time.UnixMilli(t0 + 5000).UTC(),
					NumNames: []string{}, NumValues: []float64{}, StrNames: []string{"country"}, StrValues: []string{"fr"},
					BoolNames: []string{}, BoolValues: []uint8{}, Nulls: []string{"amount", "is_new"},
					Value: f(3.5), ProbaClasses: []string{}, ProbaValues: []float64{},
					SegKeys: []string{}, SegValues: []string{}, Topic: "events", Partition: 5, Offset: 9}},
			}
			for _, tt := range tests {
				got := read(tt.id)
				got.Time = got.Time.UTC()
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("raw event %s:\n got %+v\nwant %+v", tt.id, got, tt.want)
				}
			}
		})
	}
}

func TestIntegrationBadInput(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	src := pipeline.Source{Group: "g", Topic: "events", Partition: 0}
	rec := rawRecord(t, "x", "y")
	defer rec.Release()
	err := s.Windows().Checkpoint(ctx, src, []pipeline.RawBatch{{Offset: 1, Offsets: []int64{1}, Record: rec}}, nil, nil, 2, t0, nil)
	if !errors.Is(err, ErrBadInput) || IsRetryable(err) {
		t.Fatalf("Checkpoint with 1 offset for 2 rows = %v, want permanent ErrBadInput", err)
	}
	if !s.ServerVersion().Modern() {
		st := window("fraud", "v1", t0+500, 1, false, nil)
		if err := s.Windows().Checkpoint(ctx, src, nil, nil, []*stats.WindowState{st}, 2, t0, nil); !errors.Is(err, ErrBadInput) {
			t.Fatalf("Checkpoint of a sub-second window on %s = %v, want ErrBadInput", s.ServerVersion(), err)
		}
	}
}

// docQueries returns the ```sql blocks of docs/TABLES.md with the database
// replaced.
func docQueries(t *testing.T, db string) []string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/TABLES.md")
	if err != nil {
		t.Fatal(err)
	}
	// The examples are the blocks of its "Example queries" section (the
	// tables' sections have SQL of their own before it).
	examples := string(doc)
	if i := strings.Index(examples, "\n## Example queries"); i >= 0 {
		examples = examples[i:]
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(examples, -1)
	var out []string
	for _, b := range blocks {
		out = append(out, strings.ReplaceAll(b[1], "vigil.vigil_", db+".vigil_"))
	}
	// The first three are checked here on exact numbers; every block runs on
	// both engines in schemas/ddl's tests.
	if len(out) < 3 {
		t.Fatalf("docs/TABLES.md has %d sql blocks, the test knows the first 3", len(out))
	}
	return out
}

// TestIntegrationDocumentedQueries runs the example queries of docs/TABLES.md
// on two partitions and checks the merged numbers exactly.
func TestIntegrationDocumentedQueries(t *testing.T) {
	s := startSink(t, nil)
	ctx := testContext(t)
	p0 := pipeline.Source{Group: "g", Topic: "events", Partition: 0}
	p1 := pipeline.Source{Group: "g", Topic: "events", Partition: 1}
	feat := func(vs ...float64) map[string]*stats.FeatureState {
		return map[string]*stats.FeatureState{"amount": numFeature(vs...), "country": catFeature("de")}
	}
	missingOnly := func() map[string]*stats.FeatureState {
		return map[string]*stats.FeatureState{"amount": {Kind: schemas.Number, Num: stats.NumericState{Missing: 2}}}
	}
	// Partition 0 first writes an older version of window 1 that must not count.
	old := window("fraud", "v1", t0, 3, false, feat(100, 200), 1, 1)
	if err := s.Windows().Checkpoint(ctx, p0, nil, nil, []*stats.WindowState{old}, 4, t0, nil); err != nil {
		t.Fatal(err)
	}
	ws := time.UnixMilli(t0).UTC()
	late := []pipeline.LateEvent{
		{Offset: 20, Model: "fraud", ModelVersion: "v1", EventID: "l1", EventTime: ws.Add(10 * time.Second), WindowStart: ws, Watermark: ws.Add(70 * time.Second)},
		{Offset: 21, Model: "fraud", ModelVersion: "v1", EventID: "l2", EventTime: ws.Add(5 * time.Second), WindowStart: ws, Watermark: ws.Add(95 * time.Second)},
	}
	w1p0 := window("fraud", "v1", t0, 10, true, feat(1, 2, 3), 10, 20, 30)
	w2p0 := window("fraud", "v1", t0+minute, 12, false, feat(10), 40)
	w1p1 := window("fraud", "v2", t0, 7, true, feat(4, 5), 50, 60)
	w2p1 := window("fraud", "v2", t0+minute, 8, false, missingOnly(), 70, 80)
	w1p0.Late = 2
	if err := s.Windows().Checkpoint(ctx, p0, nil, late, []*stats.WindowState{w1p0, w2p0}, 22, t0, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Windows().Checkpoint(ctx, p1, nil, nil, []*stats.WindowState{w1p1, w2p1}, 9, t0, nil); err != nil {
		t.Fatal(err)
	}
	qs := docQueries(t, s.Database())

	t.Run("feature mean min max", func(t *testing.T) {
		rows, err := s.Conn().Query(ctx, qs[0])
		if err != nil {
			t.Fatalf("%v\n%s", err, qs[0])
		}
		defer rows.Close()
		type result struct {
			start            time.Time
			n, missing       uint64
			mean, sd, lo, hi float64
		}
		var got []result
		for rows.Next() {
			var r result
			if err := rows.Scan(&r.start, &r.n, &r.missing, &r.mean, &r.sd, &r.lo, &r.hi); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := []result{
			{time.UnixMilli(t0).UTC(), 5, 0, 3, math.Sqrt(2.5), 1, 5},         // 1..5 over both partitions
			{time.UnixMilli(t0 + minute).UTC(), 1, 2, 10, math.NaN(), 10, 10}, // partition 1 had only missing values
		}
		if len(got) != len(want) {
			t.Fatalf("got %d windows, want %d: %+v", len(got), len(want), got)
		}
		for i := range want {
			g, w := got[i], want[i]
			if !g.start.Equal(w.start) || g.n != w.n || g.missing != w.missing || !approxEqual(g.mean, w.mean) || !approxEqual(g.sd, w.sd) || g.lo != w.lo || g.hi != w.hi {
				t.Errorf("window %d: got %+v, want %+v", i, g, w)
			}
		}
	})

	t.Run("events and p95 per model", func(t *testing.T) {
		rows, err := s.Conn().Query(ctx, qs[1])
		if err != nil {
			t.Fatalf("%v\n%s", err, qs[1])
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var (
				model        string
				start        time.Time
				events, late uint64
				p95          float64
				closed       uint8
			)
			if err := rows.Scan(&model, &start, &events, &late, &p95, &closed); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %d %d %d %.0f %d", model, start.UnixMilli()-t0, events, late, math.Round(p95), closed))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		// p95 of {10,20,30} is 30 and of {50,60} is 60 (within 1%): max is 60.
		want := []string{"fraud 0 5 2 60 1", fmt.Sprintf("fraud %d 3 0 80 0", minute)}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})

	t.Run("late events per window", func(t *testing.T) {
		rows, err := s.Conn().Query(ctx, qs[2])
		if err != nil {
			t.Fatalf("%v\n%s", err, qs[2])
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var (
				model    string
				start    time.Time
				n        uint64
				lateness int64
			)
			if err := rows.Scan(&model, &start, &n, &lateness); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %d %d %d", model, start.UnixMilli()-t0, n, lateness))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if want := []string{"fraud 0 2 90"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

func approxEqual(a, b float64) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}
