package performance

import (
	"strconv"
	"time"

	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// Prediction is one stored prediction (a row of vigil_events), as the join
// reads it.
type Prediction struct {
	EventID, ModelVersion string
	Time                  time.Time
	Score                 *float64
	Label                 *string
	Value                 *float64
	ProbaClasses          []string
	ProbaValues           []float64
	SegmentKeys           []string
	SegmentValues         []string
}

// StoredLabel is the label in force for one event id: of several labels for
// the same prediction, the one with the newest label time.
type StoredLabel struct {
	Time     time.Time
	HasClass bool
	Class    string
	HasValue bool
	Value    float64
	Copies   uint64 // label messages stored for the event id
}

// Window is the performance of one prediction window (or any merge of
// windows) of a model version and segment.
type Window struct {
	Model, ModelVersion string
	Segment             string // "" for all predictions, "key=value" for a segment
	Start, End          time.Time
	State               *State
}

// Join joins the predictions of model in the window [start, end) with their
// labels (by event id) and returns a Window per model version and segment,
// in the order of their first prediction; it does no I/O. A label counts
// when its label time is at most horizon after the prediction. The task of a
// model version is that of its first prediction (score: binary, class:
// multiclass, value: regression); predictions of another kind count in
// Predictions only. Segments are those of segmentKeys, capped as the window
// states are (stats.SegmentCap, one scope per window of the model).
func Join(model string, start, end time.Time, preds []Prediction, labels map[string]StoredLabel,
	horizon time.Duration, threshold float64, segmentKeys []string) []Window {
	type key struct{ version, segment string }
	states := map[key]*State{}
	var order []key
	var segCap stats.SegmentCap
	scope := stats.Key{Model: model, WindowStart: start.UnixMilli()}
	stateFor := func(k key, task Task) *State {
		s := states[k]
		if s == nil {
			s = NewState(task, threshold)
			states[k] = s
			order = append(order, k)
		}
		return s
	}
	var keys []key
	for i := range preds {
		p := &preds[i]
		task, ok := taskOf(p)
		if !ok {
			continue
		}
		keys = append(keys[:0], key{p.ModelVersion, ""})
		for _, sk := range segmentKeys {
			for t, k := range p.SegmentKeys {
				if k != sk || t >= len(p.SegmentValues) {
					continue
				}
				keys = append(keys, key{p.ModelVersion, segCap.Segment(scope, sk, p.SegmentValues[t])})
				break
			}
		}
		l, labeled := labels[p.EventID]
		if labeled && l.Time.Sub(p.Time) > horizon {
			labeled = false // expired: counted by `vigil query labels`
		}
		delay := l.Time.Sub(p.Time).Seconds()
		for _, k := range keys {
			s := stateFor(k, task)
			s.AddPrediction()
			if !labeled || s.Task != task {
				continue
			}
			switch task {
			case TaskBinary:
				if pos, ok := (&schemas.Label{HasClass: l.HasClass, Class: l.Class, HasValue: l.HasValue, Value: l.Value}).Positive(); ok {
					s.AddBinary(*p.Score, pos, delay)
				}
			case TaskMulticlass:
				actual := l.Class
				if !l.HasClass {
					actual = strconv.FormatFloat(l.Value, 'g', -1, 64)
				}
				s.AddMulticlass(*p.Label, actual, p.ProbaClasses, p.ProbaValues, delay)
			case TaskRegression:
				if l.HasValue {
					s.AddRegression(*p.Value, l.Value, delay)
				} else if v, err := strconv.ParseFloat(l.Class, 64); err == nil {
					s.AddRegression(*p.Value, v, delay)
				}
			}
		}
	}
	out := make([]Window, 0, len(order))
	for _, k := range order {
		out = append(out, Window{Model: model, ModelVersion: k.version, Segment: k.segment, Start: start, End: end, State: states[k]})
	}
	return out
}

func taskOf(p *Prediction) (Task, bool) {
	switch {
	case p.Score != nil:
		return TaskBinary, true
	case p.Label != nil:
		return TaskMulticlass, true
	case p.Value != nil:
		return TaskRegression, true
	}
	return 0, false
}
