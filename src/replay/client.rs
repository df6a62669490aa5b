//! The HTTP client `replay --source` talks to the server with: its TLS
//! trust (`--ca-file`, `--insecure-skip-verify`), its client certificate
//! (`--cert-file`/`--key-file`) and the per-request `--timeout`, the flags a
//! Prometheus behind mutual TLS or a slow long-range query needs (promtool
//! and vmalert have the same ones).
//!
//! Every file is read and checked here, before the first request, so a
//! wrong path or a key in place of a certificate is reported naming the
//! file and the flag, not as a handshake failure later.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Per-request timeout when `--timeout` is not given: long range queries
/// over many series are slow on a busy server.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// TLS settings for the source server.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM bundle; when set, only these roots are trusted (as in Prometheus).
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) and its private key (PEM), for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate.
    pub insecure_skip_verify: bool,
}

/// Why the client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--{flag} {}: cannot read: {msg}; fix the path", path.display())]
    Read { flag: &'static str, path: PathBuf, msg: String },
    #[error("--{flag} {}: {msg}", path.display())]
    Pem { flag: &'static str, path: PathBuf, msg: String },
    #[error("--cert-file and --key-file go together (the client certificate and its private key)")]
    HalfIdentity,
    #[error("cannot set up the HTTP client: {0}")]
    Build(String),
}

/// A client for the source server as `tls` and `timeout` say.
pub fn build(tls: &TlsOptions, timeout: Duration) -> Result<reqwest::Client, ClientError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut b = reqwest::Client::builder().timeout(timeout).user_agent(concat!(
        "forewarn/",
        env!("CARGO_PKG_VERSION"),
        " replay"
    ));
    if tls.insecure_skip_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    if let Some(path) = &tls.ca_file {
        let pem = read("ca-file", path)?;
        let certs = certificates("ca-file", path, &pem)?;
        let certs = certs
            .iter()
            .map(|c| reqwest::Certificate::from_der(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error("ca-file", path, format!("not a usable CA certificate: {e}")))?;
        b = b.tls_certs_only(certs);
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let cert_pem = read("cert-file", cert)?;
            certificates("cert-file", cert, &cert_pem)?;
            let key_pem = read("key-file", key)?;
            PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                pem_error("key-file", key, format!("no PEM private key in it ({e}); give the client certificate's key"))
            })?;
            let mut both = key_pem;
            both.push(b'\n');
            both.extend_from_slice(&cert_pem);
            let id = reqwest::Identity::from_pem(&both).map_err(|e| {
                pem_error("cert-file", cert, format!("cannot be used with --key-file {}: {e}", key.display()))
            })?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => return Err(ClientError::HalfIdentity),
    }
    b.build().map_err(|e| ClientError::Build(e.to_string()))
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError::Read { flag, path: path.to_path_buf(), msg: e.to_string() })
}

fn pem_error(flag: &'static str, path: &Path, msg: String) -> ClientError {
    ClientError::Pem { flag, path: path.to_path_buf(), msg }
}

/// The certificates of a PEM file; an error when there is none (a key or
/// a DER file given by mistake).
fn certificates(flag: &'static str, path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(flag, path, format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(pem_error(flag, path, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(tls: TlsOptions) -> String {
        match build(&tls, DEFAULT_TIMEOUT) {
            Ok(_) => panic!("{tls:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unusable_files_are_named_with_their_flag() {
        let e = err(TlsOptions { ca_file: Some("/nonexistent/forewarn-ca.pem".into()), ..Default::default() });
        assert!(e.starts_with("--ca-file /nonexistent/forewarn-ca.pem: cannot read"), "{e}");
        let dir = std::env::temp_dir().join(format!("forewarn-replay-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = err(TlsOptions { ca_file: Some(junk.clone()), ..Default::default() });
        assert!(e.contains("--ca-file") && e.contains("holds no PEM certificate"), "{e}");
        let e = err(TlsOptions { cert_file: Some(junk.clone()), ..Default::default() });
        assert!(e.contains("go together"), "{e}");
        let e = err(TlsOptions { cert_file: Some(junk.clone()), key_file: Some(junk), ..Default::default() });
        assert!(e.contains("--cert-file") && e.contains("no PEM certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(build(&TlsOptions { insecure_skip_verify: true, ..Default::default() }, DEFAULT_TIMEOUT).is_ok());
    }
}
