#!/usr/bin/python3
"""Latency harness for bench/latency/run.sh (stdlib only).

Serves one scrape target and one webhook endpoint on 127.0.0.1. Each run
switches a fresh series `bench_value{run="N"}` from 0 to 500 (the threshold
crossing, time t0) and waits until each system's webhook receives a firing
alert for run N; the latency is receipt time minus t0. All systems scrape
the same target, so they see the same crossing in the same run.

Usage: harness.py --target-port P --hook-port Q --runs N --systems a,b
Prints the ports-ready line "ready" on stdout, waits for "go" on stdin,
then prints one line per run and a summary per system.
"""

import argparse
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"run": -1, "value": 0.0}
received = {}  # (system, run) -> monotonic time


class Target(BaseHTTPRequestHandler):
    def do_GET(self):
        with lock:
            run, value = state["run"], state["value"]
        body = "# TYPE bench_value gauge\n"
        if run >= 0:
            body += f'bench_value{{run="{run}"}} {value}\n'
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        now = time.monotonic()
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"{}")
        system = self.path.strip("/")
        with lock:
            for a in body.get("alerts", []):
                if a.get("status") == "firing":
                    key = (system, int(a["labels"].get("run", "-1")))
                    received.setdefault(key, now)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target-port", type=int, required=True)
    ap.add_argument("--hook-port", type=int, required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--systems", default="forewarn,alertmanager")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    systems = args.systems.split(",")
    for port, handler in ((args.target_port, Target), (args.hook_port, Hook)):
        srv = ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.readline()
    lat = {s: [] for s in systems}
    for run in range(args.runs):
        with lock:
            state["run"], state["value"] = run, 0.0
        # Both systems see the series below the threshold first; the random
        # part spreads crossings over the scrape and evaluation phases.
        time.sleep(2.5 + random.random())
        with lock:
            state["value"] = 500.0
            t0 = time.monotonic()
        deadline = t0 + args.timeout
        while time.monotonic() < deadline:
            with lock:
                if all((s, run) in received for s in systems):
                    break
            time.sleep(0.005)
        line = [f"run {run}:"]
        for s in systems:
            t = received.get((s, run))
            if t is None:
                line.append(f"{s}=timeout")
            else:
                lat[s].append(t - t0)
                line.append(f"{s}={t - t0:.3f}s")
        print(" ".join(line), flush=True)
    print("system            runs  p50(s)  p99(s)  max(s)")
    for s in systems:
        xs = lat[s]
        print(f"{s:16} {len(xs):5}  {pct(xs, 50):6.3f}  {pct(xs, 99):6.3f}  {max(xs) if xs else float('nan'):6.3f}")
    base = systems[-1]
    for s in systems[:-1]:
        if lat[s] and lat[base]:
            print(f"ratio {s}/{base}: p50 {pct(lat[s], 50) / pct(lat[base], 50):.2f}, p99 {pct(lat[s], 99) / pct(lat[base], 99):.2f}")


if __name__ == "__main__":
    main()
