package performance

import (
	"errors"
	"fmt"
	"testing"
)

// fmtMetrics prints every field, so that NaN compares equal to NaN.
func fmtMetrics(m Metrics) string {
	top := m
	top.Binary, top.Multiclass, top.Regression = nil, nil, nil
	return fmt.Sprintf("%+v %+v %+v %+v", top, m.Binary, m.Multiclass, m.Regression)
}

func FuzzUnmarshalState(f *testing.F) {
	for _, s := range seedStates() {
		enc, err := s.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s State
		if err := s.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("error %v does not wrap ErrCorruptState", err)
			}
			return
		}
		m := s.Metrics()
		enc, err := s.AppendBinary(nil)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var d State
		if err := d.UnmarshalBinary(enc); err != nil {
			t.Fatalf("decode the re-encoding: %v", err)
		}
		again, _ := d.AppendBinary(nil)
		if string(again) != string(enc) {
			t.Fatalf("re-encoding is not stable")
		}
		if fmtMetrics(d.Metrics()) != fmtMetrics(m) {
			t.Fatalf("metrics changed through a round trip")
		}
		// A decoded state merges like any other.
		fresh := &State{Task: s.Task, Threshold: s.Threshold}
		if err := fresh.Merge(&s); err != nil {
			t.Fatalf("merge: %v", err)
		}
		_ = fresh.Metrics()
	})
}
