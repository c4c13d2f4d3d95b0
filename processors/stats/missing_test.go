package stats_test

import (
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
	"github.com/vigil-ml/vigil/schemas/wire"
)

func batchOf(t *testing.T, features ...[]schemas.Feature) arrow.Record {
	t.Helper()
	b := wire.NewBatchBuilder(memory.DefaultAllocator)
	for i, fs := range features {
		e := schemas.Event{ID: string(rune('a' + i)), Model: "m", Time: time.UnixMilli(1000), Features: fs, Prediction: schemas.Score(0.5)}
		if err := b.Append(&e); err != nil {
			t.Fatal(err)
		}
	}
	return b.NewRecord()
}

// Missing counts every event without a value for the feature, however the
// events were cut into batches or states.
func TestMissingIsBatchIndependent(t *testing.T) {
	a := func(v float64) schemas.Feature { return schemas.Num("a", v) }
	b := func(v float64) schemas.Feature { return schemas.Num("b", v) }
	batches := [][][]schemas.Feature{
		{{a(1)}, {a(2)}},                       // no column b
		{{a(3), b(1)}, {schemas.Missing("a")}}, // b absent in row 2, a null
		{{b(2)}},                               // no column a
	}
	want := map[string][2]uint64{"a": {3, 2}, "b": {2, 3}} // count, missing over 5 events

	check := func(name string, w *stats.WindowState) {
		t.Helper()
		if w.Events != 5 {
			t.Errorf("%s: events = %d, want 5", name, w.Events)
		}
		for f, cm := range want {
			fs := w.Features[f]
			if fs == nil || fs.Num.Count != cm[0] || fs.Missing() != cm[1] {
				t.Errorf("%s: feature %s = %+v, want count %d missing %d", name, f, fs, cm[0], cm[1])
			}
		}
	}

	key := stats.Key{Model: "m"}
	one := stats.NewWindowState(key, 60000)
	var parts []*stats.WindowState
	for _, fs := range batches {
		rec := batchOf(t, fs...)
		one.AddRange(rec, 0, int(rec.NumRows()))
		p := stats.NewWindowState(key, 60000)
		p.AddRange(rec, 0, int(rec.NumRows()))
		parts = append(parts, p)
		rec.Release()
	}
	check("one state", one)

	merged := stats.NewWindowState(key, 60000)
	for _, p := range parts {
		merged.Merge(p)
	}
	check("merged states", merged)

	// A restored (cloned) state continues with the same rule.
	restored := parts[0].Clone()
	restored.Merge(parts[1])
	rec := batchOf(t, batches[2]...)
	restored.AddRange(rec, 0, 1)
	rec.Release()
	check("restored then added", restored)
}
