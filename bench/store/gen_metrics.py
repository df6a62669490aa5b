"""One synthetic scrape target's body for the bench/store scripts.

    python3 bench/store/gen_metrics.py DIR SERIES

Rewrites DIR/metrics every second with SERIES counter series
(`bench_metric{kind="k<i%10>",id="<i>"}`), two in three of them moving,
so values change between scrapes; `python3 -m http.server` in DIR serves it.
"""
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
