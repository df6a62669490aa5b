//! The HTTP client `replay --source` talks to the server with: its TLS
//! trust (`--ca-file`, `--insecure-skip-verify`), its client certificate
//! (`--cert-file`/`--key-file`) and the per-request `--timeout`, the flags a
//! Prometheus behind mutual TLS or a slow long-range query needs (promtool
//! and vmalert have the same ones).
//!
//! Every file is read and checked before the first request (in
//! `crate::http_client`), so a
//! wrong path or a key in place of a certificate is reported naming the
//! file and the flag, not as a handshake failure later.

use std::time::Duration;

use crate::http_client::{apply_tls, Keys};
pub use crate::http_client::{ClientError, TlsConfig};

/// Per-request timeout when `--timeout` is not given: long range queries
/// over many series are slow on a busy server.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A client for the source server as `tls` and `timeout` say; errors name
/// the flags (`--ca-file`, `--cert-file`, `--key-file`).
pub fn build(tls: &TlsConfig, timeout: Duration) -> Result<reqwest::Client, ClientError> {
    let b = reqwest::Client::builder().timeout(timeout).user_agent(concat!(
        "forewarn/",
        env!("CARGO_PKG_VERSION"),
        " replay"
    ));
    apply_tls(b, tls, Keys::Flags)?.build().map_err(|e| ClientError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(tls: TlsConfig) -> String {
        match build(&tls, DEFAULT_TIMEOUT) {
            Ok(_) => panic!("{tls:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unusable_files_are_named_with_their_flag() {
        let e = err(TlsConfig { ca_file: Some("/nonexistent/forewarn-ca.pem".into()), ..Default::default() });
        assert!(e.starts_with("--ca-file /nonexistent/forewarn-ca.pem: cannot read"), "{e}");
        let dir = std::env::temp_dir().join(format!("forewarn-replay-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = err(TlsConfig { ca_file: Some(junk.clone()), ..Default::default() });
        assert!(e.contains("--ca-file") && e.contains("holds no PEM certificate"), "{e}");
        let e = err(TlsConfig { cert_file: Some(junk.clone()), ..Default::default() });
        assert!(e.contains("go together"), "{e}");
        let e = err(TlsConfig { cert_file: Some(junk.clone()), key_file: Some(junk), ..Default::default() });
        assert!(e.contains("--cert-file") && e.contains("no PEM certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(build(&TlsConfig { insecure_skip_verify: true, ..Default::default() }, DEFAULT_TIMEOUT).is_ok());
    }
}
