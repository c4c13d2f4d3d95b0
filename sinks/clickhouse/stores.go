package clickhouse

import (
	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/processors/drift"
	"github.com/vigil-ml/vigil/processors/performance"
	"github.com/vigil-ml/vigil/processors/pipeline"
	"github.com/vigil-ml/vigil/processors/reference"
)

// The sink's surface is split along the ports of its consumers: each store
// is a view of the Sink that shares its connection pool and lifecycle (it
// fails with ErrNotStarted before Start and ErrClosed after Shutdown), and
// is safe for concurrent use. The Sink itself only starts, stops and names
// its database. The webhook dispatcher's Outbox (outbox.go) is one more.

// WindowStore holds the stream processor's state: checkpoints, window
// states (vigil_model_windows, vigil_feature_windows), raw and late events,
// and the drift computed from the windows (vigil_drift).
type WindowStore struct{ s *Sink }

// LabelStore holds labels (vigil_labels), the stored predictions they join
// with (vigil_events) and the performance computed from them
// (vigil_performance).
type LabelStore struct{ s *Sink }

// AlertStore holds what the alert evaluator reads and keeps: the metrics of
// recent windows (from every statistics table) and the alert series' states
// (vigil_alerts). The notifications are in the Outbox.
type AlertStore struct{ s *Sink }

// ReferenceStore holds the reference profiles (vigil_references).
type ReferenceStore struct{ s *Sink }

// Windows returns the sink's window store.
func (s *Sink) Windows() *WindowStore { return &WindowStore{s: s} }

// Labels returns the sink's label and performance store.
func (s *Sink) Labels() *LabelStore { return &LabelStore{s: s} }

// Alerts returns the sink's alert store.
func (s *Sink) Alerts() *AlertStore { return &AlertStore{s: s} }

// References returns the sink's reference store.
func (s *Sink) References() *ReferenceStore { return &ReferenceStore{s: s} }

// The ports the stores implement, each declared by its consumer.
var (
	_ pipeline.WindowStore     = (*WindowStore)(nil) // the processor: restore, checkpoint
	_ drift.Store              = (*WindowStore)(nil) // the drift job: window states in, drift out
	_ reference.WindowStore    = (*WindowStore)(nil) // reference build --from-store
	_ pipeline.LabelStore      = (*LabelStore)(nil)  // the label consumer
	_ performance.Store        = (*LabelStore)(nil)  // the performance job: predictions and labels in, performance out
	_ alerting.Store           = (*AlertStore)(nil)  // the alert runner: metrics in, series states kept
	_ drift.ReferenceSource    = (*ReferenceStore)(nil)
	_ alerting.ReferenceSource = (*ReferenceStore)(nil)
)

// Classify classifies the store's errors for the pipeline (see Sink.Classify).
func (ws *WindowStore) Classify(err error) pipeline.Failure { return ws.s.Classify(err) }

// Classify classifies the store's errors for the pipeline (see Sink.Classify).
func (ls *LabelStore) Classify(err error) pipeline.Failure { return ls.s.Classify(err) }
