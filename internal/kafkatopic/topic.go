// Package kafkatopic creates Kafka topics idempotently and reads their
// configuration; shared by the SDK (ingest.EnsureTopic), the processor and
// the CLI.
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
	return EnsureWithConfig(ctx, brokers, topic, partitions, nil)
}

// EnsureWithConfig is Ensure that creates the topic with the given topic
// configs (for example MaxMessageBytes); an existing topic keeps its own.
func EnsureWithConfig(ctx context.Context, brokers []string, topic string, partitions int, configs map[string]string) error {
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
		err := ensureTopicVia(ctx, addr, topic, partitions, configs)
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

func ensureTopicVia(ctx context.Context, addr, topic string, partitions int, configs map[string]string) error {
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
	tc := kafka.TopicConfig{
		Topic:             topic,
		NumPartitions:     partitions,
		ReplicationFactor: min(len(brokers), 3),
	}
	for k, v := range configs {
		tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	err = cconn.CreateTopics(tc)
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
			return fmt.Errorf("wait for topic metadata via %s: %w (last: %v)", addr, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// MaxMessageBytes is the topic config that limits the size of a record
// batch the broker accepts for the topic (Kafka's default: 1048588).
const MaxMessageBytes = "max.message.bytes"

// Config returns the value of config name of topic, as the brokers report
// it (the topic's own setting or the broker default it inherits). It asks
// the brokers in order until one answers.
func Config(ctx context.Context, brokers []string, topic, name string) (string, error) {
	if len(brokers) == 0 {
		return "", fmt.Errorf("describe topic %q: %w: no brokers", topic, ErrInvalid)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultAdminTimeout)
		defer cancel()
	}
	var errs []error
	for _, addr := range brokers {
		v, err := configVia(ctx, addr, topic, name)
		if err == nil {
			return v, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || errors.Is(err, kafka.UnknownTopicOrPartition) {
			break
		}
	}
	return "", fmt.Errorf("describe config %s of topic %q at %v: %w", name, topic, brokers, errors.Join(errs...))
}

func configVia(ctx context.Context, addr, topic, name string) (string, error) {
	// Its own transport, closed on return: kafka-go's default one keeps
	// goroutines per broker alive for the life of the process.
	conns := &kafka.Transport{}
	defer conns.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: conns}
	res, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{
		Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic,
			ResourceName: topic,
			ConfigNames:  []string{name},
		}},
	})
	if err != nil {
		return "", fmt.Errorf("via %s: %w", addr, err)
	}
	for _, r := range res.Resources {
		if r.Error != nil {
			return "", fmt.Errorf("via %s: %w", addr, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == name {
				return e.ConfigValue, nil
			}
		}
	}
	return "", fmt.Errorf("via %s: config %s not in the answer", addr, name)
}

// MaxMessageBytesOf is topic's max.message.bytes.
func MaxMessageBytesOf(ctx context.Context, brokers []string, topic string) (int, error) {
	v, err := Config(ctx, brokers, topic, MaxMessageBytes)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("topic %q: %s %q is not a positive integer", topic, MaxMessageBytes, v)
	}
	return n, nil
}
