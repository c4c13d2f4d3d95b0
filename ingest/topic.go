package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
)

// DefaultLabelTopic is the topic a Producer writing events to topic publishes
// labels to unless WithLabelTopic says otherwise: "<topic>.labels".
func DefaultLabelTopic(topic string) string { return topic + ".labels" }

// EnsureTopic creates topic with the given number of partitions unless it
// exists already (an existing topic is left as it is, whatever its partition
// count). The replication factor is the number of brokers, at most 3. It asks
// the brokers in order until one answers. Topics are normally created by the
// deployment or by `vigil process`; the demo and the tests use this.
//
// A producer that records labels needs its label topic too: call EnsureTopic
// again with DefaultLabelTopic(topic) (or the WithLabelTopic topic).
func EnsureTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	err := kafkatopic.Ensure(ctx, brokers, topic, partitions)
	if errors.Is(err, kafkatopic.ErrInvalid) {
		return fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	return err
}
