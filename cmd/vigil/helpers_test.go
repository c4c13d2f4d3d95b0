package main

import (
	"testing"

	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/sinks/clickhouse"
)

// startTestSink starts a sink on the real ClickHouse in a fresh database
// named prefix_<random>, dropped when the test ends.
func startTestSink(t *testing.T, prefix string) (*clickhouse.Sink, string) {
	t.Helper()
	return testsink.Start(t, prefix)
}
