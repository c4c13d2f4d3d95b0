package reference

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vigil-ml/vigil/schemas"
)

// segmentEvents: amount is i in region eu (even i), 1000+i in us (i % 4
// == 1), untagged otherwise; the tag is an event segment or, flat, a
// string feature.
func segmentEvents(n int, flat bool) []schemas.Event {
	evs := make([]schemas.Event, n)
	for i := range evs {
		region, amount := "", float64(i)
		switch {
		case i%2 == 0:
			region = "eu"
		case i%4 == 1:
			region, amount = "us", float64(1000+i)
		}
		e := schemas.Event{ID: "e", Model: "fraud", Time: testTime, Prediction: schemas.Score(0.5),
			Features: []schemas.Feature{schemas.Num("amount", amount)}}
		if region != "" {
			if flat {
				e.Features = append(e.Features, schemas.Str("region", region))
			} else {
				e.Segments = []schemas.Tag{{Key: "region", Value: region}}
			}
		}
		evs[i] = e
	}
	return evs
}

// TestBuilderSegments: with Segment, the profile gets one profile per value
// of the segment key, from event tags or from a string column (which is
// then no feature), and they survive the binary encoding.
func TestBuilderSegments(t *testing.T) {
	for _, flat := range []bool{false, true} {
		name := "tags"
		if flat {
			name = "column"
		}
		t.Run(name, func(t *testing.T) {
			const n = 400
			p := build(t, records(t, segmentEvents(n, flat), 64), BuilderOptions{Segment: "region"})
			if p.Rows != n || p.Feature("region") != nil || p.Feature("amount").Count != n {
				t.Fatalf("whole profile: rows %d, features %v", p.Rows, p.FeatureNames())
			}
			if len(p.Segments) != 2 || p.Segments[0].Segment != "region=eu" || p.Segments[1].Segment != "region=us" {
				t.Fatalf("segments %+v", p.Segments)
			}
			eu, us := p.ForSegment("region=eu"), p.ForSegment("region=us")
			if eu == nil || us == nil || p.ForSegment("region=fr") != nil {
				t.Fatal("ForSegment")
			}
			a, b := eu.Feature("amount"), us.Feature("amount")
			if eu.Rows != n/2 || a.Count != n/2 || a.Min != 0 || a.Max != n-2 || us.Rows != n/4 || b.Min != 1001 || b.Max != 1000+n-3 {
				t.Errorf("eu: %d rows, amount %d values in [%v, %v]; us: %d rows in [%v, %v]", eu.Rows, a.Count, a.Min, a.Max, us.Rows, b.Min, b.Max)
			}
			if eu.ID != p.ID || eu.Model != "fraud" || len(eu.Segments) != 0 {
				t.Errorf("segment profile meta %+v", eu.Meta)
			}
			data, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if data[len(encodingMagic)] != 3 {
				t.Errorf("encoding version %d, want 3", data[len(encodingMagic)])
			}
			var q Profile
			if err := q.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			again, _ := q.MarshalBinary()
			if !slices.Equal(again, data) || len(q.Segments) != 2 || q.ForSegment("region=us").Feature("amount").Max != b.Max {
				t.Error("segments changed in the round trip")
			}
		})
	}
}

// TestBuildFileSegmentColumn: a CSV's segment column must be strings.
func TestBuildFileSegmentColumn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.csv")
	if err := os.WriteFile(path, []byte("amount,zone,prediction_score\n1,1,0.5\n2,2,0.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	meta := Meta{Model: "m"}
	if _, err := BuildFromFile(t.Context(), path, meta, ReadOptions{}, BuilderOptions{Segment: "zone"}); err == nil {
		t.Error("a numeric segment column was accepted")
	}
	p, err := BuildFromFile(t.Context(), path, meta, ReadOptions{Kinds: map[string]schemas.Kind{"zone": schemas.String}}, BuilderOptions{Segment: "zone"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Segments) != 2 || p.Segments[0].Segment != "zone=1" || p.Feature("zone") != nil {
		t.Errorf("segments %+v, features %v", p.Segments, p.FeatureNames())
	}
}
