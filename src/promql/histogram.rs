//! `histogram_quantile` over classic histograms: series of cumulative bucket
//! counts told apart by their `le` (upper bound) label.
//!
//! Buckets are grouped by their other labels; within a group the quantile is
//! interpolated linearly inside the bucket the rank falls into, after forcing
//! the counts to be monotonic (scrapes of separate bucket series are not
//! atomic, so small inversions are normal and must not produce nonsense).

use std::collections::HashMap;

use super::eval::{check_unique, strip_name};
use super::{EvalError, VectorSample};
use crate::labels::Labels;

/// Counts closer than this (relatively) are treated as equal.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

pub(crate) fn quantile(q: f64, input: Vec<VectorSample>) -> Result<Vec<VectorSample>, EvalError> {
    per_histogram(input, |buckets| bucket_quantile(q, buckets))
}

pub(crate) fn fraction(lower: f64, upper: f64, input: Vec<VectorSample>) -> Result<Vec<VectorSample>, EvalError> {
    per_histogram(input, |buckets| bucket_fraction(lower, upper, buckets))
}

/// Groups bucket series into histograms (by their labels without name and
/// `le`) and computes `f` over each one's (upper bound, cumulative count).
fn per_histogram(input: Vec<VectorSample>, f: impl Fn(Vec<(f64, f64)>) -> f64) -> Result<Vec<VectorSample>, EvalError> {
    // Two buckets that differ only by metric name (say `a_bucket` and
    // `b_bucket`) would be silently summed; Prometheus refuses them.
    let unnamed: Vec<VectorSample> =
        input.iter().map(|s| VectorSample { labels: strip_name(&s.labels), v: s.v, h: None }).collect();
    check_unique(&unnamed)?;
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    for s in input {
        // Series without a parseable `le` are not buckets; Prometheus skips
        // them (with a warning).
        let Some(le) = s.labels.get("le").and_then(parse_bound) else { continue };
        let mut key = s.labels;
        key.remove("le");
        let key = strip_name(&key);
        match index.get(&key) {
            Some(&i) => groups[i].1.push((le, s.v)),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![(le, s.v)]));
            }
        }
    }
    Ok(groups.into_iter().map(|(labels, buckets)| VectorSample { labels, v: f(buckets), h: None }).collect())
}

pub(crate) fn parse_bound(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// The q-quantile of one histogram given as (upper bound, cumulative count).
pub(crate) fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Merge buckets with the same bound (e.g. `le="1"` and `le="1.0"`).
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(b),
        }
    }
    let mut buckets = merged;
    make_monotonic(&mut buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // The first bucket (excluding +Inf) whose count reaches the rank.
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|x| x.1 < rank);
    if b == n {
        return buckets[n - 1].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// The estimated fraction of observations between `lower` and `upper`,
/// interpolating linearly inside a bucket; the lowest bucket starts at 0
/// when its bound is positive.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(b),
        }
    }
    make_monotonic(&mut merged);
    let total = merged[merged.len() - 1].1;
    if total == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let below = |v: f64| -> f64 {
        let mut rank = 0.0;
        let mut lo = if merged[0].0 > 0.0 { 0.0 } else { f64::NEG_INFINITY };
        for &(hi, cumulative) in &merged {
            let count = cumulative - rank;
            if v <= lo {
                return rank;
            }
            if v < hi {
                // No interpolation in a bucket of infinite width: the
                // lowest one counts as wholly below, the +Inf one as above.
                if lo.is_infinite() {
                    return cumulative;
                }
                if hi.is_infinite() {
                    return rank;
                }
                return rank + count * (v - lo) / (hi - lo);
            }
            rank = cumulative;
            lo = hi;
        }
        rank
    };
    (below(upper) - below(lower)) / total
}

/// Replaces decreases (and negligible float noise) with the previous count.
fn make_monotonic(buckets: &mut [(f64, f64)]) {
    let Some(first) = buckets.first() else { return };
    let mut prev = first.1;
    for b in buckets.iter_mut().skip(1) {
        let cur = b.1;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, SMALL_DELTA_TOLERANCE) || cur < prev {
            b.1 = prev;
            continue;
        }
        prev = cur;
    }
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}
