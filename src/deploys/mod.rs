//! Deploy markers: what changed, when, and whether it explains an alert.
//!
//! A [`Marker`] records one change to a service (a deploy, a rollback, a
//! restart, a config change). Markers arrive from `POST /api/v1/deploys`
//! (and `forewarn deploy`, which posts there), from scraping ([`detect`]:
//! a changed version label on a `*_build_info` series, a changed
//! `process_start_time_seconds`), and from files for `replay`
//! ([`load_markers_json`]). They are kept in the state dir ([`log`]) so a
//! restart forgets nothing, and [`mod@correlate`] turns them into the few words
//! a tired human needs next to an alert: what changed before it began, and
//! whether a rollback helped. This module owns the marker format and its
//! validation; the other files own storage, detection and wording.

pub mod client;
pub mod config;
pub mod correlate;
pub mod detect;
pub mod log;
pub mod notes;
pub mod words;

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;

pub use config::DeploysConfig;
pub use correlate::{correlate, restart_times, ChangeNote, Correlation, MatchOptions};
pub use detect::Detector;
pub use log::DeployLog;
pub use notes::{notes_for, AlertNotes};

/// What kind of change a marker records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deploy,
    Rollback,
    Restart,
    Config,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
            Kind::Restart => "restart",
            Kind::Config => "config",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "deploy" => Some(Kind::Deploy),
            "rollback" => Some(Kind::Rollback),
            "restart" => Some(Kind::Restart),
            "config" => Some(Kind::Config),
            _ => None,
        }
    }
}

/// One change to one service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Marker {
    /// Assigned by the log; 0 until stored.
    pub id: i64,
    pub service: String,
    /// May be empty for restarts and config changes.
    pub version: String,
    pub kind: Kind,
    /// When the change happened, in Unix milliseconds (RFC 3339 on the wire).
    #[serde(serialize_with = "ser_ms")]
    pub at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Extra labels used to tie the marker to alerts (e.g. `job`, `env`).
    pub labels: BTreeMap<String, String>,
}

// Markers travel inside queued notifications (the outbox stores them as
// JSON), so they read back exactly what they write.
impl<'de> serde::Deserialize<'de> for Marker {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Marker::from_json(&v, None).map_err(serde::de::Error::custom)
    }
}

fn ser_ms<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

/// `2024-05-01T12:00:00.000Z` for a Unix-millisecond time.
pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Why a marker or a marker request was refused, or the log failed.
#[derive(Debug, thiserror::Error)]
pub enum DeploysError {
    /// A field of a posted or loaded marker is missing or wrong.
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error("invalid JSON: {0} (send an object like {{\"service\": \"checkout\", \"version\": \"v2.3\"}})")]
    Json(String),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("{0}")]
    Http(String),
    #[error("deploy markers table in {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
}

fn field(name: &str, message: impl Into<String>) -> DeploysError {
    DeploysError::Field { field: name.to_string(), message: message.into() }
}

/// Why a marker's or a request's time was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimeError {
    #[error("{0} is not a valid time")]
    Number(f64),
    #[error("{text:?} is not RFC 3339 (like 2024-05-01T12:00:00Z) nor a Unix timestamp: {source}")]
    Text { text: String, source: chrono::ParseError },
    #[error("expected RFC 3339 text or a Unix timestamp")]
    Type,
}

/// Reads a time given as RFC 3339 text or a Unix timestamp: numbers below
/// 10^11 are seconds (what `date +%s` prints), larger ones milliseconds
/// (what Grafana and JavaScript use). Returns Unix milliseconds.
pub fn parse_time(v: &Value) -> Result<i64, TimeError> {
    let from_number = |n: f64| -> Result<i64, TimeError> {
        if !n.is_finite() || n < 0.0 {
            return Err(TimeError::Number(n));
        }
        Ok(if n < 1e11 { (n * 1000.0).round() as i64 } else { n.round() as i64 })
    };
    match v {
        Value::Number(n) => from_number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => {
            if let Ok(n) = s.trim().parse::<f64>() {
                return from_number(n);
            }
            chrono::DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.timestamp_millis())
                .map_err(|source| TimeError::Text { text: s.clone(), source })
        }
        _ => Err(TimeError::Type),
    }
}

fn opt_string(obj: &serde_json::Map<String, Value>, name: &str) -> Result<Option<String>, DeploysError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() > 2048 => Err(field(name, "longer than 2048 characters")),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(field(name, "must be a string")),
    }
}

impl Marker {
    /// Builds a marker from a JSON object, naming the field at fault.
    /// `default_at` is used when `at` is absent (the API passes now;
    /// `None` makes `at` required).
    pub fn from_json(v: &Value, default_at: Option<i64>) -> Result<Marker, DeploysError> {
        const KNOWN: [&str; 10] =
            ["id", "service", "version", "kind", "at", "commit", "url", "by", "labels", "rollback"];
        let Value::Object(obj) = v else {
            return Err(DeploysError::Json("expected a JSON object".into()));
        };
        if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(field(k, format!("unknown field; known fields: {}", KNOWN[1..9].join(", "))));
        }
        let service =
            opt_string(obj, "service")?.ok_or_else(|| field("service", "required (the service that changed)"))?;
        if service.len() > 256 {
            return Err(field("service", "longer than 256 characters"));
        }
        let rollback = match obj.get("rollback") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(field("rollback", "must be true or false")),
        };
        let kind = match opt_string(obj, "kind")? {
            None if rollback => Kind::Rollback,
            None => Kind::Deploy,
            Some(k) => Kind::parse(&k)
                .ok_or_else(|| field("kind", format!("{k:?} is not one of deploy, rollback, restart, config")))?,
        };
        let version = opt_string(obj, "version")?.unwrap_or_default();
        if version.is_empty() && matches!(kind, Kind::Deploy | Kind::Rollback) {
            return Err(field("version", format!("required for a {} (the version now running)", kind.as_str())));
        }
        let at = match obj.get("at") {
            None | Some(Value::Null) => default_at.ok_or_else(|| field("at", "required (RFC 3339 or Unix time)"))?,
            Some(t) => parse_time(t).map_err(|m| field("at", m.to_string()))?,
        };
        let url = opt_string(obj, "url")?;
        if let Some(u) = &url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(field("url", format!("{u:?} must start with http:// or https://")));
            }
        }
        let mut labels = BTreeMap::new();
        match obj.get("labels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let Value::String(s) = v else {
                        return Err(field(&format!("labels.{k}"), "label values must be strings"));
                    };
                    labels.insert(k.clone(), s.clone());
                }
            }
            Some(_) => return Err(field("labels", "must be an object of string values")),
        }
        let id = obj.get("id").and_then(Value::as_i64).unwrap_or(0);
        Ok(Marker {
            id,
            service,
            version,
            kind,
            at,
            commit: opt_string(obj, "commit")?,
            url,
            by: opt_string(obj, "by")?,
            labels,
        })
    }

    /// `checkout v2.3`, or just `checkout` without a version.
    pub fn service_version(&self) -> String {
        if self.version.is_empty() {
            self.service.clone()
        } else {
            format!("{} {}", self.service, words::version(&self.version))
        }
    }
}

/// Reads markers for `replay --markers`: a JSON array of marker objects,
/// or the `GET /api/v1/deploys` answer (`{"data": [...]}`), or an object
/// with `markers: [...]`. Every marker needs `at`. Errors name the index.
pub fn load_markers_json(text: &str) -> Result<Vec<Marker>, DeploysError> {
    let v: Value = serde_json::from_str(text).map_err(|e| DeploysError::Json(e.to_string()))?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("data").or_else(|| o.get("markers")) {
            Some(Value::Array(a)) => a,
            _ => {
                return Err(DeploysError::Json(
                    "expected an array of markers, or an object with `markers` or `data`".into(),
                ))
            }
        },
        _ => return Err(DeploysError::Json("expected an array of markers".into())),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let mut marker = Marker::from_json(m, None).map_err(|e| match e {
            DeploysError::Field { field, message } => DeploysError::Field { field: format!("[{i}].{field}"), message },
            DeploysError::Json(m) => DeploysError::Json(format!("[{i}]: {m}")),
            other => other,
        })?;
        if marker.id == 0 {
            marker.id = i as i64 + 1;
        }
        out.push(marker);
    }
    out.sort_by_key(|m| m.at);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_names_the_field() {
        let e = Marker::from_json(&json!({"version": "v1"}), Some(0)).unwrap_err();
        assert!(e.to_string().starts_with("service:"), "{e}");
        let e = Marker::from_json(&json!({"service": "a"}), Some(0)).unwrap_err();
        assert!(e.to_string().starts_with("version:"), "{e}");
        let e = Marker::from_json(&json!({"service": "a", "version": "1", "kind": "oops"}), Some(0)).unwrap_err();
        assert!(e.to_string().starts_with("kind:"), "{e}");
        let e = Marker::from_json(&json!({"service": "a", "version": "1", "at": "yesterday"}), Some(0)).unwrap_err();
        assert!(e.to_string().starts_with("at:"), "{e}");
        let e = Marker::from_json(&json!({"service": "a", "version": "1", "colour": "red"}), Some(0)).unwrap_err();
        assert!(e.to_string().starts_with("colour:"), "{e}");
        let e =
            Marker::from_json(&json!({"service": "a", "kind": "restart", "labels": {"x": 1}}), Some(0)).unwrap_err();
        assert!(e.to_string().starts_with("labels.x:"), "{e}");
    }

    #[test]
    fn times_and_defaults() {
        let m = Marker::from_json(&json!({"service": "a", "version": "1"}), Some(42)).unwrap();
        assert_eq!((m.at, m.kind), (42, Kind::Deploy));
        let m =
            Marker::from_json(&json!({"service": "a", "version": "1", "rollback": true, "at": 1_700_000_000}), None)
                .unwrap();
        assert_eq!((m.at, m.kind), (1_700_000_000_000, Kind::Rollback));
        let m =
            Marker::from_json(&json!({"service": "a", "version": "1", "at": "2024-01-01T00:00:00Z"}), None).unwrap();
        assert_eq!(m.at, 1_704_067_200_000);
        let m = Marker::from_json(&json!({"service": "a", "version": "1", "at": 1_704_067_200_123i64}), None).unwrap();
        assert_eq!(m.at, 1_704_067_200_123);
    }

    #[test]
    fn load_markers_round_trips_the_api_shape() {
        let m = Marker::from_json(&json!({"service": "a", "version": "2", "at": 1_700_000_000, "commit": "abc"}), None)
            .unwrap();
        let text = json!({"status": "success", "data": [m]}).to_string();
        let back = load_markers_json(&text).unwrap();
        assert_eq!(back[0].at, m.at);
        assert_eq!(back[0].commit.as_deref(), Some("abc"));
        let e = load_markers_json(r#"[{"service": "a", "version": "1"}]"#).unwrap_err();
        assert!(e.to_string().starts_with("[0].at:"), "{e}");
    }
}
