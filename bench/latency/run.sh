#!/bin/sh
# Threshold crossing -> webhook latency, p50/p99 over repeated runs, for
# forewarn and for Debian's prometheus + prometheus-alertmanager, in the same
# run against the same target (bench/latency/harness.py), both at their
# tightest settings: scrape 1s, evaluation 1s, group_wait 0s.
#
#   bench/latency/run.sh [RUNS]     (default 20; needs root for apt-get)
#   FOREWARN_BIN=path/to/forewarn bench/latency/run.sh 30
#
# Installs what it needs itself; CI does not run it. Figures go into
# bench/README.md.
set -eu
RUNS=${1:-20}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d /tmp/forewarn-latency.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null
    # The packages start system services; this bench runs its own copies.
    systemctl stop prometheus prometheus-alertmanager prometheus-node-exporter 2>/dev/null || true
fi
# FOREWARN_BIN: a binary to measure instead of building this tree.
FW=${FOREWARN_BIN:-}
if [ -z "$FW" ]; then
    (cd "$ROOT" && cargo build --release -q)
    FW="$ROOT/target/release/forewarn"
fi

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TARGET=$(port); HOOK=$(port); FWP=$(port); PROM=$(port); AM=$(port)

cat > "$TMP/rules.yml" <<YML
groups:
  - name: bench
    interval: 1s
    rules:
      - alert: BenchHigh
        expr: bench_value > 100
YML

cat > "$TMP/forewarn.yml" <<YML
global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: bench
    static_configs: [ { targets: ["127.0.0.1:$TARGET"] } ]
rule_files: [ "rules.yml" ]
route: { receiver: hook, group_by: ['...'], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }
receivers:
  - name: hook
    webhook_configs: [ { url: "http://127.0.0.1:$HOOK/forewarn" } ]
storage: { path: "$TMP/fw-state" }
http: { listen: "127.0.0.1:$FWP" }
YML

cat > "$TMP/prometheus.yml" <<YML
global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: bench
    static_configs: [ { targets: ["127.0.0.1:$TARGET"] } ]
rule_files: [ "$TMP/rules.yml" ]
alerting:
  alertmanagers: [ { static_configs: [ { targets: ["127.0.0.1:$AM"] } ] } ]
YML

cat > "$TMP/alertmanager.yml" <<YML
route: { receiver: hook, group_by: ['...'], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }
receivers:
  - name: hook
    webhook_configs: [ { url: "http://127.0.0.1:$HOOK/alertmanager" } ]
YML

mkfifo "$TMP/go"
/usr/bin/python3 "$ROOT/bench/latency/harness.py" --target-port "$TARGET" --hook-port "$HOOK" \
    --runs "$RUNS" --systems forewarn,alertmanager < "$TMP/go" > "$TMP/out" &
PIDS="$PIDS $!"
exec 3> "$TMP/go"
until grep -q ready "$TMP/out" 2>/dev/null; do sleep 0.1; done

"$FW" run --config "$TMP/forewarn.yml" 2> "$TMP/forewarn.log" & PIDS="$PIDS $!"
prometheus-alertmanager --config.file "$TMP/alertmanager.yml" --storage.path "$TMP/am" \
    --web.listen-address "127.0.0.1:$AM" --cluster.listen-address "" 2> "$TMP/am.log" & PIDS="$PIDS $!"
prometheus --config.file "$TMP/prometheus.yml" --storage.tsdb.path "$TMP/prom" \
    --web.listen-address "127.0.0.1:$PROM" 2> "$TMP/prom.log" & PIDS="$PIDS $!"
sleep 5   # all three up and scraping
echo "forewarn $("$FW" --version) | $(prometheus --version 2>&1 | head -1) | $(prometheus-alertmanager --version 2>&1 | head -1)"
echo go >&3
tail -f "$TMP/out" --pid "$(echo $PIDS | cut -d' ' -f1)" 2>/dev/null || cat "$TMP/out"
