package reference

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
func BuildFromStore(ctx context.Context, store WindowStore, model, version string, from, to time.Time, opts BuilderOptions) (*Profile, error) {
	all, err := store.WindowStates(ctx, model, version, from, to)
	if err != nil {
		return nil, err
	}
	// WindowStates reads every version for version "": keep the unversioned;
	// and only the states of all events, not those of segments.
	states := slices.DeleteFunc(all, func(st *stats.WindowState) bool { return st.ModelVersion != version || st.Segment != "" })
	if len(states) == 0 {
		return nil, fmt.Errorf("%w of %s version %q start in [%s, %s)", ErrNoWindows, model, version, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	now := time.Now()
	return BuildFromWindowsOptions(Meta{
		Model: model, ModelVersion: version, ID: NewID(now), CreatedAt: now.Truncate(time.Microsecond),
	}, opts, states)
}
