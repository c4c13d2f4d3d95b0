package webhook

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// DispatcherConfig tunes delivery. Zero values take the defaults.
type DispatcherConfig struct {
	// QueueSize bounds the notifications waiting for a worker; default 1024.
	QueueSize int `yaml:"queue_size"`
	// Workers is the number of concurrent deliveries; default 4.
	Workers int `yaml:"workers"`
	// Timeout bounds one HTTP attempt; default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// BackoffBase is the first retry's ceiling; it doubles per attempt; default 500ms.
	BackoffBase time.Duration `yaml:"backoff_base"`
	// BackoffMax caps the wait between attempts (and a 429's Retry-After); default 30s.
	BackoffMax time.Duration `yaml:"backoff_max"`
	// MaxAttempts counts the first try; default 6.
	MaxAttempts int `yaml:"max_attempts"`

	// Outbox persists deliveries across restarts; default none (in flight only).
	Outbox Outbox `yaml:"-"`
	// Client sends the requests; default a plain http.Client (the per-attempt
	// Timeout applies through the request context).
	Client *http.Client `yaml:"-"`
}

func (c DispatcherConfig) withDefaults() DispatcherConfig {
	if c.QueueSize == 0 {
		c.QueueSize = 1024
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = 500 * time.Millisecond
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 6
	}
	if c.Outbox == nil {
		c.Outbox = noOutbox{}
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	return c
}

// Validate checks the tunables after defaults.
func (c DispatcherConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.QueueSize < 0, c.Workers < 0, c.MaxAttempts < 0:
		return errors.New("webhook dispatcher: queue_size, workers and max_attempts must be positive")
	case c.Timeout < 0, c.BackoffBase < 0, c.BackoffMax < c.BackoffBase:
		return errors.New("webhook dispatcher: timeout and backoff must be positive, backoff_max >= backoff_base")
	}
	return nil
}

// Stats are the Dispatcher's counters since NewDispatcher.
type Stats struct {
	Sent    int64 // delivered (2xx)
	Retried int64 // attempts after the first
	Failed  int64 // permanently rejected (4xx other than 429, unencodable) or out of attempts
	Dropped int64 // refused by Enqueue because the queue was full
	// Duplicates are deliveries skipped by EnqueueID because the Outbox
	// already held their id.
	Duplicates int64
	Queued     int64 // waiting for a worker now
}

// Dispatcher delivers notifications to receivers. Enqueue never blocks on the
// network: it persists the delivery in the Outbox, then queues it or fails
// fast with ErrQueueFull. Workers send with retries. Shutdown stops taking
// new notifications and drains the queue until its context ends; what is left
// stays in the Outbox for the next Start. Methods are safe for concurrent use.
type Dispatcher struct {
	cfg       DispatcherConfig
	log       zerolog.Logger
	receivers map[string]Receiver
	queue     chan Delivery

	mu      sync.Mutex // serialises Enqueue with Start and Shutdown
	started bool
	// early holds the ids queued before Start, which Start must not queue
	// again from the Outbox.
	early    map[string]struct{}
	closed   bool
	stopping chan struct{}

	runCtx    context.Context // cancelled when Shutdown's context ends: abort in-flight work
	cancelRun context.CancelFunc
	wg        sync.WaitGroup

	undeliveredMu sync.Mutex
	undelivered   []Delivery

	sent, retried, failed, dropped, duplicates atomic.Int64
}

// NewDispatcher builds a Dispatcher for receivers with unique names.
func NewDispatcher(cfg DispatcherConfig, log zerolog.Logger, receivers ...Receiver) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	byName := make(map[string]Receiver, len(receivers))
	for _, r := range receivers {
		if _, dup := byName[r.Name()]; dup {
			return nil, fmt.Errorf("webhook dispatcher: two receivers are named %q (give each a unique name)", r.Name())
		}
		byName[r.Name()] = r
	}
	runCtx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{
		cfg:       cfg,
		log:       log.With().Str("component", "webhook").Logger(),
		receivers: byName,
		queue:     make(chan Delivery, cfg.QueueSize),
		stopping:  make(chan struct{}),
		runCtx:    runCtx,
		cancelRun: cancel,
	}, nil
}

// Start starts the workers, then re-sends the Outbox's pending deliveries
// (waiting for queue room, bounded by ctx).
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	if d.started {
		d.mu.Unlock()
		return errors.New("webhook dispatcher: Start called twice")
	}
	d.started = true
	for range d.cfg.Workers {
		d.wg.Add(1)
		go d.work()
	}
	d.mu.Unlock()

	pending, err := d.cfg.Outbox.Pending(ctx)
	if err != nil {
		return fmt.Errorf("read pending webhook deliveries from the outbox: %w", err)
	}
	if len(pending) > 0 {
		d.log.Info().Int("deliveries", len(pending)).Msg("re-sending pending notifications from the outbox")
	}
	for _, del := range pending {
		if _, queued := d.early[del.ID]; queued {
			continue
		}
		if _, ok := d.receivers[del.Receiver]; !ok {
			d.failed.Add(1)
			d.log.Error().Str("receiver", del.Receiver).Str("delivery", del.ID).
				Msg("dropping pending notification: its receiver is no longer configured")
			d.markDone(del, ErrUnknownReceiver)
			continue
		}
		select {
		case d.queue <- del:
		case <-ctx.Done():
			return fmt.Errorf("re-send pending webhook deliveries: %w", ctx.Err())
		case <-d.stopping:
			return ErrClosed
		}
	}
	return nil
}

// Enqueue queues group for the named receiver; for PagerDuty, one delivery
// per alert. It fails fast with ErrQueueFull (counted as dropped) when the
// queue has no room for all of them, and with ErrClosed after Shutdown. The
// alerts are copied. Outbox.Save runs under the dispatcher's lock: alerts are
// few, and this keeps the queue-room check exact.
func (d *Dispatcher) Enqueue(ctx context.Context, receiver string, group []Alert) error {
	return d.EnqueueID(ctx, newID(), receiver, group)
}

// EnqueueID is Enqueue with the delivery id chosen by the caller (with
// "-<i>" appended per alert for receivers that take one alert per request).
// A caller that derives the id from what it notifies (the alert evaluator
// does) can enqueue again after a crash without sending twice: a delivery
// whose id the Outbox already holds (Save returns ErrDuplicateDelivery) is
// skipped.
func (d *Dispatcher) EnqueueID(ctx context.Context, id, receiver string, group []Alert) error {
	r, ok := d.receivers[receiver]
	if !ok {
		return fmt.Errorf("enqueue alerts for %q: %w", receiver, ErrUnknownReceiver)
	}
	if len(group) == 0 {
		return nil
	}
	copied := make([]Alert, len(group))
	for i, a := range group {
		if err := validateAlert(a); err != nil {
			return fmt.Errorf("enqueue alerts for %s: %w", receiver, err)
		}
		copied[i] = cloneAlert(a)
	}
	parts := [][]Alert{copied}
	if _, split := r.(onePerAlert); split {
		parts = parts[:0]
		for i := range copied {
			parts = append(parts, copied[i:i+1])
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if cap(d.queue)-len(d.queue) < len(parts) {
		d.dropped.Add(int64(len(parts)))
		d.log.Warn().Str("receiver", receiver).Int("alerts", len(group)).Msg("webhook queue full, notification dropped")
		return ErrQueueFull
	}
	now := time.Now().UTC()
	for i, alerts := range parts {
		del := Delivery{ID: id, Receiver: receiver, Alerts: alerts, CreatedAt: now}
		if len(parts) > 1 {
			del.ID = fmt.Sprintf("%s-%d", id, i)
		}
		if err := d.cfg.Outbox.Save(ctx, del); errors.Is(err, ErrDuplicateDelivery) {
			d.duplicates.Add(1)
			continue
		} else if err != nil {
			return fmt.Errorf("save webhook delivery for %s to the outbox (%d of %d queued): %w", receiver, i, len(parts), err)
		}
		if !d.started {
			if d.early == nil {
				d.early = map[string]struct{}{}
			}
			d.early[del.ID] = struct{}{}
		}
		select {
		case d.queue <- del:
		default: // Start's replay took the room.
			d.dropped.Add(int64(len(parts) - i))
			d.markDone(del, ErrQueueFull)
			return ErrQueueFull
		}
	}
	return nil
}

// Shutdown stops accepting notifications and delivers the queued ones until
// ctx ends; then it aborts in-flight attempts and returns an
// *UndeliveredError (wrapping ErrUndelivered) listing what was not
// delivered, which stays in the Outbox. Idempotent, and safe without Start.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.stopping)
	started := d.started
	d.mu.Unlock()

	begin := time.Now()
	if started {
		done := make(chan struct{})
		go func() { d.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			d.cancelRun() // workers now hand back everything left, at once
			<-done
		}
	} else {
		for len(d.queue) > 0 {
			d.keepUndelivered(<-d.queue)
		}
	}
	d.cancelRun()

	st := d.Stats()
	d.log.Info().Dur("took", time.Since(begin)).Int64("sent", st.Sent).Int64("failed", st.Failed).
		Int64("dropped", st.Dropped).Int("undelivered", len(d.undelivered)).Msg("webhook dispatcher stopped")
	d.undeliveredMu.Lock()
	defer d.undeliveredMu.Unlock()
	if len(d.undelivered) > 0 {
		return &UndeliveredError{Deliveries: d.undelivered}
	}
	return nil
}

// Stats returns the counters.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Sent: d.sent.Load(), Retried: d.retried.Load(), Failed: d.failed.Load(),
		Dropped: d.dropped.Load(), Duplicates: d.duplicates.Load(), Queued: int64(len(d.queue)),
	}
}

// work is one worker: deliver until stopping, then drain the queue and return.
func (d *Dispatcher) work() {
	defer d.wg.Done()
	for {
		select {
		case del := <-d.queue:
			d.deliver(del)
		case <-d.stopping:
			for {
				select {
				case del := <-d.queue:
					d.deliver(del)
				default:
					return
				}
			}
		}
	}
}

func (d *Dispatcher) deliver(del Delivery) {
	r := d.receivers[del.Receiver]
	log := d.log.With().Str("receiver", del.Receiver).Str("delivery", del.ID).Int("alerts", len(del.Alerts)).Logger()
	for attempt := 1; ; attempt++ {
		if d.runCtx.Err() != nil {
			d.keepUndelivered(del)
			return
		}
		retryAfter, err := d.attempt(r, del)
		if err == nil {
			d.sent.Add(1)
			d.markDone(del, nil)
			if e := log.Debug(); e.Enabled() {
				e.Int("attempt", attempt).Msg("notification delivered")
			}
			return
		}
		if d.runCtx.Err() != nil {
			d.keepUndelivered(del)
			return
		}
		if !retryable(err) {
			d.failed.Add(1)
			d.markDone(del, err)
			log.Error().Err(err).Int("attempt", attempt).Msg("notification rejected, not retrying (fix the receiver's configuration)")
			return
		}
		if attempt >= d.cfg.MaxAttempts {
			d.failed.Add(1)
			log.Error().Err(err).Int("attempt", attempt).Msg("notification not delivered after the last attempt; kept in the outbox for the next start")
			return
		}
		wait := d.backoff(attempt, retryAfter)
		d.retried.Add(1)
		log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", wait).Msg("notification not delivered, retrying")
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.runCtx.Done():
			t.Stop()
			d.keepUndelivered(del)
			return
		}
	}
}

// attempt sends once. Errors never contain the URL (it may hold a token).
func (d *Dispatcher) attempt(r Receiver, del Delivery) (retryAfter time.Duration, err error) {
	req, err := r.Encode(del.Alerts)
	if err != nil {
		return 0, permanent{err}
	}
	ctx, cancel := context.WithTimeout(d.runCtx, d.cfg.Timeout)
	defer cancel()
	resp, err := d.cfg.Client.Do(req.WithContext(ctx))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s %s: %w", ue.Op, r.Name(), ue.Err)
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	se := &StatusError{Code: resp.StatusCode}
	if !se.Retryable() {
		return 0, permanent{se}
	}
	if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return retryAfter, se
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

func retryable(err error) bool {
	var p permanent
	return !errors.As(err, &p)
}

// backoff is "full jitter": uniform in [0, min(max, base*2^(attempt-1))],
// raised to a 429's Retry-After, capped at BackoffMax.
func (d *Dispatcher) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceiling := d.cfg.BackoffBase
	for i := 1; i < attempt && ceiling < d.cfg.BackoffMax; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, d.cfg.BackoffMax)
	wait := time.Duration(rand.Int64N(int64(ceiling) + 1))
	return min(max(wait, retryAfter), d.cfg.BackoffMax)
}

// markDone records the final answer for del: nil when delivered.
func (d *Dispatcher) markDone(del Delivery, result error) {
	// The runCtx may be cancelled; the outbox write still matters.
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
	defer cancel()
	if err := d.cfg.Outbox.Done(ctx, del, result); err != nil {
		d.log.Warn().Err(err).Str("receiver", del.Receiver).Str("delivery", del.ID).
			Msg("mark notification done in the outbox; it will be sent again on next start")
	}
}

func (d *Dispatcher) keepUndelivered(del Delivery) {
	d.undeliveredMu.Lock()
	d.undelivered = append(d.undelivered, del)
	d.undeliveredMu.Unlock()
}

func newID() string {
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}
