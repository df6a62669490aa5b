//! HTTP for deploy markers and alert charts.
//!
//! `POST /api/v1/deploys` records a marker (bearer token when
//! `deploys.token` is set); `GET /api/v1/deploys` lists them;
//! `GET|POST /api/v1/annotations` serves them in the shape Grafana's JSON
//! and Infinity datasources draw as annotations; and
//! `GET /api/v1/alerts/<id>/chart.svg` (or `.png`) draws an alert with its
//! markers. Handlers only translate: the decisions live in `deploys` and
//! `chart`.

// Helpers return a ready error `Response` so handlers can `?`-style bail
// out; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::chart::{self, ChartError};
use crate::daemon::Daemon;
use crate::deploys::log::MarkerQuery;
use crate::deploys::{parse_time, DeploysError, Marker};

/// How far back `GET /api/v1/deploys` looks without `from`.
const DEFAULT_LIST_MS: i64 = 7 * 86_400_000;

pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/api/v1/deploys", get(list).post(create))
        .route("/api/v1/annotations", get(annotations_get).post(annotations_post))
        .route("/api/v1/alerts/{id}/chart.svg", get(chart_svg))
        .route("/api/v1/alerts/{id}/chart.png", get(chart_png))
}

fn error(status: StatusCode, kind: &str, msg: impl std::fmt::Display) -> Response {
    (status, Json(json!({"status": "error", "errorType": kind, "error": msg.to_string()}))).into_response()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Compares without an early exit, so response time does not leak how
/// much of a guessed token was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(d: &Daemon, headers: &HeaderMap, http_auth: bool) -> Result<(), Response> {
    if http_auth {
        // Already showed an `http` credential (see `guard`).
        return Ok(());
    }
    let Some(token) = d.deploys.settings().token else { return Ok(()) };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(g) if same_secret(g.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "wrong bearer token (see deploys.token)")),
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing `Authorization: Bearer <token>` header (deploys.token is set; `forewarn deploy --token`)",
        )),
    }
}

fn storage_error(e: DeploysError) -> Response {
    tracing::error!(error = %e, "deploy markers");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e)
}

async fn create(
    State(d): State<Arc<Daemon>>,
    http_auth: Option<axum::Extension<super::guard::Authenticated>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(r) = authorized(&d, &headers, http_auth.is_some()) {
        return r;
    }
    let v: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_data", DeploysError::Json(e.to_string())),
    };
    let marker = match Marker::from_json(&v, Some(now_ms())) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_data", e),
    };
    match d.deploys.insert(&marker) {
        Ok(m) => Json(json!({"status": "success", "data": m})).into_response(),
        Err(e @ DeploysError::Field { .. }) => error(StatusCode::BAD_REQUEST, "bad_data", e),
        Err(e) => storage_error(e),
    }
}

/// `from`/`to` as RFC 3339 or Unix (s or ms); the error names the parameter.
fn time_param(q: &HashMap<String, String>, name: &str, default: i64) -> Result<i64, Response> {
    match q.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => parse_time(&Value::String(s.to_string()))
            .map_err(|m| error(StatusCode::BAD_REQUEST, "bad_data", format!("{name}: {m}"))),
    }
}

fn range(q: &HashMap<String, String>) -> Result<(i64, i64), Response> {
    let now = now_ms();
    let to = time_param(q, "to", now)?;
    let from = time_param(q, "from", to - DEFAULT_LIST_MS)?;
    if from > to {
        return Err(error(StatusCode::BAD_REQUEST, "bad_data", "from: must not be after `to`"));
    }
    Ok((from, to))
}

async fn list(State(d): State<Arc<Daemon>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (from_ms, to_ms) = match range(&q) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 1000,
        Some(Ok(l)) => l,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "bad_data", "limit: expected a whole number"),
    };
    let service = q.get("service").filter(|s| !s.is_empty()).cloned();
    match d.deploys.query(&MarkerQuery { service, from_ms, to_ms, limit }) {
        Ok(ms) => Json(json!({"status": "success", "data": ms})).into_response(),
        Err(e) => storage_error(e),
    }
}

/// A marker as a Grafana annotation: `time`/`timeEnd` in ms, `tags` =
/// service, kind and version, so a dashboard can filter on any of them.
fn annotation(m: &Marker) -> Value {
    let mut text = match m.kind {
        crate::deploys::Kind::Deploy => format!("{} deployed", m.service_version()),
        crate::deploys::Kind::Rollback => {
            format!("{} rolled back to {}", m.service, crate::deploys::words::version(&m.version))
        }
        crate::deploys::Kind::Restart => format!("{} restarted", m.service),
        crate::deploys::Kind::Config => format!("{} config changed", m.service),
    };
    if let Some(by) = &m.by {
        text.push_str(&format!(" by {by}"));
    }
    if let Some(c) = &m.commit {
        text.push_str(&format!(" ({c})"));
    }
    if let Some(u) = &m.url {
        text.push_str(&format!(" {u}"));
    }
    let mut tags = vec![m.service.clone(), m.kind.as_str().to_string()];
    if !m.version.is_empty() {
        tags.push(m.version.clone());
    }
    json!({"id": m.id, "time": m.at, "timeEnd": m.at, "title": text, "text": text, "tags": tags})
}

fn annotations(d: &Daemon, from_ms: i64, to_ms: i64, tags: &[String], match_any: bool) -> Response {
    match d.deploys.query(&MarkerQuery { service: None, from_ms, to_ms, limit: 5000 }) {
        Ok(ms) => {
            let out: Vec<Value> = ms
                .iter()
                .map(annotation)
                .filter(|a| {
                    let have: Vec<&str> =
                        a["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    tags.is_empty()
                        || if match_any {
                            tags.iter().any(|t| have.contains(&t.as_str()))
                        } else {
                            tags.iter().all(|t| have.contains(&t.as_str()))
                        }
                })
                .collect();
            Json(out).into_response()
        }
        Err(e) => storage_error(e),
    }
}

fn split_tags(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

async fn annotations_get(State(d): State<Arc<Daemon>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (from, to) = match range(&q) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let tags = q.get("tags").map(|t| split_tags(t)).unwrap_or_default();
    let any = q.get("matchAny").is_some_and(|v| v == "true");
    annotations(&d, from, to, &tags, any)
}

/// The JSON datasource plugin's `POST .../annotations`: `range.from`/`to`
/// and the annotation's `query` as comma-separated tags.
async fn annotations_post(State(d): State<Arc<Daemon>>, body: String) -> Response {
    let v: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_data", format!("invalid JSON: {e}")),
    };
    let now = now_ms();
    let when = |name: &str, default: i64| match v.pointer(&format!("/range/{name}")) {
        None | Some(Value::Null) => Ok(default),
        Some(t) => parse_time(t).map_err(|m| error(StatusCode::BAD_REQUEST, "bad_data", format!("range.{name}: {m}"))),
    };
    let (from, to) = match (when("from", now - DEFAULT_LIST_MS), when("to", now)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let tags = v.pointer("/annotation/query").and_then(Value::as_str).map(split_tags).unwrap_or_default();
    annotations(&d, from, to, &tags, false)
}

fn chart_spec(d: &Daemon, id: &str) -> Result<chart::ChartSpec, Response> {
    let fp = u64::from_str_radix(id, 16).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            format!("alert id {id:?}: expected 16 hex digits (an alert's fingerprint)"),
        )
    })?;
    let opts = d.query_options();
    chart::alert::spec_for_fingerprint(&*d.reads(), &d.rules, Some(&d.deploys), fp, now_ms(), &opts).map_err(
        |e| match e {
            ChartError::NotFound(m) => error(StatusCode::NOT_FOUND, "not_found", m),
            ChartError::Query(m) => error(StatusCode::UNPROCESSABLE_ENTITY, "execution", m),
            other => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", other),
        },
    )
}

/// The chart's series, read off the async workers (a datasource answers
/// over the network).
async fn chart_spec_blocking(d: Arc<Daemon>, id: String) -> Result<chart::ChartSpec, Response> {
    match tokio::task::spawn_blocking(move || chart_spec(&d, &id)).await {
        Ok(r) => r,
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e)),
    }
}

async fn chart_svg(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    let spec = match chart_spec_blocking(d, id).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match chart::render_svg(&spec) {
        Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    }
}

async fn chart_png(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    let spec = match chart_spec_blocking(d, id).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match chart::render_png(&spec) {
        Ok(png) => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    }
}
