package report_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/internal/report"
	"github.com/vigil-ml/vigil/internal/testenv/fixture"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/stats"
)

// ScanWindowStates returns, decoded, exactly the states WindowStates
// returns (those of all events and of the segment key asked for), in the
// same order.
func TestScanWindowStatesEqualsWindowStates(t *testing.T) {
	ctx := context.Background()
	sink, _ := testsink.Start(t, "vigil_report_scan")
	if err := fixture.Write(ctx, sink, fixture.Demo("fraud", demoStart)); err != nil {
		t.Fatal(err)
	}
	from, to := demoStart.Add(2*time.Minute), demoStart.Add(9*time.Minute)
	all, err := sink.Windows().WindowStates(ctx, "fraud", "", from, to)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		segmentKey string
		want       int // states: 7 windows x (2 partitions + 2 regions)
	}{{"", 14}, {"region", 28}, {"reg", 14}, {"country", 14}} {
		t.Run("by="+tc.segmentKey, func(t *testing.T) {
			var want []*stats.WindowState
			for _, st := range all {
				if st.Segment == "" || (tc.segmentKey != "" && strings.HasPrefix(st.Segment, tc.segmentKey+"=")) {
					want = append(want, st)
				}
			}
			var got []*stats.WindowState
			err := sink.Windows().ScanWindowStates(ctx, "fraud", "", tc.segmentKey, from, to, func(row report.WindowRow) error {
				st, err := row.Decode()
				if err != nil {
					return err
				}
				if st.Key != row.Key {
					t.Errorf("row key %+v, decoded state's %+v", row.Key, st.Key)
				}
				got = append(got, st)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want || len(want) != tc.want {
				t.Fatalf("scanned %d states, WindowStates %d, want %d", len(got), len(want), tc.want)
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("state %d: scanned %+v, WindowStates %+v", i, got[i].Key, want[i].Key)
				}
			}
		})
	}
}

// A report read in several scans (ScanSpan shorter than the range) and
// with one worker has the same data as one read in one scan.
func TestBuildSameAcrossScansAndWorkers(t *testing.T) {
	ctx := context.Background()
	sink, _ := testsink.Start(t, "vigil_report_spans")
	if err := fixture.Write(ctx, sink, fixture.Demo("fraud", demoStart)); err != nil {
		t.Fatal(err)
	}
	build := func(span time.Duration, workers int, every time.Duration) string {
		t.Helper()
		defer func(s time.Duration, w int) { report.ScanSpan, report.Workers = s, w }(report.ScanSpan, report.Workers)
		report.ScanSpan, report.Workers = span, workers
		r, err := report.Build(ctx, stores(sink), report.Query{Model: "fraud", From: demoStart, To: demoStart.Add(time.Hour), By: "region", Every: every})
		if err != nil {
			t.Fatal(err)
		}
		r.Generated = time.Time{}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, every := range []time.Duration{0, 2 * time.Minute, 5 * time.Minute} {
		want := build(report.ScanSpan, report.Workers, every)
		if !strings.Contains(want, `"Segment":"region=eu"`) {
			t.Fatalf("every %v: no segment region=eu in the report", every)
		}
		for _, c := range []struct {
			span    time.Duration
			workers int
		}{{3 * time.Minute, 1}, {5 * time.Minute, 3}, {time.Minute, 2}} {
			if got := build(c.span, c.workers, every); got != want {
				t.Errorf("every %v, scans of %v, %d workers: the report differs from one scan's", every, c.span, c.workers)
			}
		}
	}
}
