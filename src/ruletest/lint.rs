//! Lint for rule files (`forewarn check`): rules that load fine but are
//! probably mistakes. Each finding names `file:line:col`; only what can be
//! known for sure from the file is flagged.
//!
//! - the same rule (name, labels and expression) twice in a file;
//! - `rate()`, `increase()` or `irate()` of a metric whose name does not
//!   end in `_total`, `_count`, `_sum` or `_bucket` (counters do; a gauge
//!   needs `deriv()` or `delta()`);
//! - `for` shorter than two evaluation intervals (one missed or slow
//!   evaluation resets it; use 0 to fire at once, or a longer `for`);
//! - an annotation reading `$labels.x` when the expression's result can
//!   never carry `x` (e.g. `sum by (job)` and `$labels.instance`);
//! - a trend's `over` longer than storage retention (the window can
//!   never fill).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use promql_parser::parser::{Expr, LabelModifier, VectorMatchCardinality};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::spec::Scalar;
use crate::alerts::template::Template;
use crate::duration::PromDuration;

/// One lint finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub file: String,
    pub line: u64,
    pub col: u64,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: lint: {}", self.file, self.line, self.col, self.message)
    }
}

/// What the rules will run with.
#[derive(Clone, Debug)]
pub struct LintOptions {
    pub default_interval: PromDuration,
    pub retention: PromDuration,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            default_interval: PromDuration::from_secs(60),
            retention: crate::config::StorageConfig::default().retention,
        }
    }
}

// A lenient view of a rule file: `parse_rules` has validated it already.
#[derive(Deserialize)]
struct FileView {
    #[serde(default)]
    groups: Vec<GroupView>,
}

#[derive(Deserialize)]
struct GroupView {
    interval: Option<PromDuration>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<Spanned<RuleView>>,
}

#[derive(Deserialize)]
struct RuleView {
    record: Option<String>,
    alert: Option<String>,
    expr: Option<Spanned<Scalar>>,
    #[serde(rename = "for")]
    for_: Option<Spanned<PromDuration>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, Spanned<String>>,
    trend: Option<TrendView>,
}

#[derive(Deserialize)]
struct TrendView {
    over: Option<Spanned<PromDuration>>,
}

const COUNTER_SUFFIXES: [&str; 4] = ["_total", "_count", "_sum", "_bucket"];

/// Lints a rule file's text. Text that does not parse gives no findings
/// (loading reports those errors).
pub fn lint_rules(file: &str, text: &str, opts: &LintOptions) -> Vec<Finding> {
    let Ok(view) = crate::yaml::parse::<FileView>(file, text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let at = |line: u64, col: u64, message: String| Finding { file: file.to_string(), line, col, message };
    let mut seen: HashMap<(String, BTreeMap<String, String>, String), u64> = HashMap::new();
    for g in &view.groups {
        let interval = g.interval.unwrap_or(opts.default_interval).as_millis();
        for r in &g.rules {
            let (line, col) = (r.referenced.line(), r.referenced.column());
            let rule = &r.value;
            let name = rule.alert.clone().or_else(|| rule.record.clone()).unwrap_or_default();
            if let Some(e) = &rule.expr {
                let key = (name.clone(), rule.labels.clone(), e.value.0.trim().to_string());
                if let Some(&first) = seen.get(&key) {
                    out.push(at(
                        line,
                        col,
                        format!("duplicate rule {name:?}: same name, labels and expr as line {first}; delete one"),
                    ));
                } else {
                    seen.insert(key, line);
                }
            }
            if let Some(f) = &rule.for_ {
                let ms = f.value.as_millis();
                if ms > 0 && ms < 2 * interval {
                    out.push(at(
                        f.referenced.line(),
                        f.referenced.column(),
                        format!(
                            "for: {} is shorter than two evaluation intervals ({}); one late evaluation resets it, use 0 or at least {}",
                            f.value,
                            PromDuration::parse(&format!("{}ms", 2 * interval)).map(|d| d.to_string()).unwrap_or_default(),
                            PromDuration::parse(&format!("{}ms", 2 * interval)).map(|d| d.to_string()).unwrap_or_default(),
                        ),
                    ));
                }
            }
            if let Some(over) = rule.trend.as_ref().and_then(|t| t.over.as_ref()) {
                if over.value.as_millis() > opts.retention.as_millis() {
                    out.push(at(
                        over.referenced.line(),
                        over.referenced.column(),
                        format!(
                            "trend over: {} is longer than storage retention {}; the window can never fill (raise storage.retention or shorten over)",
                            over.value, opts.retention
                        ),
                    ));
                }
            }
            let Some(e) = &rule.expr else { continue };
            let Ok(ast) = crate::promql::parse(&e.value.0) else { continue };
            let (eline, ecol) = (e.referenced.line(), e.referenced.column());
            let mut counters = Vec::new();
            non_counter_rates(&ast, &mut counters);
            for (func, metric) in counters {
                out.push(at(
                    eline,
                    ecol,
                    format!("{func}() of {metric}, which is not a counter by name (_total, _count, _sum, _bucket); for a gauge use deriv() or delta()"),
                ));
            }
            let Some(produced) = output_labels(&ast) else { continue };
            for (aname, a) in &rule.annotations {
                let Ok(t) = Template::parse(aname, &a.value) else { continue };
                for l in t.referenced_label_names() {
                    let known = produced.contains(&l)
                        || rule.labels.contains_key(&l)
                        || g.labels.contains_key(&l)
                        || l == "alertname";
                    if !known {
                        let have: Vec<&str> = produced.iter().map(String::as_str).collect();
                        out.push(at(
                            a.referenced.line(),
                            a.referenced.column(),
                            format!(
                                "annotation {aname} reads label {l:?}, which the expression never produces (its result has only {{{}}}); add it to by(...) or drop it",
                                have.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// `rate`/`increase`/`irate` applied directly to a named metric that is not
/// a counter by its name: (function, metric). Inside a `histogram_*`
/// function the metric is a native histogram, whose name has no suffix.
fn non_counter_rates(e: &Expr, out: &mut Vec<(String, String)>) {
    walk_rates(e, false, out)
}

fn walk_rates(e: &Expr, native: bool, out: &mut Vec<(String, String)>) {
    match e {
        Expr::Call(c) => {
            if !native && ["rate", "increase", "irate"].contains(&c.func.name) {
                if let Some(Expr::MatrixSelector(ms)) = c.args.args.first().map(|a| a.as_ref()) {
                    if let Some(n) = &ms.vs.name {
                        if !COUNTER_SUFFIXES.iter().any(|s| n.ends_with(s)) {
                            out.push((c.func.name.to_string(), n.clone()));
                        }
                    }
                }
            }
            let native = native || c.func.name.starts_with("histogram_");
            c.args.args.iter().for_each(|a| walk_rates(a, native, out));
        }
        Expr::Paren(p) => walk_rates(&p.expr, native, out),
        Expr::Unary(u) => walk_rates(&u.expr, native, out),
        Expr::Subquery(s) => walk_rates(&s.expr, native, out),
        Expr::Aggregate(a) => walk_rates(&a.expr, native, out),
        Expr::Binary(b) => {
            walk_rates(&b.lhs, native, out);
            walk_rates(&b.rhs, native, out);
        }
        _ => {}
    }
}

fn is_number(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_) => true,
        Expr::Paren(p) => is_number(&p.expr),
        Expr::Unary(u) => is_number(&u.expr),
        _ => false,
    }
}

fn set(labels: &promql_parser::label::Labels) -> BTreeSet<String> {
    labels.labels.iter().map(|l| l.to_string()).collect()
}

/// Every label the expression's result can carry, when that is certain
/// (`None`: it depends on the data).
pub fn output_labels(e: &Expr) -> Option<BTreeSet<String>> {
    match e {
        Expr::NumberLiteral(_) => Some(BTreeSet::new()),
        Expr::Paren(p) => output_labels(&p.expr),
        Expr::Unary(u) => output_labels(&u.expr),
        Expr::Subquery(s) => output_labels(&s.expr),
        Expr::Aggregate(a) => match a.op.to_string().as_str() {
            "topk" | "bottomk" | "limitk" | "limit_ratio" => output_labels(&a.expr),
            "count_values" => None,
            _ => match &a.modifier {
                None => Some(BTreeSet::new()),
                Some(LabelModifier::Include(l)) => Some(set(l)),
                Some(LabelModifier::Exclude(_)) => None,
            },
        },
        Expr::Binary(b) => {
            if is_number(&b.lhs) && is_number(&b.rhs) {
                return Some(BTreeSet::new());
            }
            if is_number(&b.lhs) {
                return output_labels(&b.rhs);
            }
            if is_number(&b.rhs) {
                return output_labels(&b.lhs);
            }
            let (l, r) = (output_labels(&b.lhs), output_labels(&b.rhs));
            let op = b.op.to_string();
            let m = b.modifier.as_ref();
            if op == "or" {
                return Some(l?.union(&r?).cloned().collect());
            }
            if op == "and" || op == "unless" {
                return l;
            }
            let return_bool = m.is_some_and(|m| m.return_bool);
            let comparison = b.op.is_comparison_operator();
            let card = m.map(|m| &m.card);
            match card {
                Some(VectorMatchCardinality::ManyToOne(inc)) => Some(l?.union(&set(inc)).cloned().collect()),
                Some(VectorMatchCardinality::OneToMany(inc)) => Some(r?.union(&set(inc)).cloned().collect()),
                _ if comparison && !return_bool => l,
                _ => match m.and_then(|m| m.matching.as_ref()) {
                    Some(LabelModifier::Include(on)) => Some(set(on)),
                    Some(LabelModifier::Exclude(ign)) => Some(l?.difference(&set(ign)).cloned().collect()),
                    None => l,
                },
            }
        }
        Expr::Call(c) => {
            let args = &c.args.args;
            match c.func.name {
                "vector" | "time" | "scalar" | "pi" => Some(BTreeSet::new()),
                "histogram_quantile" => {
                    let mut s = output_labels(args.get(1)?)?;
                    s.remove("le");
                    Some(s)
                }
                "label_replace" | "label_join" => {
                    let mut s = output_labels(args.first()?)?;
                    match args.get(1).map(|a| a.as_ref()) {
                        Some(Expr::StringLiteral(dst)) => {
                            s.insert(dst.val.clone());
                            Some(s)
                        }
                        _ => None,
                    }
                }
                "abs" | "ceil" | "floor" | "round" | "exp" | "ln" | "log2" | "log10" | "sqrt" | "clamp"
                | "clamp_min" | "clamp_max" | "sgn" => output_labels(args.first()?),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Lints a rule file or, for a config file, every rule file it names (with
/// its storage retention and evaluation interval).
pub fn lint_path(path: &Path) -> Vec<Finding> {
    let name = path.display().to_string();
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    if text.lines().any(|l| l.starts_with("groups:")) {
        return lint_rules(&name, &text, &LintOptions::default());
    }
    let Ok(cfg) = crate::config::Config::parse(&name, &text, path.parent()) else { return Vec::new() };
    let opts = LintOptions { default_interval: cfg.global.evaluation_interval, retention: cfg.storage.retention };
    let mut out = Vec::new();
    for pattern in &cfg.rule_files {
        let Ok(paths) = glob::glob(pattern) else { continue };
        for p in paths.filter_map(Result::ok) {
            if let Ok(t) = std::fs::read_to_string(&p) {
                out.extend(lint_rules(&p.display().to_string(), &t, &opts));
            }
        }
    }
    out
}
