//! Estimates from one native histogram: `histogram_quantile` and
//! `histogram_fraction`.
//!
//! Inside an exponential bucket observations are assumed spread evenly on a
//! logarithmic scale (the bucket bounds are evenly spaced there); inside the
//! zero bucket and custom buckets, evenly on a linear scale. A zero bucket
//! of a histogram that has only positive (or only negative) buckets is
//! taken to start (or end) at zero, since nothing crossed to the other side.

use super::{Bucket, BucketKind, FloatHistogram};

/// Buckets with the zero bucket clipped at zero when only one side has
/// observations, and custom buckets' open ends closed where possible.
fn effective_buckets(h: &FloatHistogram) -> Vec<Bucket> {
    let only_positive = h.negative.values().all(|&c| c == 0.0) && h.positive.values().any(|&c| c != 0.0);
    let only_negative = h.positive.values().all(|&c| c == 0.0) && h.negative.values().any(|&c| c != 0.0);
    h.buckets()
        .into_iter()
        .map(|mut b| {
            if b.kind == BucketKind::Zero {
                if only_positive {
                    b.lower = 0.0;
                } else if only_negative {
                    b.upper = 0.0;
                }
            }
            b
        })
        .collect()
}

/// Where `fraction` (0..1) of the way through bucket `b` lies.
fn interpolate(b: &Bucket, fraction: f64) -> f64 {
    match b.kind {
        BucketKind::Zero | BucketKind::Custom => b.lower + (b.upper - b.lower) * fraction,
        BucketKind::Positive => {
            let (lo, hi) = (b.lower.log2(), b.upper.log2());
            (lo + (hi - lo) * fraction).exp2()
        }
        BucketKind::Negative => {
            let (lo, hi) = (b.lower.abs().log2(), b.upper.abs().log2());
            -(hi + (lo - hi) * (1.0 - fraction)).exp2()
        }
    }
}

/// The fraction of bucket `b` that lies below `v` (`v` within its bounds).
fn position(b: &Bucket, v: f64) -> f64 {
    match b.kind {
        BucketKind::Zero | BucketKind::Custom => (v - b.lower) / (b.upper - b.lower),
        BucketKind::Positive => {
            let (lo, hi) = (b.lower.log2(), b.upper.log2());
            (v.log2() - lo) / (hi - lo)
        }
        BucketKind::Negative => {
            let (lo, hi) = (b.lower.abs().log2(), b.upper.abs().log2());
            1.0 - (v.abs().log2() - hi) / (lo - hi)
        }
    }
}

/// The estimated `q`-quantile of the observations in `h`.
pub fn quantile(q: f64, h: &FloatHistogram) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 || q.is_nan() {
        return f64::NAN;
    }
    let buckets = effective_buckets(h);
    // From the top for upper quantiles (so that a quantile in a run of
    // empty buckets lands on the bucket above it, as in Prometheus), from
    // the bottom for lower ones and whenever NaN observations (a NaN sum)
    // sit uncounted beyond the buckets.
    let forward = h.sum.is_nan() || q < 0.5;
    let rank = if forward { q * h.count } else { (1.0 - q) * h.count };
    let mut seen = 0.0;
    let mut found: Option<Bucket> = None;
    let ordered: Box<dyn Iterator<Item = &Bucket>> =
        if forward { Box::new(buckets.iter()) } else { Box::new(buckets.iter().rev()) };
    for b in ordered {
        if b.count == 0.0 {
            continue;
        }
        seen += b.count;
        found = Some(*b);
        if seen >= rank {
            break;
        }
    }
    let Some(mut b) = found else { return f64::NAN };
    if b.kind == BucketKind::Custom {
        if b.lower == f64::NEG_INFINITY {
            if b.upper <= 0.0 {
                return b.upper;
            }
            b.lower = 0.0;
        } else if b.upper == f64::INFINITY {
            return b.lower;
        }
    }
    // Rounding can make the running count exceed the total.
    let seen = seen.min(h.count);
    if seen < rank {
        // The rank lies among NaN observations, which have no place.
        return if h.sum.is_nan() { f64::NAN } else { b.upper };
    }
    let fraction = if forward { (rank - (seen - b.count)) / b.count } else { (seen - rank) / b.count };
    interpolate(&b, fraction)
}

/// The estimated fraction of observations in `h` between `lower` and
/// `upper`.
pub fn fraction(lower: f64, upper: f64, h: &FloatHistogram) -> f64 {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    // The count of observations below `v`.
    let below = |v: f64| -> f64 {
        let mut rank = 0.0;
        for b in effective_buckets(h) {
            let mut b = b;
            if b.kind == BucketKind::Custom && b.lower == f64::NEG_INFINITY && b.upper > 0.0 {
                b.lower = 0.0;
            }
            if v <= b.lower {
                return rank;
            }
            if v < b.upper {
                if b.lower.is_infinite() || b.upper.is_infinite() {
                    return rank;
                }
                return rank + b.count * position(&b, v);
            }
            rank += b.count;
        }
        rank
    };
    (below(upper) - below(lower)) / h.count
}
