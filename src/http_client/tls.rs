//! A `reqwest` client's TLS as a [`TlsConfig`] says: the roots it trusts
//! (`ca_file`, or none with `insecure_skip_verify`) and its client
//! certificate for mutual TLS (`cert_file` with `key_file`).
//!
//! Every file is read and checked before the first request, so a wrong
//! path or a key in place of a certificate is reported naming the key (or
//! the command-line flag) and the file, not as a handshake failure later.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsConfig;

/// How errors name the settings: as config keys (`tls_config.ca_file`) or
/// as the command line's flags (`--ca-file`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    Config,
    Flags,
}

impl Keys {
    fn name(self, key: &str) -> String {
        match self {
            Keys::Config => format!("tls_config.{key}"),
            Keys::Flags => format!("--{}", key.replace('_', "-")),
        }
    }
}

/// Why a client could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("{key} {}: cannot read: {msg}; fix the path", path.display())]
    Read { key: String, path: PathBuf, msg: String },
    #[error("{key} {}: {msg}", path.display())]
    Pem { key: String, path: PathBuf, msg: String },
    #[error("{cert} and {key} go together (the client certificate and its private key)")]
    HalfIdentity { cert: String, key: String },
    #[error("cannot set up the HTTP client: {0}")]
    Build(String),
    /// [`super::Connection::client`]'s builder failed (kept apart from
    /// `Build` for its own wording, which the command line prints).
    #[error("cannot build an HTTP client: {0}")]
    Connection(String),
}

/// Applies `tls` to a client builder (the caller keeps its own timeouts,
/// redirects and user agent).
pub fn apply_tls(
    mut b: reqwest::ClientBuilder,
    tls: &TlsConfig,
    keys: Keys,
) -> Result<reqwest::ClientBuilder, ClientError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    if tls.insecure_skip_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    if let Some(path) = &tls.ca_file {
        let key = keys.name("ca_file");
        let pem = read(&key, path)?;
        let certs = certificates(&key, path, &pem)?
            .iter()
            .map(|c| reqwest::Certificate::from_der(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(&key, path, format!("not a usable CA certificate: {e}")))?;
        b = b.tls_certs_only(certs);
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key_file)) => {
            let (cert_key, key_key) = (keys.name("cert_file"), keys.name("key_file"));
            let cert_pem = read(&cert_key, cert)?;
            certificates(&cert_key, cert, &cert_pem)?;
            let key_pem = read(&key_key, key_file)?;
            PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                pem_error(
                    &key_key,
                    key_file,
                    format!("no PEM private key in it ({e}); give the client certificate's key"),
                )
            })?;
            let mut both = key_pem;
            both.push(b'\n');
            both.extend_from_slice(&cert_pem);
            let id = reqwest::Identity::from_pem(&both).map_err(|e| {
                pem_error(&cert_key, cert, format!("cannot be used with {key_key} {}: {e}", key_file.display()))
            })?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => return Err(ClientError::HalfIdentity { cert: keys.name("cert_file"), key: keys.name("key_file") }),
    }
    Ok(b)
}

/// The client for scrapes, remote write, a datasource and Alertmanagers:
/// gzip, up to 10 redirects, forewarn's user agent, TLS as `tls` says.
pub fn build(tls: &TlsConfig) -> Result<reqwest::Client, ClientError> {
    let b = reqwest::Client::builder()
        .gzip(true)
        .redirect(reqwest::redirect::Policy::limited(10))
        .user_agent(concat!("forewarn/", env!("CARGO_PKG_VERSION")));
    apply_tls(b, tls, Keys::Config)?.build().map_err(|e| ClientError::Build(e.to_string()))
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError::Read { key: key.into(), path: path.to_path_buf(), msg: e.to_string() })
}

fn pem_error(key: &str, path: &Path, msg: String) -> ClientError {
    ClientError::Pem { key: key.into(), path: path.to_path_buf(), msg }
}

/// The certificates of a PEM file; an error when there is none (a key or
/// a DER file given by mistake).
fn certificates(key: &str, path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(key, path, format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(pem_error(key, path, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(tls: TlsConfig, keys: Keys) -> String {
        apply_tls(reqwest::Client::builder(), &tls, keys).err().map(|e| e.to_string()).unwrap_or_default()
    }

    /// Errors name the setting as the user wrote it: a config key or a flag.
    #[test]
    fn errors_name_the_key_or_flag_and_the_file() {
        let missing = PathBuf::from("/nonexistent/forewarn-ca.pem");
        let tls = TlsConfig { ca_file: Some(missing.clone()), ..Default::default() };
        let e = err(tls.clone(), Keys::Config);
        assert!(e.starts_with("tls_config.ca_file /nonexistent/forewarn-ca.pem: cannot read"), "{e}");
        assert!(err(tls, Keys::Flags).starts_with("--ca-file /nonexistent/forewarn-ca.pem: cannot read"));
        let half = TlsConfig { cert_file: Some(missing), ..Default::default() };
        let e = err(half, Keys::Config);
        assert!(e.contains("tls_config.cert_file and tls_config.key_file go together"), "{e}");
    }

    #[test]
    fn a_key_in_place_of_a_certificate_is_named() {
        let dir = std::env::temp_dir().join(format!("forewarn-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("not-a-cert.pem");
        std::fs::write(&junk, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
        let e = err(TlsConfig { ca_file: Some(junk.clone()), ..Default::default() }, Keys::Config);
        assert!(e.contains("tls_config.ca_file") && e.contains("holds no PEM certificate"), "{e}");
        let e =
            err(TlsConfig { cert_file: Some(junk.clone()), key_file: Some(junk), ..Default::default() }, Keys::Config);
        assert!(e.contains("tls_config.cert_file") && e.contains("no PEM certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
