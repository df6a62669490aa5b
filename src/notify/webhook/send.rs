//! Delivering a [`Notification`] as Alertmanager's webhook JSON (version "4").
//!
//! This file owns the wire format ([`payload`]), the HTTP exchange and the
//! mapping of its outcome onto [`DeliveryError`]: 2xx is success; 429, 5xx,
//! connection failures and timeouts are worth retrying; any other answer is a
//! mistake that retrying would repeat. Errors and logs name the URL without
//! its credentials or query string, since tokens often hide there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Map, Value};

use super::config::{check_url, redact_url, HttpConfig, TlsConfig, WebhookConfig};
use crate::labels::Labels;
use crate::notify::{DeliveryError, Notification, NotifiedAlert};

/// What Alertmanager writes for an unset `endsAt` (Go's zero time).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The header carrying the body's HMAC when `hmac_secret` is set.
pub const SIGNATURE_HEADER: &str = "X-Forewarn-Signature";

/// How much of an error response's body is quoted in the error message.
const BODY_EXCERPT: usize = 512;

/// RFC 3339 in UTC with as many fractional digits as needed (0, 3, 6 or 9).
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn labels_json(l: &Labels) -> Value {
    Value::Object(l.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect::<Map<_, _>>())
}

fn alert_json(a: &NotifiedAlert) -> Value {
    let mut v = json!({
        "status": a.status.as_str(),
        "labels": labels_json(&a.labels),
        "annotations": labels_json(&a.annotations),
        "startsAt": rfc3339(&a.starts_at),
        "endsAt": a.ends_at.as_ref().map_or_else(|| ZERO_TIME.to_string(), rfc3339),
        "generatorURL": a.generator_url,
        "fingerprint": a.fingerprint,
    });
    // forewarn's additions: `changes`, `verdict`, `chartURL` (deploy markers).
    if let (Some(n), Value::Object(o)) = (&a.notes, &mut v) {
        o.extend(crate::deploys::notes::webhook_fields(n));
    }
    v
}

/// The Alertmanager webhook body for `n`, keeping at most `max_alerts`
/// alerts (0 = all); `truncatedAlerts` counts what was dropped here and
/// anything the notification had already dropped.
pub fn payload(n: &Notification, max_alerts: usize) -> Value {
    let keep = if max_alerts == 0 { n.alerts.len() } else { max_alerts.min(n.alerts.len()) };
    let truncated = n.truncated_alerts + (n.alerts.len() - keep);
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": truncated,
        "status": n.status.as_str(),
        "receiver": n.receiver,
        "groupLabels": labels_json(&n.group_labels),
        "commonLabels": labels_json(&n.common_labels),
        "commonAnnotations": labels_json(&n.common_annotations),
        "externalURL": n.external_url,
        "alerts": n.alerts[..keep].iter().map(alert_json).collect::<Vec<_>>(),
    })
}

/// The notification as a receiver with `send_resolved: false` should see it:
/// resolved alerts dropped (and common labels recomputed), or `None` when
/// nothing firing is left to say. Alertmanager filters the same way.
pub fn without_resolved(n: &Notification) -> Option<Notification> {
    let firing: Vec<NotifiedAlert> = n.firing().cloned().collect();
    if firing.is_empty() {
        return None;
    }
    let mut out = Notification::new(&n.receiver, n.group_key.clone(), n.group_labels.clone(), firing, &n.external_url);
    out.truncated_alerts = n.truncated_alerts;
    Some(out)
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`, hex-encoded: the value of
/// the `X-Forewarn-Signature: sha256=<hex>` header, which a receiver
/// recomputes over the raw body with the shared `hmac_secret`.
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, msg).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    tls: TlsConfig,
    follow_redirects: bool,
}

/// Posts webhook notifications. Clones share their clients: keep one per
/// daemon and clone it into each delivery task.
///
/// Holds one `reqwest::Client` per distinct TLS/redirect setting (most
/// configs share the default one), so connections are pooled across sends.
#[derive(Clone)]
pub struct WebhookSender {
    clients: Arc<Mutex<HashMap<ClientKey, reqwest::Client>>>,
    user_agent: String,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender").field("user_agent", &self.user_agent).finish_non_exhaustive()
    }
}

impl Default for WebhookSender {
    fn default() -> Self {
        Self::new()
    }
}

impl WebhookSender {
    /// A sender with no clients yet; they are built on first use.
    ///
    /// Installs rustls' *ring* provider if the process has none yet, since
    /// reqwest (built without a provider) would otherwise panic.
    pub fn new() -> Self {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        WebhookSender {
            clients: Arc::new(Mutex::new(HashMap::new())),
            user_agent: format!("forewarn/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    fn client(&self, http: &HttpConfig) -> Result<reqwest::Client, String> {
        let key = ClientKey { tls: http.tls_config.clone(), follow_redirects: http.follow_redirects };
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let mut b =
            reqwest::Client::builder().user_agent(self.user_agent.clone()).connect_timeout(Duration::from_secs(10));
        if !key.follow_redirects {
            b = b.redirect(reqwest::redirect::Policy::none());
        }
        let b =
            crate::http_client::apply_tls(b, &key.tls, crate::http_client::Keys::Config).map_err(|e| e.to_string())?;
        let c = b.build().map_err(|e| format!("building the HTTP client: {e}"))?;
        clients.insert(key, c.clone());
        Ok(c)
    }

    /// Delivers `n` to `cfg`'s endpoint.
    ///
    /// With `send_resolved: false`, resolved alerts are left out and a
    /// notification with nothing firing is skipped (and counts as sent).
    pub async fn send(&self, cfg: &WebhookConfig, n: &Notification) -> Result<(), DeliveryError> {
        let filtered;
        let n = if cfg.send_resolved {
            n
        } else {
            match without_resolved(n) {
                Some(f) => {
                    filtered = f;
                    &filtered
                }
                None => {
                    tracing::debug!(receiver = %n.receiver, group_key = %n.group_key, "webhook: nothing firing and send_resolved is false; skipped");
                    return Ok(());
                }
            }
        };
        let permanent = |message: String| DeliveryError::Permanent { receiver: n.receiver.clone(), message };
        let retryable = |message: String| DeliveryError::Retryable { receiver: n.receiver.clone(), message };

        let url = resolve_url(cfg).map_err(|e| permanent(format!("webhook: {e}")))?;
        let shown = redact_url(&url);
        let body = serde_json::to_vec(&payload(n, cfg.max_alerts))
            .map_err(|e| permanent(format!("webhook {shown}: encoding the payload: {e}")))?;
        let headers = request_headers(cfg, &body).map_err(|e| permanent(format!("webhook {shown}: {e}")))?;
        let client = self.client(&cfg.http_config).map_err(|e| permanent(format!("webhook {shown}: {e}")))?;

        let mut req = client.post(url).headers(headers).body(body);
        if let Some(b) = &cfg.http_config.basic_auth {
            let password = match (&b.password, &b.password_file) {
                (Some(p), _) => Some(p.expose().to_string()),
                (None, Some(f)) => Some(read_secret_file("basic_auth.password_file", f).map_err(permanent)?),
                (None, None) => None,
            };
            req = req.basic_auth(&b.username, password);
        }
        if !cfg.timeout.is_zero() {
            req = req.timeout(cfg.timeout.0);
        }

        let started = std::time::Instant::now();
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let (msg, retry) = describe_send_error(e, cfg);
                tracing::debug!(receiver = %n.receiver, url = %shown, error = %msg, "webhook delivery failed");
                let msg = format!("webhook {shown}: {msg}");
                return Err(if retry { retryable(msg) } else { permanent(msg) });
            }
        };
        let status = resp.status();
        if status.is_success() {
            tracing::debug!(
                receiver = %n.receiver, url = %shown, status = status.as_u16(), alerts = n.alerts.len(),
                elapsed_ms = started.elapsed().as_millis() as u64, "webhook delivered"
            );
            return Ok(());
        }
        let excerpt = body_excerpt(resp).await;
        let msg = if excerpt.is_empty() {
            format!("webhook {shown}: HTTP {status}")
        } else {
            format!("webhook {shown}: HTTP {status}: {excerpt}")
        };
        tracing::debug!(receiver = %n.receiver, url = %shown, status = status.as_u16(), "webhook rejected");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(retryable(msg))
        } else {
            Err(permanent(msg))
        }
    }
}

fn resolve_url(cfg: &WebhookConfig) -> Result<reqwest::Url, String> {
    let raw = match (&cfg.url, &cfg.url_file) {
        (Some(u), _) => u.expose().to_string(),
        (None, Some(f)) => read_secret_file("url_file", f)?,
        (None, None) => return Err("webhook_configs: missing `url`".to_string()),
    };
    check_url(&raw).map_err(|e| e.to_string())
}

fn read_secret_file(field: &str, path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("reading {field} {}: {e}", path.display()))
}

fn request_headers(cfg: &WebhookConfig, body: &[u8]) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in &cfg.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))?;
        let mut value =
            HeaderValue::from_str(value.expose()).map_err(|_| format!("invalid value for header {name}"))?;
        value.set_sensitive(true);
        h.insert(name, value);
    }
    let http = &cfg.http_config;
    let auth = if let Some(a) = &http.authorization {
        let cred = match (&a.credentials, &a.credentials_file) {
            (Some(c), _) => c.expose().to_string(),
            (None, Some(f)) => read_secret_file("authorization.credentials_file", f)?,
            (None, None) => String::new(),
        };
        Some(format!("{} {}", a.kind, cred))
    } else if let Some(t) = &http.bearer_token {
        Some(format!("Bearer {}", t.expose()))
    } else if let Some(f) = &http.bearer_token_file {
        Some(format!("Bearer {}", read_secret_file("bearer_token_file", f)?))
    } else {
        None
    };
    if let Some(auth) = auth {
        let mut v = HeaderValue::from_str(auth.trim_end())
            .map_err(|_| "the authorization credentials are not a valid header value".to_string())?;
        v.set_sensitive(true);
        h.insert(AUTHORIZATION, v);
    }
    if let Some(secret) = &cfg.hmac_secret {
        let sig = format!("sha256={}", hmac_sha256_hex(secret.expose().as_bytes(), body));
        let v = HeaderValue::from_str(&sig).map_err(|_| "signature is not a header value".to_string())?;
        h.insert(HeaderName::from_static("x-forewarn-signature"), v);
    }
    Ok(h)
}

/// What went wrong, and whether it is worth a retry. reqwest's own Display
/// repeats the full URL (with any token), so the URL is dropped and the kind
/// and innermost cause are described instead.
fn describe_send_error(e: reqwest::Error, cfg: &WebhookConfig) -> (String, bool) {
    let e = e.without_url();
    let (kind, retry) = if e.is_timeout() {
        (format!("no complete answer within the {} timeout", cfg.timeout), true)
    } else if e.is_connect() {
        ("could not connect".to_string(), true)
    } else if e.is_redirect() {
        ("too many redirects".to_string(), false)
    } else if e.is_builder() {
        ("invalid request".to_string(), false)
    } else if e.is_body() || e.is_decode() {
        ("error reading the response".to_string(), true)
    } else {
        ("request failed".to_string(), true)
    };
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    let mut last = None;
    while let Some(c) = cause {
        last = Some(c.to_string());
        cause = c.source();
    }
    match last {
        Some(c) if !e.is_timeout() => (format!("{kind}: {c}"), retry),
        _ => (kind, retry),
    }
}

async fn body_excerpt(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < BODY_EXCERPT {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    let cut = buf.len() > BODY_EXCERPT;
    buf.truncate(BODY_EXCERPT);
    let mut s: String = String::from_utf8_lossy(&buf).split_whitespace().collect::<Vec<_>>().join(" ");
    if cut {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::notify::Status;

    fn alert(name: &str, status: Status, ends: Option<DateTime<Utc>>) -> NotifiedAlert {
        NotifiedAlert {
            status,
            labels: Labels::from_pairs([("alertname", name), ("job", "api")]),
            annotations: Labels::from_pairs([("summary", "slow")]),
            starts_at: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
            ends_at: ends,
            generator_url: "http://prom/graph".into(),
            fingerprint: format!("{:016x}", name.len()),
            notes: None,
        }
    }

    #[test]
    fn payload_has_alertmanager_shape() {
        let ended = Utc.with_ymd_and_hms(2024, 5, 1, 12, 5, 0).unwrap() + chrono::Duration::milliseconds(250);
        let n = Notification::new(
            "team",
            "{}:{alertname=\"A\"}".into(),
            Labels::from_pairs([("alertname", "A")]),
            vec![
                alert("A", Status::Firing, None),
                alert("B", Status::Resolved, Some(ended)),
                alert("C", Status::Firing, None),
            ],
            "http://forewarn:9093",
        );
        let p = payload(&n, 0);
        assert_eq!(p["version"], "4");
        assert_eq!(p["status"], "firing");
        assert_eq!(p["truncatedAlerts"], 0);
        assert_eq!(p["commonLabels"], json!({"job": "api"}));
        assert_eq!(p["commonAnnotations"], json!({"summary": "slow"}));
        assert_eq!(p["alerts"][0]["endsAt"], ZERO_TIME);
        assert_eq!(p["alerts"][0]["startsAt"], "2024-05-01T12:00:00Z");
        assert_eq!(p["alerts"][1]["endsAt"], "2024-05-01T12:05:00.250Z");
        assert_eq!(p["alerts"][1]["status"], "resolved");
        assert_eq!(p["externalURL"], "http://forewarn:9093");

        let p = payload(&n, 2);
        assert_eq!(p["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(p["truncatedAlerts"], 1);
    }

    #[test]
    fn without_resolved_recomputes_or_skips() {
        let n = Notification::new(
            "r",
            "k".into(),
            Labels::new(),
            vec![alert("A", Status::Firing, None), alert("B", Status::Resolved, None)],
            "",
        );
        let f = without_resolved(&n).unwrap();
        assert_eq!(f.alerts.len(), 1);
        assert_eq!(f.common_labels.get("alertname"), Some("A"));
        let r = Notification::new("r", "k".into(), Labels::new(), vec![alert("B", Status::Resolved, None)], "");
        assert!(without_resolved(&r).is_none());
    }

    #[test]
    fn hmac_matches_rfc4231() {
        // RFC 4231 test cases 1, 2 and 6 (key longer than the block size).
        assert_eq!(
            hmac_sha256_hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_sha256_hex(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
