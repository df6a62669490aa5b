//! One target: its identity, its limits, and one scrape of it.
//!
//! A scrape is all-or-nothing, as in Prometheus: a body that is too big,
//! unparsable or over `sample_limit` fails the whole scrape, `up` becomes 0,
//! the error is kept for `/api/v1/targets`, and the series of the last good
//! scrape are marked stale so that queries stop returning them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use std::sync::Arc;

use serde::Serialize;

use super::client::JobClient;
use super::discovery::Discovery;
use super::parse::{self, Format};
use super::relabel::{self, Relabel};
use crate::config::ScrapeConfig;
use crate::labels::{Labels, METRIC_NAME};
use crate::store::{stale_nan, SeriesRef, Store};

/// Bodies larger than this fail unless `body_size_limit` says otherwise.
pub const DEFAULT_BODY_LIMIT: u64 = 64 * 1024 * 1024;

/// A scrape target, as resolved from config (see `discovery`).
#[derive(Clone, Debug)]
pub struct Target {
    pub job: String,
    pub url: String,
    /// `job`, `instance` and any static labels; added to every sample.
    pub labels: Labels,
    /// The labels before `relabel_configs` (with `__address__` etc.).
    pub discovered_labels: Labels,
    pub interval: Duration,
    pub timeout: Duration,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub body_size_limit: u64,
    pub sample_limit: usize,
    pub label_limit: usize,
    pub label_name_length_limit: usize,
    pub label_value_length_limit: usize,
    /// `metric_relabel_configs`, shared by the job's targets.
    pub metric_relabel: Arc<Vec<Relabel>>,
    /// TLS client, auth header, or why the job cannot be scraped.
    pub client: JobClient,
    /// Fingerprint of the job's config: a changed job restarts its targets.
    pub config_fp: u64,
}

impl Target {
    /// Every static target of a scrape config (file-SD targets come from
    /// `discovery::Discovery`, which the manager runs).
    pub fn from_config(sc: &ScrapeConfig, global: &crate::config::GlobalConfig) -> Vec<Target> {
        let mut sc = sc.clone();
        sc.file_sd_configs.clear();
        Discovery::new(std::slice::from_ref(&sc), global).targets()
    }
}

/// What `/api/v1/targets` shows of a target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TargetHealth {
    /// "up", "down" or "unknown" (not scraped yet).
    pub health: &'static str,
    pub last_error: String,
    pub last_scrape_ms: i64,
    pub last_scrape_duration_s: f64,
    pub samples: usize,
}

/// The state a target keeps between scrapes.
#[derive(Default)]
pub struct ScrapeState {
    /// The series of the last good scrape by label fingerprint: store
    /// handles, not label copies, so a target costs ~16 bytes per series.
    last_series: HashMap<u64, SeriesRef>,
    /// Sees every good scrape's samples to record deploys and restarts.
    pub detector: Option<std::sync::Arc<crate::deploys::Detector>>,
    /// Whether `last_series` was seeded from the store (first scrape of
    /// this process): see [`Store::last_scrape_series`].
    seeded: bool,
}

/// Series older than this are invisible to queries anyway (the lookback
/// delta), so a restart longer than it needs no staleness markers.
const SEED_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: body exceeds body_size_limit of {limit} bytes (raise body_size_limit or reduce what the target exposes)")]
    BodyTooLarge { url: String, limit: u64 },
    #[error("{url}: {source}")]
    Parse { url: String, source: parse::ParseError },
    #[error("{url}: {count} samples exceed sample_limit of {limit}; the whole scrape is rejected")]
    SampleLimit { url: String, count: usize, limit: usize },
    #[error("{url}: {message}")]
    LabelLimit { url: String, message: String },
}

/// Fetches the body, honouring timeout and size limit.
async fn fetch(client: &reqwest::Client, t: &Target) -> Result<(Vec<u8>, Format), ScrapeError> {
    let http = |message: String| ScrapeError::Http { url: t.url.clone(), message };
    if let Some(e) = &t.client.setup_error {
        return Err(http(e.clone()));
    }
    let client = t.client.client.as_ref().unwrap_or(client);
    let timeout_s = t.timeout.as_secs_f64();
    let fut = async {
        let mut req = client
            .get(&t.url)
            .header(reqwest::header::ACCEPT, parse::ACCEPT_HEADER)
            .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{timeout_s}"));
        if let Some(auth) = &t.client.auth {
            // Read now, not at config load: secret files get rotated.
            req = req.header(reqwest::header::AUTHORIZATION, auth.header().await.map_err(http)?);
        }
        let mut resp = req.send().await.map_err(|e| http(describe_reqwest(&e)))?;
        if !resp.status().is_success() {
            let hint = match resp.status().as_u16() {
                401 | 403 => " (check basic_auth / authorization)",
                404 => " (check metrics_path)",
                _ => "",
            };
            return Err(http(format!("server returned HTTP status {}{hint}", resp.status())));
        }
        let format = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(Format::from_content_type)
            .unwrap_or(Format::Prometheus);
        if resp.content_length().is_some_and(|l| l > t.body_size_limit) {
            return Err(ScrapeError::BodyTooLarge { url: t.url.clone(), limit: t.body_size_limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| http(describe_reqwest(&e)))? {
            if body.len() as u64 + chunk.len() as u64 > t.body_size_limit {
                return Err(ScrapeError::BodyTooLarge { url: t.url.clone(), limit: t.body_size_limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, format))
    };
    // The whole exchange, trickling bodies included, must fit in the timeout.
    match tokio::time::timeout(t.timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(http(format!(
            "scrape timed out after {timeout_s}s (raise scrape_timeout, up to scrape_interval, or make the target answer faster)"
        ))),
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    // Say what to do next.
    let hint = if msg.contains("certificate") {
        " (set tls_config.ca_file to the CA that signed it, or tls_config.insecure_skip_verify: true)"
    } else if msg.contains("refused") {
        " (is the target running and listening on this host:port?)"
    } else if e.is_redirect() {
        " (the target redirects in a loop or more than 10 times; point metrics_path at the final URL)"
    } else if e.is_connect() {
        " (check the address, DNS and network path to the target)"
    } else {
        ""
    };
    msg.push_str(hint);
    msg
}

/// A labelled sample: labels, timestamp (ms), value.
type Sample = (Labels, i64, f64);

/// Turns a parsed body into labelled samples, applying target labels and limits.
/// Also returns how many samples the body held before metric relabeling.
fn to_samples(t: &Target, body: &[u8], format: Format, now: i64) -> Result<(Vec<Sample>, usize), ScrapeError> {
    let mut out = Vec::new();
    let mut scraped = 0usize;
    let mut limit_err: Option<String> = None;
    // Lenient OpenMetrics, as Prometheus scrapes: real client libraries emit
    // bodies the strict spec rejects (`forewarn check metrics` stays strict).
    let opts = parse::ParseOptions { strict_openmetrics: false };
    let res = parse::parse_with(body, format, opts, |s| {
        if limit_err.is_some() {
            return;
        }
        scraped += 1;
        let mut labels = Labels::from_pairs(s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        labels.set(METRIC_NAME.into(), s.name.to_string());
        for (k, v) in t.labels.iter() {
            match labels.get(k) {
                Some(_) if t.honor_labels => {}
                Some(existing) => {
                    let existing = existing.to_string();
                    labels.set(format!("exported_{k}"), existing);
                    labels.set(k.to_string(), v.to_string());
                }
                None => labels.set(k.to_string(), v.to_string()),
            }
        }
        let labels = if t.metric_relabel.is_empty() {
            labels
        } else {
            match relabel::process(labels, &t.metric_relabel) {
                Some(l) if l.name().is_some() => l,
                _ => return,
            }
        };
        if t.label_limit > 0 && labels.len() - 1 > t.label_limit {
            limit_err =
                Some(format!("series {labels} has {} labels, over label_limit {}", labels.len() - 1, t.label_limit));
        }
        for (k, v) in labels.iter() {
            if t.label_name_length_limit > 0 && k.len() > t.label_name_length_limit {
                limit_err = Some(format!(
                    "label name {k:?} is longer than label_name_length_limit {}",
                    t.label_name_length_limit
                ));
            }
            if t.label_value_length_limit > 0 && v.len() > t.label_value_length_limit {
                limit_err = Some(format!(
                    "label {k} value is longer than label_value_length_limit {}",
                    t.label_value_length_limit
                ));
            }
        }
        let ts = match s.timestamp_ms {
            Some(ts) if t.honor_timestamps => ts,
            _ => now,
        };
        out.push((labels, ts, s.value));
    });
    res.map_err(|e| ScrapeError::Parse { url: t.url.clone(), source: e })?;
    if let Some(message) = limit_err {
        return Err(ScrapeError::LabelLimit { url: t.url.clone(), message });
    }
    if t.sample_limit > 0 && out.len() > t.sample_limit {
        return Err(ScrapeError::SampleLimit { url: t.url.clone(), count: out.len(), limit: t.sample_limit });
    }
    Ok((out, scraped))
}

/// Scrapes the target once at `now` (ms), writes samples and the synthetic
/// series into the store, and returns the target's new health.
pub async fn scrape_once(
    client: &reqwest::Client,
    t: &Target,
    store: &Store,
    state: &mut ScrapeState,
    now: i64,
) -> TargetHealth {
    if !state.seeded {
        // After a restart: a series the target dropped while the daemon was
        // down must end now, as it would have had the daemon been running.
        state.seeded = true;
        if state.last_series.is_empty() {
            state.last_series = store.last_scrape_series(&t.labels, now - SEED_LOOKBACK_MS).into_iter().collect();
        }
    }
    let started = Instant::now();
    let result = match fetch(client, t).await {
        Ok((body, format)) => to_samples(t, &body, format, now),
        Err(e) => Err(e),
    };
    let duration = started.elapsed().as_secs_f64();
    let synthetic = |name: &str| {
        let mut l = t.labels.clone();
        l.set(METRIC_NAME.into(), name.into());
        l
    };
    // One batch per scrape: a single WAL record for all its samples.
    let mut store = store.appender();
    let (up, scraped, kept, added, error) = match result {
        Ok((samples, scraped)) => {
            if let Some(d) = &state.detector {
                d.observe(&samples, now);
            }
            let mut series = HashMap::with_capacity(samples.len());
            let mut added = 0;
            for (labels, ts, v) in samples {
                let fp = labels.fingerprint();
                if series.contains_key(&fp) {
                    continue; // duplicate series in one body: first one wins
                }
                if state.last_series.remove(&fp).is_none() {
                    added += 1;
                }
                series.insert(fp, store.append_ref(&labels, ts, v));
            }
            // What is left of the last scrape is gone from this one.
            for gone in state.last_series.values() {
                store.append_to(gone, now, stale_nan());
            }
            let n = series.len();
            state.last_series = series;
            (1.0, scraped, n, added, None)
        }
        Err(e) => {
            for (_, gone) in state.last_series.drain() {
                store.append_to(&gone, now, stale_nan());
            }
            (0.0, 0, 0, 0, Some(e.to_string()))
        }
    };
    store.append(&synthetic("up"), now, up);
    store.append(&synthetic("scrape_duration_seconds"), now, duration);
    store.append(&synthetic("scrape_samples_scraped"), now, scraped as f64);
    store.append(&synthetic("scrape_samples_post_metric_relabeling"), now, kept as f64);
    store.append(&synthetic("scrape_series_added"), now, added as f64);
    store.commit();
    metrics::counter!("forewarn_scrapes_total", "job" => t.job.clone()).increment(1);
    metrics::histogram!("forewarn_scrape_duration_seconds", "job" => t.job.clone()).record(duration);
    if let Some(e) = &error {
        metrics::counter!("forewarn_scrape_failures_total", "job" => t.job.clone()).increment(1);
        tracing::warn!(target = %t.url, job = %t.job, error = %e, "scrape failed");
    }
    TargetHealth {
        health: if error.is_none() { "up" } else { "down" },
        last_error: error.unwrap_or_default(),
        last_scrape_ms: now,
        last_scrape_duration_s: duration,
        samples: kept,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::{header, HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    use super::*;

    /// A rotated credentials file is used at the very next scrape, and a
    /// missing one fails the scrape naming the file — against a real server
    /// on 127.0.0.1 that accepts only the current token.
    #[tokio::test]
    async fn credentials_file_is_reread_at_every_scrape() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = std::env::temp_dir().join(format!("forewarn-rotate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let token_file = dir.join("token");
        std::fs::write(&token_file, "tok-1\n").expect("write token");

        let current = Arc::new(Mutex::new(String::from("Bearer tok-1")));
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let (cur, log) = (current.clone(), seen.clone());
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move |h: HeaderMap| {
                let (cur, log) = (cur.clone(), log.clone());
                async move {
                    let got = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    log.lock().expect("log").push(got.clone());
                    if got == *cur.lock().expect("token") {
                        "up_metric 1\n".into_response()
                    } else {
                        StatusCode::UNAUTHORIZED.into_response()
                    }
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(l, app).await });

        let yaml = format!(
            "job_name: j\nstatic_configs: [{{targets: ['{addr}']}}]\nauthorization: {{credentials_file: '{}'}}\n",
            token_file.display()
        );
        let sc: ScrapeConfig = serde_saphyr::from_str(&yaml).expect("yaml");
        let t = Target::from_config(&sc, &crate::config::GlobalConfig::default()).remove(0);
        let client = reqwest::Client::new();

        let (body, _) = fetch(&client, &t).await.expect("first scrape with tok-1");
        assert_eq!(body, b"up_metric 1\n");
        // Rotate the secret on both sides; no reload of the target.
        std::fs::write(&token_file, "tok-2\n").expect("rotate token");
        *current.lock().expect("token") = "Bearer tok-2".into();
        fetch(&client, &t).await.expect("second scrape uses the rotated tok-2");
        assert_eq!(*seen.lock().expect("log"), ["Bearer tok-1", "Bearer tok-2"]);

        std::fs::remove_file(&token_file).expect("remove token");
        let err = fetch(&client, &t).await.expect_err("missing file fails the scrape").to_string();
        assert!(err.contains(&token_file.display().to_string()) && err.contains("credentials_file"), "{err}");
        assert_eq!(seen.lock().expect("log").len(), 2, "no request is sent without the secret");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A series the target dropped while the daemon was down ends at the
    /// first scrape after the restart (a fresh `ScrapeState` on a store that
    /// still holds the last scrape), as it would have with no restart; a
    /// recording rule's series with the same labels is left alone.
    #[tokio::test]
    async fn series_gone_during_a_restart_end_at_the_first_scrape() {
        use crate::store::Queryable;
        let body = Arc::new(Mutex::new(String::from("kept 1\ngone{x=\"1\"} 1\n")));
        let b = body.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let b = b.clone();
                async move { b.lock().expect("body").clone() }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(l, app).await });
        let sc: ScrapeConfig =
            serde_saphyr::from_str(&format!("job_name: j\nstatic_configs: [{{targets: ['{addr}']}}]\n")).expect("yaml");
        let t = Target::from_config(&sc, &crate::config::GlobalConfig::default()).remove(0);
        let client = reqwest::Client::new();
        let store = Store::new(i64::MAX);
        let mut before = ScrapeState::default();
        scrape_once(&client, &t, &store, &mut before, 10_000).await;
        // A recording rule output carrying the target's labels, written later.
        let mut rec = t.labels.clone();
        rec.set(METRIC_NAME.into(), "job:kept:sum".into());
        store.append(&rec, 12_000, 1.0);

        // "Restart": the old state is gone; the target no longer has `gone`.
        drop(before);
        *body.lock().expect("body") = "kept 2\n".into();
        let mut after = ScrapeState::default();
        scrape_once(&client, &t, &store, &mut after, 40_000).await;

        let last = |name: &str| {
            let m = [crate::labels::Matcher::equal(METRIC_NAME, name)];
            store.select(&m, 0, i64::MAX).into_iter().next().and_then(|s| s.samples.last().copied())
        };
        let gone = last("gone").expect("gone series");
        assert_eq!(gone.t, 40_000);
        assert!(crate::store::is_stale(gone.v), "the vanished series ends at the first scrape after the restart");
        assert_eq!(last("kept").map(|s| (s.t, s.v)), Some((40_000, 2.0)));
        let r = last("job:kept:sum").expect("recorded series");
        assert_eq!((r.t, r.v), (12_000, 1.0), "a series the scrape did not write is not ended");

        // A restart longer than the lookback delta finds nothing to end.
        let mut late = ScrapeState::default();
        *body.lock().expect("body") = "other 1\n".into();
        scrape_once(&client, &t, &store, &mut late, 40_000 + SEED_LOOKBACK_MS + 20_000).await;
        let kept = last("kept").expect("kept");
        assert_eq!(kept.t, 40_000, "no marker after the lookback delta: the series is invisible already");
    }
}
