# Sourced by the bench/store scripts (needs WORK, PIDS and ROOT set).
#
# On exit: stops every process in PIDS and removes WORK.
# free_port: a free TCP port on 127.0.0.1.
# start_targets TARGETS SERIES: serves TARGETS synthetic targets on
# 127.0.0.1, one directory each under $WORK (bench/store/gen_metrics.py
# rewrites the body every second, `python3 -m http.server` serves it),
# adds their PIDs to PIDS and sets TARGET_LIST to `"127.0.0.1:PORT",...`
# (with a trailing comma).

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_targets() {
  local t port
  TARGET_LIST=""
  for t in $(seq 1 "$1"); do
    mkdir -p "$WORK/t$t"
    python3 "$ROOT/bench/store/gen_metrics.py" "$WORK/t$t" "$2" & PIDS+=($!)
    port=$(free_port)
    (cd "$WORK/t$t" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) & PIDS+=($!)
    TARGET_LIST="$TARGET_LIST\"127.0.0.1:$port\","
  done
}
