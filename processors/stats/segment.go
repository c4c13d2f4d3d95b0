package stats

import "strings"

// Segment slicing limits: within one scope (a window of a model version for
// the window states, a window of a model for the performance join), at most
// MaxSegmentValues values of a segment key get a segment of their own;
// further values share the segment key=OtherSegment. They bound the states
// a high-cardinality tag (a user id, say) can create.
const (
	MaxSegmentValues = 100
	OtherSegment     = "__other__"
)

// SegmentCap names the segments of segment values under the cap: the one
// implementation of MaxSegmentValues, shared by the stream processor's
// window states and the performance job's join. The zero value is ready to
// use; not safe for concurrent use.
type SegmentCap struct {
	scopes map[segmentScope]*segmentValues
}

// segmentScope is one segment key in one scope.
type segmentScope struct {
	scope Key
	key   string
}

// segmentValues are the values of a segment key admitted in a scope, with
// their segment names, and the name of the rest.
type segmentValues struct {
	names map[string]string
	other string
}

// Segment returns the segment of the tag key=value in scope: "key=value"
// for the first MaxSegmentValues distinct values of key in scope,
// "key=__other__" for later ones. The returned string is the cap's own;
// scope, key and value may alias memory the caller reuses (an Arrow buffer):
// the cap keeps copies.
func (c *SegmentCap) Segment(scope Key, key, value string) string {
	vals := c.scopes[segmentScope{scope, key}]
	if vals == nil {
		if c.scopes == nil {
			c.scopes = make(map[segmentScope]*segmentValues)
		}
		owned := Key{Model: strings.Clone(scope.Model), ModelVersion: strings.Clone(scope.ModelVersion), Segment: strings.Clone(scope.Segment), WindowStart: scope.WindowStart}
		key = strings.Clone(key)
		vals = &segmentValues{names: make(map[string]string), other: key + "=" + OtherSegment}
		c.scopes[segmentScope{owned, key}] = vals
	}
	if name, ok := vals.names[value]; ok {
		return name
	}
	if len(vals.names) >= MaxSegmentValues {
		return vals.other
	}
	name := key + "=" + value // a new string: owns its bytes
	vals.names[name[len(key)+1:]] = name
	return name
}

// Forget drops what the cap holds for key in scope, once the scope's states
// are gone (the window was flushed).
func (c *SegmentCap) Forget(scope Key, key string) {
	delete(c.scopes, segmentScope{scope, key})
}

// Scopes is the number of (scope, segment key) pairs the cap holds.
func (c *SegmentCap) Scopes() int { return len(c.scopes) }
