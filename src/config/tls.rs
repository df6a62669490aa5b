//! TLS for the HTTP server: turns `http.tls_server_config` into a rustls
//! server config. Files are read when the config is loaded or reloaded, so
//! a renewed certificate takes effect on SIGHUP without a restart; it lives
//! with the config because loading the config checks these files.
//!
//! Prometheus's five `client_auth_type`s map onto rustls as follows: the
//! two "Verify" kinds use webpki against `client_ca_file`; the two that only
//! ask for (or require) a certificate use `AnyClientCert`, which checks
//! that the client holds the certificate's key but not who signed it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::http::{ClientAuthType, TlsServerConfig};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why `http.tls_server_config` cannot be used; names the file (`what` is
/// its key) and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what} {}: {source}", path.display())]
    Pem { what: &'static str, path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("{what} {}: no PEM certificate found", path.display())]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("key_file {}: {source} (expected a PEM private key)", path.display())]
    Key { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("client_ca_file is required by this client_auth_type")]
    NoClientCa,
    /// A CA certificate, the client verifier or the certificate and key
    /// together were refused by rustls; `what` names the file(s).
    #[error("{what} {}: {source}", path.display())]
    Rustls { what: &'static str, path: PathBuf, source: rustls::Error },
    #[error("{what} {}: {source}", path.display())]
    Verifier { what: &'static str, path: PathBuf, source: rustls::server::VerifierBuilderError },
    /// The crypto provider offers no safe protocol version (a build problem).
    #[error("{0}")]
    Protocols(rustls::Error),
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |source: rustls::pki_types::pem::Error| TlsError::Pem { what, path: path.to_path_buf(), source };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path).map_err(pem)?.collect::<Result<_, _>>().map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what, path: path.to_path_buf() });
    }
    Ok(certs)
}

/// Builds the rustls config; the error names the file and what is wrong.
pub fn server_config(t: &TlsServerConfig) -> Result<rustls::ServerConfig, TlsError> {
    let chain = certs("cert_file", &t.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&t.key_file)
        .map_err(|source| TlsError::Key { path: t.key_file.clone(), source })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?;
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match t.client_auth_type {
        ClientAuthType::NoClientCert => None,
        ClientAuthType::RequestClientCert => Some(Arc::new(AnyClientCert { mandatory: false })),
        ClientAuthType::RequireAnyClientCert => Some(Arc::new(AnyClientCert { mandatory: true })),
        kind @ (ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert) => {
            let ca = t.client_ca_file.as_deref().ok_or(TlsError::NoClientCa)?;
            let mut roots = RootCertStore::empty();
            for c in certs("client_ca_file", ca)? {
                roots.add(c).map_err(|source| TlsError::Rustls {
                    what: "client_ca_file",
                    path: ca.to_path_buf(),
                    source,
                })?;
            }
            let mut b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            if kind == ClientAuthType::VerifyClientCertIfGiven {
                b = b.allow_unauthenticated();
            }
            Some(b.build().map_err(|source| TlsError::Verifier {
                what: "client_ca_file",
                path: ca.to_path_buf(),
                source,
            })?)
        }
    };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(chain, key).map_err(|source| TlsError::Rustls {
        what: "cert_file/key_file",
        path: t.cert_file.clone(),
        source,
    })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Accepts any client certificate whose key the client proves it holds.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}
