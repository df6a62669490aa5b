//! The *usual range* of a series: the values its own recent past regularly
//! took, from the `TAIL` quantile to the `1 - TAIL` quantile (1.5 % and
//! 98.5 %), widened by a margin. `anomaly` and learned `ratio` rules fire only beyond it.
//!
//! Why quantile edges and not median ± k·MAD: MAD describes the middle half
//! of the data only. A series with an hourly batch job (three samples at
//! 45–73 against a median of 31) has a MAD band of about 25–37, so every
//! batch run is "anomalous", twelve times a day. Its 99th percentile over a
//! day already includes the batch runs: a value is unusual when the recent
//! past did not reach it even 1.5 % of the time. The margin beyond the edges
//! is `k` times the distance from the median to the farther edge, so it
//! scales with the series' own spread whatever its units; a series whose
//! edges coincide (flat, or mostly zeros) falls back to half its full range
//! or half its level, so a perfectly flat line does not fire on its first
//! wobble while a counter of errors that was always 0 does fire on 1.

use crate::analysis::band::{Band, Side};
use crate::analysis::error::AnalysisError;

/// Share of the baseline allowed beyond each edge: a value reached at least
/// this often in the baseline is usual.
pub const TAIL: f64 = 0.015;

/// A learned usual range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UsualRange {
    /// The `TAIL` and `1 - TAIL` quantiles of the baseline.
    pub low: f64,
    pub high: f64,
    pub median: f64,
    /// The edges beyond which a value is unusual (low/high minus/plus the margin).
    pub lower: f64,
    pub upper: f64,
    /// The spread unit of the margin (median to the farther edge, or the fallback).
    pub scale: f64,
    /// Baseline values the range was learned from.
    pub points: usize,
}

impl UsualRange {
    /// Learns the range from baseline values (non-finite values ignored).
    /// `k` is the margin beyond the edges, in units of `scale`.
    pub fn learn(values: &mut Vec<f64>, k: f64, min_points: usize) -> Result<UsualRange, AnalysisError> {
        if !(k.is_finite() && k >= 0.0) {
            return Err(AnalysisError::invalid("sensitivity", k, "must be a number >= 0"));
        }
        values.retain(|v| v.is_finite());
        let need = min_points.max(2);
        if values.len() < need {
            return Err(AnalysisError::TooFewPoints { have: values.len(), need });
        }
        values.sort_unstable_by(f64::total_cmp);
        let q = |p: f64| sorted_quantile(values, p);
        let (low, high, median) = (q(TAIL), q(1.0 - TAIL), q(0.5));
        let mut scale = (high - median).max(median - low);
        if scale <= 0.0 {
            let full = values[values.len() - 1] - values[0];
            scale = 0.5 * full.max(median.abs());
        }
        Ok(UsualRange {
            low,
            high,
            median,
            lower: low - k * scale,
            upper: high + k * scale,
            scale,
            points: values.len(),
        })
    }

    /// The range that flags a value when either `self` or `other` flags it
    /// (a value must be usual for the recent past *and* for this time of day).
    pub fn intersect(&self, other: &UsualRange) -> UsualRange {
        UsualRange {
            low: self.low.max(other.low),
            high: self.high.min(other.high),
            median: other.median,
            lower: self.lower.max(other.lower),
            upper: self.upper.min(other.upper),
            scale: self.scale.min(other.scale),
            points: self.points + other.points,
        }
    }

    /// Where `x` lies against the edges; `None` for a non-finite value.
    pub fn side(&self, x: f64) -> Option<Side> {
        if !x.is_finite() {
            None
        } else if x > self.upper {
            Some(Side::Above)
        } else if x < self.lower {
            Some(Side::Below)
        } else {
            Some(Side::Inside)
        }
    }

    /// Whether `x` is back within what the baseline itself did (between the
    /// quantile edges, without the margin): the test for "recovered".
    pub fn within_edges(&self, x: f64) -> bool {
        x >= self.low.min(self.high) && x <= self.high.max(self.low)
    }

    /// How far `x` is from the median, in units of `scale` (signed; 0 when
    /// the scale is 0 and `x` is the median; infinite beyond a zero scale).
    pub fn deviation(&self, x: f64) -> f64 {
        let d = x - self.median;
        if self.scale > 0.0 {
            d / self.scale
        } else if d == 0.0 {
            0.0
        } else {
            d.signum() * f64::INFINITY
        }
    }

    /// The range as a [`Band`] (lower/upper edges, median as center).
    pub fn band(&self) -> Band {
        Band { lower: self.lower, upper: self.upper, center: self.median, sigma: Some(self.scale) }
    }
}

/// Linear interpolation between closest ranks of sorted, finite values.
fn sorted_quantile(sorted: &[f64], p: f64) -> f64 {
    let rank = p * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let w = rank - lo as f64;
    sorted[lo] * (1.0 - w) + sorted[hi] * w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_bursts_are_inside_the_usual_range() {
        // A day at 5 min: level ~31 with an hourly batch job of 3 samples at 45–73.
        let mut v: Vec<f64> =
            (0..288).map(|i| if i % 12 < 3 { 45.0 + (i % 29) as f64 } else { 28.0 + (i % 7) as f64 }).collect();
        let r = UsualRange::learn(&mut v, 0.6, 20).unwrap();
        assert_eq!(r.side(73.0), Some(Side::Inside), "{r:?}");
        assert_eq!(r.side(31.0), Some(Side::Inside));
        assert_eq!(r.side(140.0), Some(Side::Above), "{r:?}");
        // The MAD band of the same data would call every batch run anomalous.
        let mad = crate::analysis::Band::learn(&v, &crate::analysis::BandParams { k: 4.0, ..Default::default() });
        assert_eq!(mad.unwrap().evaluate(60.0).unwrap().side, Side::Above);
    }

    #[test]
    fn flat_and_mostly_zero_series_have_a_usable_scale() {
        let mut flat = vec![20.0; 300];
        let r = UsualRange::learn(&mut flat, 0.6, 20).unwrap();
        assert_eq!(r.side(20.5), Some(Side::Inside), "{r:?}");
        assert_eq!(r.side(40.0), Some(Side::Above));
        let mut zeros: Vec<f64> = (0..300).map(|i| if i == 17 { 4.0 } else { 0.0 }).collect();
        let r = UsualRange::learn(&mut zeros, 0.6, 20).unwrap();
        assert_eq!(r.side(1.0), Some(Side::Inside), "one earlier 4 makes small counts usual: {r:?}");
        assert_eq!(r.side(9.0), Some(Side::Above));
        let mut all_zero = vec![0.0; 300];
        let r = UsualRange::learn(&mut all_zero, 0.6, 20).unwrap();
        assert_eq!(r.side(1.0), Some(Side::Above), "a count that was always 0 and is not");
        assert!(r.deviation(1.0).is_infinite());
    }

    #[test]
    fn too_few_points_is_an_error_and_non_finite_is_ignored() {
        let mut v = vec![1.0, f64::NAN, 2.0];
        assert_eq!(UsualRange::learn(&mut v, 0.6, 20), Err(AnalysisError::TooFewPoints { have: 2, need: 20 }));
        let mut v: Vec<f64> = (0..100).map(f64::from).collect();
        let r = UsualRange::learn(&mut v, 0.0, 20).unwrap();
        assert!((r.high - 97.515).abs() < 1e-9 && (r.low - 1.485).abs() < 1e-9, "{r:?}");
        assert_eq!(r.side(f64::NAN), None);
    }

    #[test]
    fn intersect_flags_what_either_flags() {
        let mut recent: Vec<f64> = (0..200).map(|i| (i % 50) as f64).collect();
        let mut phase: Vec<f64> = (0..100).map(|i| (i % 10) as f64).collect();
        let a = UsualRange::learn(&mut recent, 0.6, 20).unwrap();
        let b = UsualRange::learn(&mut phase, 0.6, 20).unwrap();
        let both = a.intersect(&b);
        assert_eq!(a.side(30.0), Some(Side::Inside));
        assert_eq!(both.side(30.0), Some(Side::Above), "unusual for this time of day");
    }
}
