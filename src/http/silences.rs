//! `/api/v1/silences`: create, list, look at and expire silences over HTTP
//! (what `forewarn silence` talks to). JSON in Alertmanager's silence shape,
//! answers in the `{"status": ..., "data": ...}` envelope of `/api/v1/*`;
//! a refused silence is a 400 whose `error` starts with the offending field.
//! The handlers read the clock and pass it in; the rules live in
//! `notify::silence`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use chrono::Utc;
use serde_json::{json, Value};

use crate::daemon::Daemon;
use crate::notify::silence::{self, Silence, SilenceError, SilenceInput};

pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/api/v1/silences", get(list).post(create))
        .route("/api/v1/silences/{id}", get(one).delete(expire))
}

fn shown(s: &Silence) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    v["status"] = json!({ "state": silence::state(s, Utc::now()) });
    v
}

fn error(code: StatusCode, kind: &str, msg: String) -> Response {
    (code, Json(json!({"status": "error", "errorType": kind, "error": msg}))).into_response()
}

fn failed(e: SilenceError) -> Response {
    match e {
        SilenceError::Invalid { .. } => error(StatusCode::BAD_REQUEST, "bad_data", e.to_string()),
        SilenceError::NotFound(_) => error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        SilenceError::Storage { .. } => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn list(State(d): State<Arc<Daemon>>) -> Response {
    let data: Vec<Value> = d.silences.list().iter().map(shown).collect();
    Json(json!({"status": "success", "data": data})).into_response()
}

async fn one(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    match d.silences.get(&id) {
        Some(s) => Json(json!({"status": "success", "data": shown(&s)})).into_response(),
        None => failed(SilenceError::NotFound(id)),
    }
}

async fn create(State(d): State<Arc<Daemon>>, body: Bytes) -> Response {
    let input: SilenceInput = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_data",
                format!("body:{}:{}: {e} (expected {{\"matchers\": [...], \"endsAt\": ..., \"createdBy\": ..., \"comment\": ...}})", e.line(), e.column()),
            )
        }
    };
    match d.silences.upsert(&input, Utc::now()) {
        Ok(id) => Json(json!({"status": "success", "data": {"silenceId": id}})).into_response(),
        Err(e) => failed(e),
    }
}

async fn expire(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    match d.silences.expire(&id, Utc::now()) {
        Ok(()) => Json(json!({"status": "success"})).into_response(),
        Err(e) => failed(e),
    }
}
