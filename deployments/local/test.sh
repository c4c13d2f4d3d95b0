#!/usr/bin/env bash
# The test command of the README (`make test`, called by .ci/run): start the
# real services the tests need unless they answer, then vet, run every test
# (unit, integration against real Kafka 4.x, ClickHouse and the local
# ClickHouse cluster of clickhouse-cluster.sh with its ZooKeeper, modern DDL on
# chDB; the Python SDK's pytest suite) and a short run of every fuzz target (first, so that go test's summary ends the output). The services stay up; stop them
# with deployments/local/down.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."

eval "$("$here/up.sh")"
"$here/chdb.sh" >&2
export VIGIL_KAFKA VIGIL_CLICKHOUSE VIGIL_CLICKHOUSE_CLUSTER_ADDRS VIGIL_CLICKHOUSE_CLUSTER_NAME
export VIGIL_CHDB_EXEC="${VIGIL_CHDB_EXEC:-$here/chdb_exec.py}"

echo "== go vet"
go vet ./...

echo "== fuzz (short)"
# fuzz_once runs one target. Go's fuzzer sometimes ends a run that found
# nothing with "context deadline exceeded" when -fuzztime runs out while a
# worker is busy (golang/go: the coordinator's deadline reaches a worker
# mid-input); that run (no failing input written) is retried, up to twice,
# so that a run of two such flakes does not fail CI. A real crasher is written to
# testdata/fuzz and fails at once.
fuzz_once() {
  local out rc
  out=$(go test -run '^$' -fuzz "^${1}\$" -fuzztime "$fuzztime" -fuzzminimizetime 10x "$2" 2>&1) && rc=0 || rc=$?
  printf '%s\n' "$out"
  if ((rc != 0)) && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
    echo "-- $1: the fuzzer's deadline flake (no failing input); running it again"
    return 1
  fi
  ((rc == 0)) || exit "$rc"
}
fuzztime="${VIGIL_FUZZTIME:-10s}"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "-- $target ($pkg, $fuzztime)"
    fuzz_once "$target" "$pkg" || fuzz_once "$target" "$pkg" || fuzz_once "$target" "$pkg"
  done
done

echo "== pytest: the Python SDK (sdk/python, venv from deployments/local/python.sh)"
"$here/python.sh" test -q -p no:cacheprovider

echo "== go test (VIGIL_KAFKA=$VIGIL_KAFKA VIGIL_CLICKHOUSE=$VIGIL_CLICKHOUSE VIGIL_CLICKHOUSE_CLUSTER_ADDRS=$VIGIL_CLICKHOUSE_CLUSTER_ADDRS)"
go test -count=1 -timeout 30m ./...

echo "== go test: the Kubernetes manifests (deployments/kubernetes, a module of its own)"
(cd deployments/kubernetes && go vet ./... && go test -count=1 ./...)
