//! How a job talks to its targets: its own HTTP client when `tls_config`
//! asks for one, and the `Authorization` header from `basic_auth` or
//! `authorization`. A setting that cannot be used (unreadable `ca_file` or
//! credentials file) fails every scrape of the job with that reason, so it
//! shows on `/api/v1/targets` instead of being silently ignored.

use base64::Engine;

use crate::config::ScrapeConfig;
use crate::notify::webhook::config::{Authorization, BasicAuth, TlsConfig};

/// A job's HTTP settings, shared by its targets.
#[derive(Clone, Debug, Default)]
pub struct JobClient {
    /// `None`: the manager's shared client (no special TLS settings).
    pub client: Option<reqwest::Client>,
    /// The `Authorization` header value.
    pub authorization: Option<String>,
    /// Why this job cannot be scraped as configured.
    pub setup_error: Option<String>,
}

impl JobClient {
    pub fn new(sc: &ScrapeConfig) -> Self {
        let mut out = JobClient::default();
        match header(sc) {
            Ok(h) => out.authorization = h,
            Err(e) => out.setup_error = Some(e),
        }
        if let Some(tls) = sc.tls_config.as_ref().filter(|t| **t != TlsConfig::default()) {
            match build(tls) {
                Ok(c) => out.client = Some(c),
                Err(e) => out.setup_error = Some(e),
            }
        }
        out
    }
}

fn header(sc: &ScrapeConfig) -> Result<Option<String>, String> {
    match (&sc.basic_auth, &sc.authorization) {
        (Some(_), Some(_)) => Err("basic_auth and authorization are both set; keep one".into()),
        (Some(b), None) => basic(b).map(Some),
        (None, Some(a)) => bearer(a).map(Some),
        (None, None) => Ok(None),
    }
}

fn read_secret(what: &str, path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read {what} {}: {e}; fix the file or the path", path.display()))
}

fn basic(b: &BasicAuth) -> Result<String, String> {
    let password = match (&b.password, &b.password_file) {
        (Some(p), _) => p.expose().to_string(),
        (None, Some(f)) => read_secret("basic_auth.password_file", f)?,
        (None, None) => String::new(),
    };
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", b.username));
    Ok(format!("Basic {token}"))
}

fn bearer(a: &Authorization) -> Result<String, String> {
    let creds = match (&a.credentials, &a.credentials_file) {
        (Some(c), _) => c.expose().to_string(),
        (None, Some(f)) => read_secret("authorization.credentials_file", f)?,
        (None, None) => return Err("authorization needs credentials or credentials_file".into()),
    };
    Ok(format!("{} {creds}", a.kind))
}

fn build(tls: &TlsConfig) -> Result<reqwest::Client, String> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut b = reqwest::Client::builder()
        .gzip(true)
        .redirect(reqwest::redirect::Policy::limited(10))
        .user_agent(concat!("forewarn/", env!("CARGO_PKG_VERSION")));
    if tls.insecure_skip_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    if let Some(path) = &tls.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read tls_config.ca_file {}: {e}; fix the path", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("tls_config.ca_file {} is not a PEM bundle: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("tls_config.ca_file {} holds no certificate", path.display()));
        }
        b = b.tls_certs_only(certs);
    }
    b.build().map_err(|e| format!("cannot build the HTTP client for tls_config: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(extra: &str) -> ScrapeConfig {
        serde_saphyr::from_str(&format!("job_name: j\n{extra}")).expect("yaml")
    }

    #[test]
    fn basic_auth_and_bearer_headers() {
        let j = JobClient::new(&sc("basic_auth: {username: u, password: p}\n"));
        assert_eq!(j.authorization.as_deref(), Some("Basic dTpw"));
        let j = JobClient::new(&sc("authorization: {credentials: tok}\n"));
        assert_eq!(j.authorization.as_deref(), Some("Bearer tok"));
        assert!(j.client.is_none() && j.setup_error.is_none());
    }

    #[test]
    fn unusable_settings_become_a_setup_error() {
        let j = JobClient::new(&sc("authorization: {credentials_file: /nonexistent/forewarn-token}\n"));
        assert!(j.setup_error.unwrap().contains("/nonexistent/forewarn-token"));
        let j = JobClient::new(&sc("tls_config: {ca_file: /nonexistent/ca.pem}\n"));
        assert!(j.setup_error.unwrap().contains("/nonexistent/ca.pem"));
        let j = JobClient::new(&sc("tls_config: {insecure_skip_verify: true}\n"));
        assert!(j.client.is_some() && j.setup_error.is_none());
    }
}
