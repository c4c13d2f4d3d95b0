package performance

import (
	"fmt"
	"time"
)

// MergeWindows merges windows into buckets of size every, per model version
// and segment; every 0 keeps the windows. Buckets are aligned to the Unix
// epoch. The first window of a bucket lends it its State, which the others
// are merged into.
func MergeWindows(windows []Window, every time.Duration) ([]Window, error) {
	if every <= 0 {
		return windows, nil
	}
	type key struct {
		version, segment string
		start            time.Time
	}
	idx := map[key]int{}
	var out []Window
	for _, w := range windows {
		start := time.Unix(0, 0).Add(w.Start.Sub(time.Unix(0, 0)).Truncate(every)).UTC()
		k := key{w.ModelVersion, w.Segment, start}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			out = append(out, Window{Model: w.Model, ModelVersion: w.ModelVersion, Segment: w.Segment,
				Start: start, End: start.Add(every), State: w.State})
			continue
		}
		if err := out[i].State.Merge(w.State); err != nil {
			return nil, fmt.Errorf("merge performance of %s %s at %s: %w", w.Model, w.ModelVersion, w.Start.Format(time.RFC3339), err)
		}
	}
	return out, nil
}
