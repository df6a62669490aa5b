#!/usr/bin/env bash
# RSS per series of forewarn and Debian's Prometheus scraping the same
# synthetic targets in the same run (bench/README.md, "store: side by side").
#
#   bench/store/prometheus_side_by_side.sh [SERIES_PER_TARGET] [TARGETS] [SECONDS]
#
# Serves TARGETS copies of a generated /metrics body (python3 -m http.server,
# values change between scrapes by rewriting the file) on 127.0.0.1, runs
# forewarn and prometheus (each with a temp storage dir, 1s scrape interval),
# waits SECONDS, then prints each one's RSS, series count and RSS per series.
# Installs prometheus with apt-get when it is missing (needs root).
set -euo pipefail

SERIES=${1:-10000}
TARGETS=${2:-5}
SECS=${3:-120}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/forewarn-side-by-side.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v prometheus >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
(cd "$ROOT" && cargo build --release -q)
FW="$ROOT/target/release/forewarn"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The targets: one directory each, a writer loop changes the values every second.
cat > "$WORK/gen.py" <<'EOF'
import os, random, sys, time
d, n = sys.argv[1], int(sys.argv[2])
vals = [random.randint(0, 1000) for _ in range(n)]
while True:
    lines = ["# TYPE bench_metric counter"]
    for i in range(n):
        vals[i] += random.randint(0, 5) if i % 3 else 0
        lines.append(f'bench_metric{{kind="k{i % 10}",id="{i}"}} {vals[i]}')
    tmp = os.path.join(d, "metrics.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, os.path.join(d, "metrics"))
    time.sleep(1)
EOF
TARGET_LIST=""
for t in $(seq 1 "$TARGETS"); do
  mkdir -p "$WORK/t$t"
  python3 "$WORK/gen.py" "$WORK/t$t" "$SERIES" & PIDS+=($!)
  port=$(free_port)
  (cd "$WORK/t$t" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) & PIDS+=($!)
  TARGET_LIST="$TARGET_LIST\"127.0.0.1:$port\","
done
TARGET_LIST="[${TARGET_LIST%,}]"
sleep 2

FW_PORT=$(free_port)
cat > "$WORK/forewarn.yml" <<EOF
global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 15s }
scrape_configs:
  - job_name: bench
    static_configs: [ { targets: $TARGET_LIST } ]
storage: { path: "$WORK/fw-state", retention: 1d }
http: { listen: "127.0.0.1:$FW_PORT" }
EOF
PROM_PORT=$(free_port)
cat > "$WORK/prometheus.yml" <<EOF
global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 15s }
scrape_configs:
  - job_name: bench
    static_configs: [ { targets: $TARGET_LIST } ]
EOF

"$FW" run --config "$WORK/forewarn.yml" 2>"$WORK/fw.log" & FW_PID=$!; PIDS+=($FW_PID)
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" 2>"$WORK/prom.log" & PROM_PID=$!; PIDS+=($PROM_PID)

echo "scraping $TARGETS targets x $SERIES series every 1s for ${SECS}s ..."
sleep "$SECS"

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
count() { # series count from an instant query of count({job="bench"})
  curl -s "http://127.0.0.1:$1/api/v1/query" --data-urlencode 'query=count({job="bench"})' |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)'
}
FW_RSS=$(rss_kb $FW_PID); PROM_RSS=$(rss_kb $PROM_PID)
FW_N=$(count "$FW_PORT"); PROM_N=$(count "$PROM_PORT")
PROM_VERSION=$(prometheus --version 2>&1 | head -1)
printf "%-12s %10s %9s %14s\n" "" "RSS MiB" "series" "RSS B/series"
printf "%-12s %10.1f %9d %14.0f\n" forewarn "$(echo "$FW_RSS/1024" | bc -l)" "$FW_N" "$(echo "$FW_RSS*1024/$FW_N" | bc -l)"
printf "%-12s %10.1f %9d %14.0f\n" prometheus "$(echo "$PROM_RSS/1024" | bc -l)" "$PROM_N" "$(echo "$PROM_RSS*1024/$PROM_N" | bc -l)"
echo "ratio forewarn/prometheus (RSS per series): $(echo "($FW_RSS/$FW_N)/($PROM_RSS/$PROM_N)" | bc -l | cut -c1-5)"
echo "($PROM_VERSION; ${SECS}s of 1s scrapes = $SECS samples per series)"
