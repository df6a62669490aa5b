//! The web UI: pages for people who would rather look than read JSON.
//! Alerts with their charts, deploy lines, band or trend and the verdict on
//! recent changes on one screen; rules with each kind's status; targets;
//! a deploy timeline; silences (list, create with a preview of what they
//! would mute, expire); and a PromQL graph with deploy markers.
//!
//! Pages are rendered on the server as plain HTML with inline SVG charts
//! from [`crate::chart`], and one compiled-in stylesheet: nothing to build
//! or fetch, and every page works without JavaScript (hover texts are SVG
//! `<title>`s). The pages only read what the API handlers read; the one
//! write, silences, goes through [`crate::notify::silence`] like the API,
//! behind the same guard (credentials, and same-origin for form posts).

mod alerts;
mod deploys;
mod graph;
mod layout;
mod rules;
mod silences;
mod targets;

use std::sync::Arc;

use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::alerts::{Alert, AlertState, Overlay};
use crate::daemon::Daemon;
use crate::deploys::Correlation;
use crate::rules::Rule;

pub use layout::esc;

/// Paths under which the UI accepts same-origin HTML form posts (see
/// `http::guard`): the silence forms.
pub const FORM_POSTS: [&str; 2] = ["/silences", "/silences/expire"];

pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/", get(alerts::list))
        .route("/alerts", get(alerts::list))
        .route("/alerts/{id}", get(alerts::one))
        .route("/rules", get(rules::show))
        .route("/targets", get(targets::show))
        .route("/deploys", get(deploys::show))
        .route("/silences", get(silences::list).post(silences::create))
        .route("/silences/new", get(silences::new))
        .route("/silences/expire", axum::routing::post(silences::expire))
        .route("/graph", get(graph::show))
        .route("/ui/style.css", get(layout::stylesheet))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs a page builder on the blocking pool: pages evaluate chart queries,
/// which may read a remote datasource.
async fn blocking(d: Arc<Daemon>, f: impl FnOnce(&Daemon) -> Response + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(move || f(&d)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "web page failed unexpectedly");
            layout::error_page(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "the page could not be built (logged by forewarn)",
                "",
            )
        }
    }
}

/// One active alert with what the pages show beside it.
pub(crate) struct AlertView {
    pub alert: Alert,
    pub rule: String,
    pub group: String,
    pub file: String,
    pub kind: &'static str,
    /// A `threshold`'s clear level.
    pub clear: Option<f64>,
    pub correlation: Option<Correlation>,
    pub silenced: bool,
}

impl AlertView {
    pub fn id(&self) -> String {
        format!("{:016x}", self.alert.fingerprint())
    }
}

/// Every pending, firing and recently resolved alert, with its rule, the
/// verdict on recent changes and whether a silence mutes it.
pub(crate) fn alert_views(d: &Daemon, with_resolved: bool, now: i64) -> Vec<AlertView> {
    let mut out: Vec<AlertView> = d
        .rules
        .with_groups(|g, _| {
            let mut v = Vec::new();
            for r in &g.rules {
                let Rule::Alert(a) = r else { continue };
                for x in a.alerts() {
                    if x.state == AlertState::Inactive && !with_resolved {
                        continue;
                    }
                    v.push(AlertView {
                        alert: x.clone(),
                        rule: a.name.clone(),
                        group: g.name.clone(),
                        file: g.file.clone(),
                        kind: a.kind.as_ref().map_or("expr", |k| k.name()),
                        clear: a.kind.as_ref().and_then(|k| k.clear_level()),
                        correlation: None,
                        silenced: false,
                    });
                }
            }
            v
        })
        .into_iter()
        .flatten()
        .collect();
    for v in &mut out {
        let resolved = (v.alert.state == AlertState::Inactive).then_some(v.alert.resolved_at).flatten();
        v.correlation = d.deploys.correlate_alert(&v.alert.labels, v.alert.onset, resolved, now);
        v.silenced = d.silences.is_silenced(&v.alert.labels, now);
    }
    out.sort_by(|a, b| a.alert.labels.cmp(&b.alert.labels));
    out
}

/// The anchor of a rule on the rules page.
pub(crate) fn rule_anchor(file: &str, group: &str, rule: &str) -> String {
    let l = crate::labels::Labels::from_pairs([("f", file), ("g", group), ("r", rule)]);
    format!("rule-{:016x}", l.fingerprint())
}

/// What a rule kind judged the value against, in words (and marked up for
/// the band so a reader and a test can find it).
pub(crate) fn overlay_words(o: &Overlay, clear: Option<f64>, now: i64) -> String {
    let h = crate::alerts::template::humanize;
    match o {
        Overlay::Band { label, lower, upper } if lower.is_finite() && upper.is_finite() => format!(
            "<span class=\"band\" data-band=\"{lo} {hi}\">{l}: {lo} to {hi}</span>",
            l = esc(label),
            lo = esc(&h(*lower)),
            hi = esc(&h(*upper))
        ),
        Overlay::Band { label, .. } => {
            let mut s = format!("<span class=\"band\">level: {}</span>", esc(label));
            if let Some(c) = clear {
                s.push_str(&format!(", clears at {}", esc(&h(c))));
            }
            s
        }
        Overlay::Trend { since, at, value, slope_per_s, limit } => {
            let mut s = format!(
                "<span class=\"trend\">slope {}/h since {}, now {}</span>",
                esc(&h(slope_per_s * 3600.0)),
                layout::time(*since),
                esc(&h(*value))
            );
            if let Some(l) = limit {
                s.push_str(&format!("; limit {}", esc(&h(*l))));
                match crate::analysis::time_to_limit(*slope_per_s, *value, *l) {
                    Some(eta) => {
                        let reach = at + (eta * 1000.0) as i64;
                        s.push_str(&format!(
                            ", <span class=\"eta\">reached {} ({})</span>",
                            layout::time(reach),
                            layout::ago(reach, now)
                        ));
                    }
                    None => s.push_str(", not approaching it"),
                }
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlays_read_as_words_with_values_escaped() {
        let band = Overlay::Band { label: "<b>usual</b>".into(), lower: 0.35, upper: 0.65 };
        let w = overlay_words(&band, None, 0);
        assert!(w.contains("class=\"band\"") && w.contains("&lt;b&gt;usual&lt;/b&gt;: 350m to 650m"), "{w}");
        let one = Overlay::Band { label: "above 100".into(), lower: f64::NEG_INFINITY, upper: 100.0 };
        assert!(overlay_words(&one, Some(50.0), 0).ends_with("level: above 100</span>, clears at 50"));
        let trend = Overlay::Trend { since: 0, at: 3_600_000, value: 100.0, slope_per_s: 0.01, limit: Some(136.0) };
        let w = overlay_words(&trend, None, 3_600_000);
        assert!(w.contains("slope 36/h") && w.contains("limit 136") && w.contains("(in 1 h)"), "{w}");
        let away = Overlay::Trend { since: 0, at: 0, value: 100.0, slope_per_s: -1.0, limit: Some(136.0) };
        assert!(overlay_words(&away, None, 0).ends_with("not approaching it"));
    }

    #[test]
    fn rule_anchors_differ_by_file_group_and_name() {
        let a = rule_anchor("a.yml", "g", "R");
        assert_ne!(a, rule_anchor("b.yml", "g", "R"));
        assert_ne!(a, rule_anchor("a.yml", "g", "S"));
        assert!(a.starts_with("rule-") && !a.contains(' '));
    }
}
