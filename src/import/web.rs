//! Prometheus's web config file (`--web.config.file`) into forewarn's
//! `http` section, which takes the same `tls_server_config` and
//! `basic_auth_users` (bcrypt hashes, checked by forewarn as by
//! Prometheus). TLS tuning and custom headers, which forewarn does not
//! offer, are explained here.

use super::tree::{Entry, Kind, Node};
use super::{ImportError, Out, PathFix};

const RUSTLS: &str =
    "forewarn uses rustls's defaults (TLS 1.2 and 1.3 with modern cipher suites and curves); they cannot be changed";

/// Keys with no equivalent, and what to do instead.
const TABLE: &[(&str, &str)] = &[
    ("tls_server_config.cipher_suites", RUSTLS),
    ("tls_server_config.curve_preferences", RUSTLS),
    ("tls_server_config.min_version", RUSTLS),
    ("tls_server_config.max_version", RUSTLS),
    ("tls_server_config.prefer_server_cipher_order", RUSTLS),
    ("tls_server_config.client_allowed_sans", "forewarn checks client certificates against client_ca_file only and cannot restrict their SANs"),
    ("tls_server_config.cert", "write the PEM into a file and set `cert_file`"),
    ("tls_server_config.key", "write the PEM into a file and set `key_file`"),
    ("tls_server_config.client_ca", "write the PEM into a file and set `client_ca_file`"),
    ("http_server_config", "forewarn sets its own response headers and HTTP versions; custom headers cannot be added (put a reverse proxy in front to add them)"),
    ("rate_limit", "forewarn has no request rate limit; it bounds open connections with http.max_connections"),
];

const PATH_KEYS: &[&str] = &["cert_file", "key_file", "client_ca_file"];

/// Puts the web config's keys under `http`.
pub(crate) fn carry(root: Node, out: &mut Out, fix: &PathFix) -> Result<(), ImportError> {
    let file = root.file;
    let mut root = root;
    out.drop_known(&mut root, &[TABLE]);
    fix.apply(&mut root, PATH_KEYS);
    let Kind::Map(entries) = root.kind else { return Ok(()) };
    if entries.is_empty() {
        return Ok(());
    }
    // Its last line, so that the file's closing comments follow its keys.
    let end_line = entries.iter().map(|e| e.value.end_line.max(e.key_pos.line)).max().unwrap_or(0);
    let value = Node { kind: Kind::Map(entries), file, end_line, ..Node::scalar("") };
    let note = Some("from the web config file (Prometheus's --web.config.file)".to_string());
    out.entries().push(Entry { key: "http".into(), key_pos: Default::default(), value, note });
    Ok(())
}
