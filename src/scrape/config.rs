//! The `scrape_configs` section of `forewarn.yml`, Prometheus's keys: a
//! job's targets, interval, limits, relabeling, TLS and auth. `config`
//! holds a list of these and hands scraping the `global` defaults as a
//! [`ScrapeDefaults`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::byte_size::ByteSize;
use crate::duration::PromDuration;

/// Prometheus's `global.scrape_interval` and `global.scrape_timeout`: what
/// a job without its own uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScrapeDefaults {
    pub interval: PromDuration,
    pub timeout: PromDuration,
}

/// One `scrape_configs` entry (a job).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub honor_labels: bool,
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Bytes, with an optional unit: `10MB`, `512KiB`. 0 = forewarn's default cap.
    pub body_size_limit: Option<ByteSize>,
    /// More samples than this fail the whole scrape, as in Prometheus. 0 = no limit.
    #[serde(default)]
    pub sample_limit: usize,
    #[serde(default)]
    pub label_limit: usize,
    #[serde(default)]
    pub label_name_length_limit: usize,
    #[serde(default)]
    pub label_value_length_limit: usize,
    /// Targets listed in JSON/YAML files, re-read when they change.
    #[serde(default)]
    pub file_sd_configs: Vec<super::discovery::FileSdConfig>,
    /// Rewrite target labels before scraping (may drop targets).
    #[serde(default)]
    pub relabel_configs: Vec<super::relabel::RelabelConfig>,
    /// Rewrite or drop scraped samples before they are stored.
    #[serde(default)]
    pub metric_relabel_configs: Vec<super::relabel::RelabelConfig>,
    pub tls_config: Option<crate::http_client::TlsConfig>,
    pub basic_auth: Option<crate::http_client::BasicAuth>,
    pub authorization: Option<crate::http_client::Authorization>,
}

fn default_metrics_path() -> String {
    "/metrics".into()
}
fn default_scheme() -> String {
    "http".into()
}
fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}
