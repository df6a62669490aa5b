//! `/targets`: every scrape target by job with its health, last scrape,
//! scrape duration, last error and labels; then the targets relabeling
//! dropped, with the labels they were discovered with.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::layout::{ago, chips, esc, page, seconds};
use super::now_ms;
use crate::daemon::Daemon;
use crate::labels::Labels;

/// The anchor of a target (by its labels) on this page.
pub(crate) fn anchor(labels: &Labels) -> String {
    format!("target-{:016x}", labels.fingerprint())
}

/// `GET /targets`.
pub async fn show(State(d): State<Arc<Daemon>>) -> Response {
    let now = now_ms();
    let mut by_job: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (t, h) in d.scrape.targets() {
        by_job.entry(t.job.clone()).or_default().push((t, h));
    }
    let mut body = String::from("<h1>Targets</h1>");
    if by_job.is_empty() {
        body.push_str("<p>No targets (see <code>scrape_configs</code> in the config).</p>");
    }
    for (job, mut list) in by_job {
        list.sort_by(|a, b| a.0.url.cmp(&b.0.url));
        let up = list.iter().filter(|(_, h)| h.health == "up").count();
        body.push_str(&format!(
            "<section class=\"card\"><div class=\"group-head\"><h2>{}</h2><span class=\"muted\">{up} of {} up</span></div>\
             <div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">Endpoint</th><th scope=\"col\">Health</th>\
             <th scope=\"col\">Labels</th><th scope=\"col\">Last scrape</th><th scope=\"col\">Duration</th>\
             <th scope=\"col\">Error</th></tr></thead><tbody>",
            esc(&job),
            list.len()
        ));
        for (t, h) in &list {
            let last = if h.last_scrape_ms == 0 { "never".to_string() } else { ago(h.last_scrape_ms, now) };
            body.push_str(&format!(
                "<tr id=\"{a}\"><td><a href=\"{u}\" rel=\"noopener noreferrer\">{u}</a></td>\
                 <td><span class=\"health-{hh}\" data-health>{hh}</span></td><td>{l}</td><td>{last}</td>\
                 <td>{dur}</td><td class=\"error\">{e}</td></tr>",
                a = anchor(&t.labels),
                u = esc(&t.url),
                hh = esc(h.health),
                l = chips(&t.labels, &[]),
                dur = if h.last_scrape_ms == 0 { "–".into() } else { seconds(h.last_scrape_duration_s) },
                e = esc(&h.last_error),
            ));
        }
        body.push_str("</tbody></table></div></section>");
    }
    let dropped = d.scrape.dropped_targets();
    body.push_str(&format!("<h2>Dropped targets ({})</h2>", dropped.len()));
    if dropped.is_empty() {
        body.push_str("<p class=\"muted\">Relabeling dropped no discovered target.</p>");
    } else {
        body.push_str(
            "<details><summary>Show the discovered labels of each</summary><div class=\"table-wrap\"><table>\
             <thead><tr><th scope=\"col\">Job</th><th scope=\"col\">Discovered labels</th></tr></thead><tbody>",
        );
        for t in dropped.iter().take(1000) {
            body.push_str(&format!("<tr><td>{}</td><td>{}</td></tr>", esc(&t.job), chips(&t.discovered_labels, &[])));
        }
        body.push_str("</tbody></table></div></details>");
    }
    page("Targets", "/targets", &body)
}
