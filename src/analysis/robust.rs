//! Order statistics that tolerate contamination: median, quantiles, the
//! median absolute deviation (MAD) and the robust z-score built from them.
//! Every other file of `analysis` measures "typical" and "spread" through
//! these, because a baseline that contains part of an incident (or a scrape
//! glitch) must still describe the normal state: the median and MAD break
//! down only when half the data is bad, the mean and standard deviation with
//! a single bad point.
//!
//! Non-finite values are skipped: NaN is how the store marks staleness and
//! how a ratio reports 0/0, and an infinity would turn every difference into
//! NaN. Empty input (or input with nothing finite) gives `None`.

/// Multiplier that turns a MAD into an estimate of the standard deviation of
/// normally distributed data (1 / Φ⁻¹(3/4)), so thresholds can be written in
/// the familiar "sigmas".
pub const MAD_TO_SIGMA: f64 = 1.4826;

/// Same role as [`MAD_TO_SIGMA`] for the mean absolute deviation (√(π/2)):
/// the fallback scale when more than half of the values are identical.
const MEAN_AD_TO_SIGMA: f64 = 1.2533;

/// Copies the finite values; the order statistics below work in place on the
/// copy so the caller's slice is never reordered.
fn finite(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| v.is_finite()).collect()
}

/// The `q` quantile (linear interpolation between closest ranks, the
/// "type 7" definition used by most tools) of a non-empty buffer of finite
/// values, reordering the buffer. O(n) by selection instead of sorting,
/// since slope fits call this on up to [`crate::analysis::MAX_PAIRS`] values.
pub(crate) fn quantile_in_place(buf: &mut [f64], q: f64) -> f64 {
    debug_assert!(!buf.is_empty() && (0.0..=1.0).contains(&q));
    let h = (buf.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let frac = h - lo as f64;
    let (_, &mut lo_v, right) = buf.select_nth_unstable_by(lo, f64::total_cmp);
    if frac == 0.0 || right.is_empty() {
        return lo_v;
    }
    // After selection everything right of `lo` is >= it, so the next order
    // statistic is simply the minimum of that side.
    let hi_v = right.iter().copied().fold(f64::INFINITY, f64::min);
    lo_v + frac * (hi_v - lo_v)
}

/// Median of the finite values.
pub fn median(values: &[f64]) -> Option<f64> {
    quantile(values, 0.5)
}

/// The `q` quantile (0 ≤ q ≤ 1) of the finite values, interpolated linearly
/// between ranks. `None` when nothing is finite or `q` is outside [0, 1].
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut buf = finite(values);
    (!buf.is_empty()).then(|| quantile_in_place(&mut buf, q))
}

/// Median absolute deviation from the median, unscaled.
pub fn mad(values: &[f64]) -> Option<f64> {
    let mut buf = finite(values);
    if buf.is_empty() {
        return None;
    }
    let m = quantile_in_place(&mut buf, 0.5);
    Some(mad_around(&mut buf, m))
}

/// MAD scaled by [`MAD_TO_SIGMA`]: a standard-deviation estimate that a
/// minority of outliers cannot inflate.
pub fn mad_sigma(values: &[f64]) -> Option<f64> {
    mad(values).map(|m| m * MAD_TO_SIGMA)
}

fn mad_around(buf: &mut [f64], center: f64) -> f64 {
    for v in buf.iter_mut() {
        *v = (*v - center).abs();
    }
    quantile_in_place(buf, 0.5)
}

/// A robust location and scale of a set of values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RobustScale {
    /// The median.
    pub center: f64,
    /// Standard-deviation estimate: the scaled MAD, or the scaled mean
    /// absolute deviation when the MAD is 0; 0 only when all values are equal.
    pub sigma: f64,
    /// How many finite values the estimate rests on.
    pub n: usize,
}

impl RobustScale {
    /// Robust z-score of `x`: signed distance from the center in sigmas.
    /// With `sigma == 0` (a perfectly constant baseline) any deviation is
    /// infinitely unusual and equality is 0; callers that want a tolerance
    /// for that case use [`crate::analysis::Band`], which has a minimum width.
    /// NaN for a NaN `x`.
    pub fn z(&self, x: f64) -> f64 {
        let d = x - self.center;
        if self.sigma > 0.0 {
            d / self.sigma
        } else if d == 0.0 {
            0.0
        } else {
            d.signum() * f64::INFINITY
        }
    }
}

/// Median and robust sigma of the finite values in one pass of copying.
///
/// When more than half of the values are identical the MAD is 0 even though
/// the data does vary (e.g. a mostly idle queue depth); the mean absolute
/// deviation from the median then stands in, so the scale reflects the
/// variation that exists instead of declaring every other value infinitely
/// far away.
pub fn robust_scale(values: &[f64]) -> Option<RobustScale> {
    let mut buf = finite(values);
    if buf.is_empty() {
        return None;
    }
    let n = buf.len();
    let center = quantile_in_place(&mut buf, 0.5);
    let m = mad_around(&mut buf, center);
    let sigma = if m > 0.0 {
        m * MAD_TO_SIGMA
    } else {
        // `buf` now holds absolute deviations, in some order.
        buf.iter().sum::<f64>() / n as f64 * MEAN_AD_TO_SIGMA
    };
    Some(RobustScale { center, sigma, n })
}

/// Robust z-score of `x` against `baseline` (see [`RobustScale::z`]).
/// `None` when `x` is not finite or the baseline has no finite value.
pub fn robust_z(x: f64, baseline: &[f64]) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    robust_scale(baseline).map(|s| s.z(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_quantiles_ignore_nan_and_interpolate() {
        let v = [f64::NAN, 4.0, 1.0, f64::INFINITY, 3.0, 2.0, f64::NAN];
        assert_eq!(median(&v), Some(2.5));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&v, 0.25), Some(1.75));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(quantile(&v, 1.5), None);
        assert_eq!(quantile(&v, f64::NAN), None);
    }

    #[test]
    fn empty_or_all_nan_is_none() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, f64::NAN]), None);
        assert_eq!(mad(&[]), None);
        assert_eq!(robust_scale(&[f64::NAN]), None);
        assert_eq!(robust_z(1.0, &[]), None);
    }

    #[test]
    fn mad_is_scaled_and_shrugs_off_outliers() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1e9];
        // median 4, deviations 3,2,1,0,1,2,~1e9 -> MAD 2.
        assert_eq!(median(&v), Some(4.0));
        assert_eq!(mad(&v), Some(2.0));
        assert!((mad_sigma(&v).unwrap() - 2.0 * MAD_TO_SIGMA).abs() < 1e-12);
        let z = robust_z(10.0, &v).unwrap();
        assert!((z - 6.0 / (2.0 * MAD_TO_SIGMA)).abs() < 1e-12, "z = {z}");
    }

    #[test]
    fn scale_falls_back_when_most_values_are_equal() {
        let v = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 10.0];
        let s = robust_scale(&v).unwrap();
        assert_eq!(s.center, 0.0);
        assert!((s.sigma - 15.0 / 8.0 * MEAN_AD_TO_SIGMA).abs() < 1e-12, "{s:?}");
        let flat = robust_scale(&[3.0; 5]).unwrap();
        assert_eq!(flat.sigma, 0.0);
        assert_eq!(flat.z(3.0), 0.0);
        assert_eq!(flat.z(3.1), f64::INFINITY);
        assert_eq!(flat.z(2.9), f64::NEG_INFINITY);
    }
}
