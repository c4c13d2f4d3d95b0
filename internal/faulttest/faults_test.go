package faulttest

// Vigil's fault-injection tests: the real vigil binary, the SDK, a real
// Kafka 4.x and ClickHouse, and a fault: SIGKILLs of the processor, a broker
// stopped for 30s, the leader broker of half the partitions killed,
// ClickHouse stopped for 30s. Each asserts the exact count of every model
// window (0 lost, 0 doubled) and that every partition's checkpoint moved on
// after the fault, and logs its figures (go test -v -run TestFault).
//
// Faults on a broker or ClickHouse use private instances (StartKafka,
// StartClickHouse); the shared ones serve the other tests at the same time.
// The four tests run in parallel: most of their time is spent waiting
// through an outage or a consumer-group session timeout.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigil-ml/vigil/ingest"
	"github.com/vigil-ml/vigil/internal/testenv"
)

const outage = 30 * time.Second

// TestFaultSIGKILLLoop SIGKILLs the processor six times while the SDK sends,
// each time at a random moment after the run has restored its partitions and
// checkpointed some progress of its own (so the kill lands mid-stream, with
// window states in memory and, maybe, a checkpoint half written), and
// restarts it each time.
func TestFaultSIGKILLLoop(t *testing.T) {
	t.Parallel() // each has its own topic, group, database and instances; they mostly wait
	brokers := []string{testenv.Kafka(t)}
	r := newFaultRun(t, "kill", brokers, testenv.ClickHouse(t))

	const kills = 6
	// 8 models x 3 events per 100ms: 240 events/s for 75s, while the kill
	// loop runs (each restart waits ~10s for the group to expel the
	// killed member).
	l := r.produce(3, 100*time.Millisecond, 18000)
	midStream := 0
	for k := 1; k <= kills; k++ {
		var began int64 // before the first run, no database yet
		if k > 1 {
			began = sumOffsets(r.mustCheckpoints())
		}
		r.start()
		r.waitOwns(90 * time.Second)
		progressed := r.waitProgress(began, 30*time.Second)
		if progressed {
			midStream++
		}
		after := time.Duration(r.rng.IntN(1500)) * time.Millisecond
		time.Sleep(after)
		if r.proc.Exited() {
			t.Fatalf("run %d exited before its SIGKILL (log %s)", r.runs, r.proc.Log)
		}
		r.proc.Kill()
		t.Logf("kill %d: SIGKILL of run %d, owning partitions, %v after its first progress (progressed: %v); checkpointed %d messages before, %d at the kill; %d events sent so far",
			k, r.runs, after, progressed, began, sumOffsets(r.mustCheckpoints()), r.sentSoFar())
	}
	l.wait()
	r.start()
	r.waitOwns(90 * time.Second)
	r.waitCaughtUp()
	r.proc.Stop(60 * time.Second)
	t.Logf("figures: %d SIGKILLs while owning partitions (%d after progress of their run), %d runs, %d generations assigned",
		kills, midStream, r.runs, r.generations())
	if midStream < 5 {
		t.Errorf("only %d of %d runs progressed before their SIGKILL, want at least 5 (logs in %s)", midStream, kills, r.logDir)
	}
	r.assertExact()
}

// waitProgress waits until the checkpoints sum beyond from; false after
// timeout.
func (r *faultRun) waitProgress(from int64, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if sumOffsets(r.mustCheckpoints()) > from {
			return true
		}
	}
	return false
}

// TestFaultBrokerStopStart stops the (private, single) broker for 30s while
// the SDK sends and the processor consumes, then starts it again.
func TestFaultBrokerStopStart(t *testing.T) {
	t.Parallel() // each has its own topic, group, database and instances; they mostly wait
	broker := StartKafka(t)
	r := newFaultRun(t, "broker", []string{broker.Addr()}, testenv.ClickHouse(t))
	r.start()
	r.waitOwns(90 * time.Second)
	// 8 models x 2 events per 100ms: 160 events/s, buffered by the SDK
	// during the outage; enough attempts to outlast it (kafka-go backs off
	// up to 1s between them).
	l := r.produce(2, 100*time.Millisecond, 0, ingest.WithWriteAttempts(300))
	before := r.waitAllCheckpointed()

	stopped := time.Now()
	broker.Stop() // it refuses connections from the SIGTERM on
	time.Sleep(outage - time.Since(stopped))
	broker.Start()
	down := time.Since(stopped)
	t.Logf("broker down for %v", down.Round(time.Millisecond))
	time.Sleep(5 * time.Second)
	l.wait()
	if r.proc.Exited() {
		t.Fatalf("the processor exited during the broker outage (log %s)", r.proc.Log)
	}
	after := r.waitCaughtUp()
	r.progressed("the broker outage", before, after)
	r.proc.Stop(60 * time.Second)
	t.Logf("figures: broker down %v (stopped, %v, started again), %d generations assigned, %d fetch errors logged; SDK writes failed and retried: %d, producer-retry copies skipped: %d",
		down.Round(time.Second), outage, r.generations(), r.proc.CountLog("fetch message"), r.sdkWriteErrors(), r.duplicatesSkipped())
	r.assertExact()
}

// TestFaultLeaderBrokerKill SIGKILLs the broker that leads half the
// partitions of a 2-broker cluster (replication factor 2) while the SDK sends
// and the processor consumes; the other broker takes over the leadership;
// the killed one comes back 15s later.
func TestFaultLeaderBrokerKill(t *testing.T) {
	t.Parallel() // each has its own topic, group, database and instances; they mostly wait
	nodes := StartKafkaCluster(t, 2)
	victim := nodes[1] // a broker only: the cluster keeps its controller (node 1)
	r := newFaultRun(t, "leader", Addrs(nodes), testenv.ClickHouse(t))
	leaders := r.leaders(nodes[0].Addr())
	var led []int
	for p, id := range leaders {
		if id == victim.NodeID {
			led = append(led, p)
		}
	}
	if len(led) == 0 {
		t.Fatalf("node %d leads no partition (leaders %v): nothing to test", victim.NodeID, leaders)
	}
	t.Logf("leaders before the kill: %v (node %d leads partitions %v)", leaders, victim.NodeID, led)

	r.start()
	r.waitOwns(90 * time.Second)
	l := r.produce(2, 100*time.Millisecond, 0, ingest.WithWriteAttempts(300))
	before := r.waitAllCheckpointed()

	victim.Kill()
	killed := time.Now()
	failover := r.waitLeaders(nodes[0].Addr(), func(ls map[int]int) bool {
		for _, id := range ls {
			if id == victim.NodeID {
				return false
			}
		}
		return true
	})
	t.Logf("node %d killed; node %d leads every partition after %v", victim.NodeID, nodes[0].NodeID, failover.Round(time.Millisecond))
	time.Sleep(15*time.Second - time.Since(killed))
	victim.Start()
	time.Sleep(5 * time.Second)
	l.wait()
	if r.proc.Exited() {
		t.Fatalf("the processor exited after the leader broker's death (log %s)", r.proc.Log)
	}
	after := r.waitCaughtUp()
	r.progressed("the leader broker's death", before, after)
	r.proc.Stop(60 * time.Second)
	t.Logf("figures: leader failover %v, %d generations assigned, %d fetch errors logged; SDK writes failed and retried: %d, producer-retry copies skipped: %d",
		failover.Round(time.Millisecond), r.generations(), r.proc.CountLog("fetch message"), r.sdkWriteErrors(), r.duplicatesSkipped())
	r.assertExact()
}

// TestFaultClickHouseStop stops the (private) ClickHouse for 30s while the
// SDK sends and the processor consumes, and follows the processor's memory.
func TestFaultClickHouseStop(t *testing.T) {
	t.Parallel() // each has its own topic, group, database and instances; they mostly wait
	chs := StartClickHouse(t)
	r := newFaultRun(t, "chstop", []string{testenv.Kafka(t)}, chs.Addr())
	r.start()
	r.waitOwns(90 * time.Second)
	mem := watchMemory(t, r.proc)
	// 8 models x 10 events per 100ms: 800 events/s, a backlog of ~24k
	// events during the outage.
	l := r.produce(10, 100*time.Millisecond, 0)
	before := r.waitAllCheckpointed()
	rssBefore := mem.last()

	stopped, sentBefore := time.Now(), r.sentSoFar()
	chs.Stop() // it refuses connections from the SIGTERM on
	time.Sleep(outage - time.Since(stopped))
	peakDown := mem.max()
	sentDuring := r.sentSoFar() - sentBefore
	chs.Start()
	down := time.Since(stopped)
	t.Logf("ClickHouse down for %v", down.Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	l.wait()
	if r.proc.Exited() {
		t.Fatalf("the processor exited during the ClickHouse outage (log %s)", r.proc.Log)
	}
	after := r.waitCaughtUp()
	r.progressed("the ClickHouse outage", before, after)
	final := mem.stop()
	r.proc.Stop(60 * time.Second)
	t.Logf("figures: ClickHouse down %v, %d events sent meanwhile; processor RSS %d MB before, max %d MB during the outage, peak (VmHWM) %d MB",
		down.Round(time.Second), sentDuring, rssBefore>>20, peakDown>>20, final.Peak>>20)
	const bound = 300 << 20
	if final.Peak > bound {
		t.Errorf("processor peak RSS %d MB, want at most %d MB", final.Peak>>20, bound>>20)
	}
	r.assertExact()
}

// waitAllCheckpointed waits until every partition has a checkpoint past
// offset 0, and returns the checkpoints.
func (r *faultRun) waitAllCheckpointed() map[int]int64 {
	r.t.Helper()
	var cp map[int]int64
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		cp = r.mustCheckpoints()
		all := len(cp) == faultPartitions
		for _, off := range cp {
			all = all && off > 0
		}
		if all {
			return cp
		}
	}
	r.t.Fatalf("not every partition checkpointed within 60s: %v (log %s)", cp, r.proc.Log)
	return nil
}

// leaders returns each partition's leader node id, asked of addr.
func (r *faultRun) leaders(addr string) map[int]int {
	r.t.Helper()
	ls, err := r.metadataLeaders(addr)
	if err != nil {
		r.t.Fatal(err)
	}
	return ls
}

func (r *faultRun) metadataLeaders(addr string) (map[int]int, error) {
	conns := &kafka.Transport{}
	defer conns.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(addr), Transport: conns, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{r.topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s via %s: %w", r.topic, addr, err)
	}
	out := map[int]int{}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			out[p.ID] = p.Leader.ID
		}
	}
	return out, nil
}

// waitLeaders waits until the partition leaders satisfy ok and returns how
// long that took.
func (r *faultRun) waitLeaders(addr string, ok func(map[int]int) bool) time.Duration {
	r.t.Helper()
	began := time.Now()
	var ls map[int]int
	var err error
	for time.Since(began) < 60*time.Second {
		if ls, err = r.metadataLeaders(addr); err == nil && len(ls) == faultPartitions && ok(ls) {
			return time.Since(began)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("partition leaders not as wanted within 60s: %v (%v)", ls, err)
	return 0
}

// memoryWatch samples a process's RSS every 100ms.
type memoryWatch struct {
	p    *Process
	mu   sync.Mutex
	cur  int64
	peak int64
	quit chan struct{}
	done chan struct{}
}

func watchMemory(t *testing.T, p *Process) *memoryWatch {
	w := &memoryWatch{p: p, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			if m, err := ReadMemory(p.PID()); err == nil {
				w.mu.Lock()
				w.cur, w.peak = m.RSS, max(w.peak, m.RSS)
				w.mu.Unlock()
			}
			select {
			case <-w.quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-w.quit:
		default:
			close(w.quit)
		}
		<-w.done
	})
	return w
}

func (w *memoryWatch) last() int64 { w.mu.Lock(); defer w.mu.Unlock(); return w.cur }
func (w *memoryWatch) max() int64  { w.mu.Lock(); defer w.mu.Unlock(); return w.peak }

// stop ends the sampling and reads the memory (with the kernel's peak) once
// more.
func (w *memoryWatch) stop() Memory {
	close(w.quit)
	<-w.done
	m, err := ReadMemory(w.p.PID())
	if err != nil {
		w.p.t.Fatal(err)
	}
	return m
}
