#!/usr/bin/env bash
# Stop the services that up.sh started (listed in $VIGIL_STATE/up.started);
# services that were already running before up.sh are left alone.
set -euo pipefail

SCRIPT_NAME="down.sh"
# shellcheck source=deployments/local/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

STARTED_FILE="$VIGIL_STATE/up.started"
if [[ ! -s "$STARTED_FILE" ]]; then
  log "nothing recorded in $STARTED_FILE; nothing to stop"
  exit 0
fi

rc=0
# Stop in reverse start order (Kafka first; it does not depend on ClickHouse,
# but a stream processor under test might).
mapfile -t started < <(tac "$STARTED_FILE")
for svc in "${started[@]}"; do
  [[ -n "$svc" ]] || continue
  if [[ ! -x "$VIGIL_LOCAL_DIR/$svc.sh" ]]; then
    log "unknown service '$svc' in $STARTED_FILE; skipping"
    continue
  fi
  "$VIGIL_LOCAL_DIR/$svc.sh" stop || rc=1
done
if ((rc == 0)); then
  rm -f "$STARTED_FILE"
  log "done"
else
  log "some services failed to stop; kept $STARTED_FILE"
fi
exit "$rc"
