package pipeline_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-ml/vigil/internal/kafkatopic"
	"github.com/vigil-ml/vigil/internal/testenv"
	"github.com/vigil-ml/vigil/internal/testenv/testsink"
	"github.com/vigil-ml/vigil/processors/pipeline"
)

// Of two members of a group on the real Kafka, exactly one leads (consumes
// partition 0); when it leaves, the other takes over.
func TestIntegrationLeader(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	ctx := context.Background()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	topic, db := "vigil-leader-"+suffix, "vigil_leader_"+suffix
	sink := testsink.Open(t, db, nil)
	if err := kafkatopic.Ensure(ctx, brokers, topic, 4); err != nil {
		t.Fatal(err)
	}
	member := func() *pipeline.Processor {
		t.Helper()
		p, err := pipeline.New(pipeline.Config{Brokers: brokers, Topic: topic, Group: "g-" + suffix}, sink.Windows(), zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	a := member()
	waitFor("a first leader", a.Leader)
	firstGen, _ := a.Leadership()
	// Through the rebalance, the two flags are never up at once: the old
	// generation's flag is down before the next generation is assigned.
	var both, samples atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	var b *pipeline.Processor
	var bMu sync.Mutex
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Millisecond):
			}
			bMu.Lock()
			if b != nil {
				samples.Add(1)
				if a.Leader() && b.Leader() {
					both.Add(1)
				}
			}
			bMu.Unlock()
		}
	}()
	bMu.Lock()
	b = member()
	bMu.Unlock()
	// Both in one generation: exactly one leads, steadily.
	waitFor("the rebalance to two members", func() bool {
		return a.Partitions() > 0 && b.Partitions() > 0 && a.Partitions()+b.Partitions() == 4
	})
	time.Sleep(2 * time.Second)
	close(stopSampling)
	<-sampled
	if a.Leader() == b.Leader() {
		t.Fatalf("leaders: a %v, b %v", a.Leader(), b.Leader())
	}
	g := firstGen
	if ga, ok := a.Leadership(); ok {
		g = ga
	} else if gb, ok := b.Leadership(); ok {
		g = gb
	}
	t.Logf("%d samples of both flags through the rebalance (generation %d -> %d), %d with both up", samples.Load(), firstGen, g, both.Load())
	if both.Load() != 0 || g <= firstGen {
		t.Errorf("both members led at once in %d of %d samples; leading generation %d after %d (want a later one)", both.Load(), samples.Load(), g, firstGen)
	}
	leader, other := a, b
	if b.Leader() {
		leader, other = b, a
	}
	if err := leader.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor("the other member to take over", other.Leader)
	if err := other.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
