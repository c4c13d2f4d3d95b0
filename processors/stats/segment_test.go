package stats

import (
	"strconv"
	"testing"
)

// The first MaxSegmentValues values of a key in a scope have segments of
// their own, later ones share key=__other__; values seen before keep theirs;
// keys and scopes are capped apart; Forget starts a scope afresh.
func TestSegmentCap(t *testing.T) {
	var c SegmentCap
	w1, w2 := Key{Model: "m", ModelVersion: "1", WindowStart: 0}, Key{Model: "m", ModelVersion: "1", WindowStart: 60_000}
	for i := range MaxSegmentValues {
		if got, want := c.Segment(w1, "user", "u"+strconv.Itoa(i)), "user=u"+strconv.Itoa(i); got != want {
			t.Fatalf("value %d: %q, want %q", i, got, want)
		}
	}
	tests := []struct {
		scope      Key
		key, value string
		want       string
	}{
		{w1, "user", "new", "user=" + OtherSegment},
		{w1, "user", "u7", "user=u7"}, // seen before the cap was reached
		{w1, "user", "new", "user=" + OtherSegment},
		{w1, "region", "eu", "region=eu"}, // another key: a cap of its own
		{w2, "user", "new", "user=new"},   // another window
	}
	for _, tt := range tests {
		if got := c.Segment(tt.scope, tt.key, tt.value); got != tt.want {
			t.Errorf("Segment(%d, %s, %s) = %q, want %q", tt.scope.WindowStart, tt.key, tt.value, got, tt.want)
		}
	}
	if c.Scopes() != 3 {
		t.Errorf("%d scopes, want 3", c.Scopes())
	}
	c.Forget(w1, "user")
	if got := c.Segment(w1, "user", "new"); got != "user=new" {
		t.Errorf("after Forget: %q, want user=new", got)
	}
}
