package webhook

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"
)

// Every test must stop what it started: the workers, the redelivery
// schedule and the HTTP connections of the dispatchers.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func sprintAll(v any) string { return fmt.Sprintf("%v %+v %#v %s", v, v, v, v) }
