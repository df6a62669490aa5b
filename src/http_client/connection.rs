//! How the command line reaches a daemon whose `http:` section asks for
//! credentials or serves HTTPS: `forewarn silence`, `deploy` and `query`
//! build their HTTP client here, from flags or `FOREWARN_*` environment
//! variables, so every subcommand takes the same ones.

use std::path::PathBuf;
use std::time::Duration;

/// Credentials and TLS trust for requests to a daemon.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    pub username: Option<String>,
    pub password: Option<String>,
    pub bearer_token: Option<String>,
    /// Trust only these PEM CA certificates for an https URL.
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

impl Connection {
    /// An HTTP client with this connection's TLS settings.
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, super::ClientError> {
        let b = reqwest::Client::builder().timeout(timeout).user_agent(concat!("forewarn/", env!("CARGO_PKG_VERSION")));
        let tls = super::TlsConfig {
            ca_file: self.ca_file.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
            ..Default::default()
        };
        let b = super::apply_tls(b, &tls, super::Keys::Flags)?;
        b.build().map_err(|e| super::ClientError::Connection(e.to_string()))
    }

    /// Adds the credentials (basic auth wins over a bearer token).
    pub fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (&self.username, &self.bearer_token) {
            (Some(u), _) => req.basic_auth(u, self.password.as_deref()),
            (None, Some(t)) => req.bearer_auth(t),
            (None, None) => req,
        }
    }

    /// True when a credential is set.
    pub fn has_credentials(&self) -> bool {
        self.username.is_some() || self.bearer_token.is_some()
    }
}
