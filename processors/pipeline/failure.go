package pipeline

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/internal/backoff"
)

// The processor's and the label consumer's one failure policy.
//
// Retryable errors (a broker or ClickHouse unreachable, a leader moving, a
// timeout) are retried inside the partition with backoff's exponential,
// jittered, capped back-off, without ending the consumer group's
// generation. Permanent errors quarantine the item that caused them, count
// it and move on: a malformed message becomes a dead letter, a dead letter
// the topic refuses is truncated (or, if refused even so, dropped), a stored
// window state that cannot be decoded is skipped on restore. A permanent
// error that names no item (a missing table, a schema that needs `vigil
// migrate`) cannot be skipped without losing data: it is retried at the
// back-off's cap and logged as an error that says what to do.

// Retry policies.
var (
	// retryPolicy is for writes and restores: 100ms, doubling, up to 10s.
	retryPolicy = backoff.Policy{Base: 100 * time.Millisecond, Max: 10 * time.Second}
	// fetchPolicy is for a partition's fetches: kafka-go's reader retries
	// connections itself and reports only what persists.
	fetchPolicy = backoff.Policy{Base: 250 * time.Millisecond, Max: 5 * time.Second}
	// joinPolicy is for joining the consumer group.
	joinPolicy = backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}
)

// kafkaRetryable reports whether a Kafka client error may pass by itself:
// kafka-go's temporary protocol errors (not leader for partition, leader
// not available, request timed out...), network errors and timeouts.
func kafkaRetryable(err error) bool {
	if err == nil || backoff.IsPermanent(err) {
		return false
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary()
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// permanentProduce reports whether the broker refused a produced message
// for good: too large, or any non-temporary Kafka error (invalid record,
// not authorized...). Unknown errors (a closed connection) are retryable.
func permanentProduce(err error) bool {
	if err == nil {
		return false
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) { // one error per message: permanent if every failure is
		n := 0
		for _, e := range werrs {
			if e != nil && !permanentProduce(e) {
				return false
			}
			if e != nil {
				n++
			}
		}
		return n > 0
	}
	if errors.Is(err, kafka.MessageSizeTooLarge) || errors.As(err, new(kafka.MessageTooLargeError)) {
		return true
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		return !ke.Temporary()
	}
	return backoff.IsPermanent(err)
}
