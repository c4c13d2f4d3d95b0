package drift

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ml/vigil/processors/reference"
	"github.com/vigil-ml/vigil/processors/stats"
)

// WindowStore reads the stored window states (the ClickHouse sink).
type WindowStore interface {
	// WindowStates returns the states of model (version "" : every
	// version) whose windows start in [from, to), one per partition.
	WindowStates(ctx context.Context, model, version string, from, to time.Time) ([]*stats.WindowState, error)
}

// Bucket is the drift of the merged windows of one bucket, model version
// and segment against reference RefID: what `vigil query drift` prints and
// vigil_drift stores.
type Bucket struct {
	Model, ModelVersion string
	Segment             string // "" for all events, "key=value" for a segment
	Start, End          time.Time
	Events              uint64
	RefID               uint64
	// RefSegment is the segment of the reference the bucket was compared
	// with: Segment when the reference has a profile of it, else "" (the
	// whole reference).
	RefSegment string
	Drift      WindowDrift
}

// BucketQuery selects the windows Buckets merges.
type BucketQuery struct {
	Model   string
	Version string // "" every version, each against its own reference
	// By selects the states: "" those of all events, a segment key those of
	// each of its values, "*" every state (each segment apart).
	By       string
	From, To time.Time     // window starts in [From, To)
	Every    time.Duration // bucket size; 0: each stored window
}

// ErrNoReference says what to do when a model version has no reference.
var ErrNoReference = errors.New("no reference profile (build one with `vigil reference build`)")

// Buckets merges the stored window states q selects over partitions and
// into buckets of size q.Every (aligned to the Unix epoch), and evaluates
// each bucket against its model version's reference in refs (by model and
// version), oldest bucket first, then by version and segment.
func Buckets(ctx context.Context, store WindowStore, refs map[[2]string]*reference.Profile, opts Options, q BucketQuery) ([]Bucket, error) {
	states, err := store.WindowStates(ctx, q.Model, q.Version, q.From, q.To)
	if err != nil {
		return nil, err
	}
	return EvaluateBuckets(MergeBuckets(states, q), refs, opts)
}

// MergedBucket is the merged window state of one bucket, model version and
// segment, before evaluation: what Buckets evaluates, kept for callers that
// also show the distributions behind a verdict (internal/report).
type MergedBucket struct {
	Model, ModelVersion, Segment string
	Start, End                   time.Time
	State                        *stats.WindowState
}

// MergeBuckets merges the states q selects (q.By, q.Every; q.Model,
// q.Version and the range are the reader's) over partitions and into
// buckets, oldest bucket first, then by version and segment. It re-keys the
// states it merges (their key becomes the bucket's): read them again for
// another merge.
func MergeBuckets(states []*stats.WindowState, q BucketQuery) []MergedBucket {
	type key struct {
		start            int64
		version, segment string
	}
	merged := map[key]*stats.WindowState{}
	var order []key
	for _, st := range states {
		switch {
		case q.By == "*":
		case q.By == "" && st.Segment != "":
			continue
		case q.By != "" && !strings.HasPrefix(st.Segment, q.By+"="):
			continue
		}
		start, end := st.WindowStart, st.WindowEnd
		if q.Every > 0 {
			start -= mod(start, q.Every.Milliseconds())
			end = start + q.Every.Milliseconds()
		}
		k := key{start, st.ModelVersion, st.Segment}
		m := merged[k]
		if m == nil {
			// Re-key a copy so that windows of one bucket merge.
			m = stats.NewWindowState(stats.Key{Model: st.Model, ModelVersion: st.ModelVersion, Segment: st.Segment, WindowStart: start}, end)
			merged[k], order = m, append(order, k)
		}
		st.Key, st.WindowEnd = m.Key, m.WindowEnd
		m.Merge(st)
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].start != order[j].start {
			return order[i].start < order[j].start
		}
		if order[i].version != order[j].version {
			return order[i].version < order[j].version
		}
		return order[i].segment < order[j].segment
	})
	out := make([]MergedBucket, len(order))
	for i, k := range order {
		m := merged[k]
		out[i] = MergedBucket{Model: q.Model, ModelVersion: k.version, Segment: k.segment,
			Start: time.UnixMilli(k.start).UTC(), End: time.UnixMilli(m.WindowEnd).UTC(), State: m}
	}
	return out
}

// EvaluateBuckets evaluates each merged bucket against its model version's
// reference in refs (by model and version), in the order given. A
// segment's bucket is compared with the reference's profile of that
// segment when the reference has one (reference.Profile.ForSegment), else
// with the whole reference (Bucket.RefSegment says which).
func EvaluateBuckets(merged []MergedBucket, refs map[[2]string]*reference.Profile, opts Options) ([]Bucket, error) {
	out := make([]Bucket, 0, len(merged))
	for _, m := range merged {
		ref := refs[[2]string{m.Model, m.ModelVersion}]
		if ref == nil {
			return nil, fmt.Errorf("model %s version %q: %w", m.Model, m.ModelVersion, ErrNoReference)
		}
		refSegment := ""
		if m.Segment != "" {
			// A segment's windows against the reference's profile of the
			// same segment, when it has one.
			if sp := ref.ForSegment(m.Segment); sp != nil {
				ref, refSegment = sp, m.Segment
			}
		}
		out = append(out, Bucket{
			Model: m.Model, ModelVersion: m.ModelVersion, Segment: m.Segment,
			Start: m.Start, End: m.End, Events: m.State.Events, RefID: ref.ID,
			RefSegment: refSegment, Drift: EvaluateWindowWith(ref, m.State, opts),
		})
	}
	return out, nil
}

func mod(a, b int64) int64 { return ((a % b) + b) % b }
