#!/usr/bin/env bash
# Start, stop and probe the single-node KRaft broker run from the Maven jars in .cache/libs.
#   kafka.sh fetch | up | down | status | logs
# `up` returns only once the broker answers an admin request; `up` and `down` are idempotent.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIBS="$HERE/.cache/libs"
DATA="${KAFKA_DATA_DIR:-$HERE/.data}"
PIDFILE="$DATA/kafka.pid"
BOOTSTRAP="127.0.0.1:9092"
PYTHON="${PYTHON:-python3}"
START_TIMEOUT_S="${KAFKA_START_TIMEOUT_S:-90}"
JAVA_HEAP="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"

classpath() { echo "$LIBS/*"; }

fetch() {
  # the broker and the command-line tools (a cache from before the tools were added is fetched again)
  if ! ls "$LIBS"/kafka_2.13-*.jar "$LIBS"/kafka-tools-[0-9]*.jar >/dev/null 2>&1; then
    echo "kafka: fetching broker jars from Maven Central" >&2
    mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies
  fi
}

running() {
  [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

# True once the broker answers a metadata request through an admin client.
answers() {
  "$PYTHON" - "$BOOTSTRAP" <<'PY' >/dev/null 2>&1
import sys
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=3000,
                         client_id="distill-guard-probe")
try:
    admin.describe_cluster()
finally:
    admin.close()
PY
}

up() {
  fetch
  if running && answers; then
    echo "kafka: already up on $BOOTSTRAP (pid $(cat "$PIDFILE"))"
    return 0
  fi
  if running; then
    echo "kafka: pid $(cat "$PIDFILE") exists but does not answer; restarting" >&2
    down
  fi
  mkdir -p "$DATA"
  local props="$DATA/server.properties"
  sed "s#^log.dirs=.*##" "$HERE/server.properties" > "$props"
  echo "log.dirs=$DATA/logs" >> "$props"
  local java_opts=(-cp "$(classpath)" -Dkafka.logs.dir="$DATA"
                   -Dlog4j2.configurationFile="$HERE/log4j2.yaml" -Djava.awt.headless=true)
  if [[ ! -f "$DATA/logs/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(java "${java_opts[@]}" kafka.tools.StorageTool random-uuid)"
    java "${java_opts[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$props" >/dev/null
  fi
  # the broker keeps none of the caller's descriptors past stderr: a lock held by `flock ... make kafka-up`
  # (which serialises broker use) would otherwise stay held for the broker's life
  (
    for fd in /proc/self/fd/*; do
      n="${fd##*/}"
      if (( n > 2 )); then eval "exec $n>&-" 2>/dev/null || true; fi
    done
    # shellcheck disable=SC2086
    exec nohup java $JAVA_HEAP -XX:+UseG1GC "${java_opts[@]}" kafka.Kafka "$props" > "$DATA/stdout.log" 2>&1
  ) &
  echo $! > "$PIDFILE"
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until answers; do
    if ! running; then
      echo "kafka: broker exited during start; last lines of $DATA/stdout.log:" >&2
      tail -n 30 "$DATA/stdout.log" >&2 || true
      exit 1
    fi
    if (( SECONDS > deadline )); then
      echo "kafka: no answer on $BOOTSTRAP after ${START_TIMEOUT_S}s" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "kafka: up on $BOOTSTRAP (pid $(cat "$PIDFILE"))"
}

down() {
  if ! running; then
    rm -f "$PIDFILE"
    echo "kafka: not running"
    return 0
  fi
  local pid
  pid="$(cat "$PIDFILE")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "kafka: pid $pid ignored SIGTERM for 30s; killing" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  echo "kafka: stopped (pid $pid)"
}

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  status) if running && answers; then echo "up"; else echo "down"; exit 1; fi ;;
  logs) tail -n 100 "$DATA/server.log" ;;
  *) echo "usage: $0 fetch|up|down|status|logs" >&2; exit 2 ;;
esac
