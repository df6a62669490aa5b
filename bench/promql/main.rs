//! PromQL evaluation benchmark: forewarn against Debian's Prometheus, same
//! data, same machine, same run.
//!
//! 1. Writes the data set (`data.rs`: 100,000 series, 15 s samples from 70
//!    minutes before the evaluation time T to 30 minutes after it) as one
//!    OpenMetrics file. Prometheus gets it through `promtool tsdb
//!    create-blocks-from openmetrics`; forewarn through
//!    `forewarn::replay::load_openmetrics`, copied into a durable store that
//!    the `forewarn run` daemon recovers at start. Both then run as their own
//!    processes on 127.0.0.1 and are asked over HTTP by this one client, in
//!    turn (forewarn, Prometheus, forewarn, ...), so drift from other load on
//!    the machine hits both.
//! 2. Range queries over the hour before T through `/api/v1/query_range`;
//!    their results are compared value by value before anything is timed.
//! 3. The 1,000 rule expressions (`rules.rs`) through `/api/v1/query` at T,
//!    one request after another: the time of the whole pass.
//! 4. Each engine's own rule evaluation of the same group: forewarn's
//!    `RuleGroup::eval` at T in this process; Prometheus's
//!    `prometheus_rule_group_last_duration_seconds` after it evaluates the
//!    group (loaded by a config reload) at wall-clock time, which the data's
//!    30 future minutes cover.
//!
//! Run: `cargo bench --bench promql` (env: `PROMQL_BENCH_INSTANCES`, default
//! 1000 = 100,000 series; `PROMQL_BENCH_RUNS`, default 5). Needs
//! /usr/bin/prometheus and /usr/bin/promtool. Prints a Markdown table.

mod data;
mod http;
mod rules;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use forewarn::duration::PromDuration;
use forewarn::rules::{parse_rules, EvalContext};
use forewarn::{Matcher, Queryable, Store};

const MIN: i64 = 60_000;

/// Kills a daemon when the benchmark ends, however it ends.
struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if let Err(e) = run() {
        eprintln!("promql bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let instances = env_or("PROMQL_BENCH_INSTANCES", 1000);
    let runs = env_or("PROMQL_BENCH_RUNS", 5).max(1);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("promql-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let now = chrono::Utc::now().timestamp_millis();
    let t = now - now.rem_euclid(MIN);
    let span = data::Span { end_ms: t + 30 * MIN, steps: (100 * MIN / data::STEP_MS) as usize + 1 };
    let file = dir.join("data.om");
    let started = Instant::now();
    let (series, samples) = {
        let f = std::fs::File::create(&file).map_err(|e| e.to_string())?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        data::write(&mut w, instances, &span).map_err(|e| e.to_string())?
    };
    eprintln!("data: {series} series, {samples} samples in {:.1?}", started.elapsed());

    // promtool and forewarn's load run at the same time (each mostly on
    // one core); neither is timed against the other.
    let started = Instant::now();
    let prom_data = dir.join("prometheus");
    let mut promtool = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(&prom_data)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("promtool: {e}"))?;
    let bytes = std::fs::read(&file).map_err(|e| e.to_string())?;
    let history = forewarn::replay::load_openmetrics("data.om", &bytes).map_err(|e| e.to_string())?;
    drop(bytes);
    let fw_data = dir.join("forewarn");
    copy_to_durable(&history.store, &fw_data.join("samples"))?;
    eprintln!("forewarn load: {} samples in {:.1?}", history.samples, started.elapsed());
    let status = promtool.wait().map_err(|e| format!("promtool: {e}"))?;
    if !status.success() {
        return Err(format!("promtool create-blocks-from openmetrics failed: {status}"));
    }
    eprintln!("promtool backfill done after {:.1?}", started.elapsed());
    let _ = std::fs::remove_file(&file);

    let (prom_port, fw_port) = (free_port(), free_port());
    let prom_cfg = dir.join("prometheus.yml");
    std::fs::write(&prom_cfg, prometheus_config(None)).map_err(|e| e.to_string())?;
    let _prom = Daemon(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!("--storage.tsdb.path={}", prom_data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .args(["--storage.tsdb.retention.time=30d", "--web.enable-lifecycle", "--log.level=warn"])
            .stderr(std::fs::File::create(dir.join("prometheus.log")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("prometheus: {e}"))?,
    );
    let fw_cfg = dir.join("forewarn.yml");
    let fw_yaml = format!(
        "storage:\n  path: {}\n  retention: 30d\n  snapshot_interval: 1d\nhttp:\n  listen: 127.0.0.1:{fw_port}\n",
        fw_data.display()
    );
    std::fs::write(&fw_cfg, fw_yaml).map_err(|e| e.to_string())?;
    let _fw = Daemon(
        Command::new(env!("CARGO_BIN_EXE_forewarn"))
            .arg("run")
            .arg("--config")
            .arg(&fw_cfg)
            .stderr(std::fs::File::create(dir.join("forewarn.log")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("forewarn: {e}"))?,
    );
    let client = http::Client::new()?;
    let prom = format!("http://127.0.0.1:{prom_port}");
    let fw = format!("http://127.0.0.1:{fw_port}");
    client.wait_ready(&prom)?;
    client.wait_ready(&fw)?;

    let mut table = Vec::new();
    let range_queries = [
        ("sum by (job) (rate(http_requests_total[5m]))", 15),
        ("histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))", 60),
        (
            r#"sum by (instance) (rate(http_requests_total{job="job-3",code=~"5.."}[5m])) / sum by (instance) (rate(http_requests_total{job="job-3"}[5m]))"#,
            15,
        ),
    ];
    for (q, step) in range_queries {
        let params = [
            ("query", q.to_string()),
            ("start", format!("{}", (t - 60 * MIN) / 1000)),
            ("end", format!("{}", t / 1000)),
            ("step", format!("{step}")),
        ];
        let a = client.get_json(&fw, "/api/v1/query_range", &params)?;
        let b = client.get_json(&prom, "/api/v1/query_range", &params)?;
        let agree = http::compare(&a, &b)?;
        let (f, p) = time_pair(
            runs,
            || client.get_json(&fw, "/api/v1/query_range", &params).map(drop),
            || client.get_json(&prom, "/api/v1/query_range", &params).map(drop),
        )?;
        table.push((format!("range query `{q}`, 1 h, step {step}s ({agree})"), f, p));
    }

    let exprs = rules::expressions();
    let mut results = (0usize, 0usize);
    for (_, _, e) in &exprs {
        let params = [("query", e.clone()), ("time", format!("{}", t / 1000))];
        let a = client.get_json(&fw, "/api/v1/query", &params)?;
        let b = client.get_json(&prom, "/api/v1/query", &params)?;
        let (na, nb) = (http::result_len(&a), http::result_len(&b));
        if na != nb {
            eprintln!("result series differ ({na} forewarn, {nb} Prometheus): {e}");
        }
        results.0 += na;
        results.1 += nb;
    }
    let pass = |base: &str| -> Result<(), String> {
        for (_, _, e) in &exprs {
            let params = [("query", e.clone()), ("time", format!("{}", t / 1000))];
            client.get_json(base, "/api/v1/query", &params)?;
        }
        Ok(())
    };
    let (f, p) = time_pair(runs, || pass(&fw), || pass(&prom))?;
    table.push((
        format!(
            "{} rule expressions via /api/v1/query at T, sequential (result series: forewarn {}, Prometheus {})",
            exprs.len(),
            results.0,
            results.1
        ),
        f,
        p,
    ));

    // Each engine's own rule evaluation.
    let text = rules::rule_file("15s");
    let mut groups = parse_rules("bench.yml", &text, PromDuration::from_secs(15))
        .map_err(|e| format!("forewarn rejects the rule file: {e:?}"))?;
    let ctx = EvalContext::default();
    let mut fw_group = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let out = groups[0].eval(&history.store, t, &ctx);
        fw_group.push(started.elapsed().as_secs_f64());
        if let Some(e) = out.errors.iter().flatten().next() {
            return Err(format!("forewarn rule error: {e}"));
        }
    }
    let rules_file = dir.join("bench.rules.yml");
    std::fs::write(&rules_file, &text).map_err(|e| e.to_string())?;
    std::fs::write(&prom_cfg, prometheus_config(Some(&rules_file))).map_err(|e| e.to_string())?;
    client.post(&prom, "/-/reload")?;
    let prom_group = client.rule_group_durations(&prom, runs)?;
    let late = (chrono::Utc::now().timestamp_millis() - t) / 1000;
    eprintln!("Prometheus rule evaluations ended {late} s after T (data reaches T + 1800 s)");
    table.push((
        format!("rule group of {} rules, each engine's own evaluation", exprs.len()),
        median(fw_group),
        median(prom_group),
    ));

    println!("{instances} instances, {series} series, {samples} samples; median of {runs} runs\n");
    println!("| measure | forewarn | Prometheus | ratio forewarn/Prometheus |");
    println!("| --- | --- | --- | --- |");
    for (name, f, p) in table {
        println!("| {name} | {:.3} s | {:.3} s | {:.2} |", f, p, f / p);
    }
    Ok(())
}

/// Times `a` and `b` alternately, `runs` times each after one warm-up of
/// each; returns their medians in seconds.
fn time_pair(
    runs: usize,
    mut a: impl FnMut() -> Result<(), String>,
    mut b: impl FnMut() -> Result<(), String>,
) -> Result<(f64, f64), String> {
    a()?;
    b()?;
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let s = Instant::now();
        a()?;
        ta.push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        b()?;
        tb.push(s.elapsed().as_secs_f64());
    }
    Ok((median(ta), median(tb)))
}

/// Prometheus's config: no scrapes; the rule file only for the last phase.
/// The out-of-order window lets rule results be written behind the
/// backfilled blocks, which reach 30 minutes into the future.
fn prometheus_config(rules: Option<&Path>) -> String {
    let mut c =
        String::from("global:\n  evaluation_interval: 15s\nstorage:\n  tsdb:\n    out_of_order_time_window: 2h\n");
    if let Some(r) = rules {
        c.push_str(&format!("rule_files:\n  - {}\n", r.display()));
    }
    c
}

/// Writes every series of `from` into a durable store at `dir`, which the
/// daemon recovers at start.
fn copy_to_durable(from: &Store, dir: &Path) -> Result<(), String> {
    let (to, _) = Store::open(dir, 30 * 24 * 60 * MIN).map_err(|e| e.to_string())?;
    let all = Matcher::regex(forewarn::labels::METRIC_NAME.to_string(), ".+", false).map_err(|e| e.to_string())?;
    for s in from.select(&[all], i64::MIN / 4, i64::MAX / 4) {
        let mut a = to.appender();
        for x in &s.samples {
            a.append(&s.labels, x.t, x.v);
        }
        a.commit();
    }
    to.flush_wal().map_err(|e| e.to_string())?;
    to.checkpoint().map_err(|e| e.to_string())?;
    Ok(())
}
