// Package webhook delivers alert notifications to HTTP receivers: a generic
// JSON webhook signed with HMAC-SHA256, an Alertmanager-compatible webhook,
// Slack incoming webhooks and PagerDuty Events v2.
//
// A Receiver only turns a group of alerts into an *http.Request; it does no
// I/O and is safe for concurrent use. The Dispatcher owns delivery: a bounded
// queue, a fixed pool of worker goroutines, a per-request timeout, retries
// with exponential backoff and full jitter, an Outbox so that
// notifications not yet delivered survive a restart, and a redelivery
// schedule that sends again, without a restart, what ran out of attempts
// (until MaxAge, then it is marked expired). Delivery is at-least-once: a
// receiver may see the same notification twice (after a timeout whose
// request did arrive, or after a crash between the send and Outbox.Done), so
// receivers deduplicate on the alert id (one per transition of a series; the
// fingerprint names the series and is shared by its firing and resolved
// notifications). With a Fence, only the process holding it sends.
//
// Secrets (HMAC keys, routing keys, webhook URLs) are configured as Secret
// values, which may name "env:VAR" or "file:/path". They are resolved once by
// the receiver constructors, never logged, and redacted by the String and
// MarshalJSON methods of the configs.
//
// The alerts are processors/alerting's Alert (Alert here is an alias): the
// evaluator emits them and this package renders and delivers them, so the
// dependency goes from the sink to the processor, the evaluator stays free
// of I/O, and there is one field list instead of two and a conversion.
// FromConfig builds the receivers of a rules file (alerting.ReceiverConfig).
package webhook
