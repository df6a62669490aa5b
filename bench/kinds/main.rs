//! What the rule kinds cost to evaluate: for each of `trend`, `ratio` (with
//! a learned 7 d baseline) and `anomaly` (7 d baseline, daily seasonality),
//! a group of 1,000 rules over 10,000 series (10 per rule, as rules written
//! per service are), on 7 days of history at a 1-minute scrape.
//!
//! Reports, per kind: the first evaluation (cold: the whole baseline is
//! read), the steady-state evaluation (the group evaluated every minute with
//! a new sample per series in between, as in the daemon), its cost per
//! series, and the share of a 1-minute interval it takes on one core (issue
//! #15's goal: at most 10 %). `PromQL` is the baseline measured in the same
//! run: the same 1,000 rules written as plain PromQL over the same series
//! (`avg_over_time(x[2h]) > y` style), which reads as much raw data per
//! evaluation as a 2 h window.
//!
//! Run: `cargo bench --bench kinds` (about 2 minutes; needs ~3 GB of RAM).
//! `KINDS_SERIES_PER_RULE=1` makes it a quick 1,000-series check.

use std::time::Instant;

#[path = "../support/noise.rs"]
mod noise;
use noise::Noise;

use forewarn::duration::PromDuration;
use forewarn::labels::Labels;
use forewarn::rules::{parse_rules, EvalContext};
use forewarn::store::Store;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const RULES: usize = 1_000;
/// 2026-01-05T00:00:00Z.
const T0: i64 = 1_767_571_200_000;
const HISTORY: i64 = 7 * DAY + HOUR;
const STEADY_EVALS: usize = 10;

fn labels(name: &str, rule: usize, instance: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", name),
        ("service", &format!("svc{rule}")),
        ("instance", &format!("host{instance}:9100")),
    ])
}

/// The series every group reads: `mem` (a daily cycle plus noise), and the
/// counters `events_in_total` / `events_out_total` (out about half of in).
fn fill(store: &Store, per_rule: usize, from: i64, to: i64, noise: &mut Noise) {
    let mut app = store.appender();
    for r in 0..RULES {
        for i in 0..per_rule {
            let (mem, ein, eout) =
                (labels("mem", r, i), labels("events_in_total", r, i), labels("events_out_total", r, i));
            let mut refs = [app.series_ref(&mem), app.series_ref(&ein), app.series_ref(&eout)];
            let (mut cin, mut cout) = (0.0f64, 0.0f64);
            let mut t = from;
            while t <= to {
                let phase = (t % DAY) as f64 / DAY as f64;
                let daily = (std::f64::consts::TAU * phase).sin();
                app.append_live(&mut refs[0], t, 5e8 + 1e8 * daily + 1e6 * noise.next());
                let rate = 100.0 + 40.0 * daily + 5.0 * noise.next();
                cin += rate * 60.0;
                cout += rate * 60.0 * (0.5 + 0.02 * noise.next());
                app.append_live(&mut refs[1], t, cin.round());
                app.append_live(&mut refs[2], t, cout.round());
                t += MIN;
            }
        }
        if r % 50 == 49 {
            app.commit();
        }
    }
    app.commit();
}

/// One minute more of samples for every series, at `t`.
fn tick(store: &Store, per_rule: usize, t: i64, noise: &mut Noise, counters: &mut Vec<(f64, f64)>) {
    let mut app = store.appender();
    let mut k = 0;
    for r in 0..RULES {
        for i in 0..per_rule {
            let phase = (t % DAY) as f64 / DAY as f64;
            let daily = (std::f64::consts::TAU * phase).sin();
            app.append(&labels("mem", r, i), t, 5e8 + 1e8 * daily + 1e6 * noise.next());
            if counters.len() <= k {
                counters.push((1e9, 5e8));
            }
            let rate = 100.0 + 40.0 * daily;
            counters[k].0 += rate * 60.0;
            counters[k].1 += rate * 30.0;
            app.append(&labels("events_in_total", r, i), t, counters[k].0);
            app.append(&labels("events_out_total", r, i), t, counters[k].1);
            k += 1;
        }
    }
    app.commit();
}

fn rules(kind: &str) -> String {
    let mut y = String::from("groups:\n  - name: bench\n    interval: 1m\n    rules:\n");
    for r in 0..RULES {
        let sel = format!("service=\"svc{r}\"");
        let body = match kind {
            "trend" => format!(
                "        trend:\n          series: mem{{{sel}}}\n          over: 2h\n          rising: 50MiB/h\n          limit: 2GiB\n          within: 12h\n"
            ),
            "ratio" => format!(
                "        ratio:\n          of: sum by (instance) (rate(events_out_total{{{sel}}}[5m]))\n          to: sum by (instance) (rate(events_in_total{{{sel}}}[5m]))\n          baseline: 7d\n"
            ),
            "anomaly" => format!(
                "        anomaly:\n          series: mem{{{sel}}}\n          baseline: 7d\n          seasonality: 1d\n          direction: both\n"
            ),
            _ => format!("        expr: avg_over_time(mem{{{sel}}}[2h]) > 1.5 * avg_over_time(mem{{{sel}}}[1d] offset 1d)\n"),
        };
        y.push_str(&format!("      - alert: Bench{r}\n{body}"));
    }
    y
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<f64>().ok()))
        .map_or(f64::NAN, |pages| pages * 4096.0 / 1e6)
}

fn main() {
    let per_rule: usize = std::env::var("KINDS_SERIES_PER_RULE").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let series = RULES * per_rule;
    let store = Store::new(8 * DAY);
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    fill(&store, per_rule, T0, T0 + HISTORY, &mut noise);
    eprintln!(
        "history: {} series x 3 metrics x 7d at 1m written in {:.1}s, RSS {:.0} MB",
        series,
        started.elapsed().as_secs_f64(),
        rss_mb()
    );
    println!("| kind | series | first evaluation | steady evaluation | per series | share of a 1m interval |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut counters = Vec::new();
    let mut now = T0 + HISTORY;
    for kind in ["promql", "trend", "ratio", "anomaly"] {
        let mut groups = parse_rules("bench.yml", &rules(kind), PromDuration::from_secs(60))
            .unwrap_or_else(|e| panic!("bench rules do not load: {e:?}"));
        let g = &mut groups[0];
        let ctx = EvalContext::default();
        let t = Instant::now();
        let first = g.eval(&store, now, &ctx);
        let cold = t.elapsed().as_secs_f64();
        if let Some(e) = first.errors.iter().flatten().next() {
            panic!("{kind}: {e}");
        }
        let mut steady = 0.0;
        for _ in 0..STEADY_EVALS {
            now += MIN;
            tick(&store, per_rule, now, &mut noise, &mut counters);
            let t = Instant::now();
            let out = g.eval(&store, now, &ctx);
            steady += t.elapsed().as_secs_f64();
            if let Some(e) = out.errors.iter().flatten().next() {
                panic!("{kind}: {e}");
            }
        }
        let steady = steady / STEADY_EVALS as f64;
        println!(
            "| {kind} | {series} | {cold:.2} s | {steady:.3} s | {:.1} us | {:.2} % |",
            steady * 1e6 / series as f64,
            steady / 60.0 * 100.0,
        );
    }
}
