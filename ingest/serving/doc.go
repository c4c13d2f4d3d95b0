// Package serving turns what model servers log about their inferences into
// Vigil prediction events (schemas.Event), one event per row of a request.
// It knows the serving stacks' formats, not HTTP servers or Kafka producers:
// `vigil gateway` (ingest/gateway) feeds it HTTP bodies, `vigil bridge`
// (Bridge, in this package) feeds it Kafka messages, and both publish what it
// returns through an *ingest.Producer.
//
// # Formats
//
//   - CloudEvents over HTTP (Converter.CloudEvent), binary mode (attributes in
//     ce-* headers, the body is the data) and structured mode (Content-Type
//     application/cloudevents+json, data or data_base64), and batched mode
//     (application/cloudevents-batch+json), per the CloudEvents 1.0 HTTP
//     protocol binding. KServe's InferenceLogger sends one event of type
//     org.kubeflow.serving.inference.request and one of type
//     org.kubeflow.serving.inference.response per inference, in binary
//     mode, with the same ce-id and the extensions inferenceservicename,
//     namespace, component and endpoint.
//   - The payloads: KServe's V1 protocol ({"instances": [...]} ->
//     {"predictions": [...]}) and the Open Inference Protocol v2 (KServe V2,
//     MLServer, Triton: "inputs"/"outputs" tensors with name, shape,
//     datatype and data). On Kafka (Seldon Core v2) the v2 messages may also
//     be the protobuf ModelInferRequest/ModelInferResponse of the gRPC
//     protocol.
//   - An OIP pair body {"request": ..., "response": ...} (Converter.OIPPair)
//     for servers that log both halves at once.
//
// How tensors and instances become features and a prediction is the
// per-model Mapping (mapping.go, a YAML file decoded strictly), with defaults
// that need no mapping: features are named by tensor (and <tensor>_<j> for
// the columns of a [n, k] tensor), the first output is the prediction. The
// formats and the mapping are documented in docs/INGEST.md.
//
// # Pairing
//
// A request and its response arrive separately. The Converter holds the
// first half in a bounded buffer keyed by (model server, component, request
// id) until the other half comes: at most Config.MaxPending halves, each at
// most Config.PendingTTL. A half that expires, that is evicted to make room
// (the oldest goes first) or that repeats a half already waiting is
// dropped and counted (vigil_serving_pairs_total{result=expired|evicted|
// duplicate}); memory never grows beyond the bound. Expiry is checked on
// every call and by Sweep; no goroutine of its own runs.
//
// # What it promises
//
// A Converter is safe for concurrent use. Its methods never block on I/O;
// they hold its mutex only to pair. They do not keep the body they are
// given: a half that waits is copied, so the caller may reuse its buffer as
// soon as the call returns. Every event returned passes
// schemas.Event.Validate. An error wrapping ErrInvalid is permanent (the
// payload is malformed or does not fit its mapping): the caller should
// reject it (HTTP 400) or count it and move on (Kafka), never retry it.
// Event ids are deterministic (by default the request id and the row
// index), so a half delivered twice yields the same ids.
package serving
