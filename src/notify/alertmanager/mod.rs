//! The `alertmanager` receiver (forewarn extension): forwards a group's
//! alerts to one or more Alertmanagers through their `POST /api/v2/alerts`,
//! so forewarn can feed an existing Alertmanager (or an HA pair of them).
//!
//! Alertmanager resolves an alert whose `endsAt` has passed, so firing
//! alerts carry `endsAt = now + alert_ttl` and the dispatcher re-sends to
//! this kind of integration every `group_interval` (not only every
//! `repeat_interval`), the way Prometheus keeps re-sending while an alert
//! fires. A POST is idempotent on Alertmanager's side, so a retry re-posts
//! to every URL; delivery succeeds when all of them accepted.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::integration::{CheckError, Integration, SendContext, SendFuture};
use super::webhook::{redact_url, rfc3339, HttpConfig, Secret};
use super::{DeliveryError, Notification, Status};
use crate::duration::PromDuration;

/// One `alertmanager_configs` entry.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URLs, e.g. `http://127.0.0.1:9093`; `/api/v2/alerts` is appended.
    pub urls: Vec<Secret>,
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// How long a firing alert stays firing in Alertmanager without news.
    #[serde(default = "default_ttl")]
    pub alert_ttl: PromDuration,
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    /// `authorization`, `basic_auth`, `bearer_token` as for webhooks.
    #[serde(default)]
    pub http_config: HttpConfig,
}

fn yes() -> bool {
    true
}
fn default_ttl() -> PromDuration {
    PromDuration::from_secs(900)
}
fn default_timeout() -> PromDuration {
    PromDuration::from_secs(10)
}

/// Why an `alertmanager_configs` entry was refused; never repeats a URL
/// (it may hold a token).
#[derive(Debug, thiserror::Error)]
pub enum AlertmanagerConfigError {
    #[error("urls: at least one Alertmanager URL is needed")]
    NoUrls,
    #[error("urls[{index}]: {source}")]
    Url { index: usize, source: EndpointError },
    #[error("alert_ttl: must be greater than 0s")]
    ZeroTtl,
}

/// Why an Alertmanager URL is unusable.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The parser's message (it does not repeat the URL).
    #[error("not a URL ({0})")]
    Parse(String),
    #[error("needs http:// or https:// and a host")]
    NotHttp,
}

impl AlertmanagerConfig {
    /// Checks the URLs; the error names the entry and never repeats a URL.
    pub fn validate(&self) -> Result<(), AlertmanagerConfigError> {
        if self.urls.is_empty() {
            return Err(AlertmanagerConfigError::NoUrls);
        }
        for (index, u) in self.urls.iter().enumerate() {
            endpoint(u.expose()).map_err(|source| AlertmanagerConfigError::Url { index, source })?;
        }
        if self.alert_ttl.is_zero() {
            return Err(AlertmanagerConfigError::ZeroTtl);
        }
        Ok(())
    }
}

impl Integration for AlertmanagerConfig {
    fn kind(&self) -> &'static str {
        "alertmanager"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// Alertmanager resolves alerts it stops hearing about, so firing
    /// alerts are re-sent at least every `group_interval`.
    fn repeat_interval(&self, route_repeat: Duration, group_interval: Duration) -> Duration {
        route_repeat.min(group_interval)
    }

    fn check(&self) -> Result<(), CheckError> {
        Ok(self.validate()?)
    }

    fn send<'a>(&'a self, ctx: &'a SendContext, n: &'a Notification) -> SendFuture<'a> {
        // One sender per daemon: its client pools the connections.
        Box::pin(async move { ctx.shared::<AlertmanagerSender>().send(self, n).await })
    }
}

fn endpoint(base: &str) -> Result<reqwest::Url, EndpointError> {
    let u = reqwest::Url::parse(base.trim()).map_err(|e| EndpointError::Parse(e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err(EndpointError::NotHttp);
    }
    let path = u.path().trim_end_matches('/');
    let path = if path.ends_with("/api/v2/alerts") { path.to_string() } else { format!("{path}/api/v2/alerts") };
    let mut u = u;
    u.set_path(&path);
    Ok(u)
}

/// The `postableAlerts` body for `n` at `now`.
pub fn payload(n: &Notification, now: DateTime<Utc>, ttl: Duration) -> Value {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(15));
    let alerts: Vec<Value> = n
        .alerts
        .iter()
        .map(|a| {
            let ends = match (a.status, a.ends_at) {
                (Status::Resolved, Some(e)) => e,
                (Status::Resolved, None) => now,
                (Status::Firing, _) => now + ttl,
            };
            json!({
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(&a.starts_at),
                "endsAt": rfc3339(&ends),
                "generatorURL": a.generator_url,
            })
        })
        .collect();
    Value::Array(alerts)
}

/// Posts to Alertmanagers; clones share one connection pool.
#[derive(Clone, Debug)]
pub struct AlertmanagerSender {
    client: reqwest::Client,
}

impl Default for AlertmanagerSender {
    fn default() -> Self {
        // reqwest is built without a TLS provider and panics without one.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = reqwest::Client::builder()
            .user_agent(format!("forewarn/{}", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        AlertmanagerSender { client }
    }
}

impl AlertmanagerSender {
    /// Delivers `n` to every URL of `cfg`.
    pub async fn send(&self, cfg: &AlertmanagerConfig, n: &Notification) -> Result<(), DeliveryError> {
        let alerts: Vec<_> = if cfg.send_resolved { n.alerts.clone() } else { n.firing().cloned().collect() };
        if alerts.is_empty() {
            return Ok(());
        }
        let n = Notification { alerts, ..n.clone() };
        let body = payload(&n, Utc::now(), cfg.timeout.0.max(cfg.alert_ttl.0));
        let mut failures = Vec::new();
        let mut retry = false;
        for u in &cfg.urls {
            let url = endpoint(u.expose()).map_err(|e| DeliveryError::Permanent {
                receiver: n.receiver.clone(),
                message: format!("alertmanager: {e}"),
            })?;
            let shown = redact_url(&url);
            let mut req = self.client.post(url).json(&body);
            if !cfg.timeout.is_zero() {
                req = req.timeout(cfg.timeout.0);
            }
            let h = &cfg.http_config;
            if let Some(b) = &h.basic_auth {
                req = req.basic_auth(&b.username, b.password.as_ref().map(|p| p.expose().to_string()));
            } else if let Some(a) = &h.authorization {
                req = req.header(
                    "Authorization",
                    format!("{} {}", a.kind, a.credentials.as_ref().map_or("", |c| c.expose())),
                );
            } else if let Some(t) = &h.bearer_token {
                req = req.bearer_auth(t.expose());
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => {
                    tracing::debug!(receiver = %n.receiver, url = %shown, alerts = n.alerts.len(), "alertmanager accepted alerts");
                }
                Ok(r) => {
                    let s = r.status();
                    retry |= s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS;
                    failures.push(format!("{shown}: HTTP {s}"));
                }
                Err(e) => {
                    retry = true;
                    let what = if e.is_timeout() {
                        format!("no answer within {}", cfg.timeout)
                    } else {
                        "could not connect".into()
                    };
                    failures.push(format!("{shown}: {what}"));
                }
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        let message = format!("alertmanager: {}", failures.join("; "));
        Err(if retry {
            DeliveryError::Retryable { receiver: n.receiver.clone(), message }
        } else {
            DeliveryError::Permanent { receiver: n.receiver.clone(), message }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::notify::NotifiedAlert;
    use chrono::TimeZone;

    #[test]
    fn payload_is_postable_alerts() {
        let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        let a = |status, ends| NotifiedAlert {
            status,
            labels: Labels::from_pairs([("alertname", "DiskRunningFull"), ("dev", "sda1")]),
            annotations: Labels::from_pairs([("summary", "full")]),
            starts_at: t0,
            ends_at: ends,
            generator_url: "http://fw/x".into(),
            fingerprint: "1".into(),
            notes: None,
        };
        let n = Notification::new(
            "r",
            "g".into(),
            Labels::new(),
            vec![a(Status::Firing, None), a(Status::Resolved, Some(t0))],
            "",
        );
        let p = payload(&n, t0, Duration::from_secs(900));
        assert_eq!(p[0]["labels"], json!({"alertname": "DiskRunningFull", "dev": "sda1"}));
        assert_eq!(p[0]["annotations"], json!({"summary": "full"}));
        assert_eq!(p[0]["startsAt"], "2024-05-01T12:00:00Z");
        assert_eq!(p[0]["endsAt"], "2024-05-01T12:15:00Z");
        assert_eq!(p[1]["endsAt"], "2024-05-01T12:00:00Z");
        // Same keys as Alertmanager's own example of a POST body.
        let example: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/testdata/alertmanager/example_alerts_post_api_v2.json"
            ))
            .expect("../shared/testdata/alertmanager/example_alerts_post_api_v2.json"),
        )
        .unwrap();
        for k in example[0].as_object().unwrap().keys() {
            assert!(p[0].get(k).is_some(), "missing {k}");
        }
    }

    #[test]
    fn urls_are_checked_and_completed() {
        assert_eq!(endpoint("http://127.0.0.1:9093").unwrap().as_str(), "http://127.0.0.1:9093/api/v2/alerts");
        assert_eq!(endpoint("http://am/prefix/").unwrap().path(), "/prefix/api/v2/alerts");
        assert_eq!(endpoint("http://am/api/v2/alerts").unwrap().path(), "/api/v2/alerts");
        assert!(endpoint("ftp://am").is_err());
        let c: AlertmanagerConfig = crate::yaml::parse("a.yml", "urls: []\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().starts_with("urls"));
        assert!(c.check().unwrap_err().to_string().starts_with("urls"), "check() is validate()");
    }

    #[test]
    fn repeats_at_least_every_group_interval() {
        let c: AlertmanagerConfig = crate::yaml::parse("a.yml", "urls: ['http://am:9093']\n").unwrap();
        let (hour, minute) = (Duration::from_secs(3600), Duration::from_secs(60));
        assert_eq!(c.repeat_interval(hour, minute), minute, "Alertmanager must hear again before alert_ttl");
        assert_eq!(c.repeat_interval(Duration::from_secs(30), minute), Duration::from_secs(30));
        assert!(c.send_resolved() && !c.wants_chart() && c.check().is_ok());
    }
}
