//! Function calls on instant vectors and scalars: math, clamping, rounding,
//! sorting, label rewriting, date parts, `absent`, `scalar`/`vector`/`time`.
//! Functions over range vectors live in `range_functions`, classic-histogram
//! quantiles in `histogram`.
//!
//! Functions that compute a new value drop `__name__` (the result is no longer
//! that metric); those that only reorder or relabel keep it, as in Prometheus.

use chrono::{DateTime, Datelike, Timelike};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{Call, Expr};
use regex::Regex;

use super::eval::{check_unique, drop_name, strip_name, Ctx, Val, DROP_MARK};
use super::{histogram, range_functions, EvalError, VectorSample};
use crate::labels::{Labels, METRIC_NAME};
use crate::native_histogram::{self, FloatHistogram};

/// Functions on instant vectors/scalars implemented here (range-vector ones
/// are listed in `range_functions::SUPPORTED`).
pub(crate) const SUPPORTED: &[&str] = &[
    "abs",
    "absent",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "ceil",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "exp",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_sum",
    "hour",
    "label_join",
    "label_replace",
    "ln",
    "log10",
    "log2",
    "minute",
    "month",
    "pi",
    "rad",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

pub(crate) fn eval(ctx: &Ctx, call: &Call, t: i64) -> Result<Val, EvalError> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|b| b.as_ref()).collect();
    if range_functions::SUPPORTED.contains(&name) {
        return range_functions::eval(ctx, name, &args, t);
    }
    let arg = |i: usize| -> Result<&Expr, EvalError> {
        args.get(i).copied().ok_or_else(|| EvalError::InvalidArgument(format!("{name}: missing argument {}", i + 1)))
    };
    if let Some(f) = elementwise(name) {
        let v = ctx.eval_vector(arg(0)?, t)?;
        return map_values(v, f);
    }
    match name {
        "time" => Ok(Val::Scalar(t as f64 / 1000.0)),
        "pi" => Ok(Val::Scalar(std::f64::consts::PI)),
        "vector" => {
            Ok(Val::Vector(vec![VectorSample { labels: Labels::new(), v: ctx.eval_scalar(arg(0)?, t)?, h: None }]))
        }
        "scalar" => {
            let v = floats(ctx.eval_vector(arg(0)?, t)?);
            Ok(Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }))
        }
        "absent" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            Ok(Val::Vector(if v.is_empty() {
                vec![VectorSample { labels: absent_labels(arg(0)?), v: 1.0, h: None }]
            } else {
                Vec::new()
            }))
        }
        "round" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            let to = match args.get(1) {
                Some(e) => ctx.eval_scalar(e, t)?,
                None => 1.0,
            };
            // Rounding half up via the inverse, exactly as Prometheus does,
            // so that e.g. round(x, 0.1) agrees to the last bit.
            let inv = 1.0 / to;
            map_values(v, |x| (x * inv + 0.5).floor() / inv)
        }
        "clamp" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            let (lo, hi) = (ctx.eval_scalar(arg(1)?, t)?, ctx.eval_scalar(arg(2)?, t)?);
            if hi < lo {
                return Ok(Val::Vector(Vec::new()));
            }
            map_values(v, |x| go_max(lo, go_min(hi, x)))
        }
        "clamp_min" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            let lo = ctx.eval_scalar(arg(1)?, t)?;
            map_values(v, |x| go_max(lo, x))
        }
        "clamp_max" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            let hi = ctx.eval_scalar(arg(1)?, t)?;
            map_values(v, |x| go_min(hi, x))
        }
        "timestamp" => {
            // For a plain selector, the timestamp of the sample found;
            // for anything computed, the evaluation time.
            let inner = unwrap_parens(arg(0)?);
            if let Expr::VectorSelector(vs) = inner {
                let samples = ctx.select_instant_with_time(vs, t)?;
                let out: Vec<VectorSample> = samples
                    .into_iter()
                    .map(|(s, ts)| VectorSample { labels: drop_name(&s.labels), v: ts as f64 / 1000.0, h: None })
                    .collect();
                check_unique(&out)?;
                return Ok(Val::Vector(out));
            }
            let v = ctx.eval_vector(inner, t)?;
            map_values(v, |_| t as f64 / 1000.0)
        }
        "sort" | "sort_desc" => {
            let mut v = floats(ctx.eval_vector(arg(0)?, t)?);
            let desc = name == "sort_desc";
            // NaN goes last in both directions.
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => {
                    let o = a.v.partial_cmp(&b.v).unwrap_or(std::cmp::Ordering::Equal);
                    if desc {
                        o.reverse()
                    } else {
                        o
                    }
                }
            });
            Ok(Val::Vector(v))
        }
        "label_replace" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            let dst = string_arg(ctx, arg(1)?, t)?;
            let repl = string_arg(ctx, arg(2)?, t)?;
            let src = string_arg(ctx, arg(3)?, t)?;
            let pattern = string_arg(ctx, arg(4)?, t)?;
            label_replace(v, &dst, &repl, &src, &pattern).map(Val::Vector)
        }
        "label_join" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            let dst = string_arg(ctx, arg(1)?, t)?;
            let sep = string_arg(ctx, arg(2)?, t)?;
            let mut srcs = Vec::new();
            for e in args.iter().skip(3) {
                srcs.push(string_arg(ctx, e, t)?);
            }
            if dst.is_empty() {
                return Err(EvalError::InvalidArgument(format!(
                    "invalid destination label name in label_join(): {dst}"
                )));
            }
            let out: Vec<VectorSample> = v
                .into_iter()
                .map(|mut s| {
                    let joined = srcs.iter().map(|n| s.labels.value(n)).collect::<Vec<_>>().join(&sep);
                    s.labels.set(dst.clone(), joined);
                    if dst == METRIC_NAME {
                        s.labels.remove(DROP_MARK);
                    }
                    s
                })
                .collect();
            check_unique(&out)?;
            Ok(Val::Vector(out))
        }
        "histogram_quantile" => {
            let q = ctx.eval_scalar(arg(0)?, t)?;
            let (native, classic): (Vec<VectorSample>, Vec<VectorSample>) =
                ctx.eval_vector(arg(1)?, t)?.into_iter().partition(|s| s.h.is_some());
            let classic = histogram::quantile(q, classic)?;
            let native = map_histograms(native, |h| native_histogram::quantile(q, h));
            finish_histograms(without_conflicts(native, classic))
        }
        "histogram_fraction" => {
            let lower = ctx.eval_scalar(arg(0)?, t)?;
            let upper = ctx.eval_scalar(arg(1)?, t)?;
            let (native, classic): (Vec<VectorSample>, Vec<VectorSample>) =
                ctx.eval_vector(arg(2)?, t)?.into_iter().partition(|s| s.h.is_some());
            let classic = histogram::fraction(lower, upper, classic)?;
            let native = map_histograms(native, |h| native_histogram::fraction(lower, upper, h));
            finish_histograms(without_conflicts(native, classic))
        }
        "histogram_count" => finish_histograms(map_histograms(ctx.eval_vector(arg(0)?, t)?, |h| h.count)),
        "histogram_sum" => finish_histograms(map_histograms(ctx.eval_vector(arg(0)?, t)?, |h| h.sum)),
        "histogram_avg" => finish_histograms(map_histograms(ctx.eval_vector(arg(0)?, t)?, |h| h.sum / h.count)),
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute" | "month" | "year" => {
            let v = match args.first() {
                Some(e) => ctx.eval_vector(e, t)?,
                None => vec![VectorSample { labels: Labels::new(), v: t as f64 / 1000.0, h: None }],
            };
            let part = date_part(name);
            map_values(v, |x| match DateTime::from_timestamp(x as i64, 0) {
                Some(d) if x.is_finite() => part(&d),
                _ => f64::NAN,
            })
        }
        _ => Err(EvalError::Unsupported(format!("function {name}"))),
    }
}

/// Math functions that map each value and drop the metric name.
fn elementwise(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sqrt" => f64::sqrt,
        "sgn" => |x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        },
        "acos" => f64::acos,
        "acosh" => f64::acosh,
        "asin" => f64::asin,
        "asinh" => f64::asinh,
        "atan" => f64::atan,
        "atanh" => f64::atanh,
        "cos" => f64::cos,
        "cosh" => f64::cosh,
        "sin" => f64::sin,
        "sinh" => f64::sinh,
        "tan" => f64::tan,
        "tanh" => f64::tanh,
        "deg" => f64::to_degrees,
        "rad" => f64::to_radians,
        _ => return None,
    })
}

/// Maps each float value (dropping the name); native histogram samples are
/// left out, as Prometheus leaves them out of float functions.
fn map_values(v: Vec<VectorSample>, f: impl Fn(f64) -> f64) -> Result<Val, EvalError> {
    let out: Vec<VectorSample> =
        floats(v).into_iter().map(|s| VectorSample { labels: drop_name(&s.labels), v: f(s.v), h: None }).collect();
    check_unique(&out)?;
    Ok(Val::Vector(out))
}

/// The float samples of a vector.
pub(crate) fn floats(v: Vec<VectorSample>) -> Vec<VectorSample> {
    v.into_iter().filter(|s| s.h.is_none()).collect()
}

/// A float from each native histogram sample (dropping the name); float
/// samples are left out.
fn map_histograms(v: Vec<VectorSample>, f: impl Fn(&FloatHistogram) -> f64) -> Vec<VectorSample> {
    v.into_iter()
        .filter_map(|s| {
            let h = s.h.as_deref()?;
            Some(VectorSample { labels: drop_name(&s.labels), v: f(h), h: None })
        })
        .collect()
}

/// Results from native and classic histograms, except where both kinds
/// describe one series (a native histogram and `le` buckets with the same
/// other labels): which one is meant is ambiguous, so neither is answered,
/// as in Prometheus.
fn without_conflicts(native: Vec<VectorSample>, classic: Vec<VectorSample>) -> Vec<VectorSample> {
    use std::collections::HashSet;
    let native_keys: HashSet<Labels> = native.iter().map(|s| strip_name(&s.labels)).collect();
    let classic_keys: HashSet<Labels> = classic.iter().map(|s| strip_name(&s.labels)).collect();
    native
        .into_iter()
        .filter(|s| !classic_keys.contains(&strip_name(&s.labels)))
        .chain(classic.into_iter().filter(|s| !native_keys.contains(&strip_name(&s.labels))))
        .collect()
}

fn finish_histograms(out: Vec<VectorSample>) -> Result<Val, EvalError> {
    check_unique(&out)?;
    Ok(Val::Vector(out))
}

/// Go's `math.Min`/`math.Max` propagate NaN, unlike Rust's.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

fn string_arg(ctx: &Ctx, e: &Expr, t: i64) -> Result<String, EvalError> {
    match ctx.eval(e, t)? {
        Val::String(s) => Ok(s),
        other => Err(EvalError::Type(format!("expected string, got {}", other.type_name()))),
    }
}

/// The labels `absent(x{a="b"})` reports: the selector's equality matchers,
/// except labels constrained more than once (which could not all hold).
pub(crate) fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
    };
    let mut out = Labels::new();
    let mut seen = std::collections::HashSet::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, PMatchOp::Equal) && seen.insert(m.name.clone()) {
            out.set(m.name.clone(), m.value.clone());
        } else {
            out.remove(&m.name);
        }
    }
    out
}

fn label_replace(
    v: Vec<VectorSample>,
    dst: &str,
    repl: &str,
    src: &str,
    pattern: &str,
) -> Result<Vec<VectorSample>, EvalError> {
    let re = Regex::new(&format!("^(?s:{pattern})$"))
        .map_err(|e| EvalError::InvalidArgument(format!("invalid regular expression in label_replace(): {e}")))?;
    if dst.is_empty() {
        return Err(EvalError::InvalidArgument(format!("invalid destination label name in label_replace(): {dst}")));
    }
    let out: Vec<VectorSample> = v
        .into_iter()
        .map(|mut s| {
            if let Some(caps) = re.captures(s.labels.value(src)) {
                let mut value = String::new();
                caps.expand(repl, &mut value);
                s.labels.set(dst.to_string(), value);
                // Writing the name keeps it past delayed name removal.
                if dst == METRIC_NAME {
                    s.labels.remove(DROP_MARK);
                }
            }
            s
        })
        .collect();
    check_unique(&out)?;
    Ok(out)
}

fn date_part(name: &str) -> fn(&DateTime<chrono::Utc>) -> f64 {
    match name {
        "day_of_month" => |d| d.day() as f64,
        "day_of_week" => |d| d.weekday().num_days_from_sunday() as f64,
        "day_of_year" => |d| d.ordinal() as f64,
        "days_in_month" => |d| {
            let (y, m) = (d.year(), d.month());
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            match (chrono::NaiveDate::from_ymd_opt(y, m, 1), chrono::NaiveDate::from_ymd_opt(ny, nm, 1)) {
                (Some(a), Some(b)) => (b - a).num_days() as f64,
                _ => f64::NAN,
            }
        },
        "hour" => |d| d.hour() as f64,
        "minute" => |d| d.minute() as f64,
        "month" => |d| d.month() as f64,
        _ => |d| d.year() as f64,
    }
}
