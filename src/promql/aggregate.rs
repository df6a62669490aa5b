//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, ...) with
//! `by`/`without` grouping.
//!
//! Groups keep the order in which their first member appeared, which is the
//! order Prometheus returns them in; float sums use compensated (Kahan)
//! summation as Prometheus does, so results agree to the last digit.

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use super::eval::{keep_mark, strip_name, Ctx, Val};
use super::{EvalError, VectorSample};
use crate::labels::Labels;
use crate::native_histogram::{self, FloatHistogram};

/// Operators this module implements, by their PromQL spelling.
pub(crate) const SUPPORTED: &[&str] =
    &["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values"];

pub(crate) fn eval(ctx: &Ctx, a: &AggregateExpr, t: i64) -> Result<Val, EvalError> {
    let op = a.op.to_string();
    let input = ctx.eval_vector(&a.expr, t)?;
    let grouping = Grouping::of(&a.modifier);
    let param = a.param.as_deref();
    // Native histograms: `sum` and `avg` add them, `count` and `group`
    // count them, every other operator leaves them out (as Prometheus does).
    let input = match op.as_str() {
        "sum" | "avg" if input.iter().any(|s| s.h.is_some()) => return Ok(Val::Vector(sum_avg(input, &grouping, &op))),
        "count" | "group" | "count_values" => input,
        _ => super::functions::floats(input),
    };
    let out = match op.as_str() {
        "topk" | "bottomk" => {
            let k = ctx.eval_scalar(required(param, &op)?, t)?;
            top_bottom(input, &grouping, k, op == "topk")?
        }
        "count_values" => {
            let label = match ctx.eval(required(param, &op)?, t)? {
                Val::String(s) => s,
                other => {
                    return Err(EvalError::Type(format!(
                        "count_values label must be a string, got {}",
                        other.type_name()
                    )))
                }
            };
            count_values(input, &grouping, &label)?
        }
        "quantile" => {
            let q = ctx.eval_scalar(required(param, &op)?, t)?;
            let groups = group(input, &grouping);
            groups
                .into_iter()
                .map(|(labels, members)| {
                    let values: Vec<f64> = members.iter().map(|s| s.v).collect();
                    VectorSample { labels, v: quantile(q, values), h: None }
                })
                .collect()
        }
        _ => {
            let f = simple(&op).ok_or_else(|| EvalError::Unsupported(format!("aggregation {op}")))?;
            let mut values = Vec::new();
            group(input, &grouping)
                .into_iter()
                .map(|(labels, members)| {
                    values.clear();
                    values.extend(members.iter().map(|s| s.v));
                    VectorSample { labels, v: f(&values), h: None }
                })
                .collect()
        }
    };
    Ok(Val::Vector(out))
}

/// `sum`/`avg` when some members are native histograms: a group of
/// histograms gives their sum or mean, a group of floats as usual, a group
/// mixing both (or histograms that cannot be added) gives nothing.
fn sum_avg(input: Vec<VectorSample>, grouping: &Grouping, op: &str) -> Vec<VectorSample> {
    let f = simple(op).unwrap_or(|m| kahan_sum(m.iter().copied()));
    group(input, grouping)
        .into_iter()
        .filter_map(|(labels, members)| {
            if members.iter().all(|s| s.h.is_none()) {
                let values: Vec<f64> = members.iter().map(|s| s.v).collect();
                return Some(VectorSample { labels, v: f(&values), h: None });
            }
            // The `sum` fields are summed with compensation, as floats are,
            // so that huge values that cancel out leave the small ones.
            let sums: Vec<f64> = members.iter().filter_map(|s| s.h.as_ref().map(|h| h.sum)).collect();
            let exact_sum = if op == "avg" { mean(sums.iter().copied()) } else { kahan_sum(sums.iter().copied()) };
            let hs: Vec<&FloatHistogram> = members.iter().filter_map(|s| s.h.as_deref()).collect();
            if hs.len() != members.len() {
                return None;
            }
            let mut total = if op == "avg" { native_histogram::mean_all(hs) } else { native_histogram::sum_all(hs) }?;
            if exact_sum.is_finite() || !total.sum.is_finite() {
                total.sum = exact_sum;
            }
            Some(VectorSample { labels, v: 0.0, h: Some(Box::new(total)) })
        })
        .collect()
}

/// The aggregations that reduce a group's values to one number with no
/// parameter; the range engine applies the same functions per step.
pub(crate) fn simple(op: &str) -> Option<fn(&[f64]) -> f64> {
    Some(match op {
        "sum" => |m| kahan_sum(m.iter().copied()),
        "avg" => |m| mean(m.iter().copied()),
        "min" => |m| extreme(m.iter().copied(), |cur, new| new < cur),
        "max" => |m| extreme(m.iter().copied(), |cur, new| new > cur),
        "count" => |m| m.len() as f64,
        "group" => |_| 1.0,
        "stddev" => |m| variance(m.iter().copied()).sqrt(),
        "stdvar" => |m| variance(m.iter().copied()),
        _ => return None,
    })
}

fn required<'a>(param: Option<&'a Expr>, op: &str) -> Result<&'a Expr, EvalError> {
    param.ok_or_else(|| EvalError::InvalidArgument(format!("{op} needs a parameter")))
}

/// `by (...)` keeps only the listed labels, `without (...)` drops them and the
/// metric name; no clause aggregates everything into one group.
pub(crate) struct Grouping {
    by: bool,
    names: Vec<String>,
}

impl Grouping {
    pub fn of(m: &Option<LabelModifier>) -> Grouping {
        match m {
            Some(LabelModifier::Include(l)) => Grouping { by: true, names: l.labels.clone() },
            Some(LabelModifier::Exclude(l)) => Grouping { by: false, names: l.labels.clone() },
            None => Grouping { by: true, names: Vec::new() },
        }
    }

    pub fn key(&self, l: &Labels) -> Labels {
        if self.by {
            l.keep_only(&self.names)
        } else {
            strip_name(&l.drop_names(&self.names))
        }
    }
}

/// Splits a vector into groups, in order of first appearance.
fn group(input: Vec<VectorSample>, g: &Grouping) -> Vec<(Labels, Vec<VectorSample>)> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<VectorSample>)> = Vec::new();
    for s in input {
        let key = g.key(&s.labels);
        let i = match index.get(&key) {
            Some(&i) => i,
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, Vec::new()));
                groups.len() - 1
            }
        };
        // `by (__name__)` keeps a name that is due for removal, and the
        // group's name goes if any member's would have.
        keep_mark(&s.labels, &mut groups[i].0);
        groups[i].1.push(s);
    }
    groups
}

/// Neumaier's variant of Kahan summation.
pub(crate) fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for v in values {
        (sum, c) = kahan_inc(v, sum, c);
    }
    // An infinite sum would turn the compensation into NaN; Prometheus
    // discards it in that case.
    if sum.is_infinite() {
        sum
    } else {
        sum + c
    }
}

pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    if t.is_infinite() {
        (t, 0.0)
    } else if sum.abs() >= inc.abs() {
        (t, c + ((sum - t) + inc))
    } else {
        (t, c + ((inc - t) + sum))
    }
}

/// The arithmetic mean: a compensated sum divided by the count while the sum
/// stays finite, switching to an incremental mean if it would overflow.
pub(crate) fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.collect();
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len() as f64;
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    let mut overflowed = false;
    for &v in &values {
        let (s, nc) = kahan_inc(v, sum, c);
        if s.is_infinite() && v.is_finite() && sum.is_finite() {
            overflowed = true;
            break;
        }
        (sum, c) = (s, nc);
    }
    if !overflowed {
        return if sum.is_infinite() { sum / n } else { (sum + c) / n };
    }
    let mut m = 0.0f64;
    for (i, &v) in values.iter().enumerate() {
        m += v / (i as f64 + 1.0) - m / (i as f64 + 1.0);
    }
    m
}

/// Min or max: `better(current, new)` says whether `new` replaces the current
/// value. NaN only wins when nothing else is there.
pub(crate) fn extreme(values: impl Iterator<Item = f64>, better: fn(f64, f64) -> bool) -> f64 {
    let mut cur = f64::NAN;
    for v in values {
        if cur.is_nan() || better(cur, v) {
            cur = v;
        }
    }
    cur
}

/// Population variance by Welford's online method.
pub(crate) fn variance(values: impl Iterator<Item = f64>) -> f64 {
    let (mut n, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
    for v in values {
        n += 1.0;
        let delta = v - mean;
        mean += delta / n;
        m2 += delta * (v - mean);
    }
    if n == 0.0 {
        f64::NAN
    } else {
        m2 / n
    }
}

/// The φ-quantile by linear interpolation between the closest ranks.
pub(crate) fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaNs sort first, as in Prometheus.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `topk`/`bottomk`: the k largest (smallest) elements per group, with their
/// original labels, best first. NaN ranks below every number either way.
fn top_bottom(input: Vec<VectorSample>, g: &Grouping, k: f64, top: bool) -> Result<Vec<VectorSample>, EvalError> {
    if k.is_nan() {
        return Err(EvalError::InvalidArgument("Parameter value is NaN".into()));
    }
    if k < 1.0 {
        return Ok(Vec::new());
    }
    let k = if k >= usize::MAX as f64 { usize::MAX } else { k as usize };
    let better = |a: f64, b: f64| -> bool {
        // Whether `a` should rank before `b`.
        if b.is_nan() {
            !a.is_nan()
        } else if a.is_nan() {
            false
        } else if top {
            a > b
        } else {
            a < b
        }
    };
    let mut out = Vec::new();
    for (_, mut members) in group(input, g) {
        // A stable sort keeps earlier series ahead on ties, as Prometheus's
        // heap does when it refuses to replace an equal element.
        members.sort_by(|a, b| {
            if better(a.v, b.v) {
                std::cmp::Ordering::Less
            } else if better(b.v, a.v) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        members.truncate(k);
        out.extend(members);
    }
    Ok(out)
}

fn count_values(input: Vec<VectorSample>, g: &Grouping, label: &str) -> Result<Vec<VectorSample>, EvalError> {
    if !valid_label_name(label) {
        return Err(EvalError::InvalidArgument(format!("invalid label name {label:?}")));
    }
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<VectorSample> = Vec::new();
    for s in input {
        let mut key = g.key(&s.labels);
        let value = match &s.h {
            Some(h) => h.go_string(),
            None => format_value(s.v),
        };
        key.set(label.to_string(), value);
        match index.get(&key) {
            Some(&i) => out[i].v += 1.0,
            None => {
                index.insert(key.clone(), out.len());
                out.push(VectorSample { labels: key, v: 1.0, h: None });
            }
        }
    }
    Ok(out)
}

/// Formats a float the way Go's `strconv.FormatFloat(v, 'f', -1, 64)` does.
pub(crate) fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

pub(crate) fn valid_label_name(s: &str) -> bool {
    // Prometheus 3 accepts any UTF-8 label name; only the empty one is invalid.
    !s.is_empty()
}
