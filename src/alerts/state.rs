//! The alert state machine of one alerting rule.
//!
//! Each evaluation hands in the rule's result vector at time `t`. A label
//! set seen for the first time becomes a *pending* alert; it *fires* once it
//! has been continuously present for `for`; when it disappears a pending
//! alert is dropped, a firing one *resolves* (or, with `keep_firing_for`,
//! keeps firing until it has been absent that long). A resolved alert is
//! kept for a while so that its resolution is still reported, then
//! forgotten. This mirrors Prometheus's `rules/alerting.go` so that pasted
//! rules behave exactly as their authors expect.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::template::{Template, TemplateData, TplValue};
use crate::duration::PromDuration;
use crate::labels::{Labels, METRIC_NAME};
use crate::promql::{Expr, VectorSample};

/// How long a resolved alert stays visible (and is re-sent) before it is dropped.
const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    /// Was firing, is no longer; kept for RESOLVED_RETENTION_MS.
    Inactive,
}

impl AlertState {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Inactive => "inactive",
        }
    }
}

/// The annotation (and template variable `$explanation`) in which a rule
/// kind says why it fired: the band or trend, the distance, since when.
pub const EXPLANATION: &str = "explanation";

/// One series a rule's evaluation found active: the input of the state machine.
#[derive(Clone, Debug)]
pub struct AlertInput {
    /// Result labels (`__name__` is dropped by the state machine).
    pub labels: Labels,
    /// What `$value` shows.
    pub value: f64,
    /// Extra template variables, e.g. ("trend", {slope, eta, since}).
    pub vars: Vec<(String, TplValue)>,
    /// When the condition began, if the rule kind knows better than the
    /// first evaluation that saw it (a trend's start).
    pub onset: Option<i64>,
    /// What a rule kind judged the value against, for the chart.
    pub overlay: Option<Overlay>,
}

/// What made a rule kind fire, in a form a chart can draw: the band the
/// value left, or the fitted trend and where it reaches the limit.
#[derive(Clone, Debug, PartialEq)]
pub enum Overlay {
    /// `anomaly`, learned or fixed `ratio`, `threshold`: the usual range at
    /// the last evaluation (`lower`/`upper` may be infinite for one side).
    Band { label: String, lower: f64, upper: f64 },
    /// `trend`: the line `value + slope·(t - at)` fitted since `since`,
    /// projected to `limit` when the rule has one.
    Trend { since: i64, at: i64, value: f64, slope_per_s: f64, limit: Option<f64> },
}

impl From<&VectorSample> for AlertInput {
    fn from(s: &VectorSample) -> Self {
        AlertInput { labels: s.labels.clone(), value: s.v, vars: Vec::new(), onset: None, overlay: None }
    }
}

/// One alert: a rule's result for one label set, with its history.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Result labels minus `__name__`, plus the rule's labels and `alertname`.
    pub labels: Labels,
    pub annotations: Labels,
    pub state: AlertState,
    /// The value of the last evaluation that returned this label set.
    pub value: f64,
    /// When it first became pending.
    pub active_at: i64,
    /// When the problem began: `active_at`, or earlier when the rule kind
    /// can tell (a trend's start). Deploys are correlated against this.
    pub onset: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// Last evaluation in which the expression returned this label set.
    pub last_seen: i64,
    pub keep_firing_since: Option<i64>,
    /// The rule kind's band or trend at the last evaluation that saw it.
    pub overlay: Option<Overlay>,
}

impl Alert {
    pub fn fingerprint(&self) -> u64 {
        self.labels.fingerprint()
    }
}

/// A label or annotation of a rule: its name, its text and the parsed template.
#[derive(Debug, Clone)]
pub struct NamedTemplate {
    pub name: String,
    pub source: String,
    pub template: Arc<Template>,
    /// Whether the text uses `$deploy` or `$changes`, which cost a deploy
    /// marker lookup per alert (found once here, not at every evaluation).
    pub uses_changes: bool,
}

impl NamedTemplate {
    pub fn new(name: &str, source: &str) -> Result<Self, super::template::TemplateError> {
        Ok(NamedTemplate {
            name: name.to_string(),
            source: source.to_string(),
            template: Arc::new(Template::parse(name, source)?),
            uses_changes: source.contains("$deploy") || source.contains("$changes"),
        })
    }
}

/// Finds the deploy markers that matter for an alert: (labels, onset, now)
/// -> correlation. The daemon reads its marker log; replay reads `--markers`.
#[derive(Clone)]
pub struct ChangesHook(pub std::sync::Arc<ChangesFn>);

/// (alert labels, onset ms, now ms) -> the deploys that matter.
pub type ChangesFn = dyn Fn(&Labels, i64, i64) -> Option<crate::deploys::Correlation> + Send + Sync;

impl std::fmt::Debug for ChangesHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangesHook")
    }
}

impl ChangesHook {
    /// The hook of a fixed list of markers (replay's `--markers`, a rule
    /// test's `input_markers`): templates get `$deploy` and `$changes`.
    pub fn from_markers(markers: std::sync::Arc<Vec<crate::deploys::Marker>>) -> ChangesHook {
        let opts = crate::deploys::MatchOptions::default();
        ChangesHook(std::sync::Arc::new(move |labels, onset, now| {
            Some(crate::deploys::correlate(labels, onset, None, now, &markers, &opts))
        }))
    }
}

/// An alerting rule and the alerts it currently holds.
#[derive(Debug)]
pub struct AlertingRule {
    pub name: String,
    pub expr_text: String,
    pub expr: Expr,
    pub hold: PromDuration,
    pub keep_firing_for: PromDuration,
    /// Rule (and group) labels; values may be templates.
    pub labels: Vec<NamedTemplate>,
    pub annotations: Vec<NamedTemplate>,
    /// Line of the rule in its file (for messages).
    pub line: u64,
    active: HashMap<u64, Alert>,
    /// Start of the `for` clock of restored pending alerts, when not their
    /// `active_at` (an outage does not count toward `for`; see `persist`).
    hold_from: HashMap<u64, i64>,
    /// Errors from the last evaluation (template or query), for the API.
    pub last_error: Option<String>,
}

impl AlertingRule {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        expr_text: String,
        expr: Expr,
        hold: PromDuration,
        keep_firing_for: PromDuration,
        labels: Vec<NamedTemplate>,
        annotations: Vec<NamedTemplate>,
        line: u64,
    ) -> Self {
        AlertingRule {
            name,
            expr_text,
            expr,
            hold,
            keep_firing_for,
            labels,
            annotations,
            line,
            active: HashMap::new(),
            hold_from: HashMap::new(),
            last_error: None,
        }
    }

    /// The alerts this rule holds now, in label order.
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.active.values().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Takes over the alerts of the rule this one replaces on a reload, so a
    /// reload neither re-fires nor forgets an alert (Prometheus does the same).
    pub fn inherit(&mut self, old: &mut AlertingRule) {
        self.active = std::mem::take(&mut old.active);
        self.hold_from = std::mem::take(&mut old.hold_from);
    }

    /// The alerts with the start of their `for` clock, for saving.
    pub fn saved_alerts(&self) -> impl Iterator<Item = (&Alert, i64)> {
        self.active.iter().map(|(fp, a)| (a, self.hold_from.get(fp).copied().unwrap_or(a.active_at)))
    }

    /// Puts saved alerts back after a restart whose outage began at
    /// `down_at` (see `persist` for the semantics); returns how many.
    pub fn restore(&mut self, saved: Vec<super::persist::SavedAlert>, down_at: i64, now: i64, grace_ms: i64) -> usize {
        let hold = self.hold.as_millis();
        let mut n = 0;
        for s in saved {
            let fp = s.alert.fingerprint();
            if s.alert.labels.get("alertname") != Some(self.name.as_str()) {
                continue;
            }
            if s.alert.state == AlertState::Pending {
                let from = super::persist::restored_hold_from(s.hold_from, hold, down_at, now, grace_ms);
                if from != s.alert.active_at {
                    self.hold_from.insert(fp, from);
                }
            }
            self.active.insert(fp, s.alert);
            n += 1;
        }
        n
    }

    /// Advances the state machine with the result of evaluating the
    /// expression at `t`, and returns the alerts to hand to notification:
    /// every firing alert and every alert resolved in the last retention window.
    pub fn eval(
        &mut self,
        t: i64,
        result: &[VectorSample],
        external_labels: &Labels,
        external_url: &str,
    ) -> Vec<Alert> {
        let inputs: Vec<AlertInput> = result.iter().map(AlertInput::from).collect();
        self.eval_inputs(t, &inputs, external_labels, external_url, None)
    }

    /// Like [`AlertingRule::eval`], for inputs that carry extra template
    /// values and onsets (the rule kinds); `changes` gives templates
    /// `$deploy` and `$changes`.
    pub fn eval_inputs(
        &mut self,
        t: i64,
        result: &[AlertInput],
        external_labels: &Labels,
        external_url: &str,
        changes: Option<&ChangesHook>,
    ) -> Vec<Alert> {
        // Correlating with deploys costs a marker lookup: only when used.
        let wants_changes = changes.is_some() && self.annotations.iter().chain(&self.labels).any(|t| t.uses_changes);
        let mut seen = std::collections::HashSet::new();
        let mut template_errors = Vec::new();
        for s in result {
            let sample_labels = s.labels.without_name();
            let mut data = TemplateData::for_alert(&sample_labels, s.value, external_labels, external_url);
            for (k, v) in &s.vars {
                data.vars.insert(k.clone(), v.clone());
            }
            if let (true, Some(hook)) = (wants_changes, changes) {
                let mut key = s.labels.clone();
                key.remove(METRIC_NAME);
                for nt in &self.labels {
                    key.set(nt.name.clone(), nt.source.clone());
                }
                key.set("alertname".into(), self.name.clone());
                let onset = match self.active.get(&key.fingerprint()) {
                    Some(a) if a.state != AlertState::Inactive => a.onset,
                    _ => s.onset.unwrap_or(t).min(t),
                };
                if let Some(c) = (hook.0)(&sample_labels, onset, t) {
                    let (deploy, changes) = super::deploy_values::template_values(&c);
                    data.vars.insert("deploy".into(), deploy);
                    data.vars.insert("changes".into(), changes);
                }
            }
            let mut labels = s.labels.clone();
            labels.remove(METRIC_NAME);
            for nt in &self.labels {
                let (k, tpl) = (&nt.name, &nt.template);
                let v = tpl.render(&data).unwrap_or_else(|e| {
                    template_errors.push(e.to_string());
                    format!("<error expanding template: {e}>")
                });
                labels.set(k.clone(), v);
            }
            labels.set("alertname".into(), self.name.clone());
            let mut annotations = Labels::new();
            for nt in &self.annotations {
                let (k, tpl) = (&nt.name, &nt.template);
                let v = tpl.render(&data).unwrap_or_else(|e| {
                    template_errors.push(e.to_string());
                    format!("<error expanding template: {e}>")
                });
                annotations.set(k.clone(), v);
            }
            // A rule kind explains each verdict (band, distance, since when);
            // the rule's own `explanation` annotation, if any, wins.
            if let Some(TplValue::Str(text)) = s.vars.iter().find(|(k, _)| k == EXPLANATION).map(|(_, v)| v) {
                if annotations.get(EXPLANATION).is_none() {
                    annotations.set(EXPLANATION.into(), text.clone());
                }
            }
            let fp = labels.fingerprint();
            if !seen.insert(fp) {
                self.last_error =
                    Some("vector contains metrics with the same labelset after applying alert labels".into());
                continue;
            }
            match self.active.get_mut(&fp) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = s.value;
                    a.annotations = annotations;
                    a.last_seen = t;
                    a.keep_firing_since = None;
                    a.overlay = s.overlay.clone();
                }
                _ => {
                    self.active.insert(
                        fp,
                        Alert {
                            labels,
                            annotations,
                            state: AlertState::Pending,
                            value: s.value,
                            active_at: t,
                            onset: s.onset.unwrap_or(t).min(t),
                            fired_at: None,
                            resolved_at: None,
                            last_seen: t,
                            keep_firing_since: None,
                            overlay: s.overlay.clone(),
                        },
                    );
                }
            }
        }
        if !template_errors.is_empty() {
            self.last_error = Some(template_errors.join("; "));
        }

        let hold = self.hold.as_millis();
        let keep = self.keep_firing_for.as_millis();
        let mut out = Vec::new();
        let hold_from = &mut self.hold_from;
        self.active.retain(|fp, a| {
            if !seen.contains(fp) {
                match a.state {
                    AlertState::Pending => return false,
                    AlertState::Inactive => {
                        if a.resolved_at.is_some_and(|r| t - r > RESOLVED_RETENTION_MS) {
                            return false;
                        }
                    }
                    AlertState::Firing => {
                        let since = *a.keep_firing_since.get_or_insert(t);
                        if keep == 0 || t - since >= keep {
                            a.state = AlertState::Inactive;
                            a.resolved_at = Some(t);
                        }
                    }
                }
            }
            let from = hold_from.get(fp).copied().unwrap_or(a.active_at);
            if a.state == AlertState::Pending && t - from >= hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(t);
            }
            if a.state != AlertState::Pending {
                out.push(a.clone());
            }
            true
        });
        if !hold_from.is_empty() {
            let active = &self.active;
            hold_from.retain(|fp, _| active.get(fp).is_some_and(|a| a.state == AlertState::Pending));
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(hold_s: u64, keep_s: u64) -> AlertingRule {
        let expr = crate::promql::parse("up == 0").unwrap();
        let summary = NamedTemplate::new("summary", "{{ $labels.job }} is {{ $value }}").unwrap();
        let sev = NamedTemplate::new("severity", "page").unwrap();
        AlertingRule::new(
            "Down".into(),
            "up == 0".into(),
            expr,
            PromDuration::from_secs(hold_s),
            PromDuration::from_secs(keep_s),
            vec![sev],
            vec![summary],
            1,
        )
    }

    fn sample(job: &str, v: f64) -> VectorSample {
        VectorSample { labels: Labels::from_pairs([("__name__", "up"), ("job", job)]), v, h: None }
    }

    const EXT: fn() -> Labels = Labels::new;

    #[test]
    fn pending_then_firing_then_resolved() {
        let mut r = rule(60, 0);
        assert!(r.eval(0, &[sample("a", 0.0)], &EXT(), "").is_empty());
        assert_eq!(r.alerts()[0].state, AlertState::Pending);
        assert!(r.eval(30_000, &[sample("a", 0.0)], &EXT(), "").is_empty());
        let fired = r.eval(60_000, &[sample("a", 0.0)], &EXT(), "");
        assert_eq!(fired.len(), 1);
        let a = &fired[0];
        assert_eq!(a.state, AlertState::Firing);
        assert_eq!(a.active_at, 0);
        assert_eq!(a.labels.get("alertname"), Some("Down"));
        assert_eq!(a.labels.get("severity"), Some("page"));
        assert_eq!(a.labels.get("__name__"), None);
        assert_eq!(a.annotations.get("summary"), Some("a is 0"));
        let resolved = r.eval(75_000, &[], &EXT(), "");
        assert_eq!(resolved[0].state, AlertState::Inactive);
        assert_eq!(resolved[0].resolved_at, Some(75_000));
        // Kept (and re-sent) for the retention window, then forgotten.
        assert_eq!(r.eval(75_000 + RESOLVED_RETENTION_MS, &[], &EXT(), "").len(), 1);
        assert!(r.eval(76_000 + RESOLVED_RETENTION_MS, &[], &EXT(), "").is_empty());
        assert!(r.alerts().is_empty());
    }

    #[test]
    fn pending_alert_that_disappears_is_dropped_and_restarts_its_clock() {
        let mut r = rule(60, 0);
        r.eval(0, &[sample("a", 0.0)], &EXT(), "");
        r.eval(30_000, &[], &EXT(), "");
        assert!(r.alerts().is_empty());
        r.eval(45_000, &[sample("a", 0.0)], &EXT(), "");
        assert!(r.eval(90_000, &[sample("a", 0.0)], &EXT(), "").is_empty(), "clock restarted at 45s");
        assert_eq!(r.eval(105_000, &[sample("a", 0.0)], &EXT(), "").len(), 1);
    }

    #[test]
    fn zero_for_fires_at_once_and_one_alert_per_label_set() {
        let mut r = rule(0, 0);
        let out = r.eval(0, &[sample("a", 0.0), sample("b", 0.0)], &EXT(), "");
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|a| a.state == AlertState::Firing));
    }

    #[test]
    fn keep_firing_for_holds_then_resolves() {
        let mut r = rule(0, 60);
        r.eval(0, &[sample("a", 0.0)], &EXT(), "");
        assert_eq!(r.eval(15_000, &[], &EXT(), "")[0].state, AlertState::Firing);
        assert_eq!(r.eval(60_000, &[], &EXT(), "")[0].state, AlertState::Firing);
        let out = r.eval(75_000, &[], &EXT(), "");
        assert_eq!(out[0].state, AlertState::Inactive);
        // Seen again after resolution: a new alert with a new onset.
        r.eval(90_000, &[sample("a", 0.0)], &EXT(), "");
        assert_eq!(r.alerts()[0].active_at, 90_000);
    }

    #[test]
    fn keep_firing_for_resets_when_seen_again() {
        let mut r = rule(0, 60);
        r.eval(0, &[sample("a", 0.0)], &EXT(), "");
        r.eval(50_000, &[], &EXT(), "");
        r.eval(55_000, &[sample("a", 0.0)], &EXT(), "");
        assert_eq!(r.eval(110_000, &[], &EXT(), "")[0].state, AlertState::Firing);
    }
}
