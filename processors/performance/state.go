package performance

import (
	"errors"
	"fmt"
	"math"

	"github.com/vigil-ml/vigil/processors/stats"
)

// DefaultThreshold is the usual decision threshold of a binary model: a score
// at or above it predicts the positive class.
const DefaultThreshold = 0.5

// probEps is the clipping bound of LogLoss: float64 machine epsilon, the value
// scikit-learn uses for float64 probabilities (np.finfo(float64).eps).
const probEps = 0x1p-52

// Merge errors. Both are permanent: the two states measure different things
// and no retry makes them mergeable.
var (
	// ErrTaskMismatch: the states belong to different tasks.
	ErrTaskMismatch = errors.New("performance states of different tasks")
	// ErrThresholdMismatch: binary states with different decision thresholds;
	// their confusion counts cannot be added.
	ErrThresholdMismatch = errors.New("binary performance states with different thresholds")
)

// State is one window's performance state for one model and task: the
// counts and sums every metric of Metrics derives from. Merging the states of
// two disjoint sets of predictions gives the state of their union.
//
// Create one with NewState (or UnmarshalBinary). Exactly one of Binary,
// Multiclass and Regression is used, the one of Task; it is created on the
// first Add or Merge when nil.
type State struct {
	Task Task
	// Threshold is the binary decision threshold: a score >= Threshold
	// predicts positive. It must not change once pairs are added (the
	// confusion counts are taken at it). NewState sets DefaultThreshold for
	// the other tasks, which ignore it.
	Threshold float64
	// Predictions counts the predictions of the window, labelled or not
	// (AddPrediction); the denominator of Metrics.LabelCoverage.
	Predictions uint64

	Binary     *BinaryState
	Multiclass *MulticlassState
	Regression *RegressionState

	// Delay holds the label delays in seconds of the labelled pairs
	// counted in the metrics (negative delays as 0, NaN ones not at all).
	Delay stats.Sketch
}

// NewState returns an empty state for task. threshold is the binary decision
// threshold (NaN selects DefaultThreshold); other tasks ignore it. It panics
// on an invalid task: that is a bug in the caller.
func NewState(task Task, threshold float64) *State {
	s := &State{Task: task, Threshold: DefaultThreshold}
	switch task {
	case TaskBinary:
		if !math.IsNaN(threshold) {
			s.Threshold = threshold + 0 // -0 -> 0: one threshold, one encoding
		}
		s.Binary = &BinaryState{}
	case TaskMulticlass:
		s.Multiclass = &MulticlassState{}
	case TaskRegression:
		s.Regression = &RegressionState{}
	default:
		panic(fmt.Sprintf("BUG: performance.NewState with invalid task %d", task))
	}
	return s
}

// AddPrediction counts one prediction of the window, whether or not a label
// joins it.
func (s *State) AddPrediction() { s.Predictions++ }

// addDelay records the delay of a label counted in the metrics.
func (s *State) addDelay(seconds float64) {
	s.Delay.Add(max(seconds, 0)) // max keeps NaN, which the sketch ignores
}

// binary returns the binary state, creating it when nil. Calling a binary
// method on a state of another task is a bug in the caller.
func (s *State) binary() *BinaryState {
	if s.Task != TaskBinary {
		panic("BUG: binary performance method on a " + s.Task.String() + " state")
	}
	if s.Binary == nil {
		s.Binary = &BinaryState{}
	}
	return s.Binary
}

func (s *State) multiclass() *MulticlassState {
	if s.Task != TaskMulticlass {
		panic("BUG: multiclass performance method on a " + s.Task.String() + " state")
	}
	if s.Multiclass == nil {
		s.Multiclass = &MulticlassState{}
	}
	return s.Multiclass
}

func (s *State) regression() *RegressionState {
	if s.Task != TaskRegression {
		panic("BUG: regression performance method on a " + s.Task.String() + " state")
	}
	if s.Regression == nil {
		s.Regression = &RegressionState{}
	}
	return s.Regression
}

// Merge adds the predictions and labels counted in o to s; o is not modified
// (o may be s). It returns an error wrapping ErrTaskMismatch or
// ErrThresholdMismatch, and leaves s unchanged, when the states measure
// different things.
func (s *State) Merge(o *State) error {
	if o.Task != s.Task {
		return fmt.Errorf("merge %s performance state into %s one: %w", o.Task, s.Task, ErrTaskMismatch)
	}
	if s.Task == TaskBinary && o.Threshold != s.Threshold {
		return fmt.Errorf("merge binary performance state with threshold %v into one with threshold %v: %w",
			o.Threshold, s.Threshold, ErrThresholdMismatch)
	}
	if o == s {
		o = s.clone()
	}
	s.Predictions += o.Predictions
	s.Delay.Merge(&o.Delay)
	switch s.Task {
	case TaskBinary:
		if o.Binary != nil {
			s.binary().merge(o.Binary)
		}
	case TaskMulticlass:
		if o.Multiclass != nil {
			s.multiclass().merge(o.Multiclass)
		}
	case TaskRegression:
		if o.Regression != nil {
			s.regression().merge(o.Regression)
		}
	default:
		panic(fmt.Sprintf("BUG: merge of performance states with invalid task %d", s.Task))
	}
	return nil
}

// clone returns a deep copy of s.
func (s *State) clone() *State {
	c := &State{Task: s.Task, Threshold: s.Threshold, Predictions: s.Predictions}
	c.Delay.Merge(&s.Delay)
	if s.Binary != nil {
		c.Binary = s.Binary.clone()
	}
	if s.Multiclass != nil {
		c.Multiclass = s.Multiclass.clone()
	}
	if s.Regression != nil {
		r := *s.Regression
		c.Regression = &r
	}
	return c
}

// Metrics computes the metrics of the state. It does not modify s; the
// result shares no memory with it.
func (s *State) Metrics() Metrics {
	m := Metrics{
		Task:          s.Task,
		Predictions:   s.Predictions,
		LabelDelayP50: s.Delay.Quantile(0.5),
		LabelDelayP95: s.Delay.Quantile(0.95),
	}
	switch s.Task {
	case TaskBinary:
		b := s.Binary
		if b == nil {
			b = &BinaryState{}
		}
		bm := b.metrics(s.Threshold)
		m.Binary = &bm
		m.Labeled, m.Invalid = b.labeled(), b.invalid
	case TaskMulticlass:
		mc := s.Multiclass
		if mc == nil {
			mc = &MulticlassState{}
		}
		mm := mc.metrics()
		m.Multiclass = &mm
		m.Labeled, m.Invalid = mc.labeled(), mc.invalid
	case TaskRegression:
		r := s.Regression
		if r == nil {
			r = &RegressionState{}
		}
		rm := r.metrics()
		m.Regression = &rm
		m.Labeled, m.Invalid = r.n, r.invalid
	}
	m.LabelCoverage = ratio(m.Labeled, m.Predictions)
	return m
}

// ratio returns a/b, NaN when b is 0.
func ratio(a, b uint64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// zeroDivision returns a/b, or 0 when b is 0: scikit-learn's default
// zero_division ("warn", which returns 0.0 after a warning).
func zeroDivision(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// clipProb clips a probability to [eps, 1-eps] as scikit-learn's log_loss
// does before taking the logarithm.
func clipProb(p float64) float64 { return min(max(p, probEps), 1-probEps) }
