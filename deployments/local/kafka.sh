#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) on loopback.
#
#   kafka.sh install   fetch the Kafka jars from Maven Central (once, cached)
#   kafka.sh installed exit 0 if the jars are cached and java is found
#   kafka.sh start     install if needed, format storage once, start, wait until it answers
#   kafka.sh stop      stop the broker this script started (pid file), wait for exit
#   kafka.sh status    exit 0 if a broker answers on the client port
#   kafka.sh env       print: export VIGIL_KAFKA=127.0.0.1:<port>
#   kafka.sh cli CLASS [ARGS...]
#                      run a Kafka CLI tool from the cached jars, e.g.
#                        kafka.sh cli org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
#                        kafka.sh cli org.apache.kafka.tools.ConsoleProducer --bootstrap-server 127.0.0.1:9092 --topic t
#                        kafka.sh cli org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server 127.0.0.1:9092 --topic t --from-beginning
#
# Environment: VIGIL_KAFKA_PORT (9092), VIGIL_KAFKA_CONTROLLER_PORT (9093),
# VIGIL_STATE (/tmp/vigil-state), VIGIL_CACHE ($HOME/.cache/vigil),
# VIGIL_KAFKA_HEAP (-Xms256m -Xmx512m), JAVA (java; needs Java 17+).
#
# A cluster of several nodes (tests that kill a partition's leader broker),
# each node with its own VIGIL_STATE and ports:
#   VIGIL_KAFKA_NODE_ID      node.id (1)
#   VIGIL_KAFKA_ROLES        process.roles (broker,controller); a "broker"
#                            node has no controller listener
#   VIGIL_KAFKA_VOTERS       controller.quorum.voters (<node id>@127.0.0.1:<controller port>)
#   VIGIL_KAFKA_CLUSTER_ID   the cluster id every node is formatted with (random)
#   VIGIL_KAFKA_REPLICATION  replication factor of new topics and of the
#                            internal ones (1)
#   VIGIL_KAFKA_PROPS        extra server.properties lines, appended as they are
set -euo pipefail

SCRIPT_NAME="kafka.sh"
# shellcheck source=deployments/local/_common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_common.sh"

# The one place the Kafka version is pinned.
KAFKA_VERSION="4.1.1"
SLF4J_VERSION="2.0.17"
LOG4J_VERSION="2.24.3"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

HOST="127.0.0.1"
PORT="${VIGIL_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${VIGIL_KAFKA_CONTROLLER_PORT:-9093}"
JAVA="${JAVA:-java}"
HEAP="${VIGIL_KAFKA_HEAP:--Xms256m -Xmx512m}"
NODE_ID="${VIGIL_KAFKA_NODE_ID:-1}"
ROLES="${VIGIL_KAFKA_ROLES:-broker,controller}"
VOTERS="${VIGIL_KAFKA_VOTERS:-$NODE_ID@$HOST:$CONTROLLER_PORT}"
REPLICATION="${VIGIL_KAFKA_REPLICATION:-1}"

KAFKA_HOME="$VIGIL_CACHE/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
STATE="$VIGIL_STATE/kafka"
DATA="$STATE/data"
PIDFILE="$STATE/kafka.pid"
LOGFILE="$STATE/kafka.log"
PROPS="$STATE/server.properties"

install_jars() {
  if [[ -f "$KAFKA_HOME/.complete" ]]; then
    log "jars for Kafka $KAFKA_VERSION cached in $LIBS"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed to fetch Kafka jars from Maven Central)"
  command -v "$JAVA" >/dev/null || die "java not found"
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS (first run only)"
  local tmp
  tmp="$(mktemp -d)"
  cat >"$tmp/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>vigil.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- broker (kafka.Kafka) and kafka.tools.StorageTool -->
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version>
    </dependency>
    <!-- CLI tools (TopicCommand, ConsoleProducer, ConsoleConsumer); Connect is not needed -->
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
      </exclusions>
    </dependency>
    <!-- Kafka 4.x logs through slf4j -> log4j2; the Maven artifacts ship no binding -->
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  rm -rf "$LIBS.partial"
  mkdir -p "$KAFKA_HOME"
  if ! mvn -q -B -ntp -f "$tmp/pom.xml" "$DEP_PLUGIN:copy-dependencies" \
      -DoutputDirectory="$LIBS.partial" -DincludeScope=runtime </dev/null >"$tmp/mvn.log" 2>&1; then
    tail -n 40 "$tmp/mvn.log" >&2
    rm -rf "$tmp" "$LIBS.partial"
    die "mvn could not fetch Kafka $KAFKA_VERSION"
  fi
  rm -rf "$tmp"
  rm -rf "$LIBS"
  mv "$LIBS.partial" "$LIBS"
  touch "$KAFKA_HOME/.complete"
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1))"
}

write_configs() {
  mkdir -p "$STATE" "$DATA"
  local listeners="PLAINTEXT://$HOST:$PORT"
  [[ "$ROLES" != *controller* ]] || listeners+=",CONTROLLER://$HOST:$CONTROLLER_PORT"
  cat >"$PROPS" <<PROPS
# Generated by deployments/local/kafka.sh; rewritten on every start.
node.id=$NODE_ID
process.roles=$ROLES
listeners=$listeners
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.voters=$VOTERS
log.dirs=$DATA
num.partitions=4
default.replication.factor=$REPLICATION
offsets.topic.replication.factor=$REPLICATION
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$REPLICATION
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=$REPLICATION
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
PROPS
  if [[ -n "${VIGIL_KAFKA_PROPS:-}" ]]; then
    printf '%s\n' "$VIGIL_KAFKA_PROPS" >>"$PROPS"
  fi
  # Broker log: INFO for Kafka itself, to stdout (redirected to $LOGFILE).
  cat >"$STATE/log4j2.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="STDOUT" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console>
  </Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/>
    <Logger name="org.apache.kafka" level="INFO"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="STDOUT"/></Root>
  </Loggers>
</Configuration>
XML
  # CLI tools: warnings only, to stderr, so their stdout stays clean.
  cat >"$STATE/tools-log4j2.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="STDERR" target="SYSTEM_ERR"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console>
  </Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="STDERR"/></Root></Loggers>
</Configuration>
XML
}

run_tool() {
  local cls="$1"
  shift
  [[ -f "$KAFKA_HOME/.complete" ]] || die "Kafka jars are not installed; run: $0 install"
  [[ -f "$STATE/tools-log4j2.xml" ]] || write_configs
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$STATE/tools-log4j2.xml" \
    -cp "$LIBS/*" "$cls" "$@"
}

format_storage() {
  if [[ -f "$DATA/meta.properties" ]]; then
    log "storage already formatted in $DATA"
    return 0
  fi
  local cluster_id
  # A Kafka cluster id is 16 random bytes, URL-safe base64 without padding.
  cluster_id="${VIGIL_KAFKA_CLUSTER_ID:-$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')}"
  # A base64url id may start with '-', which the storage tool's argument
  # parser takes for an option (1 run in 64 failed to format): start with a letter.
  [[ "$cluster_id" != -* ]] || cluster_id="A${cluster_id:1}"
  log "formatting storage in $DATA (cluster id $cluster_id)"
  run_tool kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$PROPS" >"$STATE/format.log" 2>&1 \
    || { cat "$STATE/format.log" >&2; die "storage format failed"; }
  printf '%s\n' "$cluster_id" >"$STATE/cluster.id"
}

# answers: a TCP connect plus a real metadata round trip (list topics).
answers() {
  tcp_open "$HOST" "$PORT" || return 1
  if [[ -f "$KAFKA_HOME/.complete" ]]; then
    run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" --list \
      >/dev/null 2>&1 || return 1
  fi
}

start() {
  if tcp_open "$HOST" "$PORT"; then
    if answers; then
      log "a broker already answers on $HOST:$PORT; nothing to do"
      return 0
    fi
    if ! pid_alive "$PIDFILE" kafka.Kafka >/dev/null; then
      die "something listens on $HOST:$PORT but does not answer Kafka metadata requests"
    fi
  fi
  install_jars
  local pid t0 i
  t0=$SECONDS
  if pid="$(pid_alive "$PIDFILE" kafka.Kafka)"; then
    log "broker pid $pid is already running (still starting?); waiting for it"
  else
    command -v "$JAVA" >/dev/null || die "java not found"
    write_configs
    format_storage
    log "starting Kafka $KAFKA_VERSION (KRaft, node $NODE_ID: $ROLES, voters $VOTERS) on $HOST:$PORT; log: $LOGFILE"
    # setsid: own session, so the broker survives the calling shell and
    # never gets the caller's Ctrl-C; nohup for good measure.
    # shellcheck disable=SC2086
    nohup setsid "$JAVA" $HEAP -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$STATE/log4j2.xml" \
      -cp "$LIBS/*" kafka.Kafka "$PROPS" >"$LOGFILE" 2>&1 </dev/null &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
  fi
  for ((i = 0; i < 360; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      die "broker exited during startup (see $LOGFILE)"
    fi
    # Ready once the server logs that its startup finished (a KRaft broker
    # then has caught up with the metadata and is unfenced): a log check,
    # not a JVM tool per try, which costs seconds of CPU on a small machine.
    if tcp_open "$HOST" "$PORT" && grep -q 'Kafka Server started' "$LOGFILE" 2>/dev/null; then
      log "broker answers on $HOST:$PORT (pid $pid, ready after $((SECONDS - t0))s)"
      return 0
    fi
    sleep 0.5
  done
  tail -n 30 "$LOGFILE" >&2 || true
  die "broker did not answer on $HOST:$PORT within 180s (pid $pid still running; see $LOGFILE)"
}

status() {
  if answers; then
    local pid note="not started by kafka.sh"
    pid="$(pid_alive "$PIDFILE" kafka.Kafka)" && note="pid $pid, started by kafka.sh"
    log "broker answers on $HOST:$PORT ($note)"
    return 0
  fi
  log "no broker answers on $HOST:$PORT"
  return 1
}

case "${1:-}" in
  install) install_jars ;;
  installed) [[ -f "$KAFKA_HOME/.complete" ]] && command -v "$JAVA" >/dev/null ;;
  start) start ;;
  stop) stop_pid "$PIDFILE" "Kafka broker" 60 kafka.Kafka ;;
  status) status ;;
  env) printf 'export VIGIL_KAFKA=%s:%s\n' "$HOST" "$PORT" ;;
  cli)
    shift
    [[ $# -ge 1 ]] || die "usage: $0 cli MAIN_CLASS [ARGS...]"
    run_tool "$@"
    ;;
  *)
    echo "usage: $0 install|installed|start|stop|status|env|cli MAIN_CLASS [ARGS...]" >&2
    exit 2
    ;;
esac
