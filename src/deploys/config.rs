//! The `deploys` section of `forewarn.yml`: how markers are tied to alerts,
//! how far back a change still counts, which label carries the version, and
//! the bearer token that `POST /api/v1/deploys` requires.

use serde::Deserialize;

use crate::duration::PromDuration;

/// `deploys:` in the config file. Every key has a default.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploysConfig {
    /// Labels an alert and a marker must share to be tied. A marker's
    /// `service` also matches an alert's `service` or `job` label.
    #[serde(default = "default_match_labels")]
    pub match_labels: Vec<String>,
    /// How long before an alert's onset a change is still listed.
    #[serde(default = "default_lookback")]
    pub lookback: PromDuration,
    /// The label of `*_build_info` series that carries the version.
    #[serde(default = "default_version_label")]
    pub version_label: String,
    /// Bearer token required by `POST /api/v1/deploys`; unset = no token.
    pub token: Option<String>,
    /// Record deploys and restarts seen while scraping.
    #[serde(default = "yes")]
    pub detect: bool,
    /// Most markers kept; the oldest go first. 0 = no limit.
    #[serde(default = "default_max_markers")]
    pub max_markers: usize,
    /// Largest marker (all its fields and labels) accepted. 0 = no limit.
    #[serde(default = "default_max_marker_bytes")]
    pub max_marker_bytes: crate::byte_size::ByteSize,
    /// Markers older than this are deleted.
    #[serde(default = "default_retention")]
    pub retention: PromDuration,
}

// Hand-written so that the token never reaches a log line.
impl std::fmt::Debug for DeploysConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeploysConfig")
            .field("match_labels", &self.match_labels)
            .field("lookback", &self.lookback)
            .field("version_label", &self.version_label)
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .field("detect", &self.detect)
            .field("max_markers", &self.max_markers)
            .field("max_marker_bytes", &self.max_marker_bytes.0)
            .field("retention", &self.retention)
            .finish()
    }
}

impl Default for DeploysConfig {
    fn default() -> Self {
        DeploysConfig {
            match_labels: default_match_labels(),
            lookback: default_lookback(),
            version_label: default_version_label(),
            token: None,
            detect: true,
            max_markers: default_max_markers(),
            max_marker_bytes: default_max_marker_bytes(),
            retention: default_retention(),
        }
    }
}

fn default_match_labels() -> Vec<String> {
    vec!["service".into(), "job".into()]
}
fn default_lookback() -> PromDuration {
    PromDuration::from_secs(24 * 3600)
}
fn default_version_label() -> String {
    "version".into()
}
fn default_max_markers() -> usize {
    100_000
}
fn default_max_marker_bytes() -> crate::byte_size::ByteSize {
    crate::byte_size::ByteSize(16 * 1024)
}
fn default_retention() -> PromDuration {
    PromDuration::from_secs(90 * 86_400)
}
fn yes() -> bool {
    true
}

impl DeploysConfig {
    /// What serde cannot check; messages name the key.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if self.lookback.is_zero() {
            errs.push("deploys.lookback must be greater than 0s (e.g. 24h)".to_string());
        }
        if self.version_label.trim().is_empty() {
            errs.push("deploys.version_label must not be empty (e.g. version)".to_string());
        }
        if self.retention < self.lookback {
            errs.push(format!(
                "deploys.retention {} is shorter than deploys.lookback {}: markers would go before they stop counting",
                self.retention, self.lookback
            ));
        }
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            errs.push("deploys.token is empty; remove the key or set a secret".to_string());
        }
        errs
    }
}
