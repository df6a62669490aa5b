//! Differential test: forewarn and Debian's Prometheus (`/usr/bin/prometheus`)
//! scrape the same target on 127.0.0.1, then answer the same `/api/v1/query`
//! expressions at the same timestamp; results must have the same type, the
//! same label sets, and values equal within float tolerance.
//!
//! The target's values are constant, so the two scrapers' different scrape
//! instants cannot change any answer. Needs Debian's `prometheus` at
//! /usr/bin/prometheus (`.ci/run` installs it); it fails, not skips, without.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, serve, start_prometheus, temp_dir, Daemon, Proc};

const BODY: &str = "# TYPE http_requests_total counter\n\
http_requests_total{code=\"200\",method=\"get\"} 1027\n\
http_requests_total{code=\"500\",method=\"get\"} 3\n\
http_requests_total{code=\"200\",method=\"post\"} 250\n\
http_requests_total{code=\"404\",method=\"post\"} 12\n\
# TYPE temperature_celsius gauge\n\
temperature_celsius{room=\"lab\"} 21.5\n\
temperature_celsius{room=\"hall\"} -3.25\n\
# TYPE latency_seconds histogram\n\
latency_seconds_bucket{le=\"0.1\"} 40\n\
latency_seconds_bucket{le=\"0.5\"} 90\n\
latency_seconds_bucket{le=\"1\"} 97\n\
latency_seconds_bucket{le=\"+Inf\"} 100\n\
latency_seconds_sum 31.5\n\
latency_seconds_count 100\n";

/// Expressions whose answers do not depend on when each engine scraped.
const EXPRS: &[&str] = &[
    "http_requests_total",
    "up",
    "sum(http_requests_total)",
    "sum by (code) (http_requests_total)",
    "avg without (instance) (http_requests_total)",
    "max(http_requests_total) - min(http_requests_total)",
    "count by (method) (http_requests_total)",
    "group by (method) (http_requests_total)",
    "topk(2, http_requests_total)",
    "bottomk(1, http_requests_total)",
    "quantile(0.9, http_requests_total)",
    "stddev(http_requests_total)",
    "stdvar by (method) (http_requests_total)",
    "count_values(\"v\", temperature_celsius)",
    "http_requests_total / ignoring(code) group_left sum without (code) (http_requests_total)",
    "http_requests_total{code=\"500\"} / on(method, job, instance) http_requests_total{code=\"200\"}",
    "http_requests_total > 20",
    "http_requests_total > bool 20",
    "http_requests_total and on(code) http_requests_total{code=\"200\"}",
    "http_requests_total unless http_requests_total{code=\"200\"}",
    "temperature_celsius or http_requests_total",
    "-http_requests_total % 7",
    "2 ^ temperature_celsius / 1e6",
    "histogram_quantile(0.9, sum by (le) (latency_seconds_bucket))",
    "histogram_quantile(0.5, latency_seconds_bucket)",
    "latency_seconds_sum / latency_seconds_count",
    "rate(http_requests_total[1m])",
    "sum by (code) (increase(http_requests_total[5m]))",
    "delta(temperature_celsius[1m])",
    "deriv(temperature_celsius[1m])",
    "predict_linear(temperature_celsius[1m], 3600)",
    "changes(temperature_celsius[1m])",
    "resets(http_requests_total[1m])",
    "avg_over_time(temperature_celsius[1m])",
    "max_over_time(temperature_celsius[1m])",
    "quantile_over_time(0.5, temperature_celsius[1m])",
    "abs(temperature_celsius)",
    "round(temperature_celsius)",
    "ceil(temperature_celsius) - floor(temperature_celsius)",
    "clamp(temperature_celsius, 0, 20)",
    "clamp_min(temperature_celsius, 0)",
    "ln(http_requests_total)",
    "log2(http_requests_total) + log10(http_requests_total)",
    "exp(temperature_celsius / 10)",
    "sqrt(http_requests_total)",
    "sgn(temperature_celsius)",
    "label_replace(temperature_celsius, \"where\", \"in-$1\", \"room\", \"(.*)\")",
    "label_join(http_requests_total, \"cm\", \":\", \"code\", \"method\")",
    "absent(nonexistent_metric{job=\"x\"})",
    "absent(temperature_celsius)",
    "scalar(sum(http_requests_total)) * 2",
    "vector(1) + 1",
    "sort_desc(http_requests_total)",
    "sum(http_requests_total) by (method) / on(method) group_left count(http_requests_total) by (method)",
    "time() - time()",
    "1 + 2 * 3 ^ 2",
];

async fn start_target() -> String {
    let app = Router::new().route("/metrics", get(|| async { BODY }));
    serve(app).await
}

fn start_forewarn(dir: &std::path::Path, target: &str) -> (Proc, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = format!(
        "global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}\n\
         scrape_configs:\n  - job_name: app\n    static_configs: [ {{ targets: [\"{target}\"] }} ]\n\
         route: {{ receiver: team }}\nreceivers: [ {{ name: team }} ]\n\
         storage: {{ path: \"{}\" }}\nhttp: {{ listen: \"{listen}\" }}\n\
         self_monitoring: {{ enabled: false }}\n",
        dir.join("forewarn-data").display()
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    let p = Daemon::on(&path).quiet().start();
    (p, format!("http://{listen}"))
}

async fn query(client: &reqwest::Client, base: &str, expr: &str, t: f64) -> Option<Value> {
    let r = client.get(format!("{base}/api/v1/query")).query(&[("query", expr), ("time", &t.to_string())]);
    r.send().await.ok()?.json().await.ok()
}

/// Waits until `base` answers `temperature_celsius` at time `t`.
async fn wait_data(client: &reqwest::Client, base: &str, t: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = query(client, base, "temperature_celsius", t).await {
            if v["data"]["result"].as_array().is_some_and(|a| a.len() == 2) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{base} has no data at {t} after 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn num(v: &Value) -> f64 {
    match v.as_str() {
        Some("+Inf") => f64::INFINITY,
        Some("-Inf") => f64::NEG_INFINITY,
        Some(s) => s.parse().unwrap_or_else(|_| panic!("not a number: {v}")),
        None => panic!("not a string: {v}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// A result as label set (JSON text of the sorted map) -> value.
fn by_labels(data: &Value) -> BTreeMap<String, f64> {
    match data["resultType"].as_str() {
        Some("scalar") => BTreeMap::from([("scalar".into(), num(&data["result"][1]))]),
        Some("vector") => data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels: BTreeMap<String, String> = serde_json::from_value(s["metric"].clone()).unwrap();
                (serde_json::to_string(&labels).unwrap(), num(&s["value"][1]))
            })
            .collect(),
        other => panic!("unexpected result type {other:?}: {data}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forewarn_answers_like_prometheus() {
    let dir = temp_dir("promql-diff");
    let target = start_target().await;
    let (_fw, fw) = start_forewarn(&dir, &target);
    let (_prom, prom) = start_prometheus(&dir, &target);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let t0 = (now() * 1000.0).round() / 1000.0;
    // Both must have scraped before t0 ... then a few more scrapes for ranges.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = now();
        let fw_ok = query(&client, &fw, "temperature_celsius", t)
            .await
            .is_some_and(|v| v["data"]["result"].as_array().is_some_and(|a| a.len() == 2));
        let prom_ok = query(&client, &prom, "temperature_celsius", t)
            .await
            .is_some_and(|v| v["data"]["result"].as_array().is_some_and(|a| a.len() == 2));
        if fw_ok && prom_ok {
            break;
        }
        assert!(Instant::now() < deadline, "no data after 30 s (forewarn: {fw_ok}, prometheus: {prom_ok}); t0 {t0}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let t = ((now() - 0.5) * 1000.0).round() / 1000.0;
    wait_data(&client, &fw, t).await;
    wait_data(&client, &prom, t).await;

    let mut diffs = Vec::new();
    for expr in EXPRS {
        let (a, b) = (query(&client, &fw, expr, t).await.unwrap(), query(&client, &prom, expr, t).await.unwrap());
        if a["status"] != "success" || b["status"] != "success" {
            diffs.push(format!("{expr}: forewarn {a}, prometheus {b}"));
            continue;
        }
        let (ta, tb) = (&a["data"]["resultType"], &b["data"]["resultType"]);
        if ta != tb {
            diffs.push(format!("{expr}: result type {ta} vs {tb}"));
            continue;
        }
        let (ra, rb) = (by_labels(&a["data"]), by_labels(&b["data"]));
        let same = ra.len() == rb.len() && ra.iter().all(|(k, v)| rb.get(k).is_some_and(|w| close(*v, *w)));
        if !same {
            diffs.push(format!("{expr}:\n  forewarn   {ra:?}\n  prometheus {rb:?}"));
        }
    }
    println!("{} expressions compared at t={t}, {} differ", EXPRS.len(), diffs.len());
    assert!(diffs.is_empty(), "{} of {} expressions differ:\n{}", diffs.len(), EXPRS.len(), diffs.join("\n"));
}
