//! The `http` section of `forewarn.yml`: where the server listens and how it
//! defends itself. The security keys are those of Prometheus's web config
//! file (`tls_server_config`, `basic_auth_users`) so an operator's existing
//! file can be pasted under `http:`; bearer tokens, the lifecycle switch and
//! the connection limits are named after Prometheus's `--web.*` flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ByteSize;
use crate::duration::PromDuration;

/// The HTTP server.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The URL people use to reach forewarn (links in notifications).
    pub external_url: Option<String>,
    /// Serve HTTPS (and optionally ask for client certificates).
    pub tls_server_config: Option<TlsServerConfig>,
    /// user: bcrypt hash. Any entry turns authentication on.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
    /// Bearer tokens accepted in `Authorization: Bearer ...` (for scripts).
    #[serde(default)]
    pub bearer_tokens: Vec<String>,
    /// Files each holding one bearer token (trimmed), read at load and reload.
    #[serde(default)]
    pub bearer_token_files: Vec<PathBuf>,
    /// `POST /-/reload` and `/-/quit` answer only when true (Prometheus's `--web.enable-lifecycle`).
    #[serde(default)]
    pub enable_lifecycle: bool,
    /// Open connections beyond this wait in the kernel's backlog (`--web.max-connections`).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A client must send its request headers within this long (also the
    /// longest wait for the next request on a kept-alive connection).
    #[serde(default = "default_read_header_timeout")]
    pub read_header_timeout: PromDuration,
    /// A connection with no request in flight and no bytes moving is closed after this long.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: PromDuration,
    /// Largest request body any endpoint reads; larger ones get 413.
    #[serde(default = "default_max_request_body_size")]
    pub max_request_body_size: ByteSize,
}

// Hand-written so that hashes and tokens never reach a log line.
impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("external_url", &self.external_url)
            .field("tls_server_config", &self.tls_server_config)
            .field("basic_auth_users", &self.basic_auth_users.keys().collect::<Vec<_>>())
            .field("bearer_tokens", &self.bearer_tokens.len())
            .field("bearer_token_files", &self.bearer_token_files)
            .field("enable_lifecycle", &self.enable_lifecycle)
            .field("max_connections", &self.max_connections)
            .field("read_header_timeout", &self.read_header_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_request_body_size", &self.max_request_body_size.0)
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            external_url: None,
            tls_server_config: None,
            basic_auth_users: BTreeMap::new(),
            bearer_tokens: Vec::new(),
            bearer_token_files: Vec::new(),
            enable_lifecycle: false,
            max_connections: default_max_connections(),
            read_header_timeout: default_read_header_timeout(),
            idle_timeout: default_idle_timeout(),
            max_request_body_size: default_max_request_body_size(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9099".into()
}
fn default_max_connections() -> usize {
    512
}
fn default_read_header_timeout() -> PromDuration {
    PromDuration::from_secs(10)
}
fn default_idle_timeout() -> PromDuration {
    PromDuration::from_secs(120)
}
fn default_max_request_body_size() -> ByteSize {
    ByteSize(1 << 20)
}

/// Prometheus's `tls_server_config`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// CA certificates that sign accepted client certificates.
    pub client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_auth_type: ClientAuthType,
}

/// Whether and how clients must show a certificate (Prometheus's names).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum ClientAuthType {
    #[default]
    NoClientCert,
    /// Asked for, not required, not verified.
    RequestClientCert,
    /// Required, not verified.
    RequireAnyClientCert,
    /// Verified against `client_ca_file` when given.
    VerifyClientCertIfGiven,
    /// Required and verified against `client_ca_file`.
    RequireAndVerifyClientCert,
}

impl HttpConfig {
    /// True when a credential is configured: every endpoint but the health
    /// checks then requires one.
    pub fn auth_enabled(&self) -> bool {
        !self.basic_auth_users.is_empty() || !self.bearer_tokens.is_empty() || !self.bearer_token_files.is_empty()
    }

    /// Resolves relative file paths against the config file's directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !base.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        if let Some(t) = &mut self.tls_server_config {
            fix(&mut t.cert_file);
            fix(&mut t.key_file);
            if let Some(ca) = &mut t.client_ca_file {
                fix(ca);
            }
        }
        self.bearer_token_files.iter_mut().for_each(fix);
    }

    /// What serde cannot check; each message names the key.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        for (user, hash) in &self.basic_auth_users {
            if user.is_empty() || user.contains(':') {
                errs.push(format!("http.basic_auth_users: user name {user:?} must be non-empty and without ':'"));
            }
            if hash.parse::<bcrypt::HashParts>().is_err() {
                errs.push(format!(
                    "http.basic_auth_users.{user}: not a bcrypt hash (expected $2y$..., e.g. from `htpasswd -nBC 10 {user}`)"
                ));
            }
        }
        if self.bearer_tokens.iter().any(|t| t.trim().len() < 16) {
            errs.push("http.bearer_tokens: every token must have at least 16 characters".into());
        }
        for f in &self.bearer_token_files {
            match std::fs::read_to_string(f) {
                Ok(t) if t.trim().len() >= 16 => {}
                Ok(_) => errs.push(format!("http.bearer_token_files: {} holds fewer than 16 characters", f.display())),
                Err(e) => errs.push(format!("http.bearer_token_files: cannot read {}: {e}", f.display())),
            }
        }
        if let Some(t) = &self.tls_server_config {
            let verify = matches!(
                t.client_auth_type,
                ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert
            );
            if verify && t.client_ca_file.is_none() {
                errs.push(format!(
                    "http.tls_server_config.client_auth_type {:?} needs client_ca_file",
                    t.client_auth_type
                ));
            }
            if !verify && t.client_ca_file.is_some() {
                errs.push(
                    "http.tls_server_config.client_ca_file is set but client_auth_type does not verify client \
                     certificates (use VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
                        .into(),
                );
            }
            if let Err(e) = super::tls::server_config(t) {
                errs.push(format!("http.tls_server_config: {e}"));
            }
        }
        if self.max_connections == 0 {
            errs.push("http.max_connections must be at least 1 (default 512)".into());
        }
        if self.read_header_timeout.is_zero() || self.idle_timeout.is_zero() {
            errs.push("http.read_header_timeout and http.idle_timeout must be greater than 0s".into());
        }
        if self.max_request_body_size.0 < 1024 {
            errs.push("http.max_request_body_size must be at least 1KiB (default 1MiB)".into());
        }
        errs
    }
}
