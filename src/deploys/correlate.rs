//! Correlation: which changes came before an alert, and what to make of them.
//!
//! Pure functions: the alert's labels, its onset, its resolution and "now"
//! come in as arguments, markers come in as a slice, words come out. The
//! daemon, `replay` and tests call the same code, so a verdict seen in a
//! replay is the verdict the daemon would have sent.
//!
//! The verdict is written for someone woken at night: the single most useful
//! sentence, e.g. "began 7 min after checkout v2.3 was deployed", or
//! "still firing 40 min after rollback to v2.2: the deploy is unlikely the
//! cause". The rules, in order: a rollback after the onset says whether it
//! helped; otherwise the nearest change before the onset is named (and
//! discounted when it is hours old or was already rolled back); otherwise a
//! deploy after the onset is cleared; otherwise "no change in the window".

use serde::{Deserialize, Serialize};

use super::words::{duration, version};
use super::{DeploysConfig, Kind, Marker};
use crate::labels::Labels;

/// A change this close before the onset is named as a likely cause.
pub const SUSPECT_MS: i64 = 3_600_000;
/// After a rollback, give the system this long before judging it.
pub const ROLLBACK_GRACE_MS: i64 = 10 * 60_000;
/// A resolution this soon after a rollback credits the rollback.
pub const ROLLBACK_HELPED_MS: i64 = 30 * 60_000;

/// How markers are tied to alerts.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchOptions {
    pub match_labels: Vec<String>,
    pub lookback_ms: i64,
}

impl From<&DeploysConfig> for MatchOptions {
    fn from(c: &DeploysConfig) -> Self {
        MatchOptions { match_labels: c.match_labels.clone(), lookback_ms: c.lookback.as_millis() }
    }
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions::from(&DeploysConfig::default())
    }
}

/// One change near an alert. `before_onset_ms` is negative for changes
/// after the onset (a rollback, a later deploy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeNote {
    pub marker: Marker,
    pub before_onset_ms: i64,
    pub text: String,
}

/// What the markers say about one alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    /// Oldest first: changes in the lookback window before the onset, then
    /// changes between the onset and the resolution (or now).
    pub changes: Vec<ChangeNote>,
    pub verdict: String,
}

/// Whether `m` concerns the alert with `labels`: the marker's `service`
/// equals the alert's `service` or `job`, or a `match_labels` label has the
/// same value on both; and no `match_labels` label present on both differs.
/// Times at which the process behind `labels` (re)started, according to the
/// markers: deploys, rollbacks and restarts all replace the process. Trend
/// rules cut their fit window there.
pub fn restart_times(labels: &Labels, markers: &[Marker], opts: &MatchOptions) -> Vec<i64> {
    let mut out: Vec<i64> = markers
        .iter()
        .filter(|m| !matches!(m.kind, crate::deploys::Kind::Config) && matches(labels, m, &opts.match_labels))
        .map(|m| m.at)
        .collect();
    out.sort_unstable();
    out
}

pub fn matches(labels: &Labels, m: &Marker, match_labels: &[String]) -> bool {
    let mut tied = [labels.get("service"), labels.get("job")].contains(&Some(m.service.as_str()));
    for name in match_labels.iter().filter(|n| n.as_str() != "service") {
        match (labels.get(name), m.labels.get(name)) {
            (Some(a), Some(b)) if a == b => tied = true,
            (Some(_), Some(_)) => return false,
            _ => {}
        }
    }
    tied
}

/// The service an alert is about, for "no change to checkout ...".
fn alert_service(labels: &Labels) -> Option<&str> {
    labels.get("service").or_else(|| labels.get("job")).filter(|s| !s.is_empty())
}

fn what(m: &Marker) -> String {
    let by = m.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
    match m.kind {
        Kind::Deploy => format!("{} deployed{by}", m.service_version()),
        Kind::Rollback => format!("{} rolled back to {}{by}", m.service, version(&m.version)),
        Kind::Restart => match m.labels.get("instance") {
            Some(i) => format!("{} restarted ({i})", m.service),
            None => format!("{} restarted", m.service),
        },
        Kind::Config => format!("{} config changed{by}", m.service),
    }
}

fn note(m: &Marker, onset: i64) -> ChangeNote {
    let d = onset - m.at;
    let when = if d >= 0 { format!("{} before onset", duration(d)) } else { format!("{} after onset", duration(d)) };
    ChangeNote { marker: m.clone(), before_onset_ms: d, text: format!("{} {when}", what(m)) }
}

/// "began 7 min after checkout v2.3 was deployed", with the discounts.
fn onset_sentence(m: &Marker, onset: i64, history: &[&Marker]) -> String {
    let d = duration(onset - m.at);
    match m.kind {
        Kind::Rollback => {
            let undone = history
                .iter()
                .rev()
                .find(|p| p.at <= m.at && p.id != m.id && p.service == m.service && p.kind == Kind::Deploy)
                .map(|p| version(&p.version))
                .unwrap_or_else(|| "the rolled-back version".into());
            format!(
                "began {d} after {} was rolled back to {}: {undone} was no longer running, so it is not the cause",
                m.service,
                version(&m.version)
            )
        }
        _ => {
            let change = match m.kind {
                Kind::Deploy => format!("{} was deployed", m.service_version()),
                Kind::Restart => format!("{} restarted", m.service),
                _ => format!("{}'s config changed", m.service),
            };
            if onset - m.at <= SUSPECT_MS {
                format!("began {d} after {change}")
            } else {
                format!("began {d} after {change}: probably not caused by it")
            }
        }
    }
}

fn rollback_sentence(r: &Marker, resolved: Option<i64>, now: i64) -> String {
    let to = version(&r.version);
    match resolved {
        Some(t) if t - r.at <= ROLLBACK_HELPED_MS => {
            format!(
                "resolved {} after rollback to {to}: the rolled-back deploy is the likely cause",
                duration(t - r.at)
            )
        }
        Some(t) => format!("resolved {} after rollback to {to}: the rollback did not clearly help", duration(t - r.at)),
        None if now - r.at >= ROLLBACK_GRACE_MS => {
            format!("still firing {} after rollback to {to}: the deploy is unlikely the cause", duration(now - r.at))
        }
        None => {
            format!("still firing {} after rollback to {to}: too early to tell whether it helped", duration(now - r.at))
        }
    }
}

/// Correlates one alert with `markers` (any order, any services).
///
/// `onset_ms` is when the alert began (first pending time, or a trend
/// rule's estimated start); `resolved_ms` is its resolution, if any.
pub fn correlate(
    labels: &Labels,
    onset_ms: i64,
    resolved_ms: Option<i64>,
    now_ms: i64,
    markers: &[Marker],
    opts: &MatchOptions,
) -> Correlation {
    let end = resolved_ms.unwrap_or(now_ms);
    let mut mine: Vec<&Marker> = markers
        .iter()
        .filter(|m| m.at >= onset_ms - opts.lookback_ms && m.at <= end && matches(labels, m, &opts.match_labels))
        .collect();
    mine.sort_by_key(|m| (m.at, m.id));
    let changes: Vec<ChangeNote> = mine.iter().map(|m| note(m, onset_ms)).collect();
    let before: Vec<&Marker> = mine.iter().copied().filter(|m| m.at <= onset_ms).collect();
    let after: Vec<&Marker> = mine.iter().copied().filter(|m| m.at > onset_ms).collect();

    let onset_part = before.last().map(|m| onset_sentence(m, onset_ms, &before));
    let rollback = after.iter().rev().find(|m| m.kind == Kind::Rollback);
    let verdict = if let Some(r) = rollback {
        let rb = rollback_sentence(r, resolved_ms, now_ms);
        match (&onset_part, before.last()) {
            (Some(o), Some(m)) if onset_ms - m.at <= SUSPECT_MS && m.kind != Kind::Rollback => format!("{o}; {rb}"),
            _ => rb,
        }
    } else if let (Some(o), Some(m)) = (&onset_part, before.last()) {
        let later = after.iter().find(|d| d.kind == Kind::Deploy);
        match later {
            Some(d) if onset_ms - m.at > SUSPECT_MS => {
                format!("started {} before {}: not caused by it", duration(d.at - onset_ms), d.service_version())
            }
            _ => o.clone(),
        }
    } else if let Some(d) = after.iter().find(|d| d.kind == Kind::Deploy) {
        format!("started {} before {}: not caused by it", duration(d.at - onset_ms), d.service_version())
    } else {
        let window = duration(opts.lookback_ms);
        match alert_service(labels) {
            Some(s) => format!("no change to {s} in the {window} before onset"),
            None => format!("no recorded change in the {window} before onset"),
        }
    };
    Correlation { changes, verdict }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const MIN: i64 = 60_000;
    const H: i64 = 60 * MIN;
    /// Simulated "now": the onset of the alerts below.
    const T0: i64 = 1_700_000_000_000;

    fn marker(id: i64, service: &str, version: &str, kind: Kind, at: i64) -> Marker {
        Marker {
            id,
            service: service.into(),
            version: version.into(),
            kind,
            at,
            commit: None,
            url: None,
            by: None,
            labels: BTreeMap::new(),
        }
    }

    fn alert(service: &str) -> Labels {
        Labels::from_pairs([("alertname", "X"), ("job", service)])
    }

    fn run(markers: &[Marker], resolved: Option<i64>, now: i64) -> Correlation {
        correlate(&alert("checkout"), T0, resolved, now, markers, &MatchOptions::default())
    }

    #[test]
    fn leak_right_after_a_deploy_is_tied_to_it() {
        let c = run(&[marker(1, "checkout", "2.3", Kind::Deploy, T0 - 7 * MIN)], None, T0);
        assert_eq!(c.verdict, "began 7 min after checkout v2.3 was deployed");
        assert_eq!(c.changes.len(), 1);
        assert_eq!(c.changes[0].before_onset_ms, 7 * MIN);
        assert_eq!(c.changes[0].text, "checkout v2.3 deployed 7 min before onset");
    }

    #[test]
    fn hours_old_deploy_is_discounted() {
        let c = run(&[marker(1, "checkout", "2.3", Kind::Deploy, T0 - 3 * H)], None, T0);
        assert_eq!(c.verdict, "began 3 h after checkout v2.3 was deployed: probably not caused by it");
        let c = run(&[marker(1, "checkout", "2.3", Kind::Deploy, T0 - 17 * H)], None, T0);
        assert_eq!(c.changes[0].text, "checkout v2.3 deployed 17 h before onset");
    }

    #[test]
    fn nothing_in_the_window() {
        let old = marker(1, "checkout", "2.3", Kind::Deploy, T0 - 30 * H);
        let other = marker(2, "payments", "9", Kind::Deploy, T0 - MIN);
        let opts = MatchOptions { lookback_ms: 6 * H, ..Default::default() };
        let c = correlate(&alert("checkout"), T0, None, T0, &[old, other], &opts);
        assert_eq!(c.verdict, "no change to checkout in the 6 h before onset");
        assert!(c.changes.is_empty());
    }

    #[test]
    fn deploy_after_onset_is_cleared() {
        let c = run(&[marker(1, "checkout", "2.3", Kind::Deploy, T0 + 3 * H)], None, T0 + 4 * H);
        assert_eq!(c.verdict, "started 3 h before checkout v2.3: not caused by it");
        assert_eq!(c.changes[0].text, "checkout v2.3 deployed 3 h after onset");
    }

    #[test]
    fn rollback_that_did_not_help() {
        let ms = [
            marker(1, "checkout", "2.3", Kind::Deploy, T0 - 3 * H),
            marker(2, "checkout", "2.2", Kind::Rollback, T0 + 20 * MIN),
        ];
        let c = run(&ms, None, T0 + 60 * MIN);
        assert_eq!(c.verdict, "still firing 40 min after rollback to v2.2: the deploy is unlikely the cause");
        let c = run(&ms, None, T0 + 25 * MIN);
        assert!(c.verdict.contains("too early to tell"), "{}", c.verdict);
    }

    #[test]
    fn rollback_that_helped() {
        let ms = [
            marker(1, "checkout", "2.3", Kind::Deploy, T0 - 5 * MIN),
            marker(2, "checkout", "2.2", Kind::Rollback, T0 + 20 * MIN),
        ];
        let c = run(&ms, Some(T0 + 24 * MIN), T0 + 30 * MIN);
        assert_eq!(
            c.verdict,
            "began 5 min after checkout v2.3 was deployed; resolved 4 min after rollback to v2.2: the rolled-back deploy is the likely cause"
        );
        assert_eq!(c.changes.len(), 2);
        assert_eq!(c.changes[1].before_onset_ms, -20 * MIN);
    }

    #[test]
    fn onset_after_a_rollback_clears_the_rolled_back_deploy() {
        let ms = [
            marker(1, "checkout", "2.3", Kind::Deploy, T0 - 3 * H),
            marker(2, "checkout", "2.2", Kind::Rollback, T0 - 30_000),
        ];
        let c = run(&ms, None, T0);
        assert_eq!(
            c.verdict,
            "began 30 s after checkout was rolled back to v2.2: v2.3 was no longer running, so it is not the cause"
        );
    }

    #[test]
    fn matching_by_service_job_and_labels() {
        let mut m = marker(1, "checkout", "1", Kind::Deploy, 0);
        let by_service = Labels::from_pairs([("service", "checkout"), ("job", "api")]);
        assert!(matches(&by_service, &m, &["service".into(), "job".into()]));
        assert!(matches(&alert("checkout"), &m, &["service".into(), "job".into()]));
        assert!(!matches(&alert("payments"), &m, &["service".into(), "job".into()]));
        // A shared match label ties a marker of another name...
        m.service = "checkout-canary".into();
        m.labels.insert("job".into(), "checkout".into());
        assert!(matches(&alert("checkout"), &m, &["service".into(), "job".into()]));
        // ...and a conflicting one unties it.
        m.service = "checkout".into();
        m.labels.insert("env".into(), "staging".into());
        let prod = Labels::from_pairs([("job", "checkout"), ("env", "prod")]);
        assert!(!matches(&prod, &m, &["job".into(), "env".into()]));
        assert!(matches(&prod, &m, &["job".into()]));
    }
}
