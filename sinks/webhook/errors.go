package webhook

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vigil-ml/vigil/processors/alerting"
)

var (
	// ErrQueueFull is returned by Enqueue when the dispatcher's queue has no
	// room; the notification is not queued and is counted as dropped.
	ErrQueueFull = errors.New("webhook queue is full (raise QueueSize or check why receivers are slow)")
	// ErrClosed is returned by Enqueue and Start after Shutdown.
	ErrClosed = errors.New("webhook dispatcher is shut down")
	// ErrUnknownReceiver is returned by Enqueue for a receiver name that was
	// not given to NewDispatcher.
	ErrUnknownReceiver = errors.New("unknown webhook receiver")
	// ErrInvalidAlert is returned for an alert a receiver cannot encode; it is
	// permanent, retrying does not help.
	ErrInvalidAlert = errors.New("invalid alert")
	// ErrUndelivered is wrapped by the *UndeliveredError that Shutdown returns
	// when its context ended before every queued notification was delivered.
	ErrUndelivered = errors.New("notifications not delivered")
	// ErrBadSignature is returned by Verify when the signature does not match
	// the body and timestamp (wrong secret or tampered body).
	ErrBadSignature = errors.New("webhook signature does not match")
	// ErrStaleTimestamp is returned by Verify when the timestamp is outside
	// the tolerance (a replayed request, or clocks out of sync).
	ErrStaleTimestamp = errors.New("webhook timestamp outside tolerance")
	// ErrDuplicateDelivery is returned by Outbox.Save for a delivery id it
	// already holds; the Dispatcher skips that delivery (counted in
	// Stats.Duplicates).
	ErrDuplicateDelivery = errors.New("webhook delivery already in the outbox")
	// ErrExpired is the result the Dispatcher gives Outbox.Done for a
	// delivery still undelivered MaxAge after it was created: it is not sent
	// any more (sinks/clickhouse records it as 'expired').
	ErrExpired = errors.New("webhook delivery expired")
	// ErrFenced is returned (wrapped) by a Fence when another process took
	// over sending: the Dispatcher leaves the delivery pending for it. It is
	// alerting.ErrFenced, which the alert job's Fence returns.
	ErrFenced = alerting.ErrFenced
)

// StatusError is a non-2xx answer of a receiver. Codes 429 and 5xx are
// retried; other codes are permanent.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string {
	return "receiver answered HTTP " + strconv.Itoa(e.Code)
}

// Retryable reports whether the code is worth retrying.
func (e *StatusError) Retryable() bool { return e.Code == 429 || e.Code >= 500 }

// UndeliveredError lists the notifications Shutdown could not deliver before
// its context ended. They stay in the Outbox and are re-sent by the next Start.
type UndeliveredError struct {
	Deliveries []Delivery
}

func (e *UndeliveredError) Error() string {
	ids := make([]string, 0, len(e.Deliveries))
	for _, d := range e.Deliveries {
		ids = append(ids, d.Receiver+"/"+d.ID)
	}
	return fmt.Sprintf("%d %s (kept in the outbox, re-sent on next start): %s",
		len(e.Deliveries), ErrUndelivered, strings.Join(ids, ", "))
}

func (e *UndeliveredError) Unwrap() error { return ErrUndelivered }

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
