#!/usr/bin/env bash
# The main job of the README (`make demo`): start Kafka and ClickHouse unless
# they already answer, build bin/vigil (as `make build` does, so that the
# README's bin/vigil commands work after it), run `bin/vigil demo` (processor
# + simulated model service + the per-window table from ClickHouse), then
# stop what this script started.
# Ctrl-C stops everything it started, cleanly.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

started=()
for svc in clickhouse kafka; do
  "$here/$svc.sh" status >/dev/null 2>&1 || started+=("$svc")
done
cleanup() {
  local rc=$?
  for svc in "${started[@]}"; do
    "$here/$svc.sh" stop || true
  done
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eval "$("$here/up.sh")"
(cd "$root" && go build -o bin/vigil ./cmd/vigil)
"$root/bin/vigil" demo --log-format console "$@"
