#!/usr/bin/env bash
# Start the local stack (ClickHouse + Kafka, in parallel, and the local
# ClickHouse cluster: ZooKeeper, then the two nodes of clickhouse-cluster.sh,
# after the single-node ClickHouse, which installs the package) and print the
# env lines:
#   eval "$(deployments/local/up.sh)"
# Services that were already answering are left alone. The services that THIS
# script started are recorded in $VIGIL_STATE/up.started, so that down.sh stops
# only those. Log lines go to stderr; only the export lines go to stdout.
set -euo pipefail

SCRIPT_NAME="up.sh"
# shellcheck source=deployments/local/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

SERVICES=(clickhouse kafka zookeeper clickhouse-cluster)
# Chains run in parallel; the services of one chain start in order (the
# cluster needs ZooKeeper, and the package that clickhouse.sh installs).
CHAINS=("clickhouse zookeeper clickhouse-cluster" "kafka")
STARTED_FILE="$VIGIL_STATE/up.started"
mkdir -p "$VIGIL_STATE"

record_started() {
  touch "$STARTED_FILE"
  grep -qx "$1" "$STARTED_FILE" || printf '%s\n' "$1" >>"$STARTED_FILE"
}

# start_chain SVC...: start each service that does not answer, in order;
# stop at the first that fails (it is printed on stdout as "failed SVC").
start_chain() {
  local svc
  for svc in "$@"; do
    if "$VIGIL_LOCAL_DIR/$svc.sh" status >/dev/null 2>&1; then
      log "$svc already answers; leaving it alone"
      continue
    fi
    log "starting $svc"
    if "$VIGIL_LOCAL_DIR/$svc.sh" start >&2; then
      record_started "$svc"
    else
      printf 'failed %s\n' "$svc"
      return 1
    fi
  done
}

t0=$SECONDS
pids=()
results="$(mktemp)"
for chain in "${CHAINS[@]}"; do
  # shellcheck disable=SC2086
  start_chain $chain >>"$results" &
  pids+=($!)
done
for pid in "${pids[@]}"; do
  wait "$pid" || true
done
failed="$(sed -n 's/^failed //p' "$results" | tr '\n' ' ')"
rm -f "$results"
if [[ -n "$failed" ]]; then
  die "failed to start: $failed(run down.sh to stop what did start)"
fi

log "stack is up ($((SECONDS - t0))s); started by up.sh so far: $(cat "$STARTED_FILE" 2>/dev/null | tr '\n' ' ')"
for svc in "${SERVICES[@]}"; do
  "$VIGIL_LOCAL_DIR/$svc.sh" env
done
