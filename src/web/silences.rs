//! `/silences`: the list (active and pending first, with how many alerts
//! each mutes, and an Expire button), and `/silences/new`, a form to create
//! one with a preview of the alerts its matchers would mute. Forms post
//! `application/x-www-form-urlencoded`; the guard lets such posts through
//! only from this server's own pages (see `http::guard`), after the same
//! credentials as the API. The rules are those of `notify::silence`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::layout::{self, ago, chips, esc, page, time};
use super::{alert_views, now_ms, AlertView};
use crate::daemon::Daemon;
use crate::labels::Matcher;
use crate::notify::silence::{self, MatcherInput, SilenceInput};

/// What the form holds; fields a person left out are empty.
#[derive(Default)]
struct FormData {
    matchers: String,
    duration: String,
    created_by: String,
    comment: String,
}

impl FormData {
    fn from_map(m: &HashMap<String, String>) -> Self {
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        FormData {
            matchers: get("matchers"),
            duration: m.get("duration").filter(|d| !d.trim().is_empty()).cloned().unwrap_or_else(|| "2h".into()),
            created_by: get("createdBy"),
            comment: get("comment"),
        }
    }

    fn lines(&self) -> Vec<&str> {
        self.matchers.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
    }

    /// The matchers, or the first line that does not parse.
    fn parsed(&self) -> Result<Vec<Matcher>, String> {
        self.lines()
            .iter()
            .enumerate()
            .map(|(i, l)| {
                crate::notify::route::parse_matcher(l).map_err(|e| format!("matchers line {}: {l:?}: {e}", i + 1))
            })
            .collect()
    }
}

fn matcher_chips(s: &silence::Silence) -> String {
    s.matchers
        .iter()
        .map(|m| {
            let op = match (m.is_regex, m.is_equal) {
                (false, true) => "=",
                (false, false) => "!=",
                (true, true) => "=~",
                (true, false) => "!~",
            };
            format!("<span class=\"chip\"><b>{}</b>{op}{}</span>", esc(&m.name), esc(&m.value))
        })
        .collect()
}

/// `GET /silences`.
pub async fn list(State(d): State<Arc<Daemon>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let now = now_ms();
    let now_t = Utc::now();
    let alerts = alert_views(&d, false, now);
    let mut all = d.silences.list();
    let rank = |s: &silence::Silence| match silence::state(s, now_t) {
        "active" => 0,
        "pending" => 1,
        _ => 2,
    };
    all.sort_by(|a, b| rank(a).cmp(&rank(b)).then(b.starts_at.cmp(&a.starts_at)));
    let mut body = String::from("<h1>Silences</h1>");
    if let Some(id) = q.get("created") {
        body.push_str(&format!("<p class=\"notice\" role=\"status\">Silence {} created.</p>", esc(id)));
    }
    if let Some(id) = q.get("expired") {
        body.push_str(&format!("<p class=\"notice\" role=\"status\">Silence {} expired.</p>", esc(id)));
    }
    body.push_str("<p><a class=\"button\" href=\"/silences/new\">New silence</a></p>");
    if all.is_empty() {
        body.push_str("<p>No silences.</p>");
    }
    for s in &all {
        let state = silence::state(s, now_t);
        let compiled = silence::compile(&s.matchers).unwrap_or_default();
        let muted = alerts.iter().filter(|a| compiled.iter().all(|m| m.matches(&a.alert.labels))).count();
        body.push_str(&format!(
            "<article class=\"card\"><div class=\"row\"><span class=\"state\">{state}</span>{chips}</div>\
             <div class=\"muted\">from {start} until {end} ({until}) · by {by}</div><p>{comment}</p>",
            chips = matcher_chips(s),
            start = time(s.starts_at.timestamp_millis()),
            end = time(s.ends_at.timestamp_millis()),
            until = ago(s.ends_at.timestamp_millis(), now),
            by = esc(&s.created_by),
            comment = esc(&s.comment),
        ));
        if state != "expired" {
            body.push_str(&format!(
                "<div class=\"row\"><span>{muted} alert{} muted now</span>\
                 <form class=\"inline\" method=\"post\" action=\"/silences/expire\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
                 <button type=\"submit\" class=\"secondary\" aria-label=\"Expire silence {id}\">Expire</button></form></div>",
                if muted == 1 { "" } else { "s" },
                id = esc(&s.id),
            ));
        }
        body.push_str("</article>");
    }
    page("Silences", "/silences", &body)
}

/// The form, its preview and `error` (if any).
fn form_page(d: &Daemon, f: &FormData, error: Option<&str>, status: StatusCode) -> Response {
    let now = now_ms();
    let mut body = String::from("<p><a href=\"/silences\">← Silences</a></p><h1>New silence</h1>");
    if let Some(e) = error {
        body.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/silences\">\
         <label for=\"matchers\">Matchers, one a line (<code>name=\"value\"</code>, <code>!=</code>, <code>=~</code>, <code>!~</code>)</label>\
         <textarea id=\"matchers\" name=\"matchers\" rows=\"{rows}\" required>{m}</textarea>\
         <label for=\"duration\">Duration (e.g. 30m, 2h, 1d)</label><input type=\"text\" id=\"duration\" name=\"duration\" value=\"{du}\" required>\
         <label for=\"createdBy\">Created by</label><input type=\"text\" id=\"createdBy\" name=\"createdBy\" value=\"{by}\" required autocomplete=\"name\">\
         <label for=\"comment\">Comment (why: a ticket, an incident)</label><input type=\"text\" id=\"comment\" name=\"comment\" value=\"{c}\" required>\
         <p class=\"row\"><button type=\"submit\" formmethod=\"get\" formaction=\"/silences/new\" formnovalidate class=\"secondary\">Preview</button>\
         <button type=\"submit\" id=\"create\">Create silence</button></p></form>",
        m = esc(&f.matchers),
        rows = f.lines().len().clamp(3, 10),
        du = esc(&f.duration),
        by = esc(&f.created_by),
        c = esc(&f.comment),
    ));
    body.push_str("<h2>Preview: alerts it would mute</h2>");
    if f.lines().is_empty() {
        body.push_str("<p class=\"muted\">Enter matchers and press Preview.</p>");
    } else {
        match f.parsed() {
            Err(e) => body.push_str(&format!("<p class=\"error\">{}</p>", esc(&e))),
            Ok(ms) => {
                let hit: Vec<AlertView> = alert_views(d, false, now)
                    .into_iter()
                    .filter(|a| ms.iter().all(|m| m.matches(&a.alert.labels)))
                    .collect();
                if ms.iter().all(Matcher::matches_empty) {
                    body.push_str("<p class=\"error\">These matchers match the empty string: the silence would mute every alert.</p>");
                }
                body.push_str(&format!(
                    "<p id=\"preview-count\">{} alert{} would be muted now.</p><ul>",
                    hit.len(),
                    if hit.len() == 1 { "" } else { "s" }
                ));
                for a in hit {
                    body.push_str(&format!(
                        "<li><a href=\"/alerts/{id}\">{n}</a> <span class=\"state {st}\">{st}</span> {c}</li>",
                        id = a.id(),
                        n = esc(a.alert.labels.value("alertname")),
                        st = a.alert.state.as_str(),
                        c = chips(&a.alert.labels, &["alertname"])
                    ));
                }
                body.push_str("</ul>");
            }
        }
    }
    let mut r = page("New silence", "/silences", &body);
    *r.status_mut() = status;
    r
}

/// `GET /silences/new?matchers=...`: the form, prefilled, with its preview.
pub async fn new(State(d): State<Arc<Daemon>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let f = FormData::from_map(&q);
    form_page(&d, &f, None, StatusCode::OK)
}

fn see_other(to: String) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// `POST /silences` (form): creates the silence, then back to the list.
pub async fn create(State(d): State<Arc<Daemon>>, Form(m): Form<HashMap<String, String>>) -> Response {
    let f = FormData::from_map(&m);
    let bad = |e: String| form_page(&d, &f, Some(&e), StatusCode::BAD_REQUEST);
    let dur = match crate::duration::PromDuration::parse(f.duration.trim()) {
        Ok(x) if x.as_millis() > 0 => x.as_millis(),
        _ => return bad(format!("duration {:?}: expected a positive duration such as 30m, 2h or 1d", f.duration)),
    };
    let now = Utc::now();
    let input = SilenceInput {
        id: None,
        matchers: f.lines().into_iter().map(|l| MatcherInput::Text(l.to_string())).collect(),
        starts_at: None,
        ends_at: Some(now + chrono::Duration::milliseconds(dur)),
        created_by: f.created_by.trim().to_string(),
        comment: f.comment.trim().to_string(),
    };
    match d.silences.upsert(&input, now) {
        Ok(id) => {
            tracing::info!(silence = %id, by = %input.created_by, "silence created from the web UI");
            ::metrics::counter!("forewarn_web_silences_created_total").increment(1);
            see_other(format!("/silences?created={}", layout::url_arg(&id)))
        }
        Err(e @ silence::SilenceError::Invalid { .. }) => bad(e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "silence from the web UI");
            bad(e.to_string())
        }
    }
}

/// `POST /silences/expire` (form with `id`).
pub async fn expire(State(d): State<Arc<Daemon>>, Form(m): Form<HashMap<String, String>>) -> Response {
    let id = m.get("id").cloned().unwrap_or_default();
    match d.silences.expire(&id, Utc::now()) {
        Ok(()) => {
            tracing::info!(silence = %id, "silence expired from the web UI");
            ::metrics::counter!("forewarn_web_silences_expired_total").increment(1);
            see_other(format!("/silences?expired={}", layout::url_arg(&id)))
        }
        Err(e) => layout::error_page(StatusCode::NOT_FOUND, "Expire silence", &e.to_string(), "/silences"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> FormData {
        FormData::from_map(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn matchers_are_one_a_line_and_errors_name_the_line() {
        let f = form(&[("matchers", "alertname=\"A\"\n\n  severity=~\"page|critical\"  \n")]);
        assert_eq!(f.duration, "2h", "the default duration");
        let ms = f.parsed().unwrap();
        assert_eq!(ms.len(), 2);
        let l = crate::labels::Labels::from_pairs([("alertname", "A"), ("severity", "page")]);
        assert!(ms.iter().all(|m| m.matches(&l)));
        let bad = form(&[("matchers", "alertname=\"A\"\nnot a matcher")]);
        let e = bad.parsed().unwrap_err();
        assert!(e.starts_with("matchers line 2: \"not a matcher\""), "{e}");
    }
}
