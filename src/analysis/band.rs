//! The "normal band" that `ratio` and `anomaly` rules compare a value with:
//! either fixed by the rule (e.g. 0.3–0.7) or learned from baseline values
//! as median ± k·(robust sigma), and the verdict for one value: inside or
//! which side, by how much, and how many robust sigmas from normal.
//!
//! A learned band is robust to the incident itself: when the baseline window
//! overlaps the incident (it started an hour ago, the baseline is the last
//! six hours), the median and MAD still describe the normal state as long as
//! less than half the baseline is affected, where a mean ± k·stddev band
//! would widen around the incident and swallow it. The band also has a
//! minimum width, because a perfectly flat baseline has a MAD of 0 and would
//! otherwise make every wiggle an infinitely unusual anomaly.

use crate::analysis::error::AnalysisError;
use crate::analysis::robust::robust_scale;

/// How a band is learned from baseline values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandParams {
    /// Half-width in robust sigmas (3 ≈ 99.7% of normally distributed data).
    pub k: f64,
    /// Minimum half-width in value units.
    pub min_half_width: f64,
    /// Minimum half-width as a fraction of |median| (scale-free, so one
    /// default suits bytes and ratios alike).
    pub min_rel_half_width: f64,
    /// Fewer finite baseline values than this is an error: a band from a
    /// handful of samples would fire on noise.
    pub min_points: usize,
}

impl Default for BandParams {
    fn default() -> Self {
        BandParams { k: 3.0, min_half_width: 0.0, min_rel_half_width: 0.05, min_points: 10 }
    }
}

/// A range of normal values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    pub lower: f64,
    pub upper: f64,
    /// The typical value: the baseline median, or a fixed band's midpoint
    /// (its finite edge if one-sided).
    pub center: f64,
    /// Robust sigma behind a learned band, after the minimum width is applied
    /// (half-width / k), so reported sigmas agree with the band's edges.
    /// `None` for fixed bands, which have no notion of spread.
    pub sigma: Option<f64>,
}

/// Where a value lies relative to a band.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Below,
    Inside,
    Above,
}

/// The evaluation of one value against a band.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandVerdict {
    pub side: Side,
    /// Distance beyond the nearest edge (≥ 0; 0 when inside).
    pub excess: f64,
    /// Signed distance from the center in robust sigmas (learned bands only).
    pub sigmas: Option<f64>,
}

impl Band {
    /// A band fixed by the rule. Either edge may be infinite for a one-sided
    /// band ("ratio below 0.8": `fixed(f64::NEG_INFINITY, 0.8)`).
    pub fn fixed(lower: f64, upper: f64) -> Result<Band, AnalysisError> {
        if lower.is_nan() || upper.is_nan() || lower > upper {
            return Err(AnalysisError::invalid("band", format!("[{lower}, {upper}]"), "need lower <= upper"));
        }
        let center = match (lower.is_finite(), upper.is_finite()) {
            (true, true) => lower + (upper - lower) / 2.0,
            (true, false) => lower,
            (false, true) => upper,
            (false, false) => 0.0,
        };
        Ok(Band { lower, upper, center, sigma: None })
    }

    /// Learns median ± max(k·sigma, minimum width) from `baseline`
    /// (non-finite values ignored).
    pub fn learn(baseline: &[f64], params: &BandParams) -> Result<Band, AnalysisError> {
        if !(params.k.is_finite() && params.k > 0.0) {
            return Err(AnalysisError::invalid("k", params.k, "must be a positive number"));
        }
        if !(params.min_half_width >= 0.0 && params.min_rel_half_width >= 0.0) {
            return Err(AnalysisError::invalid("min_half_width", params.min_half_width, "minimum widths must be >= 0"));
        }
        let have = baseline.iter().filter(|v| v.is_finite()).count();
        let need = params.min_points.max(1);
        let scale = robust_scale(baseline).filter(|_| have >= need);
        let Some(scale) = scale else { return Err(AnalysisError::TooFewPoints { have, need }) };
        let floor = params.min_half_width.max(params.min_rel_half_width * scale.center.abs());
        let half = (params.k * scale.sigma).max(floor);
        Ok(Band {
            lower: scale.center - half,
            upper: scale.center + half,
            center: scale.center,
            sigma: Some(half / params.k),
        })
    }

    /// Where `value` lies; `None` for a non-finite value (a stale or 0/0
    /// sample is no evidence either way).
    pub fn evaluate(&self, value: f64) -> Option<BandVerdict> {
        if !value.is_finite() {
            return None;
        }
        let (side, excess) = if value > self.upper {
            (Side::Above, value - self.upper)
        } else if value < self.lower {
            (Side::Below, self.lower - value)
        } else {
            (Side::Inside, 0.0)
        };
        // A zero sigma only arises from zero minimum widths on a flat
        // baseline; infinity is then the honest answer off-center.
        let sigmas = self.sigma.map(|s| {
            let d = value - self.center;
            if s > 0.0 {
                d / s
            } else if d == 0.0 {
                0.0
            } else {
                d.signum() * f64::INFINITY
            }
        });
        Some(BandVerdict { side, excess, sigmas })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic roughly normal noise (sum of 4 uniforms, sd ≈ `sd`).
    fn noisy(rng: &mut fastrand::Rng, center: f64, sd: f64) -> f64 {
        let u: f64 = (0..4).map(|_| rng.f64()).sum::<f64>() - 2.0;
        center + u * sd * (3.0f64).sqrt()
    }

    /// Out/in ratio baseline: normal 0.5, and an incident at 1.0 covering
    /// the last `incident_frac` of the window.
    fn ratio_baseline(n: usize, incident_frac: f64) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(11);
        let start = ((1.0 - incident_frac) * n as f64) as usize;
        (0..n).map(|i| if i >= start { noisy(&mut rng, 1.0, 0.03) } else { noisy(&mut rng, 0.5, 0.03) }).collect()
    }

    #[test]
    fn band_stays_on_normal_despite_incident_in_baseline() {
        let base = ratio_baseline(1000, 0.30);
        let band = Band::learn(&base, &BandParams::default()).unwrap();
        assert!((band.center - 0.5).abs() < 0.03, "{band:?}");
        assert!(band.lower > 0.3 && band.upper < 0.7, "{band:?}");
        let v = band.evaluate(1.0).unwrap();
        assert_eq!(v.side, Side::Above);
        assert!(v.sigmas.unwrap() > 6.0, "{v:?}");
        assert_eq!(band.evaluate(0.52).unwrap().side, Side::Inside);
        assert_eq!(band.evaluate(0.1).unwrap().side, Side::Below);

        // The naive mean ± 3·sd band over the same data swallows the incident:
        // this is what the robust band is for.
        let mean = base.iter().sum::<f64>() / base.len() as f64;
        let sd = (base.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / base.len() as f64).sqrt();
        assert!(mean + 3.0 * sd > 1.0);
    }

    #[test]
    fn sigma_tracks_the_noise() {
        let band =
            Band::learn(&ratio_baseline(2000, 0.0), &BandParams { min_rel_half_width: 0.0, ..Default::default() })
                .unwrap();
        let sigma = band.sigma.unwrap();
        assert!((sigma / 0.03 - 1.0).abs() < 0.1, "sigma {sigma}");
    }

    #[test]
    fn flat_baseline_gets_a_minimum_width() {
        let flat = [0.5; 100];
        let band = Band::learn(&flat, &BandParams::default()).unwrap();
        assert!((band.upper - 0.525).abs() < 1e-12 && (band.lower - 0.475).abs() < 1e-12, "{band:?}");
        let wiggle = band.evaluate(0.51).unwrap();
        assert_eq!(wiggle.side, Side::Inside);
        assert!(wiggle.sigmas.unwrap().is_finite());
        let abs = BandParams { min_half_width: 0.2, ..BandParams::default() };
        assert!((Band::learn(&flat, &abs).unwrap().upper - 0.7).abs() < 1e-12);
        // With no floor at all the band collapses and any change is infinite.
        let none = BandParams { min_rel_half_width: 0.0, ..BandParams::default() };
        let collapsed = Band::learn(&flat, &none).unwrap();
        assert_eq!(collapsed.evaluate(0.51).unwrap().sigmas, Some(f64::INFINITY));
    }

    #[test]
    fn fixed_bands_and_errors() {
        let b = Band::fixed(0.3, 0.7).unwrap();
        assert_eq!(b.evaluate(1.0).unwrap().side, Side::Above);
        assert!((b.evaluate(1.0).unwrap().excess - 0.3).abs() < 1e-12);
        assert_eq!(b.evaluate(0.5).unwrap(), BandVerdict { side: Side::Inside, excess: 0.0, sigmas: None });
        assert_eq!(b.evaluate(f64::NAN), None);
        let ceiling = Band::fixed(f64::NEG_INFINITY, 0.8).unwrap();
        assert_eq!(ceiling.evaluate(-1e9).unwrap().side, Side::Inside);
        assert!(Band::fixed(0.7, 0.3).is_err());
        assert!(Band::fixed(f64::NAN, 0.3).is_err());
        assert_eq!(
            Band::learn(&[1.0, f64::NAN, 2.0], &BandParams::default()),
            Err(AnalysisError::TooFewPoints { have: 2, need: 10 })
        );
        assert!(Band::learn(&[1.0; 20], &BandParams { k: 0.0, ..BandParams::default() }).is_err());
    }
}
