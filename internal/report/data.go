package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
	"github.com/vigil-ml/vigil/schemas"
)

// MaxBuckets bounds the buckets of a report when Query.Every is 0: the
// smallest of BucketSizes that keeps the range within it is taken.
const MaxBuckets = 240

// BucketSizes are the bucket sizes a report picks from when Query.Every is 0
// and the stored windows are more than MaxBuckets.
var BucketSizes = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
	3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// MaxSegmentCharts bounds the features a segment's section charts (the
// most drifted ones); the others are in its table.
const MaxSegmentCharts = 12

// ErrNoData: the model has no stored windows in the range.
var ErrNoData = errors.New("no stored windows")

// Query selects what a report covers.
type Query struct {
	Model string
	// Version is the model version; "" picks the version with the newest
	// windows in the range.
	Version  string
	From, To time.Time // window starts in [From, To)
	// Every is the bucket size windows are merged into (aligned to the Unix
	// epoch); 0: each stored window, or the smallest of BucketSizes that
	// keeps the range within MaxBuckets when there are more windows.
	Every time.Duration
	// By is a segment key (region): a section per value of it.
	By string
	// Drift tunes the drift evaluation as `vigil process` and `vigil query
	// drift` are tuned (overrides of methods and thresholds).
	Drift drift.Options
}

// Num is a number as a report embeds it: 6 significant digits (what the
// query commands print), null when NaN or infinite.
type Num float64

// MarshalJSON writes 6 significant digits, or null.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 6, 64), nil
}

// UnmarshalJSON reads a number or null (NaN).
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	*n = Num(f)
	return err
}

// Valid is false for NaN and infinities.
func (n Num) Valid() bool { return !math.IsNaN(float64(n)) && !math.IsInf(float64(n), 0) }

// Report is the data of every chart of one model version's report. Series
// are aligned with Windows (index i is bucket i); a missing value is null.
type Report struct {
	Model, Version string
	// Versions are the model's versions with windows in the range.
	Versions  []string
	From, To  time.Time
	Every     string    // the bucket size ("1h0m0s"), "" for each stored window
	Generated time.Time // when Build ran
	Reference struct {
		ID     uint64
		Source string
		Rows   uint64
	}
	// Windows are the bucket starts, Ends their ends.
	Windows, Ends []time.Time

	Overview    Overview
	Features    []Feature // drifted in the most buckets first, then by name
	Performance *Performance
	Segments    []Segment
	Alerts      []AlertSeries
}

// Overview is the model-level view.
type Overview struct {
	Events, Late         []uint64
	LatencyP50, P95, P99 []Num // ms
	Share                []Num // dataset drift share
	ShareDrifted         []bool
	ShareThreshold       float64
	NewFeatures, Absent  []string // schema changes seen in any bucket
	DeadLetters          string   // where dead letters are counted (not in ClickHouse)
}

// Feature is one feature's view.
type Feature struct {
	Name, Kind string
	Method     string // the method of the feature's verdicts (of its last bucket)
	// ThresholdFromReference: Threshold comes from the reference's chunk
	// scores (drift.Override.FromReference).
	ThresholdFromReference  bool
	Score, Threshold        []Num
	Drifted                 []bool
	DriftedWindows          int
	Missing, TypeMismatch   []Num
	OutOfRange, NewCategory []Num
	// Dist is the reference and every bucket's distribution on the
	// reference's bins (Cur[i] nil when bucket i has none); Chosen is the
	// bucket shown first (the highest score's, or the last bucket).
	Dist   Distribution
	Chosen int
}

// Distribution is a feature's reference and current distributions.
type Distribution struct {
	Bins []string
	New  []bool `json:",omitempty"`
	Ref  []uint64
	Cur  [][]uint64
}

// Performance is the model's performance over time.
type Performance struct {
	Task    string
	Windows []time.Time
	// Metrics are the task's main metrics, Values[k] the series of
	// Metrics[k].
	Metrics                      []string
	Values                       [][]Num
	Predictions, Labeled         []uint64
	Coverage, DelayP50, DelayP95 []Num // delays in seconds
	// Confusion[i] is window i's matrix (binary: [[tn, fp], [fn, tp]]),
	// Classes its rows and columns; Chosen the window shown first (the
	// lowest first metric).
	Classes   []string
	Confusion [][][]uint64
	Chosen    int
}

// Segment is the drift view of one segment value.
type Segment struct {
	Segment  string // key=value
	Events   []uint64
	Share    []Num
	Features []SegmentFeature // drifted in the most buckets first
}

// SegmentFeature is one feature's drift in a segment.
type SegmentFeature struct {
	Name, Method   string
	Score          []Num
	Threshold      []Num
	Drifted        []bool
	DriftedWindows int
	// The segment's data quality and, for a number, its windows on the
	// reference's bins: for the UI's feature page of a segment, left out
	// of the file's data (the file charts the segment's drift only).
	Missing, TypeMismatch   []Num      `json:"-"`
	OutOfRange, NewCategory []Num      `json:"-"`
	Hist                    [][]uint64 `json:"-"`
}

// AlertSeries is one alert series of the model: its state now and its
// episodes (firing, then resolved) in the range.
type AlertSeries struct {
	Rule, Metric, Feature, Segment string
	Status                         string // now: inactive, pending or firing
	Value, Threshold               Num
	Episodes                       []Episode
}

// Episode is one firing of an alert series; End is zero while it fires.
type Episode struct {
	Start, End time.Time
	Value      Num
	Summary    string
}

// Build reads what q selects through s and returns the report's data.
func Build(ctx context.Context, s Stores, q Query) (*Report, error) {
	versions, err := s.Windows.ModelVersions(ctx)
	if err != nil {
		return nil, err
	}
	r := &Report{Model: q.Model, Version: q.Version, From: q.From.UTC(), To: q.To.UTC(), Generated: time.Now().UTC()}
	var newest time.Time
	for _, v := range versions {
		if v.Model != q.Model || !v.Last.After(q.From) || !v.First.Before(q.To) {
			continue
		}
		r.Versions = append(r.Versions, v.Version)
		if q.Version == "" && !v.Last.Before(newest) {
			newest, r.Version = v.Last, v.Version
		}
	}
	if r.Version == "" {
		return nil, fmt.Errorf("model %q: %w with window start in [%s, %s)", q.Model, ErrNoData, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	refs, err := s.References.LatestReferences(ctx)
	if err != nil {
		return nil, err
	}
	ref := refs[[2]string{q.Model, r.Version}]
	if ref == nil {
		return nil, fmt.Errorf("model %s version %q: %w", q.Model, r.Version, drift.ErrNoReference)
	}
	r.Reference.ID, r.Reference.Source, r.Reference.Rows = ref.ID, ref.Source, ref.Rows

	if q.Every == 0 {
		for _, v := range versions {
			if v.Model == q.Model && v.Version == r.Version {
				q.Every = bucketSize(v, q.From, q.To)
			}
		}
	}
	if q.Every > 0 {
		r.Every = q.Every.String()
	}
	// The reads besides the window states are independent of them: they
	// run while the states are scanned.
	var (
		wg                     sync.WaitGroup
		late                   []LateCount
		lateErr, perfErr, aErr error
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		late, lateErr = s.Windows.LateEvents(ctx, q.Model, r.Version, q.From, q.To)
	}()
	go func() {
		defer wg.Done()
		pw, err := s.Performance.PerformanceStates(ctx, q.Model, r.Version, "", q.From, q.To)
		if err != nil {
			perfErr = err
			return
		}
		pm, err := performance.MergeWindows(pw, q.Every)
		if err != nil {
			perfErr = err
			return
		}
		r.Performance = performanceOf(pm)
	}()
	go func() {
		defer wg.Done()
		aErr = r.alerts(ctx, s.Alerts)
	}()
	all, buckets, segBuckets, err := evaluateScan(ctx, s.Windows, refs, q, r.Version)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("model %q version %q: %w with window start in [%s, %s)", q.Model, r.Version, ErrNoData, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	for _, err := range []error{lateErr, perfErr, aErr} {
		if err != nil {
			return nil, err
		}
	}
	index := map[time.Time]int{}
	for i, b := range buckets {
		r.Windows, r.Ends = append(r.Windows, b.Start), append(r.Ends, b.End)
		index[b.Start] = i
	}
	r.overview(all, buckets)
	r.features(all, buckets, ref)
	for _, l := range late {
		if i, ok := index[bucketStart(l.WindowStart, q.Every)]; ok {
			r.Overview.Late[i] += l.Events
		}
	}
	if len(segBuckets) > 0 {
		r.segments(segBuckets, index)
	}
	return r, nil
}

// bucketSize is 0 when the model version's windows in [from, to) are at
// most MaxBuckets, else the smallest of BucketSizes that keeps the range
// within MaxBuckets. The windows are counted from the version's totals
// (its windows spread evenly over [First, Last)), before any state is read.
func bucketSize(v ModelVersion, from, to time.Time) time.Duration {
	if v.Windows == 0 || !v.Last.After(v.First) {
		return 0
	}
	lo, hi := maxTime(from, v.First), minTime(to, v.Last)
	if !hi.After(lo) {
		return 0
	}
	window := v.Last.Sub(v.First) / time.Duration(v.Windows)
	if window <= 0 || hi.Sub(lo)/window <= MaxBuckets {
		return 0
	}
	for _, d := range BucketSizes {
		if hi.Sub(lo)/d < MaxBuckets {
			return d
		}
	}
	return BucketSizes[len(BucketSizes)-1]
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ScanSpan and Workers: Build reads the window states of a range in one
// ordered scan (WindowStore.ScanWindowStates) per ScanSpan of it, one span
// after the other (ClickHouse sorts a span's rows before it sends the
// first, so a span bounds its memory; and it reads a granule of 8192 rows
// whole, so reads split finer would decode the same data again). As soon
// as the scan reaches the next bucket, the rows of the bucket before go to
// one of Workers goroutines, which decodes, merges (drift.MergeBuckets) and
// evaluates them, while the scan goes on. A bucket's states are merged in
// the store's order, so the buckets are those drift.Buckets computes for
// the whole range at once. At most 2*Workers buckets' rows wait undecoded.
var ScanSpan = 7 * 24 * time.Hour

// Workers is the number of goroutines that decode and evaluate buckets.
var Workers = max(2, runtime.GOMAXPROCS(0))

// evaluated is one bucket's merged and evaluated states.
type evaluated struct {
	all     []drift.MergedBucket
	buckets []drift.Bucket
	seg     []drift.Bucket
}

// bucketRows are the rows of one bucket, the idx-th of the scan.
type bucketRows struct {
	idx  int
	rows []WindowRow
}

// evaluateScan returns the merged and evaluated buckets of all events
// and, when q.By is set, the evaluated buckets of its segments.
func evaluateScan(ctx context.Context, ws WindowStore, refs map[[2]string]*reference.Profile, q Query, version string) ([]drift.MergedBucket, []drift.Bucket, []drift.Bucket, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		results = map[int]*evaluated{}
		failed  error // the first worker error
		wg      sync.WaitGroup
	)
	work := make(chan bucketRows, Workers)
	for range Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				e, err := evaluateBucket(b.rows, refs, q, version)
				mu.Lock()
				if err != nil && failed == nil {
					failed = err
					cancel()
				}
				results[b.idx] = e
				mu.Unlock()
			}
		}()
	}
	var (
		cur      []WindowRow
		curStart int64
		n        int
	)
	send := func() error {
		if len(cur) == 0 {
			return nil
		}
		select {
		case work <- bucketRows{idx: n, rows: cur}:
			n, cur = n+1, nil
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	every := q.Every.Milliseconds()
	each := func(row WindowRow) error {
		start := row.Key.WindowStart
		if every > 0 {
			start -= ((start % every) + every) % every
		}
		if len(cur) > 0 && start != curStart {
			if err := send(); err != nil {
				return err
			}
		}
		curStart, cur = start, append(cur, row)
		return nil
	}
	var scanErr error
	for lo := q.From; lo.Before(q.To) && scanErr == nil; {
		hi := q.To
		if next := bucketStart(lo.Add(ScanSpan), q.Every); next.After(lo) && next.Before(q.To) {
			hi = next
		}
		scanErr = ws.ScanWindowStates(ctx, q.Model, version, q.By, lo, hi, each)
		lo = hi
	}
	if scanErr == nil {
		scanErr = send()
	}
	close(work)
	wg.Wait()
	if failed != nil {
		return nil, nil, nil, failed
	}
	if scanErr != nil {
		return nil, nil, nil, scanErr
	}
	var all []drift.MergedBucket
	var buckets, seg []drift.Bucket
	for i := range n {
		e := results[i]
		all, buckets, seg = append(all, e.all...), append(buckets, e.buckets...), append(seg, e.seg...)
	}
	return all, buckets, seg, nil
}

// evaluateBucket decodes, merges and evaluates the rows of one bucket.
func evaluateBucket(rows []WindowRow, refs map[[2]string]*reference.Profile, q Query, version string) (*evaluated, error) {
	states := make([]*stats.WindowState, len(rows))
	for i, r := range rows {
		st, err := r.Decode()
		if err != nil {
			return nil, err
		}
		states[i] = st
	}
	merged := drift.MergeBuckets(states, drift.BucketQuery{Model: q.Model, Version: version, By: "*", Every: q.Every})
	e := &evaluated{}
	var seg []drift.MergedBucket
	for _, m := range merged {
		switch {
		case m.Segment == "":
			e.all = append(e.all, m)
		case q.By != "" && strings.HasPrefix(m.Segment, q.By+"="):
			seg = append(seg, m)
		}
	}
	var err error
	if e.buckets, err = drift.EvaluateBuckets(e.all, refs, q.Drift); err != nil {
		return nil, err
	}
	if e.seg, err = drift.EvaluateBuckets(seg, refs, q.Drift); err != nil {
		return nil, err
	}
	return e, nil
}

func bucketStart(t time.Time, every time.Duration) time.Time {
	if every <= 0 {
		return t.UTC()
	}
	ms := t.UnixMilli()
	e := every.Milliseconds()
	return time.UnixMilli(ms - ((ms%e)+e)%e).UTC()
}

func (r *Report) overview(all []drift.MergedBucket, buckets []drift.Bucket) {
	n := len(buckets)
	o := &r.Overview
	o.Events, o.Late = make([]uint64, n), make([]uint64, n)
	o.LatencyP50, o.P95, o.P99 = make([]Num, n), make([]Num, n), make([]Num, n)
	o.Share, o.ShareDrifted = make([]Num, n), make([]bool, n)
	o.ShareThreshold = drift.EvidentlyDriftShare
	o.DeadLetters = "Malformed messages are copied to the dead-letter topic (<topic>.dlq) and counted by vigil process (docs/METRICS.md); ClickHouse does not hold them."
	q := func(sk *stats.Sketch, p float64) Num {
		if sk.Count() == 0 {
			return Num(math.NaN())
		}
		return Num(sk.Quantile(p))
	}
	for i, b := range buckets {
		lat := &all[i].State.Latency
		o.Events[i] = b.Events
		o.LatencyP50[i], o.P95[i], o.P99[i] = q(lat, 0.5), q(lat, 0.95), q(lat, 0.99)
		o.Share[i], o.ShareDrifted[i] = Num(b.Drift.Share), b.Drift.Drifted
		for _, f := range b.Drift.NewFeatures {
			if !slices.Contains(o.NewFeatures, f) {
				o.NewFeatures = append(o.NewFeatures, f)
			}
		}
		for _, f := range b.Drift.AbsentFeatures {
			if !slices.Contains(o.Absent, f) {
				o.Absent = append(o.Absent, f)
			}
		}
	}
}

func nans(n int) []Num {
	out := make([]Num, n)
	for i := range out {
		out[i] = Num(math.NaN())
	}
	return out
}

func (r *Report) features(all []drift.MergedBucket, buckets []drift.Bucket, ref *reference.Profile) {
	n := len(buckets)
	byName := map[string]*Feature{}
	var names []string
	for i, b := range buckets {
		// Embeddings' rows (emb@euclidean, ...) are listed as features of
		// kind vector: their scores over time, no distribution.
		for _, d := range slices.Concat(b.Drift.Features, b.Drift.Embeddings) {
			f := byName[d.Feature]
			if f == nil {
				f = &Feature{Name: d.Feature, Kind: d.Kind.String(), Score: nans(n), Threshold: nans(n), Drifted: make([]bool, n),
					Missing: nans(n), TypeMismatch: nans(n), OutOfRange: nans(n), NewCategory: nans(n), Chosen: -1}
				byName[d.Feature] = f
				names = append(names, d.Feature)
			}
			f.Method, f.ThresholdFromReference = string(d.Method), d.ThresholdFromReference
			f.Score[i], f.Threshold[i], f.Drifted[i] = Num(d.Score), Num(d.Threshold), d.Drifted
			if d.Drifted {
				f.DriftedWindows++
			}
			f.Missing[i], f.TypeMismatch[i] = Num(d.MissingRate), Num(d.TypeMismatchRate)
			f.OutOfRange[i], f.NewCategory[i] = Num(d.OutOfRangeRate), Num(d.NewCategoryRate)
		}
	}
	r.Features = make([]Feature, 0, len(names))
	for _, name := range names {
		f := byName[name]
		f.Dist = distributions(ref.Feature(name), all, buckets, name)
		f.Chosen = chosen(f)
		r.Features = append(r.Features, *f)
	}
	sort.SliceStable(r.Features, func(i, j int) bool {
		a, b := r.Features[i], r.Features[j]
		if a.DriftedWindows != b.DriftedWindows {
			return a.DriftedWindows > b.DriftedWindows
		}
		return a.Name < b.Name
	})
}

// MaxCategories bounds the categories a distribution shows: the most
// frequent ones (reference and every bucket together), the rest summed in
// "(other)".
const MaxCategories = 30

// distributions returns a feature's reference and per-bucket distributions
// on the reference's bins (numbers) or on the categories of the reference
// and of every bucket (strings and bools).
func distributions(rf *reference.FeatureProfile, all []drift.MergedBucket, buckets []drift.Bucket, name string) Distribution {
	var d Distribution
	if rf == nil {
		return d
	}
	if rf.Kind == schemas.Number {
		// The evaluation binned the windows already (FeatureDrift.Hist).
		d.Cur = make([][]uint64, len(all))
		for i, b := range buckets {
			k, ok := sort.Find(len(b.Drift.Features), func(j int) int { return strings.Compare(name, b.Drift.Features[j].Feature) })
			if !ok || b.Drift.Features[k].Hist == nil {
				continue
			}
			if d.Bins == nil {
				d.Bins, _, _ = drift.ReferenceBins(rf)
				d.Ref = rf.Hist
			}
			h := b.Drift.Features[k].Hist
			cur := make([]uint64, len(h))
			for j, c := range h {
				cur[j] = uint64(math.Round(c))
			}
			d.Cur[i] = cur
		}
		return d
	}
	dists := make([]*drift.Distribution, len(all))
	total := map[string]uint64{}
	fresh := map[string]bool{}
	for i, m := range all {
		cur := m.State.Features[name]
		if cur == nil {
			continue
		}
		x, ok := drift.FeatureDistribution(rf, cur)
		if !ok {
			continue
		}
		dists[i] = &x
		if d.Bins == nil && x.New == nil {
			d.Bins, d.Ref = x.Bins, x.Ref
		}
		for k, b := range x.Bins {
			if x.New != nil {
				total[b] += x.Ref[k] + x.Cur[k]
				fresh[b] = x.New[k]
			}
		}
	}
	d.Cur = make([][]uint64, len(all))
	if len(total) == 0 { // numeric: the reference's bins
		for i, x := range dists {
			if x != nil {
				d.Cur[i] = x.Cur
			}
		}
		return d
	}
	bins := make([]string, 0, len(total))
	for b := range total {
		bins = append(bins, b)
	}
	sort.Slice(bins, func(i, j int) bool {
		if total[bins[i]] != total[bins[j]] {
			return total[bins[i]] > total[bins[j]]
		}
		return bins[i] < bins[j]
	})
	other := -1
	if len(bins) > MaxCategories || slices.Contains(bins, "(other)") {
		bins = slices.DeleteFunc(bins, func(b string) bool { return b == "(other)" })
		if len(bins) > MaxCategories-1 {
			bins = bins[:MaxCategories-1]
		}
		bins = append(bins, "(other)")
		other = len(bins) - 1
	}
	pos := map[string]int{}
	for k, b := range bins {
		pos[b] = k
		d.New = append(d.New, fresh[b] && b != "(other)")
	}
	d.Bins, d.Ref = bins, make([]uint64, len(bins))
	refDone := false
	for i, x := range dists {
		if x == nil {
			continue
		}
		cur := make([]uint64, len(bins))
		for k, b := range x.Bins {
			j, ok := pos[b]
			if !ok {
				j = other
			}
			cur[j] += x.Cur[k]
			if !refDone {
				d.Ref[j] += x.Ref[k]
			}
		}
		refDone = true
		d.Cur[i] = cur
	}
	return d
}

// chosen is the bucket a feature's distribution shows first: the one whose
// score is furthest on the drift side (lowest p-value, highest distance),
// or the last one with a distribution.
func chosen(f *Feature) int {
	best, at := math.Inf(-1), -1
	pvalue := drift.Method(f.Method).IsPValue()
	for i, s := range f.Score {
		if !s.Valid() || f.Dist.Cur == nil || f.Dist.Cur[i] == nil {
			continue
		}
		v := float64(s)
		if pvalue {
			v = -v
		}
		if v > best {
			best, at = v, i
		}
	}
	return at
}

// segments fills the segment sections from the evaluated segment buckets.
func (r *Report) segments(buckets []drift.Bucket, index map[time.Time]int) {
	n := len(r.Windows)
	bySeg := map[string]*Segment{}
	feats := map[string]map[string]*SegmentFeature{}
	var order []string
	for _, b := range buckets {
		i, ok := index[b.Start]
		if !ok {
			continue // a segment window in a bucket the whole traffic lacks: cannot be
		}
		s := bySeg[b.Segment]
		if s == nil {
			s = &Segment{Segment: b.Segment, Events: make([]uint64, n), Share: nans(n)}
			bySeg[b.Segment], feats[b.Segment] = s, map[string]*SegmentFeature{}
			order = append(order, b.Segment)
		}
		s.Events[i], s.Share[i] = b.Events, Num(b.Drift.Share)
		for _, d := range b.Drift.Features {
			f := feats[b.Segment][d.Feature]
			if f == nil {
				f = &SegmentFeature{Name: d.Feature, Score: nans(n), Threshold: nans(n), Drifted: make([]bool, n),
					Missing: nans(n), TypeMismatch: nans(n), OutOfRange: nans(n), NewCategory: nans(n), Hist: make([][]uint64, n)}
				feats[b.Segment][d.Feature] = f
			}
			f.Method = string(d.Method)
			f.Score[i], f.Threshold[i], f.Drifted[i] = Num(d.Score), Num(d.Threshold), d.Drifted
			f.Missing[i], f.TypeMismatch[i] = Num(d.MissingRate), Num(d.TypeMismatchRate)
			f.OutOfRange[i], f.NewCategory[i] = Num(d.OutOfRangeRate), Num(d.NewCategoryRate)
			if d.Hist != nil {
				h := make([]uint64, len(d.Hist))
				for k, c := range d.Hist {
					h[k] = uint64(math.Round(c))
				}
				f.Hist[i] = h
			}
			if d.Drifted {
				f.DriftedWindows++
			}
		}
	}
	sort.Strings(order)
	for _, seg := range order {
		s := bySeg[seg]
		for _, f := range feats[seg] {
			s.Features = append(s.Features, *f)
		}
		sort.Slice(s.Features, func(i, j int) bool {
			a, b := s.Features[i], s.Features[j]
			if a.DriftedWindows != b.DriftedWindows {
				return a.DriftedWindows > b.DriftedWindows
			}
			return a.Name < b.Name
		})
		r.Segments = append(r.Segments, *s)
	}
}

// performanceOf is the performance view of merged windows (nil without any).
func performanceOf(windows []performance.Window) *Performance {
	if len(windows) == 0 {
		return nil
	}
	p := &Performance{Chosen: -1}
	worst := math.Inf(1)
	for i, w := range windows {
		m := w.State.Metrics()
		p.Task = m.Task.String()
		p.Windows = append(p.Windows, w.Start.UTC())
		p.Predictions, p.Labeled = append(p.Predictions, m.Predictions), append(p.Labeled, m.Labeled)
		p.Coverage = append(p.Coverage, Num(m.LabelCoverage))
		p.DelayP50, p.DelayP95 = append(p.DelayP50, Num(m.LabelDelayP50)), append(p.DelayP95, Num(m.LabelDelayP95))
		var names []string
		var vals []float64
		var conf [][]uint64
		switch {
		case m.Binary != nil:
			b := m.Binary
			names = []string{"precision", "recall", "f1", "accuracy", "roc_auc"}
			vals = []float64{b.Precision, b.Recall, b.F1, b.Accuracy, b.ROCAUC}
			p.Classes = []string{"0", "1"}
			conf = [][]uint64{{b.TN, b.FP}, {b.FN, b.TP}}
		case m.Multiclass != nil:
			x := m.Multiclass
			names = []string{"accuracy", "macro_f1", "weighted_f1"}
			vals = []float64{x.Accuracy, x.MacroF1, x.WeightedF1}
			if len(x.Classes) > len(p.Classes) {
				p.Classes = x.Classes
			}
			conf = x.Confusion
		case m.Regression != nil:
			x := m.Regression
			names = []string{"mae", "rmse", "r2"}
			vals = []float64{x.MAE, x.RMSE, x.R2}
		}
		if p.Metrics == nil {
			p.Metrics = names
			p.Values = make([][]Num, len(names))
		}
		for k := range p.Metrics {
			v := math.NaN()
			if k < len(vals) {
				v = vals[k]
			}
			p.Values[k] = append(p.Values[k], Num(v))
		}
		p.Confusion = append(p.Confusion, conf)
		if conf != nil && len(vals) > 0 && !math.IsNaN(vals[0]) && m.Labeled > 0 && vals[0] < worst {
			worst, p.Chosen = vals[0], i
		}
	}
	if p.Chosen < 0 {
		p.Chosen = len(windows) - 1
	}
	return p
}

// alerts fills the alert series of the model: every series with a state,
// and the episodes notified in the range.
func (r *Report) alerts(ctx context.Context, s AlertStore) error {
	if s == nil {
		return nil
	}
	states, err := s.LoadAlertStates(ctx)
	if err != nil {
		return err
	}
	transitions, err := s.AlertTransitions(ctx, r.Model, r.From, r.To.Add(7*24*time.Hour))
	if err != nil {
		return err
	}
	type key struct{ rule, feature, segment, metric string }
	series := map[key]*AlertSeries{}
	var order []key
	get := func(k key) *AlertSeries {
		a := series[k]
		if a == nil {
			a = &AlertSeries{Rule: k.rule, Metric: k.metric, Feature: k.feature, Segment: k.segment, Status: "inactive",
				Value: Num(math.NaN()), Threshold: Num(math.NaN())}
			series[k] = a
			order = append(order, k)
		}
		return a
	}
	for _, st := range states {
		if st.Model != r.Model {
			continue
		}
		a := get(key{st.Rule, st.Feature, st.Segment, st.Metric})
		a.Status, a.Value, a.Threshold = st.Status, Num(st.Previous), Num(st.Threshold)
	}
	for _, t := range transitions {
		a := get(key{t.Labels["alertname"], t.Feature, t.Segment, t.Metric})
		switch t.Status {
		case "firing":
			a.Episodes = append(a.Episodes, Episode{Start: t.StartsAt.UTC(), Value: Num(t.Value), Summary: t.Annotations["summary"]})
		case "resolved":
			if k := len(a.Episodes) - 1; k >= 0 && a.Episodes[k].End.IsZero() && a.Episodes[k].Start.Equal(t.StartsAt.UTC()) {
				a.Episodes[k].End = t.EndsAt.UTC()
			} else {
				a.Episodes = append(a.Episodes, Episode{Start: t.StartsAt.UTC(), End: t.EndsAt.UTC(), Value: Num(t.Value), Summary: t.Annotations["summary"]})
			}
		}
		if a.Threshold.Valid() == false {
			a.Threshold = Num(t.Threshold)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].rule != order[j].rule {
			return order[i].rule < order[j].rule
		}
		return order[i].feature+order[i].segment < order[j].feature+order[j].segment
	})
	for _, k := range order {
		r.Alerts = append(r.Alerts, *series[k])
	}
	return nil
}
