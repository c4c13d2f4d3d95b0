package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ml/vigil/processors/alerting"
	"github.com/vigil-ml/vigil/schemas/ddl"
)

// Lease is alerting's: one takeover of a scope.
type Lease = alerting.Lease

// Leases is the fencing store of work that one process of a group must do
// alone (the alert job). ClickHouse has no compare-and-set: a takeover reads
// the holder and writes the next epoch, and every later check reads the
// holder again. Two takers racing for one epoch both write it; the larger
// member wins, and each one learns it at its next check. What makes that
// safe is that a taker waits, after writing, longer than any checked action
// of the previous holder takes (see processors/alerting's fence).
type Leases struct{ s *Sink }

var _ alerting.LeaseStore = (*Leases)(nil)

// Leases returns the sink's lease store.
func (s *Sink) Leases() *Leases { return &Leases{s: s} }

// Take records member as the holder of scope with the epoch after the
// current holder's, and returns the lease it wrote and the previous holder
// (Epoch 0 when none).
func (l *Leases) Take(ctx context.Context, scope, member string, generation int64) (taken, previous Lease, err error) {
	previous, err = l.Holder(ctx, scope)
	if err != nil {
		return Lease{}, Lease{}, err
	}
	conn, _, err := l.s.connection()
	if err != nil {
		return Lease{}, Lease{}, fmt.Errorf("take lease %s: %w", scope, err)
	}
	taken = Lease{Scope: scope, Epoch: previous.Epoch + 1, Member: member, Generation: generation}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (scope, epoch, member, generation, taken_at)", l.s.cfg.Database, ddl.TableLeases))
	if err != nil {
		return Lease{}, Lease{}, fmt.Errorf("take lease %s: prepare insert: %w", scope, err)
	}
	defer b.Close()
	if err := b.Append(scope, taken.Epoch, member, generation, time.Now().UTC()); err != nil {
		_ = b.Abort()
		return Lease{}, Lease{}, fmt.Errorf("take lease %s: %w", scope, err)
	}
	if err := b.Send(); err != nil {
		return Lease{}, Lease{}, fmt.Errorf("take lease %s: %w", scope, err)
	}
	return taken, previous, nil
}

// Holder returns the current holder of scope (Epoch 0 when none).
func (l *Leases) Holder(ctx context.Context, scope string) (Lease, error) {
	conn, _, err := l.s.connection()
	if err != nil {
		return Lease{}, fmt.Errorf("read lease %s: %w", scope, err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT epoch, member, generation FROM %s.%s WHERE scope = ? ORDER BY epoch DESC, member DESC LIMIT 1",
		l.s.cfg.Database, ddl.TableLeases), scope)
	if err != nil {
		return Lease{}, fmt.Errorf("read lease %s: %w", scope, err)
	}
	defer rows.Close()
	h := Lease{Scope: scope}
	if rows.Next() {
		if err := rows.Scan(&h.Epoch, &h.Member, &h.Generation); err != nil {
			return Lease{}, fmt.Errorf("read lease %s: %w", scope, err)
		}
	}
	return h, rows.Err()
}
