//! `alerting.alertmanagers` (Prometheus's keys): every firing and recently
//! resolved alert of every rule evaluation goes to every listed
//! Alertmanager's `POST /api/v2/alerts`, beside (not through) forewarn's
//! own routing tree. This is how two identical forewarn replicas feed an
//! Alertmanager cluster, which deduplicates: both replicas post the same
//! label sets, and the cluster's gossiped notification log sends one page.
//!
//! As in Prometheus, a firing alert is re-sent every `resend_delay` (1m)
//! with `endsAt` = now + 4 × max(resend_delay, group interval), so an
//! Alertmanager resolves it by itself if every replica goes silent; a
//! resolved alert is sent with its resolve time for 15 minutes. Labels are
//! the alert's own (never `global.external_labels`, so replicas agree)
//! after `alerting.alert_relabel_configs`. A failed POST is logged and
//! counted; the next evaluation sends again.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::alerts::{Alert, AlertState};
use crate::duration::PromDuration;
use crate::http_client::Auth;
use crate::http_client::{Authorization, BasicAuth, TlsConfig};
use crate::rules::manager::AlertBatch;
use crate::scrape::relabel::{self, Relabel, RelabelConfig};

/// The `alerting` section.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerSetConfig>,
    /// Applied to each alert's labels before it is sent (a drop sends nothing).
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// How often a still-firing alert is sent again (Prometheus's
    /// `--rules.alert.resend-delay`).
    #[serde(default = "default_resend_delay")]
    pub resend_delay: PromDuration,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            alertmanagers: Vec::new(),
            alert_relabel_configs: Vec::new(),
            resend_delay: default_resend_delay(),
        }
    }
}

/// One `alertmanagers` entry: targets sharing scheme, path and auth.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerSetConfig {
    #[serde(default)]
    pub static_configs: Vec<StaticTargets>,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default)]
    pub path_prefix: String,
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub tls_config: Option<TlsConfig>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticTargets {
    pub targets: Vec<String>,
}

fn default_resend_delay() -> PromDuration {
    PromDuration::from_secs(60)
}
fn default_scheme() -> String {
    "http".into()
}
fn default_timeout() -> PromDuration {
    PromDuration::from_secs(10)
}
fn default_api_version() -> String {
    "v2".into()
}

/// Why the `alerting` section was refused, or its Alertmanagers cannot be
/// posted to; the message names the key (the caller adds `alerting.`).
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error("alert_relabel_configs{0}")]
    Relabel(#[from] crate::scrape::relabel::CompileError),
    #[error("resend_delay: must be greater than 0s")]
    ZeroResendDelay,
    #[error("alertmanagers[{index}].api_version {version:?}: only v2 is supported (Alertmanager 0.16+)")]
    ApiVersion { index: usize, version: String },
    #[error("alertmanagers[{index}].scheme must be http or https, not {scheme:?}")]
    Scheme { index: usize, scheme: String },
    #[error("alertmanagers[{index}]: {source}")]
    Auth { index: usize, source: crate::http_client::AuthError },
    #[error(
        "alertmanagers[{index}].static_configs: target {target:?} must be host:port (the path goes in path_prefix)"
    )]
    Target { index: usize, target: String },
    /// The HTTP client of an Alertmanager (its `tls_config`).
    #[error(transparent)]
    Client(#[from] crate::http_client::ClientError),
    /// [`AlertmanagerNotifier::new`] on a config `validate` did not see
    /// (built in memory): reported without the key, as it always was.
    #[error(transparent)]
    Setup(SetupError),
}

/// What [`AlertmanagerNotifier::new`] reports as is (see [`AlertingError::Setup`]).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Auth(#[from] crate::http_client::AuthError),
    #[error(transparent)]
    Relabel(#[from] crate::scrape::relabel::CompileError),
}

impl AlertingConfig {
    /// What serde cannot check; messages name the key.
    pub fn validate(&self) -> Result<(), AlertingError> {
        Relabel::compile(&self.alert_relabel_configs)?;
        if self.resend_delay.is_zero() {
            return Err(AlertingError::ZeroResendDelay);
        }
        for (index, s) in self.alertmanagers.iter().enumerate() {
            if s.api_version != "v2" {
                return Err(AlertingError::ApiVersion { index, version: s.api_version.clone() });
            }
            if s.scheme != "http" && s.scheme != "https" {
                return Err(AlertingError::Scheme { index, scheme: s.scheme.clone() });
            }
            crate::http_client::auth(s.basic_auth.as_ref(), s.authorization.as_ref())
                .map_err(|source| AlertingError::Auth { index, source })?;
            for t in s.static_configs.iter().flat_map(|c| &c.targets) {
                if t.is_empty() || t.contains('/') {
                    return Err(AlertingError::Target { index, target: t.clone() });
                }
            }
        }
        Ok(())
    }
}

/// One Alertmanager to post to.
struct Target {
    url: String,
    client: reqwest::Client,
    auth: Option<Auth>,
    timeout: Duration,
}

/// Posts rule evaluations' alerts to the configured Alertmanagers.
pub struct AlertmanagerNotifier {
    targets: std::sync::Arc<Vec<Target>>,
    relabel: Vec<Relabel>,
    resend_ms: i64,
    external_url: String,
    /// When each alert (by fingerprint) was last sent, and in which state.
    sent: HashMap<u64, (i64, bool)>,
}

impl AlertmanagerNotifier {
    /// `None` when no Alertmanager is configured.
    pub fn new(cfg: &AlertingConfig, external_url: &str) -> Result<Option<Self>, AlertingError> {
        let mut targets = Vec::new();
        let setup = |e: SetupError| AlertingError::Setup(e);
        for s in &cfg.alertmanagers {
            let client = crate::http_client::build(s.tls_config.as_ref().unwrap_or(&TlsConfig::default()))?;
            let auth = crate::http_client::auth(s.basic_auth.as_ref(), s.authorization.as_ref())
                .map_err(|e| setup(e.into()))?;
            let prefix = s.path_prefix.trim_end_matches('/');
            for t in s.static_configs.iter().flat_map(|c| &c.targets) {
                targets.push(Target {
                    url: format!("{}://{t}{prefix}/api/v2/alerts", s.scheme),
                    client: client.clone(),
                    auth: auth.clone(),
                    timeout: s.timeout.0,
                });
            }
        }
        if targets.is_empty() {
            return Ok(None);
        }
        // From 0, so that the first failed post is an increase() to alert on.
        for t in &targets {
            metrics::counter!("forewarn_notifications_dropped_total", "alertmanager" => t.url.clone()).increment(0);
        }
        let relabel = Relabel::compile(&cfg.alert_relabel_configs).map_err(|e| setup(e.into()))?;
        Ok(Some(AlertmanagerNotifier {
            targets: std::sync::Arc::new(targets),
            relabel,
            resend_ms: cfg.resend_delay.as_millis(),
            external_url: external_url.trim_end_matches('/').to_string(),
            sent: HashMap::new(),
        }))
    }

    /// The alerts of `batch` due now: changed state, or not sent for a
    /// `resend_delay`; as `postableAlerts`.
    pub fn due(&mut self, batch: &AlertBatch) -> Vec<Value> {
        let now = batch.at;
        let valid_ms = 4 * self.resend_ms.max(batch.valid_for_ms / 4);
        let mut out = Vec::new();
        for a in &batch.alerts {
            let firing = match a.state {
                AlertState::Firing => true,
                AlertState::Inactive if a.resolved_at.is_some() => false,
                _ => continue,
            };
            let fp = a.fingerprint();
            let due = match self.sent.get(&fp) {
                Some(&(at, was_firing)) => was_firing != firing || now - at >= self.resend_ms,
                None => true,
            };
            if !due {
                continue;
            }
            let Some(labels) = relabel::process(a.labels.clone(), &self.relabel) else { continue };
            self.sent.insert(fp, (now, firing));
            let ends = if firing { now + valid_ms } else { a.resolved_at.unwrap_or(now) };
            out.push(postable(a, &labels, ends, &self.external_url));
        }
        // Forget alerts that left the batches (resolved long ago or deleted).
        let horizon = now - 20 * 60_000;
        self.sent.retain(|_, (at, _)| *at >= horizon);
        out
    }

    /// Posts `alerts` to every Alertmanager at once.
    pub fn post(&self, alerts: Vec<Value>) -> impl std::future::Future<Output = ()> + Send + 'static {
        let targets = self.targets.clone();
        async move { post_all(&targets, alerts).await }
    }
}

async fn post_all(targets: &[Target], alerts: Vec<Value>) {
    {
        if alerts.is_empty() {
            return;
        }
        let body = Value::Array(alerts);
        let n = body.as_array().map_or(0, Vec::len) as u64;
        let sends = targets.iter().map(|t| {
            let body = &body;
            async move {
                let mut req = t.client.post(&t.url).timeout(t.timeout).json(body);
                if let Some(a) = &t.auth {
                    match a.header().await {
                        Ok(h) => req = req.header("Authorization", h),
                        Err(e) => return Err(e.to_string()),
                    }
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("HTTP {}", r.status())),
                    Err(e) => Err(e.without_url().to_string()),
                }
            }
        });
        let results = futures_util::future::join_all(sends).await;
        for (t, r) in targets.iter().zip(results) {
            match r {
                Ok(()) => {
                    metrics::counter!("forewarn_notifications_sent_total", "alertmanager" => t.url.clone()).increment(n)
                }
                Err(e) => {
                    tracing::warn!(alertmanager = %t.url, error = %e, alerts = n, "cannot send alerts to Alertmanager; sent again at the next evaluation");
                    metrics::counter!("forewarn_notifications_errors_total", "alertmanager" => t.url.clone())
                        .increment(1);
                    metrics::counter!("forewarn_notifications_dropped_total", "alertmanager" => t.url.clone())
                        .increment(n);
                }
            }
        }
    }
}

fn time(ms: i64) -> String {
    let t: DateTime<Utc> = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    crate::notify::webhook::rfc3339(&t)
}

fn postable(a: &Alert, labels: &crate::labels::Labels, ends_ms: i64, external_url: &str) -> Value {
    let name = labels.value("alertname");
    json!({
        "labels": labels,
        "annotations": a.annotations,
        "startsAt": time(a.active_at),
        "endsAt": time(ends_ms),
        "generatorURL": format!("{external_url}/api/v1/alerts?alertname={name}"),
    })
}
