package performance

import (
	"maps"
	"math"
	"slices"
	"strings"
)

// MaxClasses bounds the classes AddMulticlass records in one state: a pair
// that would add a class beyond it is counted as invalid. It guards against
// free-form labels; Merge keeps the union of the states' classes, however
// many.
const MaxClasses = 1024

// MulticlassState is the state of a multiclass classifier: a sparse confusion
// matrix over the classes seen and the log-loss sum of the pairs that came
// with class probabilities.
type MulticlassState struct {
	classes      []string          // in order of appearance
	index        map[string]uint32 // position in classes
	confusion    map[uint64]uint64 // actual<<32 | predicted -> pairs
	invalid      uint64            // pairs with a class beyond MaxClasses
	probsMissing uint64
	logLossCount uint64
	logLossSum   float64
}

// AddMulticlass adds a labelled pair of a multiclass classifier: the
// predicted and actual class, the model's class probabilities (probs[i] is
// the probability of classes[i]; both may be nil) and the label's delay in
// seconds. Only the probability of the actual class is used; a pair without
// usable probabilities counts in ProbsMissing and not in LogLoss. The state
// keeps copies of new class names, no reference to the arguments.
func (s *State) AddMulticlass(predicted, actual string, classes []string, probs []float64, delaySeconds float64) {
	m := s.multiclass()
	a, okA := m.index[actual]
	p, okP := m.index[predicted]
	need := 0
	if !okA {
		need++
	}
	if !okP && predicted != actual {
		need++
	}
	if len(m.classes)+need > MaxClasses {
		m.invalid++
		return
	}
	if !okA {
		a = m.addClass(actual)
	}
	if !okP {
		p = m.index[predicted]
		if predicted != actual {
			p = m.addClass(predicted)
		}
	}
	if m.confusion == nil {
		m.confusion = make(map[uint64]uint64)
	}
	m.confusion[uint64(a)<<32|uint64(p)]++
	m.addLogLoss(actual, classes, probs)
	s.addDelay(delaySeconds)
}

func (m *MulticlassState) addClass(c string) uint32 {
	if m.index == nil {
		m.index = make(map[string]uint32)
	}
	i := uint32(len(m.classes))
	c = strings.Clone(c) // the caller's string may alias a large batch buffer
	m.classes = append(m.classes, c)
	m.index[c] = i
	return i
}

func (m *MulticlassState) addLogLoss(actual string, classes []string, probs []float64) {
	if len(probs) == 0 || len(probs) != len(classes) {
		m.probsMissing++
		return
	}
	p := 0.0 // an actual class the model has no probability for
	if i := slices.Index(classes, actual); i >= 0 {
		p = probs[i]
	}
	if math.IsNaN(p) {
		m.probsMissing++
		return
	}
	m.logLossSum -= math.Log(clipProb(p))
	m.logLossCount++
}

func (m *MulticlassState) labeled() uint64 {
	var n uint64
	for _, c := range m.confusion {
		n += c
	}
	return n
}

func (m *MulticlassState) merge(o *MulticlassState) {
	m.invalid += o.invalid
	m.probsMissing += o.probsMissing
	m.logLossCount += o.logLossCount
	m.logLossSum += o.logLossSum
	if len(o.confusion) == 0 {
		return
	}
	if m.confusion == nil {
		m.confusion = make(map[uint64]uint64, len(o.confusion))
	}
	remap := make([]uint32, len(o.classes))
	for i, c := range o.classes {
		j, ok := m.index[c]
		if !ok {
			j = m.addClass(c)
		}
		remap[i] = j
	}
	for k, n := range o.confusion {
		m.confusion[uint64(remap[k>>32])<<32|uint64(remap[uint32(k)])] += n
	}
}

func (m *MulticlassState) clone() *MulticlassState {
	c := *m
	c.classes = slices.Clone(m.classes)
	c.index = maps.Clone(m.index)
	c.confusion = maps.Clone(m.confusion)
	return &c
}

// sortedClasses returns the classes in byte order and, for each position in
// m.classes, the class's position in that order.
func (m *MulticlassState) sortedClasses() (sorted []string, rank []uint32) {
	sorted = slices.Clone(m.classes)
	slices.Sort(sorted)
	rank = make([]uint32, len(m.classes))
	for i, c := range m.classes {
		j, _ := slices.BinarySearch(sorted, c)
		rank[i] = uint32(j)
	}
	return sorted, rank
}

func (m *MulticlassState) metrics() MulticlassMetrics {
	classes, rank := m.sortedClasses()
	k := len(classes)
	out := MulticlassMetrics{
		Classes:      classes,
		Confusion:    make([][]uint64, k),
		Precision:    make([]float64, k),
		Recall:       make([]float64, k),
		F1:           make([]float64, k),
		Support:      make([]uint64, k),
		LogLoss:      math.NaN(),
		LogLossCount: m.logLossCount,
		ProbsMissing: m.probsMissing,
	}
	if m.logLossCount > 0 {
		out.LogLoss = m.logLossSum / float64(m.logLossCount)
	}
	flat := make([]uint64, k*k)
	for i := range out.Confusion {
		out.Confusion[i] = flat[i*k : (i+1)*k : (i+1)*k]
	}
	predicted := make([]uint64, k)
	var n, correct uint64
	for key, c := range m.confusion {
		a, p := rank[key>>32], rank[uint32(key)]
		out.Confusion[a][p] += c
		out.Support[a] += c
		predicted[p] += c
		n += c
		if a == p {
			correct += c
		}
	}
	if n == 0 {
		nan := math.NaN()
		out.Accuracy = nan
		out.MacroPrecision, out.MacroRecall, out.MacroF1 = nan, nan, nan
		out.MicroPrecision, out.MicroRecall, out.MicroF1 = nan, nan, nan
		out.WeightedPrecision, out.WeightedRecall, out.WeightedF1 = nan, nan, nan
		return out
	}
	var macroP, macroR, macroF, wP, wR, wF float64
	for i := range classes {
		tp, pred, sup := float64(out.Confusion[i][i]), float64(predicted[i]), float64(out.Support[i])
		out.Precision[i] = zeroDivision(tp, pred)
		out.Recall[i] = zeroDivision(tp, sup)
		out.F1[i] = zeroDivision(2*tp, pred+sup)
		macroP += out.Precision[i]
		macroR += out.Recall[i]
		macroF += out.F1[i]
		wP += sup * out.Precision[i]
		wR += sup * out.Recall[i]
		wF += sup * out.F1[i]
	}
	fk, fn := float64(k), float64(n)
	out.Accuracy = float64(correct) / fn
	out.MacroPrecision, out.MacroRecall, out.MacroF1 = macroP/fk, macroR/fk, macroF/fk
	// Every pair is one TP or one FP and one FN: micro precision, recall
	// and F1 all reduce to the accuracy.
	out.MicroPrecision, out.MicroRecall, out.MicroF1 = out.Accuracy, out.Accuracy, out.Accuracy
	out.WeightedPrecision, out.WeightedRecall, out.WeightedF1 = wP/fn, wR/fn, wF/fn
	return out
}
