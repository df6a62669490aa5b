//! The HTTP face: health and reload endpoints, the daemon's own metrics,
//! the Prometheus-compatible `/api/v1/*` that dashboards and scripts know,
//! and the pages of `crate::web`.
//!
//! Handlers only translate; every decision lives in the modules they call.

mod api;
mod deploys;
pub mod guard;
mod server;
mod silences;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::daemon::{Daemon, DaemonError};

/// The full router, behind the credential and cross-site checks of
/// [`guard`] (its verdict cache lives as long as the router) and a body
/// size limit of `http.max_request_body_size`.
pub fn router(d: Arc<Daemon>) -> Router {
    let body_limit = d.config.lock().unwrap_or_else(|p| p.into_inner()).http.max_request_body_size.0;
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "forewarn is Healthy.\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload).put(reload))
        .merge(api::routes())
        .merge(deploys::routes())
        .merge(silences::routes())
        .merge(crate::web::routes())
        .layer(axum::middleware::from_fn(too_large))
        .layer(axum::extract::DefaultBodyLimit::max(usize::try_from(body_limit).unwrap_or(usize::MAX)))
        .layer(axum::middleware::from_fn_with_state((d.clone(), Arc::new(guard::Guard::default())), guard::check))
        .with_state(d)
        .layer(axum::middleware::from_fn(catch_panic))
}

/// Turns a panic in any handler into a logged 500 with a generic body: the
/// client learns nothing of the internals, the connection and the daemon
/// carry on.
async fn catch_panic(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use futures_util::FutureExt;
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    match std::panic::AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(%method, %path, panic = %msg, "request handler panicked");
            ::metrics::counter!("forewarn_http_panics_total").increment(1);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({
                    "status": "error", "errorType": "internal", "error": "internal error (logged by forewarn)"
                })),
            )
                .into_response()
        }
    }
}

/// Rewrites axum's terse 413 into a message naming the setting.
async fn too_large(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path().to_string();
    let r = next.run(req).await;
    if r.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return r;
    }
    ::metrics::counter!("forewarn_http_request_too_large_total").increment(1);
    let msg = format!("request body of {path} is larger than http.max_request_body_size");
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        axum::Json(serde_json::json!({"status": "error", "errorType": "bad_data", "error": msg})),
    )
        .into_response()
}

/// Binds and serves until `shutdown` resolves.
pub async fn serve(
    d: Arc<Daemon>,
    addr: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Listen { addr: addr.to_string(), source })?;
    let local = listener.local_addr().map_err(DaemonError::LocalAddr)?;
    tracing::info!(address = %local, "HTTP server listening");
    d.ready.store(true, Ordering::SeqCst);
    let settings = {
        let d = d.clone();
        move || d.config.lock().unwrap_or_else(|p| p.into_inner()).http.clone()
    };
    server::run(listener, router(d), settings, shutdown).await;
    Ok(())
}

async fn metrics(State(d): State<Arc<Daemon>>) -> Response {
    crate::selfmon::refresh_gauges(&d.store);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], d.metrics.render())
        .into_response()
}

/// 503 until the server listens, and while writes to the state dir fail
/// (alerting goes on; a restart would lose what is not on disk).
async fn ready(State(d): State<Arc<Daemon>>) -> Response {
    let failing = crate::state::faults().failing();
    if !failing.is_empty() {
        let body = format!("Service Unavailable: state dir writes failing:\n{}\n", failing.join("\n"));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    } else if d.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "forewarn is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

/// Off unless `http.enable_lifecycle: true`, as in Prometheus; SIGHUP always reloads.
async fn reload(State(d): State<Arc<Daemon>>) -> Response {
    if !d.config.lock().unwrap_or_else(|p| p.into_inner()).http.enable_lifecycle {
        return (
            StatusCode::FORBIDDEN,
            "Lifecycle API is not enabled: set http.enable_lifecycle: true in the config, or send SIGHUP to reload\n",
        )
            .into_response();
    }
    match d.reload().await {
        Ok(()) => (StatusCode::OK, "reloaded\n").into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed; the previous configuration keeps running:\n{e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    /// A panicking handler answers 500 without its message, and the server
    /// keeps answering.
    #[tokio::test]
    async fn panics_become_generic_500s() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let app: axum::Router = axum::Router::new()
            .route(
                "/boom",
                axum::routing::get(|| async {
                    if std::hint::black_box(true) {
                        panic!("secret internals at src/x.rs:1");
                    }
                    "unreachable"
                }),
            )
            .route("/ok", axum::routing::get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(super::catch_panic));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        let c = reqwest::Client::new();
        let r = c.get(format!("http://{addr}/boom")).send().await.unwrap();
        assert_eq!(r.status(), 500);
        let body = r.text().await.unwrap();
        assert!(!body.contains("secret") && body.contains("\"errorType\":\"internal\""), "{body}");
        assert_eq!(c.get(format!("http://{addr}/ok")).send().await.unwrap().text().await.unwrap(), "fine");
    }
}
