package wire

import (
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/vigil-ml/vigil/schemas"
)

const benchFeatures = 20

func benchJSON(tb testing.TB, n int) [][]byte {
	tb.Helper()
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = AppendJSON(nil, benchEvent(i, benchFeatures))
	}
	return msgs
}

func reportEvents(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.N)*float64(perOp)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAppendJSON(b *testing.B) {
	e := benchEvent(1, benchFeatures)
	buf := AppendJSON(nil, e)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], e)
	}
	reportEvents(b, 1)
}

func BenchmarkDecodeJSON(b *testing.B) {
	msgs := benchJSON(b, 1024)
	var d JSONDecoder
	var e schemas.Event
	b.SetBytes(int64(len(msgs[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := d.Decode(msgs[i%len(msgs)], &e); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportEvents(b, 1)
}

// BenchmarkJSONToRecord is the processor's JSON path per event: decode, then
// append to a batch, with a record built every 1000 events.
func BenchmarkJSONToRecord(b *testing.B) {
	msgs := benchJSON(b, 1000)
	var d JSONDecoder
	var e schemas.Event
	bb := NewBatchBuilder(memory.DefaultAllocator)
	b.SetBytes(int64(len(msgs[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := d.Decode(msgs[i], &e); err != nil {
			b.Fatal(err)
		}
		if err := bb.Append(&e); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(msgs) {
			bb.NewRecord().Release()
			i = 0
		}
	}
	reportEvents(b, 1)
}

func benchRecord(tb testing.TB, n int) arrow.Record {
	tb.Helper()
	bb := NewBatchBuilder(memory.DefaultAllocator)
	for i := 0; i < n; i++ {
		if err := bb.Append(benchEvent(i, benchFeatures)); err != nil {
			tb.Fatal(err)
		}
	}
	return bb.NewRecord()
}

func BenchmarkArrowEncode(b *testing.B) {
	for _, c := range []Compression{CompressionZSTD, CompressionLZ4, CompressionNone} {
		b.Run(c.String(), func(b *testing.B) {
			rec := benchRecord(b, 1000)
			defer rec.Release()
			enc := NewArrowEncoder(c)
			buf, err := enc.Encode(nil, rec)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if buf, err = enc.Encode(buf[:0], rec); err != nil {
					b.Fatal(err)
				}
			}
			reportEvents(b, 1000)
		})
	}
}

func BenchmarkDecodeArrow(b *testing.B) {
	for _, c := range []Compression{CompressionZSTD, CompressionLZ4, CompressionNone} {
		b.Run(c.String(), func(b *testing.B) {
			rec := benchRecord(b, 1000)
			buf, err := NewArrowEncoder(c).Encode(nil, rec)
			rec.Release()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := DecodeArrow(buf, memory.DefaultAllocator)
				if err != nil {
					b.Fatal(err)
				}
				r.Release()
			}
			reportEvents(b, 1000)
		})
	}
}

// BenchmarkBuildRecord is the SDK's batching path: 1000 events appended,
// then one record.
func BenchmarkBuildRecord(b *testing.B) {
	evs := make([]*schemas.Event, 1000)
	for i := range evs {
		evs[i] = benchEvent(i, benchFeatures)
	}
	bb := NewBatchBuilder(memory.DefaultAllocator)
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range evs {
			if err := bb.Append(e); err != nil {
				b.Fatal(err)
			}
		}
		bb.NewRecord().Release()
	}
	reportEvents(b, len(evs))
}
