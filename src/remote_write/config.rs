//! The `remote_write` config entries, with Prometheus's keys, defaults and
//! meanings, checked at load time so a typo or an unusable setting is an
//! error naming the entry.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::duration::PromDuration;
use crate::http_client::{Authorization, BasicAuth, Secret, TlsConfig};
use crate::scrape::relabel::RelabelConfig;

/// One `remote_write` entry.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The receiver's write endpoint, e.g. `http://vm:8428/api/v1/write`.
    pub url: Secret,
    /// Names the queue in metrics and its saved read position; default: a
    /// hash of the URL.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_remote_timeout")]
    pub remote_timeout: PromDuration,
    /// Extra request headers (not the protocol's own).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub tls_config: Option<TlsConfig>,
    /// Relabeling applied to every series before it is sent (after
    /// `global.external_labels` are added).
    #[serde(default)]
    pub write_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub queue_config: QueueConfig,
}

/// `queue_config`: how samples are batched, sent in parallel and retried.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Samples buffered per shard before reading from the WAL pauses.
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// Most requests in flight at once (series are spread over shards by
    /// hash, so one series' samples always go in order).
    #[serde(default = "default_max_shards")]
    pub max_shards: usize,
    #[serde(default = "default_max_samples_per_send")]
    pub max_samples_per_send: usize,
    /// The longest a sample waits for a fuller batch.
    #[serde(default = "default_batch_send_deadline")]
    pub batch_send_deadline: PromDuration,
    #[serde(default = "default_min_backoff")]
    pub min_backoff: PromDuration,
    #[serde(default = "default_max_backoff")]
    pub max_backoff: PromDuration,
    /// Retry on 429 Too Many Requests like on a 5xx (else the batch is dropped).
    #[serde(default = "yes")]
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: default_capacity(),
            max_shards: default_max_shards(),
            max_samples_per_send: default_max_samples_per_send(),
            batch_send_deadline: default_batch_send_deadline(),
            min_backoff: default_min_backoff(),
            max_backoff: default_max_backoff(),
            retry_on_http_429: true,
        }
    }
}

fn default_remote_timeout() -> PromDuration {
    PromDuration::from_secs(30)
}
fn default_capacity() -> usize {
    2500
}
fn default_max_shards() -> usize {
    200
}
fn default_max_samples_per_send() -> usize {
    500
}
fn default_batch_send_deadline() -> PromDuration {
    PromDuration::from_secs(5)
}
fn default_min_backoff() -> PromDuration {
    PromDuration(std::time::Duration::from_millis(30))
}
fn default_max_backoff() -> PromDuration {
    PromDuration::from_secs(5)
}
fn yes() -> bool {
    true
}

/// Why a `remote_write` entry is refused (at load, or when its queue
/// starts); the message names the key, the caller adds `remote_write[i]`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Url(#[from] crate::http_client::UrlError),
    #[error("name {0:?}: use letters, digits, '-', '_' or '.'")]
    Name(String),
    #[error("headers: {0} is set by the remote write protocol; remove it")]
    ReservedHeader(String),
    #[error("headers: set Authorization with `authorization` or `basic_auth`")]
    AuthorizationHeader,
    #[error(transparent)]
    Auth(#[from] crate::http_client::AuthError),
    #[error("write_relabel_configs{0}")]
    Relabel(#[from] crate::scrape::relabel::CompileError),
    #[error("queue_config: capacity, max_shards and max_samples_per_send must be at least 1")]
    QueueSize,
    #[error("queue_config: min_backoff {min} must be greater than 0s and at most max_backoff {max}")]
    Backoff { min: PromDuration, max: PromDuration },
    #[error("batch_send_deadline and remote_timeout must be greater than 0s")]
    ZeroTimeout,
    /// The queue's HTTP client (its `tls_config`).
    #[error(transparent)]
    Client(#[from] crate::http_client::ClientError),
}

/// Headers the protocol sets itself; a config may not override them.
const RESERVED_HEADERS: [&str; 5] =
    ["content-encoding", "content-type", "content-length", "user-agent", "x-prometheus-remote-write-version"];

impl RemoteWriteConfig {
    /// The queue's name: `name`, or a stable hash of the URL.
    pub fn queue_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => {
                let h = self
                    .url
                    .expose()
                    .bytes()
                    .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
                format!("{:06x}", h & 0xff_ffff)
            }
        }
    }

    /// The URL as shown in logs and metric labels (no credentials, no query).
    pub fn url_label(&self) -> String {
        crate::http_client::url_label(self.url.expose())
    }

    /// What serde cannot check; the message names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::http_client::parse_http_url(self.url.expose())?;
        if let Some(n) = &self.name {
            if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(ConfigError::Name(n.clone()));
            }
        }
        for h in self.headers.keys() {
            if RESERVED_HEADERS.contains(&h.to_ascii_lowercase().as_str()) {
                return Err(ConfigError::ReservedHeader(h.clone()));
            }
            if h.eq_ignore_ascii_case("authorization") {
                return Err(ConfigError::AuthorizationHeader);
            }
        }
        crate::http_client::auth(self.basic_auth.as_ref(), self.authorization.as_ref())?;
        crate::scrape::relabel::Relabel::compile(&self.write_relabel_configs)?;
        let q = &self.queue_config;
        if q.capacity == 0 || q.max_shards == 0 || q.max_samples_per_send == 0 {
            return Err(ConfigError::QueueSize);
        }
        if q.min_backoff.is_zero() || q.min_backoff > q.max_backoff {
            return Err(ConfigError::Backoff { min: q.min_backoff, max: q.max_backoff });
        }
        if q.batch_send_deadline.is_zero() || self.remote_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        Ok(())
    }
}
