package performance

import (
	"errors"
	"math"
	"slices"
	"testing"
)

type pair struct {
	score    float64
	positive bool
}

func binaryState(threshold float64, pairs ...pair) *State {
	s := NewState(TaskBinary, threshold)
	for _, p := range pairs {
		s.AddPrediction()
		s.AddBinary(p.score, p.positive, 1)
	}
	return s
}

func TestBinaryHandChecked(t *testing.T) {
	five := []pair{{0.9, true}, {0.8, false}, {0.7, true}, {0.3, false}, {0.5, true}}
	nan := math.NaN()
	tests := []struct {
		name           string
		threshold      float64
		pairs          []pair
		tp, fp, tn, fn uint64
		invalid        uint64
		acc, prec, rec float64
		f1, auc, ap    float64
		logLoss, brier float64
	}{
		{
			// A score equal to the threshold predicts positive (0.5).
			// AUC: 4 of 6 positive-negative pairs ordered. AP: (1 + 2/3 + 3/4) / 3.
			name: "five pairs", threshold: 0.5, pairs: five,
			tp: 3, fp: 1, tn: 1, fn: 0,
			acc: 0.8, prec: 0.75, rec: 1, f1: 6.0 / 7, auc: 4.0 / 6, ap: 29.0 / 36,
			logLoss: -(math.Log(0.9) + math.Log(0.2) + math.Log(0.7) + math.Log(0.7) + math.Log(0.5)) / 5,
			brier:   (0.01 + 0.64 + 0.09 + 0.09 + 0.25) / 5,
		},
		{
			name: "five pairs, threshold 0.85", threshold: 0.85, pairs: five,
			tp: 1, fp: 0, tn: 2, fn: 2,
			acc: 0.6, prec: 1, rec: 1.0 / 3, f1: 0.5, auc: 4.0 / 6, ap: 29.0 / 36,
			logLoss: -(math.Log(0.9) + math.Log(0.2) + math.Log(0.7) + math.Log(0.7) + math.Log(0.5)) / 5,
			brier:   (0.01 + 0.64 + 0.09 + 0.09 + 0.25) / 5,
		},
		{
			// No predicted positive: precision 0 (zero_division), not NaN.
			name: "ties, nothing predicted positive", threshold: 0.9,
			pairs: []pair{{0.5, true}, {0.5, false}},
			tp:    0, fp: 0, tn: 1, fn: 1,
			acc: 0.5, prec: 0, rec: 0, f1: 0, auc: 0.5, ap: 0.5,
			logLoss: math.Log(2), brier: 0.25,
		},
		{
			// -0 is the score 0: one tie, not two scores. Scores outside
			// [0, 1] are clipped for the losses: 1.5 positive loses
			// -log(1-eps) and nothing in Brier.
			name: "signed zero and out of range", threshold: 0.5,
			pairs: []pair{{math.Copysign(0, -1), true}, {0, false}, {1.5, true}, {-0.5, false}},
			tp:    1, fp: 0, tn: 2, fn: 1,
			acc: 0.75, prec: 1, rec: 0.5, f1: 2.0 / 3, auc: (0.5 + 1 + 1 + 1) / 4, ap: (1 + 2.0/3) / 2,
			logLoss: (-math.Log(probEps) - math.Log(1-probEps) - math.Log(1-probEps) - math.Log(1-probEps)) / 4,
			brier:   0.25,
		},
		{
			name: "NaN score is invalid", threshold: 0.5,
			pairs: []pair{{nan, true}, {0.8, true}, {0.2, false}},
			tp:    1, fp: 0, tn: 1, fn: 0, invalid: 1,
			acc: 1, prec: 1, rec: 1, f1: 1, auc: 1, ap: 1,
			logLoss: -(math.Log(0.8) + math.Log(0.8)) / 2, brier: (0.04 + 0.04) / 2,
		},
		{
			// One class: ROC AUC undefined; AP needs a positive.
			name: "negatives only", threshold: 0.5,
			pairs: []pair{{0.8, false}, {0.2, false}},
			tp:    0, fp: 1, tn: 1, fn: 0,
			acc: 0.5, prec: 0, rec: 0, f1: 0, auc: nan, ap: nan,
			logLoss: -(math.Log(0.2) + math.Log(0.8)) / 2, brier: (0.64 + 0.04) / 2,
		},
		{
			name: "empty", threshold: 0.5,
			acc: nan, prec: nan, rec: nan, f1: nan, auc: nan, ap: nan, logLoss: nan, brier: nan,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := binaryState(tt.threshold, tt.pairs...).Metrics()
			b := m.Binary
			if b.TP != tt.tp || b.FP != tt.fp || b.TN != tt.tn || b.FN != tt.fn || m.Invalid != tt.invalid {
				t.Errorf("TP FP TN FN invalid = %d %d %d %d %d, want %d %d %d %d %d",
					b.TP, b.FP, b.TN, b.FN, m.Invalid, tt.tp, tt.fp, tt.tn, tt.fn, tt.invalid)
			}
			if want := tt.tp + tt.fp + tt.tn + tt.fn; m.Labeled != want || m.Predictions != uint64(len(tt.pairs)) {
				t.Errorf("labeled %d of %d predictions, want %d of %d", m.Labeled, m.Predictions, want, len(tt.pairs))
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"Accuracy", b.Accuracy, tt.acc}, {"Precision", b.Precision, tt.prec},
				{"Recall", b.Recall, tt.rec}, {"F1", b.F1, tt.f1},
				{"ROCAUC", b.ROCAUC, tt.auc}, {"PRAUC", b.PRAUC, tt.ap},
				{"LogLoss", b.LogLoss, tt.logLoss}, {"Brier", b.Brier, tt.brier},
			} {
				if !closeTo(c.got, c.want, 1e-12) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if b.ScoresQuantised || (b.AUCErrorBound != 0 && !math.IsNaN(tt.auc)) {
				t.Errorf("quantised %v, AUC error bound %v", b.ScoresQuantised, b.AUCErrorBound)
			}
		})
	}
}

func TestMulticlassHandChecked(t *testing.T) {
	s := NewState(TaskMulticlass, DefaultThreshold)
	probClasses := []string{"b", "a"}
	// (predicted, actual): rows of the confusion matrix are actual classes.
	s.AddMulticlass("a", "a", probClasses, []float64{0.25, 0.75}, 1)
	s.AddMulticlass("b", "a", probClasses, []float64{0.5, 0.5}, 2)
	s.AddMulticlass("b", "b", nil, nil, 3)                              // no probabilities
	s.AddMulticlass("c", "b", probClasses, []float64{0.5}, 4)           // unusable: length
	s.AddMulticlass("c", "c", probClasses, []float64{0.6, 0.4}, 5)      // "c" has no probability: p = 0
	s.AddMulticlass("a", "d", probClasses, []float64{0.3, 0.7}, 6)      // p = 0 as well
	s.AddMulticlass("a", "a", probClasses, []float64{0, math.NaN()}, 7) // NaN at the actual class
	m := s.Metrics()
	mc := m.Multiclass
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(mc.Classes, want) {
		t.Fatalf("classes %q, want %q", mc.Classes, want)
	}
	wantConf := [][]uint64{{2, 1, 0, 0}, {0, 1, 1, 0}, {0, 0, 1, 0}, {1, 0, 0, 0}}
	for i := range wantConf {
		if !slices.Equal(mc.Confusion[i], wantConf[i]) {
			t.Errorf("confusion row %s = %v, want %v", mc.Classes[i], mc.Confusion[i], wantConf[i])
		}
	}
	if m.Labeled != 7 || mc.LogLossCount != 4 || mc.ProbsMissing != 3 {
		t.Errorf("labeled %d, log-loss count %d, probs missing %d; want 7, 4, 3", m.Labeled, mc.LogLossCount, mc.ProbsMissing)
	}
	// Per class (a, b, c, d): predicted 3, 2, 2, 0; actual 3, 2, 1, 1; TP 2, 1, 1, 0.
	wantP := []float64{2.0 / 3, 0.5, 0.5, 0}
	wantR := []float64{2.0 / 3, 0.5, 1, 0}
	wantF := []float64{4.0 / 6, 2.0 / 4, 2.0 / 3, 0}
	for i := range wantP {
		if !closeTo(mc.Precision[i], wantP[i], 1e-15) || !closeTo(mc.Recall[i], wantR[i], 1e-15) || !closeTo(mc.F1[i], wantF[i], 1e-15) {
			t.Errorf("class %s: P R F1 = %v %v %v, want %v %v %v", mc.Classes[i], mc.Precision[i], mc.Recall[i], mc.F1[i], wantP[i], wantR[i], wantF[i])
		}
	}
	if !slices.Equal(mc.Support, []uint64{3, 2, 1, 1}) {
		t.Errorf("support %v", mc.Support)
	}
	wantLL := (-math.Log(0.75) - math.Log(0.5) - 2*math.Log(probEps)) / 4
	checks := []struct {
		name      string
		got, want float64
	}{
		{"Accuracy", mc.Accuracy, 4.0 / 7},
		{"MacroPrecision", mc.MacroPrecision, (2.0/3 + 0.5 + 0.5) / 4},
		{"MacroRecall", mc.MacroRecall, (2.0/3 + 0.5 + 1) / 4},
		{"MacroF1", mc.MacroF1, (4.0/6 + 0.5 + 2.0/3) / 4},
		{"MicroF1", mc.MicroF1, 4.0 / 7},
		{"WeightedRecall", mc.WeightedRecall, (3*2.0/3 + 2*0.5 + 1) / 7},
		{"WeightedPrecision", mc.WeightedPrecision, (3*2.0/3 + 2*0.5 + 0.5) / 7},
		{"LogLoss", mc.LogLoss, wantLL},
		{"LabelDelayP50", m.LabelDelayP50, 4},
	}
	for _, c := range checks {
		if !closeTo(c.got, c.want, 1e-2) || (c.name != "LabelDelayP50" && !closeTo(c.got, c.want, 1e-14)) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestMulticlassMaxClasses(t *testing.T) {
	s := NewState(TaskMulticlass, DefaultThreshold)
	for i := range MaxClasses {
		c := string(rune('A'+i%26)) + string(rune('0'+i/26%10)) + string(rune('a'+i/260))
		s.AddMulticlass(c, c, nil, nil, 0)
	}
	s.AddMulticlass("new", "A0a", nil, nil, 0) // a 1025th class: invalid
	s.AddMulticlass("A0a", "A0a", nil, nil, 0) // known classes: fine
	m := s.Metrics()
	if len(m.Multiclass.Classes) != MaxClasses || m.Invalid != 1 || m.Labeled != MaxClasses+1 {
		t.Errorf("%d classes, %d invalid, %d labeled", len(m.Multiclass.Classes), m.Invalid, m.Labeled)
	}
}

func TestRegressionHandChecked(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name                string
		pairs               [][2]float64 // pred, actual
		n, zero, invalid    uint64
		mae, rmse, mape, nz float64
		r2, meanErr         float64
	}{
		{
			// e = 1, -2, 3; labels 1, 3, 0: mean 4/3, SStot 14/3, SSres 14.
			name: "three", pairs: [][2]float64{{2, 1}, {1, 3}, {3, 0}},
			n: 3, zero: 1,
			mae: 2, rmse: math.Sqrt(14.0 / 3), mape: (1 + 2.0/3 + 3/probEps) / 3, nz: (1 + 2.0/3) / 2,
			r2: -2, meanErr: 2.0 / 3,
		},
		{
			name: "constant labels, exact", pairs: [][2]float64{{3, 3}, {3, 3}},
			n: 2, mae: 0, rmse: 0, mape: 0, nz: 0, r2: 1, meanErr: 0,
		},
		{
			name: "constant labels, errors", pairs: [][2]float64{{4, 3}, {2, 3}},
			n: 2, mae: 1, rmse: 1, mape: 1.0 / 3, nz: 1.0 / 3, r2: 0, meanErr: 0,
		},
		{
			name: "one pair: R2 undefined", pairs: [][2]float64{{1, 2}},
			n: 1, mae: 1, rmse: 1, mape: 0.5, nz: 0.5, r2: nan, meanErr: -1,
		},
		{
			name: "non-finite values are invalid", pairs: [][2]float64{{nan, 1}, {1, math.Inf(1)}, {0, 0}},
			n: 1, zero: 1, invalid: 2, mae: 0, rmse: 0, mape: 0, nz: nan, r2: nan, meanErr: 0,
		},
		{
			name: "empty", mae: nan, rmse: nan, mape: nan, nz: nan, r2: nan, meanErr: nan,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState(TaskRegression, 0.7)
			for _, p := range tt.pairs {
				s.AddRegression(p[0], p[1], 0)
			}
			m := s.Metrics()
			r := m.Regression
			if r.N != tt.n || r.ZeroLabels != tt.zero || m.Invalid != tt.invalid || m.Labeled != tt.n {
				t.Errorf("N %d, zero %d, invalid %d; want %d, %d, %d", r.N, r.ZeroLabels, m.Invalid, tt.n, tt.zero, tt.invalid)
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"MAE", r.MAE, tt.mae}, {"RMSE", r.RMSE, tt.rmse}, {"MAPE", r.MAPE, tt.mape},
				{"MAPENonZero", r.MAPENonZero, tt.nz}, {"R2", r.R2, tt.r2}, {"MeanError", r.MeanError, tt.meanErr},
			} {
				if !closeTo(c.got, c.want, 1e-14) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestLabelCoverageAndDelay(t *testing.T) {
	s := NewState(TaskBinary, DefaultThreshold)
	for range 4 {
		s.AddPrediction()
	}
	s.AddBinary(0.9, true, -30)         // a clock skew: delay 0
	s.AddBinary(0.1, false, math.NaN()) // unknown delay: not recorded
	s.AddBinary(math.NaN(), true, 100)  // invalid: no delay either
	m := s.Metrics()
	if m.Labeled != 2 || m.LabelCoverage != 0.5 || m.Invalid != 1 {
		t.Errorf("labeled %d, coverage %v, invalid %d", m.Labeled, m.LabelCoverage, m.Invalid)
	}
	if s.Delay.Count() != 1 || m.LabelDelayP50 != 0 || m.LabelDelayP95 != 0 {
		t.Errorf("%d delays, p50 %v, p95 %v", s.Delay.Count(), m.LabelDelayP50, m.LabelDelayP95)
	}
	if m := NewState(TaskRegression, 0).Metrics(); !math.IsNaN(m.LabelCoverage) || !math.IsNaN(m.LabelDelayP50) {
		t.Errorf("empty state: coverage %v, delay %v", m.LabelCoverage, m.LabelDelayP50)
	}
}

func TestNewState(t *testing.T) {
	if s := NewState(TaskBinary, math.NaN()); s.Threshold != DefaultThreshold {
		t.Errorf("NaN threshold gives %v", s.Threshold)
	}
	if s := NewState(TaskBinary, math.Copysign(0, -1)); math.Signbit(s.Threshold) {
		t.Errorf("threshold -0 kept its sign")
	}
	if s := NewState(TaskRegression, 0.9); s.Threshold != DefaultThreshold || s.Regression == nil || s.Binary != nil {
		t.Errorf("regression state %+v", s)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("NewState(0) did not panic")
		}
	}()
	NewState(0, 0.5)
}

func TestWrongTaskPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("AddRegression on a binary state did not panic")
		}
	}()
	NewState(TaskBinary, 0.5).AddRegression(1, 2, 0)
}

func TestTask(t *testing.T) {
	for _, task := range []Task{TaskBinary, TaskMulticlass, TaskRegression} {
		got, err := ParseTask(task.String())
		if err != nil || got != task {
			t.Errorf("ParseTask(%q) = %v, %v", task.String(), got, err)
		}
	}
	if _, err := ParseTask("ranking"); !errors.Is(err, ErrUnknownTask) {
		t.Errorf("ParseTask(ranking) error %v", err)
	}
	if s := Task(9).String(); s != "Task(9)" {
		t.Errorf("Task(9) = %q", s)
	}
}

func TestMerge(t *testing.T) {
	a := binaryState(0.5, pair{0.9, true}, pair{0.2, false})
	b := binaryState(0.5, pair{0.6, false}, pair{0.2, true})
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	m := a.Metrics()
	if b := m.Binary; b.TP != 1 || b.FP != 1 || b.TN != 1 || b.FN != 1 || m.Predictions != 4 || b.ROCAUC != 0.625 {
		t.Errorf("merged %+v", b)
	}
	if b.Metrics().Labeled != 2 {
		t.Errorf("merge modified its argument")
	}

	// Merging a state into itself doubles it.
	if err := a.Merge(a); err != nil {
		t.Fatal(err)
	}
	if m2 := a.Metrics(); m2.Labeled != 8 || m2.Predictions != 8 || m2.Binary.ROCAUC != 0.625 || m2.Binary.LogLoss != m.Binary.LogLoss {
		t.Errorf("self-merge: %+v %+v", m2, m2.Binary)
	}

	before, _ := a.AppendBinary(nil)
	errs := []struct {
		name string
		o    *State
		want error
	}{
		{"task", NewState(TaskRegression, 0.5), ErrTaskMismatch},
		{"threshold", binaryState(0.6, pair{0.9, true}), ErrThresholdMismatch},
	}
	for _, e := range errs {
		if err := a.Merge(e.o); !errors.Is(err, e.want) {
			t.Errorf("%s: merge error %v, want %v", e.name, err, e.want)
		}
	}
	if after, _ := a.AppendBinary(nil); string(after) != string(before) {
		t.Errorf("a failed merge changed the state")
	}

	// Thresholds of other tasks do not matter; nil task states are empty.
	r := &State{Task: TaskRegression, Threshold: 0.1}
	if err := r.Merge(NewState(TaskRegression, 0.9)); err != nil {
		t.Errorf("regression merge: %v", err)
	}
	mc := NewState(TaskMulticlass, 0)
	mc.AddMulticlass("x", "y", nil, nil, 0)
	empty := &State{Task: TaskMulticlass}
	if err := empty.Merge(mc); err != nil || empty.Metrics().Labeled != 1 {
		t.Errorf("merge into a zero multiclass state: %v", err)
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	for _, s := range seedStates() {
		enc, err := s.AppendBinary([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		enc = enc[len("prefix"):]
		var d State
		if err := d.UnmarshalBinary(enc); err != nil {
			t.Fatalf("%s: %v", s.Task, err)
		}
		again, _ := d.MarshalBinary()
		if string(again) != string(enc) {
			t.Errorf("%s: re-encoding differs", s.Task)
		}
		if !sameMetrics(s.Metrics(), d.Metrics()) {
			t.Errorf("%s: metrics differ after a round trip:\n%+v\n%+v", s.Task, s.Metrics(), d.Metrics())
		}
		// Every strict prefix is truncated.
		for n := range len(enc) {
			if err := d.UnmarshalBinary(enc[:n]); !errors.Is(err, ErrCorruptState) {
				t.Fatalf("%s: %d of %d bytes: error %v", s.Task, n, len(enc), err)
			}
		}
	}
	if _, err := (&State{}).AppendBinary(nil); err == nil {
		t.Errorf("encoding a state without task succeeded")
	}
}

func TestDecodeRejects(t *testing.T) {
	valid, _ := binaryState(0.5, pair{0.9, true}, pair{0.2, false}).AppendBinary(nil)
	mutate := func(i int, b byte) []byte {
		c := slices.Clone(valid)
		c[i] = b
		return c
	}
	// Layout: version, task, threshold (8), predictions, TP FP TN FN invalid, ...
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"version", mutate(0, 2)},
		{"task 0", mutate(1, 0)},
		{"task 4", mutate(1, 4)},
		{"TP does not match the scores", mutate(11, 2)},
		{"FN does not match the scores", mutate(14, 1)},
		{"trailing byte", append(slices.Clone(valid), 0)},
	}
	for _, tt := range tests {
		s := binaryState(0.3, pair{0.1, true})
		before, _ := s.AppendBinary(nil)
		if err := s.UnmarshalBinary(tt.data); !errors.Is(err, ErrCorruptState) {
			t.Errorf("%s: error %v", tt.name, err)
		}
		if after, _ := s.AppendBinary(nil); string(after) != string(before) {
			t.Errorf("%s: a failed decode changed the state", tt.name)
		}
	}
}

// seedStates returns states of every task and mode, for round trips and
// fuzzing.
func seedStates() []*State {
	var out []*State
	out = append(out, NewState(TaskBinary, 0.5), NewState(TaskMulticlass, 0), NewState(TaskRegression, 0))
	out = append(out, binaryState(0.3, pair{0.9, true}, pair{0.2, false}, pair{0.2, true}, pair{math.Inf(-1), false}, pair{math.NaN(), true}))

	// Quantised: more than MaxExactScores distinct scores, all but three in
	// one grid cell.
	q := NewState(TaskBinary, 0.5)
	for i := range MaxExactScores + 1 {
		q.AddBinary(0.25+float64(i)*0x1p-40, i%3 == 0, float64(i))
	}
	q.AddBinary(0.75, true, 1)
	q.AddBinary(0.8, false, 1)
	q.AddBinary(2, true, 1)
	q.AddPrediction()
	out = append(out, q)

	mc := NewState(TaskMulticlass, 0)
	mc.AddMulticlass("b", "a", []string{"a", "b"}, []float64{0.3, 0.7}, 10)
	mc.AddMulticlass("a", "a", nil, nil, 20)
	mc.AddMulticlass("", "c", []string{"a"}, []float64{1}, 30)
	mc.AddPrediction()
	out = append(out, mc)

	r := NewState(TaskRegression, 0)
	r.AddRegression(1, 2, 3)
	r.AddRegression(-1, 0, 300)
	r.AddRegression(math.NaN(), 0, 300)
	r.AddPrediction()
	out = append(out, r)
	return out
}

// sameMetrics compares metrics, NaN equal to NaN.
func sameMetrics(a, b Metrics) bool {
	return fmtMetrics(a) == fmtMetrics(b)
}
