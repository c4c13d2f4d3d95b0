// Package wire holds the two encodings of prediction events on Kafka and the
// builder that turns events into Arrow records.
//
//   - JSON: one event per Kafka message, in the format specified by
//     schemas/prediction_event.v1.schema.json. AppendJSON encodes, JSONDecoder
//     decodes.
//   - Arrow IPC: one Kafka message is one IPC stream holding the schema and
//     exactly one record batch of one model's events, in the layout of
//     schemas/arrow.go, with ZSTD (or LZ4_FRAME) body compression.
//     ArrowEncoder encodes, DecodeArrow decodes.
//
// BatchBuilder accumulates events of one model and builds such a record.
//
// The Kafka header HeaderEncoding says which encoding a message uses.
//
// Promises:
//
//   - Every decode error wraps ErrMalformed: the message is permanently bad
//     (count it, send it to the dead-letter topic, move on). Decoders never
//     panic on corrupt input.
//   - A decoded Event owns its strings: they never alias the input bytes.
//     JSONDecoder interns repeated names and carves other strings out of
//     append-only chunks that are never written again, so a string it returns
//     stays valid and immutable for as long as it is referenced (it may keep
//     its chunk, at most 16 KiB, alive).
//   - A record returned by DecodeArrow or BatchBuilder.NewRecord is owned by
//     the caller, who must Release it. DecodeArrow uses uncompressed buffers
//     of the message in place: the caller must not modify the message bytes
//     until the record is released (decompressed buffers come from the
//     allocator). DecodeArrow bounds the memory a message may decode to
//     (MaxDecodedBatchBytes).
//   - Nothing here is safe for concurrent use, except the package-level
//     functions (DecodeArrow, TypeMismatches, AppendJSON), which keep no
//     shared state. Use one JSONDecoder, BatchBuilder and ArrowEncoder per
//     goroutine.
package wire

import "errors"

// Kafka headers and their values.
const (
	// HeaderEncoding names the encoding of a message's value: EncodingArrow or EncodingJSON.
	HeaderEncoding = "vigil-encoding"
	// EncodingArrow is an Arrow IPC stream with one record batch.
	EncodingArrow = "arrow"
	// EncodingJSON is one JSON event.
	EncodingJSON = "json"
	// HeaderSchemaVersion holds schemas.SchemaVersion in decimal ("1").
	HeaderSchemaVersion = "vigil-schema-version"
	// HeaderProducer holds the id of the SDK producer that wrote the
	// message: 32 lower-case hex digits (16 random bytes per
	// ingest.Producer). With HeaderSequence it identifies a message across
	// retries (docs/RELIABILITY.md, "Producer idempotence").
	HeaderProducer = "vigil-producer"
	// HeaderSequence holds the message's sequence number of its producer in
	// decimal, from 1, increasing in the order the producer writes.
	HeaderSequence = "vigil-sequence"
)

// ErrMalformed is wrapped by every decode error: the message can never be
// decoded, so it is a permanent error (send it to the dead-letter topic).
// BatchBuilder.Append wraps it too when it rejects an event.
var ErrMalformed = errors.New("malformed event")
