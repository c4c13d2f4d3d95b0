package reference

import (
	"errors"
	"fmt"
	"time"

	"github.com/vigil-ml/vigil/processors/stats"
)

// BuildFromWindows returns the profile of the union of stored production
// window states of one model version (for example every partition's state
// of a week of windows, as Sink.Restore-style reads return them). The
// states are merged exactly (stats.WindowState.Merge): counts, missing
// values, moments, min, max and category counts are those of the union.
// Late events are not part of any window and are not counted.
//
// Gap: window states hold no value sketch today, so the numeric features of
// a production profile have moments only: Edges, Hist and Quantiles are
// nil and Exact is false. Drift statistics that need bins or quantiles
// (PSI, KS, Wasserstein) need a file-built reference until window states
// carry a mergeable value sketch.
//
// meta.Model and meta.ModelVersion default to those of the states, which
// must all agree; meta.Source defaults to Production(first window start,
// last window end); meta.Rows is set to the events of the union.
func BuildFromWindows(meta Meta, states []*stats.WindowState) (*Profile, error) {
	if len(states) == 0 {
		return nil, errors.New("reference from production: no window states")
	}
	first := states[0]
	if meta.Model == "" {
		meta.Model, meta.ModelVersion = first.Model, first.ModelVersion
	}
	key := stats.Key{Model: meta.Model, ModelVersion: meta.ModelVersion}
	union := stats.NewWindowState(key, 0)
	from, to := first.WindowStart, first.WindowEnd
	for _, st := range states {
		if st == nil {
			return nil, errors.New("reference from production: nil window state")
		}
		if st.Model != meta.Model || st.ModelVersion != meta.ModelVersion {
			return nil, fmt.Errorf("reference from production of %s/%s: window state of %s/%s", meta.Model, meta.ModelVersion, st.Model, st.ModelVersion)
		}
		// Merge reads o only; a shallow copy re-keyed to the union's key
		// lets windows of different times merge.
		o := *st
		o.Key, o.WindowEnd = key, 0
		union.Merge(&o)
		from, to = min(from, st.WindowStart), max(to, st.WindowEnd)
	}
	if meta.Source == "" {
		meta.Source = Production(time.UnixMilli(from), time.UnixMilli(to))
	}
	return profileOf(meta, union), nil
}
