//! The benchmark's rule group: 20 shapes of rule that recur in real rule
//! files (error ratios, latency quantiles, CPU, disk and memory headroom,
//! saturation, absence), each for 10 jobs and 5 windows: 1,000 rules, every
//! one selecting one job's series, as rules written per service do.

use super::data::JOBS;

const WINDOWS: [&str; 5] = ["1m", "2m", "5m", "10m", "15m"];

/// (kind, expression with `{j}` for the job and `{w}` for the window).
const SHAPES: [(&str, &str); 20] = [
    (
        "alert",
        r#"sum by (instance) (rate(http_requests_total{job="{j}",code=~"5.."}[{w}])) / sum by (instance) (rate(http_requests_total{job="{j}"}[{w}])) > 0.05"#,
    ),
    (
        "alert",
        r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="{j}"}[{w}]))) > 0.5"#,
    ),
    (
        "alert",
        r#"histogram_quantile(0.9, sum by (instance, le) (rate(http_request_duration_seconds_bucket{job="{j}",method="GET"}[{w}]))) > 1"#,
    ),
    ("alert", r#"100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{job="{j}",mode="idle"}[{w}]))) > 80"#),
    ("alert", r#"node_filesystem_avail_bytes{job="{j}"} / node_filesystem_size_bytes{job="{j}"} < 0.1"#),
    ("alert", r#"node_memory_MemAvailable_bytes{job="{j}"} / node_memory_MemTotal_bytes{job="{j}"} * 100 < 10"#),
    ("alert", r#"up{job="{j}"} == 0"#),
    ("alert", r#"process_open_fds{job="{j}"} / process_max_fds{job="{j}"} > 0.9"#),
    ("alert", r#"rate(process_cpu_seconds_total{job="{j}"}[{w}]) > 0.9"#),
    ("record", r#"sum by (job, code) (rate(http_requests_total{job="{j}"}[{w}]))"#),
    ("alert", r#"avg_over_time(go_goroutines{job="{j}"}[{w}]) > 1200"#),
    ("alert", r#"increase(http_requests_total{job="{j}",code="500"}[{w}]) > 60"#),
    (
        "alert",
        r#"node_load1{job="{j}"} > on (instance) group_left count by (instance) (node_cpu_seconds_total{job="{j}",mode="idle"}) * 1.9"#,
    ),
    ("alert", r#"max_over_time(process_resident_memory_bytes{job="{j}"}[{w}]) > 3e8"#),
    (
        "alert",
        r#"sum(rate(http_request_duration_seconds_sum{job="{j}"}[{w}])) / sum(rate(http_request_duration_seconds_count{job="{j}"}[{w}])) > 0.14"#,
    ),
    ("alert", r#"predict_linear(node_filesystem_avail_bytes{job="{j}"}[{w}], 4 * 3600) < 0"#),
    ("record", r#"topk(5, sum by (instance) (rate(http_requests_total{job="{j}"}[{w}])))"#),
    ("alert", r#"deriv(process_resident_memory_bytes{job="{j}"}[{w}]) > 1e4"#),
    ("alert", r#"absent(up{job="{j}",instance="missing"})"#),
    ("record", r#"count by (code) (rate(http_requests_total{job="{j}"}[{w}]) > 0)"#),
];

/// The 1,000 expressions, in rule order.
pub fn expressions() -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    for (w, window) in WINDOWS.iter().enumerate() {
        for j in 0..JOBS {
            for (s, (kind, shape)) in SHAPES.iter().enumerate() {
                let expr = shape.replace("{j}", &super::data::job(j)).replace("{w}", window);
                out.push((format!("bench_{s}_{j}_{w}"), *kind, expr));
            }
        }
    }
    out
}

/// The rule file (Prometheus format) holding them as one group.
pub fn rule_file(interval: &str) -> String {
    let mut y = format!("groups:\n  - name: bench\n    interval: {interval}\n    rules:\n");
    for (name, kind, expr) in expressions() {
        let expr = expr.replace('\'', "''");
        if kind == "record" {
            y.push_str(&format!("      - record: {name}\n        expr: '{expr}'\n"));
        } else {
            y.push_str(&format!("      - alert: {name}\n        expr: '{expr}'\n        for: 5m\n"));
        }
    }
    y
}
