package webhook

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Delivery is one notification for one receiver: what the Outbox persists.
type Delivery struct {
	// ID is unique per delivery (random hex, or chosen by the caller of
	// EnqueueID). Receivers deduplicate on the alerts' ids, not on it: one
	// alert may travel in several deliveries.
	ID string `json:"id"`
	// Receiver is the receiver's Name.
	Receiver string `json:"receiver"`
	// Alerts is the group; it is encoded again on every attempt.
	Alerts []Alert `json:"alerts"`
	// CreatedAt is when the delivery was enqueued.
	CreatedAt time.Time `json:"createdAt"`
}

// Outbox persists deliveries so that notifications not yet delivered survive
// a restart. The Dispatcher calls Save before queueing, Done once a delivery
// reached a final answer (result nil: delivered; ErrExpired: given up after
// MaxAge; otherwise why it was rejected or dropped), and Pending on Start
// and on every redelivery sweep to send what is left. A delivery that ran
// out of attempts stays pending until it is delivered or expires. Save
// returns ErrDuplicateDelivery for an id it already holds (pending or done),
// and the Dispatcher then skips the delivery. Implementations must be safe
// for concurrent use.
//
// MemoryOutbox serves tests and single runs; sinks/clickhouse.Outbox keeps
// them in ClickHouse, where they double as the record of every notification.
type Outbox interface {
	Save(ctx context.Context, d Delivery) error
	Done(ctx context.Context, d Delivery, result error) error
	Pending(ctx context.Context) ([]Delivery, error)
}

// Fence guards sending when several processes share one Outbox (the alert
// job of every member of a processor group): only the process that holds
// the fence sends, so that two of them never deliver the same notification.
// Hold returns nil while this process holds it, an error wrapping ErrFenced
// once another process took over (the Dispatcher then leaves its deliveries
// pending for that one), or another error when it cannot tell (the attempt
// fails and is retried; nothing is sent unchecked). The Dispatcher asks
// before every attempt, so what a Fence must guarantee is that a process
// taking over waits until attempts checked before it took over are done.
// Implementations must be safe for concurrent use.
type Fence interface {
	Hold(ctx context.Context) error
}

// MemoryOutbox is an Outbox in memory: it survives a Dispatcher restart
// within one process, not a process restart.
type MemoryOutbox struct {
	mu   sync.Mutex
	m    map[string]Delivery
	done map[string]error
}

var _ Outbox = (*MemoryOutbox)(nil)

func NewMemoryOutbox() *MemoryOutbox {
	return &MemoryOutbox{m: map[string]Delivery{}, done: map[string]error{}}
}

func (o *MemoryOutbox) Save(_ context.Context, d Delivery) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.m[d.ID]; ok {
		return ErrDuplicateDelivery
	}
	if _, ok := o.done[d.ID]; ok {
		return ErrDuplicateDelivery
	}
	o.m[d.ID] = d
	return nil
}

func (o *MemoryOutbox) Done(_ context.Context, d Delivery, result error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, d.ID)
	o.done[d.ID] = result
	return nil
}

// Pending returns the deliveries oldest first.
func (o *MemoryOutbox) Pending(context.Context) ([]Delivery, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Delivery, 0, len(o.m))
	for _, d := range o.m {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Delivery) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Len is the number of pending deliveries.
func (o *MemoryOutbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.m)
}

// noOutbox is used when no Outbox is configured.
type noOutbox struct{}

func (noOutbox) Save(context.Context, Delivery) error        { return nil }
func (noOutbox) Done(context.Context, Delivery, error) error { return nil }
func (noOutbox) Pending(context.Context) ([]Delivery, error) { return nil, nil }
