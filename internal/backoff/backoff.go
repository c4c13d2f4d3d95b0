// Package backoff is Vigil's one retry policy: exponential back-off with
// full jitter, capped, that stops when its context ends, and a
// classification of errors into retryable and permanent. The processor,
// the label consumer, the SDK's sender and the webhook dispatcher all retry
// through it, so one failure behaves the same way wherever it happens.
//
// A Policy is a value, safe for concurrent use; a Backoff (one retry loop's
// attempt counter) is owned by one goroutine.
package backoff

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy is exponential back-off with full jitter: the wait before retry n
// (n >= 1) is uniform in [0, min(Max, Base*2^(n-1))]. Full jitter spreads
// the retries of many clients that failed together (a broker or ClickHouse
// restart) instead of having them return in waves.
type Policy struct {
	Base time.Duration // ceiling of the first wait; must be > 0
	Max  time.Duration // cap of every wait; must be >= Base
}

// Ceiling is the largest wait before retry attempt (>= 1).
func (p Policy) Ceiling(attempt int) time.Duration {
	c := p.Base
	for i := 1; i < attempt && c < p.Max; i++ {
		c *= 2
	}
	return min(c, p.Max)
}

// Delay is the wait before retry attempt (>= 1): uniform in [0, Ceiling(attempt)].
func (p Policy) Delay(attempt int) time.Duration {
	c := p.Ceiling(attempt)
	if c <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(c) + 1))
}

// Sleep waits d or until ctx ends, and returns ctx.Err() in that case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff counts the attempts of one retry loop.
type Backoff struct {
	Policy
	attempt int
}

// New returns a Backoff of p, before its first retry.
func New(p Policy) *Backoff { return &Backoff{Policy: p} }

// Next counts a failed attempt and returns the wait before the next one.
func (b *Backoff) Next() time.Duration {
	b.attempt++
	return b.Delay(b.attempt)
}

// Attempt is the number of failed attempts since the last Reset.
func (b *Backoff) Attempt() int { return b.attempt }

// Reset starts over after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Wait counts a failed attempt and sleeps its back-off, or returns
// ctx.Err() when ctx ends first.
func (b *Backoff) Wait(ctx context.Context) error { return Sleep(ctx, b.Next()) }

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks err as permanent: Retry returns it at once, and
// IsPermanent reports true for it and for errors that wrap it. Nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Retry runs f until it returns nil, an error that retryable says is not
// worth retrying (nil retryable: every error not marked Permanent is), or
// ctx ends; it waits p's back-off between attempts and calls notify (if not
// nil) before each wait with the attempt that failed, its error and the
// wait. It returns nil, the permanent error, or ctx's error joined with
// the last error of f.
func (p Policy) Retry(ctx context.Context, f func(context.Context) error, retryable func(error) bool, notify func(attempt int, err error, wait time.Duration)) error {
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if IsPermanent(err) || (retryable != nil && !retryable(err)) {
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		wait := p.Delay(attempt)
		if notify != nil {
			notify(attempt, err, wait)
		}
		if serr := Sleep(ctx, wait); serr != nil {
			return errors.Join(serr, err)
		}
	}
}
