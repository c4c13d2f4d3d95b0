package reference

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ml/vigil/processors/stats"
)

// WindowStore reads the stored window states (the ClickHouse sink).
type WindowStore interface {
	// WindowStates returns the states of model (version "": every version)
	// whose windows start in [from, to), one per partition.
	WindowStates(ctx context.Context, model, version string, from, to time.Time) ([]*stats.WindowState, error)
}

// ErrNoWindows is returned by BuildFromStore when no stored window of the
// model version starts in the range.
var ErrNoWindows = errors.New("no stored windows")

// BuildFromStore builds the reference of a model version from its stored
// window states whose windows start in [from, to): those of all events
// (not of segments) of that version exactly (version "" is the unversioned
// model, not every version). Its ID and CreatedAt are now; its Source names
// the first window start and the last window end (BuildFromWindowsOptions).
// With opts.Segment, the states of each value of that segment key give the
// profile's Segments.
func BuildFromStore(ctx context.Context, store WindowStore, model, version string, from, to time.Time, opts BuilderOptions) (*Profile, error) {
	all, err := store.WindowStates(ctx, model, version, from, to)
	if err != nil {
		return nil, err
	}
	// WindowStates reads every version for version "": keep the unversioned;
	// and only the states of all events, not those of segments.
	all = slices.DeleteFunc(all, func(st *stats.WindowState) bool { return st.ModelVersion != version })
	var states []*stats.WindowState
	segments := map[string][]*stats.WindowState{}
	for _, st := range all {
		switch {
		case st.Segment == "":
			states = append(states, st)
		case opts.Segment != "" && strings.HasPrefix(st.Segment, opts.Segment+"="):
			segments[st.Segment] = append(segments[st.Segment], st)
		}
	}
	if len(states) == 0 {
		return nil, fmt.Errorf("%w of %s version %q start in [%s, %s)", ErrNoWindows, model, version, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	now := time.Now()
	p, err := BuildFromWindowsOptions(Meta{
		Model: model, ModelVersion: version, ID: NewID(now), CreatedAt: now.Truncate(time.Microsecond),
	}, opts, states)
	if err != nil {
		return nil, err
	}
	// With opts.Segment, the stored states of each of its values (kept by
	// vigil process --segment-keys) give the segment profiles.
	for seg, sts := range segments {
		sp, err := BuildFromWindowsOptions(p.Meta, opts, sts)
		if err != nil {
			return nil, fmt.Errorf("segment %s: %w", seg, err)
		}
		p.Segments = append(p.Segments, SegmentProfile{Segment: seg, Rows: sp.Rows, Features: sp.Features})
	}
	slices.SortFunc(p.Segments, func(a, b SegmentProfile) int { return strings.Compare(a.Segment, b.Segment) })
	return p, nil
}
