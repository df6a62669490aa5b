#!/usr/bin/env bash
# CPU a durable store's snapshots cost, beside the same daemon without them
# (bench/README.md, "Scrape CPU side by side", session 12).
#
#   bench/store/snapshot_cost.sh [SECONDS] [SERIES_PER_TARGET] [TARGETS]
#
# Two forewarns scrape the same TARGETS synthetic targets (as
# prometheus_side_by_side.sh serves them) every 15 s for SECONDS (150): one
# with `snapshot_interval: 30s`, one with `1h`. Prints each one's CPU
# seconds (utime + stime, counted from 10 s after the start) and the first
# one's snapshot size and duration. The difference over the number of
# snapshots taken is the CPU of one snapshot. NO_BUILD=1 uses
# target/release/forewarn as it is; FW=path runs another binary.
set -euo pipefail

SECS=${1:-150}
SERIES=${2:-10000}
TARGETS=${3:-5}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ -n "${NO_BUILD:-}" ] || (cd "$ROOT" && cargo build --release -q)
FW="${FW:-$ROOT/target/release/forewarn}"
WORK=$(mktemp -d /tmp/forewarn-snapshot-cost.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/gen.py" <<'PY'
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
PY
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TARGET_LIST=""
for t in $(seq 1 "$TARGETS"); do
  mkdir -p "$WORK/t$t"
  python3 "$WORK/gen.py" "$WORK/t$t" "$SERIES" & PIDS+=($!)
  port=$(free_port)
  (cd "$WORK/t$t" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) & PIDS+=($!)
  TARGET_LIST="$TARGET_LIST\"127.0.0.1:$port\","
done
sleep 2

declare -A PID PORT
for name in snapshots none; do
  interval=30s
  [ "$name" = none ] && interval=1h
  PORT[$name]=$(free_port)
  cat > "$WORK/$name.yml" <<YML
global: { scrape_interval: 15s, scrape_timeout: 1s, evaluation_interval: 15s }
scrape_configs: [ { job_name: bench, static_configs: [ { targets: [${TARGET_LIST%,}] } ] } ]
storage: { path: "$WORK/$name-state", retention: 1d, snapshot_interval: $interval }
http: { listen: "127.0.0.1:${PORT[$name]}" }
YML
  "$FW" run --config "$WORK/$name.yml" 2>"$WORK/$name.log" & PID[$name]=$!; PIDS+=(${PID[$name]})
done

cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
sleep 10
A0=$(cpu_s "${PID[snapshots]}"); B0=$(cpu_s "${PID[none]}")
sleep "$SECS"
A=$(echo "$(cpu_s "${PID[snapshots]}") - $A0" | bc -l); B=$(echo "$(cpu_s "${PID[none]}") - $B0" | bc -l)
echo "${SECS}s of 15s scrapes, $TARGETS targets x $SERIES series"
echo "snapshot_interval 30s: $A s CPU"
echo "snapshot_interval 1h:  $B s CPU"
curl -s "http://127.0.0.1:${PORT[snapshots]}/metrics" \
  | grep -E '^forewarn_store_snapshot_(bytes|duration_seconds_(sum|count)) ' || true
