// Package kafkatopic creates Kafka topics idempotently; shared by the SDK
// (ingest.EnsureTopic), the processor and the CLI.
package kafkatopic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// defaultAdminTimeout bounds Ensure when ctx has no deadline.
const defaultAdminTimeout = 30 * time.Second

// ErrInvalid is returned for no brokers or fewer than one partition.
var ErrInvalid = errors.New("invalid topic request")

// Ensure creates topic with the given number of partitions unless it exists
// already (an existing topic is left as it is, whatever its partition count).
// The replication factor is the number of brokers, at most 3. It asks the
// brokers in order until one answers, and returns once the topic's partitions
// show in metadata.
func Ensure(ctx context.Context, brokers []string, topic string, partitions int) error {
	if len(brokers) == 0 {
		return fmt.Errorf("ensure topic %q: %w: no brokers", topic, ErrInvalid)
	}
	if partitions < 1 {
		return fmt.Errorf("ensure topic %q: %w: partitions %d (want >= 1)", topic, ErrInvalid, partitions)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultAdminTimeout)
		defer cancel()
	}
	var errs []error
	for _, addr := range brokers {
		err := ensureTopicVia(ctx, addr, topic, partitions)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("ensure topic %q (is Kafka running at %v? start it with deployments/local/kafka.sh): %w",
		topic, brokers, errors.Join(errs...))
}

func ensureTopicVia(ctx context.Context, addr, topic string, partitions int) error {
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline on %s: %w", addr, err)
	}
	brokers, err := conn.Brokers()
	if err != nil {
		return fmt.Errorf("list brokers via %s: %w", addr, err)
	}
	controller, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find controller via %s: %w", addr, err)
	}
	caddr := net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port))
	cconn, err := kafka.DialContext(ctx, "tcp", caddr)
	if err != nil {
		return fmt.Errorf("dial controller %s: %w", caddr, err)
	}
	defer cconn.Close()
	if err := cconn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline on %s: %w", caddr, err)
	}
	err = cconn.CreateTopics(kafka.TopicConfig{
		Topic:             topic,
		NumPartitions:     partitions,
		ReplicationFactor: min(len(brokers), 3),
	})
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic on controller %s: %w", caddr, err)
	}
	// Creation is asynchronous on the brokers: wait until the topic's
	// partitions show in metadata, so that a producer or consumer started
	// next finds them.
	for {
		parts, err := conn.ReadPartitions(topic)
		if err == nil && len(parts) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for topic metadata via %s: %w (last: %w)", addr, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
