package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-ml/vigil/schemas/ddl"
	"github.com/vigil-ml/vigil/sinks/webhook"
)

// Notification states in vigil_notifications.
const (
	NotificationPending   = "pending"
	NotificationDelivered = "delivered"
	NotificationRejected  = "rejected"
	// NotificationExpired: still undelivered when the dispatcher's MaxAge
	// passed (webhook.ErrExpired); not sent any more.
	NotificationExpired = "expired"
)

// Outbox is a webhook.Outbox in vigil_notifications: every delivery is a row
// that starts 'pending' and ends 'delivered', 'rejected' or 'expired' (a
// newer version of the row). Pending deliveries survive a restart; the table
// is also the queryable record of every notification.
type Outbox struct{ s *Sink }

var _ webhook.Outbox = (*Outbox)(nil)

// Outbox returns the sink's notification outbox.
func (s *Sink) Outbox() *Outbox { return &Outbox{s: s} }

var notificationColumns = "id, receiver, status, rules, models, fingerprints, alert_ids, alerts, created_at, state, error, updated_at, version"

// Save records d as pending, or returns webhook.ErrDuplicateDelivery when a
// delivery with its id and receiver is stored already.
func (o *Outbox) Save(ctx context.Context, d webhook.Delivery) error {
	conn, _, err := o.s.connection()
	if err != nil {
		return fmt.Errorf("save notification: %w", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s WHERE id = ? AND receiver = ?", o.s.cfg.Database, ddl.TableNotifications),
		d.ID, d.Receiver).Scan(&n); err != nil {
		return fmt.Errorf("save notification %s: look it up: %w", d.ID, err)
	}
	if n > 0 {
		return webhook.ErrDuplicateDelivery
	}
	return o.write(ctx, d, NotificationPending, "")
}

// Done records the final state of d: delivered when result is nil, expired
// for webhook.ErrExpired, else rejected.
func (o *Outbox) Done(ctx context.Context, d webhook.Delivery, result error) error {
	state, msg := NotificationDelivered, ""
	switch {
	case errors.Is(result, webhook.ErrExpired):
		state, msg = NotificationExpired, result.Error()
	case result != nil:
		state, msg = NotificationRejected, result.Error()
	}
	return o.write(ctx, d, state, msg)
}

func (o *Outbox) write(ctx context.Context, d webhook.Delivery, state, msg string) error {
	conn, _, err := o.s.connection()
	if err != nil {
		return fmt.Errorf("record notification: %w", err)
	}
	body, err := json.Marshal(d.Alerts)
	if err != nil {
		return fmt.Errorf("record notification %s: %w", d.ID, err)
	}
	var rules, models, fps, ids []string
	status := webhook.StatusResolved
	for _, a := range d.Alerts {
		if a.Status == webhook.StatusFiring {
			status = webhook.StatusFiring
		}
		rules = appendNew(rules, a.Labels["alertname"])
		models = appendNew(models, a.Model)
		fps = append(fps, a.Key())
		if a.ID != "" {
			ids = append(ids, a.ID)
		}
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", o.s.cfg.Database, ddl.TableNotifications, notificationColumns))
	if err != nil {
		return fmt.Errorf("record notification %s: prepare insert: %w", d.ID, err)
	}
	defer b.Close()
	now := time.Now().UTC()
	if err := b.Append(d.ID, d.Receiver, status, nonNil(rules), nonNil(models), nonNil(fps), nonNil(ids), string(body),
		d.CreatedAt.UTC(), state, msg, now, uint64(now.UnixNano())); err != nil {
		_ = b.Abort()
		return fmt.Errorf("record notification %s: %w", d.ID, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record notification %s: %w", d.ID, err)
	}
	return nil
}

// Known returns which of the alert ids (webhook.Alert.ID) a delivery to
// receiver already holds, pending or done: those notifications are not to
// be sent again, whatever delivery they were grouped in.
func (o *Outbox) Known(ctx context.Context, receiver string, ids []string) (map[string]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	conn, _, err := o.s.connection()
	if err != nil {
		return nil, fmt.Errorf("look up notifications: %w", err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT DISTINCT aid FROM (SELECT arrayJoin(alert_ids) AS aid FROM %s.%s WHERE receiver = ?)
WHERE has(?, aid)`, o.s.cfg.Database, ddl.TableNotifications), receiver, ids)
	if err != nil {
		return nil, fmt.Errorf("look up notifications for %s: %w", receiver, err)
	}
	defer rows.Close()
	known := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("look up notifications for %s: %w", receiver, err)
		}
		known[id] = true
	}
	return known, rows.Err()
}

// Pending returns the deliveries whose newest state is pending, oldest first.
func (o *Outbox) Pending(ctx context.Context) ([]webhook.Delivery, error) {
	conn, _, err := o.s.connection()
	if err != nil {
		return nil, fmt.Errorf("read pending notifications: %w", err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT id, receiver, argMax(alerts, version), argMax(created_at, version) AS created, argMax(state, version) AS st
FROM %s.%s GROUP BY id, receiver HAVING st = ? ORDER BY created, id`, o.s.cfg.Database, ddl.TableNotifications), NotificationPending)
	if err != nil {
		return nil, fmt.Errorf("read pending notifications: %w", err)
	}
	defer rows.Close()
	var out []webhook.Delivery
	for rows.Next() {
		var (
			d        webhook.Delivery
			body, st string
		)
		if err := rows.Scan(&d.ID, &d.Receiver, &body, &d.CreatedAt, &st); err != nil {
			return nil, fmt.Errorf("read pending notifications: %w", err)
		}
		if err := json.Unmarshal([]byte(body), &d.Alerts); err != nil {
			return nil, fmt.Errorf("read pending notification %s: decode its alerts: %w", d.ID, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func appendNew(s []string, v string) []string {
	if v == "" || slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
