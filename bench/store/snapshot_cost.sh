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
source "$ROOT/bench/store/targets.sh"

start_targets "$TARGETS" "$SERIES"
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
