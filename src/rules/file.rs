//! Rule files: the Prometheus format, read with positions, validated into
//! [`RuleGroup`]s ready to evaluate.
//!
//! Every problem found is reported as `file:line:col: message` and loading
//! goes on to find the next one, so `forewarn check` lists them all at once.
//! A group is only built when its file is entirely clean: the daemon swaps
//! rule sets whole, never half.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::kinds::{self, KindYaml};
use super::{AlertRule, AlertingRule, RecordingRule, Rule, RuleGroup};
use crate::alerts::NamedTemplate;
use crate::duration::PromDuration;
use crate::yaml::{self, Located};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFileYaml {
    #[serde(default)]
    groups: Vec<Spanned<GroupYaml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupYaml {
    name: Spanned<String>,
    interval: Option<Spanned<PromDuration>>,
    #[serde(default)]
    limit: usize,
    query_offset: Option<PromDuration>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// `rules:` left empty (null) is an empty group, as in Prometheus.
    #[serde(default)]
    rules: Option<Vec<Spanned<RuleYaml>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleYaml {
    record: Option<Spanned<String>>,
    alert: Option<Spanned<String>>,
    expr: Option<Spanned<ExprText>>,
    #[serde(rename = "for")]
    for_: Option<Spanned<PromDuration>>,
    keep_firing_for: Option<Spanned<PromDuration>>,
    #[serde(default)]
    labels: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    annotations: BTreeMap<String, Spanned<String>>,
    trend: Option<Spanned<kinds::spec::TrendYaml>>,
    ratio: Option<Spanned<kinds::spec::RatioYaml>>,
    anomaly: Option<Spanned<kinds::spec::AnomalyYaml>>,
    threshold: Option<Spanned<kinds::spec::ThresholdYaml>>,
}

/// `expr:` may be a YAML number or boolean (`expr: 1`), which is valid PromQL.
#[derive(Debug)]
struct ExprText(String);

impl<'de> Deserialize<'de> for ExprText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ExprText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a PromQL expression")
            }
            fn visit_str<E>(self, v: &str) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Loads every rule file matched by the glob patterns (Prometheus's
/// `rule_files`). A pattern that matches nothing is not an error (as in
/// Prometheus), but a path without glob characters that does not exist is.
pub fn load_patterns(patterns: &[String], default_interval: PromDuration) -> Result<Vec<RuleGroup>, Vec<Located>> {
    load_patterns_with(patterns, default_interval, load_file)
}

/// [`load_patterns`] with another loader per file (the rule tests' lenient
/// one drops unknown fields); globbing and error collection stay shared.
pub fn load_patterns_with(
    patterns: &[String],
    default_interval: PromDuration,
    load_file: impl Fn(&Path, PromDuration) -> Result<Vec<RuleGroup>, Vec<Located>>,
) -> Result<Vec<RuleGroup>, Vec<Located>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for p in patterns {
        let paths: Vec<std::path::PathBuf> = match glob::glob(p) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(e) => {
                errors.push(Located::new(p, 0, 0, format!("invalid rule_files pattern: {e}")));
                continue;
            }
        };
        if paths.is_empty() && !p.contains(['*', '?', '[']) {
            errors.push(Located::new(p, 0, 0, "rule file not found"));
        }
        let mut sorted = paths;
        sorted.sort();
        for path in sorted {
            match load_file(&path, default_interval) {
                Ok(g) => groups.extend(g),
                Err(e) => errors.extend(e),
            }
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// Loads one rule file.
pub fn load_file(path: &Path, default_interval: PromDuration) -> Result<Vec<RuleGroup>, Vec<Located>> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![Located::new(&name, 0, 0, format!("cannot read: {e}"))])?;
    parse_rules(&name, &text, default_interval)
}

/// Parses and validates rule file text.
pub fn parse_rules(file: &str, text: &str, default_interval: PromDuration) -> Result<Vec<RuleGroup>, Vec<Located>> {
    let parsed: RuleFileYaml = yaml::parse(file, text).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut names = HashSet::new();
    for g in parsed.groups {
        let g = g.value;
        if g.name.value.trim().is_empty() {
            errors.push(Located::at(file, &g.name, "group name must not be empty"));
        } else if !names.insert(g.name.value.clone()) {
            errors.push(Located::at(
                file,
                &g.name,
                format!("groupname: {:?} is repeated in the same file", g.name.value),
            ));
        }
        let interval = match &g.interval {
            Some(i) if i.value.is_zero() => {
                errors.push(Located::at(file, i, "interval must be greater than 0s"));
                default_interval
            }
            Some(i) => i.value,
            None => default_interval,
        };
        // A group without rules is valid in Prometheus (it evaluates nothing).
        let mut rules = Vec::new();
        for r in g.rules.unwrap_or_default() {
            match build_rule(file, r, &g.labels) {
                Ok(rule) => rules.push(rule),
                Err(e) => errors.extend(e),
            }
        }
        groups.push(RuleGroup {
            name: g.name.value,
            file: file.to_string(),
            interval,
            limit: g.limit,
            query_offset: g.query_offset,
            rules,
        });
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

fn build_rule(
    file: &str,
    mut r: Spanned<RuleYaml>,
    group_labels: &BTreeMap<String, String>,
) -> Result<Rule, Vec<Located>> {
    let at_rule = |m: String| Located::new(file, r.referenced.line(), r.referenced.column(), m);
    let mut errs = Vec::new();
    // A rule kind (trend, ratio, anomaly, threshold) stands instead of `expr`.
    let mut kind_yaml: Vec<(u64, u64, KindYaml)> = Vec::new();
    if let Some(k) = r.value.trend.take() {
        kind_yaml.push((k.referenced.line(), k.referenced.column(), KindYaml::Trend(k.value)));
    }
    if let Some(k) = r.value.ratio.take() {
        kind_yaml.push((k.referenced.line(), k.referenced.column(), KindYaml::Ratio(k.value)));
    }
    if let Some(k) = r.value.anomaly.take() {
        kind_yaml.push((k.referenced.line(), k.referenced.column(), KindYaml::Anomaly(k.value)));
    }
    if let Some(k) = r.value.threshold.take() {
        kind_yaml.push((k.referenced.line(), k.referenced.column(), KindYaml::Threshold(k.value)));
    }
    let r_val = &r.value;
    let mut kind = None;
    if kind_yaml.len() > 1 || (!kind_yaml.is_empty() && r_val.expr.is_some()) {
        errs.push(at_rule("a rule has exactly one of expr, trend, ratio, anomaly, threshold".into()));
    } else if let Some((line, col, k)) = kind_yaml.pop() {
        if r_val.record.is_some() {
            errs.push(Located::new(
                file,
                line,
                col,
                "rule kinds (trend, ratio, anomaly, threshold) are for alerting rules; a recording rule needs `expr`",
            ));
        }
        match kinds::build_kind(k) {
            Ok(built) => kind = Some(built),
            Err(es) => errs.extend(es.into_iter().map(|m| Located::new(file, line, col, m))),
        }
    }
    let kind_expr = kind.as_ref().map(|(_, text, e)| (text.clone(), e.clone()));
    let expr = match &r_val.expr {
        None if kind_expr.is_some() || !errs.is_empty() => kind_expr,
        None => {
            errs.push(at_rule("field 'expr' must be set in rule".into()));
            None
        }
        Some(e) if e.value.0.trim().is_empty() => {
            errs.push(Located::at(file, e, "field 'expr' must be set in rule"));
            None
        }
        Some(e) => match crate::promql::parse(&e.value.0) {
            Err(msg) => {
                errs.push(Located::at(file, e, format!("parse error in expr: {}", one_line(&msg.to_string()))));
                None
            }
            Ok(ast) => match crate::promql::check_supported(&ast) {
                Err(u) => {
                    errs.push(Located::at(file, e, u.to_string()));
                    None
                }
                Ok(()) => Some((e.value.0.clone(), ast)),
            },
        },
    };
    let mut labels = group_labels.clone();
    for (k, v) in &r_val.labels {
        if !valid_label_name(k) {
            errs.push(Located::at(file, v, format!("invalid label name: {k}")));
        }
        labels.insert(k.clone(), v.value.clone());
    }
    match (&r_val.record, &r_val.alert) {
        (Some(_), Some(a)) => errs.push(Located::at(file, a, "only one of 'record' and 'alert' must be set")),
        (None, None) => errs.push(at_rule("one of 'record' or 'alert' must be set".into())),
        (Some(rec), None) => {
            if rec.value.contains('{') || rec.value.contains('}') {
                errs.push(Located::at(
                    file,
                    rec,
                    format!("braces present in the recording rule name; should it be in expr?: {}", rec.value),
                ));
            } else if !valid_metric_name(&rec.value) {
                errs.push(Located::at(file, rec, format!("invalid recording rule name: {}", rec.value)));
            }
            if let Some(f) = &r_val.for_ {
                errs.push(Located::at(file, f, "invalid field 'for' in recording rule"));
            }
            if let Some(f) = &r_val.keep_firing_for {
                errs.push(Located::at(file, f, "invalid field 'keep_firing_for' in recording rule"));
            }
            if let Some((_, a)) = r_val.annotations.iter().next() {
                errs.push(Located::at(file, a, "invalid field 'annotations' in recording rule"));
            }
            if errs.is_empty() {
                if let Some((text, ast)) = expr {
                    return Ok(Rule::Record(RecordingRule {
                        name: rec.value.clone(),
                        expr_text: text,
                        expr: ast,
                        labels: crate::labels::Labels::from_pairs(labels),
                        line: r.referenced.line(),
                    }));
                }
            }
        }
        (None, Some(alert)) => {
            if alert.value.trim().is_empty() {
                errs.push(Located::at(file, alert, "alert name must not be empty"));
            }
            let mut annotations = Vec::new();
            for (k, v) in &r_val.annotations {
                if !valid_label_name(k) {
                    errs.push(Located::at(file, v, format!("invalid annotation name: {k}")));
                    continue;
                }
                match NamedTemplate::new(k, &v.value) {
                    Ok(t) => annotations.push(t),
                    Err(e) => errs.push(Located::at(file, v, format!("annotation {k}: {e}"))),
                }
            }
            let mut label_templates = Vec::new();
            for (k, v) in &labels {
                match NamedTemplate::new(k, v) {
                    Ok(t) => label_templates.push(t),
                    Err(e) => errs.push(at_rule(format!("label {k}: {e}"))),
                }
            }
            if errs.is_empty() {
                if let Some((text, ast)) = expr {
                    let alerting = AlertingRule::new(
                        alert.value.clone(),
                        text,
                        ast,
                        r_val.for_.as_ref().map(|f| f.value).unwrap_or_default(),
                        r_val.keep_firing_for.as_ref().map(|f| f.value).unwrap_or_default(),
                        label_templates,
                        annotations,
                        r.referenced.line(),
                    );
                    return Ok(Rule::Alert(AlertRule { alerting, kind: kind.map(|(k, _, _)| k) }));
                }
            }
        }
    }
    Err(errs)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Label names: `[a-zA-Z_][a-zA-Z0-9_]*` (the classic set; it is what
/// Alertmanager and most receivers accept).
pub fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

pub fn valid_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}
