//! The client side of `POST /api/v1/deploys`, for `forewarn deploy` in CI
//! pipelines: one request, and an error that says what to fix.

use std::time::Duration;

use serde_json::Value;

use super::{DeploysError, Marker};

/// Posts `body` (a marker object) to `server` and returns the stored marker.
/// `token` is `deploys.token`; `conn` carries the `http:` credentials and
/// TLS trust (basic auth there wins over `token`).
pub async fn post_marker(
    server: &str,
    conn: &crate::http_client::Connection,
    token: Option<&str>,
    body: &Value,
) -> Result<Marker, DeploysError> {
    let url = format!("{}/api/v1/deploys", server.trim_end_matches('/'));
    let http = |m: String| DeploysError::Http(format!("{url}: {m}"));
    let client = conn.client(Duration::from_secs(15)).map_err(|e| http(e.to_string()))?;
    let mut req = client.post(&url).json(body);
    if conn.has_credentials() {
        req = conn.authorize(req);
    } else if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| http(format!("{e} (is forewarn running there? see --server)")))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| http(e.to_string()))?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = v["error"].as_str().map(str::to_string).unwrap_or_else(|| text.chars().take(300).collect());
        return Err(http(format!("HTTP {status}: {msg}")));
    }
    Marker::from_json(&v["data"], None).map_err(|e| http(format!("unexpected answer: {e}")))
}
