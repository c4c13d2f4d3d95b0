#!/usr/bin/env bash
# Start the local stack (ClickHouse + Kafka, in parallel) and print the env lines:
#   eval "$(deployments/local/up.sh)"
# Services that were already answering are left alone. The services that THIS
# script started are recorded in $VIGIL_STATE/up.started, so that down.sh stops
# only those. Log lines go to stderr; only the export lines go to stdout.
set -euo pipefail

SCRIPT_NAME="up.sh"
# shellcheck source=deployments/local/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

SERVICES=(clickhouse kafka)
STARTED_FILE="$VIGIL_STATE/up.started"
mkdir -p "$VIGIL_STATE"

record_started() {
  touch "$STARTED_FILE"
  grep -qx "$1" "$STARTED_FILE" || printf '%s\n' "$1" >>"$STARTED_FILE"
}

t0=$SECONDS
declare -A pids=()
for svc in "${SERVICES[@]}"; do
  if "$VIGIL_LOCAL_DIR/$svc.sh" status >/dev/null 2>&1; then
    log "$svc already answers; leaving it alone"
    continue
  fi
  log "starting $svc"
  "$VIGIL_LOCAL_DIR/$svc.sh" start &
  pids[$svc]=$!
done

failed=()
for svc in "${SERVICES[@]}"; do
  [[ -n "${pids[$svc]:-}" ]] || continue
  if wait "${pids[$svc]}"; then
    record_started "$svc"
  else
    failed+=("$svc")
  fi
done
if ((${#failed[@]})); then
  die "failed to start: ${failed[*]} (run down.sh to stop what did start)"
fi

log "stack is up ($((SECONDS - t0))s); started by up.sh so far: $(cat "$STARTED_FILE" 2>/dev/null | tr '\n' ' ')"
for svc in "${SERVICES[@]}"; do
  "$VIGIL_LOCAL_DIR/$svc.sh" env
done
