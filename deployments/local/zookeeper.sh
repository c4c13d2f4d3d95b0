#!/usr/bin/env bash
# Local standalone Apache ZooKeeper on loopback: the coordination service of
# the local ClickHouse cluster (deployments/local/clickhouse-cluster.sh keeps
# its replication queues and ON CLUSTER DDL queue there).
#
#   zookeeper.sh install   fetch the ZooKeeper jars from Maven Central (once, cached)
#   zookeeper.sh installed exit 0 if the jars are cached and java is found
#   zookeeper.sh start     install if needed, start one standalone node, wait until it answers
#   zookeeper.sh stop      stop the node this script started (pid file), wait for exit
#   zookeeper.sh status    exit 0 if a ZooKeeper serves on the client port ("srvr" reports its mode)
#   zookeeper.sh env       print: export VIGIL_ZOOKEEPER=127.0.0.1:<port>
#   zookeeper.sh cli ARGS  run org.apache.zookeeper.ZooKeeperMain against the node, e.g.
#                            zookeeper.sh cli ls /clickhouse
#
# Environment: VIGIL_ZOOKEEPER_PORT (2181), VIGIL_STATE (/tmp/vigil-state),
# VIGIL_CACHE ($HOME/.cache/vigil), VIGIL_ZOOKEEPER_HEAP (-Xms64m -Xmx256m),
# JAVA (java; ZooKeeper 3.9 needs Java 8+).
#
# Data (snapshots, transaction log) lives in $VIGIL_STATE/zookeeper/data and
# stays across restarts; the AdminServer (an HTTP port) is off; the "ruok",
# "srvr" and "mntr" four-letter words are allowed, for status checks.
set -euo pipefail

SCRIPT_NAME="zookeeper.sh"
# shellcheck source=deployments/local/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

# The one place the ZooKeeper version is pinned.
ZK_VERSION="3.9.5"
SLF4J_VERSION="2.0.17"
# Dependencies the zookeeper POM marks "provided" that the server and the CLI load.
METRICS_VERSION="4.2.40"
COMMONS_CLI_VERSION="1.5.0"
SNAPPY_VERSION="1.1.10.5"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

HOST="127.0.0.1"
PORT="${VIGIL_ZOOKEEPER_PORT:-2181}"
JAVA="${JAVA:-java}"
HEAP="${VIGIL_ZOOKEEPER_HEAP:--Xms64m -Xmx256m}"

ZK_HOME="$VIGIL_CACHE/zookeeper-$ZK_VERSION"
LIBS="$ZK_HOME/libs"
STATE="$VIGIL_STATE/zookeeper"
DATA="$STATE/data"
PIDFILE="$STATE/zookeeper.pid"
LOGFILE="$STATE/zookeeper.log"
CONF="$STATE/zoo.cfg"
MAIN_CLASS="org.apache.zookeeper.server.ZooKeeperServerMain"

install_jars() {
  if [[ -f "$ZK_HOME/.complete" ]]; then
    log "jars for ZooKeeper $ZK_VERSION cached in $LIBS"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed to fetch ZooKeeper jars from Maven Central)"
  command -v "$JAVA" >/dev/null || die "java not found"
  log "fetching ZooKeeper $ZK_VERSION jars from Maven Central into $LIBS (first run only)"
  local tmp
  tmp="$(mktemp -d)"
  cat >"$tmp/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>vigil.local</groupId>
  <artifactId>zookeeper-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- server (ZooKeeperServerMain) and client (ZooKeeperMain); no TLS here,
         so netty's native boringssl builds (5 platform jars) are left out -->
    <dependency>
      <groupId>org.apache.zookeeper</groupId><artifactId>zookeeper</artifactId><version>$ZK_VERSION</version>
      <exclusions>
        <exclusion><groupId>io.netty</groupId><artifactId>netty-tcnative-boringssl-static</artifactId></exclusion>
      </exclusions>
    </dependency>
    <!-- "provided" in ZooKeeper's POM, but the server loads them: the default
         metrics provider needs metrics-core, snapshot loading snappy-java
         (even for uncompressed snapshots); the CLI's commands parse with commons-cli -->
    <dependency>
      <groupId>io.dropwizard.metrics</groupId><artifactId>metrics-core</artifactId><version>$METRICS_VERSION</version>
    </dependency>
    <dependency>
      <groupId>commons-cli</groupId><artifactId>commons-cli</artifactId><version>$COMMONS_CLI_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.xerial.snappy</groupId><artifactId>snappy-java</artifactId><version>$SNAPPY_VERSION</version>
    </dependency>
    <!-- ZooKeeper logs through slf4j; its logback binding is a "provided"
         dependency, so bring a simple one (to stderr, configured below) -->
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>$SLF4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  rm -rf "$LIBS.partial"
  mkdir -p "$ZK_HOME"
  if ! mvn -q -B -ntp -f "$tmp/pom.xml" "$DEP_PLUGIN:copy-dependencies" \
      -DoutputDirectory="$LIBS.partial" -DincludeScope=runtime </dev/null >"$tmp/mvn.log" 2>&1; then
    tail -n 40 "$tmp/mvn.log" >&2
    rm -rf "$tmp" "$LIBS.partial"
    die "mvn could not fetch ZooKeeper $ZK_VERSION"
  fi
  rm -rf "$tmp"
  rm -rf "$LIBS"
  mv "$LIBS.partial" "$LIBS"
  touch "$ZK_HOME/.complete"
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1))"
}

write_config() {
  mkdir -p "$STATE" "$DATA"
  cat >"$CONF" <<CFG
# Generated by deployments/local/zookeeper.sh; rewritten on every start.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$DATA
clientPort=$PORT
clientPortAddress=$HOST
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr,stat
# Old snapshots and logs are purged hourly, keeping 3.
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
CFG
}

# four_letter WORD: the answer of a four-letter-word command ("" if none).
four_letter() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"; printf %s "$3" >&3; cat <&3' _ "$HOST" "$PORT" "$1" 2>/dev/null || true
}

# answers: "srvr" reports a mode (standalone). Not "ruok": a node answers
# "imok" while its server has not started (or failed to load its data).
answers() { [[ "$(four_letter srvr)" == *"Mode: "* ]]; }

start() {
  if answers; then
    log "a ZooKeeper already answers on $HOST:$PORT; nothing to do"
    return 0
  fi
  if tcp_open "$HOST" "$PORT" && ! pid_alive "$PIDFILE" "$MAIN_CLASS" >/dev/null; then
    die "something listens on $HOST:$PORT but does not answer as ZooKeeper"
  fi
  install_jars
  local pid t0 i
  t0=$SECONDS
  if pid="$(pid_alive "$PIDFILE" "$MAIN_CLASS")"; then
    log "ZooKeeper pid $pid is already running (still starting?); waiting for it"
  else
    command -v "$JAVA" >/dev/null || die "java not found"
    write_config
    log "starting ZooKeeper $ZK_VERSION (standalone) on $HOST:$PORT; data: $DATA; log: $LOGFILE"
    # setsid: own session, so the node survives the calling shell (as kafka.sh).
    # shellcheck disable=SC2086
    nohup setsid "$JAVA" $HEAP -XX:+UseSerialGC -Djava.awt.headless=true \
      -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
      -Dorg.slf4j.simpleLogger.showDateTime=true \
      -Dzookeeper.admin.enableServer=false \
      -cp "$LIBS/*" "$MAIN_CLASS" "$CONF" >"$LOGFILE" 2>&1 </dev/null &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
  fi
  for ((i = 0; i < 120; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      die "ZooKeeper exited during startup (see $LOGFILE)"
    fi
    if answers; then
      log "ZooKeeper answers on $HOST:$PORT (pid $pid, ready after $((SECONDS - t0))s)"
      return 0
    fi
    sleep 0.5
  done
  tail -n 30 "$LOGFILE" >&2 || true
  die "ZooKeeper did not answer on $HOST:$PORT within 60s (pid $pid still running; see $LOGFILE)"
}

status() {
  if answers; then
    local pid note="not started by zookeeper.sh"
    pid="$(pid_alive "$PIDFILE" "$MAIN_CLASS")" && note="pid $pid, started by zookeeper.sh"
    log "ZooKeeper answers on $HOST:$PORT ($note; $(four_letter srvr | grep -m1 '^Mode:' || echo 'mode unknown'))"
    return 0
  fi
  log "no ZooKeeper answers on $HOST:$PORT"
  return 1
}

case "${1:-}" in
  install) install_jars ;;
  installed) [[ -f "$ZK_HOME/.complete" ]] && command -v "$JAVA" >/dev/null ;;
  start) start ;;
  stop) stop_pid "$PIDFILE" "ZooKeeper" 30 "$MAIN_CLASS" ;;
  status) status ;;
  env) printf 'export VIGIL_ZOOKEEPER=%s:%s\n' "$HOST" "$PORT" ;;
  cli)
    shift
    [[ -f "$ZK_HOME/.complete" ]] || die "ZooKeeper jars are not installed; run: $0 install"
    "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
      -cp "$LIBS/*" org.apache.zookeeper.ZooKeeperMain -server "$HOST:$PORT" "$@"
    ;;
  *)
    echo "usage: $0 install|installed|start|stop|status|env|cli [ARGS...]" >&2
    exit 2
    ;;
esac
