// Package testenv finds the real services integration tests run against.
//
// Tests find Kafka and ClickHouse through VIGIL_KAFKA and VIGIL_CLICKHOUSE,
// and the local ClickHouse cluster through VIGIL_CLICKHOUSE_CLUSTER_ADDRS
// (`make test` and .ci/run start them and set these). Outside CI a test whose
// service is not configured is skipped with a message saying how to run it;
// in CI (CI=true) it fails instead, so that CI cannot pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Kafka returns the broker address from VIGIL_KAFKA.
func Kafka(t testing.TB) string { return require(t, "VIGIL_KAFKA", "deployments/local/kafka.sh") }

// ClickHouse returns the native-protocol address from VIGIL_CLICKHOUSE.
func ClickHouse(t testing.TB) string {
	return require(t, "VIGIL_CLICKHOUSE", "deployments/local/clickhouse.sh")
}

// ClickHouseCluster returns the native-protocol addresses of the nodes of the
// local ClickHouse cluster (VIGIL_CLICKHOUSE_CLUSTER_ADDRS, comma-separated,
// one node per shard: deployments/local/clickhouse-cluster.sh) and the
// cluster's name (VIGIL_CLICKHOUSE_CLUSTER_NAME, default vigil_local).
func ClickHouseCluster(t testing.TB) (addrs []string, name string) {
	t.Helper()
	for _, a := range strings.Split(require(t, "VIGIL_CLICKHOUSE_CLUSTER_ADDRS", "deployments/local/clickhouse-cluster.sh"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	name = os.Getenv("VIGIL_CLICKHOUSE_CLUSTER_NAME")
	if name == "" {
		name = "vigil_local"
	}
	return addrs, name
}

func require(t testing.TB, env, script string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	msg := env + " is not set: start the service with `" + script + " start` and `eval $(" + script + " env)`, or run `make test`"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// BuildVigil builds cmd/vigil once per test binary and returns its path.
func BuildVigil(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "vigil-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "vigil")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/vigil")
		cmd.Dir = root
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build vigil: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

// MLServerPython returns the python of the virtualenv that
// deployments/local/mlserver.sh installs MLServer into (its bin/ holds the
// mlserver command). Outside CI a test is skipped when it is not installed;
// in CI it fails.
func MLServerPython(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "deployments", "local", "mlserver.sh")
	out, err := exec.Command(script, "python").Output()
	if err == nil {
		if py := strings.TrimSpace(string(out)); py != "" {
			return py
		}
	}
	msg := "MLServer is not installed: run `deployments/local/mlserver.sh install` (a virtualenv under ~/.cache/vigil)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
