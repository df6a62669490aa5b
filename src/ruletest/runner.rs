//! Runs one test group: loads series and rules, evaluates every group at
//! each evaluation interval from the start to the last `eval_time`, checks
//! alert expectations on the way and PromQL expectations at the end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::diff::{self, AlertRow, SampleRow};
use super::series::{parse_metric, Loader};
use super::spec::{Scalar, TestGroup};
use crate::alerts::AlertState;
use crate::duration::PromDuration;
use crate::labels::Labels;
use crate::native_histogram;
use crate::promql::{self, Value};
use crate::rules::{EvalContext, Rule, RuleGroup};
use crate::store::{stale_nan, Store};

/// What a group needs from its file.
pub struct FileSettings<'a> {
    pub eval_interval_ms: i64,
    pub fuzzy: bool,
    /// Loads fresh rule groups (each test group starts with clean state).
    pub load_rules: &'a dyn Fn() -> Result<Vec<RuleGroup>, String>,
    pub group_eval_order: &'a [String],
}

/// Runs `tg`; returns the failures (empty: passed).
pub fn run_group(tg: &TestGroup, fs: &FileSettings<'_>) -> Vec<String> {
    match run_inner(tg, fs) {
        Ok(failures) => failures,
        Err(e) => vec![e],
    }
}

fn duration_ms(what: &str, s: Option<&Scalar>) -> Result<i64, String> {
    match s {
        None => Ok(0),
        Some(Scalar(t)) => PromDuration::parse(t.trim())
            .map(|d| d.as_millis())
            .map_err(|e| format!("{what} {t:?}: {e} (write a duration such as 5m or 1h30m)")),
    }
}

fn start_ms(s: Option<&Scalar>) -> Result<i64, String> {
    let Some(Scalar(s)) = s else { return Ok(0) };
    crate::deploys::parse_time(&serde_json::Value::String(s.clone())).map_err(|e| format!("start_timestamp: {e}"))
}

fn fmt_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    PromDuration::parse(&format!("{ms}ms")).map(|d| d.to_string()).unwrap_or_else(|_| format!("{ms}ms"))
}

fn run_inner(tg: &TestGroup, fs: &FileSettings<'_>) -> Result<Vec<String>, String> {
    let mint = start_ms(tg.start_timestamp.as_ref())?;
    let interval = match &tg.interval {
        Some(d) if d.as_millis() > 0 => d.as_millis(),
        _ => fs.eval_interval_ms,
    };
    let step = fs.eval_interval_ms.max(1);
    let store = Store::new(i64::MAX / 4);
    let mut loader = Loader::default();
    for s in &tg.input_series {
        let labels = parse_metric(&s.series).map_err(|e| format!("input_series: {e}"))?;
        let values = promql::parse_series(&s.values.0).map_err(|e| {
            format!(
                "input_series {:?}: {e} (values use `1 2 3`, `a+bxN`, `_`, `stale`, `{{{{schema:0 count:1 buckets:[1]}}}}`)",
                s.series
            )
        })?;
        loader.add(labels, values, mint, interval);
    }
    loader.seal();
    let mut groups = order_groups((fs.load_rules)()?, fs.group_eval_order)?;
    let ctx = context(tg, mint)?;

    // Alert tests by eval time; the run lasts until the last eval time.
    let mut alert_times: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    let mut maxt = 0;
    for (i, at) in tg.alert_rule_test.iter().enumerate() {
        let t = duration_ms("alert_rule_test eval_time", at.eval_time.as_ref())?;
        alert_times.entry(t).or_default().push(i);
        maxt = maxt.max(t);
    }
    let mut expr_times = Vec::new();
    for et in &tg.promql_expr_test {
        let t = duration_ms("promql_expr_test eval_time", et.eval_time.as_ref())?;
        expr_times.push(t);
        maxt = maxt.max(t);
    }
    let alert_names: HashSet<&str> = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .filter_map(|r| match r {
            Rule::Alert(a) => Some(a.name.as_str()),
            _ => None,
        })
        .collect();
    let mut failures = Vec::new();
    for at in &tg.alert_rule_test {
        if !alert_names.contains(at.alertname.as_str()) {
            failures.push(format!(
                "alertname {:?}: no alerting rule has this name in rule_files (a typo would make the test pass vacuously)",
                at.alertname
            ));
        }
    }
    let mut pending_alert_times = alert_times.iter().peekable();
    let mut alerts_series: HashSet<Labels> = HashSet::new();
    let mut ts = 0;
    while ts <= maxt {
        let now = mint + ts;
        loader.load_until(&store, now);
        for g in groups.iter_mut() {
            let out = g.eval(&store, now, &ctx);
            let errs: Vec<String> = g
                .rules
                .iter()
                .zip(out.errors.iter())
                .filter_map(|(r, e)| e.as_ref().map(|e| format!("rule {:?}, time {}: {e}", r.name(), fmt_ms(ts))))
                .collect();
            if !errs.is_empty() {
                failures.extend(errs);
                return Ok(failures);
            }
        }
        write_alerts_series(&groups, &store, now, &mut alerts_series);
        while let Some((&t, idxs)) = pending_alert_times.peek() {
            if !(ts <= t && t < ts + step) {
                break;
            }
            for &i in idxs.iter() {
                let at = &tg.alert_rule_test[i];
                let mut got = firing(&groups, &at.alertname);
                // The `explanation` annotation is written by the rule kind,
                // not by the rule's author: compare it only where the test
                // names it, so a test reads like promtool's.
                let names_explanation =
                    at.exp_alerts.iter().any(|a| a.exp_annotations.contains_key(crate::alerts::EXPLANATION));
                if !names_explanation {
                    for row in &mut got {
                        row.annotations.remove(crate::alerts::EXPLANATION);
                    }
                }
                let mut exp: Vec<AlertRow> = at
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut labels = a.exp_labels.clone();
                        labels.insert("alertname".into(), at.alertname.clone());
                        AlertRow { labels, annotations: a.exp_annotations.clone() }
                    })
                    .collect();
                exp.sort();
                if exp != got {
                    failures.push(format!(
                        "alertname {:?}, time {}: firing alerts differ\n{}",
                        at.alertname,
                        fmt_ms(t),
                        diff::alerts(&exp, &got)
                    ));
                }
            }
            pending_alert_times.next();
        }
        ts += step;
    }
    for (et, &t) in tg.promql_expr_test.iter().zip(expr_times.iter()) {
        if let Err(e) = check_expr(&store, et, mint + t, &ctx, fs.fuzzy) {
            failures.push(format!("expr {:?}, time {}: {e}", et.expr.0, fmt_ms(t)));
        }
    }
    Ok(failures)
}

fn check_expr(store: &Store, et: &super::spec::ExprTest, t: i64, ctx: &EvalContext, fuzzy: bool) -> Result<(), String> {
    let expr = promql::parse(&et.expr.0).map_err(|e| format!("parse error: {}", e.to_string().trim()))?;
    promql::check_supported(&expr).map_err(|e| e.to_string())?;
    let got = match promql::eval_instant(store, &expr, t, &ctx.options).map_err(|e| e.to_string())? {
        Value::Vector(v) => v
            .into_iter()
            .map(|s| SampleRow { labels: s.labels, value: s.v, histogram: s.h.map(|h| h.to_string()) })
            .collect(),
        Value::Scalar(v) => vec![SampleRow { labels: Labels::new(), value: v, histogram: None }],
        _ => return Err("the expression must give an instant vector or a scalar".into()),
    };
    let mut exp = Vec::new();
    for s in &et.exp_samples {
        let labels = parse_metric(&s.labels).map_err(|e| format!("exp_samples labels: {e}"))?;
        // Printed back in the test notation, so that two spellings of one
        // histogram (key order, explicit zeros) compare equal.
        let histogram = match &s.histogram {
            Some(h) => Some(native_histogram::parse_histogram(h).map_err(|e| format!("exp_samples: {e}"))?.to_string()),
            None => None,
        };
        exp.push(SampleRow { labels, value: s.value.unwrap_or(0.0), histogram });
    }
    diff::samples(exp, got, fuzzy)
}

/// Orders groups by `group_eval_order`: the listed groups first, in that
/// order, then the others in file order.
fn order_groups(groups: Vec<RuleGroup>, order: &[String]) -> Result<Vec<RuleGroup>, String> {
    let names: HashSet<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    if let Some(missing) = order.iter().find(|n| !names.contains(n.as_str())) {
        return Err(format!("group_eval_order names group {missing:?}, which no rule file defines"));
    }
    let pos: HashMap<&str, usize> = order.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let mut keyed: Vec<(usize, RuleGroup)> =
        groups.into_iter().map(|g| (pos.get(g.name.as_str()).copied().unwrap_or(usize::MAX), g)).collect();
    keyed.sort_by_key(|(k, _)| *k);
    Ok(keyed.into_iter().map(|(_, g)| g).collect())
}

/// External labels/URL and the deploy-marker hooks of a test group.
fn context(tg: &TestGroup, mint: i64) -> Result<EvalContext, String> {
    let mut ctx = EvalContext {
        external_labels: Labels::from_pairs(tg.external_labels.clone()),
        external_url: tg.external_url.clone(),
        ..Default::default()
    };
    if tg.input_markers.is_empty() {
        return Ok(ctx);
    }
    let mut markers = Vec::new();
    for (i, m) in tg.input_markers.iter().enumerate() {
        let mut m = m.clone();
        // `at: 10m` means ten minutes after the test's start.
        if let Some(serde_json::Value::String(s)) = m.get("at") {
            if let Ok(d) = PromDuration::parse(s.trim()) {
                let secs = (mint + d.as_millis()) as f64 / 1000.0;
                m["at"] = serde_json::json!(secs);
            }
        }
        let marker = crate::deploys::Marker::from_json(&m, Some(mint))
            .map_err(|e| format!("input_markers[{i}]: {e} (markers take the fields of POST /api/v1/deploys)"))?;
        markers.push(marker);
    }
    let markers = Arc::new(markers);
    ctx.changes = Some(crate::rules::ChangesHook::from_markers(markers.clone()));
    ctx.restarts = Some(crate::rules::RestartsHook::from_markers(markers));
    Ok(ctx)
}

/// Firing alerts of every alerting rule named `name`, sorted.
fn firing(groups: &[RuleGroup], name: &str) -> Vec<AlertRow> {
    let mut out = Vec::new();
    for g in groups {
        for r in &g.rules {
            let Rule::Alert(a) = r else { continue };
            if a.name != name {
                continue;
            }
            for al in a.alerts() {
                if al.state == AlertState::Firing {
                    out.push(AlertRow {
                        labels: al.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                        annotations: al.annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    });
                }
            }
        }
    }
    out.sort();
    out
}

/// Writes `ALERTS{alertname, alertstate, ...} 1` for pending and firing
/// alerts, and a stale marker for those gone since the last evaluation.
fn write_alerts_series(groups: &[RuleGroup], store: &Store, t: i64, prev: &mut HashSet<Labels>) {
    let mut now = HashSet::new();
    for g in groups {
        for r in &g.rules {
            let Rule::Alert(a) = r else { continue };
            for al in a.alerts() {
                let state = match al.state {
                    AlertState::Pending => "pending",
                    AlertState::Firing => "firing",
                    AlertState::Inactive => continue,
                };
                let mut l = al.labels.clone();
                l.set("__name__".into(), "ALERTS".into());
                l.set("alertstate".into(), state.into());
                store.append(&l, t, 1.0);
                now.insert(l);
            }
        }
    }
    for gone in prev.difference(&now) {
        store.append(gone, t, stale_nan());
    }
    *prev = now;
}
