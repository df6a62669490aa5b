//! Native histograms: Prometheus's sparse, exponential-bucket histograms,
//! one sample holding every bucket.
//!
//! forewarn scrapes the text formats, which cannot carry native histograms,
//! so they reach it only from rule unit tests (promtool's `{{schema:1 ...}}`
//! notation) and PromQL test files. This module owns the value type and its
//! arithmetic (adding histograms of different resolutions, scaling, counter
//! reset detection, quantiles) so that selectors, `sum`, `rate`, the
//! `histogram_*` functions and the test harnesses agree with Prometheus on
//! what a histogram is.
//!
//! Buckets are kept by index in ordered maps rather than Prometheus's
//! span-encoded vectors: no sample here is stored compactly for long, and
//! index maps make merges across schemas plain. A bucket with index `i` at
//! schema `s` covers `(2^((i-1)/2^s), 2^(i/2^s)]`; negative buckets mirror
//! that below zero; the zero bucket counts observations within
//! `[-zero_threshold, zero_threshold]`.

mod notation;
mod quantile;

use std::collections::BTreeMap;

pub use notation::parse_histogram;
pub(crate) use notation::parse_number;
pub use quantile::{fraction, quantile};

/// The schema of histograms with custom (classic-style) bucket bounds.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// What a sample says about a counter reset since the previous sample, as
/// Prometheus's TSDB records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CounterResetHint {
    #[default]
    Unknown,
    Reset,
    NotReset,
    /// A gauge histogram: counts may go down without a reset.
    Gauge,
}

/// Why two histograms cannot be combined.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HistogramError {
    #[error("cannot combine histograms with custom buckets and exponential buckets")]
    MixedSchemas,
}

/// One native histogram sample, with float counts (results of PromQL
/// arithmetic are fractional).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloatHistogram {
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    /// Bucket index -> count.
    pub positive: BTreeMap<i32, f64>,
    pub negative: BTreeMap<i32, f64>,
    /// Upper bounds of the custom buckets (schema [`CUSTOM_BUCKETS_SCHEMA`]);
    /// positive bucket `i` ends at `custom_values[i]`, the last one at +Inf.
    pub custom_values: Vec<f64>,
    pub hint: CounterResetHint,
}

impl FloatHistogram {
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// `self * factor`, every count and the sum. A negative factor makes
    /// counts negative, as in Prometheus (the result is only meaningful
    /// as an intermediate).
    pub fn scale(&mut self, factor: f64) {
        if factor < 0.0 {
            // Counts that went negative are no counter any more.
            self.hint = CounterResetHint::Gauge;
        }
        self.zero_count *= factor;
        self.count *= factor;
        self.sum *= factor;
        for c in self.positive.values_mut().chain(self.negative.values_mut()) {
            *c *= factor;
        }
    }

    /// `self / divisor`, every count and the sum.
    pub fn div(&mut self, divisor: f64) {
        if divisor == 0.0 {
            // As Prometheus: dividing by zero leaves no buckets, only the
            // infinite (or NaN) totals and zero bucket.
            self.positive.clear();
            self.negative.clear();
        }
        if divisor < 0.0 {
            self.hint = CounterResetHint::Gauge;
        }
        self.zero_count /= divisor;
        self.count /= divisor;
        self.sum /= divisor;
        for c in self.positive.values_mut().chain(self.negative.values_mut()) {
            *c /= divisor;
        }
    }

    /// Whether both describe the same observations: equal layout, counts
    /// and sum; empty buckets and the counter reset hint do not matter.
    pub fn same_observations(&self, other: &FloatHistogram) -> bool {
        let filled =
            |m: &BTreeMap<i32, f64>| m.iter().filter(|(_, &c)| c != 0.0).map(|(&i, &c)| (i, c)).collect::<Vec<_>>();
        self.schema == other.schema
            && self.zero_threshold == other.zero_threshold
            && self.zero_count == other.zero_count
            && self.count == other.count
            && (self.sum == other.sum || (self.sum.is_nan() && other.sum.is_nan()))
            && self.custom_values == other.custom_values
            && filled(&self.positive) == filled(&other.positive)
            && filled(&self.negative) == filled(&other.negative)
    }

    /// `self + other`: the coarser schema and the wider zero bucket win, so
    /// that no observation is counted in a bucket narrower than its own.
    pub fn add(&mut self, other: &FloatHistogram) -> Result<(), HistogramError> {
        self.combine(other, 1.0)?;
        self.hint = combined_hint(self.hint, other.hint);
        Ok(())
    }

    /// `self - other`, with the same reconciliation as [`FloatHistogram::add`].
    /// A difference is a gauge histogram: its counts can go either way.
    pub fn sub(&mut self, other: &FloatHistogram) -> Result<(), HistogramError> {
        self.combine(other, -1.0)?;
        self.hint = CounterResetHint::Gauge;
        Ok(())
    }

    fn combine(&mut self, other: &FloatHistogram, sign: f64) -> Result<(), HistogramError> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(HistogramError::MixedSchemas);
        }
        let mut other = other.clone();
        if self.uses_custom_buckets() {
            if self.custom_values != other.custom_values {
                // Only the bounds both share can still be told apart.
                let common: Vec<f64> =
                    self.custom_values.iter().copied().filter(|b| other.custom_values.contains(b)).collect();
                self.merge_custom_buckets(&common);
                other.merge_custom_buckets(&common);
            }
        } else {
            let schema = self.schema.min(other.schema);
            self.reduce_resolution(schema);
            other.reduce_resolution(schema);
            // Widen both zero buckets until they agree (widening can stop
            // inside a bucket, which then joins and moves the bound).
            while self.zero_threshold != other.zero_threshold {
                let wider = self.zero_threshold.max(other.zero_threshold);
                self.widen_zero_bucket(wider);
                other.widen_zero_bucket(wider);
            }
        }
        self.zero_count += sign * other.zero_count;
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        for (i, c) in other.positive {
            *self.positive.entry(i).or_insert(0.0) += sign * c;
        }
        for (i, c) in other.negative {
            *self.negative.entry(i).or_insert(0.0) += sign * c;
        }
        Ok(())
    }

    /// Re-buckets a custom-bucket histogram onto `bounds`, a subset of its
    /// own: each bucket joins the first new bucket whose bound reaches it.
    fn merge_custom_buckets(&mut self, bounds: &[f64]) {
        let old = std::mem::take(&mut self.positive);
        for (i, c) in old {
            let upper = self.custom_bound(i.max(0) as usize);
            let j = bounds.iter().position(|&b| b >= upper).unwrap_or(bounds.len());
            *self.positive.entry(j as i32).or_insert(0.0) += c;
        }
        self.custom_values = bounds.to_vec();
    }

    /// Merges buckets down to a coarser `schema` (each step halves the
    /// resolution: buckets `2k-1` and `2k` become bucket `k`).
    pub fn reduce_resolution(&mut self, schema: i32) {
        if self.uses_custom_buckets() || schema >= self.schema {
            return;
        }
        let delta = self.schema - schema;
        for side in [&mut self.positive, &mut self.negative] {
            let old = std::mem::take(side);
            for (i, c) in old {
                *side.entry(((i - 1) >> delta) + 1).or_insert(0.0) += c;
            }
        }
        self.schema = schema;
    }

    /// Moves every bucket that reaches into `[-threshold, threshold]` into
    /// the zero bucket; the threshold becomes the largest upper bound moved
    /// if that is larger.
    fn widen_zero_bucket(&mut self, threshold: f64) {
        if threshold <= self.zero_threshold {
            return;
        }
        let mut new_threshold = threshold;
        let schema = self.schema;
        for side in [&mut self.positive, &mut self.negative] {
            let inside: Vec<i32> = side.keys().copied().take_while(|&i| lower_bound(i, schema) < threshold).collect();
            for i in inside {
                if let Some(c) = side.remove(&i) {
                    self.zero_count += c;
                }
                new_threshold = new_threshold.max(upper_bound(i, schema));
            }
        }
        self.zero_threshold = new_threshold;
    }

    /// Whether `self` (the newer sample) shows a counter reset against
    /// `previous`: fewer observations anywhere, or a change of layout that
    /// only a restart produces (finer schema, narrower zero bucket).
    pub fn detect_reset(&self, previous: &FloatHistogram) -> bool {
        if self.hint == CounterResetHint::Gauge {
            return false;
        }
        if self.count < previous.count || self.uses_custom_buckets() != previous.uses_custom_buckets() {
            return true;
        }
        if self.uses_custom_buckets() {
            // Changed bounds are reconciled to the shared ones, as when
            // adding, and compared there.
            let common: Vec<f64> =
                self.custom_values.iter().copied().filter(|b| previous.custom_values.contains(b)).collect();
            let (mut now, mut prev) = (self.clone(), previous.clone());
            now.merge_custom_buckets(&common);
            prev.merge_custom_buckets(&common);
            return prev.positive.iter().any(|(i, &c)| now.positive.get(i).copied().unwrap_or(0.0) < c);
        }
        if self.schema > previous.schema || self.zero_threshold < previous.zero_threshold {
            return true;
        }
        let mut prev = previous.clone();
        prev.reduce_resolution(self.schema);
        prev.widen_zero_bucket(self.zero_threshold);
        if prev.zero_threshold != self.zero_threshold || self.zero_count < prev.zero_count {
            return true;
        }
        let fell = |now: &BTreeMap<i32, f64>, before: &BTreeMap<i32, f64>| {
            before.iter().any(|(i, &c)| now.get(i).copied().unwrap_or(0.0) < c)
        };
        fell(&self.positive, &prev.positive) || fell(&self.negative, &prev.negative)
    }

    /// Every bucket with its bounds and count, from the most negative to the
    /// largest: negative buckets, the zero bucket (when it has a width or
    /// observations), positive buckets. Empty buckets are skipped.
    pub fn buckets(&self) -> Vec<Bucket> {
        let mut out = Vec::with_capacity(self.positive.len() + self.negative.len() + 1);
        if self.uses_custom_buckets() {
            for (&i, &c) in &self.positive {
                let idx = i.max(0) as usize;
                let lower = if idx == 0 { f64::NEG_INFINITY } else { self.custom_bound(idx - 1) };
                out.push(Bucket { lower, upper: self.custom_bound(idx), count: c, kind: BucketKind::Custom });
            }
            return out;
        }
        for (&i, &c) in self.negative.iter().rev() {
            out.push(Bucket {
                lower: -upper_bound(i, self.schema),
                upper: -lower_bound(i, self.schema),
                count: c,
                kind: BucketKind::Negative,
            });
        }
        if self.zero_count != 0.0 || self.zero_threshold != 0.0 {
            out.push(Bucket {
                lower: -self.zero_threshold,
                upper: self.zero_threshold,
                count: self.zero_count,
                kind: BucketKind::Zero,
            });
        }
        for (&i, &c) in &self.positive {
            out.push(Bucket {
                lower: lower_bound(i, self.schema),
                upper: upper_bound(i, self.schema),
                count: c,
                kind: BucketKind::Positive,
            });
        }
        out.retain(|b| b.count != 0.0 || b.kind == BucketKind::Zero);
        out
    }

    fn custom_bound(&self, idx: usize) -> f64 {
        self.custom_values.get(idx).copied().unwrap_or(f64::INFINITY)
    }
}

/// The sum of histograms, `None` for none or for histograms that cannot be
/// added (custom and exponential buckets mixed). The hint combines the
/// inputs' (counters stay counters, any gauge makes a gauge).
pub fn sum_all<'a>(hs: impl IntoIterator<Item = &'a FloatHistogram>) -> Option<FloatHistogram> {
    let mut it = hs.into_iter();
    let mut total = it.next()?.clone();
    let mut hint = total.hint;
    for h in it {
        total.add(h).ok()?;
        hint = combined_hint(hint, h.hint);
    }
    total.hint = hint;
    Some(total)
}

/// The mean of histograms, computed incrementally as Prometheus does so
/// that large counts do not overflow on the way; hint as in [`sum_all`].
pub fn mean_all<'a>(hs: impl IntoIterator<Item = &'a FloatHistogram>) -> Option<FloatHistogram> {
    let mut it = hs.into_iter();
    let mut mean = it.next()?.clone();
    let mut hint = mean.hint;
    let mut n = 1.0;
    for h in it {
        n += 1.0;
        let mut step = h.clone();
        step.div(n);
        let mut prev = mean.clone();
        prev.div(n);
        step.sub(&prev).ok()?;
        mean.add(&step).ok()?;
        hint = combined_hint(hint, h.hint);
    }
    mean.hint = hint;
    Some(mean)
}

/// Which part of the histogram a bucket belongs to; interpolation inside a
/// bucket differs between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketKind {
    Negative,
    Zero,
    Positive,
    Custom,
}

/// One bucket of a histogram, with its bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub count: f64,
    pub kind: BucketKind,
}

/// The counter reset hint of a sum or difference, as Prometheus decides it:
/// equal hints stay, a gauge makes a gauge, anything else is unknown.
pub fn combined_hint(a: CounterResetHint, b: CounterResetHint) -> CounterResetHint {
    use CounterResetHint::*;
    match (a, b) {
        _ if a == b => a,
        (Gauge, _) | (_, Gauge) => Gauge,
        _ => Unknown,
    }
}

/// The upper bound of positive bucket `idx` at `schema`: `2^(idx / 2^schema)`.
/// Computed from the exact power of two and a fraction in `[0.5, 1)`, so
/// that bounds at integer powers of two are exact.
pub fn upper_bound(idx: i32, schema: i32) -> f64 {
    if schema < 0 {
        let exp = (idx as i64) << (-schema).min(62);
        if exp >= 1024 {
            return f64::MAX;
        }
        return 2f64.powi(exp as i32);
    }
    let per_octave = 1i64 << schema;
    let frac_idx = (idx as i64).rem_euclid(per_octave);
    let exp = (idx as i64).div_euclid(per_octave) + 1;
    let frac = 2f64.powf(frac_idx as f64 / per_octave as f64 - 1.0);
    if frac == 0.5 && exp >= 1025 {
        return f64::MAX;
    }
    frac * 2f64.powi(exp.clamp(-1100, 1100) as i32)
}

/// The lower bound of positive bucket `idx`: the upper bound of `idx - 1`.
pub fn lower_bound(idx: i32, schema: i32) -> f64 {
    upper_bound(idx - 1, schema)
}

#[cfg(test)]
mod tests;
