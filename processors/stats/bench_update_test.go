package stats

// Issue 3, targets 2 and 3: the per-core cost of adding feature values to a
// window state (moments plus value sketch), aimed at >= 50M values/s, and
// the state's memory, which must not grow with the events of a window.
//
//	go test -run '^$' -bench 'BenchmarkUpdate|BenchmarkWindowStateHeap' -count 3 -cpu 1 ./processors/stats/
//	go test -run TestWindowStateHeapBounded -v ./processors/stats/

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/vigil-ml/vigil/schemas"
)

const (
	updateRows     = 1000 // rows per record, one SDK batch
	updateFeatures = 20
	updateRecords  = 64 // distinct records cycled through, 1.28M values
)

// updateRecordSet returns n records of updateRows rows and updateFeatures
// float64 feature columns (f.u00..), normal with per-feature mean and scale,
// and no fixed columns, so that every value AddRange adds is a feature
// value. The columns wrap Go slices: the records need no release.
func updateRecordSet(n int) []arrow.Record {
	rng := rand.New(rand.NewPCG(5, 8))
	fields := make([]arrow.Field, updateFeatures)
	for j := range fields {
		fields[j] = arrow.Field{Name: fmt.Sprintf("%su%02d", schemas.PrefixFeature, j), Type: arrow.PrimitiveTypes.Float64}
	}
	sc := arrow.NewSchema(fields, nil)
	recs := make([]arrow.Record, n)
	for r := range recs {
		cols := make([]arrow.Array, updateFeatures)
		for j := range cols {
			vs := make([]float64, updateRows)
			for i := range vs {
				vs[i] = float64(j) + (1+float64(j)/4)*rng.NormFloat64()
			}
			data := array.NewData(arrow.PrimitiveTypes.Float64, updateRows,
				[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(vs))}, nil, 0, 0)
			cols[j] = array.NewFloat64Data(data)
			data.Release()
		}
		recs[r] = array.NewRecord(sc, cols, updateRows)
	}
	return recs
}

// BenchmarkUpdate adds 1000-row records of 20 float64 features to a window
// state. small-windows starts a fresh state every 2000 rows (value sketches
// stay exact, as in 1-minute windows of a quiet model); one-window keeps
// one state for the whole run (sketched mode). values/s counts feature
// values (20 per row) per second of wall time; with -cpu 1 that is per core.
func BenchmarkUpdate(b *testing.B) {
	recs := updateRecordSet(updateRecords)
	for _, window := range []string{"small-windows", "one-window"} {
		for _, noValues := range []bool{false, true} {
			name := window + "/sketch=on"
			if noValues {
				name = window + "/sketch=off"
			}
			b.Run(name, func(b *testing.B) {
				w := NewWindowState(Key{Model: "m"}, 60_000)
				w.NoValues = noValues
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if window == "small-windows" && i%2 == 0 {
						w = NewWindowState(Key{Model: "m"}, 60_000)
						w.NoValues = noValues
					}
					w.AddRange(recs[i%len(recs)], 0, updateRows)
				}
				values := float64(b.N) * updateRows * updateFeatures
				b.ReportMetric(values/b.Elapsed().Seconds(), "values/s")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/values, "ns/value")
			})
		}
	}
}

// heapPoint is what one window state of a given number of events retains.
type heapPoint struct {
	events int
	heap   uint64 // bytes retained on the heap by the state (runtime.MemStats)
	levels int    // KLL levels of one feature's value sketch
	live   int    // keys held by the value sketches (buffer and levels), all features
	alloc  int    // key capacity of the sketches' slices, all features
}

// windowStateHeap adds events rows (updateFeatures values each) from recs
// to a new window state and measures what it retains. recs are allocated
// before the first measurement and so not counted.
func windowStateHeap(recs []arrow.Record, events int) heapPoint {
	var before, after runtime.MemStats
	gc := func(m *runtime.MemStats) {
		runtime.GC()
		runtime.GC() // and sync.Pool's victim cache (the radix-sort scratch)
		runtime.ReadMemStats(m)
	}
	gc(&before)
	w := NewWindowState(Key{Model: "m"}, 60_000)
	for i := 0; i < events; i += updateRows {
		w.AddRange(recs[(i/updateRows)%len(recs)], 0, min(updateRows, events-i))
	}
	gc(&after)
	p := heapPoint{events: events}
	if after.HeapAlloc > before.HeapAlloc {
		p.heap = after.HeapAlloc - before.HeapAlloc
	}
	for _, f := range w.Features {
		v := &f.Values
		p.levels = len(v.levels)
		p.live, p.alloc = p.live+len(v.buf), p.alloc+cap(v.buf)
		for _, lv := range v.levels {
			p.live, p.alloc = p.live+len(lv), p.alloc+cap(lv)
		}
	}
	runtime.KeepAlive(w)
	return p
}

var heapEventCounts = []int{1000, 10_000, 100_000, 1_000_000}

// TestWindowStateHeapBounded logs the heap a window state retains for 1k to
// 1M events of updateFeatures features, with the keys its value sketches
// hold and the capacity of their slices.
//
// The keys held stay flat beyond ExactCap values per feature (k plus
// O(log n)), but each KLL level keeps the capacity its slice once reached
// (level 0 takes a whole 2048-key intake buffer per flush), so the retained
// heap grows by about one such slice per level, i.e. with log n: roughly
// +30 KB per feature for every tenfold of events. The test fails on growth
// faster than that (linear growth would be 100x from 10k to 1M events).
func TestWindowStateHeapBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("adds 1.1M events")
	}
	recs := updateRecordSet(updateRecords)
	byEvents := make(map[int]heapPoint)
	for _, n := range heapEventCounts {
		p := windowStateHeap(recs, n)
		byEvents[n] = p
		t.Logf("%8d events x %d features: %8d B retained (%6d B/feature), %2d levels, keys held %6d, key capacity %7d",
			n, updateFeatures, p.heap, p.heap/updateFeatures, p.levels, p.live, p.alloc)
	}
	lo, hi := byEvents[10_000], byEvents[1_000_000]
	// Flat: compaction gives back the capacity levels no longer need.
	if float64(hi.heap) > 1.3*float64(lo.heap) {
		t.Errorf("state of 1M events holds %d B, of 10k events %d B: not flat", hi.heap, lo.heap)
	}
	if float64(hi.live) > 1.5*float64(lo.live) {
		t.Errorf("value sketches hold %d keys after 1M events, %d after 10k", hi.live, lo.live)
	}
}

// BenchmarkWindowStateHeap reports the same numbers as
// TestWindowStateHeapBounded as metrics (one iteration is enough; the
// figures do not depend on b.N).
func BenchmarkWindowStateHeap(b *testing.B) {
	recs := updateRecordSet(updateRecords)
	for _, n := range heapEventCounts {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			var p heapPoint
			b.ReportAllocs()
			for b.Loop() {
				p = windowStateHeap(recs, n)
			}
			b.ReportMetric(float64(p.heap), "heap-B")
			b.ReportMetric(float64(p.heap)/updateFeatures, "heap-B/feature")
			b.ReportMetric(float64(p.live)/updateFeatures, "keys/feature")
			b.ReportMetric(float64(p.alloc)/updateFeatures, "key-cap/feature")
		})
	}
}
