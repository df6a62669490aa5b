//! The alerts pages: `/alerts` (also `/`), every pending and firing alert
//! grouped by state and severity, each with its labels as chips, since
//! when, its summary, the verdict on recent changes and its chart inline;
//! and `/alerts/{id}`, one alert with a large chart, what its rule judged
//! against, the changes before it and links to its rule and target.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::layout::{self, ago, chips, esc, page, span, time, url_arg};
use super::{alert_views, now_ms, overlay_words, rule_anchor, AlertView};
use crate::alerts::AlertState;
use crate::daemon::Daemon;

/// Severities in the order they are shown; others follow by name.
const SEVERITY_ORDER: [&str; 6] = ["critical", "page", "error", "warning", "info", "none"];

fn severity_rank(s: &str) -> (usize, String) {
    (SEVERITY_ORDER.iter().position(|x| *x == s).unwrap_or(SEVERITY_ORDER.len()), s.to_string())
}

/// The chart of alert `fp` as inline SVG in a `<figure>`, or a note saying
/// why there is none.
pub(crate) fn chart(d: &Daemon, fp: u64, (width, height): (u32, u32), now: i64) -> String {
    let spec =
        crate::chart::alert::spec_for_fingerprint(&*d.reads(), &d.rules, Some(&d.deploys), fp, now, &d.query_options());
    let svg = spec.and_then(|mut s| {
        s.width = width;
        s.height = height;
        crate::chart::render_svg(&s).map(|svg| (svg, s))
    });
    match svg {
        Ok((svg, spec)) => {
            let label =
                format!("Chart of {} from {} to {}", spec.title, layout::rfc(spec.from_ms), layout::rfc(spec.to_ms));
            let svg = svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{}\" ", esc(&label)), 1);
            format!("<figure class=\"chart\">{svg}</figure>")
        }
        Err(e) => format!("<p class=\"muted\">No chart: {}</p>", esc(&e.to_string())),
    }
}

/// Matchers that silence exactly this alert (its full label set), one a line.
fn silence_matchers(v: &AlertView) -> String {
    v.alert
        .labels
        .iter()
        .map(|(k, val)| format!("{k}=\"{}\"\n", val.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect()
}

/// The verdict and the listed changes.
fn changes(v: &AlertView, now: i64) -> String {
    let Some(c) = &v.correlation else { return String::new() };
    let mut s = format!("<p class=\"verdict\">Verdict: <span data-verdict>{}</span></p>", esc(&c.verdict));
    if !c.changes.is_empty() {
        s.push_str("<ul class=\"changes\" aria-label=\"Recent changes\">");
        for n in &c.changes {
            let m = &n.marker;
            let mut extra = String::new();
            if let Some(commit) = m.commit.as_deref().filter(|c| !n.text.contains(*c)) {
                extra.push_str(&format!(" · commit <code>{}</code>", esc(commit)));
            }
            if let Some(by) = m.by.as_deref().filter(|b| !n.text.contains(*b)) {
                extra.push_str(&format!(" · by {}", esc(by)));
            }
            if let Some(u) = m.url.as_deref().filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
                extra.push_str(&format!(" · <a href=\"{}\" rel=\"noopener noreferrer\">link</a>", esc(u)));
            }
            s.push_str(&format!("<li>{} <span class=\"muted\">({}{extra})</span></li>", esc(&n.text), ago(m.at, now)));
        }
        s.push_str("</ul>");
    }
    s
}

fn since(v: &AlertView, now: i64) -> String {
    let a = &v.alert;
    match (a.state, a.resolved_at) {
        (AlertState::Inactive, Some(r)) => {
            format!("resolved {} ({}), active {}", time(r), ago(r, now), span(r - a.active_at))
        }
        _ => format!("since {} (for {})", time(a.active_at), span(now - a.active_at)),
    }
}

/// Cards with their chart drawn inline; the rest link to it (each chart
/// is a range query, and a storm of alerts must not make the page slow).
const INLINE_CHARTS: usize = 20;

fn card(d: &Daemon, v: &AlertView, now: i64, with_chart: bool) -> String {
    let a = &v.alert;
    let id = v.id();
    let mut s = format!(
        "<article class=\"card {st}\" aria-labelledby=\"a-{id}\"><div class=\"row\">\
         <h3 id=\"a-{id}\"><a href=\"/alerts/{id}\">{name}</a></h3>\
         <span class=\"state {st}\">{st}</span>{sil}<span class=\"muted\">{since}</span></div>\
         <div>{chips}</div>",
        st = a.state.as_str(),
        name = esc(a.labels.value("alertname")),
        sil = if v.silenced { "<span class=\"chip\">silenced</span>" } else { "" },
        since = since(v, now),
        chips = chips(&a.labels, &["alertname"]),
    );
    s.push_str("<div class=\"grid\"><div>");
    let summary = a.annotations.value("summary");
    if !summary.is_empty() {
        s.push_str(&format!("<p>{}</p>", esc(summary)));
    }
    let why = a.annotations.value(crate::alerts::EXPLANATION);
    if !why.is_empty() {
        s.push_str(&format!("<p class=\"muted\">{}</p>", esc(why)));
    }
    if let Some(o) = &a.overlay {
        s.push_str(&format!("<p>{}</p>", overlay_words(o, v.clear, now)));
    }
    s.push_str(&changes(v, now));
    s.push_str(&format!(
        "<p><a href=\"/alerts/{id}\">Details</a> · <a href=\"/silences/new?matchers={m}\">Silence this alert</a></p>",
        m = url_arg(&silence_matchers(v))
    ));
    s.push_str("</div><div>");
    if with_chart {
        s.push_str(&chart(d, a.fingerprint(), (620, 260), now));
    } else {
        s.push_str(&format!("<p><a href=\"/alerts/{id}\">Chart</a></p>"));
    }
    s.push_str("</div></div></article>");
    s
}

/// `GET /alerts` and `GET /`.
/// `GET /alerts?refresh=30`: `refresh` (5 to 3600 s) reloads the page on
/// its own, for a wall screen.
pub async fn list(State(d): State<Arc<Daemon>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let refresh = q.get("refresh").and_then(|r| r.parse::<u32>().ok()).filter(|r| (5..=3600).contains(r));
    super::blocking(d, move |d| {
        let mut charts = 0;
        let now = now_ms();
        let (views, resolved): (Vec<AlertView>, Vec<AlertView>) =
            alert_views(d, true, now).into_iter().partition(|v| v.alert.state != AlertState::Inactive);
        let firing = views.iter().filter(|v| v.alert.state == AlertState::Firing).count();
        let mut body = format!(
            "<h1>Alerts</h1><p class=\"muted\">{firing} firing, {} pending. Updated {}; reload for the latest.</p>",
            views.len() - firing,
            time(now)
        );
        if views.is_empty() {
            body.push_str("<p>No alerts are pending or firing.</p>");
        }
        for state in [AlertState::Firing, AlertState::Pending] {
            let mut of_state: Vec<&AlertView> = views.iter().filter(|v| v.alert.state == state).collect();
            of_state.sort_by_key(|v| severity_rank(v.alert.labels.value("severity")));
            let mut severities: Vec<&str> = of_state.iter().map(|v| v.alert.labels.value("severity")).collect();
            severities.dedup();
            for sev in severities {
                let group: Vec<&&AlertView> =
                    of_state.iter().filter(|v| v.alert.labels.value("severity") == sev).collect();
                let sev_name = if sev.is_empty() { "no severity" } else { sev };
                body.push_str(&format!(
                    "<section><h2><span class=\"state {st}\">{st}</span> · {} ({})</h2>",
                    esc(sev_name),
                    group.len(),
                    st = state.as_str()
                ));
                for v in group {
                    charts += 1;
                    body.push_str(&card(d, v, now, charts <= INLINE_CHARTS));
                }
                body.push_str("</section>");
            }
        }
        if !resolved.is_empty() {
            body.push_str(&format!(
                "<section><h2>Resolved recently ({})</h2><div class=\"table-wrap\"><table><thead><tr>\
                 <th scope=\"col\">Alert</th><th scope=\"col\">Labels</th><th scope=\"col\">When</th></tr></thead><tbody>",
                resolved.len()
            ));
            for v in &resolved {
                body.push_str(&format!(
                    "<tr><td><a href=\"/alerts/{id}\">{n}</a></td><td>{c}</td><td>{w}</td></tr>",
                    id = v.id(),
                    n = esc(v.alert.labels.value("alertname")),
                    c = chips(&v.alert.labels, &["alertname"]),
                    w = since(v, now),
                ));
            }
            body.push_str("</tbody></table></div></section>");
        }
        match refresh {
            Some(r) => layout::page_with_head("Alerts", "/alerts", &format!("<meta http-equiv=\"refresh\" content=\"{r}\">"), &body),
            None => page("Alerts", "/alerts", &body),
        }
    })
    .await
}

/// `GET /alerts/{id}`: one alert, pending, firing or recently resolved.
pub async fn one(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    super::blocking(d, move |d| {
        let now = now_ms();
        let views = alert_views(d, true, now);
        let Some(v) = views.iter().find(|v| v.id() == id.to_ascii_lowercase()) else {
            return layout::error_page(
                StatusCode::NOT_FOUND,
                "No such alert",
                &format!("no alert with id {id} is pending, firing or recently resolved; see the alerts page"),
                "/alerts",
            );
        };
        let a = &v.alert;
        let name = a.labels.value("alertname");
        let mut body = format!(
            "<p><a href=\"/alerts\">← Alerts</a></p><h1>{n}</h1><div class=\"row\"><span class=\"state {st}\">{st}</span>{sil}\
             <span class=\"muted\">{since}</span><span class=\"muted\">value {val}</span></div><div>{chips}</div>",
            n = esc(name),
            st = a.state.as_str(),
            sil = if v.silenced { "<span class=\"chip\">silenced</span>" } else { "" },
            since = since(v, now),
            val = esc(&crate::alerts::template::humanize(a.value)),
            chips = chips(&a.labels, &["alertname"]),
        );
        body.push_str(&chart(d, a.fingerprint(), (1200, 440), now));
        if let Some(o) = &a.overlay {
            body.push_str(&format!("<p>Judged against: {}</p>", overlay_words(o, v.clear, now)));
        }
        body.push_str(&changes(v, now));
        body.push_str("<h2>Annotations</h2><div class=\"table-wrap\"><table>");
        for (k, val) in a.annotations.iter() {
            body.push_str(&format!("<tr><th scope=\"row\">{}</th><td><pre>{}</pre></td></tr>", esc(k), esc(val)));
        }
        body.push_str("</table></div><h2>Context</h2><ul>");
        body.push_str(&format!(
            "<li>Rule: <a href=\"/rules#{anchor}\">{r}</a> ({kind}) in group {g} of <code>{f}</code></li>",
            anchor = rule_anchor(&v.file, &v.group, &v.rule),
            r = esc(&v.rule),
            kind = esc(v.kind),
            g = esc(&v.group),
            f = esc(&v.file),
        ));
        let targets: Vec<_> = d
            .scrape
            .targets()
            .into_iter()
            .filter(|(t, _)| {
                let inst = a.labels.get("instance");
                inst.is_some() && t.labels.get("instance") == inst && a.labels.get("job").is_none_or(|j| j == t.job)
            })
            .collect();
        for (t, h) in targets {
            body.push_str(&format!(
                "<li>Target: <a href=\"/targets#{}\">{}</a> <span class=\"health-{h}\">{h}</span></li>",
                super::targets::anchor(&t.labels),
                esc(&t.url),
                h = h.health
            ));
        }
        body.push_str(&format!(
            "<li>Onset {} · pending since {}{}</li>",
            time(a.onset),
            time(a.active_at),
            a.fired_at.map(|f| format!(" · firing since {}", time(f))).unwrap_or_default()
        ));
        body.push_str(&format!(
            "<li><a href=\"/api/v1/alerts/{id}/chart.png\">Chart as PNG</a> · <a href=\"/api/v1/alerts/{id}/chart.svg\">SVG</a></li></ul>",
            id = v.id()
        ));
        body.push_str(&format!(
            "<p><a class=\"button\" href=\"/silences/new?matchers={}\">Silence this alert</a></p>",
            url_arg(&silence_matchers(v))
        ));
        page(name, "/alerts", &body)
    })
    .await
}
