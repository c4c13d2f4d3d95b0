// Package faulttest starts private Kafka brokers and ClickHouse servers that
// a test may stop, kill and restart, and runs processes (the vigil binary)
// it can SIGKILL; its tests are Vigil's fault-injection tests
// (faults_test.go).
//
// The shared services (VIGIL_KAFKA, VIGIL_CLICKHOUSE) serve every other test,
// concurrently: a test must never stop them. An instance of this package runs
// from deployments/local/kafka.sh or clickhouse.sh on free loopback ports,
// with its state in a directory of its own; t.Cleanup kills it and removes
// the directory. Outside CI a test is skipped when java and the Kafka jars, or
// clickhouse-server, are missing; in CI (CI=true) it fails instead, like
// internal/testenv.
//
// The methods call t.Fatal: call them from the test's goroutine.
package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// scripts is deployments/local, found from this file.
func scripts() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deployments", "local")
}

// need skips the test (fails it in CI) when ok is false.
func need(t testing.TB, ok bool, msg string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// stateDir makes a directory for one instance's state, removed by t.Cleanup
// (registered first, so it runs after the instance is killed). It is
// world-traversable: a private ClickHouse run by root drops to user
// clickhouse, who must reach its data directory.
func stateDir(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vigil-faulttest-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// freePorts returns n loopback TCP ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// instance is one service run by a deployments/local script.
type instance struct {
	t       testing.TB
	name    string // for messages: "kafka node 2"
	script  string
	env     []string
	pidFile string
}

// run runs the script with a command (start, stop) and returns its output.
func (in *instance) run(cmd string) (string, error) {
	c := exec.Command(filepath.Join(scripts(), in.script), cmd)
	c.Env = append(os.Environ(), in.env...)
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", in.script, cmd, err, out)
	}
	return string(out), nil
}

func (in *instance) must(cmd string) {
	in.t.Helper()
	began := time.Now()
	if _, err := in.run(cmd); err != nil {
		in.t.Fatalf("%s: %v", in.name, err)
	}
	in.t.Logf("%s: %s took %v", in.name, cmd, time.Since(began).Round(time.Millisecond))
}

// Start starts the instance (again), on the same ports and storage, and
// returns once it answers.
func (in *instance) Start() { in.t.Helper(); in.must("start") }

// Stop stops the instance gracefully (SIGTERM) and waits for it to exit.
func (in *instance) Stop() { in.t.Helper(); in.must("stop") }

// PID returns the process id of the running instance, 0 if none runs.
func (in *instance) PID() int {
	data, err := os.ReadFile(in.pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// Kill sends SIGKILL to the instance and waits until it is gone.
func (in *instance) Kill() {
	in.t.Helper()
	if err := in.kill(); err != nil {
		in.t.Fatalf("%s: %v", in.name, err)
	}
	in.t.Logf("%s: killed (SIGKILL)", in.name)
}

func (in *instance) kill() error {
	pid := in.PID()
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill pid %d: %w", pid, err)
	}
	// Not our child (the script started it in its own session): poll.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if gone(pid) {
			_ = os.Remove(in.pidFile)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("pid %d still alive 30s after SIGKILL", pid)
}

// gone reports whether pid exited (a zombie counts as gone: its parent, the
// script's subshell, is gone too and init reaps it).
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(data, ')')
	return i >= 0 && i+2 < len(data) && data[i+2] == 'Z'
}

// Kafka is one private Kafka node (KRaft).
type Kafka struct {
	instance
	NodeID int
	Port   int
}

// Addr returns the broker's client address.
func (k *Kafka) Addr() string { return "127.0.0.1:" + strconv.Itoa(k.Port) }

func needKafka(t testing.TB) {
	t.Helper()
	c := exec.Command(filepath.Join(scripts(), "kafka.sh"), "installed")
	need(t, c.Run() == nil, "java or the Kafka jars are missing: run deployments/local/kafka.sh install")
}

// kafkaHeap is the private brokers' JVM heap (a test's topics are small),
// and C1 only: it starts faster, and a test broker is not long-lived.
const kafkaHeap = "-Xms128m -Xmx256m -XX:TieredStopAtLevel=1"

// StartKafka starts a private single-node Kafka (broker and controller).
func StartKafka(t testing.TB) *Kafka {
	t.Helper()
	return StartKafkaCluster(t, 1)[0]
}

// StartKafkaCluster starts n private Kafka nodes as one cluster: node 1 is
// broker and the only controller, nodes 2..n are brokers only, so any of them
// can be killed while the cluster keeps a controller. New topics (and the
// group offsets) get n replicas, min.insync.replicas 1; a killed broker is
// declared dead after 3s. The nodes start in parallel.
func StartKafkaCluster(t testing.TB, n int) []*Kafka {
	t.Helper()
	needKafka(t)
	ports := freePorts(t, 2*n)
	// A cluster id is 16 random bytes, URL-safe base64 without padding.
	clusterID := base64.RawURLEncoding.EncodeToString([]byte(rand.Text())[:16])
	voters := "1@127.0.0.1:" + strconv.Itoa(ports[1])
	nodes := make([]*Kafka, n)
	for i := range nodes {
		state := stateDir(t, "kafka"+strconv.Itoa(i+1))
		roles := "broker"
		if i == 0 {
			roles = "broker,controller"
		}
		k := &Kafka{NodeID: i + 1, Port: ports[2*i]}
		k.instance = instance{
			t: t, name: fmt.Sprintf("kafka node %d (%s)", k.NodeID, k.Addr()), script: "kafka.sh",
			pidFile: filepath.Join(state, "kafka", "kafka.pid"),
			env: []string{
				"VIGIL_STATE=" + state,
				"VIGIL_KAFKA_PORT=" + strconv.Itoa(ports[2*i]),
				"VIGIL_KAFKA_CONTROLLER_PORT=" + strconv.Itoa(ports[2*i+1]),
				"VIGIL_KAFKA_NODE_ID=" + strconv.Itoa(k.NodeID),
				"VIGIL_KAFKA_ROLES=" + roles,
				"VIGIL_KAFKA_VOTERS=" + voters,
				"VIGIL_KAFKA_CLUSTER_ID=" + clusterID,
				"VIGIL_KAFKA_REPLICATION=" + strconv.Itoa(n),
				"VIGIL_KAFKA_HEAP=" + kafkaHeap,
				"VIGIL_KAFKA_PROPS=broker.session.timeout.ms=3000\nbroker.heartbeat.interval.ms=500",
			},
		}
		nodes[i] = k
		t.Cleanup(func() { _ = k.kill() })
	}
	began := time.Now()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, k := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = k.run("start")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", nodes[i].name, err)
		}
	}
	t.Logf("kafka: %d private node(s) %v up after %v", n, Addrs(nodes), time.Since(began).Round(time.Millisecond))
	return nodes
}

// Addrs returns the client addresses of nodes.
func Addrs(nodes []*Kafka) []string {
	var out []string
	for _, k := range nodes {
		out = append(out, k.Addr())
	}
	return out
}

// ClickHouse is one private clickhouse-server.
type ClickHouse struct {
	instance
	Port int // native protocol
}

// Addr returns the native-protocol address.
func (c *ClickHouse) Addr() string { return "127.0.0.1:" + strconv.Itoa(c.Port) }

// StartClickHouse starts a private clickhouse-server (the installed one, a
// generated config: see deployments/local/clickhouse.sh).
func StartClickHouse(t testing.TB) *ClickHouse {
	t.Helper()
	_, err := exec.LookPath("clickhouse-server")
	need(t, err == nil, "clickhouse-server is missing: run deployments/local/clickhouse.sh install")
	ports := freePorts(t, 2)
	state := stateDir(t, "clickhouse")
	c := &ClickHouse{Port: ports[0]}
	c.instance = instance{
		t: t, name: "clickhouse " + c.Addr(), script: "clickhouse.sh",
		pidFile: filepath.Join(state, "clickhouse", "clickhouse.pid"),
		env: []string{
			"VIGIL_STATE=" + state,
			"VIGIL_CLICKHOUSE_PORT=" + strconv.Itoa(ports[0]),
			"VIGIL_CLICKHOUSE_HTTP_PORT=" + strconv.Itoa(ports[1]),
		},
	}
	t.Cleanup(func() { _ = c.kill() })
	c.Start()
	return c
}

// Process is one run of a program whose output goes to a log file.
type Process struct {
	t   testing.TB
	Log string // path of the output file
	cmd *exec.Cmd

	mu   sync.Mutex
	done chan struct{}
	err  error
}

// StartProcess starts bin with args and the environment plus env; its stdout
// and stderr go to logPath. t.Cleanup kills it if it still runs.
func StartProcess(t testing.TB, logPath, bin string, args, env []string) *Process {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &Process{t: t, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM and waits up to timeout for the exit; it fails the test
// if the process exits with an error or does not exit in time (then it is
// killed).
func (p *Process) Stop(timeout time.Duration) {
	p.t.Helper()
	began := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
		p.t.Fatalf("pid %d did not exit within %v of SIGTERM (log %s)", p.PID(), timeout, p.Log)
	}
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if err != nil {
		p.t.Errorf("pid %d exited with %v (log %s)", p.PID(), err, p.Log)
	}
	p.t.Logf("pid %d stopped (SIGTERM) in %v", p.PID(), time.Since(began).Round(time.Millisecond))
}

// CountLog returns how many lines of the log contain s.
func (p *Process) CountLog(s string) int {
	f, err := os.Open(p.Log)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			n++
		}
	}
	return n
}

// WaitLog waits until the log contains s at least n times; false if ctx ends
// or the process exits first.
func (p *Process) WaitLog(ctx context.Context, s string, n int) bool {
	for {
		if p.CountLog(s) >= n {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-p.done:
			return p.CountLog(s) >= n
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Memory is a process's resident set size now and at its peak, in bytes
// (VmRSS and VmHWM of /proc/<pid>/status).
type Memory struct{ RSS, Peak int64 }

// ReadMemory reads the memory of a running process.
func ReadMemory(pid int) (Memory, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	var m Memory
	for _, line := range strings.Split(string(data), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val) // "12345 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return Memory{}, fmt.Errorf("read memory of pid %d: unexpected %q", pid, line)
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("read memory of pid %d: %q: %w", pid, line, err)
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.Peak = kb << 10
		}
	}
	return m, nil
}
