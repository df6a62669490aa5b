//! `/graph`: a PromQL box and a chart of the result over a chosen range,
//! with the deploy markers of that range drawn on it (optionally only one
//! service's). Queries run under the same limits as `/api/v1/query_range`
//! (a `query.max_concurrency` slot, `query.timeout`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::layout::{esc, page};
use super::now_ms;
use crate::chart::{ChartSeries, ChartSpec, VLine};
use crate::daemon::Daemon;
use crate::deploys::log::MarkerQuery;
use crate::promql;

/// The ranges offered, as (parameter, ms).
const RANGES: [(&str, i64); 7] = [
    ("5m", 300_000),
    ("15m", 900_000),
    ("1h", 3_600_000),
    ("6h", 21_600_000),
    ("24h", 86_400_000),
    ("7d", 604_800_000),
    ("30d", 2_592_000_000),
];
/// Points across the chart.
const POINTS: i64 = 300;

/// Evaluates `expr` over `from..to` under the query limits.
async fn evaluate(d: &Arc<Daemon>, text: &str, from: i64, to: i64) -> Result<Vec<crate::store::Series>, String> {
    let expr = promql::parse(text).map_err(|e| format!("cannot parse the expression: {e}"))?;
    let mut opts = d.query_options();
    let timeout = opts.limits.timeout;
    let started = std::time::Instant::now();
    let permit = match tokio::time::timeout(timeout, d.query_slots().acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => return Err(format!("no query slot free within {timeout:?} (query.max_concurrency); try again")),
    };
    opts.limits.timeout = timeout.saturating_sub(started.elapsed());
    let store = d.reads();
    let step = ((to - from) / POINTS).max(1000);
    let r = tokio::task::spawn_blocking(move || {
        let _slot = permit;
        let v = promql::eval_range(&*store, &expr, from, to, step, &opts);
        store.take_error().map_or(v, |e| Err(promql::EvalError::Read(e)))
    })
    .await;
    match r {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("evaluation failed: {e}")),
        Err(e) => {
            tracing::error!(error = %e, "graph query failed unexpectedly");
            Err("internal error (logged by forewarn)".into())
        }
    }
}

/// `GET /graph?expr=&range=1h&service=`.
pub async fn show(State(d): State<Arc<Daemon>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let now = now_ms();
    let text = q.get("expr").map(|s| s.trim().to_string()).unwrap_or_default();
    let range = q.get("range").map(String::as_str).unwrap_or("1h").to_string();
    let service = q.get("service").map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let mut body = String::from("<h1>Graph</h1>");
    body.push_str(&format!(
        "<form method=\"get\" action=\"/graph\"><label for=\"expr\">PromQL expression</label>\
         <textarea id=\"expr\" name=\"expr\" rows=\"2\" placeholder=\"rate(http_requests_total[5m])\">{}</textarea>\
         <div class=\"row\"><div><label for=\"range\">Range</label><select id=\"range\" name=\"range\">",
        esc(&text)
    ));
    for (r, _) in RANGES {
        let sel = if r == range { " selected" } else { "" };
        body.push_str(&format!("<option{sel}>{r}</option>"));
    }
    body.push_str(&format!(
        "</select></div><div><label for=\"service\">Deploys of service (empty: all)</label>\
         <input type=\"text\" id=\"service\" name=\"service\" value=\"{}\"></div></div>\
         <p><button type=\"submit\">Run</button></p></form>",
        esc(service.as_deref().unwrap_or(""))
    ));
    let Some(&(_, range_ms)) = RANGES.iter().find(|(r, _)| *r == range) else {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\">range {}: expected one of 5m, 15m, 1h, 6h, 24h, 7d, 30d</p>",
            esc(&range)
        ));
        let mut r = page("Graph", "/graph", &body);
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    };
    if text.is_empty() {
        return page("Graph", "/graph", &body);
    }
    let from = now - range_ms;
    let series = match evaluate(&d, &text, from, now).await {
        Ok(s) => s,
        Err(e) => {
            body.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>", esc(&e)));
            let mut r = page("Graph", "/graph", &body);
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return r;
        }
    };
    let markers = d
        .deploys
        .query(&MarkerQuery { service: service.clone(), from_ms: from, to_ms: now, limit: 500 })
        .unwrap_or_default();
    let spec = ChartSpec {
        title: text.clone(),
        from_ms: from,
        to_ms: now,
        series: series
            .iter()
            .map(|s| ChartSeries { name: s.labels.to_string(), points: s.samples.iter().map(|p| (p.t, p.v)).collect() })
            .collect(),
        markers: markers
            .iter()
            .map(|m| VLine {
                at_ms: m.at,
                label: crate::chart::alert::marker_label(m),
                kind: m.kind,
                detail: crate::chart::alert::marker_detail(m),
            })
            .collect(),
        width: 1200,
        height: 420,
        ..Default::default()
    };
    match crate::chart::render_svg(&spec) {
        Ok(svg) => {
            let svg = svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"Chart of {}\" ", esc(&text)), 1);
            body.push_str(&format!("<figure class=\"chart\">{svg}</figure>"));
        }
        Err(e) => body.push_str(&format!("<p class=\"error\">{}</p>", esc(&e.to_string()))),
    }
    body.push_str(&format!(
        "<p class=\"muted\">{} series{}; {} deploy marker{} in range.</p>",
        series.len(),
        if series.len() > 12 { " (the first 12 drawn)" } else { "" },
        markers.len(),
        if markers.len() == 1 { "" } else { "s" }
    ));
    page("Graph", "/graph", &body)
}
