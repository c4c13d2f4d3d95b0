package ingest

import (
	"fmt"
	"sync"

	"github.com/vigil-ml/vigil/schemas"
)

// vectorLengths remembers the length of each vector feature a producer has
// sent, per model and version, so that Record refuses a vector of another
// length with a clear error for that event (processors count it only as a
// type mismatch of the window, docs/DRIFT.md "Embedding drift").
//
// It holds at most maxVectorKeys entries; vectors of features beyond them
// are not checked. Safe for concurrent use; a lookup of a known feature
// does not allocate.
type vectorLengths struct {
	mu sync.Mutex
	m  map[vectorKey]int
}

type vectorKey struct{ model, version, feature string }

// maxVectorKeys bounds vectorLengths (a few hundred bytes each).
const maxVectorKeys = 4096

// check returns an error wrapping schemas.ErrInvalidEvent when a vector
// feature of e has another length than the first one this producer saw for
// that model, version and feature. e must be valid.
func (v *vectorLengths) check(e *schemas.Event) error {
	for i := range e.Features {
		f := &e.Features[i]
		if f.Value.Kind != schemas.Vector {
			continue
		}
		k := vectorKey{e.Model, e.ModelVersion, f.Name}
		n := len(f.Value.Vec)
		v.mu.Lock()
		want, ok := v.m[k]
		if !ok && len(v.m) < maxVectorKeys {
			if v.m == nil {
				v.m = make(map[vectorKey]int)
			}
			v.m[k] = n
		}
		v.mu.Unlock()
		if ok && want != n {
			return fmt.Errorf("%w: feature %q: vector of %d values, this producer sent vectors of %d for model %q version %q",
				schemas.ErrInvalidEvent, f.Name, n, want, e.Model, e.ModelVersion)
		}
	}
	return nil
}
