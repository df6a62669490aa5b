//! Who may call the HTTP API, and from where.
//!
//! When `http.basic_auth_users`, `http.bearer_tokens` or
//! `http.bearer_token_files` is set, every request but `/-/healthy` and
//! `/-/ready` must carry one of those credentials (401 with
//! `WWW-Authenticate` otherwise). bcrypt is slow on purpose, so a
//! password is checked against its hash once and the verdict cached (keyed
//! by a SHA-256 of user, hash and password, so a reload that changes a
//! hash starts afresh); at most one bcrypt check runs at a time, so wrong
//! passwords cannot take the CPU from scraping and rule evaluation. An
//! unknown user costs the same bcrypt check as a known one.
//!
//! Writes are refused from browsers on other sites: a state-changing request
//! whose `Origin` is not the server's own, or whose body is not JSON (the
//! form and `text/plain` bodies a cross-site page can send without CORS),
//! gets 403 or 415. Prometheus's read endpoints that accept form POSTs
//! (`/api/v1/query` and friends) are not writes. The web UI's silence
//! forms (`crate::web::FORM_POSTS`) are the one place form bodies are
//! accepted, and only with an `Origin` that is the server's own: browsers
//! send one with every POST, so a page elsewhere cannot post them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::config::http::HttpConfig;
use crate::daemon::Daemon;

/// Marks a request that showed an `http` credential (so `deploys.token` is not asked for too).
#[derive(Clone, Copy, Debug)]
pub struct Authenticated;

/// Most cached verdicts; the cache starts afresh when full.
const CACHE_MAX: usize = 4096;

/// The credentials of the current config, rebuilt when a reload changes them.
pub struct Guard {
    current: Mutex<Option<(HttpConfig, Arc<Credentials>)>>,
    cache: Mutex<HashMap<[u8; 32], bool>>,
    bcrypt_slot: tokio::sync::Semaphore,
}

struct Credentials {
    users: HashMap<String, String>,
    /// SHA-256 of each token: compared in constant time, equal length.
    tokens: Vec<[u8; 32]>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            current: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            bcrypt_slot: tokio::sync::Semaphore::new(1),
        }
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A bcrypt hash no password matches in practice, checked for unknown
/// users so that they take as long as known ones.
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| bcrypt::hash("forewarn: no such user", 10).unwrap_or_default())
}

impl Guard {
    fn credentials(&self, cfg: &HttpConfig) -> Arc<Credentials> {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, creds)) = cur.as_ref() {
            if c == cfg {
                return creds.clone();
            }
        }
        let mut tokens: Vec<[u8; 32]> = cfg.bearer_tokens.iter().map(|t| sha256(&[t.trim().as_bytes()])).collect();
        for f in &cfg.bearer_token_files {
            match std::fs::read_to_string(f) {
                Ok(t) => tokens.push(sha256(&[t.trim().as_bytes()])),
                Err(e) => tracing::error!(file = %f.display(), error = %e, "http.bearer_token_files: cannot read"),
            }
        }
        let users = cfg.basic_auth_users.iter().map(|(u, h)| (u.clone(), h.clone())).collect();
        let creds = Arc::new(Credentials { users, tokens });
        *cur = Some((cfg.clone(), creds.clone()));
        creds
    }

    async fn password_ok(&self, creds: &Credentials, user: &str, password: &str) -> bool {
        let (hash, known) = match creds.users.get(user) {
            Some(h) => (h.clone(), true),
            None => (dummy_hash().to_string(), false),
        };
        let key = sha256(&[user.as_bytes(), hash.as_bytes(), password.as_bytes()]);
        if let Some(v) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return *v && known;
        }
        let Ok(_slot) = self.bcrypt_slot.acquire().await else { return false };
        // Another request may have checked the same password meanwhile.
        if let Some(v) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return *v && known;
        }
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pw, &hash).unwrap_or(false)).await.unwrap_or(false);
        ::metrics::counter!("forewarn_http_bcrypt_checks_total").increment(1);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, ok);
        ok && known
    }
}

fn unauthorized(msg: &str) -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"status": "error", "errorType": "unauthorized", "error": msg})),
    )
        .into_response();
    r.headers_mut().append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"forewarn\""));
    r.headers_mut().append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"forewarn\""));
    ::metrics::counter!("forewarn_http_unauthorized_total").increment(1);
    r
}

fn refused(status: StatusCode, msg: String) -> Response {
    (status, axum::Json(serde_json::json!({"status": "error", "errorType": "forbidden", "error": msg}))).into_response()
}

/// POST endpoints that only read (Prometheus accepts form bodies there).
fn read_only_post(path: &str) -> bool {
    matches!(
        path.strip_prefix("/api/v1/"),
        Some(
            "query"
                | "query_range"
                | "query_exemplars"
                | "series"
                | "labels"
                | "format_query"
                | "parse_query"
                | "annotations"
        )
    )
}

fn is_write(method: &Method, path: &str) -> bool {
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE => false,
        Method::POST => !read_only_post(path),
        _ => true,
    }
}

/// `scheme://host[:port]` of what the client called, and of `external_url`.
fn own_origins(headers: &HeaderMap, secure: bool, cfg: &HttpConfig) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        out.push(format!("{}://{}", if secure { "https" } else { "http" }, host.to_ascii_lowercase()));
    }
    if let Some(u) = &cfg.external_url {
        if let Ok(u) = reqwest::Url::parse(u) {
            out.push(u.origin().ascii_serialization().to_ascii_lowercase());
        }
    }
    out
}

/// Refuses cross-site writes; `None` lets the request through.
fn cross_site(req: &Request, cfg: &HttpConfig) -> Option<Response> {
    if !is_write(req.method(), req.uri().path()) {
        return None;
    }
    let headers = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let secure = req.extensions().get::<super::server::Secure>().is_some_and(|s| s.0);
        let origin = origin.to_str().unwrap_or("").trim().to_ascii_lowercase();
        if !own_origins(headers, secure, cfg).contains(&origin) {
            ::metrics::counter!("forewarn_http_cross_site_refused_total").increment(1);
            return Some(refused(
                StatusCode::FORBIDDEN,
                format!(
                    "cross-site request refused: Origin {origin:?} is not this server's \
                     (writes are only accepted from scripts and from pages served under http.external_url)"
                ),
            ));
        }
    }
    if crate::web::FORM_POSTS.contains(&req.uri().path()) {
        // The web UI's own forms post form bodies. Browsers send `Origin`
        // with every POST, so one matching (checked above) is the proof of
        // a same-origin page; without it the post is refused.
        if headers.get(header::ORIGIN).is_none() {
            ::metrics::counter!("forewarn_http_cross_site_refused_total").increment(1);
            return Some(refused(
                StatusCode::FORBIDDEN,
                format!(
                    "{} {} is the web UI's form: it is accepted from this server's pages only (with an Origin header); \
                     scripts use the JSON API under /api/v1/",
                    req.method(),
                    req.uri().path()
                ),
            ));
        }
        return None;
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let json = ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json"));
        if !json {
            ::metrics::counter!("forewarn_http_cross_site_refused_total").increment(1);
            return Some(refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {ct:?} refused for {} {}: send the body as JSON with \
                     `Content-Type: application/json`",
                    req.method(),
                    req.uri().path()
                ),
            ));
        }
    }
    None
}

/// The middleware: health checks pass; then credentials; then the cross-site check.
pub async fn check(State((d, guard)): State<(Arc<Daemon>, Arc<Guard>)>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/-/healthy" || path == "/-/ready" {
        return next.run(req).await;
    }
    let cfg = d.config.lock().unwrap_or_else(|p| p.into_inner()).http.clone();
    if cfg.auth_enabled() {
        let creds = guard.credentials(&cfg);
        let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
        let ok = match given {
            None => {
                return unauthorized("authentication required (http.basic_auth_users / http.bearer_tokens are set)")
            }
            Some(v) => match v.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(rest.trim())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok());
                    match decoded.as_deref().and_then(|s| s.split_once(':')) {
                        Some((u, p)) => guard.password_ok(&creds, u, p).await,
                        None => false,
                    }
                }
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
                    let h = sha256(&[rest.trim().as_bytes()]);
                    creds.tokens.iter().fold(false, |acc, t| acc | same(t, &h))
                }
                _ => false,
            },
        };
        if ok {
            req.extensions_mut().insert(Authenticated);
        } else if !deploys_token(&d, &req) {
            return unauthorized("wrong credentials");
        }
    }
    if let Some(r) = cross_site(&req, &cfg) {
        return r;
    }
    next.run(req).await
}

/// `POST /api/v1/deploys` with `deploys.token` passes on its own, so CI
/// pipelines need one secret only.
fn deploys_token(d: &Daemon, req: &Request) -> bool {
    if req.method() != Method::POST || req.uri().path() != "/api/v1/deploys" {
        return false;
    }
    let Some(token) = d.deploys.settings().token else { return false };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    same(&sha256(&[given.as_bytes()]), &sha256(&[token.as_bytes()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_state_changing_methods_except_query_posts() {
        assert!(is_write(&Method::POST, "/api/v1/silences"));
        assert!(is_write(&Method::DELETE, "/api/v1/silences/x"));
        assert!(is_write(&Method::POST, "/-/reload"));
        assert!(is_write(&Method::PUT, "/-/reload"));
        assert!(!is_write(&Method::POST, "/api/v1/query"));
        assert!(!is_write(&Method::POST, "/api/v1/query_range"));
        assert!(!is_write(&Method::GET, "/api/v1/silences"));
        assert!(is_write(&Method::POST, "/api/v1/query/../silences"), "no prefix tricks");
    }

    #[test]
    fn own_origins_are_the_host_called_and_external_url() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9099"));
        let cfg = HttpConfig { external_url: Some("https://Forewarn.example.com/sub/".into()), ..Default::default() };
        assert_eq!(
            own_origins(&h, false, &cfg),
            vec!["http://127.0.0.1:9099".to_string(), "https://forewarn.example.com".to_string()]
        );
        assert_eq!(own_origins(&h, true, &HttpConfig::default()), vec!["https://127.0.0.1:9099".to_string()]);
    }

    /// The web UI's silence forms: form bodies pass with the server's own
    /// Origin only; the API keeps refusing form bodies.
    #[test]
    fn form_posts_pass_only_for_the_ui_forms_from_the_same_origin() {
        let req = |path: &str, origin: Option<&str>| {
            let mut b = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::HOST, "127.0.0.1:9099")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            if let Some(o) = origin {
                b = b.header(header::ORIGIN, o);
            }
            b.body(axum::body::Body::empty()).unwrap()
        };
        let cfg = HttpConfig::default();
        let status = |r: Option<Response>| r.map(|r| r.status());
        assert_eq!(status(cross_site(&req("/silences", Some("http://127.0.0.1:9099")), &cfg)), None);
        assert_eq!(status(cross_site(&req("/silences/expire", Some("http://127.0.0.1:9099")), &cfg)), None);
        assert_eq!(status(cross_site(&req("/silences", None), &cfg)), Some(StatusCode::FORBIDDEN));
        assert_eq!(
            status(cross_site(&req("/silences", Some("http://evil.example")), &cfg)),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            status(cross_site(&req("/api/v1/silences", Some("http://127.0.0.1:9099")), &cfg)),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
    }

    #[tokio::test]
    async fn passwords_are_checked_once_and_unknown_users_fail() {
        let g = Guard::default();
        let mut cfg = HttpConfig::default();
        cfg.basic_auth_users.insert("ana".into(), bcrypt::hash("pw", 4).unwrap());
        let creds = g.credentials(&cfg);
        assert!(g.password_ok(&creds, "ana", "pw").await);
        assert!(!g.password_ok(&creds, "ana", "nope").await);
        assert!(!g.password_ok(&creds, "bob", "pw").await);
        assert_eq!(g.cache.lock().unwrap().len(), 3);
        assert!(g.password_ok(&creds, "ana", "pw").await, "from the cache");
        assert_eq!(g.cache.lock().unwrap().len(), 3);
    }
}
