# shellcheck shell=bash
# Shared helpers for deployments/local/*.sh. Sourced, not executed.
# Every script logs as "<script>: message" so interleaved output (up.sh runs
# services in parallel) stays readable.

VIGIL_LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VIGIL_STATE="${VIGIL_STATE:-/tmp/vigil-state}"
VIGIL_CACHE="${VIGIL_CACHE:-$HOME/.cache/vigil}"
export VIGIL_STATE VIGIL_CACHE

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# tcp_open HOST PORT: true if something accepts a TCP connection.
tcp_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# pid_alive PIDFILE [CMDLINE_SUBSTRING]: prints the pid and succeeds if the
# recorded process lives (and, if given, its command line contains the
# substring, so a recycled pid is never mistaken for our service).
pid_alive() {
  local f="$1" want="${2:-}" pid cmd
  [[ -s "$f" ]] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -n "$want" ]]; then
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmd" == *"$want"* ]] || return 1
  fi
  printf '%s\n' "$pid"
}

# stop_pid PIDFILE NAME TIMEOUT_S CMDLINE_SUBSTRING: SIGTERM the recorded
# process, wait for it to exit (SIGKILL after the timeout), remove the pid file.
stop_pid() {
  local f="$1" name="$2" limit="${3:-60}" want="${4:-}" pid i
  if ! pid="$(pid_alive "$f" "$want")"; then
    log "$name: no running process recorded in $f (not started by this script); nothing to stop"
    rm -f "$f"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 2; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not exit after ${limit}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
  fi
  rm -f "$f"
  log "$name stopped"
}
