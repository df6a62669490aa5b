//! Functions over range vectors: the counter family (`rate`, `increase`,
//! `delta` with Prometheus's extrapolation, `irate`, `idelta`, `resets`),
//! regression (`deriv`, `predict_linear`) and the `*_over_time` family.
//!
//! Each reduces one series' samples in the window to one value; a series that
//! has too few samples for the function simply yields nothing.

use promql_parser::parser::Expr;

use super::aggregate::{extreme, kahan_inc, kahan_sum, mean, quantile, variance};
use super::eval::{check_unique, drop_name, Ctx, Val};
use super::functions::absent_labels;
use super::{EvalError, VectorSample};
use std::collections::HashMap;

use crate::labels::Labels;
use crate::native_histogram::{self, CounterResetHint, FloatHistogram};
use crate::store::{HistogramSample, Sample};

pub(crate) const SUPPORTED: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "first_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "mad_over_time",
    "present_over_time",
    "absent_over_time",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
    "double_exponential_smoothing",
];

pub(crate) fn eval(ctx: &Ctx, name: &str, args: &[&Expr], t: i64) -> Result<Val, EvalError> {
    // The matrix argument is the first one except for quantile_over_time.
    let (matrix_idx, scalar_args): (usize, Vec<usize>) = match name {
        "quantile_over_time" => (1, vec![0]),
        "predict_linear" => (0, vec![1]),
        "double_exponential_smoothing" => (0, vec![1, 2]),
        _ => (0, vec![]),
    };
    let matrix_expr =
        args.get(matrix_idx).ok_or_else(|| EvalError::InvalidArgument(format!("{name}: missing range argument")))?;
    let mut params = Vec::new();
    for i in scalar_args {
        let e = args.get(i).ok_or_else(|| EvalError::InvalidArgument(format!("{name}: missing argument {}", i + 1)))?;
        params.push(ctx.eval_scalar(e, t)?);
    }
    let m = ctx.eval_matrix(matrix_expr, t)?;
    if name == "absent_over_time" {
        return Ok(Val::Vector(if m.series.is_empty() && m.histograms.is_empty() {
            vec![VectorSample { labels: absent_labels(matrix_expr), v: 1.0, h: None }]
        } else {
            Vec::new()
        }));
    }
    if name == "double_exponential_smoothing" {
        let (sf, tf) = (params[0], params[1]);
        if !(sf > 0.0 && sf < 1.0 && tf > 0.0 && tf < 1.0) {
            return Err(EvalError::InvalidArgument(format!(
                "invalid smoothing factor or trend factor: expected 0 < sf < 1 and 0 < tf < 1, got sf={sf}, tf={tf}"
            )));
        }
    }
    // Only the functions that return a sample's value unchanged keep the name.
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    let mut out = Vec::with_capacity(m.series.len() + m.histograms.len());
    let histograms: HashMap<&Labels, &[HistogramSample]> =
        m.histograms.iter().map(|h| (&h.labels, h.samples.as_slice())).collect();
    for s in &m.series {
        let v = match histograms.get(&s.labels) {
            Some(hs) => match mixed(name, &s.samples, hs) {
                Mixed::Float(v) => Some(v),
                Mixed::Histogram(h) => {
                    let labels = if keep_name { s.labels.clone() } else { drop_name(&s.labels) };
                    out.push(VectorSample { labels, v: 0.0, h: Some(Box::new(h)) });
                    None
                }
                Mixed::FloatsOnly => reduce(name, m.start, m.end, t, &s.samples, &params)?,
                Mixed::Nothing => None,
            },
            None => reduce(name, m.start, m.end, t, &s.samples, &params)?,
        };
        if let Some(v) = v {
            let labels = if keep_name { s.labels.clone() } else { drop_name(&s.labels) };
            out.push(VectorSample { labels, v, h: None });
        }
    }
    let floats: std::collections::HashSet<&Labels> = m.series.iter().map(|s| &s.labels).collect();
    for hs in m.histograms.iter().filter(|h| !floats.contains(&h.labels)) {
        let labels = if keep_name { hs.labels.clone() } else { drop_name(&hs.labels) };
        match reduce_histograms(name, m.start, m.end, &hs.samples)? {
            Some(Reduced::Float(v)) => out.push(VectorSample { labels, v, h: None }),
            Some(Reduced::Histogram(h)) => out.push(VectorSample { labels, v: 0.0, h: Some(Box::new(h)) }),
            None => {}
        }
    }
    check_unique(&out)?;
    Ok(Val::Vector(out))
}

/// A function's result over native histogram samples.
enum Reduced {
    Float(f64),
    Histogram(FloatHistogram),
}

/// One histogram series' value for `name` over its window `(start, end]`:
/// rates and sums are histograms, counts and timestamps floats; functions
/// defined on float values only (`min_over_time`, `deriv`, ...) have none,
/// as Prometheus ignores histogram samples there.
fn reduce_histograms(
    name: &str,
    start: i64,
    end: i64,
    samples: &[HistogramSample],
) -> Result<Option<Reduced>, EvalError> {
    use Reduced::{Float, Histogram};
    let hs = || samples.iter().map(|s| &s.h);
    Ok(match name {
        "rate" => hist_extrapolated(start, end, samples, true, true).map(Histogram),
        "increase" => hist_extrapolated(start, end, samples, true, false).map(Histogram),
        "delta" => hist_extrapolated(start, end, samples, false, false).map(Histogram),
        "irate" | "idelta" => hist_instant_delta(samples, name == "irate").map(Histogram),
        "sum_over_time" => native_histogram::sum_all(hs()).map(|mut h| {
            h.sum = kahan_sum(hs().map(|h| h.sum));
            Histogram(h)
        }),
        "avg_over_time" => native_histogram::mean_all(hs()).map(|mut h| {
            let m = mean(hs().map(|h| h.sum));
            if m.is_finite() || !h.sum.is_finite() {
                h.sum = m;
            }
            Histogram(h)
        }),
        "count_over_time" => Some(Float(samples.len() as f64)),
        "present_over_time" => (!samples.is_empty()).then_some(Float(1.0)),
        "last_over_time" => samples.last().map(|s| Histogram(s.h.clone())),
        "first_over_time" => samples.first().map(|s| Histogram(s.h.clone())),
        "ts_of_last_over_time" => samples.last().map(|s| Float(s.t as f64 / 1000.0)),
        "ts_of_first_over_time" => samples.first().map(|s| Float(s.t as f64 / 1000.0)),
        "resets" => Some(Float(samples.windows(2).filter(|w| w[1].h.detect_reset(&w[0].h)).count() as f64)),
        "changes" => Some(Float(samples.windows(2).filter(|w| !w[1].h.same_observations(&w[0].h)).count() as f64)),
        _ => None,
    })
}

/// What a function gives for a series with both float and histogram
/// samples in its window.
enum Mixed {
    Float(f64),
    Histogram(FloatHistogram),
    /// Compute over the floats and ignore the histograms.
    FloatsOnly,
    /// Undefined (a rate over floats and histograms): no result.
    Nothing,
}

fn mixed(name: &str, floats: &[Sample], hs: &[HistogramSample]) -> Mixed {
    let last_f = floats.last().map(|s| s.t).unwrap_or(i64::MIN);
    let last_h = hs.last().map(|s| s.t).unwrap_or(i64::MIN);
    let first_f = floats.first().map(|s| s.t).unwrap_or(i64::MAX);
    let first_h = hs.first().map(|s| s.t).unwrap_or(i64::MAX);
    match name {
        "count_over_time" => Mixed::Float((floats.len() + hs.len()) as f64),
        "present_over_time" => Mixed::Float(1.0),
        "last_over_time" if last_h > last_f => hs.last().map_or(Mixed::Nothing, |s| Mixed::Histogram(s.h.clone())),
        "first_over_time" if first_h < first_f => hs.first().map_or(Mixed::Nothing, |s| Mixed::Histogram(s.h.clone())),
        "ts_of_last_over_time" => Mixed::Float(last_f.max(last_h) as f64 / 1000.0),
        "ts_of_first_over_time" => Mixed::Float(first_f.min(first_h) as f64 / 1000.0),
        "irate" | "idelta" | "resets" | "changes" => timeline(name, floats, hs),
        "rate" | "increase" | "delta" | "sum_over_time" | "avg_over_time" => Mixed::Nothing,
        _ => Mixed::FloatsOnly,
    }
}

/// `irate`/`idelta`/`resets`/`changes` over a series that switched between
/// floats and histograms: its samples in time order, a switch counting as a
/// reset and a change, and no instant rate across a switch.
fn timeline(name: &str, floats: &[Sample], hs: &[HistogramSample]) -> Mixed {
    enum P<'a> {
        F(f64),
        H(&'a FloatHistogram),
    }
    let mut points: Vec<(i64, P)> = floats.iter().map(|s| (s.t, P::F(s.v))).collect();
    points.extend(hs.iter().map(|s| (s.t, P::H(&s.h))));
    points.sort_by_key(|p| p.0);
    match name {
        "resets" | "changes" => {
            let n = points
                .windows(2)
                .filter(|w| match (&w[0].1, &w[1].1) {
                    (P::F(a), P::F(b)) if name == "resets" => b < a,
                    (P::F(a), P::F(b)) => !(a == b || (a.is_nan() && b.is_nan())),
                    (P::H(a), P::H(b)) if name == "resets" => b.detect_reset(a),
                    (P::H(a), P::H(b)) => !b.same_observations(a),
                    _ => true,
                })
                .count();
            Mixed::Float(n as f64)
        }
        _ => match points.as_slice() {
            [.., (t0, P::H(a)), (t1, P::H(b))] => {
                let pair = [HistogramSample { t: *t0, h: (*a).clone() }, HistogramSample { t: *t1, h: (*b).clone() }];
                hist_instant_delta(&pair, name == "irate").map_or(Mixed::Nothing, Mixed::Histogram)
            }
            [.., (t0, P::F(a)), (t1, P::F(b))] => {
                let pair = [Sample { t: *t0, v: *a }, Sample { t: *t1, v: *b }];
                instant_delta(&pair, name == "irate").map_or(Mixed::Nothing, Mixed::Float)
            }
            _ => Mixed::Nothing,
        },
    }
}

/// `rate`/`increase`/`delta` of native histograms: the last histogram minus
/// the first (at the coarsest schema in the window), plus what was lost at
/// each counter reset, extrapolated to the window's edges like floats
/// (with the observation count standing in for the value when deciding
/// where a counter would reach zero). The result is a gauge histogram.
fn hist_extrapolated(
    start: i64,
    end: i64,
    samples: &[HistogramSample],
    counter: bool,
    per_second: bool,
) -> Option<FloatHistogram> {
    if samples.len() < 2 {
        return None;
    }
    let (first, last) = (&samples[0], &samples[samples.len() - 1]);
    // last - first + (the value before each reset). A reset right after the
    // first sample cancels its subtraction, which matters when the layout
    // changed there (custom to exponential buckets cannot be subtracted).
    let mut before_resets: Vec<&FloatHistogram> = Vec::new();
    let mut subtract_first = true;
    if counter {
        for (i, w) in samples.windows(2).enumerate() {
            if w[1].h.detect_reset(&w[0].h) {
                if i == 0 {
                    subtract_first = false;
                } else {
                    before_resets.push(&w[0].h);
                }
            }
        }
    }
    let mut result = last.h.clone();
    if subtract_first {
        result.sub(&first.h).ok()?;
    }
    for h in before_resets {
        result.add(h).ok()?;
    }
    let zero_point = (counter && result.count > 0.0 && first.h.count >= 0.0).then_some((first.h.count, result.count));
    let factor = extrapolation_factor(start, end, first.t, last.t, samples.len(), zero_point, per_second);
    result.scale(factor);
    result.hint = CounterResetHint::Gauge;
    Some(result)
}

/// `irate`/`idelta` of native histograms, from the last two samples.
fn hist_instant_delta(samples: &[HistogramSample], rate: bool) -> Option<FloatHistogram> {
    let [.., prev, last] = samples else { return None };
    let mut d = last.h.clone();
    if !(rate && last.h.detect_reset(&prev.h)) {
        d.sub(&prev.h).ok()?;
    }
    if rate {
        let dt = (last.t - prev.t) as f64 / 1000.0;
        if dt == 0.0 {
            return None;
        }
        d.div(dt);
    }
    d.hint = CounterResetHint::Gauge;
    Some(d)
}

/// One series' value for `name` over its window `(start, end]` at
/// evaluation time `t`, from the window's non-stale samples: `None` when the
/// function has nothing to say (too few samples). Shared by instant
/// evaluation and the range engine, so both compute the same number.
pub(crate) fn reduce(
    name: &str,
    start: i64,
    end: i64,
    t: i64,
    samples: &[Sample],
    params: &[f64],
) -> Result<Option<f64>, EvalError> {
    Ok(match name {
        "rate" => extrapolated(start, end, samples, true, true),
        "increase" => extrapolated(start, end, samples, true, false),
        "delta" => extrapolated(start, end, samples, false, false),
        "irate" => instant_delta(samples, true),
        "idelta" => instant_delta(samples, false),
        "deriv" => (samples.len() >= 2).then(|| linear_regression(samples, samples[0].t).0),
        "predict_linear" => (samples.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(samples, t);
            slope * params[0] + intercept
        }),
        "resets" => Some(samples.windows(2).filter(|w| w[1].v < w[0].v).count() as f64),
        "changes" => {
            Some(samples.windows(2).filter(|w| !(w[1].v == w[0].v || (w[1].v.is_nan() && w[0].v.is_nan()))).count()
                as f64)
        }
        "avg_over_time" => Some(mean(values(samples))),
        "min_over_time" => Some(extreme(values(samples), |cur, new| new < cur)),
        "max_over_time" => Some(extreme(values(samples), |cur, new| new > cur)),
        "sum_over_time" => Some(kahan_sum(values(samples))),
        "count_over_time" => Some(samples.len() as f64),
        "last_over_time" => samples.last().map(|x| x.v),
        "first_over_time" => samples.first().map(|x| x.v),
        "quantile_over_time" => Some(quantile(params[0], values(samples).collect())),
        "stddev_over_time" => Some(variance(values(samples)).sqrt()),
        "stdvar_over_time" => Some(variance(values(samples))),
        // A NaN sample makes the result NaN, as in Prometheus.
        "mad_over_time" if values(samples).any(f64::is_nan) => Some(f64::NAN),
        "mad_over_time" => {
            let med = quantile(0.5, values(samples).collect());
            Some(quantile(0.5, values(samples).map(|x| (x - med).abs()).collect()))
        }
        "present_over_time" => Some(1.0),
        "ts_of_last_over_time" => samples.last().map(|x| x.t as f64 / 1000.0),
        "ts_of_first_over_time" => samples.first().map(|x| x.t as f64 / 1000.0),
        "ts_of_min_over_time" => ts_of_extreme(samples, |cur, new| new <= cur),
        "ts_of_max_over_time" => ts_of_extreme(samples, |cur, new| new >= cur),
        "double_exponential_smoothing" => smoothing(samples, params[0], params[1]),
        _ => return Err(EvalError::Unsupported(format!("function {name}"))),
    })
}

fn values(samples: &[Sample]) -> impl Iterator<Item = f64> + '_ {
    samples.iter().map(|x| x.v)
}

/// `rate`, `increase` and `delta`: the change over the window, corrected for
/// counter resets, extrapolated towards the window edges. A series is assumed
/// to continue to an edge if its first/last sample is within 110% of the
/// average sample interval from it; otherwise it is assumed to start/end half
/// an interval beyond its outermost sample. A counter is never extrapolated
/// below zero.
fn extrapolated(start: i64, end: i64, samples: &[Sample], counter: bool, per_second: bool) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let first = samples[0];
    let last = samples[samples.len() - 1];
    let mut result = last.v - first.v;
    if counter {
        let mut prev = first.v;
        for s in &samples[1..] {
            if s.v < prev {
                result += prev;
            }
            prev = s.v;
        }
    }
    let zero_point = (counter && result > 0.0 && first.v >= 0.0).then_some((first.v, result));
    Some(result * extrapolation_factor(start, end, first.t, last.t, samples.len(), zero_point, per_second))
}

/// How much the change between the first and last of `n` samples is
/// scaled to cover the window `(start, end]` (per second for a rate).
/// `zero_point` is (first value, change) of a counter that went up: it is
/// not extrapolated back past where a straight line would reach zero.
fn extrapolation_factor(
    start: i64,
    end: i64,
    first_t: i64,
    last_t: i64,
    n: usize,
    zero_point: Option<(f64, f64)>,
    per_second: bool,
) -> f64 {
    let range_secs = (end - start) as f64 / 1000.0;
    let mut to_start = (first_t - start) as f64 / 1000.0;
    let mut to_end = (end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_interval = sampled / (n - 1) as f64;
    let threshold = avg_interval * 1.1;
    if to_start >= threshold {
        to_start = avg_interval / 2.0;
    }
    if let Some((first, change)) = zero_point {
        // Where a straight line through the samples would hit zero.
        let to_zero = sampled * (first / change);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_interval / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if per_second {
        factor /= range_secs;
    }
    factor
}

/// `irate`/`idelta`: from the last two samples only.
fn instant_delta(samples: &[Sample], rate: bool) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (prev, last) = (samples[samples.len() - 2], samples[samples.len() - 1]);
    let mut d = last.v - prev.v;
    if rate && last.v < prev.v {
        // A counter reset: the counter restarted from zero.
        d = last.v;
    }
    if !rate {
        return Some(d);
    }
    let dt = (last.t - prev.t) as f64 / 1000.0;
    if dt == 0.0 {
        return None;
    }
    Some(d / dt)
}

/// Least-squares fit of value against time (seconds relative to
/// `intercept_t`), returning (slope per second, value at `intercept_t`).
pub(crate) fn linear_regression(samples: &[Sample], intercept_t: i64) -> (f64, f64) {
    let first = samples[0].v;
    if samples.iter().all(|s| s.v == first) {
        // A constant series has a flat slope, which the general formula
        // would only approximate.
        if first.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, first);
    }
    let n = samples.len() as f64;
    let (mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for s in samples {
        let x = (s.t - intercept_t) as f64 / 1000.0;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(s.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * s.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// Timestamp of the min/max sample; `replace(cur, new)` says whether a later
/// sample takes over (ties go to the later sample).
fn ts_of_extreme(samples: &[Sample], replace: fn(f64, f64) -> bool) -> Option<f64> {
    let mut best = *samples.first()?;
    for s in &samples[1..] {
        if best.v.is_nan() || (!s.v.is_nan() && replace(best.v, s.v)) {
            best = *s;
        }
    }
    Some(best.t as f64 / 1000.0)
}

/// Holt's double exponential smoothing (formerly `holt_winters`).
fn smoothing(samples: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    // s1 is the smoothed level, s0 the previous one, b the trend.
    let (mut s0, mut s1) = (0.0, samples[0].v);
    let mut b = samples[1].v - samples[0].v;
    for (i, x) in samples.iter().enumerate().skip(1) {
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let next = sf * x.v + (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = next;
    }
    Some(s1)
}
