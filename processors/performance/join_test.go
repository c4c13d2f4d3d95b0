package performance

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-ml/vigil/processors/stats"
)

func TestJoin(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	score := func(v float64) *float64 { return &v }
	class := func(s string) *string { return &s }
	pred := func(id, version string, p Prediction, region string) Prediction {
		p.EventID, p.ModelVersion, p.Time = id, version, t0
		if region != "" {
			p.SegmentKeys, p.SegmentValues = []string{"tier", "region"}, []string{"gold", region}
		}
		return p
	}
	label := func(v float64, after time.Duration) StoredLabel {
		return StoredLabel{Time: t0.Add(after), HasValue: true, Value: v, Copies: 1}
	}
	preds := []Prediction{
		pred("a", "v1", Prediction{Score: score(0.9)}, "eu"),
		pred("b", "v1", Prediction{Score: score(0.2)}, "eu"),
		pred("c", "v1", Prediction{Score: score(0.7)}, "us"),
		pred("d", "v1", Prediction{Score: score(0.6)}, ""),   // label past the horizon
		pred("e", "v1", Prediction{Score: score(0.4)}, ""),   // label not a binary outcome
		pred("f", "v1", Prediction{Label: class("x")}, ""),   // another task: counted only
		pred("g", "v2", Prediction{Label: class("x")}, "eu"), // multiclass version
	}
	labels := map[string]StoredLabel{
		"a": label(1, time.Hour), "b": label(0, 2*time.Hour), "c": label(0, 3*time.Hour),
		"d": label(1, 49*time.Hour), "e": label(7, time.Hour), "f": label(1, time.Hour),
		"g": {Time: t0.Add(time.Hour), HasClass: true, Class: "y"},
	}
	rows := Join("m", t0, t0.Add(time.Minute), preds, labels, 48*time.Hour, 0.5, []string{"region"})
	got := map[string]string{}
	for _, r := range rows {
		m := r.State.Metrics()
		s := fmt.Sprintf("%s pred=%d lab=%d", m.Task, m.Predictions, m.Labeled)
		if m.Binary != nil {
			s += fmt.Sprintf(" tp=%d fp=%d tn=%d fn=%d", m.Binary.TP, m.Binary.FP, m.Binary.TN, m.Binary.FN)
		}
		if m.Multiclass != nil {
			s += fmt.Sprintf(" acc=%v", m.Multiclass.Accuracy)
		}
		got[r.ModelVersion+" "+r.Segment] = s
	}
	want := map[string]string{
		"v1 ":          "binary pred=6 lab=3 tp=1 fp=1 tn=1 fn=0",
		"v1 region=eu": "binary pred=2 lab=2 tp=1 fp=0 tn=1 fn=0",
		"v1 region=us": "binary pred=1 lab=1 tp=0 fp=1 tn=0 fn=0",
		"v2 ":          "multiclass pred=1 lab=1 acc=0",
		"v2 region=eu": "multiclass pred=1 lab=1 acc=0",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if d := rows[0].State.Metrics().LabelDelayP50; d < 3600*0.99 || d > 7200*1.01 {
		t.Errorf("label delay p50 = %v s", d)
	}
}

// Beyond stats.MaxSegmentValues values of a key in a window, the rest
// share the segment key=__other__.
func TestJoinSegmentCap(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var preds []Prediction
	for i := range stats.MaxSegmentValues + 5 {
		v := 0.5
		preds = append(preds, Prediction{EventID: strconv.Itoa(i), Time: t0, Score: &v,
			SegmentKeys: []string{"user"}, SegmentValues: []string{"u" + strconv.Itoa(i)}})
	}
	rows := Join("m", t0, t0.Add(time.Minute), preds, nil, time.Hour, 0.5, []string{"user"})
	if len(rows) != 1+stats.MaxSegmentValues+1 {
		t.Fatalf("%d rows", len(rows))
	}
	last := rows[len(rows)-1]
	if last.Segment != "user="+stats.OtherSegment || last.State.Predictions != 5 {
		t.Errorf("last row %s with %d predictions", last.Segment, last.State.Predictions)
	}
}

func benchPairs(n int) ([]Prediction, map[string]StoredLabel, time.Time) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	preds := make([]Prediction, n)
	labels := make(map[string]StoredLabel, n)
	for i := range preds {
		score := rng.Float64()
		id := "e" + strconv.Itoa(i)
		preds[i] = Prediction{EventID: id, ModelVersion: "v1", Time: start.Add(time.Duration(i) * time.Millisecond),
			Score: &score, SegmentKeys: []string{"region"}, SegmentValues: []string{[]string{"eu", "us"}[i%2]}}
		if i%10 != 0 {
			y := 0.0
			if rng.Float64() < score {
				y = 1
			}
			labels[id] = StoredLabel{Time: preds[i].Time.Add(time.Hour), HasValue: true, Value: y, Copies: 1}
		}
	}
	return preds, labels, start
}

// BenchmarkJoin is the in-process part of recomputing one window:
// joining 100k binary predictions with 90k labels into states for the
// whole window and two region segments.
func BenchmarkJoin(b *testing.B) {
	const n = 100_000
	preds, labels, start := benchPairs(n)
	b.ReportAllocs()
	for b.Loop() {
		rows := Join("m", start, start.Add(time.Minute), preds, labels, 7*24*time.Hour, 0.5, []string{"region"})
		if len(rows) != 3 {
			b.Fatal(len(rows))
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "predictions/s")
}
