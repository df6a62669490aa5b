//! `forewarn replay`: the daemon's rule engine over recorded history, at
//! simulated time.
//!
//! The input is OpenMetrics text with a timestamp on every sample (what
//! `promtool tsdb create-blocks-from openmetrics` reads). Samples go into an
//! ordinary in-memory store, then every rule group is evaluated at its own
//! interval from the first sample to the last, exactly as the daemon would
//! have done live. The result is, per alert and label set, the spans in
//! which it was pending and firing. The detection benchmark uses this path.
//!
//! With `--source URL` the history comes from a Prometheus-compatible
//! server instead (`source`): `needs` works out which series the rules read
//! and how far back, `source` fetches them into the same store, and the
//! replay is the same from there. `command` plans a run from the flags.

pub mod client;
pub mod command;
pub mod needs;
pub mod output;
pub mod source;
pub mod time;

use std::collections::HashMap;

use serde::Serialize;

use crate::alerts::AlertState;
use crate::labels::{Labels, METRIC_NAME};
use crate::rules::{EvalContext, Rule, RuleGroup};
use crate::scrape::parse::{self, Format, ParseOptions};
use crate::store::Store;

/// Why a replay input could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{file}:{source}")]
    Parse { file: String, source: parse::ParseError },
    #[error("{file}: a sample of {series} has no timestamp; replay input needs one on every sample (OpenMetrics: seconds after the value)")]
    NoTimestamp { file: String, series: String },
    #[error("{file}: no samples")]
    Empty { file: String },
}

/// Recorded history loaded into a store.
pub struct History {
    pub store: Store,
    pub start: i64,
    pub end: i64,
    pub samples: usize,
    /// What the history left out and the replay should say (native
    /// histogram series from `--source`).
    pub warnings: Vec<String>,
}

/// Reads OpenMetrics text with timestamps.
pub fn load_openmetrics(file: &str, body: &[u8]) -> Result<History, ReplayError> {
    let store = Store::new(i64::MAX / 4);
    let (mut start, mut end, mut n) = (i64::MAX, i64::MIN, 0usize);
    let mut missing: Option<String> = None;
    let opts = ParseOptions { strict_openmetrics: false, ..Default::default() };
    parse::parse_with(body, Format::OpenMetrics, opts, |s| {
        let Some(ts) = s.timestamp_ms else {
            if missing.is_none() {
                missing = Some(s.name.to_string());
            }
            return;
        };
        let mut labels = Labels::from_pairs(s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        labels.set(METRIC_NAME.into(), s.name.to_string());
        store.append(&labels, ts, s.value);
        start = start.min(ts);
        end = end.max(ts);
        n += 1;
    })
    .map_err(|source| ReplayError::Parse { file: file.to_string(), source })?;
    if let Some(series) = missing {
        return Err(ReplayError::NoTimestamp { file: file.to_string(), series });
    }
    if n == 0 {
        return Err(ReplayError::Empty { file: file.to_string() });
    }
    Ok(History { store, start, end, samples: n, warnings: Vec::new() })
}

/// A span of time an alert spent in one state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Span {
    pub alertname: String,
    pub labels: Labels,
    /// "pending" or "firing".
    pub state: &'static str,
    pub from: i64,
    /// None: still in that state when the history ended.
    pub to: Option<i64>,
    /// When this alert began (the first pending time, or a trend's start).
    pub onset: i64,
    /// The deploys before the onset and the verdict, for firing spans when
    /// markers were given.
    pub changes: Option<SpanChanges>,
}

/// What deploys say about one firing span (with `--markers`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanChanges {
    pub changes: Vec<String>,
    pub verdict: String,
}

/// Everything a replay found.
#[derive(Debug, Default)]
pub struct Report {
    pub spans: Vec<Span>,
    pub evaluations: usize,
    /// Errors seen during evaluation (rule, message), first of each kind.
    pub errors: Vec<(String, String)>,
    /// What the history could not give the rules (see [`History::warnings`]).
    pub warnings: Vec<String>,
    /// Each alerting rule's `for` and evaluation interval, for the summary.
    pub rules: Vec<RuleMeta>,
}

/// What the per-rule summary needs to know of an alerting rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleMeta {
    pub alertname: String,
    pub for_ms: i64,
    pub interval_ms: i64,
}

/// One alerting rule over the replayed window, for a rule author: how often
/// it would have paged, for how long, and how much of that was flapping.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleSummary {
    pub alertname: String,
    /// Label sets that fired at least once.
    pub series: usize,
    /// Firing spans that began in the window (each one page).
    pub episodes: usize,
    /// Total time firing within the window, in seconds.
    #[serde(rename = "firingSeconds")]
    pub firing_s: f64,
    /// Episodes that began less than twice `for` + one interval after the
    /// same label set's previous episode resolved (the least possible gap
    /// is `for` + one interval: a dip of one evaluation): one incident
    /// paging twice.
    pub flapping: usize,
    /// Episodes that lasted no longer than one evaluation interval.
    pub short: usize,
    /// What to change, when something stands out.
    pub advice: Option<String>,
}

impl Report {
    /// The first time `alertname` (and, if given, labels matching) fired.
    pub fn first_firing(&self, alertname: &str) -> Option<i64> {
        self.spans.iter().filter(|s| s.alertname == alertname && s.state == "firing").map(|s| s.from).min()
    }

    /// Notifications an Alertmanager-like receiver with `group_wait: 0s`
    /// would have got at or after `from`: one when an alert starts firing,
    /// one when it resolves.
    pub fn notifications(&self, from: i64) -> usize {
        let firing = self.spans.iter().filter(|s| s.state == "firing");
        firing.clone().filter(|s| s.from >= from).count() + firing.filter_map(|s| s.to).filter(|t| *t >= from).count()
    }

    /// Per alerting rule (in rule order): episodes, time firing, flapping.
    pub fn summary(&self, from: i64, to: i64) -> Vec<RuleSummary> {
        let mut out = Vec::new();
        for meta in &self.rules {
            if out.iter().any(|s: &RuleSummary| s.alertname == meta.alertname) {
                continue;
            }
            let mut firing: Vec<&Span> =
                self.spans.iter().filter(|s| s.alertname == meta.alertname && s.state == "firing").collect();
            firing.sort_by(|a, b| (&a.labels, a.from).cmp(&(&b.labels, b.from)));
            let mut sum = RuleSummary {
                alertname: meta.alertname.clone(),
                series: 0,
                episodes: 0,
                firing_s: 0.0,
                flapping: 0,
                short: 0,
                advice: None,
            };
            let gap = 2 * (meta.for_ms + meta.interval_ms);
            let mut prev: Option<&Span> = None;
            for s in firing {
                let end = s.to.unwrap_or(to).min(to);
                sum.firing_s += (end - s.from.max(from)).max(0) as f64 / 1000.0;
                let same_series = prev.is_some_and(|p| p.labels == s.labels);
                if !same_series {
                    sum.series += 1;
                }
                if s.from >= from {
                    sum.episodes += 1;
                    if s.to.is_some_and(|e| e - s.from <= meta.interval_ms) {
                        sum.short += 1;
                    }
                    if let (true, Some(p)) = (same_series, prev) {
                        if p.to.is_some_and(|e| s.from - e < gap) {
                            sum.flapping += 1;
                        }
                    }
                }
                prev = Some(s);
            }
            if sum.flapping > 0 || sum.short > 0 {
                let keep = crate::duration::PromDuration(std::time::Duration::from_millis(
                    gap.max(meta.interval_ms * 4).max(0) as u64,
                ));
                sum.advice = Some(format!(
                    "{} of {} episodes flapped or lasted one evaluation: add `keep_firing_for: {keep}` (one incident, one page) or a longer `for`",
                    sum.flapping.max(sum.short),
                    sum.episodes
                ));
            }
            out.push(sum);
        }
        out
    }

    /// Forgets spans that were over before `from` (evaluation started
    /// earlier so that `for` had run its course by `from`).
    pub fn clip(&mut self, from: i64) {
        self.spans.retain(|s| s.to.is_none_or(|t| t > from));
    }

    /// Firing spans of `alertname` that began in `[from, to)`.
    pub fn firings_between(&self, alertname: &str, from: i64, to: i64) -> usize {
        self.spans
            .iter()
            .filter(|s| s.alertname == alertname && s.state == "firing" && s.from >= from && s.from < to)
            .count()
    }
}

/// Evaluates `groups` over `[start, end]`. `progress` is called with the
/// fraction done, at most a few hundred times.
pub fn run(
    groups: &mut [RuleGroup],
    store: &Store,
    start: i64,
    end: i64,
    ctx: &EvalContext,
    mut progress: impl FnMut(f64),
) -> Report {
    let mut report = Report::default();
    for g in groups.iter() {
        for rule in &g.rules {
            if let Rule::Alert(a) = rule {
                report.rules.push(RuleMeta {
                    alertname: a.name.clone(),
                    for_ms: a.hold.as_millis(),
                    interval_ms: g.interval.as_millis(),
                });
            }
        }
    }
    // Open spans by (group, rule index, alert fingerprint).
    let mut open: HashMap<(usize, usize, u64), Span> = HashMap::new();
    let step = groups.iter().map(|g| g.interval.as_millis().max(1)).min().unwrap_or(60_000);
    let mut next_due: Vec<i64> = groups.iter().map(|_| start).collect();
    let mut t = start;
    let mut last_progress = -1.0;
    let mut seen_errors = std::collections::HashSet::new();
    while t <= end {
        for (gi, g) in groups.iter_mut().enumerate() {
            if t < next_due[gi] {
                continue;
            }
            next_due[gi] = t + g.interval.as_millis().max(1);
            let outcome = g.eval(store, t, ctx);
            report.evaluations += 1;
            for (ri, (rule, err)) in g.rules.iter().zip(outcome.errors.iter()).enumerate() {
                if let Some(e) = err {
                    if seen_errors.insert((gi, ri)) {
                        report.errors.push((rule.name().to_string(), e.clone()));
                    }
                }
                let Rule::Alert(a) = rule else { continue };
                let mut present = std::collections::HashSet::new();
                for alert in a.alerts() {
                    let fp = alert.fingerprint();
                    let key = (gi, ri, fp);
                    let state = match alert.state {
                        AlertState::Pending => "pending",
                        AlertState::Firing => "firing",
                        AlertState::Inactive => continue,
                    };
                    present.insert(fp);
                    match open.get_mut(&key) {
                        Some(span) if span.state == state => {}
                        Some(span) => {
                            span.to = Some(t);
                            report.spans.push(span.clone());
                            open.insert(key, new_span(&alert.labels, state, t, alert.onset));
                        }
                        None => {
                            open.insert(key, new_span(&alert.labels, state, t, alert.onset));
                        }
                    }
                }
                // Alerts that resolved or were dropped close their span.
                let gone: Vec<_> =
                    open.keys().filter(|k| k.0 == gi && k.1 == ri && !present.contains(&k.2)).copied().collect();
                for k in gone {
                    if let Some(mut span) = open.remove(&k) {
                        span.to = Some(t);
                        report.spans.push(span);
                    }
                }
            }
        }
        let frac = if end > start { (t - start) as f64 / (end - start) as f64 } else { 1.0 };
        if frac - last_progress >= 0.005 {
            progress(frac);
            last_progress = frac;
        }
        t += step;
    }
    progress(1.0);
    report.spans.extend(open.into_values());
    report.spans.sort_by(|a, b| (a.from, &a.alertname, &a.labels).cmp(&(b.from, &b.alertname, &b.labels)));
    report
}

fn new_span(labels: &Labels, state: &'static str, t: i64, onset: i64) -> Span {
    Span {
        alertname: labels.value("alertname").to_string(),
        labels: labels.clone(),
        state,
        from: t,
        to: None,
        onset,
        changes: None,
    }
}

/// Adds each firing span's recent changes and verdict, from `markers`.
pub fn correlate(report: &mut Report, markers: &[crate::deploys::Marker], end: i64) {
    let opts = crate::deploys::MatchOptions::default();
    for s in report.spans.iter_mut().filter(|s| s.state == "firing") {
        let now = s.to.unwrap_or(end);
        let c = crate::deploys::correlate(&s.labels, s.onset, s.to, now, markers, &opts);
        s.changes =
            Some(SpanChanges { changes: c.changes.iter().map(|n| n.text.clone()).collect(), verdict: c.verdict });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::PromDuration;

    #[test]
    fn replays_pending_firing_resolved() {
        let mut body = String::from("# TYPE queue_depth gauge\n");
        for i in 0..=20 {
            let v = if (5..12).contains(&i) { 500 } else { 5 };
            body.push_str(&format!("queue_depth{{q=\"a\"}} {v} {}\n", 1_700_000_000 + i * 60));
        }
        body.push_str("# EOF\n");
        let h = load_openmetrics("in.om", body.as_bytes()).unwrap();
        assert_eq!(h.samples, 21);
        let rules =
            "groups:\n- name: g\n  interval: 1m\n  rules:\n  - alert: Deep\n    expr: queue_depth > 100\n    for: 2m\n";
        let mut groups = crate::rules::parse_rules("r.yml", rules, PromDuration::from_secs(60)).unwrap();
        let r = run(&mut groups, &h.store, h.start, h.end, &EvalContext::default(), |_| {});
        let t0 = 1_700_000_000_000i64;
        let spans: Vec<(&str, i64, Option<i64>)> =
            r.spans.iter().map(|s| (s.state, s.from - t0, s.to.map(|x| x - t0))).collect();
        assert_eq!(spans, vec![("pending", 300_000, Some(420_000)), ("firing", 420_000, Some(720_000))]);
        assert_eq!(r.spans[0].labels.get("q"), Some("a"));
    }

    #[test]
    fn missing_timestamp_is_an_error_with_line() {
        let e = load_openmetrics("x.om", b"# TYPE a gauge\na 1 100\na 2\n# EOF\n").err().unwrap();
        assert!(e.to_string().contains("x.om"), "{e}");
    }
}
