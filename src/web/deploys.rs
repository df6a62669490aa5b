//! `/deploys`: a timeline per service of the deploy, rollback, restart and
//! config markers, those posted from CI and those forewarn saw while
//! scraping told apart; filters by service, kind, source and range.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::layout::{self, ago, esc, page, time};
use super::now_ms;
use crate::daemon::Daemon;
use crate::deploys::log::MarkerQuery;
use crate::deploys::{Kind, Marker};

/// The ranges offered, as (parameter, ms); `auto` looks back 30 days and
/// frames the timeline on the markers found.
const RANGES: [(&str, i64); 6] = [
    ("auto", 2_592_000_000),
    ("1h", 3_600_000),
    ("6h", 21_600_000),
    ("24h", 86_400_000),
    ("7d", 604_800_000),
    ("30d", 2_592_000_000),
];

/// Whether forewarn recorded the marker itself (seen while scraping).
fn auto_detected(m: &Marker) -> bool {
    m.by.as_deref().is_some_and(|b| b.starts_with("forewarn ("))
}

fn select(name: &str, label: &str, current: &str, options: &[(&str, &str)]) -> String {
    let mut s = format!("<label for=\"{name}\">{label}</label><select id=\"{name}\" name=\"{name}\">");
    for (v, text) in options {
        let sel = if *v == current { " selected" } else { "" };
        s.push_str(&format!("<option value=\"{}\"{sel}>{}</option>", esc(v), esc(text)));
    }
    s.push_str("</select>");
    s
}

fn describe(m: &Marker) -> String {
    match m.kind {
        Kind::Deploy => format!("{} deployed", m.service_version()),
        Kind::Rollback => format!("{} rolled back to {}", m.service, crate::deploys::words::version(&m.version)),
        Kind::Restart => format!("{} restarted", m.service),
        Kind::Config => format!("{} config changed", m.service),
    }
}

/// `GET /deploys?service=&kind=&source=ci|auto&range=24h`.
pub async fn show(State(d): State<Arc<Daemon>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let now = now_ms();
    let range = q.get("range").map(String::as_str).filter(|r| !r.is_empty()).unwrap_or("auto");
    let Some(&(_, range_ms)) = RANGES.iter().find(|(r, _)| *r == range) else {
        return layout::error_page(
            StatusCode::BAD_REQUEST,
            "Bad range",
            &format!("range {range:?}: expected one of auto, 1h, 6h, 24h, 7d, 30d"),
            "/deploys",
        );
    };
    let service = q.get("service").map(|s| s.trim()).filter(|s| !s.is_empty());
    let kind = q.get("kind").map(String::as_str).unwrap_or("");
    let source = q.get("source").map(String::as_str).unwrap_or("");
    let from = now - range_ms;
    let all = match d.deploys.query(&MarkerQuery { service: None, from_ms: from, to_ms: now, limit: 5000 }) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "deploy markers for the web page");
            return layout::error_page(StatusCode::INTERNAL_SERVER_ERROR, "Deploys", &e.to_string(), "/deploys");
        }
    };
    let mut services: Vec<&str> = all.iter().map(|m| m.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let shown: Vec<&Marker> = all
        .iter()
        .filter(|m| service.is_none_or(|s| s == m.service))
        .filter(|m| kind.is_empty() || m.kind.as_str() == kind)
        .filter(|m| match source {
            "auto" => auto_detected(m),
            "ci" => !auto_detected(m),
            _ => true,
        })
        .collect();
    let mut svc_opts: Vec<(&str, &str)> = vec![("", "all services")];
    svc_opts.extend(services.iter().map(|s| (*s, *s)));
    let mut body =
        String::from("<h1>Deploys</h1><form method=\"get\" action=\"/deploys\" class=\"row\" aria-label=\"Filters\">");
    body.push_str(&format!("<div>{}</div>", select("service", "Service", service.unwrap_or(""), &svc_opts)));
    body.push_str(&format!(
        "<div>{}</div>",
        select(
            "kind",
            "Kind",
            kind,
            &[
                ("", "all kinds"),
                ("deploy", "deploy"),
                ("rollback", "rollback"),
                ("restart", "restart"),
                ("config", "config")
            ]
        )
    ));
    body.push_str(&format!(
        "<div>{}</div>",
        select(
            "source",
            "Source",
            source,
            &[("", "all sources"), ("ci", "posted (CI)"), ("auto", "seen while scraping")]
        )
    ));
    let range_opts: Vec<(&str, &str)> = RANGES.iter().map(|(r, _)| (*r, *r)).collect();
    body.push_str(&format!("<div>{}</div>", select("range", "Last", range, &range_opts)));
    body.push_str("<div><button type=\"submit\">Filter</button></div></form>");
    if shown.is_empty() {
        body.push_str("<p>No markers in this range. CI posts them with <code>forewarn deploy</code> or <code>POST /api/v1/deploys</code>; \
                       with <code>deploys.detect</code> forewarn records version changes and restarts it sees while scraping.</p>");
    }
    let mut by_service: BTreeMap<&str, Vec<&Marker>> = BTreeMap::new();
    for m in &shown {
        by_service.entry(m.service.as_str()).or_default().push(m);
    }
    // The timeline's left edge: the range, or (auto) a little before the
    // oldest marker shown, so markers are not crowded at the right.
    let left_edge = match shown.iter().map(|m| m.at).min() {
        Some(oldest) if range == "auto" => oldest - ((now - oldest) / 10).max(60_000),
        _ => from,
    };
    let span = (now - left_edge).max(1) as f64;
    for (svc, mut ms) in by_service {
        ms.sort_by_key(|m| m.at);
        body.push_str(&format!(
            "<section class=\"card\"><h2>{}</h2><div class=\"timeline\" role=\"list\" aria-label=\"Timeline of {0}\">",
            esc(svc)
        ));
        // Short labels beside the lines while they are few enough to read.
        let labelled = ms.len() <= 12;
        for (i, m) in ms.iter().enumerate() {
            let left = ((m.at - left_edge) as f64 / span * 100.0).clamp(0.0, 100.0);
            let mut detail = format!("{} at {}", describe(m), layout::rfc(m.at));
            if let Some(c) = &m.commit {
                detail.push_str(&format!(", commit {c}"));
            }
            if let Some(by) = &m.by {
                detail.push_str(&format!(", by {by}"));
            }
            let short = match m.kind {
                Kind::Deploy | Kind::Rollback => crate::deploys::words::version(&m.version),
                k => k.as_str().to_string(),
            };
            let label = if labelled {
                format!(
                    "<span class=\"{}\" aria-hidden=\"true\">{}</span>",
                    if left > 80.0 { "left" } else { "right" },
                    esc(&short)
                )
            } else {
                String::new()
            };
            body.push_str(&format!(
                "<a role=\"listitem\" href=\"#deploy-{id}\" class=\"{k}{auto} row{row}\" style=\"left:{left:.2}%\" title=\"{t}\" aria-label=\"{t}\">{label}</a>",
                id = m.id,
                k = m.kind.as_str(),
                auto = if auto_detected(m) { " auto" } else { "" },
                row = i % 2,
                t = esc(&detail)
            ));
        }
        body.push_str(&format!(
            "</div><div class=\"axis\" aria-hidden=\"true\"><span>{}</span><span>{}</span><span>now</span></div>",
            esc(&ago(left_edge, now)),
            esc(&ago((left_edge + now) / 2, now))
        ));
        body.push_str(
            "<div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Change</th>\
             <th scope=\"col\">Commit</th><th scope=\"col\">By</th><th scope=\"col\">Source</th></tr></thead><tbody>",
        );
        for m in ms.iter().rev() {
            let link = m
                .url
                .as_deref()
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                .map(|u| format!(" <a href=\"{}\" rel=\"noopener noreferrer\">link</a>", esc(u)))
                .unwrap_or_default();
            body.push_str(&format!(
                "<tr id=\"deploy-{id}\"><td>{t}<div class=\"muted\">{ago}</div></td><td>{what}{link}</td><td><code>{c}</code></td>\
                 <td>{by}</td><td>{src}</td></tr>",
                id = m.id,
                t = time(m.at),
                ago = ago(m.at, now),
                what = esc(&describe(m)),
                c = esc(m.commit.as_deref().unwrap_or("")),
                by = esc(m.by.as_deref().unwrap_or("")),
                src = if auto_detected(m) { "seen while scraping" } else { "posted" },
            ));
        }
        body.push_str("</tbody></table></div></section>");
    }
    page("Deploys", "/deploys", &body)
}
