//! Seasonality: comparing a series with itself one or more periods earlier
//! (a day for traffic-driven series, a week for weekday effects).
//!
//! Two consumers need this. `anomaly` rules compare "now" with the same time
//! of day in previous periods instead of with the last hour, so the morning
//! ramp is not an anomaly every morning ([`seasonal_baseline`],
//! [`detrend_by_season`]). `trend` rules need to tell a leak from a daily
//! cycle: over a long window a cycle averages out of a Theil–Sen slope, but
//! right after a restart the window is short (say 2 h) and the morning ramp
//! looks exactly like a leak. [`slope_explained_by_season`] asks whether the
//! series rose the same way over the same hours one period earlier.
//!
//! Samples are expected oldest first, as the store returns them.

use crate::analysis::error::AnalysisError;
use crate::analysis::robust::median;
use crate::analysis::slope::theil_sen;
use crate::store::Sample;

/// One day in milliseconds, the usual period.
pub const DAY_MS: i64 = 86_400_000;

/// Samples with `from <= t <= to`, by binary search on the sorted slice.
fn in_range(points: &[Sample], from: i64, to: i64) -> &[Sample] {
    let lo = points.partition_point(|p| p.t < from);
    let hi = points.partition_point(|p| p.t <= to);
    &points[lo..hi.max(lo)]
}

fn check_period(period_ms: i64, half_window_ms: i64) -> Result<(), AnalysisError> {
    if period_ms <= 0 {
        return Err(AnalysisError::invalid("period_ms", period_ms, "must be positive"));
    }
    // Windows wider than the period would count one sample in two phases.
    if half_window_ms < 0 || half_window_ms.saturating_mul(2) >= period_ms {
        return Err(AnalysisError::invalid("half_window_ms", half_window_ms, "must be >= 0 and under half the period"));
    }
    Ok(())
}

/// Finite values at the same phase as `now_ms` in up to `max_periods`
/// previous periods: every sample within `half_window_ms` of
/// `now_ms - k·period_ms` for k = 1, 2, …. The window gives each period
/// several samples, so scrape jitter does not decide which one counts, and
/// the caller takes a median/MAD (see [`crate::analysis::Band`]) of the lot.
///
/// Empty when the data does not reach back one period.
pub fn seasonal_baseline(
    points: &[Sample],
    period_ms: i64,
    now_ms: i64,
    half_window_ms: i64,
    max_periods: usize,
) -> Result<Vec<f64>, AnalysisError> {
    check_period(period_ms, half_window_ms)?;
    let Some(first) = points.first() else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    // Saturating: usize::MAX means "as far back as the data goes".
    for k in 1..=i64::try_from(max_periods).unwrap_or(i64::MAX) {
        let center = now_ms.saturating_sub(k.saturating_mul(period_ms));
        if center.saturating_add(half_window_ms) < first.t {
            break;
        }
        let window = in_range(points, center - half_window_ms, center + half_window_ms);
        out.extend(window.iter().map(|p| p.v).filter(|v| v.is_finite()));
    }
    Ok(out)
}

/// Each sample minus the median of its [`seasonal_baseline`]: what is left
/// once "what this time of day usually looks like" is removed. Samples with
/// no earlier period to compare against (the first period of data) or a
/// non-finite value are left out rather than guessed.
///
/// Note that a steady linear trend survives this only as a constant offset
/// (slope·period per period of lag), not as a slope: look at the level of
/// the residuals, not their slope, to see growth across periods.
pub fn detrend_by_season(
    points: &[Sample],
    period_ms: i64,
    half_window_ms: i64,
    max_periods: usize,
) -> Result<Vec<Sample>, AnalysisError> {
    check_period(period_ms, half_window_ms)?;
    let mut out = Vec::new();
    for p in points.iter().filter(|p| p.v.is_finite()) {
        let base = seasonal_baseline(points, period_ms, p.t, half_window_ms, max_periods)?;
        if let Some(m) = median(&base) {
            out.push(Sample { t: p.t, v: p.v - m });
        }
    }
    Ok(out)
}

/// How [`slope_explained_by_season`] compares a window with earlier periods.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeasonalCheck {
    /// The season's length (usually [`DAY_MS`], or 7 days).
    pub period_ms: i64,
    /// How many earlier periods to look at; the median of their slopes is
    /// the reference, so one odd day (an incident, a holiday) cannot decide.
    pub periods: usize,
    /// Allowed |today − reference| as a fraction of the larger of the two
    /// slopes' magnitudes.
    pub rel_tolerance: f64,
    /// Allowed |today − reference| regardless of magnitude, per second: set it
    /// to the smallest slope the rule cares about, so near the top of a cycle
    /// (both slopes ≈ 0) noise is not "unexplained".
    pub abs_tolerance_per_s: f64,
    /// An earlier window counts only if its samples span at least this
    /// fraction of the window (gaps in the data) and it holds 3 samples.
    pub min_coverage: f64,
}

impl Default for SeasonalCheck {
    fn default() -> Self {
        SeasonalCheck {
            period_ms: DAY_MS,
            periods: 3,
            rel_tolerance: 0.25,
            abs_tolerance_per_s: 0.0,
            min_coverage: 0.5,
        }
    }
}

/// The verdict of [`slope_explained_by_season`].
#[derive(Clone, Debug, PartialEq)]
pub struct SeasonalExplanation {
    /// Theil–Sen slope over the window itself.
    pub slope_per_s: f64,
    /// Slopes over the same window shifted back 1, 2, … periods, for those
    /// periods with usable data (nearest period first).
    pub previous_slopes_per_s: Vec<f64>,
    /// Median of `previous_slopes_per_s`; `None` when no earlier period was
    /// usable, in which case nothing is explained.
    pub reference_slope_per_s: Option<f64>,
    /// `slope_per_s − reference`: the part of today's slope the season does
    /// not account for (a leak rule can compare this with its threshold).
    pub excess_slope_per_s: Option<f64>,
    /// Whether the excess is within the tolerances.
    pub explained: bool,
}

/// Whether the slope over `[window_start_ms, window_end_ms]` matches the
/// slope over the same hours in earlier periods, i.e. whether it is the
/// season's doing rather than a trend of its own.
///
/// `points` should reach back `check.periods` periods and should not be cut
/// at restarts (the earlier periods are the point); instead pass restart
/// times in `restarts_ms` (e.g. the timestamps of [`crate::analysis::detect_drops`]
/// cuts): an earlier window containing one is skipped, since a drop inside
/// it would make its slope meaningless. A restart at the start of today's
/// window is expected (that is usually why the window is short).
///
/// Errors when the window itself has too few samples for a slope, or on
/// invalid parameters.
pub fn slope_explained_by_season(
    points: &[Sample],
    window_start_ms: i64,
    window_end_ms: i64,
    restarts_ms: &[i64],
    check: &SeasonalCheck,
) -> Result<SeasonalExplanation, AnalysisError> {
    let span = window_end_ms.saturating_sub(window_start_ms);
    if span <= 0 || span >= check.period_ms {
        return Err(AnalysisError::invalid("window", span, "window must be non-empty and shorter than the period"));
    }
    check_period(check.period_ms, 0)?;
    if !(check.rel_tolerance >= 0.0 && check.abs_tolerance_per_s >= 0.0) {
        return Err(AnalysisError::invalid("tolerance", check.rel_tolerance, "tolerances must be >= 0"));
    }

    let today = theil_sen(in_range(points, window_start_ms, window_end_ms))?;
    let min_span = (span as f64 * check.min_coverage) as i64;
    let previous_slopes_per_s: Vec<f64> = (1..=check.periods as i64)
        .filter_map(|k| {
            let shift = k.saturating_mul(check.period_ms);
            let (from, to) = (window_start_ms.saturating_sub(shift), window_end_ms.saturating_sub(shift));
            if restarts_ms.iter().any(|&r| r > from && r <= to) {
                return None;
            }
            let w = in_range(points, from, to);
            let covered = w.len() >= 3 && w[w.len() - 1].t - w[0].t >= min_span;
            covered.then(|| theil_sen(w).ok().map(|f| f.slope_per_s)).flatten()
        })
        .collect();

    let reference_slope_per_s = median(&previous_slopes_per_s);
    let excess_slope_per_s = reference_slope_per_s.map(|r| today.slope_per_s - r);
    let explained = match (reference_slope_per_s, excess_slope_per_s) {
        (Some(r), Some(e)) => {
            let scale = today.slope_per_s.abs().max(r.abs());
            e.abs() <= check.rel_tolerance * scale + check.abs_tolerance_per_s
        }
        _ => false,
    };
    Ok(SeasonalExplanation {
        slope_per_s: today.slope_per_s,
        previous_slopes_per_s,
        reference_slope_per_s,
        excess_slope_per_s,
        explained,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;
    const HOUR_MS: i64 = 3_600_000;
    const T0: i64 = 1_760_000_000_000;

    /// `days` of 1-minute samples of a daily sine (amplitude `amp`) around
    /// 1 GiB plus uniform noise, starting at T0.
    fn daily_sine(days: i64, amp: f64, noise: f64) -> Vec<Sample> {
        let mut rng = fastrand::Rng::with_seed(7);
        (0..days * DAY_MS / 60_000)
            .map(|i| {
                let dt = i * 60_000;
                let phase = std::f64::consts::TAU * dt as f64 / DAY_MS as f64;
                Sample { t: T0 + dt, v: 1024.0 * MIB + amp * phase.sin() + (rng.f64() * 2.0 - 1.0) * noise }
            })
            .collect()
    }

    fn leak_check() -> SeasonalCheck {
        // Care about slopes of 5 MiB/h and up.
        SeasonalCheck { abs_tolerance_per_s: 5.0 * MIB / 3600.0, ..SeasonalCheck::default() }
    }

    #[test]
    fn daily_sine_in_short_windows_is_explained_at_every_phase() {
        let pts = daily_sine(4, 200.0 * MIB, 5.0 * MIB);
        let mut seen_steep = false;
        // Window ends every 40 minutes through the last day (all phases).
        for j in 0..33 {
            let end = T0 + 3 * DAY_MS + 2 * HOUR_MS + j * 40 * 60_000;
            let start = end - 2 * HOUR_MS;
            // Pretend the process restarted at the window start.
            let ex = slope_explained_by_season(&pts, start, end, &[start], &leak_check()).unwrap();
            assert!(ex.explained, "window ending {}h into day 4: {ex:?}", (end - T0 - 3 * DAY_MS) / HOUR_MS);
            assert_eq!(ex.previous_slopes_per_s.len(), 3);
            seen_steep |= ex.slope_per_s.abs() * 3600.0 > 40.0 * MIB;
        }
        // The windows include ones a leak rule would otherwise flag.
        assert!(seen_steep);
    }

    #[test]
    fn new_leak_on_top_of_the_cycle_is_not_explained() {
        let mut pts = daily_sine(4, 200.0 * MIB, 5.0 * MIB);
        let restart = T0 + 3 * DAY_MS + 6 * HOUR_MS;
        // After a deploy at `restart`, a 30 MiB/h leak adds to the cycle.
        for p in pts.iter_mut().filter(|p| p.t >= restart) {
            p.v += 30.0 * MIB * (p.t - restart) as f64 / HOUR_MS as f64;
        }
        for j in 0..12 {
            let end = restart + 2 * HOUR_MS + j * HOUR_MS;
            let ex = slope_explained_by_season(&pts, end - 2 * HOUR_MS, end, &[restart], &leak_check()).unwrap();
            assert!(!ex.explained, "{j}: {ex:?}");
            let excess_mib_h = ex.excess_slope_per_s.unwrap() * 3600.0 / MIB;
            assert!((excess_mib_h - 30.0).abs() < 3.0, "{j}: excess {excess_mib_h} MiB/h");
        }
    }

    #[test]
    fn earlier_windows_with_a_restart_or_no_data_are_skipped() {
        let pts = daily_sine(3, 200.0 * MIB, 5.0 * MIB);
        let end = T0 + 2 * DAY_MS + 10 * HOUR_MS;
        let start = end - 2 * HOUR_MS;
        let yesterday_restart = start - DAY_MS + HOUR_MS;
        let ex = slope_explained_by_season(&pts, start, end, &[yesterday_restart], &leak_check()).unwrap();
        // 3 periods asked: yesterday had a restart, 3 days ago has no data.
        assert_eq!(ex.previous_slopes_per_s.len(), 1);
        assert!(ex.explained, "{ex:?}");
        let first_day = slope_explained_by_season(&pts, T0 + HOUR_MS, T0 + 3 * HOUR_MS, &[], &leak_check()).unwrap();
        assert_eq!(first_day.reference_slope_per_s, None);
        assert!(!first_day.explained);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let pts = daily_sine(2, 1.0, 0.0);
        let end = T0 + DAY_MS + HOUR_MS;
        let bad_period = SeasonalCheck { period_ms: 0, ..SeasonalCheck::default() };
        assert!(slope_explained_by_season(&pts, end - HOUR_MS, end, &[], &bad_period).is_err());
        assert!(slope_explained_by_season(&pts, end, end, &[], &leak_check()).is_err());
        assert!(seasonal_baseline(&pts, DAY_MS, end, DAY_MS / 2, 3).is_err());
        assert!(matches!(
            slope_explained_by_season(&pts, T0 - 3 * HOUR_MS, T0 - HOUR_MS, &[], &leak_check()),
            Err(AnalysisError::TooFewPoints { have: 0, .. })
        ));
    }

    #[test]
    fn baseline_collects_the_same_phase_of_earlier_days() {
        let pts = daily_sine(4, 200.0 * MIB, 5.0 * MIB);
        let now = T0 + 3 * DAY_MS + 7 * HOUR_MS; // near the sine's peak
        let base = seasonal_baseline(&pts, DAY_MS, now, 5 * 60_000, 7).unwrap();
        // 3 earlier days with data, 11 one-minute samples each.
        assert_eq!(base.len(), 33);
        let expected = 1024.0 * MIB + 200.0 * MIB * (std::f64::consts::TAU * 7.0 / 24.0).sin();
        let m = median(&base).unwrap();
        assert!((m - expected).abs() < 10.0 * MIB, "median {} vs {}", m / MIB, expected / MIB);
        // Data that does not reach back a period gives no baseline.
        assert!(seasonal_baseline(&pts[..10], DAY_MS, now, 60_000, 7).unwrap().is_empty());
    }

    #[test]
    fn detrending_removes_the_cycle_but_keeps_an_incident() {
        let mut pts = daily_sine(3, 200.0 * MIB, 5.0 * MIB);
        let incident = T0 + 2 * DAY_MS + 12 * HOUR_MS;
        for p in pts.iter_mut().filter(|p| p.t >= incident && p.t < incident + HOUR_MS) {
            p.v += 100.0 * MIB;
        }
        let resid = detrend_by_season(&pts, DAY_MS, 5 * 60_000, 7).unwrap();
        // The first day has nothing to compare with.
        assert!(resid.iter().all(|r| r.t >= T0 + DAY_MS - 5 * 60_000));
        let (inside, outside): (Vec<&Sample>, Vec<&Sample>) =
            resid.iter().partition(|r| r.t >= incident && r.t < incident + HOUR_MS);
        let worst_outside = outside.iter().map(|r| r.v.abs()).fold(0.0, f64::max);
        assert!(worst_outside < 15.0 * MIB, "cycle left {} MiB", worst_outside / MIB);
        assert!(inside.iter().all(|r| r.v > 85.0 * MIB));
    }
}
