//! `trend`: is this series growing steadily, and how soon does it reach its limit?
//!
//! The slope is Theil–Sen over the `over` window (a GC sawtooth and single
//! outliers do not tilt it), fitted only on the samples since the last
//! restart (a sharp drop, a counter reset, or a changed
//! `process_start_time_seconds` cuts the window). Growth the same hours
//! showed on earlier days (a daily traffic cycle) is not a leak.
//!
//! How `rising` and `limit`/`within` combine: every condition given must
//! hold. `rising` alone fires on growth faster than it; `limit` + `within`
//! alone fire when the fitted line reaches the limit within that time (or
//! the series is already past it); with both, the growth must be faster than
//! `rising` *and* the limit projected within `within`. In every case most
//! pairs of points must agree that the series rises (at least 60 %), so
//! noise around a flat level never reads as a trend.

use crate::alerts::template::TplValue;
use crate::analysis::{self, SeasonalCheck};
use crate::labels::{Labels, Matcher};
use crate::promql::{EvalError, Expr};
use crate::store::{is_stale, Sample};

use super::{history, instant, tpl_map, KindContext, KindSample};

/// Fraction of point pairs that must agree the series rises.
const MIN_AGREEMENT: f64 = 0.6;
/// A one-step fall of more than this share of the value is a restart.
const RESTART_DROP: f64 = 0.3;
/// The slope's confidence interval: time bins and normal quantile (99 %).
const INTERVAL_BINS: usize = 12;
const INTERVAL_Z: f64 = 2.58;
/// After a cut, the fit may fire before half the window exists, on the
/// slope's lower confidence bound, but never on less than this much data.
const EARLY_MIN_SPAN_MS: i64 = 3_600_000;

#[derive(Debug, Clone)]
pub enum Limit {
    Value(f64),
    /// Evaluated at each evaluation; matched to series by labels (or one
    /// value for all when it returns a single series).
    Expr(Expr),
}

#[derive(Debug)]
pub struct Trend {
    pub(super) series: Expr,
    over_ms: i64,
    rising_per_s: Option<f64>,
    limit: Option<Limit>,
    within_ms: Option<i64>,
    min_points: usize,
    /// None = auto (1d when history allows), Some(None) = off, Some(Some(p)) = period p.
    seasonality: Option<Option<i64>>,
    pub(super) nearest: Option<super::Nearest>,
}

/// What one series' fit says.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendFit {
    pub slope_per_s: f64,
    pub current: f64,
    pub since: i64,
    pub eta_s: Option<f64>,
    pub agreement: f64,
    pub points: usize,
    /// 99 % interval of the slope (per second), when the data allows one.
    pub slope_interval: Option<(f64, f64)>,
    /// The ETA at the interval's upper and lower slope (soonest, latest).
    pub eta_range_s: (Option<f64>, Option<f64>),
    /// Fitted on less than half the window (after a cut): the conditions
    /// are then held against the slope's lower bound.
    pub early: bool,
}

impl Trend {
    pub fn new(
        series: Expr,
        over_ms: i64,
        rising_per_s: Option<f64>,
        limit: Option<Limit>,
        within_ms: Option<i64>,
        min_points: usize,
        seasonality: Option<Option<i64>>,
    ) -> Self {
        Trend { series, over_ms, rising_per_s, limit, within_ms, min_points, seasonality, nearest: None }
    }

    pub fn eval(&mut self, ctx: &KindContext) -> Result<Vec<KindSample>, EvalError> {
        let start = ctx.t - self.over_ms;
        let step = ctx.interval_ms.max(self.over_ms / 720);
        let all = history(ctx, &self.series, start, ctx.t, step)?;
        let limits = match &self.limit {
            Some(Limit::Expr(e)) => Some(instant(ctx, e)?),
            _ => None,
        };
        let mut out = Vec::new();
        let mut nearest = super::NearestPick::default();
        for s in all {
            let restarts = restart_times(ctx, &s.labels, start);
            let Some(fit) = self.fit(&s.samples, &restarts, ctx.t, &s.labels, &limits) else { continue };
            // The soonest ETA leads; without one, the steepest rise.
            let score = match fit.eta_s {
                Some(eta) => 1e18 - eta,
                None => fit.slope_per_s.atan(),
            };
            nearest.offer(score, &s.labels, fit.current, || crate::alerts::Overlay::Trend {
                since: fit.since,
                at: ctx.t,
                value: fit.current,
                slope_per_s: fit.slope_per_s,
                limit: self.limit_value(&s.labels, &limits),
            });
            if !self.fires(&fit) {
                continue;
            }
            match self.season(ctx, &s.labels, fit.since, &restarts)? {
                Season::Explained => continue,
                // Without a day of history a daily cycle's rising half looks
                // exactly like a leak (a sine rises for half a day, and the
                // fit may start before the rise): only a fit over a whole
                // cycle can tell them apart.
                Season::Unknown(period) if ctx.t - fit.since < period => continue,
                _ => {}
            }
            let eta = fit.eta_s.unwrap_or(f64::INFINITY);
            let (slope_lo, slope_hi) = fit.slope_interval.unwrap_or((f64::NAN, f64::NAN));
            let (eta_soonest, eta_latest) = fit.eta_range_s;
            let limit = self.limit_value(&s.labels, &limits);
            let explanation = explain(&fit, limit);
            out.push(KindSample {
                labels: s.labels,
                value: fit.slope_per_s * 3600.0,
                vars: vec![
                    (
                        "trend".into(),
                        tpl_map(&[
                            ("slope", TplValue::Num(fit.slope_per_s * 3600.0)),
                            ("slope_per_second", TplValue::Num(fit.slope_per_s)),
                            ("slope_low", TplValue::Num(slope_lo * 3600.0)),
                            ("slope_high", TplValue::Num(slope_hi * 3600.0)),
                            ("eta", TplValue::Num(eta)),
                            ("eta_soonest", TplValue::Num(eta_soonest.unwrap_or(f64::INFINITY))),
                            ("eta_latest", TplValue::Num(eta_latest.unwrap_or(f64::INFINITY))),
                            ("since", TplValue::Num(fit.since as f64 / 1000.0)),
                            ("current", TplValue::Num(fit.current)),
                            ("agreement", TplValue::Num(fit.agreement)),
                            ("early", TplValue::Bool(fit.early)),
                        ]),
                    ),
                    (crate::alerts::EXPLANATION.into(), TplValue::Str(explanation)),
                ],
                onset: Some(fit.since),
                overlay: Some(crate::alerts::Overlay::Trend {
                    since: fit.since,
                    at: ctx.t,
                    value: fit.current,
                    slope_per_s: fit.slope_per_s,
                    limit,
                }),
            });
        }
        self.nearest = nearest.finish();
        Ok(out)
    }

    /// Fits the segment since the last restart; None when it is too short.
    pub fn fit(
        &self,
        samples: &[Sample],
        restarts: &[i64],
        t: i64,
        labels: &Labels,
        limits: &Option<Vec<(Labels, f64)>>,
    ) -> Option<TrendFit> {
        let cuts = analysis::detect_drops(samples, RESTART_DROP);
        let seg = analysis::last_segment(samples, &cuts, restarts);
        if seg.len() < self.min_points {
            return None;
        }
        let span = seg.last()?.t - seg.first()?.t;
        // Right after a restart (or a new series, or a deploy) a few
        // sawtooth periods say little about hours. Before half the window
        // is there, fit only when the evidence is clear anyway: judged on
        // the lower bound of the slope's 99 % interval (below).
        let early = span < self.over_ms / 2;
        if early && span < EARLY_MIN_SPAN_MS.min(self.over_ms / 2) {
            return None;
        }
        let interval = analysis::slope_interval(seg, INTERVAL_BINS, INTERVAL_Z);
        if early && interval.is_none() {
            return None;
        }
        let fit = analysis::theil_sen(seg).ok()?;
        let current = fit.value_at(t);
        let limit = match (&self.limit, limits) {
            (Some(Limit::Value(v)), _) => Some(*v),
            (Some(Limit::Expr(_)), Some(ls)) => match_limit(labels, ls),
            _ => None,
        };
        let eta_s = match limit {
            Some(l) if current >= l => Some(0.0),
            Some(l) => analysis::time_to_limit(fit.slope_per_s, current, l),
            None => None,
        };
        let eta_at = |slope: f64| match limit {
            Some(l) if current >= l => Some(0.0),
            Some(l) => analysis::time_to_limit(slope, current, l),
            None => None,
        };
        let eta_range_s = match interval {
            Some((lo, hi)) => (eta_at(hi), eta_at(lo)),
            None => (eta_s, eta_s),
        };
        Some(TrendFit {
            slope_per_s: fit.slope_per_s,
            current,
            since: seg[0].t,
            eta_s,
            agreement: fit.rising_fraction,
            points: seg.len(),
            slope_interval: interval,
            eta_range_s,
            early,
        })
    }

    fn fires(&self, f: &TrendFit) -> bool {
        if f.slope_per_s <= 0.0 || f.agreement < MIN_AGREEMENT {
            return false;
        }
        // Early (after a cut): the slowest growth the data still allows
        // must meet the conditions, and the latest ETA must be in time.
        let (slope, eta) = match (f.early, f.slope_interval) {
            (true, Some((lo, _))) => (lo, f.eta_range_s.1),
            (true, None) => return false,
            (false, _) => (f.slope_per_s, f.eta_s),
        };
        if slope <= 0.0 {
            return false;
        }
        if let Some(r) = self.rising_per_s {
            if slope < r {
                return false;
            }
        }
        if let Some(w) = self.within_ms {
            match eta {
                Some(eta) if eta * 1000.0 <= w as f64 => {}
                _ => return false,
            }
        }
        true
    }

    /// The limit a series is held against, when the rule has one.
    fn limit_value(&self, labels: &Labels, limits: &Option<Vec<(Labels, f64)>>) -> Option<f64> {
        match (&self.limit, limits) {
            (Some(Limit::Value(v)), _) => Some(*v),
            (Some(Limit::Expr(_)), Some(ls)) => match_limit(labels, ls),
            _ => None,
        }
    }

    /// Whether the same hours on earlier days rose just as fast: a daily
    /// (or weekly) cycle, not a leak.
    fn season(&self, ctx: &KindContext, labels: &Labels, since: i64, restarts: &[i64]) -> Result<Season, EvalError> {
        let period = match self.seasonality {
            Some(None) => return Ok(Season::NotExplained),
            Some(Some(p)) => p,
            None => analysis::DAY_MS,
        };
        let check = SeasonalCheck {
            period_ms: period,
            // Differences smaller than a quarter of the growth the rule
            // cares about are noise, not a leak on top of the cycle.
            abs_tolerance_per_s: self.rising_per_s.unwrap_or(0.0) * 0.25,
            ..SeasonalCheck::default()
        };
        let lookback = since - check.periods as i64 * period - self.over_ms;
        let step = ctx.interval_ms.max(self.over_ms / 720);
        let long = history(ctx, &self.series, lookback, ctx.t, step)?;
        let Some(s) = long.into_iter().find(|s| s.labels == *labels) else { return Ok(Season::Unknown(period)) };
        if s.samples.first().is_none_or(|f| f.t > since - period) {
            return Ok(Season::Unknown(period));
        }
        let mut all_restarts = restart_times(ctx, labels, lookback);
        all_restarts.extend_from_slice(restarts);
        match analysis::slope_explained_by_season(&s.samples, since, ctx.t, &all_restarts, &check) {
            Ok(e) if e.explained => Ok(Season::Explained),
            Ok(e) if e.previous_slopes_per_s.is_empty() => Ok(Season::Unknown(period)),
            Ok(_) => Ok(Season::NotExplained),
            Err(_) => Ok(Season::Unknown(period)),
        }
    }
}

/// "grows 41/h (99 % interval 35 to 47/h) since 12:04 UTC; at 612 now,
/// 1.07Gi reached in 9h 30m (8h 20m to 11h)".
fn explain(fit: &TrendFit, limit: Option<f64>) -> String {
    let h = crate::alerts::template::humanize;
    let mut out = format!("grows {}/h", h(fit.slope_per_s * 3600.0));
    if let Some((lo, hi)) = fit.slope_interval {
        out.push_str(&format!(" (99 % interval {} to {}/h)", h(lo * 3600.0), h(hi * 3600.0)));
    }
    let since = chrono::DateTime::from_timestamp_millis(fit.since)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    out.push_str(&format!(" since {since}; now {}", h(fit.current)));
    if let (Some(l), Some(eta)) = (limit, fit.eta_s) {
        out.push_str(&format!(", limit {} reached in {}", h(l), dur_s(eta)));
        if let (Some(soon), Some(late)) = fit.eta_range_s {
            out.push_str(&format!(" ({} to {})", dur_s(soon), dur_s(late)));
        }
    }
    if fit.early {
        out.push_str("; fitted on less than half the window (since a restart or deploy), judged on the slower bound");
    }
    out
}

fn dur_s(s: f64) -> String {
    if !s.is_finite() {
        return "never".into();
    }
    crate::duration::PromDuration(std::time::Duration::from_secs(s.max(0.0).round() as u64)).to_string()
}

/// What earlier periods say about a rise.
enum Season {
    Explained,
    NotExplained,
    /// Less than one period of comparable history (the period is given).
    Unknown(i64),
}

fn match_limit(labels: &Labels, limits: &[(Labels, f64)]) -> Option<f64> {
    if limits.len() == 1 {
        return Some(limits[0].1);
    }
    if let Some((_, v)) = limits.iter().find(|(l, _)| l == labels) {
        return Some(*v);
    }
    // Same target: the labels both sides share must agree.
    limits
        .iter()
        .find(|(l, _)| {
            let shared: Vec<_> = l.iter().filter(|(k, _)| labels.get(k).is_some()).collect();
            !shared.is_empty() && shared.iter().all(|(k, v)| labels.get(k) == Some(*v))
        })
        .map(|(_, v)| *v)
}

/// Times in `[start, now]` at which the process behind these labels
/// restarted: deploy/rollback/restart markers, and a changed
/// `process_start_time_seconds` of the same job and instance.
fn restart_times(ctx: &KindContext, labels: &Labels, start: i64) -> Vec<i64> {
    let mut out = match ctx.restarts {
        Some(hook) => (hook.0)(labels, start, ctx.t),
        None => Vec::new(),
    };
    let (Some(job), Some(instance)) = (labels.get("job"), labels.get("instance")) else {
        out.sort_unstable();
        return out;
    };
    let m = [
        Matcher::equal("__name__", "process_start_time_seconds"),
        Matcher::equal("job", job),
        Matcher::equal("instance", instance),
    ];
    for s in ctx.store.select(&m, start, ctx.t) {
        let mut prev: Option<f64> = None;
        for x in s.samples.iter().filter(|x| !is_stale(x.v)) {
            if let Some(p) = prev {
                if x.v != p {
                    out.push(x.t);
                }
            }
            prev = Some(x.v);
        }
    }
    out.sort_unstable();
    out
}
