#!/usr/bin/env bash
# CPU per scraped sample and RSS per series of forewarn, Debian's Prometheus
# and Debian's VictoriaMetrics scraping the same synthetic targets in the
# same run (bench/README.md, "store: side by side").
#
#   bench/store/prometheus_side_by_side.sh [SERIES_PER_TARGET] [TARGETS] [SECONDS] [INTERVAL_S]
#
# Serves TARGETS copies of a generated /metrics body (python3 -m http.server,
# values change between scrapes by rewriting the file) on 127.0.0.1, runs
# the three engines (each with a temp storage dir, INTERVAL_S scrape
# interval, default 1), waits SECONDS, then prints each one's CPU seconds
# (utime + stime from /proc/PID/stat, counted from 10 s after the start so
# start-up is left out; PERF_OUT=file records forewarn's profile too), CPU microseconds per scraped sample, RSS, series
# count and RSS per series. Installs prometheus and victoria-metrics with
# apt-get when missing (needs root); without victoria-metrics it runs two.
# Builds and runs the binary the Debian package ships (`cargo build
# --profile dist`, whole-program LTO; the first build takes ~10 minutes);
# NO_BUILD=1 uses target/dist/forewarn as it is; FW=path runs another binary.
set -euo pipefail

SERIES=${1:-10000}
TARGETS=${2:-5}
SECS=${3:-120}
INTERVAL=${4:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/forewarn-side-by-side.XXXXXX)
PIDS=()
source "$ROOT/bench/store/targets.sh"

if ! command -v prometheus >/dev/null || ! command -v victoria-metrics >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus victoria-metrics >/dev/null || true
fi
[ -n "${NO_BUILD:-}" ] || [ -n "${FW:-}" ] || (cd "$ROOT" && cargo build --profile dist --bin forewarn -q)
FW="${FW:-$ROOT/target/dist/forewarn}"

# The targets: one directory each, a writer loop changes the values every second.
start_targets "$TARGETS" "$SERIES"
TARGET_LIST="[${TARGET_LIST%,}]"
sleep 2

FW_PORT=$(free_port)
cat > "$WORK/forewarn.yml" <<EOF
global: { scrape_interval: ${INTERVAL}s, scrape_timeout: 1s, evaluation_interval: 15s }
scrape_configs:
  - job_name: bench
    static_configs: [ { targets: $TARGET_LIST } ]
storage: { path: "$WORK/fw-state", retention: 1d }
http: { listen: "127.0.0.1:$FW_PORT" }
EOF
PROM_PORT=$(free_port)
cat > "$WORK/prometheus.yml" <<EOF
global: { scrape_interval: ${INTERVAL}s, scrape_timeout: 1s, evaluation_interval: 15s }
scrape_configs:
  - job_name: bench
    static_configs: [ { targets: $TARGET_LIST } ]
EOF

"$FW" run --config "$WORK/forewarn.yml" 2>"$WORK/fw.log" & FW_PID=$!; PIDS+=($FW_PID)
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" 2>"$WORK/prom.log" & PROM_PID=$!; PIDS+=($PROM_PID)
VM_PID=""
if command -v victoria-metrics >/dev/null; then
  VM_PORT=$(free_port)
  victoria-metrics -promscrape.config="$WORK/prometheus.yml" -promscrape.config.strictParse=false -storageDataPath="$WORK/vm-data" \
    -httpListenAddr="127.0.0.1:$VM_PORT" -search.latencyOffset=0s -loggerLevel=ERROR 2>"$WORK/vm.log" & VM_PID=$!; PIDS+=($VM_PID)
fi

# CPU time of a process in seconds (utime + stime).
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
echo "scraping $TARGETS targets x $SERIES series every ${INTERVAL}s for ${SECS}s (CPU counted after the first 10 s) ..."
sleep 10
FW_CPU0=$(cpu_s $FW_PID); PROM_CPU0=$(cpu_s $PROM_PID); VM_CPU0=${VM_PID:+$(cpu_s $VM_PID)}
# PERF_OUT=file: also record forewarn's profile for PERF_SECS (30) s at PERF_FREQ (999) Hz (perf report -i file).
if [ -n "${PERF_OUT:-}" ]; then
  perf record -F "${PERF_FREQ:-999}" -g -p "$FW_PID" -o "$PERF_OUT" -- sleep "${PERF_SECS:-30}" >/dev/null 2>&1 &
fi
sleep "$SECS"
FW_CPU=$(echo "$(cpu_s $FW_PID) - $FW_CPU0" | bc -l); PROM_CPU=$(echo "$(cpu_s $PROM_PID) - $PROM_CPU0" | bc -l)
[ -n "$VM_PID" ] && VM_CPU=$(echo "$(cpu_s $VM_PID) - $VM_CPU0" | bc -l)
# Samples each engine scraped meanwhile (nominal: every target answered every interval).
SAMPLES=$(echo "$TARGETS * $SERIES * $SECS / $INTERVAL" | bc -l)

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# The anonymous part of RSS (heap, stacks): RSS less the pages mapped from
# files, of which the program's own binary is most.
anon_kb() { awk '/RssAnon/ {print $2}' "/proc/$1/status"; }
count() { # series count from an instant query of count({job="bench"})
  curl -s "http://127.0.0.1:$1/api/v1/query" --data-urlencode 'query=count({job="bench"})' |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)'
}
# Read before the series counts below: a query's own memory would show.
FW_RSS=$(rss_kb $FW_PID); PROM_RSS=$(rss_kb $PROM_PID)
FW_ANON=$(anon_kb $FW_PID); PROM_ANON=$(anon_kb $PROM_PID); VM_ANON=${VM_PID:+$(anon_kb $VM_PID)}
VM_RSS=${VM_PID:+$(rss_kb $VM_PID)}
FW_N=$(count "$FW_PORT"); PROM_N=$(count "$PROM_PORT")
PROM_VERSION=$(prometheus --version 2>&1 | head -1)
row() { # name cpu_s rss_kb series anon_kb
  printf "%-16s %8.2f %14.3f %10.1f %9d %14.0f %10.1f\n" "$1" "$2" "$(echo "$2 * 1000000 / $SAMPLES" | bc -l)" \
    "$(echo "$3/1024" | bc -l)" "$4" "$(echo "$3*1024/$4" | bc -l)" "$(echo "$5/1024" | bc -l)"
}
printf "%-16s %8s %14s %10s %9s %14s %10s\n" "" "CPU s" "CPU us/sample" "RSS MiB" "series" "RSS B/series" "anon MiB"
row forewarn "$FW_CPU" "$FW_RSS" "$FW_N" "$FW_ANON"
row prometheus "$PROM_CPU" "$PROM_RSS" "$PROM_N" "$PROM_ANON"
if [ -n "$VM_PID" ]; then
  VM_N=$(count "$VM_PORT")
  row victoria-metrics "$VM_CPU" "$VM_RSS" "$VM_N" "$VM_ANON"
fi
# What the count() queries above left behind (a query's working memory,
# while the allocator or the garbage collector still holds it).
FW_ANON2=$(anon_kb $FW_PID); PROM_ANON2=$(anon_kb $PROM_PID)
mib_delta() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f (%+.1f)", a / 1024, (a - b) / 1024 }'; }
echo "anon MiB after an instant count({job=\"bench\"}): forewarn $(mib_delta "$FW_ANON2" "$FW_ANON"), prometheus $(mib_delta "$PROM_ANON2" "$PROM_ANON")"
echo "ratio forewarn/prometheus: CPU per sample $(echo "$FW_CPU/$PROM_CPU" | bc -l | cut -c1-5), RSS per series $(echo "($FW_RSS/$FW_N)/($PROM_RSS/$PROM_N)" | bc -l | cut -c1-5)"
echo "($PROM_VERSION; ${SECS}s of ${INTERVAL}s scrapes; $(printf %.0f "$SAMPLES") samples per engine)"
