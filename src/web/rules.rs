//! `/rules`: every rule by file and group, with its health, last error,
//! evaluation time, and for rule kinds what the kind is doing: learning
//! (with its progress), or for each active series the current band, or
//! slope and ETA.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::layout::{chips, esc, page, seconds, span, time};
use super::{now_ms, overlay_words, rule_anchor};
use crate::alerts::AlertState;
use crate::daemon::Daemon;
use crate::rules::Rule;

/// One group, rendered.
struct Group {
    file: String,
    html: String,
}

fn health_of(h: &crate::rules::RuleHealth) -> &'static str {
    if h.last_evaluation == 0 {
        "unknown"
    } else if h.last_error.is_some() {
        "err"
    } else {
        "ok"
    }
}

/// `GET /rules`.
pub async fn show(State(d): State<Arc<Daemon>>) -> Response {
    let now = now_ms();
    let groups = d.rules.with_groups(|g, health| {
        let mut html = format!(
            "<section class=\"card\"><div class=\"group-head\"><h3>{}</h3><span class=\"muted\">every {}</span></div>\
             <div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">Health</th>\
             <th scope=\"col\">Status</th><th scope=\"col\">Last evaluation</th></tr></thead><tbody>",
            esc(&g.name),
            esc(&g.interval.to_string())
        );
        let none = crate::rules::RuleHealth::default();
        for (r, h) in g.rules.iter().zip(health.iter().chain(std::iter::repeat(&none))) {
            let (name, query, status) = match r {
                Rule::Alert(a) => {
                    let kind = a.kind.as_ref().map_or("expr", |k| k.name());
                    let active: Vec<_> = a.alerts().into_iter().filter(|x| x.state != AlertState::Inactive).collect();
                    let firing = active.iter().filter(|x| x.state == AlertState::Firing).count();
                    let mut st = format!(
                        "<span class=\"chip\">alert</span><span class=\"chip\" data-kind>{kind}</span>{}",
                        if a.hold.as_millis() > 0 { format!(" for {}", span(a.hold.as_millis())) } else { String::new() }
                    );
                    st.push_str(&format!(
                        "<div>{firing} firing, {} pending</div>",
                        active.len() - firing
                    ));
                    if let Some(s) = a.kind.as_ref().and_then(|k| k.status()) {
                        st.push_str(&format!("<div class=\"kind-status\">{}</div>", esc(&s)));
                    }
                    let clear = a.kind.as_ref().and_then(|k| k.clear_level());
                    for x in active.iter().take(5) {
                        if let Some(o) = &x.overlay {
                            st.push_str(&format!(
                                "<div class=\"kind-status\"><a href=\"/alerts/{:016x}\">{}</a>: {}</div>",
                                x.fingerprint(),
                                chips(&x.labels, &["alertname"]),
                                overlay_words(o, clear, now)
                            ));
                        }
                    }
                    if active.len() > 5 {
                        st.push_str(&format!("<div class=\"muted\">and {} more</div>", active.len() - 5));
                    }
                    // A quiet rule still says what it sees: the series
                    // nearest to firing, with its slope and ETA or band.
                    if let (true, Some(n)) = (active.is_empty(), a.kind.as_ref().and_then(|k| k.nearest())) {
                        st.push_str(&format!(
                            "<div class=\"kind-status nearest\">{} series judged; nearest to firing: {} at {}: {}</div>",
                            n.judged,
                            chips(&n.labels, &["alertname"]),
                            esc(&crate::alerts::template::humanize(n.value)),
                            overlay_words(&n.overlay, clear, now)
                        ));
                    }
                    (a.name.clone(), a.expr_text.clone(), st)
                }
                Rule::Record(rec) => (rec.name.clone(), rec.expr_text.clone(), "<span class=\"chip\">record</span>".into()),
            };
            let hs = health_of(h);
            let err = h.last_error.as_deref().map(|e| format!("<div class=\"error\">{}</div>", esc(e))).unwrap_or_default();
            html.push_str(&format!(
                "<tr id=\"{anchor}\"><td><b>{n}</b><pre>{q}</pre></td><td><span class=\"health-{hs}\">{hs}</span>{err}</td>\
                 <td>{status}</td><td>{t}<div class=\"muted\">took {took}</div></td></tr>",
                anchor = rule_anchor(&g.file, &g.name, &name),
                n = esc(&name),
                q = esc(&query),
                t = time(h.last_evaluation),
                took = seconds(h.evaluation_ms / 1000.0),
            ));
        }
        html.push_str("</tbody></table></div></section>");
        Group { file: g.file.clone(), html }
    });
    let mut by_file: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in groups {
        by_file.entry(g.file).or_default().push(g.html);
    }
    let mut body = String::from("<h1>Rules</h1>");
    if by_file.is_empty() {
        body.push_str("<p>No rules are loaded (see <code>rule_files</code> in the config).</p>");
    }
    for (file, groups) in by_file {
        body.push_str(&format!("<h2><code>{}</code></h2>", esc(&file)));
        for g in groups {
            body.push_str(&g);
        }
    }
    page("Rules", "/rules", &body)
}
