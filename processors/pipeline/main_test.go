package pipeline

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// partition goroutine, consumer-group generation, reader and writer the
// processor and the label consumer start must be stopped by Shutdown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
