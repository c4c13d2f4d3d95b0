package stats

import (
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"

	"github.com/vigil-ml/vigil/schemas"
)

// ProbaFeaturePrefix names the numeric feature that summarises a class
// probability column: proba.<class> becomes feature "__proba.<class>".
const ProbaFeaturePrefix = "__proba."

// DerivedFeaturePrefix starts the names of features no event carries:
// summaries another package derives from a window's rows and keeps in the
// window's state so that they merge and are stored with it (the
// reconstruction errors of processors/multivariate). AddRange never creates
// them and leaves their Missing alone; drift and references skip them.
const DerivedFeaturePrefix = "__derived."

// IsDerived reports whether a feature name is a derived one.
func IsDerived(name string) bool { return strings.HasPrefix(name, DerivedFeaturePrefix) }

// NewWindowState returns an empty state for the window key.WindowStart to
// endMs (exclusive).
func NewWindowState(key Key, endMs int64) *WindowState {
	return &WindowState{
		Key:        key,
		WindowEnd:  endMs,
		Features:   make(map[string]*FeatureState),
		LastOffset: -1,
	}
}

// addScratch holds AddRange's buffers, reused across calls.
// newInThisCall marks in FeatureState.seen a feature AddRange just created.
const newInThisCall = ^uint64(0)

type addScratch struct {
	name    []byte // "__proba." + class, to look features up without allocating
	strings stringScratch
	vectors vectorScratch
}

// AddRange adds rows [lo, hi) of rec, a batch of this state's model in the
// layout of schemas.NewSchema, to the state:
//
//   - Events grows by hi-lo.
//   - latency_ms goes into Latency (nulls skipped).
//   - Every f.<name> column goes into Features[name] by its Arrow type:
//     float64 as Number, utf8 as String, bool as Bool (0/1); nulls count as
//     Missing. A column whose kind differs from the feature's kind in the
//     state counts its non-null values as TypeMismatch and Missing. An
//     all-null column (in the range) only adds Missing and does not fix the
//     feature's kind.
//   - pred_score and pred_value go into the numeric features
//     schemas.PredictionScoreFeature and PredictionValueFeature, pred_label
//     into the categorical schemas.PredictionLabelFeature, and proba.<class>
//     into the numeric "__proba.<class>"; each only when the column has a
//     non-null value in the range (a model that never sets it gets no such
//     feature).
//   - A f.<name> fixed_size_list column (a Vector feature) goes into the
//     numeric features "__embedding.<name>" (each vector's Euclidean norm)
//     and "__embedding.<name>[i]" (component i); see addVectors.
//   - Segment (s.*) and id/time columns are ignored.
//
// AddRange sets Dirty. It neither checks that the rows belong to this window
// nor touches LastOffset: the caller routes rows and manages offsets. Type
// mismatches the batch builder recorded in schema metadata are not read
// here; see AddTypeMismatches. AddRange retains no memory of rec.
//
// It panics if the range is not within rec.
func (w *WindowState) AddRange(rec arrow.Record, lo, hi int) {
	if lo < 0 || hi < lo || int64(hi) > rec.NumRows() {
		panic(fmt.Sprintf("BUG: AddRange of rows [%d,%d) of a %d-row record", lo, hi, rec.NumRows()))
	}
	w.Dirty = true
	before := w.Events
	w.Events += uint64(hi - lo)
	if lo == hi {
		return
	}
	// A feature is missing in every row that has no value for it, whether
	// the value is null or the batch has no column for the feature at all:
	// Missing does not depend on how events were cut into batches.
	w.epoch++
	defer func() {
		for name, fs := range w.Features {
			switch {
			case IsDerived(name):
			case fs.seen == newInThisCall: // missing in the earlier rows
				fs.addMissing(before)
			case fs.seen != w.epoch: // no column in this batch
				fs.addMissing(uint64(hi - lo))
			}
			fs.seen = w.epoch
		}
	}()
	if w.Features == nil {
		w.Features = make(map[string]*FeatureState)
	}
	if w.scratch == nil {
		w.scratch = new(addScratch)
	}
	sc := rec.Schema()
	for i := range sc.NumFields() {
		name := sc.Field(i).Name
		col := rec.Column(i)
		switch name {
		case schemas.ColLatencyMs:
			if a, ok := col.(*array.Float64); ok {
				addLatencies(&w.Latency, a, lo, hi)
			}
			continue
		case schemas.ColPredScore:
			w.addPrediction(schemas.PredictionScoreFeature, col, lo, hi)
			continue
		case schemas.ColPredValue:
			w.addPrediction(schemas.PredictionValueFeature, col, lo, hi)
			continue
		case schemas.ColPredLabel:
			w.addPrediction(schemas.PredictionLabelFeature, col, lo, hi)
			continue
		}
		if f, ok := schemas.FeatureName(name); ok {
			if l, isVec := col.(*array.FixedSizeList); isVec {
				w.addVectors(f, l, lo, hi)
				continue
			}
			fs := w.Features[f]
			if fs == nil {
				fs = w.newFeature(f)
			}
			w.addColumn(fs, col, lo, hi)
		} else if class, ok := schemas.ProbaClass(name); ok {
			if nullsIn(col, lo, hi) == hi-lo {
				continue
			}
			b := append(append(w.scratch.name[:0], ProbaFeaturePrefix...), class...)
			w.scratch.name = b
			fs := w.Features[string(b)]
			if fs == nil {
				fs = w.newFeature(string(b))
			}
			w.addColumn(fs, col, lo, hi)
		}
	}
}

func (w *WindowState) addPrediction(feature string, col arrow.Array, lo, hi int) {
	if nullsIn(col, lo, hi) == hi-lo {
		return
	}
	fs := w.Features[feature]
	if fs == nil {
		fs = w.newFeature(feature)
	}
	w.addColumn(fs, col, lo, hi)
}

// newFeature adds an empty feature; name may be a view into a schema or a
// scratch buffer, so the key is a copy.
func (w *WindowState) newFeature(name string) *FeatureState {
	fs := &FeatureState{seen: newInThisCall}
	w.Features[strings.Clone(name)] = fs
	return fs
}

// addColumn adds rows [lo, hi) of one feature column to fs.
func (w *WindowState) addColumn(fs *FeatureState, col arrow.Array, lo, hi int) {
	if fs.seen != newInThisCall {
		fs.seen = w.epoch
	}
	n := hi - lo
	nulls := nullsIn(col, lo, hi)
	if nulls == n {
		fs.addMissing(uint64(n))
		return
	}
	kind, ok := schemas.KindOf(col.DataType())
	if ok && fs.Kind == schemas.Null {
		fs.setKind(kind)
	}
	if !ok || kind != fs.Kind {
		fs.TypeMismatch += uint64(n - nulls)
		fs.addMissing(uint64(n))
		return
	}
	switch kind {
	case schemas.Number:
		a := col.(*array.Float64)
		fs.Num.AddArray(a, lo, hi)
		switch {
		case w.NoValues:
			vs := a.Float64Values()[lo:hi]
			for i, v := range vs {
				if nulls == 0 || a.IsValid(lo+i) {
					fs.Bins.Add(v)
				}
			}
		case nulls == 0:
			fs.Values.AddFloat64s(a.Float64Values()[lo:hi])
		default:
			fs.Values.addValid(a.Float64Values()[lo:hi], a.NullBitmapBytes(), a.Data().Offset()+lo)
		}
	case schemas.Bool:
		fs.Num.addBools(col.(*array.Boolean), lo, hi)
	case schemas.String:
		fs.Cat.addStrings(col.(*array.String), lo, hi, &w.scratch.strings)
	default:
		panic("BUG: schemas.KindOf returned kind " + kind.String())
	}
}

// addLatencies adds the non-null values of rows [lo, hi) of a to s.
func addLatencies(s *Sketch, a *array.Float64, lo, hi int) {
	vs := a.Float64Values()[lo:hi]
	if a.NullN() == 0 {
		for _, v := range vs {
			s.Add(v)
		}
		return
	}
	for i, v := range vs {
		if a.IsValid(lo + i) {
			s.Add(v)
		}
	}
}

// nullsIn returns the number of nulls in rows [lo, hi) of a.
func nullsIn(a arrow.Array, lo, hi int) int {
	if a.NullN() == 0 {
		return 0
	}
	bm := a.NullBitmapBytes()
	if len(bm) == 0 { // arrow.NULL type: no bitmap, every value null
		return hi - lo
	}
	return hi - lo - bitutil.CountSetBits(bm, a.Data().Offset()+lo, hi-lo)
}

// AddTypeMismatches adds n to the TypeMismatch count of feature (creating it
// when absent) and sets Dirty. It is for values the batch builder could not
// store in the feature's column because they had another kind: the builder
// writes them as nulls (so AddRange already counted them as Missing) and
// records the count per record in the schema metadata key
// "vigil.type_mismatch.<feature>". The caller attributes that count to the
// window(s) the record's rows went to.
func (w *WindowState) AddTypeMismatches(feature string, n uint64) {
	if n == 0 {
		return
	}
	if w.Features == nil {
		w.Features = make(map[string]*FeatureState)
	}
	fs := w.Features[feature]
	if fs == nil {
		fs = w.newFeature(feature)
		fs.seen = w.epoch
	}
	fs.TypeMismatch += n
	w.Dirty = true
}

// Merge adds the state o of the same window (same Key) to w: events, late
// events and latencies add up, features are merged by name (see
// FeatureState.Merge), LastOffset is the larger one and the window is final
// if either is. Dirty is set unless o is empty. o is not modified and w
// shares no memory with it afterwards.
//
// It panics if the keys differ.
func (w *WindowState) Merge(o *WindowState) {
	if w.Key != o.Key || w.WindowEnd != o.WindowEnd {
		panic(fmt.Sprintf("BUG: merge of window state %+v (end %d) into %+v (end %d)", o.Key, o.WindowEnd, w.Key, w.WindowEnd))
	}
	if o.Events != 0 || o.Late != 0 || o.Latency.Count() != 0 || len(o.Features) != 0 {
		w.Dirty = true
	}
	w.Late += o.Late
	w.Latency.Merge(&o.Latency)
	if w.Features == nil && len(o.Features) > 0 {
		w.Features = make(map[string]*FeatureState, len(o.Features))
	}
	// A feature one side lacks was missing in all of that side's events.
	for name, f := range w.Features {
		if o.Features[name] == nil && !IsDerived(name) {
			f.addMissing(o.Events)
		}
	}
	for name, of := range o.Features {
		if f := w.Features[name]; f != nil {
			f.Merge(of)
		} else {
			c := of.Clone()
			c.seen = 0
			if !IsDerived(name) {
				c.addMissing(w.Events)
			}
			w.Features[name] = c
		}
	}
	w.Events += o.Events
	w.LastOffset = max(w.LastOffset, o.LastOffset)
	w.Final = w.Final || o.Final
}

// Clone returns a deep copy of w.
func (w *WindowState) Clone() *WindowState {
	c := *w
	c.scratch = nil
	c.Latency = w.Latency.clone()
	if w.Features != nil {
		c.Features = make(map[string]*FeatureState, len(w.Features))
		for name, f := range w.Features {
			c.Features[name] = f.Clone()
		}
	}
	return &c
}

// Missing returns the number of missing values of the feature (including
// type mismatches).
func (f *FeatureState) Missing() uint64 { return f.Num.Missing + f.Cat.Missing }

// present returns the number of non-missing values of the feature's kind
// (numeric ones including NaN and Inf).
func (f *FeatureState) present() uint64 {
	switch f.Kind {
	case schemas.Number, schemas.Bool:
		return f.Num.Count + f.Num.NaN + f.Num.Inf
	case schemas.String:
		return f.Cat.Count
	}
	return 0
}

func (f *FeatureState) addMissing(n uint64) {
	if f.Kind == schemas.String {
		f.Cat.Missing += n
	} else {
		f.Num.Missing += n
	}
}

// setKind fixes the kind of a feature that so far only had missing values.
func (f *FeatureState) setKind(k schemas.Kind) {
	if f.Kind != schemas.Null {
		panic("BUG: kind of feature set twice")
	}
	f.Kind = k
	if k == schemas.String {
		f.Cat.Missing += f.Num.Missing
		f.Num.Missing = 0
	}
}

// Merge adds o, the state of the same feature over other events, to f.
// When f has only seen missing values it takes o's kind. When both have a
// kind and they differ, f keeps its own and o's values count as TypeMismatch
// and Missing: the merge is then not symmetric.
func (f *FeatureState) Merge(o *FeatureState) {
	if f.Kind == schemas.Null && o.Kind != schemas.Null {
		f.setKind(o.Kind)
	}
	f.TypeMismatch += o.TypeMismatch
	switch {
	case o.Kind == schemas.Null:
		f.addMissing(o.Missing())
	case o.Kind != f.Kind:
		f.TypeMismatch += o.present()
		f.addMissing(o.Missing() + o.present())
	case f.Kind == schemas.String:
		f.Cat.Merge(&o.Cat)
	default:
		f.Num.Merge(o.Num)
		f.Values.Merge(&o.Values)
		f.Bins.Merge(&o.Bins)
	}
}

// Clone returns a deep copy of f.
func (f *FeatureState) Clone() *FeatureState {
	c := *f
	c.Cat = f.Cat.clone()
	c.Values = f.Values.Clone()
	c.Bins = f.Bins.Clone()
	return &c
}

// ValuesComplete reports whether Values summarises every finite value of a
// Number feature: Values.Count() == Num.Count. It is false for a state
// decoded from an encoding older than the value sketch (its Values is empty)
// and for any merge that includes one, since the counts then stay apart; a
// drift test on the value distribution must not use Values then. A feature
// without finite values is complete (both counts are 0).
func (f *FeatureState) ValuesComplete() bool {
	return f.Kind == schemas.Number && f.Values.Count() == f.Num.Count
}

// BinsComplete reports whether Bins counts every finite value of a Number
// feature (Bins.Count() == Num.Count, with at least one value): the state of
// windows kept without value sketches, and merges of only such states.
func (f *FeatureState) BinsComplete() bool {
	return f.Kind == schemas.Number && f.Num.Count > 0 && f.Bins.Count() == f.Num.Count
}
