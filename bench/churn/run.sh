#!/usr/bin/env bash
# RSS over time under series churn (bench/README.md, "Series churn"): one
# target on 127.0.0.1 whose CHURN series get a new `request_id` at every
# scrape (plus 50 steady series), scraped every 1 s for SECONDS by
#   - forewarn with `storage.stale_series_retention: 2m`,
#   - forewarn with the default (2h),
#   - Debian's Prometheus (2.42),
# each with its own temp storage dir. Prints RSS and in-memory series every
# 60 s.
#
#   bench/churn/run.sh [CHURN] [SECONDS]
set -euo pipefail

CHURN=${1:-100}
SECS=${2:-600}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/forewarn-churn.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

FW=${FW:-"$ROOT/target/release/forewarn"}
[ -x "$FW" ] || (cd "$ROOT" && cargo build --release -q)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cat > "$WORK/target.py" <<'EOF'
import http.server, itertools, sys
port, churn = int(sys.argv[1]), int(sys.argv[2])
scrape = itertools.count()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        n = next(scrape)
        lines = [f'app_requests{{request_id="r{n}-{i}"}} 1' for i in range(churn)]
        lines += [f'app_steady{{i="{i}"}} {n}' for i in range(50)]
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200); self.send_header("Content-Type", "text/plain"); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
TP=$(free_port)
python3 "$WORK/target.py" "$TP" "$CHURN" & PIDS+=($!)

start_fw() { # name, extra storage keys
  local port; port=$(free_port)
  mkdir -p "$WORK/$1"
  cat > "$WORK/$1/forewarn.yml" <<EOF
global: { scrape_interval: 1s, scrape_timeout: 1s }
scrape_configs:
  - job_name: churn
    static_configs: [ { targets: ["127.0.0.1:$TP"] } ]
storage: { path: "$WORK/$1/state" $2 }
http: { listen: "127.0.0.1:$port" }
EOF
  "$FW" run --config "$WORK/$1/forewarn.yml" 2>/dev/null & PIDS+=($!)
  echo "$! $port"
}
read -r FA PA < <(start_fw fw-2m ", stale_series_retention: 2m")
read -r FB PB < <(start_fw fw-default "")
PP=$(free_port)
cat > "$WORK/prometheus.yml" <<EOF
global: { scrape_interval: 1s, scrape_timeout: 1s }
scrape_configs:
  - job_name: churn
    static_configs: [ { targets: ["127.0.0.1:$TP"] } ]
EOF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --web.listen-address="127.0.0.1:$PP" >/dev/null 2>&1 & PIDS+=($!)
PR=$!

rss() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
series() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { printf "%d", $2 }'; }
echo "| t (s) | forewarn 2m: RSS MiB / series | forewarn 2h: RSS MiB / series | prometheus: RSS MiB / head series |"
echo "| --- | --- | --- | --- |"
for ((t = 60; t <= SECS; t += 60)); do
  sleep 60
  echo "| $t | $(rss "$FA") / $(series "$PA" forewarn_store_series) | $(rss "$FB") / $(series "$PB" forewarn_store_series) | $(rss "$PR") / $(series "$PP" prometheus_tsdb_head_series) |"
done
