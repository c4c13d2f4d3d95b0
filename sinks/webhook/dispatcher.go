package webhook

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/backoff"
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

	// RedeliverBase is how long a delivery that ran out of attempts waits
	// before the next round of MaxAttempts attempts; the wait doubles per
	// round; default 30s.
	RedeliverBase time.Duration `yaml:"redeliver_base"`
	// RedeliverMax caps the wait between rounds; default 5m. Once a
	// receiver is back, a delivery reaches it within about RedeliverMax
	// plus one round of attempts.
	RedeliverMax time.Duration `yaml:"redeliver_max"`
	// MaxAge is how long after it was created a delivery is still sent; a
	// pending delivery older than that is marked expired in the Outbox
	// (Done with ErrExpired), counted in Stats.Expired and logged as an
	// error; default 24h.
	MaxAge time.Duration `yaml:"max_age"`

	// Fence, when set, is asked before every attempt (and before each
	// redelivery sweep) whether this process may still send; default none
	// (always). See Fence.
	Fence Fence `yaml:"-"`

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
	if c.RedeliverBase == 0 {
		c.RedeliverBase = 30 * time.Second
	}
	if c.RedeliverMax == 0 {
		c.RedeliverMax = 5 * time.Minute
	}
	if c.MaxAge == 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.Outbox == nil {
		c.Outbox = noOutbox{}
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	return c
}

// WithDefaults returns c with the defaults of its zero values.
func (c DispatcherConfig) WithDefaults() DispatcherConfig { return c.withDefaults() }

// Validate checks the tunables after defaults.
func (c DispatcherConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.QueueSize < 0, c.Workers < 0, c.MaxAttempts < 0:
		return errors.New("webhook dispatcher: queue_size, workers and max_attempts must be positive")
	case c.Timeout < 0, c.BackoffBase < 0, c.BackoffMax < c.BackoffBase:
		return errors.New("webhook dispatcher: timeout and backoff must be positive, backoff_max >= backoff_base")
	case c.RedeliverBase < 0, c.RedeliverMax < c.RedeliverBase, c.MaxAge < 0:
		return errors.New("webhook dispatcher: redeliver_base and max_age must be positive, redeliver_max >= redeliver_base")
	}
	return nil
}

// Stats are the Dispatcher's counters since NewDispatcher.
type Stats struct {
	Sent    int64 // delivered (2xx)
	Retried int64 // attempts after the first of a round
	// Failed counts deliveries permanently rejected (4xx other than 429,
	// unencodable) and rounds of attempts that ran out (the delivery stays
	// pending and is redelivered).
	Failed int64
	// Redelivered counts rounds of attempts started by the redelivery
	// schedule: a delivery that ran out of attempts (or that another
	// process left pending in the Outbox) sent again without a restart.
	Redelivered int64
	// Expired counts pending deliveries older than MaxAge, given up and
	// marked expired in the Outbox.
	Expired int64
	// Fenced counts deliveries this process stopped sending because the
	// Fence said another process took over; they stay pending for it.
	Fenced  int64
	Dropped int64 // refused by Enqueue because the queue was full
	// Duplicates are deliveries skipped by EnqueueID because the Outbox
	// already held their id.
	Duplicates int64
	Queued     int64 // waiting for a worker now
	// Pending is the deliveries this dispatcher holds now: queued, in
	// flight or waiting for their next round (pending in the Outbox).
	Pending int64
}

// Dispatcher delivers notifications to receivers. Enqueue never blocks on the
// network: it persists the delivery in the Outbox, then queues it or fails
// fast with ErrQueueFull. Workers send with retries; a delivery that runs out
// of attempts is redelivered on a schedule (RedeliverBase doubling up to
// RedeliverMax) until MaxAge, then marked expired. Shutdown stops taking new
// notifications and drains the queue until its context ends; what is left
// stays in the Outbox for the next Start. Methods are safe for concurrent use.
type Dispatcher struct {
	cfg       DispatcherConfig
	log       zerolog.Logger
	receivers map[string]Receiver
	queue     chan Delivery

	mu      sync.Mutex // serialises Enqueue with Start and Shutdown; guards held
	started bool
	// held is every delivery this dispatcher owns now, queued, in flight or
	// waiting for its next round (by receiver and id): the redelivery sweep
	// and Start take up only the Outbox's pending deliveries not in it.
	held map[deliveryKey]*heldDelivery
	// let go counts the deliveries the dispatcher stopped holding (delivered,
	// rejected, expired, fenced); forgotten has the count at which each one
	// went. A read of the Outbox that began before a delivery went may still
	// show it pending: it is not taken up again from that read.
	letGo     uint64
	forgotten map[deliveryKey]uint64
	closed    bool
	stopping  chan struct{}
	wake      chan struct{} // a delivery was parked: the sweep recomputes its timer

	runCtx      context.Context // cancelled when Shutdown's context ends: abort in-flight work
	cancelRun   context.CancelFunc
	sweepCtx    context.Context // cancelled by Shutdown at once
	cancelSweep context.CancelFunc
	sweepDone   chan struct{}
	wg          sync.WaitGroup

	undeliveredMu sync.Mutex
	undelivered   []Delivery

	sent, retried, failed, dropped, duplicates atomic.Int64
	redelivered, expired, fenced               atomic.Int64
}

type deliveryKey struct{ receiver, id string }

func keyOf(del Delivery) deliveryKey { return deliveryKey{del.Receiver, del.ID} }

// heldDelivery is a delivery the dispatcher owns. due is zero while it is
// queued or in flight, and the time of its next round while parked.
type heldDelivery struct {
	del   Delivery
	round int // rounds of attempts that ran out
	due   time.Time
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
	sweepCtx, cancelSweep := context.WithCancel(runCtx)
	return &Dispatcher{
		cfg:         cfg,
		log:         log.With().Str("component", "webhook").Logger(),
		receivers:   byName,
		queue:       make(chan Delivery, cfg.QueueSize),
		held:        map[deliveryKey]*heldDelivery{},
		forgotten:   map[deliveryKey]uint64{},
		stopping:    make(chan struct{}),
		wake:        make(chan struct{}, 1),
		runCtx:      runCtx,
		cancelRun:   cancel,
		sweepCtx:    sweepCtx,
		cancelSweep: cancelSweep,
		sweepDone:   make(chan struct{}),
	}, nil
}

// Start starts the workers, then re-sends the Outbox's pending deliveries
// (waiting for queue room, bounded by ctx), then starts the redelivery
// schedule. With a Fence that does not hold, the pending deliveries are left
// to the process that holds it.
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
	defer func() { go d.redeliverLoop() }()

	if d.fencedOff(ctx) {
		return nil
	}
	since := d.letGoCount()
	pending, err := d.cfg.Outbox.Pending(ctx)
	if err != nil {
		return fmt.Errorf("read pending webhook deliveries from the outbox: %w", err)
	}
	if len(pending) > 0 {
		d.log.Info().Int("deliveries", len(pending)).Msg("re-sending pending notifications from the outbox")
	}
	for _, del := range pending {
		if !d.takeUp(del, time.Time{}, since) {
			continue
		}
		select {
		case d.queue <- del:
		case <-ctx.Done():
			d.release(del)
			return fmt.Errorf("re-send pending webhook deliveries: %w", ctx.Err())
		case <-d.stopping:
			d.release(del)
			return ErrClosed
		}
	}
	return nil
}

// takeUp makes a pending delivery of the Outbox the dispatcher's own, unless
// it holds it already; one whose receiver is gone is rejected, one older
// than MaxAge expired. It reports whether del is to be queued.
// A delivery taken up with a due time waits for the sweep to queue it.
// since is letGoCount before the Outbox was read: a delivery let go after
// that is not pending any more, whatever the read says.
func (d *Dispatcher) takeUp(del Delivery, due time.Time, since uint64) bool {
	d.mu.Lock()
	if _, ok := d.held[keyOf(del)]; ok {
		d.mu.Unlock()
		return false
	}
	if at, ok := d.forgotten[keyOf(del)]; ok && at > since {
		d.mu.Unlock()
		return false
	}
	d.held[keyOf(del)] = &heldDelivery{del: del, due: due}
	d.mu.Unlock()
	if _, ok := d.receivers[del.Receiver]; !ok {
		d.failed.Add(1)
		d.log.Error().Str("receiver", del.Receiver).Str("delivery", del.ID).
			Msg("dropping pending notification: its receiver is no longer configured")
		d.finish(del, ErrUnknownReceiver)
		return false
	}
	if d.tooOld(del, time.Now()) {
		d.expire(del)
		return false
	}
	return true
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
		if _, ok := d.held[keyOf(del)]; ok {
			d.duplicates.Add(1)
			continue
		}
		if err := d.cfg.Outbox.Save(ctx, del); errors.Is(err, ErrDuplicateDelivery) {
			d.duplicates.Add(1)
			continue
		} else if err != nil {
			return fmt.Errorf("save webhook delivery for %s to the outbox (%d of %d queued): %w", receiver, i, len(parts), err)
		}
		select {
		case d.queue <- del:
			d.held[keyOf(del)] = &heldDelivery{del: del}
		default: // Start's replay or a redelivery took the room.
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
// delivered, which stays in the Outbox. Deliveries waiting for their next
// round stay pending too. Idempotent, and safe without Start.
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
	d.cancelSweep()
	if started {
		<-d.sweepDone // before the workers: it may still queue
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
		Int64("expired", st.Expired).Int64("dropped", st.Dropped).Int("undelivered", len(d.undelivered)).Msg("webhook dispatcher stopped")
	d.undeliveredMu.Lock()
	defer d.undeliveredMu.Unlock()
	if len(d.undelivered) > 0 {
		return &UndeliveredError{Deliveries: d.undelivered}
	}
	return nil
}

// Stats returns the counters.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	pending := int64(len(d.held))
	d.mu.Unlock()
	return Stats{Pending: pending,
		Sent: d.sent.Load(), Retried: d.retried.Load(), Failed: d.failed.Load(),
		Redelivered: d.redelivered.Load(), Expired: d.expired.Load(), Fenced: d.fenced.Load(),
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

// deliver runs one round of up to MaxAttempts attempts.
func (d *Dispatcher) deliver(del Delivery) {
	r := d.receivers[del.Receiver]
	log := d.log.With().Str("receiver", del.Receiver).Str("delivery", del.ID).Int("alerts", len(del.Alerts)).Logger()
	for attempt := 1; ; attempt++ {
		if d.runCtx.Err() != nil {
			d.keepUndelivered(del)
			return
		}
		if d.tooOld(del, time.Now()) {
			d.expire(del)
			return
		}
		retryAfter, err := d.attempt(r, del)
		if err == nil {
			d.sent.Add(1)
			d.finish(del, nil)
			if e := log.Debug(); e.Enabled() {
				e.Int("attempt", attempt).Msg("notification delivered")
			}
			return
		}
		if d.runCtx.Err() != nil {
			d.keepUndelivered(del)
			return
		}
		if errors.Is(err, ErrFenced) {
			d.fenced.Add(1)
			d.release(del)
			log.Warn().Err(err).Msg("notification left pending in the outbox: another process sends now")
			return
		}
		if !retryable(err) {
			d.failed.Add(1)
			d.finish(del, err)
			log.Error().Err(err).Int("attempt", attempt).Msg("notification rejected, not retrying (fix the receiver's configuration)")
			return
		}
		if attempt >= d.cfg.MaxAttempts {
			d.failed.Add(1)
			wait := d.park(del)
			log.Error().Err(err).Int("attempt", attempt).Dur("redeliver_in", wait).
				Msg("notification not delivered after the last attempt; kept in the outbox and redelivered later")
			return
		}
		wait := d.backoff(attempt, retryAfter)
		d.retried.Add(1)
		log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", wait).Msg("notification not delivered, retrying")
		if backoff.Sleep(d.runCtx, wait) != nil {
			d.keepUndelivered(del)
			return
		}
	}
}

// redeliverAfter is the wait before redelivery round n (1-based):
// RedeliverBase·2^(n-1), capped at RedeliverMax, without jitter (the
// attempts of a round have theirs), so that the cap is a promise.
func (c DispatcherConfig) redeliverAfter(round int) time.Duration {
	return backoff.Policy{Base: c.RedeliverBase, Max: c.RedeliverMax}.Ceiling(round)
}

// park keeps del for its next round and returns the wait.
func (d *Dispatcher) park(del Delivery) time.Duration {
	d.mu.Lock()
	h := d.held[keyOf(del)]
	if h == nil { // BUG guard: every queued delivery is held
		h = &heldDelivery{del: del}
		d.held[keyOf(del)] = h
	}
	h.round++
	wait := d.cfg.redeliverAfter(h.round)
	h.due = time.Now().Add(wait)
	if expiry := del.CreatedAt.Add(d.cfg.MaxAge + time.Millisecond); !del.CreatedAt.IsZero() && expiry.Before(h.due) {
		h.due = expiry // expire on time rather than at the next round
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return wait
}

// release forgets del without recording an outcome: it stays pending in
// the Outbox.
func (d *Dispatcher) release(del Delivery) {
	d.mu.Lock()
	delete(d.held, keyOf(del))
	d.letGo++
	d.forgotten[keyOf(del)] = d.letGo
	d.mu.Unlock()
}

func (d *Dispatcher) letGoCount() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.letGo
}

// forget drops what reads begun at since or later need not know.
func (d *Dispatcher) forget(since uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, at := range d.forgotten {
		if at <= since {
			delete(d.forgotten, k)
		}
	}
}

// finish records the final answer for del (nil: delivered), then forgets
// it; in that order, so that a sweep never reads it pending while not held.
func (d *Dispatcher) finish(del Delivery, result error) {
	d.markDone(del, result)
	d.release(del)
}

func (d *Dispatcher) tooOld(del Delivery, now time.Time) bool {
	return !del.CreatedAt.IsZero() && now.Sub(del.CreatedAt) > d.cfg.MaxAge
}

// expire gives del up: marked expired in the Outbox, counted, logged.
func (d *Dispatcher) expire(del Delivery) {
	d.expired.Add(1)
	age := time.Since(del.CreatedAt).Round(time.Second)
	d.log.Error().Str("receiver", del.Receiver).Str("delivery", del.ID).Int("alerts", len(del.Alerts)).
		Dur("age", age).Dur("max_age", d.cfg.MaxAge).
		Msg("notification expired undelivered: its receiver failed for longer than max_age (check the receiver; the alerts are in vigil_notifications)")
	d.finish(del, fmt.Errorf("%w: still undelivered after %s", ErrExpired, age))
}

// fencedOff reports whether a Fence says another process sends now.
func (d *Dispatcher) fencedOff(ctx context.Context) bool {
	if d.cfg.Fence == nil {
		return false
	}
	if err := d.cfg.Fence.Hold(ctx); err != nil {
		if !errors.Is(err, ErrFenced) {
			d.log.Warn().Err(err).Msg("check the delivery fence; pending notifications wait for the next sweep")
		}
		return true
	}
	return false
}

// redeliverLoop is the redelivery schedule: it sweeps when the earliest
// parked delivery is due, and at least every RedeliverBase to take up what
// the Outbox holds pending and no one sends (another process's deliveries,
// a Done that failed to write).
func (d *Dispatcher) redeliverLoop() {
	defer close(d.sweepDone)
	next := time.Now().Add(d.cfg.RedeliverBase)
	timer := time.NewTimer(d.cfg.RedeliverBase)
	defer timer.Stop()
	for {
		select {
		case <-d.sweepCtx.Done():
			return
		case <-d.wake:
		case <-timer.C:
			d.sweep(d.sweepCtx, time.Now(), time.Now().After(next))
			if !time.Now().Before(next) {
				next = time.Now().Add(d.cfg.RedeliverBase)
			}
		}
		due := next
		d.mu.Lock()
		for _, h := range d.held {
			if !h.due.IsZero() && h.due.Before(due) {
				due = h.due
			}
		}
		d.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(time.Until(due), time.Millisecond))
	}
}

// sweep queues the parked deliveries that are due (expiring those past
// MaxAge) and, with readOutbox, takes up the Outbox's pending deliveries
// that no one holds. A full queue leaves a delivery for the next sweep.
func (d *Dispatcher) sweep(ctx context.Context, now time.Time, readOutbox bool) {
	if d.fencedOff(ctx) {
		return
	}
	if readOutbox {
		since := d.letGoCount()
		pending, err := d.cfg.Outbox.Pending(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn().Err(err).Msg("read pending notifications from the outbox; retrying at the next sweep")
			}
		}
		for _, del := range pending {
			d.takeUp(del, now, since) // queued below
		}
		d.forget(since)
	}
	var due, old []Delivery
	d.mu.Lock()
	for _, h := range d.held {
		if h.due.IsZero() || h.due.After(now) {
			continue
		}
		if d.tooOld(h.del, now) {
			old = append(old, h.del)
			continue
		}
		select {
		case d.queue <- h.del:
			h.due = time.Time{}
			due = append(due, h.del)
		default:
		}
	}
	d.mu.Unlock()
	for _, del := range old {
		d.expire(del)
	}
	for _, del := range due {
		d.redelivered.Add(1)
		d.log.Info().Str("receiver", del.Receiver).Str("delivery", del.ID).Msg("redelivering a pending notification")
	}
}

// attempt sends once. Errors never contain the URL (it may hold a token).
func (d *Dispatcher) attempt(r Receiver, del Delivery) (retryAfter time.Duration, err error) {
	if d.cfg.Fence != nil {
		ctx, cancel := context.WithTimeout(d.runCtx, d.cfg.Timeout)
		err := d.cfg.Fence.Hold(ctx)
		cancel()
		if errors.Is(err, ErrFenced) {
			return 0, err
		} else if err != nil { // cannot tell: do not send, retry
			return 0, fmt.Errorf("check the delivery fence: %w", err)
		}
	}
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

// backoff is internal/backoff's policy (full jitter: uniform in
// [0, min(max, base*2^(attempt-1))]), raised to a 429's Retry-After, capped
// at BackoffMax.
func (d *Dispatcher) backoff(attempt int, retryAfter time.Duration) time.Duration {
	wait := backoff.Policy{Base: d.cfg.BackoffBase, Max: d.cfg.BackoffMax}.Delay(attempt)
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
