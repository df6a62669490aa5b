//! The client side of `/api/v1/query`, for `forewarn query`: one request to a
//! running daemon (or any Prometheus-compatible server), and the answer as a
//! plain-text table.

use std::time::Duration;

use serde_json::Value;

/// Why a query through the HTTP API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: {msg} (is forewarn running there? see --server)")]
    Unreachable { url: String, msg: String },
    #[error("{url}: {msg}")]
    Server { url: String, msg: String },
    #[error("unexpected answer from {url}: {msg}")]
    Shape { url: String, msg: String },
}

/// Calls `GET {server}/api/v1/query` and returns the `data` object.
pub async fn instant(
    server: &str,
    conn: &crate::http_client::Connection,
    expr: &str,
    time: Option<&str>,
) -> Result<Value, ClientError> {
    let url = format!("{}/api/v1/query", server.trim_end_matches('/'));
    let unreachable = |msg: String| ClientError::Unreachable { url: url.clone(), msg };
    let client = conn.client(Duration::from_secs(30)).map_err(|e| unreachable(e.to_string()))?;
    let mut params = vec![("query", expr)];
    if let Some(t) = time {
        params.push(("time", t));
    }
    let resp = conn.authorize(client.get(&url).query(&params)).send().await.map_err(|e| unreachable(e.to_string()))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| unreachable(e.to_string()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| ClientError::Shape {
        url: url.clone(),
        msg: format!("HTTP {status}, not JSON ({e}): {}", text.chars().take(200).collect::<String>()),
    })?;
    if v["status"] != "success" {
        let msg = v["error"].as_str().unwrap_or("no error message").to_string();
        let kind = v["errorType"].as_str().unwrap_or("error");
        return Err(ClientError::Server { url, msg: format!("HTTP {status}: {kind}: {msg}") });
    }
    Ok(v["data"].clone())
}

fn labels_text(metric: &Value) -> String {
    let Some(m) = metric.as_object() else { return "{}".into() };
    let name = m.get("__name__").and_then(Value::as_str).unwrap_or("");
    let rest: Vec<String> = m
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

/// Renders a query result (`data` of `/api/v1/query`) as a two-column table:
/// labels and value (a matrix prints its points as `value @time`).
pub fn table(data: &Value) -> Result<String, ClientError> {
    let shape = |msg: &str| ClientError::Shape { url: "the server".into(), msg: msg.into() };
    let kind = data["resultType"].as_str().ok_or_else(|| shape("no resultType"))?;
    let result = &data["result"];
    let mut rows: Vec<(String, String)> = Vec::new();
    match kind {
        "scalar" | "string" => rows.push((kind.into(), result[1].as_str().unwrap_or("").into())),
        "vector" => {
            for s in result.as_array().ok_or_else(|| shape("vector result is not a list"))? {
                rows.push((labels_text(&s["metric"]), s["value"][1].as_str().unwrap_or("").into()));
            }
        }
        "matrix" => {
            for s in result.as_array().ok_or_else(|| shape("matrix result is not a list"))? {
                let points: Vec<String> = s["values"]
                    .as_array()
                    .map(|a| a.iter().map(|p| format!("{} @{}", p[1].as_str().unwrap_or(""), p[0])).collect())
                    .unwrap_or_default();
                rows.push((labels_text(&s["metric"]), points.join("  ")));
            }
        }
        other => return Err(shape(&format!("unknown resultType {other:?}"))),
    }
    let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0).max("LABELS".len());
    let mut out = format!("{:<width$}  VALUE\n", "LABELS");
    for (l, v) in &rows {
        out.push_str(&format!("{l:<width$}  {v}\n"));
    }
    if rows.is_empty() {
        out.push_str("(no data)\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn table_lists_labels_and_values() {
        let data = json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "job": "api"}, "value": [1.0, "1"]},
            {"metric": {}, "value": [1.0, "0.5"]},
        ]});
        let t = super::table(&data).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[1].starts_with("up{job=\"api\"}") && lines[1].ends_with("  1"), "{t}");
        assert!(lines[2].starts_with("{}") && lines[2].ends_with("0.5"), "{t}");
        assert_eq!(
            super::table(&json!({"resultType": "scalar", "result": [1.0, "2"]}))
                .unwrap()
                .lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["scalar", "2"]
        );
        assert!(super::table(&json!({"resultType": "vector", "result": []})).unwrap().contains("(no data)"));
    }
}
