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
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, String> {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut b =
            reqwest::Client::builder().timeout(timeout).user_agent(concat!("forewarn/", env!("CARGO_PKG_VERSION")));
        if self.insecure_skip_verify {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path).map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("--ca-file {}: no PEM certificate found", path.display()));
            }
            b = b.tls_certs_only(certs);
        }
        b.build().map_err(|e| format!("cannot build an HTTP client: {e}"))
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
