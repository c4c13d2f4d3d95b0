// Package gateway is Vigil's HTTP ingest: the handlers of `vigil gateway`,
// which take prediction events and labels over HTTP and publish them
// through a Publisher (an *ingest.Producer in the command, so they get the
// SDK's batching, bounded buffer, delivery accounting and idempotence
// headers).
//
// # Routes
//
//	POST /v1/events        prediction events (schemas/prediction_event.v1.schema.json)
//	POST /v1/labels        labels (schemas/label_event.v1.schema.json)
//	POST /v1/cloudevents   a KServe InferenceLogger CloudEvent, through the Converter
//	POST /v1/oip/{model}   an Open Inference Protocol {"request", "response"} pair, through the Converter
//
// Mount puts them on a mux (the internal/observe server, which also serves
// /metrics, /healthz and /readyz). Without a Converter the last two are not
// mounted and answer 404.
//
// A body of /v1/events or /v1/labels is one JSON object, a JSON array of
// them, or NDJSON (Content-Type application/x-ndjson: one object per line,
// blank lines skipped), optionally compressed (Content-Encoding gzip or
// zstd). Items are decoded by schemas/wire's decoders, one by one: a bad
// item is rejected with its index (0-based, in body order) and a reason
// that names the field; the others are published. The answer, for every
// route, is
//
//	{"accepted": N, "rejected": [{"index": i, "error": "...", "retry": true}]}
//
// (retry marks the items that may be sent again as they are: refused by the
// rate limit or backpressure), with status 200 (all accepted), 207 (some
// rejected), 400 (none accepted: all invalid, or the body unparseable, then
// {"error": ...}), 403 (none accepted: every item for a model the token may
// not publish), 413 (body or item count over its limit: nothing published),
// 429 (the token's rate: nothing published, Retry-After), 503 (backpressure:
// the items before the first refused one are accepted, Retry-After) or 401
// (no or unknown bearer token). docs/INGEST.md is the user's copy of this
// contract.
//
// # Limits
//
// Config bounds the body (MaxBodyBytes, before and after decompression, so
// a zip bomb stops at the limit), the items per request (MaxItems), the
// features per event (MaxFeatures: the event is rejected) and the time to
// read a body (ReadTimeout). A token's rate (internal/auth) is taken for the
// valid items of a request at once. Every rejection is counted
// (vigil_gateway_requests_total{route,status},
// vigil_gateway_events_total{route,result}: items, events or labels).
//
// # What blocks
//
// A handler reads the whole body (bounded), decodes it, then publishes its
// items one by one with Publisher.Record or RecordLabel in the request's
// goroutine. Those never wait for Kafka; under the producer's BlockWhenFull
// policy they wait at most its block timeout for buffer room, then return
// ingest.ErrBufferFull, which the handler turns into a 503. Nothing is
// dropped without the client being told.
//
// # Memory
//
// Request bodies are read into pooled buffers and decoded by pooled
// decoders; the events handed to the Publisher own their strings and slices
// (the decoders never alias the body), and a request's events share slabs
// of features allocated for that request only, never reused, as the
// producer keeps reading them after Record returns.
//
// The Handler is safe for concurrent use.
package gateway
