package clickhouse

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/processors/pipeline"
)

// TestIntegrationRawEventsSameRows checks that the column-wise raw-event
// INSERT (rawEvents) writes exactly the rows of the row-by-row build it
// replaced (rawEventsRef): every column of every row, read back from the
// real ClickHouse. The batches cover nulls of every kind, probabilities,
// labels, segments, folded JSON offsets, records sliced at an offset (the
// Arrow buffers start past zero) and more rows than one INSERT takes
// (rawInsertRows), so several INSERTs run at once.
func TestIntegrationRawEventsSameRows(t *testing.T) {
	newSink, refSink := startSink(t, nil), startSink(t, nil)
	ctx := testContext(t)
	full := rawRecord(t, "e1", "e2")
	defer full.Release()
	folded := rawRecord(t, "e3", "e4")
	defer folded.Release()
	big := benchRecord(t, rawInsertRows+1500, 0)
	defer big.Release()
	wide := benchRecord(t, 3000, 100000)
	defer wide.Release()
	sliced := wide.NewSlice(1001, 2999)
	defer sliced.Release()
	offsets := make([]int64, sliced.NumRows())
	for i := range offsets {
		offsets[i] = 500 + int64(i)
	}
	raw := []pipeline.RawBatch{
		{Offset: 7, Record: full},
		{Offset: 8, Offsets: []int64{8, 9}, Record: folded},
		{Offset: 10, Record: big},
		{Offset: 11, Record: nil},
		{Offset: 500, Offsets: offsets, Record: sliced},
	}
	want := int(full.NumRows() + folded.NumRows() + big.NumRows() + sliced.NumRows())
	now := time.Now().UTC().Truncate(time.Second)
	src := pipeline.Source{Group: "g", Topic: "events", Partition: 3}
	writerOf := func(s *Sink) *writer {
		conn, _, err := s.connection()
		if err != nil {
			t.Fatal(err)
		}
		return &writer{conn: conn, db: s.Database(), src: src, rawInserts: s.rawInserts}
	}
	n, err := writerOf(newSink).rawEvents(ctx, raw, now)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("rawEvents returned %d rows, want %d", n, want)
	}
	if err := writerOf(refSink).rawEventsRef(ctx, raw, now); err != nil {
		t.Fatal(err)
	}
	got, ref := readAllRawEvents(t, newSink), readAllRawEvents(t, refSink)
	if len(got) != want || len(ref) != want {
		t.Fatalf("read back %d rows (column-wise) and %d (reference), want %d", len(got), len(ref), want)
	}
	for i := range ref {
		if !reflect.DeepEqual(got[i], ref[i]) {
			t.Fatalf("row %d differs:\n got %v\nwant %v", i, got[i], ref[i])
		}
	}
	// spot checks that the rows are the events, not merely equal
	if got[0][0] != "e1" || got[len(got)-1][0] != fmt.Sprintf("ev-%09d", 100000+2999-1) {
		t.Errorf("first and last event ids %v, %v", got[0][0], got[len(got)-1][0])
	}
}

// readAllRawEvents reads every column of vigil_events, ordered by event id.
func readAllRawEvents(t *testing.T, s *Sink) [][]any {
	t.Helper()
	ctx := testContext(t)
	rows, err := s.Conn().Query(ctx, fmt.Sprintf("SELECT %s FROM %s.vigil_events ORDER BY event_id", joinColumns(rawEventColumns), s.Database()))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out [][]any
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			row[i] = reflect.ValueOf(p).Elem().Interface()
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func joinColumns(cols []string) string {
	s := ""
	for i, c := range cols {
		if i > 0 {
			s += ", "
		}
		s += c
	}
	return s
}
