#!/usr/bin/env bash
# Remote-write throughput and CPU per sample: forewarn beside Prometheus in
# agent mode and vmagent, scraping the same targets in the same run and
# writing to the same VictoriaMetrics (each tagged with external label
# `scraper`). Not run in CI. Needs the Debian packages victoria-metrics
# (vmagent ships in it) and prometheus, and a release build:
#   cargo build --release && bench/remote_write/run.sh [SECONDS] [SERIES_PER_TARGET] [TARGETS]
# Prints samples delivered to VictoriaMetrics per scraper, samples/s, CPU
# seconds and CPU microseconds per sample (from /proc/<pid>/stat).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
SERIES=${2:-2000}
TARGETS=${3:-10}
BIN=$PWD/target/release/forewarn
for b in "$BIN" /usr/bin/victoria-metrics /usr/bin/vmagent /usr/bin/prometheus; do
  [ -x "$b" ] || { echo "error: $b is missing (cargo build --release; apt-get install victoria-metrics prometheus)" >&2; exit 1; }
done
DIR=$(mktemp -d /tmp/forewarn-rw-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One static exposition body (SERIES gauges) served by python's http.server.
mkdir -p "$DIR/www"
python3 - "$SERIES" > "$DIR/www/metrics" <<'PY'
import sys
n = int(sys.argv[1])
print("# TYPE bench_value gauge")
for i in range(n):
    print(f'bench_value{{series="{i}",path="/api/v{i % 7}",code="{200 + i % 5}"}} {i * 1.5}')
PY
TPORT=$(port)
(cd "$DIR/www" && exec python3 -m http.server "$TPORT" --bind 127.0.0.1 >/dev/null 2>&1) & PIDS+=($!)

VPORT=$(port)
/usr/bin/victoria-metrics -storageDataPath="$DIR/vm" -httpListenAddr=127.0.0.1:$VPORT -search.latencyOffset=0s -loggerLevel=ERROR >/dev/null 2>&1 & PIDS+=($!)
VM=http://127.0.0.1:$VPORT
for _ in $(seq 100); do curl -sf "$VM/health" >/dev/null && break; sleep 0.1; done

targets() { # YAML static_configs: TARGETS targets on the same server, told apart by a label
  for i in $(seq 1 "$TARGETS"); do echo "      - { targets: [\"127.0.0.1:$TPORT\"], labels: { shard: \"$i\" } }"; done
}
scrape_cfg() {
  cat <<Y
global: { scrape_interval: 1s, scrape_timeout: 1s, external_labels: { scraper: $1 } }
scrape_configs:
  - job_name: bench
    static_configs:
$(targets)
Y
}

FPORT=$(port)
{ scrape_cfg forewarn; cat <<Y
storage: { path: "$DIR/forewarn", retention: 1h }
http: { listen: "127.0.0.1:$FPORT" }
remote_write: [ { url: "$VM/api/v1/write" } ]
Y
} > "$DIR/forewarn.yml"
scrape_cfg prometheus > "$DIR/prometheus.yml"
echo "remote_write: [ { url: \"$VM/api/v1/write\" } ]" >> "$DIR/prometheus.yml"
scrape_cfg vmagent > "$DIR/vmagent.yml"

"$BIN" run --config "$DIR/forewarn.yml" 2>/dev/null & FW=$!; PIDS+=($FW)
/usr/bin/prometheus --enable-feature=agent --config.file="$DIR/prometheus.yml" --storage.agent.path="$DIR/prom" \
  --web.listen-address=127.0.0.1:$(port) >/dev/null 2>&1 & PR=$!; PIDS+=($PR)
/usr/bin/vmagent -promscrape.config="$DIR/vmagent.yml" -remoteWrite.url="$VM/api/v1/write" -remoteWrite.tmpDataPath="$DIR/vmagent" \
  -httpListenAddr=127.0.0.1:$(port) -loggerLevel=ERROR >/dev/null 2>&1 & VA=$!; PIDS+=($VA)

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
sleep 10 # warm-up: targets found, first series created
START=$(date +%s)
declare -A C0
for p in $FW $PR $VA; do C0[$p]=$(cpu "$p"); done
sleep "$SECS"
END=$(date +%s)
declare -A C1
for p in $FW $PR $VA; do C1[$p]=$(cpu "$p"); done
sleep 8 # let the queues deliver what was scraped in the window
TICKS=$(getconf CLK_TCK)
printf '%-11s %12s %12s %9s %12s\n' scraper samples samples/s cpu_s us/sample
for pair in forewarn:$FW prometheus:$PR vmagent:$VA; do
  name=${pair%%:*}; pid=${pair##*:}
  n=$(curl -s "$VM/api/v1/query" --data-urlencode "query=sum(count_over_time({scraper=\"$name\"}[${SECS}s]))" \
       --data-urlencode "time=$END" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)')
  cpu_s=$(python3 -c "print(round(((${C1[$pid]}) - (${C0[$pid]})) / $TICKS, 2))")
  python3 -c "n=$n; c=$cpu_s; print(f'%-11s %12d %12.0f %9.2f %12.2f' % ('$name', n, n / $SECS, c, (c * 1e6 / n) if n else float('nan')))"
done
