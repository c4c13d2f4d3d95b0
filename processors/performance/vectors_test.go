package performance

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// The vectors come from testdata/make_vectors.py (scikit-learn; versions in
// the file).
const vectorsPath = "testdata/vectors.json"

// relTol is the relative agreement demanded of every metric (absolute for
// values below 1 in magnitude).
const relTol = 1e-9

// num decodes a JSON number or one of the strings "NaN", "+Inf", "-Inf".
type num float64

func (n *num) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "NaN":
			*n = num(math.NaN())
		case "+Inf":
			*n = num(math.Inf(1))
		case "-Inf":
			*n = num(math.Inf(-1))
		default:
			return fmt.Errorf("decode number %q", s)
		}
		return nil
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*n = num(f)
	return err
}

type prf struct {
	Precision, Recall, F1 num
}

type binaryVector struct {
	Name                  string
	Threshold             float64
	Scores                []num
	Labels                []bool
	Delays                []num
	TP, FP, TN, FN        uint64
	Accuracy              num
	Precision, Recall, F1 num
	ROCAUC                num `json:"roc_auc"`
	PRAUC                 num `json:"pr_auc"`
	LogLoss               num `json:"log_loss"`
	Brier                 num
	PredictedPositiveRate num `json:"predicted_positive_rate"`
	LabelPositiveRate     num `json:"label_positive_rate"`
	DelayP50              num `json:"delay_p50"`
	DelayP95              num `json:"delay_p95"`
}

type multiclassVector struct {
	Name                  string
	Actual, Predicted     []string
	Classes               []string
	Confusion             [][]uint64
	Accuracy              num
	Precision, Recall, F1 []num
	Support               []uint64
	Macro, Micro          prf
	Weighted              prf
	ProbClasses           []string `json:"prob_classes"`
	Probs                 [][]num
	LogLoss               num `json:"log_loss"`
}

type regressionVector struct {
	Name         string
	Pred, Actual []num
	MAE, RMSE    num
	MAPE         num
	MAPENonZero  num    `json:"mape_nonzero"`
	ZeroLabels   uint64 `json:"zero_labels"`
	R2           num
	MeanError    num `json:"mean_error"`
}

type vectors struct {
	Versions   map[string]string
	Binary     []binaryVector
	Multiclass []multiclassVector
	Regression []regressionVector
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("read vectors (regenerate with testdata/make_vectors.py): %v", err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", vectorsPath, err)
	}
	if len(v.Binary) == 0 || len(v.Multiclass) == 0 || len(v.Regression) == 0 {
		t.Fatalf("%s holds no cases", vectorsPath)
	}
	return v
}

// closeTo reports whether got agrees with want to tol, relative (absolute
// below 1); NaN matches only NaN.
func closeTo(got, want, tol float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	if got == want {
		return true
	}
	return math.Abs(got-want) <= tol*max(1, math.Abs(want))
}

func checkNum(t *testing.T, what string, got float64, want num, tol float64) {
	t.Helper()
	if !closeTo(got, float64(want), tol) {
		t.Errorf("%s = %.17g, want %.17g (diff %.3g)", what, got, float64(want), got-float64(want))
	}
}

// splitStates adds the pairs 0..n-1 to parts states (each pair to a random
// one), round-trips each through its encoding and merges them.
func splitStates(t *testing.T, rng *rand.Rand, n, parts int, newState func() *State, add func(s *State, i int)) *State {
	t.Helper()
	states := make([]*State, parts)
	for i := range states {
		states[i] = newState()
	}
	for i := range n {
		add(states[rng.IntN(parts)], i)
	}
	merged := newState()
	for i, s := range states {
		enc, err := s.AppendBinary(nil)
		if err != nil {
			t.Fatalf("encode part %d: %v", i, err)
		}
		var dec State
		if err := dec.UnmarshalBinary(enc); err != nil {
			t.Fatalf("decode part %d: %v", i, err)
		}
		if err := merged.Merge(&dec); err != nil {
			t.Fatalf("merge part %d: %v", i, err)
		}
	}
	return merged
}

func TestVectorsBinary(t *testing.T) {
	v := loadVectors(t)
	t.Logf("scikit-learn %s", v.Versions["scikit-learn"])
	for _, c := range v.Binary {
		t.Run(c.Name, func(t *testing.T) {
			add := func(s *State, i int) {
				delay := 0.0
				if c.Delays != nil {
					delay = float64(c.Delays[i])
				}
				s.AddPrediction()
				s.AddBinary(float64(c.Scores[i]), c.Labels[i], delay)
			}
			whole := NewState(TaskBinary, c.Threshold)
			for i := range c.Scores {
				add(whole, i)
			}
			rng := rand.New(rand.NewPCG(1, uint64(len(c.Scores))))
			newState := func() *State { return NewState(TaskBinary, c.Threshold) }
			merged := splitStates(t, rng, len(c.Scores), 3, newState, add)
			for _, st := range []struct {
				name string
				s    *State
			}{{"whole", whole}, {"merged", merged}} {
				m := st.s.Metrics()
				b := m.Binary
				if b.TP != c.TP || b.FP != c.FP || b.TN != c.TN || b.FN != c.FN {
					t.Errorf("%s: TP FP TN FN = %d %d %d %d, want %d %d %d %d", st.name, b.TP, b.FP, b.TN, b.FN, c.TP, c.FP, c.TN, c.FN)
				}
				if m.Labeled != uint64(len(c.Scores)) || m.Predictions != m.Labeled || m.LabelCoverage != 1 {
					t.Errorf("%s: labeled %d of %d, coverage %v", st.name, m.Labeled, m.Predictions, m.LabelCoverage)
				}
				checks := []struct {
					name string
					got  float64
					want num
				}{
					{"Accuracy", b.Accuracy, c.Accuracy},
					{"Precision", b.Precision, c.Precision},
					{"Recall", b.Recall, c.Recall},
					{"F1", b.F1, c.F1},
					{"ROCAUC", b.ROCAUC, c.ROCAUC},
					{"PRAUC", b.PRAUC, c.PRAUC},
					{"LogLoss", b.LogLoss, c.LogLoss},
					{"Brier", b.Brier, c.Brier},
					{"PredictedPositiveRate", b.PredictedPositiveRate, c.PredictedPositiveRate},
					{"LabelPositiveRate", b.LabelPositiveRate, c.LabelPositiveRate},
				}
				for _, ch := range checks {
					checkNum(t, st.name+" "+ch.name, ch.got, ch.want, relTol)
				}
				if b.ScoresQuantised || (b.AUCErrorBound != 0 && !math.IsNaN(b.AUCErrorBound)) {
					t.Errorf("%s: quantised %v, AUC error bound %v for %d scores", st.name, b.ScoresQuantised, b.AUCErrorBound, len(c.Scores))
				}
				if c.Delays != nil { // stats.Sketch: within 1% of the nearest-rank quantile
					checkNum(t, st.name+" LabelDelayP50", m.LabelDelayP50, c.DelayP50, 0.01)
					checkNum(t, st.name+" LabelDelayP95", m.LabelDelayP95, c.DelayP95, 0.01)
				}
			}
		})
	}
}

func TestVectorsMulticlass(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Multiclass {
		t.Run(c.Name, func(t *testing.T) {
			var probs [][]float64
			for _, row := range c.Probs {
				probs = append(probs, make([]float64, len(row)))
				i := len(probs) - 1
				probs[i] = make([]float64, len(row))
				for j, p := range row {
					probs[i][j] = float64(p)
				}
			}
			add := func(s *State, i int) {
				var p []float64
				if probs != nil {
					p = probs[i]
				}
				s.AddPrediction()
				s.AddMulticlass(c.Predicted[i], c.Actual[i], c.ProbClasses, p, 1)
			}
			whole := NewState(TaskMulticlass, DefaultThreshold)
			for i := range c.Actual {
				add(whole, i)
			}
			rng := rand.New(rand.NewPCG(2, uint64(len(c.Actual))))
			newState := func() *State { return NewState(TaskMulticlass, DefaultThreshold) }
			merged := splitStates(t, rng, len(c.Actual), 3, newState, add)
			for _, st := range []struct {
				name string
				s    *State
			}{{"whole", whole}, {"merged", merged}} {
				m := st.s.Metrics()
				mc := m.Multiclass
				if fmt.Sprint(mc.Classes) != fmt.Sprint(c.Classes) {
					t.Fatalf("%s: classes %q, want %q", st.name, mc.Classes, c.Classes)
				}
				if fmt.Sprint(mc.Confusion) != fmt.Sprint(c.Confusion) {
					t.Errorf("%s: confusion %v, want %v", st.name, mc.Confusion, c.Confusion)
				}
				if fmt.Sprint(mc.Support) != fmt.Sprint(c.Support) {
					t.Errorf("%s: support %v, want %v", st.name, mc.Support, c.Support)
				}
				for i, cl := range c.Classes {
					checkNum(t, st.name+" Precision "+cl, mc.Precision[i], c.Precision[i], relTol)
					checkNum(t, st.name+" Recall "+cl, mc.Recall[i], c.Recall[i], relTol)
					checkNum(t, st.name+" F1 "+cl, mc.F1[i], c.F1[i], relTol)
				}
				checks := []struct {
					name string
					got  float64
					want num
				}{
					{"Accuracy", mc.Accuracy, c.Accuracy},
					{"MacroPrecision", mc.MacroPrecision, c.Macro.Precision},
					{"MacroRecall", mc.MacroRecall, c.Macro.Recall},
					{"MacroF1", mc.MacroF1, c.Macro.F1},
					{"MicroPrecision", mc.MicroPrecision, c.Micro.Precision},
					{"MicroRecall", mc.MicroRecall, c.Micro.Recall},
					{"MicroF1", mc.MicroF1, c.Micro.F1},
					{"WeightedPrecision", mc.WeightedPrecision, c.Weighted.Precision},
					{"WeightedRecall", mc.WeightedRecall, c.Weighted.Recall},
					{"WeightedF1", mc.WeightedF1, c.Weighted.F1},
					{"LogLoss", mc.LogLoss, c.LogLoss},
				}
				for _, ch := range checks {
					checkNum(t, st.name+" "+ch.name, ch.got, ch.want, relTol)
				}
				wantLL, wantMissing := uint64(len(c.Actual)), uint64(0)
				if c.Probs == nil {
					wantLL, wantMissing = 0, wantLL
				}
				if mc.LogLossCount != wantLL || mc.ProbsMissing != wantMissing {
					t.Errorf("%s: log-loss count %d, probs missing %d; want %d, %d", st.name, mc.LogLossCount, mc.ProbsMissing, wantLL, wantMissing)
				}
			}
		})
	}
}

func TestVectorsRegression(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Regression {
		t.Run(c.Name, func(t *testing.T) {
			add := func(s *State, i int) {
				s.AddPrediction()
				s.AddRegression(float64(c.Pred[i]), float64(c.Actual[i]), 1)
			}
			whole := NewState(TaskRegression, DefaultThreshold)
			for i := range c.Pred {
				add(whole, i)
			}
			rng := rand.New(rand.NewPCG(3, uint64(len(c.Pred))))
			newState := func() *State { return NewState(TaskRegression, DefaultThreshold) }
			merged := splitStates(t, rng, len(c.Pred), 3, newState, add)
			for _, st := range []struct {
				name string
				s    *State
			}{{"whole", whole}, {"merged", merged}} {
				r := st.s.Metrics().Regression
				if r.N != uint64(len(c.Pred)) || r.ZeroLabels != c.ZeroLabels {
					t.Errorf("%s: N %d, zero labels %d; want %d, %d", st.name, r.N, r.ZeroLabels, len(c.Pred), c.ZeroLabels)
				}
				checks := []struct {
					name string
					got  float64
					want num
				}{
					{"MAE", r.MAE, c.MAE},
					{"RMSE", r.RMSE, c.RMSE},
					{"MAPE", r.MAPE, c.MAPE},
					{"MAPENonZero", r.MAPENonZero, c.MAPENonZero},
					{"R2", r.R2, c.R2},
					{"MeanError", r.MeanError, c.MeanError},
				}
				for _, ch := range checks {
					checkNum(t, st.name+" "+ch.name, ch.got, ch.want, relTol)
				}
			}
		})
	}
}
