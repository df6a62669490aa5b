//! Rules: groups of alerting and recording rules, evaluated on an interval.
//!
//! `file` reads and validates rule files; this module evaluates a group at a
//! given time (pure: the time comes in, results go out), and `manager` runs
//! each group on its interval in the daemon and swaps rule sets on reload.

pub mod file;
pub mod kinds;
pub mod manager;

use serde::Serialize;

use crate::alerts::{Alert, AlertingRule};
use crate::duration::PromDuration;
use crate::labels::{Labels, METRIC_NAME};
use crate::promql::{self, EvalOptions, Expr, Value, VectorSample};
use crate::store::{Queryable, Store};

pub use crate::alerts::{ChangesFn, ChangesHook};
pub use file::{load_file, load_patterns, load_patterns_with, parse_rules};
pub use manager::RuleManager;

/// A recording rule: its result is written back to the store as a new series.
#[derive(Debug)]
pub struct RecordingRule {
    pub name: String,
    pub expr_text: String,
    pub expr: Expr,
    pub labels: Labels,
    pub line: u64,
}

/// An alerting rule: the alert state machine ([`AlertingRule`], which it
/// derefs to) and, for `trend`/`ratio`/`anomaly`/`threshold` rules, the
/// kind that finds the active series (then `expr` is the series it
/// watches, for charts). The kind lives here, not in `alerts`, because
/// only rule evaluation runs it.
#[derive(Debug)]
pub struct AlertRule {
    pub alerting: AlertingRule,
    pub kind: Option<kinds::RuleKind>,
}

impl AlertRule {
    /// Takes over the alerts, and the kind's memory, of the rule this one
    /// replaces on a reload.
    pub fn inherit(&mut self, old: &mut AlertRule) {
        self.alerting.inherit(&mut old.alerting);
        if let (Some(new), Some(old)) = (self.kind.as_mut(), old.kind.as_mut()) {
            new.inherit(old);
        }
    }
}

impl std::ops::Deref for AlertRule {
    type Target = AlertingRule;
    fn deref(&self) -> &AlertingRule {
        &self.alerting
    }
}

impl std::ops::DerefMut for AlertRule {
    fn deref_mut(&mut self) -> &mut AlertingRule {
        &mut self.alerting
    }
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a group holds few rules; boxing buys nothing
pub enum Rule {
    Alert(AlertRule),
    Record(RecordingRule),
}

impl Rule {
    pub fn name(&self) -> &str {
        match self {
            Rule::Alert(a) => &a.name,
            Rule::Record(r) => &r.name,
        }
    }
}

/// Health of a rule's last evaluation, for `/api/v1/rules`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleHealth {
    pub last_error: Option<String>,
    pub last_evaluation: i64,
    pub evaluation_ms: f64,
}

/// A named group of rules evaluated together, in order, on one interval.
#[derive(Debug)]
pub struct RuleGroup {
    pub name: String,
    pub file: String,
    pub interval: PromDuration,
    pub limit: usize,
    /// The group's own `query_offset`; without it, the context's.
    pub query_offset: Option<PromDuration>,
    pub rules: Vec<Rule>,
}

/// When the process behind a series was replaced: (labels, from, to) ->
/// times of deploy/rollback/restart markers. Trend rules cut windows there.
#[derive(Clone)]
pub struct RestartsHook(pub std::sync::Arc<RestartsFn>);

/// (series labels, from ms, to ms) -> restart times.
pub type RestartsFn = dyn Fn(&Labels, i64, i64) -> Vec<i64> + Send + Sync;

impl std::fmt::Debug for RestartsHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RestartsHook")
    }
}

impl RestartsHook {
    /// The hook of a fixed list of markers: trend windows are cut at the
    /// deploy, rollback and restart markers among them.
    pub fn from_markers(markers: std::sync::Arc<Vec<crate::deploys::Marker>>) -> RestartsHook {
        let opts = crate::deploys::MatchOptions::default();
        RestartsHook(std::sync::Arc::new(move |labels, from, to| {
            crate::deploys::restart_times(labels, &markers, &opts)
                .into_iter()
                .filter(|t| (from..=to).contains(t))
                .collect()
        }))
    }
}

/// What evaluation needs besides the store.
#[derive(Clone, Debug, Default)]
pub struct EvalContext {
    pub external_labels: Labels,
    pub external_url: String,
    pub options: EvalOptions,
    /// Gives templates `$deploy` and `$changes`; without it they are empty.
    pub changes: Option<ChangesHook>,
    /// Deploy/restart markers for trend window cuts.
    pub restarts: Option<RestartsHook>,
    /// How far in the past groups without their own `query_offset`
    /// evaluate (`datasource.query_offset`), in ms.
    pub query_offset_ms: i64,
}

/// The outcome of one group evaluation.
#[derive(Debug, Default)]
pub struct GroupOutcome {
    /// Firing and recently resolved alerts, for notification.
    pub alerts: Vec<Alert>,
    /// Per rule (same order as `rules`): the error of this evaluation, if any.
    pub errors: Vec<Option<String>>,
    pub samples_recorded: usize,
}

impl RuleGroup {
    /// The ingest mask ([`crate::store::names_mask`]) of the metric names
    /// this group's rules read: a committed batch of one of them wakes it.
    pub fn reads_mask(&self) -> u64 {
        let mut names = Vec::new();
        for r in &self.rules {
            match r {
                Rule::Record(r) => names.extend(crate::promql::selector_names(&r.expr)),
                Rule::Alert(a) => {
                    names.extend(crate::promql::selector_names(&a.expr));
                    for e in a.kind.iter().flat_map(|k| k.reads()) {
                        names.extend(crate::promql::selector_names(e));
                    }
                }
            }
        }
        crate::store::names_mask(names.iter().map(Option::as_deref))
    }

    /// The ingest mask of the series its recording rules write.
    pub fn writes_mask(&self) -> u64 {
        let names = self.rules.iter().filter_map(|r| match r {
            Rule::Record(r) => Some(Some(r.name.as_str())),
            Rule::Alert(_) => None,
        });
        crate::store::names_mask(names)
    }

    /// Evaluates every rule at `t` (ms). Recording rules write into `store`
    /// before the next rule runs, so later rules see their output.
    pub fn eval(&mut self, store: &Store, t: i64, ctx: &EvalContext) -> GroupOutcome {
        self.eval_reading(store, store, t, ctx)
    }

    /// Like [`RuleGroup::eval`], reading series from `reads` (the local
    /// store or a [`crate::datasource`]) and writing recording results to
    /// `writes`. A rule whose reads failed fails for this evaluation and
    /// its alerts stay as they were.
    pub fn eval_reading(&mut self, reads: &dyn Queryable, writes: &Store, t: i64, ctx: &EvalContext) -> GroupOutcome {
        let mut out = GroupOutcome::default();
        let offset = self.query_offset.map_or(ctx.query_offset_ms, |o| o.as_millis());
        let qt = t - offset;
        let _ = reads.take_error();
        let interval_ms = self.interval.as_millis();
        // Each rule's evaluation gets at most the group's interval (and never
        // more than query.timeout): one slow rule cannot stall the group.
        let mut options = ctx.options.clone();
        let interval = std::time::Duration::from_millis(interval_ms.max(1) as u64);
        options.limits.timeout = options.limits.timeout.min(interval);
        for rule in &mut self.rules {
            if let Rule::Alert(a) = rule {
                if let Some(kind) = a.kind.as_mut() {
                    let kctx = kinds::KindContext {
                        store: reads,
                        t: qt,
                        interval_ms,
                        for_ms: a.alerting.hold.as_millis(),
                        options: &options,
                        restarts: ctx.restarts.as_ref(),
                    };
                    match kind.eval(&kctx).map_err(|e| e.to_string()).and_then(|inputs| match reads.take_error() {
                        Some(e) => Err(e),
                        None => Ok(inputs),
                    }) {
                        Ok(inputs) => {
                            let a = &mut a.alerting;
                            a.last_error = None;
                            let (labels, url, changes) =
                                (&ctx.external_labels, &ctx.external_url, ctx.changes.as_ref());
                            out.alerts.extend(a.eval_inputs(t, &inputs, labels, url, changes));
                            out.errors.push(a.last_error.clone());
                        }
                        Err(e) => {
                            a.alerting.last_error = Some(e.clone());
                            out.errors.push(Some(e));
                        }
                    }
                    continue;
                }
            }
            let result = promql::eval_instant(reads, rule_expr(rule), qt, &options);
            let result = match reads.take_error() {
                Some(e) => Err(e),
                None => result.map(into_vector).and_then(|r| r).map_err(|e| e.to_string()),
            };
            let vector = match result {
                Ok(v) => v,
                Err(msg) => {
                    if let Rule::Alert(a) = rule {
                        a.last_error = Some(msg.clone());
                    }
                    out.errors.push(Some(msg));
                    continue;
                }
            };
            if self.limit > 0 && vector.len() > self.limit {
                out.errors.push(Some(format!("exceeded limit of {} with {} series", self.limit, vector.len())));
                continue;
            }
            match rule {
                Rule::Record(r) => {
                    for s in vector {
                        let mut labels = s.labels;
                        labels.set(METRIC_NAME.into(), r.name.clone());
                        for (k, v) in r.labels.iter() {
                            labels.set(k.to_string(), v.to_string());
                        }
                        match s.h {
                            Some(h) => writes.append_histogram(&labels, t, *h),
                            None => writes.append(&labels, t, s.v),
                        }
                        out.samples_recorded += 1;
                    }
                    out.errors.push(None);
                }
                Rule::Alert(a) => {
                    a.last_error = None;
                    let inputs: Vec<crate::alerts::AlertInput> = vector.iter().map(Into::into).collect();
                    let (labels, url, changes) = (&ctx.external_labels, &ctx.external_url, ctx.changes.as_ref());
                    out.alerts.extend(a.eval_inputs(t, &inputs, labels, url, changes));
                    out.errors.push(a.last_error.clone());
                }
            }
        }
        out
    }

    /// The `ALERTS` and `ALERTS_FOR_STATE` samples Prometheus writes for
    /// the pending and firing alerts of this group: `ALERTS{<alert labels>,
    /// alertstate}` = 1 and `ALERTS_FOR_STATE{<alert labels>}` = the Unix
    /// second the alert became active (what a restart restores `for` from).
    pub fn alert_series(&self) -> Vec<(Labels, f64)> {
        let mut out = Vec::new();
        for rule in &self.rules {
            let Rule::Alert(a) = rule else { continue };
            for alert in a.alerts() {
                if alert.state == crate::alerts::AlertState::Inactive {
                    continue;
                }
                let mut l = alert.labels.clone();
                l.set(METRIC_NAME.into(), "ALERTS_FOR_STATE".into());
                out.push((l.clone(), alert.active_at as f64 / 1000.0));
                l.set(METRIC_NAME.into(), "ALERTS".into());
                l.set("alertstate".into(), alert.state.as_str().into());
                out.push((l, 1.0));
            }
        }
        out
    }

    /// The group's identity in `state.db`: its file and name.
    pub fn key(&self) -> String {
        format!("{}\u{1f}{}", self.file, self.name)
    }

    /// The alerting rules with their identity in `state.db`: group, name,
    /// label templates, and position among rules equal in all that. A rule
    /// whose labels change gets a new key, so its old state is not
    /// restored into label sets it can no longer produce.
    pub fn alert_rules_keyed(&self) -> Vec<(String, &AlertRule)> {
        let group = self.key();
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut out = Vec::new();
        for rule in &self.rules {
            let Rule::Alert(a) = rule else { continue };
            let mut sig = Labels::new();
            for nt in &a.labels {
                sig.set(nt.name.clone(), nt.source.clone());
            }
            let base = format!("{group}\u{1f}{}\u{1f}{:016x}", a.name, sig.fingerprint());
            let n = seen.entry(base.clone()).or_insert(0);
            out.push((format!("{base}\u{1f}{n}"), a));
            *n += 1;
        }
        out
    }

    /// Puts back the alert state saved by an earlier run (see
    /// [`crate::alerts::persist`]); logs what was restored and what dropped.
    pub fn restore(
        &mut self,
        saved: crate::alerts::persist::SavedGroup,
        now: i64,
        opts: &crate::alerts::RestoreOptions,
    ) {
        let down_at = saved.last_eval;
        let outage = now - down_at;
        let n_saved: usize = saved.alerts.values().map(Vec::len).sum();
        if n_saved > 0 && outage > opts.for_outage_tolerance.as_millis() {
            tracing::warn!(group = %self.name, file = %self.file, alerts = n_saved, outage_s = outage / 1000,
                tolerance = %opts.for_outage_tolerance,
                "alert state not restored: forewarn was down longer than rules.alert.for_outage_tolerance");
            return;
        }
        let keys: Vec<String> = self.alert_rules_keyed().into_iter().map(|(k, _)| k).collect();
        let mut alerts = saved.alerts;
        let kinds = saved.kinds;
        let grace = opts.for_grace_period.as_millis();
        let mut restored = 0;
        let mut i = 0;
        for rule in &mut self.rules {
            let Rule::Alert(a) = rule else { continue };
            let key = &keys[i];
            i += 1;
            if let Some(list) = alerts.remove(key) {
                restored += a.restore(list, down_at, now, grace);
            }
            if let (Some(kind), Some(v)) = (a.kind.as_mut(), kinds.get(key)) {
                kind.restore_state(v);
            }
        }
        for (key, list) in alerts {
            let rule = key.split('\u{1f}').nth(2).unwrap_or("?").to_string();
            tracing::warn!(group = %self.name, rule = %rule, alerts = list.len(),
                "saved alert state dropped: the rule is gone or its labels changed");
        }
        if restored > 0 {
            tracing::info!(group = %self.name, alerts = restored, outage_s = outage / 1000, "alert state restored");
        }
    }

    /// Puts back the `for` state of alerts from what the datasource holds
    /// (see [`crate::datasource::restore`]), for a replica with no saved
    /// state of its own. Alerts come back pending with their `activeAt`
    /// and Prometheus's outage tolerance and grace period; rules without
    /// `for` need nothing restored. Returns how many were restored.
    pub fn restore_remote(
        &mut self,
        found: &[crate::datasource::restore::RemoteAlert],
        now: i64,
        opts: &crate::alerts::RestoreOptions,
    ) -> usize {
        let grace = opts.for_grace_period.as_millis();
        let mut restored = 0;
        for rule in &mut self.rules {
            let Rule::Alert(a) = rule else { continue };
            if a.hold.as_millis() <= 0 {
                continue;
            }
            for r in found {
                if r.labels.get("alertname") != Some(a.name.as_str())
                    || now - r.seen_at > opts.for_outage_tolerance.as_millis()
                {
                    continue;
                }
                let alert = crate::alerts::Alert {
                    labels: r.labels.clone(),
                    annotations: Labels::new(),
                    state: crate::alerts::AlertState::Pending,
                    value: f64::NAN,
                    active_at: r.active_at,
                    onset: r.active_at,
                    fired_at: None,
                    resolved_at: None,
                    last_seen: r.seen_at,
                    keep_firing_since: None,
                    overlay: None,
                };
                let saved = crate::alerts::persist::SavedAlert { alert, hold_from: r.active_at };
                restored += a.restore(vec![saved], r.seen_at, now, grace);
            }
        }
        if restored > 0 {
            tracing::info!(group = %self.name, alerts = restored, "alert state restored from the datasource's ALERTS_FOR_STATE");
        }
        restored
    }

    /// Moves alert state from the group this one replaces (same file and
    /// name), matching rules by name and expression.
    pub fn inherit(&mut self, old: &mut RuleGroup) {
        for rule in &mut self.rules {
            let Rule::Alert(new) = rule else { continue };
            let found = old.rules.iter_mut().find_map(|r| match r {
                Rule::Alert(o) if o.name == new.name && o.expr_text == new.expr_text => Some(o),
                _ => None,
            });
            if let Some(o) = found {
                new.inherit(o);
            }
        }
    }
}

fn rule_expr(rule: &Rule) -> &Expr {
    match rule {
        Rule::Alert(a) => &a.expr,
        Rule::Record(r) => &r.expr,
    }
}

/// A rule's result as a vector: a scalar becomes one sample without labels.
fn into_vector(v: Value) -> Result<Vec<VectorSample>, promql::EvalError> {
    match v {
        Value::Vector(v) => Ok(v),
        Value::Scalar(x) => Ok(vec![VectorSample { labels: Labels::new(), v: x, h: None }]),
        _ => Err(promql::EvalError::Unsupported("rule result must be an instant vector or a scalar".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
groups:
- name: g
  interval: 10s
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: JobDown
    expr: job:up:sum == 0
    for: 20s
    labels: { severity: page }
    annotations:
      summary: "{{ $labels.job }} has no instance up"
"#;

    #[test]
    fn recording_output_feeds_alerting_rule() {
        let mut groups = parse_rules("r.yml", RULES, PromDuration::from_secs(60)).unwrap();
        let g = &mut groups[0];
        assert_eq!(g.interval.as_millis(), 10_000);
        let store = Store::new(86_400_000);
        let up = Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", "a")]);
        let ctx = EvalContext::default();
        let mut fired = None;
        for i in 0..6 {
            let t = i * 10_000;
            store.append(&up, t, 0.0);
            let out = g.eval(&store, t, &ctx);
            assert!(out.errors.iter().all(Option::is_none), "{:?}", out.errors);
            if fired.is_none() && !out.alerts.is_empty() {
                fired = Some((t, out.alerts[0].clone()));
            }
        }
        let (t, a) = fired.expect("alert fired");
        assert_eq!(t, 20_000);
        assert_eq!(a.labels.get("job"), Some("api"));
        assert_eq!(a.labels.get("severity"), Some("page"));
        assert_eq!(a.annotations.get("summary"), Some("api has no instance up"));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let bad = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(x[5m])\n";
        let e = parse_rules("bad.yml", bad, PromDuration::from_secs(60)).unwrap_err();
        assert_eq!((e[0].line, e[0].col), (5, 11), "{}", e[0]);
        assert!(e[0].to_string().starts_with("bad.yml:5:11: parse error"), "{}", e[0]);
        let unknown = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotation: {}\n";
        let e = parse_rules("u.yml", unknown, PromDuration::from_secs(60)).unwrap_err();
        assert_eq!(e[0].line, 6, "{}", e[0]);
        let both = "groups:\n- name: g\n  rules:\n  - alert: A\n    record: b\n    expr: up\n";
        let e = parse_rules("b.yml", both, PromDuration::from_secs(60)).unwrap_err();
        assert!(e[0].message.contains("only one of 'record' and 'alert'"), "{}", e[0]);
    }
}
