//! Trend estimation for the `trend` rule kind: the Theil–Sen slope (median of
//! pairwise slopes) of a series, how consistently the pairs agree on its
//! sign, and the time until the fitted line reaches a limit.
//!
//! Theil–Sen rather than least squares because a leak detector looks at
//! series with a GC sawtooth, scrape glitches and partial restarts: the median
//! of pairwise slopes ignores up to ~29% arbitrary outliers, while one bad
//! point can tilt a least-squares line anywhere. The cost is quadratic, so
//! beyond [`MAX_PAIRS`] pairs a fixed-seed random subset of pairs is used:
//! bounded work per evaluation, and the same samples always give the same
//! verdict.

use crate::analysis::error::AnalysisError;
use crate::analysis::robust::quantile_in_place;
use crate::store::Sample;

/// Upper bound on the pairwise slopes computed per fit (≈ 633 points done
/// exhaustively). 200k slopes are a few milliseconds of work and estimate the
/// median far more precisely than scrape noise allows anyway.
pub const MAX_PAIRS: usize = 200_000;

/// Fixed so subsampled fits are reproducible run to run.
const PAIR_SAMPLING_SEED: u64 = 0x5EED_F0E5_EEA1_7001;

/// A Theil–Sen line through a series plus the spread of the pairwise slopes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlopeFit {
    /// Median pairwise slope, in value units per second.
    pub slope_per_s: f64,
    /// Timestamp (ms) the intercept refers to: the latest usable sample.
    /// Anchoring at the end rather than at t = 0 keeps the intercept a
    /// meaningful "current value" and avoids cancellation against epoch-sized
    /// millisecond timestamps.
    pub anchor_ms: i64,
    /// The line's value at `anchor_ms`: median of `v - slope·(t - anchor)`.
    /// This is a noise- and sawtooth-robust estimate of the current level,
    /// suitable as the start of [`time_to_limit`].
    pub value_at_anchor: f64,
    /// 25th and 75th percentile of the pairwise slopes (per second): a wide
    /// interquartile range straddling 0 means the trend is not established.
    pub slope_p25_per_s: f64,
    pub slope_p75_per_s: f64,
    /// Fraction of pairs whose slope is > 0 and < 0 (ties make up the rest).
    /// Their difference is Kendall's tau between time and value; callers
    /// demanding "consistently rising" threshold `rising_fraction`.
    pub rising_fraction: f64,
    pub falling_fraction: f64,
    /// Pairs the fit used, and finite samples it considered.
    pub pairs: usize,
    pub points: usize,
    /// False when the pairs were a subsample (more than [`MAX_PAIRS`]).
    pub exhaustive: bool,
}

impl SlopeFit {
    /// Value of the fitted line at `t_ms`.
    pub fn value_at(&self, t_ms: i64) -> f64 {
        self.value_at_anchor + self.slope_per_s * ms_to_s(t_ms - self.anchor_ms)
    }

    /// Kendall-tau–like agreement in [-1, 1]: +1 when every later sample is
    /// above every earlier one, 0 for no ordering, -1 for a steady fall.
    pub fn agreement(&self) -> f64 {
        self.rising_fraction - self.falling_fraction
    }
}

fn ms_to_s(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn pair_slope(a: &Sample, b: &Sample) -> Option<f64> {
    // Same timestamp: no rate information (duplicate scrape), not an infinity.
    (a.t != b.t).then(|| (b.v - a.v) / ms_to_s(b.t - a.t))
}

/// Theil–Sen fit of the finite samples (order does not matter).
///
/// Errors when fewer than two finite samples remain or they all share a
/// timestamp.
pub fn theil_sen(points: &[Sample]) -> Result<SlopeFit, AnalysisError> {
    let pts: Vec<Sample> = points.iter().copied().filter(|p| p.v.is_finite()).collect();
    let n = pts.len();
    if n < 2 {
        return Err(AnalysisError::TooFewPoints { have: n, need: 2 });
    }
    let anchor_ms = pts.iter().map(|p| p.t).max().unwrap_or_default();
    if pts.iter().all(|p| p.t == anchor_ms) {
        return Err(AnalysisError::NoTimeSpan { points: n });
    }

    let total_pairs = n.saturating_mul(n - 1) / 2;
    let exhaustive = total_pairs <= MAX_PAIRS;
    let mut slopes = Vec::with_capacity(total_pairs.min(MAX_PAIRS));
    if exhaustive {
        for (i, a) in pts.iter().enumerate() {
            slopes.extend(pts[i + 1..].iter().filter_map(|b| pair_slope(a, b)));
        }
    } else {
        // Uniform pairs with replacement keep the distribution of pairwise
        // slopes (and so its median and quartiles) unbiased. Attempts are
        // capped because pairs with equal timestamps are rejected.
        let mut rng = fastrand::Rng::with_seed(PAIR_SAMPLING_SEED);
        let mut attempts = 0usize;
        while slopes.len() < MAX_PAIRS && attempts < 4 * MAX_PAIRS {
            attempts += 1;
            let (i, j) = (rng.usize(..n), rng.usize(..n));
            if let Some(s) = pair_slope(&pts[i], &pts[j]) {
                slopes.push(s);
            }
        }
    }
    if slopes.is_empty() {
        return Err(AnalysisError::NoTimeSpan { points: n });
    }

    let pairs = slopes.len();
    let rising = slopes.iter().filter(|&&s| s > 0.0).count();
    let falling = slopes.iter().filter(|&&s| s < 0.0).count();
    let slope_per_s = quantile_in_place(&mut slopes, 0.5);
    let slope_p25_per_s = quantile_in_place(&mut slopes, 0.25);
    let slope_p75_per_s = quantile_in_place(&mut slopes, 0.75);

    let mut residuals: Vec<f64> = pts.iter().map(|p| p.v - slope_per_s * ms_to_s(p.t - anchor_ms)).collect();
    let value_at_anchor = quantile_in_place(&mut residuals, 0.5);

    Ok(SlopeFit {
        slope_per_s,
        anchor_ms,
        value_at_anchor,
        slope_p25_per_s,
        slope_p75_per_s,
        rising_fraction: rising as f64 / pairs as f64,
        falling_fraction: falling as f64 / pairs as f64,
        pairs,
        points: n,
        exhaustive,
    })
}

/// A confidence interval for the slope (per second): Sen's rank interval
/// over the pairwise slopes of `bins` time-bin medians of the samples, at
/// normal quantile `z` (2.58 ≈ 99 % two-sided).
///
/// Why bins: scrapes a few seconds apart are not independent draws (a GC
/// sawtooth, a slow drift), and the rank interval over raw samples would be
/// far too narrow. Medians of equal stretches of time keep what the series
/// does over the window and drop what it does within a few minutes, so the
/// interval says how sure the window is, not how many scrapes it holds.
/// `None` with fewer than 4 non-empty bins.
pub fn slope_interval(points: &[Sample], bins: usize, z: f64) -> Option<(f64, f64)> {
    let pts: Vec<Sample> = points.iter().copied().filter(|p| p.v.is_finite()).collect();
    let (first, last) = (pts.iter().map(|p| p.t).min()?, pts.iter().map(|p| p.t).max()?);
    if last <= first || bins < 4 {
        return None;
    }
    let width = (last - first) as f64 / bins as f64;
    let mut grouped: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); bins];
    for p in &pts {
        let i = (((p.t - first) as f64 / width) as usize).min(bins - 1);
        grouped[i].0.push(ms_to_s(p.t - first));
        grouped[i].1.push(p.v);
    }
    let medians: Vec<(f64, f64)> = grouped
        .into_iter()
        .filter(|(t, _)| !t.is_empty())
        .map(|(mut t, mut v)| (quantile_in_place(&mut t, 0.5), quantile_in_place(&mut v, 0.5)))
        .collect();
    let n = medians.len();
    if n < 4 {
        return None;
    }
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    for (i, a) in medians.iter().enumerate() {
        for b in &medians[i + 1..] {
            if b.0 != a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    if slopes.len() < 2 {
        return None;
    }
    slopes.sort_unstable_by(f64::total_cmp);
    let pairs = slopes.len() as f64;
    let nf = n as f64;
    // Variance of Kendall's S without ties; C is the half-width in ranks.
    let c = z * (nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0).sqrt();
    let lo = (((pairs - c) / 2.0).floor().max(0.0) as usize).min(slopes.len() - 1);
    let hi = (((pairs + c) / 2.0).ceil() as usize).min(slopes.len() - 1);
    Some((slopes[lo], slopes[hi]))
}

/// Seconds until a line starting at `current_value_estimate` with slope
/// `slope_per_s` reaches `limit`, in whichever direction it is heading (so
/// it serves ceilings like memory limits and floors like free disk space).
///
/// `Some(0.0)` when already at the limit; `None` when the line never reaches
/// it (flat, or moving away, which includes having crossed it already: a
/// caller alerting on a ceiling checks `current >= limit` first) or an input
/// is not finite.
pub fn time_to_limit(slope_per_s: f64, current_value_estimate: f64, limit: f64) -> Option<f64> {
    if !(slope_per_s.is_finite() && current_value_estimate.is_finite() && limit.is_finite()) {
        return None;
    }
    let gap = limit - current_value_estimate;
    if gap == 0.0 {
        return Some(0.0);
    }
    let secs = gap / slope_per_s;
    // Division by a zero slope gives ±inf; a negative time means moving away.
    (secs.is_finite() && secs > 0.0).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;
    const MIN_MS: i64 = 60_000;
    const HOUR_MS: i64 = 3_600_000;
    /// An arbitrary epoch-sized start so precision issues would show.
    const T0: i64 = 1_760_000_000_000;

    /// Memory of a leaking process: a linear leak, a GC sawtooth that climbs
    /// `saw_amp` over each `saw_period_ms` then drops, and uniform noise.
    fn leaking_memory(leak_per_h: f64, saw_amp: f64, saw_period_ms: i64, noise: f64, hours: i64) -> Vec<Sample> {
        let step = 15_000;
        let mut rng = fastrand::Rng::with_seed(42);
        (0..hours * HOUR_MS / step)
            .map(|i| {
                let dt = i * step;
                let leak = leak_per_h * dt as f64 / HOUR_MS as f64;
                // Offset the saw's phase so the window does not start at a GC.
                let phase = ((dt + 97_000) % saw_period_ms) as f64 / saw_period_ms as f64;
                let jitter = (rng.f64() * 2.0 - 1.0) * noise;
                Sample { t: T0 + dt, v: 800.0 * MIB + leak + saw_amp * phase + jitter }
            })
            .collect()
    }

    fn ols_slope_per_s(pts: &[Sample]) -> f64 {
        let n = pts.len() as f64;
        let mt = pts.iter().map(|p| ms_to_s(p.t - T0)).sum::<f64>() / n;
        let mv = pts.iter().map(|p| p.v).sum::<f64>() / n;
        let cov: f64 = pts.iter().map(|p| (ms_to_s(p.t - T0) - mt) * (p.v - mv)).sum();
        let var: f64 = pts.iter().map(|p| (ms_to_s(p.t - T0) - mt).powi(2)).sum();
        cov / var
    }

    #[test]
    fn recovers_leak_through_gc_sawtooth_and_noise() {
        let truth_per_s = 20.0 * MIB / 3600.0;
        for hours in [3, 6, 12] {
            let pts = leaking_memory(20.0 * MIB, 50.0 * MIB, 5 * MIN_MS, 5.0 * MIB, hours);
            let fit = theil_sen(&pts).unwrap();
            let rel = fit.slope_per_s / truth_per_s - 1.0;
            assert!(rel.abs() < 0.10, "{hours}h: slope {:.1} MiB/h vs 20: {rel:+.3}", fit.slope_per_s * 3600.0 / MIB);
            assert!(fit.rising_fraction > 0.55, "{hours}h: {fit:?}");
            assert_eq!(fit.exhaustive, pts.len() * (pts.len() - 1) / 2 <= MAX_PAIRS);
            // The level estimate sits mid-sawtooth near the true leak line.
            let line_end = 800.0 * MIB + 20.0 * MIB * hours as f64 + 25.0 * MIB;
            assert!((fit.value_at_anchor - line_end).abs() < 15.0 * MIB, "{hours}h: {fit:?}");
        }
    }

    #[test]
    fn sawtooth_without_leak_is_not_a_trend() {
        let pts = leaking_memory(0.0, 50.0 * MIB, 5 * MIN_MS, 5.0 * MIB, 6);
        let fit = theil_sen(&pts).unwrap();
        assert!(fit.slope_per_s.abs() * 3600.0 < 2.0 * MIB, "{fit:?}");
        assert!((fit.rising_fraction - 0.5).abs() < 0.05, "{fit:?}");
    }

    #[test]
    fn single_huge_outlier_does_not_move_the_slope() {
        let clean = leaking_memory(20.0 * MIB, 50.0 * MIB, 5 * MIN_MS, 5.0 * MIB, 2);
        let mut dirty = clean.clone();
        let mid = dirty.len() / 2;
        dirty[mid].v = 1e15; // a scrape glitch of ~1 PB
        let (c, d) = (theil_sen(&clean).unwrap(), theil_sen(&dirty).unwrap());
        let moved = (d.slope_per_s - c.slope_per_s).abs() / c.slope_per_s;
        assert!(moved < 0.01, "clean {c:?} dirty {d:?}");
        // Least squares is thrown off by orders of magnitude by that point,
        // so this test would notice a non-robust estimator.
        assert!(ols_slope_per_s(&dirty) > 100.0 * c.slope_per_s);
    }

    #[test]
    fn exact_line_gives_exact_slope_intercept_and_full_agreement() {
        let pts: Vec<Sample> = (0..50).map(|i| Sample { t: T0 + i * 10_000, v: 3.0 + 0.5 * i as f64 * 10.0 }).collect();
        let fit = theil_sen(&pts).unwrap();
        assert!((fit.slope_per_s - 0.5).abs() < 1e-9, "{fit:?}");
        assert_eq!(fit.anchor_ms, T0 + 490_000);
        assert!((fit.value_at_anchor - 248.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.value_at(T0) - 3.0).abs() < 1e-6);
        assert_eq!(fit.agreement(), 1.0);
        assert_eq!((fit.slope_p25_per_s, fit.slope_p75_per_s), (fit.slope_per_s, fit.slope_per_s));
    }

    #[test]
    fn subsampling_is_deterministic() {
        let pts = leaking_memory(20.0 * MIB, 50.0 * MIB, 5 * MIN_MS, 5.0 * MIB, 12);
        let (a, b) = (theil_sen(&pts).unwrap(), theil_sen(&pts).unwrap());
        assert!(!a.exhaustive);
        assert_eq!(a.pairs, MAX_PAIRS);
        assert_eq!(a, b);
    }

    #[test]
    fn degenerate_input_is_an_error() {
        let one = [Sample { t: T0, v: 1.0 }, Sample { t: T0 + 1, v: f64::NAN }];
        assert_eq!(theil_sen(&one), Err(AnalysisError::TooFewPoints { have: 1, need: 2 }));
        let same_t = [Sample { t: T0, v: 1.0 }, Sample { t: T0, v: 2.0 }];
        assert_eq!(theil_sen(&same_t), Err(AnalysisError::NoTimeSpan { points: 2 }));
    }

    #[test]
    fn time_to_limit_projects_in_the_direction_of_travel() {
        assert_eq!(time_to_limit(2.0, 10.0, 30.0), Some(10.0));
        assert_eq!(time_to_limit(-2.0, 30.0, 10.0), Some(10.0));
        assert_eq!(time_to_limit(2.0, 30.0, 10.0), None);
        assert_eq!(time_to_limit(0.0, 10.0, 30.0), None);
        assert_eq!(time_to_limit(1.0, 30.0, 30.0), Some(0.0));
        assert_eq!(time_to_limit(f64::NAN, 10.0, 30.0), None);
    }

    #[test]
    fn slope_interval_is_tight_for_a_clear_leak_and_straddles_zero_for_noise() {
        let leak: Vec<Sample> = (0..360)
            .map(|i| {
                let t = i * 15_000;
                // 40 units/h plus a 10-min sawtooth of amplitude 30.
                Sample { t, v: 1000.0 + 40.0 * t as f64 / 3.6e6 + 30.0 * ((i % 40) as f64 / 40.0) }
            })
            .collect();
        let (lo, hi) = slope_interval(&leak, 12, 2.58).unwrap();
        assert!(lo * 3600.0 > 20.0 && hi * 3600.0 < 80.0, "{} {}", lo * 3600.0, hi * 3600.0);
        let mut rng = fastrand::Rng::with_seed(7);
        let noise: Vec<Sample> = (0..360).map(|i| Sample { t: i * 15_000, v: 1000.0 + rng.f64() * 50.0 }).collect();
        let (lo, hi) = slope_interval(&noise, 12, 2.58).unwrap();
        assert!(lo < 0.0 && hi > 0.0, "{lo} {hi}");
        assert_eq!(slope_interval(&noise[..2], 12, 2.58), None);
    }
}
