package clickhouse

import (
	"fmt"
	"testing"

	"github.com/vigil-ml/vigil/processors/stats"
)

// BenchmarkRawRowFill measures turning Arrow rows into the array columns of
// vigil_events (the per-row work of a raw-event insert, without the driver).
func BenchmarkRawRowFill(b *testing.B) {
	rec := rawRecord(b, "a", "b")
	defer rec.Release()
	c, err := classify(rec)
	if err != nil {
		b.Fatal(err)
	}
	c.intern(map[string]*string{})
	var (
		r     rawRow
		arena []string
	)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		arena = r.fill(c, i&1, arena[:0])
	}
}

// BenchmarkAppendFeatureStates measures encoding the feature_states column
// of a window with 20 numeric and 5 categorical features of 100 values.
func BenchmarkAppendFeatureStates(b *testing.B) {
	fs := map[string]*stats.FeatureState{}
	for i := 0; i < 20; i++ {
		fs[fmt.Sprintf("num_%d", i)] = numFeature(1, 2, 3)
	}
	for i := 0; i < 5; i++ {
		f := catFeature()
		for j := 0; j < 100; j++ {
			f.Cat.Add(fmt.Sprintf("value_%d", j))
		}
		fs[fmt.Sprintf("cat_%d", i)] = f
	}
	var buf []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = appendFeatureStates(buf[:0], fs)
	}
	b.SetBytes(int64(len(buf)))
}
