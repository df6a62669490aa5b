//! HTTP client settings, shared by everything in forewarn that makes
//! requests: scrapes, receivers (webhooks, Alertmanagers), remote write, a
//! remote `datasource`, `replay --source` and the command line.
//!
//! It owns the pieces of Prometheus's `http_config` they all accept
//! (`tls_config` with client certificates, `basic_auth`, `authorization`),
//! secrets that never print ([`Secret`]), the `Authorization` header those
//! settings make ([`Auth`]), the TLS setup of a `reqwest` client
//! ([`apply_tls`]), the URL helpers that keep tokens out of logs, and the
//! [`Connection`] the command line uses to reach a daemon. It
//! imports nothing else of forewarn, so every stage can use it without
//! importing another stage (a webhook change cannot break scraping).

mod auth;
mod connection;
mod settings;
mod tls;
mod url;

pub use auth::{auth, Auth, AuthError};
pub use connection::Connection;
pub use settings::{Authorization, BasicAuth, Secret, TlsConfig};
pub use tls::{apply_tls, build, ClientError, Keys};
pub use url::{parse_http_url, redact_url, url_label, UrlError};
