//! The detection benchmark: does forewarn see trouble early, and only trouble?
//!
//! Each scenario is generated as OpenMetrics text with timestamps (the same
//! input `forewarn replay` reads) and replayed through the real rule engine
//! at simulated time. Incident scenarios report when forewarn's rule first
//! fired, relative to the incident's onset, beside a static threshold and
//! Prometheus's `predict_linear` on the same data; quiet scenarios report
//! false firings per simulated week.
//!
//! Run: `cargo bench --bench detection` (prints a table; `--json` for JSON);
//! `cargo bench --bench detection -- --real-data` scores the rule kinds on
//! real labelled series beside PromQL baselines (see [`real_data`]).

use std::fmt::Write as _;

#[path = "../support/noise.rs"]
mod noise;
use noise::Noise;

use forewarn::duration::PromDuration;
use forewarn::replay;
use forewarn::rules::{parse_rules, EvalContext};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;
/// 2026-01-05T00:00:00Z, a Monday: scenarios start at midnight.
const T0: i64 = 1_767_571_200_000;

/// Writes one series' samples into an OpenMetrics body.
struct Body(String);
impl Body {
    fn new() -> Self {
        Body(String::with_capacity(1 << 20))
    }
    fn family(&mut self, name: &str, kind: &str) {
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, series: &str, v: f64, t: i64) {
        let _ = writeln!(self.0, "{series} {v:.3} {}.{:03}", t / 1000, t % 1000);
    }
    fn finish(mut self) -> String {
        self.0.push_str("# EOF\n");
        self.0
    }
}

struct Outcome {
    name: &'static str,
    incident: bool,
    onset: i64,
    end: i64,
    /// (rule label, first firing) for the rules compared.
    firsts: Vec<(&'static str, Option<i64>)>,
    false_per_week: Vec<(&'static str, f64)>,
    note: String,
}

fn run(rules: &str, body: &str) -> replay::Report {
    let mut groups = parse_rules("bench.yml", rules, PromDuration::from_secs(60)).expect("bench rules are valid");
    let h = replay::load_openmetrics("bench.om", body.as_bytes()).expect("bench input is valid");
    let r = replay::run(&mut groups, &h.store, h.start, h.end, &EvalContext::default(), |_| {});
    if std::env::var_os("DETECTION_DEBUG").is_some() {
        for s in r.spans.iter().filter(|s| s.state == "firing") {
            eprintln!(
                "  {} firing from day {:.2} to {:?}",
                s.alertname,
                (s.from - T0) as f64 / DAY as f64,
                s.to.map(|t| (t - T0) as f64 / DAY as f64)
            );
        }
        for (rule, e) in &r.errors {
            eprintln!("  error in {rule}: {e}");
        }
    }
    r
}

const LEAK_RULES: &str = r#"
groups:
- name: leak
  interval: 1m
  rules:
  - alert: ForewarnTrend
    trend: { series: mem, over: 2h, rising: 10MiB/h, limit: 1GiB, within: 24h }
    for: 15m
  - alert: ForewarnTrend24h
    trend: { series: mem, over: 24h, rising: 10MiB/h, limit: 1GiB, within: 24h }
    for: 15m
  - alert: Static90
    expr: mem > 0.9 * 1073741824
    for: 5m
  - alert: PredictLinear
    expr: predict_linear(mem[1h], 4*3600) > 1073741824
    for: 5m
"#;

/// Memory with a GC sawtooth (40 MiB every 5 min) and noise around `base`.
fn memory(t: i64, base: f64, n: &mut Noise) -> f64 {
    let saw = ((t % (5 * MIN)) as f64 / (5 * MIN) as f64) * 40.0 * MIB;
    base + saw + n.next() * 4.0 * MIB
}

fn leak_linear() -> Outcome {
    let (onset, rate) = (T0 + DAY, 25.0 * MIB / 3600.0);
    let base = 300.0 * MIB;
    let end = onset + 30 * HOUR;
    let mut b = Body::new();
    b.family("mem", "gauge");
    let mut n = Noise(7);
    let mut t = T0;
    let mut at_detection = Vec::new();
    while t <= end {
        let v = (memory(t, base, &mut n) + (t - onset).max(0) as f64 / 1000.0 * rate).min(GIB * 1.02);
        b.sample("mem{job=\"svc\",instance=\"a\"}", v, t);
        at_detection.push((t, v));
        t += 30_000;
    }
    let r = run(LEAK_RULES, &b.finish());
    let first = r.first_firing("ForewarnTrend");
    let used = first.map(|f| ((f - onset) as f64 / 1000.0 * rate) / (GIB - base - 40.0 * MIB)).unwrap_or(f64::NAN);
    Outcome {
        name: "linear leak 25 MiB/h + GC sawtooth + noise, 1 GiB limit",
        incident: true,
        onset,
        end,
        firsts: vec![
            ("forewarn trend", first),
            ("forewarn trend over 24h", r.first_firing("ForewarnTrend24h")),
            ("static 90%", r.first_firing("Static90")),
            ("predict_linear 1h/4h", r.first_firing("PredictLinear")),
        ],
        false_per_week: vec![],
        note: format!("headroom used at detection: {:.0}% (goal < 25%)", used * 100.0),
    }
}

fn leak_with_restarts() -> Outcome {
    let (onset, rate) = (T0 + DAY, 60.0 * MIB / 3600.0);
    let base = 300.0 * MIB;
    let end = onset + 2 * DAY;
    let mut b = Body::new();
    let mut n = Noise(11);
    let mut mem = Vec::new();
    let mut start_time = Vec::new();
    let mut t = T0;
    while t <= end {
        // The process restarts every 4 h (memory back to base).
        let since_restart = if t >= onset { (t - onset) % (4 * HOUR) } else { t - T0 };
        let started = t - since_restart;
        let leaked = if t >= onset { since_restart as f64 / 1000.0 * rate } else { 0.0 };
        mem.push((t, memory(t, base, &mut n) + leaked));
        start_time.push((t, started as f64 / 1000.0));
        t += 30_000;
    }
    b.family("mem", "gauge");
    for (t, v) in &mem {
        b.sample("mem{job=\"svc\",instance=\"a\"}", *v, *t);
    }
    b.family("process_start_time_seconds", "gauge");
    for (t, v) in &start_time {
        b.sample("process_start_time_seconds{job=\"svc\",instance=\"a\"}", *v, *t);
    }
    let r = run(LEAK_RULES, &b.finish());
    Outcome {
        name: "leak 60 MiB/h, process restarts every 4 h",
        incident: true,
        onset,
        end,
        firsts: vec![
            ("forewarn trend", r.first_firing("ForewarnTrend")),
            ("forewarn trend over 24h", r.first_firing("ForewarnTrend24h")),
            ("static 90%", r.first_firing("Static90")),
            ("predict_linear 1h/4h", r.first_firing("PredictLinear")),
        ],
        false_per_week: vec![],
        note: "the limit is never reached: restarts hide the leak from static alerts".into(),
    }
}

/// The leak a deploy brings: two weeks of quiet memory (daily cycle,
/// sawtooth, spikes), then a deploy at 12:00 restarts the process and it
/// leaks 40 MiB/h toward 1 GiB. The restart cuts the trend window, so
/// `over: 24h` must fire on the evidence since the deploy, not wait half a day.
fn leak_after_deploy() -> Outcome {
    let deploy = T0 + 14 * DAY + 12 * HOUR;
    let rate = 40.0 * MIB / 3600.0;
    let end = deploy + 16 * HOUR;
    let mut n = Noise(29);
    let mut mem = Vec::new();
    let mut st = Vec::new();
    let mut t = T0;
    while t <= end {
        let phase = (t.rem_euclid(DAY)) as f64 / DAY as f64;
        let daily = 60.0 * MIB * (std::f64::consts::TAU * (phase - 0.3)).sin();
        let started = if t >= deploy { deploy } else { T0 };
        let leaked = (t - deploy).max(0) as f64 / 1000.0 * rate;
        mem.push((t, (memory(t, 400.0 * MIB, &mut n) + daily + leaked).min(GIB * 1.02)));
        st.push((t, started as f64 / 1000.0));
        t += 30_000;
    }
    let mut b = Body::new();
    b.family("mem", "gauge");
    for (t, v) in &mem {
        b.sample("mem{job=\"svc\",instance=\"a\"}", *v, *t);
    }
    b.family("process_start_time_seconds", "gauge");
    for (t, v) in &st {
        b.sample("process_start_time_seconds{job=\"svc\",instance=\"a\"}", *v, *t);
    }
    let r = run(LEAK_RULES, &b.finish());
    Outcome {
        name: "deploy at 12:00 starts a 40 MiB/h leak (restart cuts the window)",
        incident: true,
        onset: deploy,
        end,
        firsts: vec![
            ("forewarn trend over 24h", r.first_firing("ForewarnTrend24h")),
            ("forewarn trend", r.first_firing("ForewarnTrend")),
            ("static 90%", r.first_firing("Static90")),
            ("predict_linear 1h/4h", r.first_firing("PredictLinear")),
        ],
        false_per_week: vec![],
        note: "goal: over 24h fires within 3 h of the deploy".into(),
    }
}

const RATIO_RULES: &str = r#"
groups:
- name: ratio
  interval: 30s
  rules:
  - alert: ForewarnRatio
    ratio:
      of: sum by (service) (rate(events_out_total[5m]))
      to: sum by (service) (rate(events_in_total[5m]))
      expect: 0.5
      tolerance: 0.15
      min_denominator: 0.1
    for: 5m
  - alert: ForewarnRatioLearned
    ratio:
      of: sum by (service) (rate(events_out_total[5m]))
      to: sum by (service) (rate(events_in_total[5m]))
      baseline: 1d
    for: 10m
  - alert: Static09
    expr: sum by (service) (rate(events_out_total[5m])) / sum by (service) (rate(events_in_total[5m])) > 0.9
    for: 5m
"#;

/// Counters in and out; `ratio(t)` is the share passed, with noise.
fn ratio_body(start: i64, end: i64, seed: u64, ratio: impl Fn(i64) -> f64) -> String {
    let mut n = Noise(seed);
    let (mut cin, mut cout) = (0.0f64, 0.0f64);
    let mut rows_in = Vec::new();
    let mut rows_out = Vec::new();
    let mut t = start;
    while t <= end {
        let rate_in = 100.0 * (1.0 + 0.3 * n.next());
        let pass = (ratio(t) + 0.04 * n.next()).clamp(0.0, 1.0);
        cin += rate_in * 30.0;
        cout += rate_in * 30.0 * pass;
        rows_in.push((t, cin.round()));
        rows_out.push((t, cout.round()));
        t += 30_000;
    }
    let mut b = Body::new();
    b.family("events_in", "counter");
    for (t, v) in rows_in {
        b.sample("events_in_total{service=\"filter\"}", v, t);
    }
    b.family("events_out", "counter");
    for (t, v) in rows_out {
        b.sample("events_out_total{service=\"filter\"}", v, t);
    }
    b.finish()
}

fn fanout_jump() -> Outcome {
    let onset = T0 + DAY + 6 * HOUR;
    let end = onset + 4 * HOUR;
    let body = ratio_body(T0, end, 3, |t| if t >= onset { 1.0 } else { 0.5 });
    let r = run(RATIO_RULES, &body);
    Outcome {
        name: "fan-out: out/in jumps 0.5 -> 1.0",
        incident: true,
        onset,
        end,
        firsts: vec![
            ("forewarn ratio (fixed band)", r.first_firing("ForewarnRatio")),
            ("forewarn ratio (learned 1d)", r.first_firing("ForewarnRatioLearned")),
            ("static ratio > 0.9", r.first_firing("Static09")),
        ],
        false_per_week: vec![],
        note: "goal: within 10 min of onset".into(),
    }
}

fn ratio_drift() -> Outcome {
    let onset = T0 + DAY + 6 * HOUR;
    let end = onset + 14 * HOUR;
    let body = ratio_body(T0, end, 5, |t| 0.5 + 0.3 * ((t - onset).max(0) as f64 / (12 * HOUR) as f64).min(1.0));
    let r = run(RATIO_RULES, &body);
    Outcome {
        name: "slow drift: out/in 0.5 -> 0.8 over 12 h",
        incident: true,
        onset,
        end,
        firsts: vec![
            ("forewarn ratio (fixed band)", r.first_firing("ForewarnRatio")),
            ("forewarn ratio (learned 1d)", r.first_firing("ForewarnRatioLearned")),
            ("static ratio > 0.9", r.first_firing("Static09")),
        ],
        false_per_week: vec![],
        note: "the fixed band (0.65) is crossed 6 h after onset; a learned band may see it sooner".into(),
    }
}

const BACKLOG_RULES: &str = r#"
groups:
- name: backlog
  interval: 1m
  rules:
  - alert: ForewarnAnomaly
    anomaly: { series: backlog, baseline: 7d, seasonality: 1d, direction: up }
    for: 10m
  - alert: Static
    expr: backlog > 300
    for: 10m
"#;

/// A daily cycle (low at night, high at 14:00) with noise and a few spikes.
fn backlog(t: i64, n: &mut Noise) -> f64 {
    let phase = (t.rem_euclid(DAY)) as f64 / DAY as f64;
    let daily = 100.0 + 80.0 * (std::f64::consts::TAU * (phase - 0.333)).sin().max(-1.0);
    let spike = if n.next() > 0.998 { 60.0 } else { 0.0 };
    (daily + 6.0 * n.next() + spike).max(0.0)
}

fn backlog_anomaly() -> Outcome {
    // Day 9, 03:00 (the quiet hours): backlog +120 for an hour, still below
    // the daily peak, so a static threshold above the peak cannot see it.
    let onset = T0 + 9 * DAY + 3 * HOUR;
    let end = onset + 6 * HOUR;
    let mut n = Noise(13);
    let mut b = Body::new();
    b.family("backlog", "gauge");
    let mut t = T0;
    while t <= end {
        let extra = if (onset..onset + HOUR).contains(&t) { 120.0 } else { 0.0 };
        b.sample("backlog{queue=\"orders\"}", backlog(t, &mut n) + extra, t);
        t += 30_000;
    }
    let r = run(BACKLOG_RULES, &b.finish());
    Outcome {
        name: "daily-seasonal backlog, +120 for 1 h at 03:00",
        incident: true,
        onset,
        end,
        firsts: vec![
            ("forewarn anomaly (1d seasonality)", r.first_firing("ForewarnAnomaly")),
            ("static > 300", r.first_firing("Static")),
        ],
        false_per_week: vec![],
        note: String::new(),
    }
}

fn per_week(r: &replay::Report, alert: &str, from: i64, to: i64) -> f64 {
    r.firings_between(alert, from, to) as f64 / ((to - from) as f64 / (7 * DAY) as f64)
}

fn quiet_memory() -> Outcome {
    // 30 days: a daily traffic cycle of +-120 MiB, GC sawtooth, noise,
    // single-sample spikes, and a deploy (restart) every 3 days at 10:00.
    let end = T0 + 30 * DAY;
    let mut n = Noise(17);
    let mut b = Body::new();
    let mut mem = Vec::new();
    let mut st = Vec::new();
    let mut t = T0;
    while t <= end {
        let phase = (t.rem_euclid(DAY)) as f64 / DAY as f64;
        let daily = 120.0 * MIB * (std::f64::consts::TAU * (phase - 0.3)).sin();
        let spike = if n.next() > 0.999 { 300.0 * MIB } else { 0.0 };
        let started = T0 + 10 * HOUR + ((t - T0 - 10 * HOUR).max(0) / (3 * DAY)) * 3 * DAY;
        mem.push((t, memory(t, 400.0 * MIB, &mut n) + daily + spike));
        st.push((t, started as f64 / 1000.0));
        t += 30_000;
    }
    b.family("mem", "gauge");
    for (t, v) in &mem {
        b.sample("mem{job=\"svc\",instance=\"a\"}", *v, *t);
    }
    b.family("process_start_time_seconds", "gauge");
    for (t, v) in &st {
        b.sample("process_start_time_seconds{job=\"svc\",instance=\"a\"}", *v, *t);
    }
    let r = run(LEAK_RULES, &b.finish());
    Outcome {
        name: "quiet month: memory with daily cycle, sawtooth, spikes, restarts",
        incident: false,
        onset: T0,
        end,
        firsts: vec![],
        false_per_week: vec![
            ("forewarn trend", per_week(&r, "ForewarnTrend", T0, end)),
            ("forewarn trend over 24h", per_week(&r, "ForewarnTrend24h", T0, end)),
            ("static 90%", per_week(&r, "Static90", T0, end)),
            ("predict_linear 1h/4h", per_week(&r, "PredictLinear", T0, end)),
        ],
        note: String::new(),
    }
}

fn quiet_ratio() -> Outcome {
    let end = T0 + 30 * DAY;
    let body = ratio_body(T0, end, 19, |_| 0.5);
    let r = run(RATIO_RULES, &body);
    Outcome {
        name: "quiet month: out/in 0.5 with noise",
        incident: false,
        onset: T0,
        end,
        firsts: vec![],
        false_per_week: vec![
            ("forewarn ratio (fixed band)", per_week(&r, "ForewarnRatio", T0, end)),
            ("forewarn ratio (learned 1d)", per_week(&r, "ForewarnRatioLearned", T0, end)),
            ("static ratio > 0.9", per_week(&r, "Static09", T0, end)),
        ],
        note: String::new(),
    }
}

fn quiet_backlog() -> Outcome {
    let end = T0 + 30 * DAY;
    let mut n = Noise(23);
    let mut b = Body::new();
    b.family("backlog", "gauge");
    let mut t = T0;
    while t <= end {
        b.sample("backlog{queue=\"orders\"}", backlog(t, &mut n), t);
        t += 30_000;
    }
    let r = run(BACKLOG_RULES, &b.finish());
    Outcome {
        name: "quiet month: daily-seasonal backlog with noise and spikes",
        incident: false,
        onset: T0,
        end,
        firsts: vec![],
        false_per_week: vec![
            ("forewarn anomaly (1d seasonality)", per_week(&r, "ForewarnAnomaly", T0, end)),
            ("static > 300", per_week(&r, "Static", T0, end)),
        ],
        note: String::new(),
    }
}

fn minutes(d: i64) -> String {
    let m = d as f64 / MIN as f64;
    if m.abs() >= 120.0 {
        format!("{:+.1} h", m / 60.0)
    } else {
        format!("{m:+.0} min")
    }
}

/// `--real-data`: the development data through `forewarn replay`, scored by
/// `../shared/tools/nab_score.py` exactly as detection is judged, beside the
/// PromQL baselines of `nab_baseline.py` in the same run: NAB's development
/// folders (tuned on) and the public operations KPIs in
/// `bench/detection/real-data-extra.tgz` (not tuned on; see its README).
fn real_data() {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let tools = format!("{manifest}/../shared/tools");
    let bin = env!("CARGO_BIN_EXE_forewarn");
    let extra = std::env::temp_dir().join(format!("forewarn-real-data-{}", std::process::id()));
    let unpacked = std::fs::create_dir_all(&extra).is_ok()
        && std::process::Command::new("tar")
            .args(["xzf", &format!("{manifest}/bench/detection/real-data-extra.tgz"), "-C"])
            .arg(&extra)
            .status()
            .is_ok_and(|s| s.success());
    let mut sets = vec![(
        "NAB development folders (tuned on)".to_string(),
        format!("{manifest}/../shared/testdata/nab-dev"),
        "realTraffic,realAdExchange,realTweets,artificialNoAnomaly".to_string(),
    )];
    if unpacked {
        sets.push((
            "public operations KPIs (not tuned on)".to_string(),
            extra.join("extra").display().to_string(),
            "realMsCloudMonitoring,realAIOpsKPI".to_string(),
        ));
    } else {
        eprintln!("could not unpack bench/detection/real-data-extra.tgz (is tar installed?)");
    }
    for (title, root, dirs) in sets {
        println!("\n## {title}: {root}\n");
        let run = |args: &[&str]| match std::process::Command::new("python3").args(args).output() {
            Ok(o) => {
                print!("{}", String::from_utf8_lossy(&o.stdout));
                if !o.status.success() {
                    eprint!("{}", String::from_utf8_lossy(&o.stderr));
                }
            }
            Err(e) => eprintln!("python3 {}: {e}", args.join(" ")),
        };
        run(&[&format!("{tools}/nab_baseline.py"), &root, "--dirs", &dirs]);
        println!();
        run(&[
            &format!("{tools}/nab_score.py"),
            bin,
            &root,
            "--dirs",
            &dirs,
            "--variant",
            "anomaly-1d",
            "--variant",
            "anomaly-7d-seasonal",
        ]);
    }
    let _ = std::fs::remove_dir_all(&extra);
}

fn main() {
    if std::env::args().any(|a| a == "--real-data") {
        real_data();
        return;
    }
    let json = std::env::args().any(|a| a == "--json");
    let started = std::time::Instant::now();
    type Scenario = (&'static str, fn() -> Outcome);
    let scenarios: Vec<Scenario> = vec![
        ("leak_linear", leak_linear),
        ("leak_with_restarts", leak_with_restarts),
        ("leak_after_deploy", leak_after_deploy),
        ("fanout_jump", fanout_jump),
        ("ratio_drift", ratio_drift),
        ("backlog_anomaly", backlog_anomaly),
        ("quiet_memory", quiet_memory),
        ("quiet_ratio", quiet_ratio),
        ("quiet_backlog", quiet_backlog),
    ];
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let mut out = Vec::new();
    for (name, s) in scenarios {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let t = std::time::Instant::now();
        let o = s();
        eprintln!("{} ({:.1}s)", o.name, t.elapsed().as_secs_f64());
        out.push(o);
    }
    if json {
        let v: Vec<serde_json::Value> = out
            .iter()
            .map(|o| {
                serde_json::json!({
                    "scenario": o.name, "incident": o.incident,
                    "first_firing_after_onset_s": o.firsts.iter().map(|(n, f)| (n.to_string(), f.map(|f| (f - o.onset) / 1000))).collect::<std::collections::BTreeMap<_, _>>(),
                    "false_firings_per_week": o.false_per_week.iter().map(|(n, f)| (n.to_string(), *f)).collect::<std::collections::BTreeMap<_, _>>(),
                    "note": o.note,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    println!("\n## detection benchmark (simulated time; `cargo bench --bench detection`)\n");
    println!("| scenario | rule | result |\n| --- | --- | --- |");
    for o in &out {
        for (rule, first) in &o.firsts {
            let res = match first {
                Some(f) => format!("fired {} after onset", minutes(f - o.onset)),
                None => format!("did not fire in {}", minutes(o.end - o.onset)),
            };
            println!("| {} | {} | {} |", o.name, rule, res);
        }
        for (rule, fpw) in &o.false_per_week {
            println!("| {} | {} | {:.2} false firings / week |", o.name, rule, fpw);
        }
        if !o.note.is_empty() {
            println!("| {} | | {} |", o.name, o.note);
        }
    }
    println!("\n(total {:.1}s)", started.elapsed().as_secs_f64());
}
