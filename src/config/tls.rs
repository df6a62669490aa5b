//! TLS for the HTTP server: turns `http.tls_server_config` into a rustls
//! server config. Files are read when the config is loaded or reloaded, so
//! a renewed certificate takes effect on SIGHUP without a restart; it lives
//! with the config because loading the config checks these files.
//!
//! Prometheus's five `client_auth_type`s map onto rustls as follows: the
//! two "Verify" kinds use webpki against `client_ca_file`; the two that only
//! ask for (or require) a certificate use `AnyClientCert`, which checks
//! that the client holds the certificate's key but not who signed it.

use std::path::Path;
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

fn certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{what} {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{what} {}: no PEM certificate found", path.display()));
    }
    Ok(certs)
}

/// Builds the rustls config; the error names the file and what is wrong.
pub fn server_config(t: &TlsServerConfig) -> Result<rustls::ServerConfig, String> {
    let chain = certs("cert_file", &t.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&t.key_file)
        .map_err(|e| format!("key_file {}: {e} (expected a PEM private key)", t.key_file.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match t.client_auth_type {
        ClientAuthType::NoClientCert => None,
        ClientAuthType::RequestClientCert => Some(Arc::new(AnyClientCert { mandatory: false })),
        ClientAuthType::RequireAnyClientCert => Some(Arc::new(AnyClientCert { mandatory: true })),
        kind @ (ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert) => {
            let ca = t.client_ca_file.as_deref().ok_or("client_ca_file is required by this client_auth_type")?;
            let mut roots = RootCertStore::empty();
            for c in certs("client_ca_file", ca)? {
                roots.add(c).map_err(|e| format!("client_ca_file {}: {e}", ca.display()))?;
            }
            let mut b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            if kind == ClientAuthType::VerifyClientCertIfGiven {
                b = b.allow_unauthenticated();
            }
            Some(b.build().map_err(|e| format!("client_ca_file {}: {e}", ca.display()))?)
        }
    };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("cert_file/key_file {}: {e}", t.cert_file.display()))?;
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
