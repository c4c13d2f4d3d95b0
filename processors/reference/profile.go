package reference

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ml/vigil/schemas"
)

// Defaults and bounds of the numeric summaries.
const (
	// DefaultBins is the number of equal-frequency bins between the
	// reference's min and max (before equal edges are merged).
	DefaultBins = 10
	// MaxBins bounds BuilderOptions.Bins.
	MaxBins = 1000
	// QuantileSummarySize is the number of values a numeric feature's
	// Quantiles hold when the reference has more values than that, unless
	// BuilderOptions.ExactValues says otherwise (M below).
	QuantileSummarySize = 10000
)

// Meta identifies a reference profile and says where it came from.
type Meta struct {
	Model        string
	ModelVersion string
	// ID orders the references of one model version: the newest one is the
	// one in force. NewID makes time-based, strictly increasing ids.
	ID        uint64
	CreatedAt time.Time
	// Source is the file the reference was built from, or
	// "production:<from>..<to>" (RFC 3339 window bounds, UTC).
	Source string
	Rows   uint64 // events (rows) the reference summarises
}

// Profile is the reference profile of one model version. It is immutable
// once built: share it, do not modify it.
type Profile struct {
	Meta
	// Features are sorted by name; see Feature for a lookup.
	Features []FeatureProfile
	// Segments are the profiles of the rows of each value of one segment
	// key (BuilderOptions.Segment), sorted by Segment; nil without. Drift
	// of a segment's windows uses its segment profile when there is one
	// (ForSegment), the whole reference otherwise.
	Segments []SegmentProfile
}

// SegmentProfile is the profile of the reference rows of one segment.
type SegmentProfile struct {
	Segment  string // "key=value", as stats.Key.Segment; key=__other__ past stats.MaxSegmentValues values
	Rows     uint64
	Features []FeatureProfile // sorted by name
}

// ForSegment returns the profile of segment ("key=value") as a Profile
// (p's Meta with the segment's Rows and Features, no Segments), or nil when
// p has none for it.
func (p *Profile) ForSegment(segment string) *Profile {
	i, ok := slices.BinarySearchFunc(p.Segments, segment, func(s SegmentProfile, seg string) int { return strings.Compare(s.Segment, seg) })
	if !ok {
		return nil
	}
	sp := &p.Segments[i]
	q := &Profile{Meta: p.Meta, Features: sp.Features}
	q.Rows = sp.Rows
	return q
}

// FeatureProfile summarises one feature of the reference.
//
// Numeric features (Kind == schemas.Number) fill the moments, Edges, Hist and
// Quantiles; string and bool features fill Counts and Other (bool values are
// counted under "false" and "true"). Count never includes missing values,
// nor for numeric features NaN and ±Inf, which are counted apart.
//
// Bins. Edges e[0] < e[1] < ... < e[n-1] are the reference's quantiles at
// 0, 1/B, ..., 1 (B = BuilderOptions.Bins, default 10) with equal edges
// merged, so e[0] = Min and e[n-1] = Max. A constant feature has Edges
// [v, v]. Hist has n+1 counts, one per bin, numpy's convention plus an
// underflow and an overflow bin:
//
//	bin 0      (-Inf, e[0])        underflow: empty for the reference itself
//	bin i      [e[i-1], e[i])      for 1 <= i < n-1
//	bin n-1    [e[n-2], e[n-1]]    the last inner bin is closed
//	bin n      (e[n-1], +Inf)      overflow: empty for the reference itself
//
// Bin(x) applies exactly this rule. A numeric feature without finite values
// (and a profile built from production windows stored without value sketches)
// has no Edges and no Hist.
//
// Quantiles. The quantile summary is a sorted sample of M values each
// standing for 1/M of the reference; CDF(x) = #{q in Quantiles : q <= x} / M.
// When Count <= QuantileSummarySize the summary is the sorted values
// themselves (Exact, M = Count) and CDF is the empirical CDF. Otherwise
// M = QuantileSummarySize and Quantiles[j] is the order statistic
// x_(ceil(Count*(j+1)/M)) (1-based; the last one is Max), which gives
// CDF(x) = floor(M*F(x))/M for the empirical CDF F: F(x)-1/M < CDF(x) <= F(x)
// everywhere. A KS statistic computed from the summary is therefore within
// 1/M = 1e-4 of the one computed from the reference values (from the
// summary's side; the production side adds its own error), and a
// Wasserstein-1 distance within (Max-Min)/M.
type FeatureProfile struct {
	Name         string
	Kind         schemas.Kind // Number, String or Bool; Null when only missing values were seen
	Count        uint64       // present values (numeric: finite ones)
	Missing      uint64       // null or absent values, including TypeMismatch
	TypeMismatch uint64       // values of another kind than Kind (counted in Missing too)

	// Numeric only.
	NaN, Inf  uint64    // NaN and ±Inf values, not in Count
	Mean      float64   // NaN when Count == 0
	Std       float64   // sample standard deviation, NaN when Count < 2
	Min, Max  float64   // NaN when Count == 0
	Edges     []float64 // bin edges, see above; nil when unknown
	Hist      []uint64  // len(Edges)+1 counts; nil when Edges is
	Quantiles []float64 // sorted quantile summary, see above; nil when unknown
	Exact     bool      // Quantiles holds every value (Count <= QuantileSummarySize)
	// RankError bounds the error of the CDF that Hist and Quantiles stand
	// for against the reference's values, at any point, as a share of Count
	// (on top of the 1/M of a quantile summary that is not Exact): 0 for a
	// profile built from a file, the merged value sketch's RankErrorBound
	// for one built from production windows that held more than
	// stats.ExactCap values; NaN when unknown (a production profile stored
	// before profiles carried it). Drift error bounds use it.
	RankError float64

	// String and bool only.
	Counts map[string]uint64 // count per value, at most stats.MaxCategories entries
	Other  uint64            // values beyond the first stats.MaxCategories distinct ones

	// ChunkScores are the drift scores of chunks of the reference against
	// the whole reference, per drift method name (BuilderOptions.ChunkRows
	// and ChunkScorer); nil when the profile was built without chunks or
	// the feature had fewer than 2 chunk scores for every method.
	ChunkScores map[string]ChunkStats
}

// ChunkStats summarise one drift method's scores of the reference's chunks
// against the whole reference: from them a drift threshold for the method
// that fits the reference (see drift.Override.FromReference).
type ChunkStats struct {
	Chunks int     // chunks scored, at least 2
	Mean   float64 // mean of the chunk scores
	Std    float64 // sample standard deviation (ddof 1) of the chunk scores
}

// Feature returns the profile of the named feature, or nil.
func (p *Profile) Feature(name string) *FeatureProfile {
	i, ok := slices.BinarySearchFunc(p.Features, name, func(f FeatureProfile, n string) int { return strings.Compare(f.Name, n) })
	if !ok {
		return nil
	}
	return &p.Features[i]
}

// FeatureNames returns the names of the features, sorted.
func (p *Profile) FeatureNames() []string {
	out := make([]string, len(p.Features))
	for i := range p.Features {
		out[i] = p.Features[i].Name
	}
	return out
}

// Bin returns the index in Hist of the bin holding x (see FeatureProfile),
// or -1 when x is NaN or the feature has no bins.
func (f *FeatureProfile) Bin(x float64) int { return binOf(f.Edges, x) }

func binOf(e []float64, x float64) int {
	n := len(e)
	switch {
	case n == 0 || x != x:
		return -1
	case x < e[0]:
		return 0
	case x > e[n-1]:
		return n
	}
	i := sort.SearchFloat64s(e, x) // first edge >= x
	if e[i] == x {
		i++ // x is the left edge of bin i+1
	}
	if i >= n {
		return n - 1 // x == e[n-1]: the last inner bin is closed
	}
	return i
}

// CDF returns the share of the reference at or below x according to the
// quantile summary (see FeatureProfile), or NaN when there is none.
func (f *FeatureProfile) CDF(x float64) float64 {
	if len(f.Quantiles) == 0 || x != x {
		return math.NaN()
	}
	q := f.Quantiles
	k := sort.Search(len(q), func(i int) bool { return q[i] > x })
	return float64(k) / float64(len(q))
}

// Production returns the Source of a profile built from the windows in
// [from, to).
func Production(from, to time.Time) string {
	return fmt.Sprintf("production:%s..%s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
}

var lastID struct {
	sync.Mutex
	id uint64
}

// NewID returns a reference id: the Unix time in microseconds of now, made
// strictly larger than any id this process returned before.
func NewID(now time.Time) uint64 {
	id := uint64(max(now.UnixMicro(), 1))
	lastID.Lock()
	defer lastID.Unlock()
	if id <= lastID.id {
		id = lastID.id + 1
	}
	lastID.id = id
	return id
}
