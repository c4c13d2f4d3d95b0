package report

import (
	"context"
	"time"

	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/stats"
)

// Stores are the reads a report needs, each a port the ClickHouse sink's
// stores implement (internal/app wires them).
type Stores struct {
	Windows     WindowStore
	References  drift.ReferenceSource
	Performance PerformanceStore
	Alerts      AlertStore
}

// WindowStore reads the window tables (the sink's WindowStore).
type WindowStore interface {
	drift.WindowStore
	// ModelVersions lists every model version with stored windows (of all
	// events), by model then version.
	ModelVersions(ctx context.Context) ([]ModelVersion, error)
	// LateEvents counts the late events of a model version (every version
	// when version is "") per window start in [from, to) (vigil_late_events).
	LateEvents(ctx context.Context, model, version string, from, to time.Time) ([]LateCount, error)
	// ScanWindowStates streams the states WindowStates returns for the
	// same arguments, in the same order (window start, version, segment,
	// partition), to each as they are read, without decoding them; only
	// those of all events (segment "") and, when segmentKey is not "", of
	// that key's values. An error of each ends the scan and is returned.
	ScanWindowStates(ctx context.Context, model, version, segmentKey string, from, to time.Time, each func(WindowRow) error) error
}

// WindowRow is one stored window state as ScanWindowStates reads it: its
// key, and Decode, which rebuilds the state (once; safe to call on another
// goroutine than the scan's, after each returned).
type WindowRow struct {
	Key    stats.Key
	Decode func() (*stats.WindowState, error)
}

// PerformanceStore reads vigil_performance (the sink's LabelStore): the
// windows of model (version "*": every version; segment "*": every segment,
// "" all predictions) starting in [from, to), oldest first.
type PerformanceStore interface {
	PerformanceStates(ctx context.Context, model, version, segment string, from, to time.Time) ([]performance.Window, error)
}

// AlertStore reads the alert series (vigil_alerts) and their transitions
// (the alerts of the notifications sent, vigil_notifications).
type AlertStore interface {
	LoadAlertStates(ctx context.Context) ([]alerting.SeriesState, error)
	// AlertTransitions returns every alert transition (firing, resolved) of
	// model notified in [from, to), once each (by alert id), oldest first.
	AlertTransitions(ctx context.Context, model string, from, to time.Time) ([]alerting.Alert, error)
}

// ModelVersion is one model version with stored windows.
type ModelVersion struct {
	Model, Version string
	// First and Last are the first window start and the last window end.
	First, Last time.Time
	Events      uint64
	Windows     uint64 // distinct windows
}

// LateCount is the number of late events of one window.
type LateCount struct {
	WindowStart time.Time
	Events      uint64
}
