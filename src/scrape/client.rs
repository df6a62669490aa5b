//! How a job talks to its targets: its own HTTP client when `tls_config`
//! asks for one, and the `Authorization` header from `basic_auth` or
//! `authorization` (both from `crate::http_client`). Secrets kept in files
//! are read at every scrape, so a rotated secret is used at the next scrape
//! without a reload; a file that cannot be read fails that scrape with an
//! error naming it. A
//! setting that cannot be used at all (both auth kinds set, unreadable
//! `ca_file`) fails every scrape of the job with that reason, so it shows on
//! `/api/v1/targets` instead of being silently ignored.

use super::config::ScrapeConfig;
use crate::http_client::{auth, build, Auth, TlsConfig};

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

impl JobClient {
    pub fn new(sc: &ScrapeConfig) -> Self {
        let mut out = JobClient::default();
        match auth(sc.basic_auth.as_ref(), sc.authorization.as_ref()) {
            Ok(a) => out.auth = a,
            // Text: it is shown on the targets page and cloned with the job.
            Err(e) => out.setup_error = Some(e.to_string()),
        }
        if let Some(tls) = sc.tls_config.as_ref().filter(|t| **t != TlsConfig::default()) {
            match build(tls) {
                Ok(c) => out.client = Some(c),
                Err(e) => out.setup_error = Some(e.to_string()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(extra: &str) -> ScrapeConfig {
        serde_saphyr::from_str(&format!("job_name: j\n{extra}")).expect("yaml")
    }

    fn header(j: &JobClient) -> Result<String, String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(j.auth.as_ref().expect("auth set").header()).map_err(|e| e.to_string())
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
