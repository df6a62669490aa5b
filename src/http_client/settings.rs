//! The `http_config` keys as Prometheus and Alertmanager spell them.
//! Parsing is strict (`deny_unknown_fields`), so a typo is an error at load
//! time with its place, not a silently ignored option.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// A string that must not end up in logs: `Debug` prints `<secret>`.
#[derive(Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that has to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// `Authorization: <type> <credentials>`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(rename = "type", default = "default_auth_type")]
    pub kind: String,
    #[serde(default)]
    pub credentials: Option<Secret>,
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

fn default_auth_type() -> String {
    "Bearer".to_string()
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// How to trust the server and, for mutual TLS, who we are. Also the key
/// under which a sender caches its HTTP clients, hence `Hash`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// PEM bundle; when set, only these roots are trusted (as in Prometheus).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) and its private key (PEM), for a server
    /// that asks for one; the two go together.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}
