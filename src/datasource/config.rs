//! The `datasource` config section: where rules read their series when
//! they do not read the local store, with the keys vmalert and Prometheus
//! users know (`url`, `basic_auth`, `authorization`, `tls_config`,
//! `headers`, `query_offset`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::duration::PromDuration;
use crate::http_client::{Authorization, BasicAuth, Secret, TlsConfig};

/// Why the `datasource` section is refused, or its client cannot be set
/// up; the message names the key (the caller adds `datasource.`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Url(#[from] crate::http_client::UrlError),
    #[error("url: give the base URL, without {0:?}: forewarn adds /api/v1/query itself")]
    ApiPath(String),
    #[error("timeout: must be greater than 0s")]
    ZeroTimeout,
    #[error("headers: set Authorization with `authorization` or `basic_auth`")]
    AuthorizationHeader,
    #[error(transparent)]
    Auth(#[from] crate::http_client::AuthError),
    #[error(transparent)]
    Client(#[from] crate::http_client::ClientError),
}

/// A Prometheus-compatible query API the rules read from.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasourceConfig {
    /// The API's base URL, the part before `/api/v1/query`: e.g.
    /// `http://vm:8428`, `http://prometheus:9090`, `http://mimir/prometheus`.
    pub url: Secret,
    /// Every rule evaluates this far in the past, so samples still on their
    /// way to the store are not missed (Prometheus's `rule_query_offset`;
    /// VictoriaMetrics hides its last 30 s unless `-search.latencyOffset`
    /// says otherwise). A group's own `query_offset` wins.
    #[serde(default)]
    pub query_offset: PromDuration,
    /// Per request.
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    /// How far back `ALERTS_FOR_STATE` is read at start to restore the
    /// `for` state of alerts this replica has no saved state for.
    #[serde(default = "default_restore_lookback")]
    pub restore_lookback: PromDuration,
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub tls_config: Option<TlsConfig>,
}

fn default_timeout() -> PromDuration {
    PromDuration(std::time::Duration::from_secs(30))
}

fn default_restore_lookback() -> PromDuration {
    PromDuration(std::time::Duration::from_secs(3600))
}

impl DatasourceConfig {
    /// A config for `url` with every other key at its default.
    pub fn new(url: &str) -> Self {
        DatasourceConfig {
            url: Secret::new(url),
            query_offset: PromDuration::default(),
            timeout: default_timeout(),
            restore_lookback: default_restore_lookback(),
            headers: BTreeMap::new(),
            basic_auth: None,
            authorization: None,
            tls_config: None,
        }
    }

    /// The URL as shown in logs and errors (no credentials, no query).
    pub fn url_label(&self) -> String {
        crate::http_client::url_label(self.url.expose())
    }

    /// What serde cannot check; the message names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let u = crate::http_client::parse_http_url(self.url.expose())?;
        if u.path().contains("/api/v1/") {
            return Err(ConfigError::ApiPath(u.path().to_string()));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        for h in self.headers.keys() {
            if h.eq_ignore_ascii_case("authorization") {
                return Err(ConfigError::AuthorizationHeader);
            }
        }
        crate::http_client::auth(self.basic_auth.as_ref(), self.authorization.as_ref())?;
        if let Some(tls) = &self.tls_config {
            crate::http_client::build(tls)?;
        }
        Ok(())
    }
}
