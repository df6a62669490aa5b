//! How a replay is shown: a line per alert and label set for people; for
//! scripts an object with the spans (`{alertname, labels, state, from, to}`),
//! the notification count and the evaluation errors.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::{Report, Span};
use crate::labels::Labels;

pub(crate) fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The JSON object: `spans`, one per span, RFC 3339 times, `to: null` when
/// the alert was still in that state when the history ended; the replayed
/// window; `notifications` (see [`Report::notifications`]), `evaluations`,
/// `errors` and `warnings` (what the history left out).
pub fn json(report: &Report, from: i64, to: i64) -> serde_json::Value {
    let spans: Vec<serde_json::Value> = report
        .spans
        .iter()
        .map(|s| {
            let mut v = json!({
                "alertname": s.alertname,
                "labels": s.labels,
                "state": s.state,
                "from": rfc3339(s.from),
                "to": s.to.map(rfc3339),
                "onset": rfc3339(s.onset),
            });
            if let (Some(c), Some(obj)) = (&s.changes, v.as_object_mut()) {
                obj.insert("changes".into(), json!(c.changes));
                obj.insert("verdict".into(), json!(c.verdict));
            }
            v
        })
        .collect();
    let errors: Vec<serde_json::Value> =
        report.errors.iter().map(|(rule, e)| json!({"rule": rule, "error": e})).collect();
    json!({
        "from": rfc3339(from),
        "to": rfc3339(to),
        "spans": spans,
        "notifications": report.notifications(from),
        "evaluations": report.evaluations,
        "errors": errors,
        "warnings": report.warnings,
        "summary": report.summary(from, to),
    })
}

/// One line per alert and label set: when it was pending, firing, resolved;
/// notifications are counted from `from`; then a line per rule with its
/// episodes, time firing and flapping (see [`Report::summary`]).
pub fn text(report: &Report, from: i64, to: i64) -> String {
    let mut by_alert: BTreeMap<(String, Labels), Vec<&Span>> = BTreeMap::new();
    for s in &report.spans {
        by_alert.entry((s.alertname.clone(), s.labels.clone())).or_default().push(s);
    }
    let mut out = String::new();
    if by_alert.is_empty() {
        out.push_str("no alert was pending or firing\n");
    }
    for ((name, labels), spans) in by_alert {
        let mut rest = labels.clone();
        rest.remove("alertname");
        rest.set(crate::labels::METRIC_NAME.into(), name);
        out.push_str(&format!("{rest}\n"));
        for s in spans {
            let end = match (s.state, s.to) {
                ("firing", Some(t)) => format!("resolved {}", rfc3339(t)),
                ("pending", Some(t)) => format!("until {}", rfc3339(t)),
                (_, None) => "until the end of the input".to_string(),
                (_, Some(t)) => format!("until {}", rfc3339(t)),
            };
            out.push_str(&format!("  {:<8} {}  {}\n", s.state, rfc3339(s.from), end));
            if let Some(c) = &s.changes {
                for ch in &c.changes {
                    out.push_str(&format!("           change: {ch}\n"));
                }
                out.push_str(&format!("           verdict: {}\n", c.verdict));
            }
        }
    }
    let firings = report.spans.iter().filter(|s| s.state == "firing").count();
    out.push_str(&format!(
        "{} evaluations, {} firing spans ({} notifications with group_wait 0s: one per firing and one per resolution)\n",
        report.evaluations,
        firings,
        report.notifications(from)
    ));
    let summary = report.summary(from, to);
    if !summary.is_empty() {
        out.push_str("\nper rule:\n");
        out.push_str(&format!(
            "  {:<32} {:>8} {:>7} {:>12} {:>8} {:>6}\n",
            "alert", "episodes", "series", "firing", "flapping", "short"
        ));
        for s in &summary {
            let firing = crate::duration::PromDuration(std::time::Duration::from_secs(s.firing_s.round() as u64));
            out.push_str(&format!(
                "  {:<32} {:>8} {:>7} {:>12} {:>8} {:>6}\n",
                s.alertname,
                s.episodes,
                s.series,
                firing.to_string(),
                s.flapping,
                s.short
            ));
            if let Some(a) = &s.advice {
                out.push_str(&format!("    {a}\n"));
            }
        }
    }
    for (rule, e) in &report.errors {
        out.push_str(&format!("error in rule {rule}: {e}\n"));
    }
    for w in &report.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// A progress bar on stderr when it is a terminal; silent otherwise.
pub struct Progress {
    enabled: bool,
    last: i64,
    label: &'static str,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new("replay")
    }
}

impl Progress {
    /// A bar headed `label` (`fetch`, `replay`).
    pub fn new(label: &'static str) -> Self {
        Progress { enabled: std::io::stderr().is_terminal(), last: -1, label }
    }

    pub fn update(&mut self, frac: f64) {
        if !self.enabled {
            return;
        }
        let pct = (frac * 100.0).round() as i64;
        if pct == self.last {
            return;
        }
        self.last = pct;
        let filled = (pct / 4) as usize;
        let mut err = std::io::stderr();
        let _ =
            write!(err, "\r{:<6} [{}{}] {:>3}%", self.label, "#".repeat(filled), " ".repeat(25 - filled.min(25)), pct);
        if pct >= 100 {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}
