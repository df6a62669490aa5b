//! The command line's side of silences and routing: `forewarn silence
//! add|ls|expire` talk to a running daemon's `/api/v1/silences`, and
//! `forewarn route-test` answers "who would hear of an alert with these
//! labels?" from a config file alone (like `amtool config routes test`).
//! Here rather than in the binary (`src/bin/forewarn`) so the CLI stays a
//! thin face.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::route::Route;
use crate::http_client::Connection;
use crate::labels::Labels;

/// Why a CLI request failed; each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: {message} (is `forewarn run` listening there? see --url)")]
    Http { url: String, message: String },
    #[error("{url}: {message}")]
    Refused { url: String, message: String },
    #[error("{0}")]
    Input(String),
    /// The `--ca-file`/`--insecure-skip-verify` flags or the client itself.
    #[error(transparent)]
    Connection(#[from] crate::http_client::ClientError),
}

fn client(conn: &Connection) -> Result<reqwest::Client, ClientError> {
    Ok(conn.client(Duration::from_secs(10))?)
}

async fn call(conn: &Connection, req: reqwest::RequestBuilder, url: &str) -> Result<Value, ClientError> {
    let resp = conn
        .authorize(req)
        .send()
        .await
        .map_err(|e| ClientError::Http { url: url.to_string(), message: e.without_url().to_string() })?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let mut message = body["error"].as_str().map(str::to_string).unwrap_or_else(|| format!("HTTP {status}"));
        if status == reqwest::StatusCode::UNAUTHORIZED && !conn.has_credentials() {
            message.push_str(" (give --username and --password-file, or --bearer-token-file; or FOREWARN_USERNAME/FOREWARN_PASSWORD/FOREWARN_BEARER_TOKEN)");
        }
        return Err(ClientError::Refused { url: url.to_string(), message });
    }
    Ok(body)
}

/// Creates a silence; returns its id.
pub async fn silence_add(
    base: &str,
    conn: &Connection,
    matchers: &[String],
    starts_at: Option<DateTime<Utc>>,
    ends_at: DateTime<Utc>,
    created_by: &str,
    comment: &str,
) -> Result<String, ClientError> {
    let url = format!("{}/api/v1/silences", base.trim_end_matches('/'));
    let body = json!({
        "matchers": matchers,
        "startsAt": starts_at,
        "endsAt": ends_at,
        "createdBy": created_by,
        "comment": comment,
    });
    let v = call(conn, client(conn)?.post(&url).json(&body), &url).await?;
    Ok(v["data"]["silenceId"].as_str().unwrap_or_default().to_string())
}

/// Every silence the daemon knows, as JSON objects.
pub async fn silence_list(base: &str, conn: &Connection) -> Result<Vec<Value>, ClientError> {
    let url = format!("{}/api/v1/silences", base.trim_end_matches('/'));
    let v = call(conn, client(conn)?.get(&url), &url).await?;
    Ok(v["data"].as_array().cloned().unwrap_or_default())
}

/// Expires a silence now.
pub async fn silence_expire(base: &str, conn: &Connection, id: &str) -> Result<(), ClientError> {
    let url = format!("{}/api/v1/silences/{id}", base.trim_end_matches('/'));
    call(conn, client(conn)?.delete(&url), &url).await.map(|_| ())
}

/// One line per silence: id, state, matchers, end, author, comment.
pub fn format_silence(s: &Value) -> String {
    let matchers: Vec<String> = s["matchers"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    let op = match (m["isEqual"].as_bool().unwrap_or(true), m["isRegex"].as_bool().unwrap_or(false)) {
                        (true, false) => "=",
                        (false, false) => "!=",
                        (true, true) => "=~",
                        (false, true) => "!~",
                    };
                    format!("{}{}{:?}", m["name"].as_str().unwrap_or(""), op, m["value"].as_str().unwrap_or(""))
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}  {:8}  {{{}}}  ends {}  by {}: {}",
        s["id"].as_str().unwrap_or(""),
        s["status"]["state"].as_str().unwrap_or(""),
        matchers.join(", "),
        s["endsAt"].as_str().unwrap_or(""),
        s["createdBy"].as_str().unwrap_or(""),
        s["comment"].as_str().unwrap_or(""),
    )
}

/// Parses `name=value` arguments into labels.
pub fn parse_labels(args: &[String]) -> Result<Labels, ClientError> {
    let mut pairs = Vec::new();
    for a in args {
        let (k, v) = a.split_once('=').ok_or_else(|| {
            ClientError::Input(format!("{a:?}: labels are name=value (e.g. alertname=HighLatency severity=page)"))
        })?;
        let v = v.trim_matches('"');
        if !crate::rules::file::valid_label_name(k) {
            return Err(ClientError::Input(format!("{a:?}: {k:?} is not a valid label name")));
        }
        pairs.push((k.to_string(), v.to_string()));
    }
    Ok(Labels::from_pairs(pairs))
}

/// For `route-test`: the receivers an alert with `labels` reaches (in
/// order, without repeats) and one line per matching route saying why.
pub fn route_test(root: &Route, labels: &Labels) -> (Vec<String>, Vec<String>) {
    let mut receivers: Vec<String> = Vec::new();
    let mut details = Vec::new();
    for r in root.matching(labels) {
        if !receivers.contains(&r.receiver) {
            receivers.push(r.receiver.clone());
        }
        let matchers: Vec<String> = r.matchers.iter().map(|m| m.to_string()).collect();
        let mut line = format!(
            "route {} -> {}  matchers {{{}}}  group {}  group_wait {} group_interval {} repeat_interval {}",
            r.id,
            r.receiver,
            matchers.join(", "),
            r.group_by.group_labels(labels),
            r.group_wait,
            r.group_interval,
            r.repeat_interval
        );
        if !r.mute_time_intervals.is_empty() {
            line.push_str(&format!("  muted during {}", r.mute_time_intervals.join(", ")));
        }
        if !r.active_time_intervals.is_empty() {
            line.push_str(&format!("  active during {}", r.active_time_intervals.join(", ")));
        }
        details.push(line);
    }
    (receivers, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_test_lists_receivers_in_order() {
        let cfg: crate::config::RouteConfig = crate::yaml::parse(
            "r.yml",
            "receiver: default\nroutes:\n  - matchers: [severity=page]\n    receiver: pager\n    continue: true\n  - matchers: [team=db]\n    receiver: db\n",
        )
        .unwrap();
        let root = Route::from_config(&cfg).unwrap();
        let l = parse_labels(&["alertname=X".into(), "severity=page".into(), "team=db".into()]).unwrap();
        let (r, d) = route_test(&root, &l);
        assert_eq!(r, vec!["pager", "db"]);
        assert!(d[0].starts_with("route 0.0 -> pager"), "{}", d[0]);
        let (r, _) = route_test(&root, &parse_labels(&["alertname=X".into()]).unwrap());
        assert_eq!(r, vec!["default"]);
        assert!(parse_labels(&["novalue".into()]).is_err());
    }
}
