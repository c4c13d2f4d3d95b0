package performance

import (
	"maps"
	"math"
	"slices"
)

// Score grid of BinaryState. The constants are part of the binary encoding.
const (
	// MaxExactScores is the number of distinct scores a BinaryState keeps
	// exactly; ROC AUC and average precision are exact up to it.
	MaxExactScores = 1 << 16
	// QuantisedGridExp: beyond MaxExactScores distinct scores, a score s is
	// kept in the cell floor(s * 2^QuantisedGridExp), a grid of 2^-20 ~ 1e-6.
	QuantisedGridExp = 20
	// MaxCells bounds the cells of a quantised state. Scores in [0, 1] never
	// reach it (2^20+1 cells); wider scores (logits) coarsen the grid by
	// factors of 2 until they fit.
	MaxCells = 1 << 21

	minGridExp = -1100 // a grid so coarse that every finite score shares 1 of 2 cells
)

// cellLimit is MaxCells; tests lower it to exercise coarsening.
var cellLimit = MaxCells

// BinaryState is the state of a binary classifier: confusion counts at the
// state's threshold, log-loss and Brier sums, and the number of positive and
// negative labels per distinct score, from which ROC AUC and average
// precision are computed.
//
// The per-score counts are exact up to MaxExactScores distinct scores.
// Beyond, scores are grouped in cells of a grid of 2^-QuantisedGridExp; a cell
// remembers its score while it holds one distinct score, so only pairs whose
// scores share a cell and differ lose their order (see
// BinaryMetrics.AUCErrorBound).
type BinaryState struct {
	tp, fp, tn, fn uint64
	invalid        uint64 // NaN scores
	logLossSum     float64
	brierSum       float64
	quantised      bool
	gridExp        int              // grid 2^-gridExp, when quantised
	cells          map[float64]cell // by score (exact) or cell start (quantised)
}

// cell holds the labels of the pairs whose score maps to its key.
type cell struct {
	pos, neg uint64
	score    float64 // the cell's one distinct score, 0 when mixed
	mixed    bool    // holds more than one distinct score (only when quantised)
}

// AddBinary adds a labelled pair of a binary classifier: the model's score
// (a probability of the positive class for LogLoss and Brier; any ordered
// score for ROC AUC), whether the label is positive, and the label's delay
// after the prediction in seconds. A NaN score is counted as invalid and
// nothing else is recorded.
func (s *State) AddBinary(score float64, positive bool, delaySeconds float64) {
	b := s.binary()
	if math.IsNaN(score) {
		b.invalid++
		return
	}
	if score == 0 {
		score = 0 // -0: the same score as 0
	}
	switch pred := score >= s.Threshold; {
	case pred && positive:
		b.tp++
	case pred:
		b.fp++
	case positive:
		b.fn++
	default:
		b.tn++
	}
	// sklearn stacks (1-p, p) and clips both columns; only the label's
	// column enters the loss.
	p := min(max(score, 0), 1)
	var y float64
	if positive {
		y = 1
		b.logLossSum -= math.Log(clipProb(p))
	} else {
		b.logLossSum -= math.Log(clipProb(1 - p))
	}
	b.brierSum += (y - p) * (y - p)
	b.addScore(score, positive)
	s.addDelay(delaySeconds)
}

func (b *BinaryState) labeled() uint64 { return b.tp + b.fp + b.tn + b.fn }

func (b *BinaryState) addScore(score float64, positive bool) {
	if b.cells == nil {
		b.cells = make(map[float64]cell)
	}
	key := score
	if b.quantised {
		key = quantise(score, b.gridExp)
	}
	c, ok := b.cells[key]
	if !ok {
		c.score = score
	} else if !c.mixed && c.score != score {
		c.mixed, c.score = true, 0
	}
	if positive {
		c.pos++
	} else {
		c.neg++
	}
	b.cells[key] = c
	if !ok {
		b.fit()
	}
}

// quantise returns the start of the cell of the grid 2^-e holding x. It is
// monotone, so cells keep the order of their scores.
func quantise(x float64, e int) float64 {
	q := math.Ldexp(math.Floor(math.Ldexp(x, e)), -e)
	if q == 0 {
		return 0 // not -0
	}
	return q
}

// addCell adds c to the cell at key.
func (b *BinaryState) addCell(key float64, c cell) {
	old, ok := b.cells[key]
	if !ok {
		b.cells[key] = c
		return
	}
	old.pos += c.pos
	old.neg += c.neg
	if !old.mixed && (c.mixed || c.score != old.score) {
		old.mixed, old.score = true, 0
	}
	b.cells[key] = old
}

// fit quantises the scores once they outgrow MaxExactScores, and coarsens
// the grid while the cells outgrow MaxCells.
func (b *BinaryState) fit() {
	if !b.quantised && len(b.cells) > MaxExactScores {
		b.regrid(QuantisedGridExp)
	}
	for b.quantised && len(b.cells) > cellLimit && b.gridExp > minGridExp {
		b.regrid(b.gridExp - 1)
	}
}

// regrid moves every cell to the grid 2^-e, which is not finer than the
// current one.
func (b *BinaryState) regrid(e int) {
	old := b.cells
	b.cells = make(map[float64]cell, len(old)/2)
	b.quantised, b.gridExp = true, e
	for key, c := range old {
		b.addCell(c.key(key, e), c)
	}
}

// key returns the key of c, now at key, in the grid 2^-e (no finer than the
// grid of key: dyadic grids nest, so a mixed cell stays whole).
func (c cell) key(key float64, e int) float64 {
	if c.mixed {
		return quantise(key, e)
	}
	return quantise(c.score, e)
}

func (b *BinaryState) merge(o *BinaryState) {
	b.tp += o.tp
	b.fp += o.fp
	b.tn += o.tn
	b.fn += o.fn
	b.invalid += o.invalid
	b.logLossSum += o.logLossSum
	b.brierSum += o.brierSum
	if len(o.cells) == 0 {
		return
	}
	if b.cells == nil {
		b.cells = make(map[float64]cell, len(o.cells))
	}
	if o.quantised && (!b.quantised || o.gridExp < b.gridExp) {
		b.regrid(o.gridExp)
	}
	same := b.quantised == o.quantised && b.gridExp == o.gridExp
	for key, c := range o.cells {
		if !same {
			key = c.key(key, b.gridExp)
		}
		b.addCell(key, c)
	}
	b.fit()
}

func (b *BinaryState) clone() *BinaryState {
	c := *b
	c.cells = maps.Clone(b.cells)
	return &c
}

// sortedKeys returns the cell keys in increasing order.
func (b *BinaryState) sortedKeys() []float64 {
	keys := make([]float64, 0, len(b.cells))
	for k := range b.cells {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (b *BinaryState) metrics(threshold float64) BinaryMetrics {
	m := BinaryMetrics{
		Threshold: threshold,
		TP:        b.tp, FP: b.fp, TN: b.tn, FN: b.fn,
		ScoresQuantised: b.quantised,
	}
	n := float64(b.labeled())
	if n == 0 {
		nan := math.NaN()
		m.Accuracy, m.Precision, m.Recall, m.F1 = nan, nan, nan, nan
		m.ROCAUC, m.PRAUC, m.AUCErrorBound = nan, nan, nan
		m.LogLoss, m.Brier, m.PredictedPositiveRate, m.LabelPositiveRate = nan, nan, nan, nan
		return m
	}
	tp, fp, tn, fn := float64(b.tp), float64(b.fp), float64(b.tn), float64(b.fn)
	m.Accuracy = (tp + tn) / n
	m.Precision = zeroDivision(tp, tp+fp)
	m.Recall = zeroDivision(tp, tp+fn)
	m.F1 = zeroDivision(2*tp, 2*tp+fp+fn)
	m.LogLoss = b.logLossSum / n
	m.Brier = b.brierSum / n
	m.PredictedPositiveRate = (tp + fp) / n
	m.LabelPositiveRate = (tp + fn) / n
	m.ROCAUC, m.PRAUC, m.AUCErrorBound = b.ranking()
	return m
}

// ranking returns ROC AUC, average precision and the AUC error bound from
// the cells, walking them from the highest score down: each cell is one
// threshold, its pairs tie.
func (b *BinaryState) ranking() (auc, ap, bound float64) {
	var npos, nneg float64
	for _, c := range b.cells {
		npos += float64(c.pos)
		nneg += float64(c.neg)
	}
	keys := b.sortedKeys()
	var tps, fps, area, mixedTies float64
	for i := len(keys) - 1; i >= 0; i-- {
		c := b.cells[keys[i]]
		pos, neg := float64(c.pos), float64(c.neg)
		area += neg * (tps + pos/2)
		if c.mixed {
			mixedTies += pos * neg
		}
		tps += pos
		fps += neg
		if pos > 0 {
			ap += pos * (tps / (tps + fps))
		}
	}
	auc, bound = math.NaN(), math.NaN()
	if npos > 0 && nneg > 0 {
		auc = area / npos / nneg
		bound = mixedTies / 2 / npos / nneg
	}
	if npos == 0 {
		ap = math.NaN()
	} else {
		ap /= npos
	}
	return auc, ap, bound
}
