#!/usr/bin/env bash
# Local ClickHouse server from Debian's packages (bookworm ships 18.16.1), on loopback.
#
#   clickhouse.sh install   apt-get install clickhouse-server clickhouse-client if missing
#   clickhouse.sh start     install if needed, start without systemd, wait until it answers
#   clickhouse.sh stop      stop the server this script started (pid file), wait for exit
#   clickhouse.sh status    exit 0 if `SELECT version()` answers on 127.0.0.1:9000
#   clickhouse.sh env       print: export VIGIL_CLICKHOUSE=127.0.0.1:9000
#
# Uses the stock /etc/clickhouse-server/config.xml: native port 9000, HTTP 8123,
# interserver 9009; with no <listen_host> set, 18.16 listens on 127.0.0.1 and
# ::1 only. Data lives in /var/lib/clickhouse, server logs in
# /var/log/clickhouse-server. Must run as root (apt-get, setpriv); the server
# itself runs as the package's `clickhouse` user, as the systemd unit would.
set -euo pipefail

SCRIPT_NAME="clickhouse.sh"
# shellcheck source=deployments/local/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

HOST="127.0.0.1"
PORT=9000
HTTP_PORT=8123
CONFIG="/etc/clickhouse-server/config.xml"
CH_USER="clickhouse"
STATE="$VIGIL_STATE/clickhouse"
PIDFILE="$STATE/clickhouse.pid"
LOGFILE="$STATE/clickhouse-stdout.log"

apt_update() {
  log "apt-get update ($1)"
  apt-get update -q </dev/null >"$STATE/apt-update.log" 2>&1 \
    || { tail -n 20 "$STATE/apt-update.log" >&2; die "apt-get update failed"; }
}

apt_install() {
  apt-get install -y -q --no-install-recommends clickhouse-server clickhouse-client \
    </dev/null >"$STATE/apt-install.log" 2>&1
}

install_pkgs() {
  if command -v clickhouse-server >/dev/null && command -v clickhouse-client >/dev/null; then
    log "clickhouse-server and clickhouse-client are installed"
    return 0
  fi
  [[ $EUID -eq 0 ]] || die "installing ClickHouse needs root (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # Refresh package lists only when needed: apt does not know the package yet,
  # or an install from stale lists failed (e.g. 404 for a superseded .deb).
  # (Captured first: `apt-cache ... | grep -q` could die of SIGPIPE under pipefail.)
  local policy updated=0
  mkdir -p "$STATE"
  policy="$(apt-cache policy clickhouse-server 2>/dev/null || true)"
  if [[ "$policy" != *"Candidate: "[0-9]* ]]; then
    apt_update "package lists do not know clickhouse-server yet"
    updated=1
  fi
  log "apt-get install clickhouse-server clickhouse-client"
  if ! apt_install; then
    if ((updated)); then
      tail -n 30 "$STATE/apt-install.log" >&2
      die "apt-get install clickhouse-server clickhouse-client failed"
    fi
    apt_update "install from the current package lists failed"
    apt_install || { tail -n 30 "$STATE/apt-install.log" >&2; die "apt-get install clickhouse-server clickhouse-client failed"; }
  fi
  log "installed: $(dpkg-query -W -f='${Version}' clickhouse-server)"
}

answers() {
  timeout 5 clickhouse-client --host "$HOST" --port "$PORT" --query 'SELECT version()' 2>/dev/null
}

prepare_dirs() {
  # The package creates these owned by `clickhouse`; if a server was ever run
  # as root, files in them are root-owned and the clickhouse user cannot open
  # them, so make ownership right every time (cheap: the tree is small).
  id "$CH_USER" >/dev/null 2>&1 || die "user $CH_USER does not exist (package postinst did not run?)"
  mkdir -p /var/lib/clickhouse /var/log/clickhouse-server "$STATE"
  chown -R "$CH_USER:$CH_USER" /var/lib/clickhouse /var/log/clickhouse-server
}

start() {
  local v
  if v="$(answers)"; then
    log "ClickHouse $v already answers on $HOST:$PORT; nothing to do"
    return 0
  fi
  install_pkgs
  command -v clickhouse-client >/dev/null || die "clickhouse-client missing"
  local pid t0 i
  t0=$SECONDS
  if pid="$(pid_alive "$PIDFILE" clickhouse-server)"; then
    log "server pid $pid is already running (still starting?); waiting for it"
  else
    [[ $EUID -eq 0 ]] || die "starting ClickHouse needs root (it drops to user $CH_USER)"
    if tcp_open "$HOST" "$PORT"; then
      die "something listens on $HOST:$PORT but does not answer as ClickHouse"
    fi
    prepare_dirs
    log "starting clickhouse-server ($CONFIG) as user $CH_USER on $HOST:$PORT (http $HTTP_PORT); logs: /var/log/clickhouse-server, $LOGFILE"
    # Not --daemon: run in the foreground of its own session (setsid) so the
    # recorded pid is the server itself; setpriv execs, keeping that pid.
    # The working directory matters: 18.16 writes nothing there, but use / to
    # never pin a caller's directory.
    (cd / && exec nohup setsid setpriv --reuid="$CH_USER" --regid="$CH_USER" --init-groups \
      clickhouse-server --config-file="$CONFIG") >"$LOGFILE" 2>&1 </dev/null &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
  fi
  for ((i = 0; i < 120; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$LOGFILE" >&2 || true
      tail -n 20 /var/log/clickhouse-server/clickhouse-server.err.log >&2 2>/dev/null || true
      rm -f "$PIDFILE"
      die "clickhouse-server exited during startup"
    fi
    if v="$(answers)"; then
      log "ClickHouse $v answers on $HOST:$PORT (pid $pid, ready after $((SECONDS - t0))s)"
      return 0
    fi
    sleep 0.5
  done
  tail -n 20 /var/log/clickhouse-server/clickhouse-server.err.log >&2 2>/dev/null || true
  die "ClickHouse did not answer on $HOST:$PORT within 60s (pid $pid still running)"
}

status() {
  local v pid note="not started by clickhouse.sh"
  if v="$(answers)"; then
    pid="$(pid_alive "$PIDFILE" clickhouse-server)" && note="pid $pid, started by clickhouse.sh"
    log "ClickHouse $v answers on $HOST:$PORT ($note)"
    return 0
  fi
  log "no ClickHouse answers on $HOST:$PORT"
  return 1
}

case "${1:-}" in
  install) install_pkgs ;;
  start) start ;;
  stop) stop_pid "$PIDFILE" "clickhouse-server" 60 clickhouse-server ;;
  status) status ;;
  env) printf 'export VIGIL_CLICKHOUSE=%s:%s\n' "$HOST" "$PORT" ;;
  *)
    echo "usage: $0 install|start|stop|status|env" >&2
    exit 2
    ;;
esac
