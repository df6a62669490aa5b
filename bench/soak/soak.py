#!/usr/bin/python3
"""Soak benchmark (issue #18, bench/README.md "Soak"): forewarn for a long
while under a production-like load, restarted every few minutes, with
receivers that fail now and then.

What runs, all on 127.0.0.1:
  - TARGETS scrape targets (one HTTP server, one path per target), each with
    ~40 series: counters, a histogram, a ratio pair, a leaking gauge on some,
    and on INCIDENT_TARGETS of them a scheduled "incident": a series
    soak_incident{incident="incNNNxKK"} that is 1 for a few minutes;
  - a few hundred rules of every kind (PromQL alerts, recording rules,
    threshold, trend, ratio, anomaly), plus the one rule that turns each
    incident into an alert;
  - a webhook receiver that answers 500 to FAIL_RATE of requests and an SMTP
    server (aiosmtpd, Debian's python3-aiosmtpd) that answers 451 to
    FAIL_RATE of messages;
  - forewarn itself, stopped every RESTART_EVERY seconds, alternately with
    SIGTERM and with SIGKILL, and started again on the same state dir.

What it reports: RSS and CPU over time, scrape schedule slip (gaps between
scrapes of a target beyond the interval, seen by the target, outside
downtime), evaluation slip (gaps between evaluations of a group beyond its
interval, from /api/v1/rules, outside downtime), notifications expected vs
delivered per receiver (each incident must reach each receiver exactly once
firing and once resolved: lost and duplicated are counted) and restart times
(start to /-/ready, and to the first scrape).

    /usr/bin/python3 bench/soak/soak.py [--minutes 30] [--targets 1000]
        [--restart-every 240] [--fail-rate 0.1] [--binary target/release/forewarn]
"""

import argparse
import asyncio
import collections
import http.server
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

try:
    from aiosmtpd.controller import Controller
except ImportError:
    sys.exit("error: aiosmtpd is missing; install Debian's python3-aiosmtpd and run with /usr/bin/python3")

SCRAPE_INTERVAL = 15
EVAL_INTERVAL = 15
INCIDENT_LEN = 240  # seconds an incident series is present
INCIDENT_FOR = 30  # the incident rule's `for`
TOKEN = re.compile(r"inc\d{3}x\d{3}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Clock:
    """Seconds since the soak started."""

    def __init__(self):
        self.t0 = time.time()

    def now(self):
        return time.time() - self.t0


class Schedule:
    """Incidents: target i (< incident_targets) has incident k from
    start(i, k) for INCIDENT_LEN seconds; incidents of one target never overlap."""

    def __init__(self, incident_targets, period, warmup):
        self.n = incident_targets
        self.period = period
        self.warmup = warmup

    def start(self, i, k):
        return self.warmup + (i * 37) % self.period + k * self.period

    def active(self, i, t):
        if i >= self.n or t < self.warmup:
            return None
        k = int((t - self.warmup - (i * 37) % self.period) // self.period)
        if k < 0:
            return None
        s = self.start(i, k)
        return f"inc{i:03d}x{k:03d}" if s <= t < s + INCIDENT_LEN else None

    def expected(self, run_end, settle):
        """Incidents that began and ended early enough to be judged."""
        out = []
        for i in range(self.n):
            k = 0
            while True:
                s = self.start(i, k)
                if s + INCIDENT_LEN + settle > run_end:
                    break
                out.append(f"inc{i:03d}x{k:03d}")
                k += 1
        return out


class Quiet(http.server.ThreadingHTTPServer):
    """A server that does not print a traceback when forewarn is killed
    mid-request (a reset connection is what a restart looks like)."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class Targets(Quiet):

    def __init__(self, port, clock, schedule):
        super().__init__(("127.0.0.1", port), TargetHandler)
        self.clock = clock
        self.schedule = schedule
        self.lock = threading.Lock()
        self.scrapes = collections.defaultdict(list)  # target -> [t]


class TargetHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        srv = self.server
        t = srv.clock.now()
        m = re.fullmatch(r"/m/(\d+)", self.path)
        if not m:
            self.send_error(404)
            return
        i = int(m.group(1))
        with srv.lock:
            srv.scrapes[i].append(t)
        body = metrics_body(i, t, srv.schedule).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def metrics_body(i, t, schedule):
    rnd = random.Random(i * 100003 + int(t // SCRAPE_INTERVAL))
    lines = []
    req = int(t * (5 + i % 7))
    for code, share in (("200", 0.97), ("500", 0.03)):
        lines.append(f'soak_requests_total{{code="{code}"}} {int(req * share)}')
    inn = int(t * 20)
    lines.append(f"soak_in_total {inn}")
    lines.append(f"soak_out_total {inn // 2}")
    leak = 200e6 + (t * 5e4 if i % 50 == 0 else 0)
    lines.append(f"soak_memory_bytes {leak + rnd.random() * 1e6:.0f}")
    lines.append(f"soak_queue_depth {100 + rnd.random() * 50:.1f}")
    cum = 0
    for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"):
        cum += int(t * (1 + i % 3))
        lines.append(f'soak_latency_seconds_bucket{{le="{le}"}} {cum}')
    lines.append(f'soak_latency_seconds_bucket{{le="+Inf"}} {cum}')
    lines.append(f"soak_latency_seconds_sum {t * 3:.1f}")
    lines.append(f"soak_latency_seconds_count {cum}")
    for w in range(16):
        lines.append(f'soak_worker_busy{{worker="{w}"}} {rnd.random():.3f}')
    inc = schedule.active(i, t)
    if inc:
        lines.append(f'soak_incident{{incident="{inc}"}} 1')
    return "\n".join(lines) + "\n"


class Receipts:
    """Accepted notifications per receiver: token -> status -> count."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = {"webhook": collections.defaultdict(collections.Counter), "email": collections.defaultdict(collections.Counter)}
        self.refused = collections.Counter()
        self.noise = 0

    def add(self, receiver, token, status):
        with self.lock:
            self.got[receiver][token][status] += 1


class Webhook(Quiet):

    def __init__(self, port, receipts, fail_rate, seed):
        super().__init__(("127.0.0.1", port), WebhookHandler)
        self.receipts = receipts
        self.fail_rate = fail_rate
        self.rnd = random.Random(seed)
        self.rnd_lock = threading.Lock()


class WebhookHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        srv = self.server
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        with srv.rnd_lock:
            fail = srv.rnd.random() < srv.fail_rate
        if fail:
            with srv.receipts.lock:
                srv.receipts.refused["webhook"] += 1
            self.send_response(500)
            self.end_headers()
            return
        try:
            msg = json.loads(body)
        except ValueError:
            msg = {}
        if self.path == "/noise":
            with srv.receipts.lock:
                srv.receipts.noise += 1
        else:
            for a in msg.get("alerts", []):
                tok = a.get("labels", {}).get("incident")
                if tok:
                    srv.receipts.add("webhook", tok, a.get("status", "?"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


class SmtpHandler:
    def __init__(self, receipts, fail_rate, seed):
        self.receipts = receipts
        self.fail_rate = fail_rate
        self.rnd = random.Random(seed)

    async def handle_DATA(self, server, session, envelope):
        if self.rnd.random() < self.fail_rate:
            with self.receipts.lock:
                self.receipts.refused["email"] += 1
            return "451 4.3.0 try again later"
        text = envelope.content.decode("utf-8", "replace")
        subject = next((ln for ln in text.splitlines() if ln.lower().startswith("subject:")), "")
        status = "resolved" if "RESOLVED" in subject.upper() else "firing"
        for tok in set(TOKEN.findall(text)):
            self.receipts.add("email", tok, status)
        return "250 OK"


def write_config(d, http_port, target_port, hook_port, smtp_port, targets):
    sd = [{"targets": [f"127.0.0.1:{target_port}"], "labels": {"__metrics_path__": f"/m/{i}", "shard": str(i)}} for i in range(targets)]
    with open(os.path.join(d, "targets.json"), "w") as f:
        json.dump(sd, f)
    with open(os.path.join(d, "forewarn.yml"), "w") as f:
        f.write(f"""global:
  scrape_interval: {SCRAPE_INTERVAL}s
  scrape_timeout: 10s
  evaluation_interval: {EVAL_INTERVAL}s
  smtp_from: soak@example.com
  smtp_smarthost: 127.0.0.1:{smtp_port}
  smtp_require_tls: false
scrape_configs:
  - job_name: soak
    file_sd_configs:
      - files: [targets.json]
rule_files: [rules.yml]
route:
  receiver: noise
  group_by: [alertname, shard]
  group_wait: 5s
  group_interval: 30s
  repeat_interval: 24h
  routes:
    - matchers: ['alertname="SoakIncident"']
      receiver: soak
      group_by: [alertname, incident]
receivers:
  - name: soak
    webhook_configs:
      - url: http://127.0.0.1:{hook_port}/hook
        send_resolved: true
    email_configs:
      - to: oncall@example.com
        send_resolved: true
  - name: noise
    webhook_configs:
      - url: http://127.0.0.1:{hook_port}/noise
storage:
  path: {d}/state
  retention: 1d
http:
  listen: 127.0.0.1:{http_port}
""")
    groups = []
    per = 20  # targets per generated rule
    rules = []
    for g in range(0, min(targets, 100 * per), per):
        sel = f'shard=~"{"|".join(str(x) for x in range(g, min(g + per, targets)))}"'
        rules.append(f'  - record: soak:requests:rate1m\n    expr: sum by (shard, code) (rate(soak_requests_total{{{sel}}}[1m]))')
        rules.append(f'  - alert: SoakErrors\n    expr: sum by (shard) (rate(soak_requests_total{{code="500",{sel}}}[1m])) / sum by (shard) (rate(soak_requests_total{{{sel}}}[1m])) > 0.5\n    for: 1m')
        rules.append(f'  - record: soak:latency:p99\n    expr: histogram_quantile(0.99, sum by (shard, le) (rate(soak_latency_seconds_bucket{{{sel}}}[1m])))')
        rules.append(f"  - alert: SoakQueueHigh\n    threshold: {{ series: 'soak_queue_depth{{{sel}}}', above: 900, clear_below: 500 }}")
        rules.append(f"  - alert: SoakLeak\n    trend: {{ series: 'soak_memory_bytes{{{sel}}}', over: 1h, limit: 8GiB, within: 6h }}")
        rules.append(f"  - alert: SoakFanOut\n    ratio: {{ of: 'sum by (shard) (rate(soak_out_total{{{sel}}}[1m]))', to: 'sum by (shard) (rate(soak_in_total{{{sel}}}[1m]))', expect: 0.5, tolerance: 0.2 }}")
        rules.append(f"  - alert: SoakWorkers\n    anomaly: {{ series: 'avg by (shard) (soak_worker_busy{{{sel}}})', baseline: 1h }}\n    for: 5m")
    for k in range(0, len(rules), 10):
        groups.append(f"- name: soak-{k // 10}\n  rules:\n" + "\n".join(rules[k:k + 10]))
    groups.append(f"- name: incidents\n  rules:\n  - alert: SoakIncident\n    expr: soak_incident > 0\n    for: {INCIDENT_FOR}s\n    annotations:\n      summary: 'incident {{{{ $labels.incident }}}}'")
    with open(os.path.join(d, "rules.yml"), "w") as f:
        f.write("groups:\n" + "\n".join(groups) + "\n")
    return len(rules) + 1, len(groups)


def get_json(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def proc_sample(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmRSS:"))
        return ticks / os.sysconf("SC_CLK_TCK"), rss
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def gaps_beyond(times, interval, downtime):
    """Slips: for successive times a, b not around a downtime, b - a - interval."""
    out = []
    for a, b in zip(times, times[1:]):
        if any(s - interval <= b and a <= e + interval for s, e in downtime):
            continue
        out.append(max(0.0, b - a - interval))
    return out


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--incident-targets", type=int, default=40)
    ap.add_argument("--restart-every", type=float, default=240)
    ap.add_argument("--fail-rate", type=float, default=0.1)
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "../../target/release/forewarn"))
    ap.add_argument("--json", help="also write the report as JSON to this file")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"error: {binary} is not built; run `cargo build --release` first")

    run_secs = a.minutes * 60
    work = tempfile.mkdtemp(prefix="forewarn-soak.")
    clock = Clock()
    period = max(INCIDENT_LEN + 120, int(run_secs / 4))
    schedule = Schedule(a.incident_targets, period, warmup=60)
    receipts = Receipts()
    tp, hp, sp, fp = free_port(), free_port(), free_port(), free_port()
    targets = Targets(tp, clock, schedule)
    hook = Webhook(hp, receipts, a.fail_rate, seed=1)
    for srv in (targets, hook):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    smtp = Controller(SmtpHandler(receipts, a.fail_rate, seed=2), hostname="127.0.0.1", port=sp)
    smtp.start()
    n_rules, n_groups = write_config(work, fp, tp, hp, sp, a.targets)
    print(f"soak: {a.targets} targets, {n_rules} rules in {n_groups} groups, {a.minutes:g} min, restart every {a.restart_every:g} s, "
          f"receivers fail {a.fail_rate:.0%}; work dir {work}", flush=True)

    log = open(os.path.join(work, "forewarn.log"), "ab")
    samples = []  # (t, cpu_s_total, rss)
    restarts = []  # dicts
    downtime = []  # (from, to) in clock seconds
    evals = collections.defaultdict(list)  # group -> [lastEvaluation as clock s]
    cpu_before = 0.0  # CPU of earlier processes

    def start():
        t = clock.now()
        p = subprocess.Popen([binary, "run", "--config", os.path.join(work, "forewarn.yml")], stdout=log, stderr=log)
        ready = None
        while clock.now() - t < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{fp}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        ready = clock.now() - t
                        break
            except OSError:
                pass
            if p.poll() is not None:
                sys.exit(f"error: forewarn exited with {p.returncode} at start; see {work}/forewarn.log")
            time.sleep(0.05)
        return p, t, ready

    proc, t_start, ready = start()
    restarts.append({"how": "first start", "ready_s": ready, "at": t_start})
    next_restart = a.restart_every
    how_next = "SIGTERM"
    last_sample = 0.0
    last_eval_poll = 0.0
    try:
        while clock.now() < run_secs:
            now = clock.now()
            if now - last_sample >= 5:
                s = proc_sample(proc.pid)
                if s:
                    samples.append((now, cpu_before + s[0], s[1]))
                last_sample = now
            if now - last_eval_poll >= 2:
                try:
                    for g in get_json(f"http://127.0.0.1:{fp}/api/v1/rules")["data"]["groups"]:
                        ts = [r.get("lastEvaluation") for r in g["rules"]]
                        last = max((x for x in ts if x and not x.startswith("0001")), default=None)
                        if last:
                            from datetime import datetime
                            e = datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp() - clock.t0
                            if not evals[g["name"]] or evals[g["name"]][-1] != e:
                                evals[g["name"]].append(e)
                except (OSError, ValueError, KeyError):
                    pass
                last_eval_poll = now
            if now >= next_restart:
                s = proc_sample(proc.pid)
                down_from = clock.now()
                if how_next == "SIGTERM":
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                else:
                    proc.kill()
                    proc.wait()
                stop_s = clock.now() - down_from
                if s:
                    cpu_before += s[0]
                proc, t_start, ready = start()
                first_scrape = None
                deadline = clock.now() + 60
                while clock.now() < deadline:
                    with targets.lock:
                        if any(v and v[-1] > t_start for v in targets.scrapes.values()):
                            first_scrape = clock.now() - t_start
                            break
                    time.sleep(0.05)
                downtime.append((down_from, t_start + (ready or 0)))
                restarts.append({"how": how_next, "stop_s": stop_s, "ready_s": ready, "first_scrape_s": first_scrape, "at": down_from})
                print(f"  {down_from / 60:5.1f} min: {how_next}: stopped in {stop_s:.2f} s, ready {ready:.2f} s after start, "
                      f"first scrape after {first_scrape if first_scrape is None else round(first_scrape, 2)} s", flush=True)
                how_next = "SIGKILL" if how_next == "SIGTERM" else "SIGTERM"
                next_restart += a.restart_every
            time.sleep(0.2)
        # Let the last notifications (and their retries) arrive.
        settle_until = clock.now() + 90
        while clock.now() < settle_until:
            s = proc_sample(proc.pid)
            if s:
                samples.append((clock.now(), cpu_before + s[0], s[1]))
            time.sleep(5)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{fp}/metrics", timeout=5) as r:
                own = r.read().decode()
        except OSError:
            own = ""
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        smtp.stop()
        targets.shutdown()
        hook.shutdown()

    # Judge incidents that ended at least 60 s before the run did (the
    # resolved notification has group_interval + retries to arrive).
    expected = schedule.expected(run_secs, settle=60)
    report = {"targets": a.targets, "rules": n_rules, "groups": n_groups, "minutes": a.minutes, "restarts": restarts}
    print("\nRSS and CPU over time (CPU = cores busy in the window):")
    print("  minute   RSS MiB   CPU cores")
    windows = []
    step = 300 if run_secs >= 1200 else 60
    for w in range(0, int(run_secs + 90), step):
        inside = [x for x in samples if w <= x[0] < w + step]
        if len(inside) < 2:
            continue
        cores = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])
        rss = max(x[2] for x in inside) / 2**20
        windows.append({"minute": w / 60, "rss_mib_max": round(rss, 1), "cpu_cores": round(cores, 3)})
        print(f"  {w / 60:6.1f}   {rss:7.1f}   {cores:9.3f}")
    report["windows"] = windows

    slips = []
    for i, ts in targets.scrapes.items():
        slips += gaps_beyond(ts, SCRAPE_INTERVAL, downtime)
    eslips = []
    for g, ts in evals.items():
        eslips += gaps_beyond(ts, EVAL_INTERVAL, downtime)
    report["scrape_slip_s"] = {"n": len(slips), "p50": pct(slips, 0.5), "p99": pct(slips, 0.99), "max": max(slips, default=float("nan"))}
    report["eval_slip_s"] = {"n": len(eslips), "p50": pct(eslips, 0.5), "p99": pct(eslips, 0.99), "max": max(eslips, default=float("nan"))}
    print(f"\nscrape slip beyond {SCRAPE_INTERVAL}s (outside restarts): {len(slips)} gaps, p50 {pct(slips, .5):.3f} s, "
          f"p99 {pct(slips, .99):.3f} s, max {max(slips, default=float('nan')):.3f} s")
    print(f"evaluation slip beyond {EVAL_INTERVAL}s (outside restarts, polled every 2 s): {len(eslips)} gaps, "
          f"p50 {pct(eslips, .5):.3f} s, p99 {pct(eslips, .99):.3f} s, max {max(eslips, default=float('nan')):.3f} s")

    print(f"\nnotifications: {len(expected)} incidents judged, each expected once firing and once resolved per receiver")
    report["notifications"] = {}
    for rcv in ("webhook", "email"):
        got = receipts.got[rcv]
        row = {}
        for status in ("firing", "resolved"):
            counts = [got.get(tok, {}).get(status, 0) for tok in expected]
            row[status] = {"expected": len(expected), "delivered": sum(1 for c in counts if c >= 1),
                           "lost": sum(1 for c in counts if c == 0), "duplicated": sum(c - 1 for c in counts if c > 1)}
        row["refused_by_receiver"] = receipts.refused[rcv]
        report["notifications"][rcv] = row
        print(f"  {rcv:8s} firing: {row['firing']['delivered']}/{len(expected)} delivered, {row['firing']['lost']} lost, "
              f"{row['firing']['duplicated']} duplicated; resolved: {row['resolved']['delivered']}/{len(expected)}, "
              f"{row['resolved']['lost']} lost, {row['resolved']['duplicated']} duplicated; "
              f"receiver refused {row['refused_by_receiver']} attempts")
    lost = [tok for tok in expected if receipts.got["webhook"].get(tok, {}).get("firing", 0) == 0]
    if lost:
        print(f"  webhook firing lost: {' '.join(lost[:20])}")
    print(f"  (other alerts to /noise: {receipts.noise} notifications)")

    print("\nrestarts:")
    for how in ("SIGTERM", "SIGKILL"):
        rs = [r for r in restarts if r["how"] == how]
        if not rs:
            continue
        ready = [r["ready_s"] for r in rs if r["ready_s"] is not None]
        first = [r["first_scrape_s"] for r in rs if r.get("first_scrape_s") is not None]
        stop = [r["stop_s"] for r in rs]
        print(f"  {how}: {len(rs)} times; stop took max {max(stop):.2f} s; ready after start mean {statistics.mean(ready):.2f} s, "
              f"max {max(ready):.2f} s; first scrape mean {statistics.mean(first) if first else float('nan'):.2f} s")
    for line in own.splitlines():
        if line.startswith(("forewarn_notifications_sent_total", "forewarn_notifications_failed_total",
                            "forewarn_notifications_retried_total", "forewarn_rule_evaluation_failures_total",
                            "forewarn_storage_write_failures_total")):
            print("  " + line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    print(f"\nwork dir (logs, state): {work}")


if __name__ == "__main__":
    main()
