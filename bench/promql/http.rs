//! The benchmark's HTTP side: one keep-alive client for both servers, and
//! the comparison of their query results (an answer that differs is not a
//! benchmark result, so it is checked before timing).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Client {
    pub fn new() -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        // Plain HTTP only, but reqwest wants a TLS provider chosen.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(600)).build().map_err(|e| e.to_string())?;
        Ok(Client { rt, http })
    }

    /// GET `base+path?params`; the body as JSON, or an error naming the server.
    pub fn get_json(&self, base: &str, path: &str, params: &[(&str, String)]) -> Result<Value, String> {
        self.rt.block_on(async {
            let r = self
                .http
                .get(format!("{base}{path}"))
                .query(params)
                .send()
                .await
                .map_err(|e| format!("{base}: {e}"))?;
            let status = r.status();
            let body = r.text().await.map_err(|e| format!("{base}: {e}"))?;
            if !status.is_success() {
                return Err(format!("{base}{path} {params:?}: {status}: {body}"));
            }
            serde_json::from_str(&body).map_err(|e| format!("{base}: {e}"))
        })
    }

    pub fn post(&self, base: &str, path: &str) -> Result<(), String> {
        self.rt.block_on(async {
            let r = self.http.post(format!("{base}{path}")).send().await.map_err(|e| format!("{base}: {e}"))?;
            r.error_for_status().map(drop).map_err(|e| format!("{base}{path}: {e}"))
        })
    }

    fn text(&self, url: &str) -> Option<String> {
        self.rt.block_on(async {
            let r = self.http.get(url).send().await.ok()?;
            if !r.status().is_success() {
                return None;
            }
            r.text().await.ok()
        })
    }

    /// Waits (up to 10 minutes: recovery of 100,000 series takes a while)
    /// for `/-/ready`.
    pub fn wait_ready(&self, base: &str) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(600) {
            if self.text(&format!("{base}/-/ready")).is_some() {
                eprintln!("{base} ready after {:.1?}", started.elapsed());
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("{base} not ready after 10 minutes"))
    }

    /// Reads Prometheus's own duration of the `bench` group's evaluations,
    /// one per new evaluation timestamp, until `n` are seen.
    pub fn rule_group_durations(&self, base: &str, n: usize) -> Result<Vec<f64>, String> {
        let started = Instant::now();
        let (mut seen, mut out) = (None, Vec::new());
        while out.len() < n {
            if started.elapsed() > Duration::from_secs(60 * n as u64 + 120) {
                return Err(format!("Prometheus evaluated the group only {} times", out.len()));
            }
            std::thread::sleep(Duration::from_millis(500));
            let Some(m) = self.text(&format!("{base}/metrics")) else { continue };
            let metric = |name: &str| {
                m.lines()
                    .find(|l| l.starts_with(name) && l.contains("bench"))
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|v| v.parse::<f64>().ok())
            };
            let (Some(at), Some(took)) = (
                metric("prometheus_rule_group_last_evaluation_timestamp_seconds"),
                metric("prometheus_rule_group_last_duration_seconds"),
            ) else {
                continue;
            };
            if at > 0.0 && seen != Some(at) {
                // The first evaluation after the reload is kept: it is as
                // cold as forewarn's first and both are medians anyway.
                seen = Some(at);
                out.push(took);
            }
        }
        Ok(out)
    }
}

/// Number of series or samples in a query answer.
pub fn result_len(v: &Value) -> usize {
    v["data"]["result"].as_array().map_or(0, |a| a.len())
}

/// Series of a matrix answer: labels (sorted) -> [(t, value)].
fn matrix(v: &Value) -> Result<BTreeMap<String, Vec<(f64, f64)>>, String> {
    let mut out = BTreeMap::new();
    for s in v["data"]["result"].as_array().ok_or("no result array")? {
        let labels: BTreeMap<String, Value> = serde_json::from_value(s["metric"].clone()).map_err(|e| e.to_string())?;
        let points = s["values"]
            .as_array()
            .ok_or("no values")?
            .iter()
            .map(|p| {
                let t = p[0].as_f64().unwrap_or(f64::NAN);
                let v = p[1].as_str().and_then(|x| x.parse::<f64>().ok()).unwrap_or(f64::NAN);
                (t, v)
            })
            .collect();
        out.insert(format!("{labels:?}"), points);
    }
    Ok(out)
}

/// Compares two range answers; Ok says how they agree, Err how they do not.
pub fn compare(a: &Value, b: &Value) -> Result<String, String> {
    let (a, b) = (matrix(a)?, matrix(b)?);
    if a.keys().ne(b.keys()) {
        return Err(format!(
            "series differ: forewarn {:?} vs Prometheus {:?}",
            a.keys().take(3).collect::<Vec<_>>(),
            b.keys().take(3).collect::<Vec<_>>()
        ));
    }
    let mut points = 0;
    for (k, pa) in &a {
        let pb = &b[k];
        if pa.len() != pb.len() {
            return Err(format!("{k}: {} points vs {}", pa.len(), pb.len()));
        }
        for (x, y) in pa.iter().zip(pb) {
            let close = (x.1 - y.1).abs() <= 1e-9 * x.1.abs().max(y.1.abs()) || (x.1.is_nan() && y.1.is_nan());
            if x.0 != y.0 || !close {
                return Err(format!("{k}: forewarn {x:?} vs Prometheus {y:?}"));
            }
        }
        points += pa.len();
    }
    Ok(format!("{} series, {points} points, equal", a.len()))
}
