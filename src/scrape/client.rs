//! How a job talks to its targets: its own HTTP client when `tls_config`
//! asks for one, and the `Authorization` header from `basic_auth` or
//! `authorization`. Secrets kept in files (`basic_auth.password_file`,
//! `authorization.credentials_file`) are read at every scrape, as Prometheus
//! does, so a rotated secret is used at the next scrape without a reload; a
//! file that cannot be read fails that scrape with an error naming it. A
//! setting that cannot be used at all (both auth kinds set, unreadable
//! `ca_file`) fails every scrape of the job with that reason, so it shows on
//! `/api/v1/targets` instead of being silently ignored.

use std::fmt;
use std::path::PathBuf;

use base64::Engine;

use crate::config::ScrapeConfig;
use crate::notify::webhook::config::{Authorization, BasicAuth, TlsConfig};

/// A job's HTTP settings, shared by its targets.
#[derive(Clone, Debug, Default)]
pub struct JobClient {
    /// `None`: the manager's shared client (no special TLS settings).
    pub client: Option<reqwest::Client>,
    /// Where the `Authorization` header comes from.
    pub auth: Option<Auth>,
    /// Why this job cannot be scraped as configured.
    pub setup_error: Option<String>,
}

/// The source of a job's `Authorization` header.
#[derive(Clone, PartialEq)]
pub enum Auth {
    /// Known from the config alone (inline password or credentials).
    Fixed(String),
    /// `basic_auth` with `password_file`, read per scrape.
    BasicFile { username: String, file: PathBuf },
    /// `authorization` with `credentials_file`, read per scrape.
    CredentialsFile { kind: String, file: PathBuf },
}

/// Never prints a secret: targets and configs get logged with `{:?}`.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Fixed(_) => f.write_str("Fixed(<secret>)"),
            Auth::BasicFile { username, file } => write!(f, "BasicFile({username}, {})", file.display()),
            Auth::CredentialsFile { kind, file } => write!(f, "CredentialsFile({kind}, {})", file.display()),
        }
    }
}

impl Auth {
    /// The header value for a scrape starting now; reads the secret file,
    /// if any, so the error names the file when it is missing or unreadable.
    pub async fn header(&self) -> Result<String, String> {
        match self {
            Auth::Fixed(h) => Ok(h.clone()),
            Auth::BasicFile { username, file } => {
                let password = read_secret("basic_auth.password_file", file).await?;
                Ok(basic_header(username, &password))
            }
            Auth::CredentialsFile { kind, file } => {
                let creds = read_secret("authorization.credentials_file", file).await?;
                Ok(format!("{kind} {creds}"))
            }
        }
    }
}

impl JobClient {
    pub fn new(sc: &ScrapeConfig) -> Self {
        let mut out = JobClient::default();
        match auth(sc.basic_auth.as_ref(), sc.authorization.as_ref()) {
            Ok(a) => out.auth = a,
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

/// The `Authorization` header source for `basic_auth`/`authorization`
/// (also used by remote write and the Alertmanager client).
pub fn auth(basic_auth: Option<&BasicAuth>, authorization: Option<&Authorization>) -> Result<Option<Auth>, String> {
    match (basic_auth, authorization) {
        (Some(_), Some(_)) => Err("basic_auth and authorization are both set; keep one".into()),
        (Some(b), None) => Ok(Some(basic(b))),
        (None, Some(a)) => bearer(a).map(Some),
        (None, None) => Ok(None),
    }
}

async fn read_secret(what: &str, path: &std::path::Path) -> Result<String, String> {
    tokio::fs::read_to_string(path)
        .await
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read {what} {}: {e}; fix the file or the path", path.display()))
}

fn basic_header(username: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {token}")
}

fn basic(b: &BasicAuth) -> Auth {
    match (&b.password, &b.password_file) {
        (Some(p), _) => Auth::Fixed(basic_header(&b.username, p.expose())),
        (None, Some(f)) => Auth::BasicFile { username: b.username.clone(), file: f.clone() },
        (None, None) => Auth::Fixed(basic_header(&b.username, "")),
    }
}

fn bearer(a: &Authorization) -> Result<Auth, String> {
    match (&a.credentials, &a.credentials_file) {
        (Some(c), _) => Ok(Auth::Fixed(format!("{} {}", a.kind, c.expose()))),
        (None, Some(f)) => Ok(Auth::CredentialsFile { kind: a.kind.clone(), file: f.clone() }),
        (None, None) => Err("authorization needs credentials or credentials_file".into()),
    }
}

/// An HTTP client trusting what `tls` says.
pub fn build(tls: &TlsConfig) -> Result<reqwest::Client, String> {
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

    fn header(j: &JobClient) -> Result<String, String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(j.auth.as_ref().expect("auth set").header())
    }

    #[test]
    fn basic_auth_and_bearer_headers() {
        let j = JobClient::new(&sc("basic_auth: {username: u, password: p}\n"));
        assert_eq!(header(&j).as_deref(), Ok("Basic dTpw"));
        let j = JobClient::new(&sc("authorization: {credentials: tok}\n"));
        assert_eq!(header(&j).as_deref(), Ok("Bearer tok"));
        assert!(j.client.is_none() && j.setup_error.is_none());
        assert!(!format!("{j:?}").contains("tok"), "Debug must not show the secret");
    }

    #[test]
    fn secret_files_are_read_per_scrape_and_failures_name_the_file() {
        let j = JobClient::new(&sc("authorization: {credentials_file: /nonexistent/forewarn-token}\n"));
        assert!(j.setup_error.is_none(), "a missing file is a scrape error, not a setup error");
        let e = header(&j).expect_err("missing file");
        assert!(e.contains("authorization.credentials_file") && e.contains("/nonexistent/forewarn-token"), "{e}");
        let j = JobClient::new(&sc("basic_auth: {username: u, password_file: /nonexistent/forewarn-pw}\n"));
        let e = header(&j).expect_err("missing file");
        assert!(e.contains("basic_auth.password_file") && e.contains("/nonexistent/forewarn-pw"), "{e}");
    }

    #[test]
    fn unusable_settings_become_a_setup_error() {
        let j = JobClient::new(&sc("tls_config: {ca_file: /nonexistent/ca.pem}\n"));
        assert!(j.setup_error.unwrap().contains("/nonexistent/ca.pem"));
        let j = JobClient::new(&sc("authorization: {type: Bearer}\n"));
        assert!(j.setup_error.unwrap().contains("credentials_file"));
        let j = JobClient::new(&sc("tls_config: {insecure_skip_verify: true}\n"));
        assert!(j.client.is_some() && j.setup_error.is_none());
    }
}
