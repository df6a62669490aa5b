//! `anomaly`: a value far from what is usual, as a robust z-score.
//!
//! "Usual" is the trailing `baseline` window, or, with `seasonality: 1d|1w`,
//! the values at the same time of day (week) in that window, so a nightly
//! batch is not an anomaly at night. Median and MAD keep an earlier incident
//! inside the baseline from widening the band. Until `min_history` of data
//! exists the rule only learns (the API says so) and never fires.

use crate::alerts::template::TplValue;
use crate::analysis::{self, Band, BandParams, Side};
use crate::promql::{EvalError, Expr};

use super::spec::Direction;
use super::{instant, tpl_map, KindContext, KindSample, RollingHistory};

/// The baseline history is re-read this often.
const REFRESH_MS: i64 = 5 * 60_000;
/// Values within this distance of "the same phase" count as that phase.
const PHASE_HALF_WINDOW_MS: i64 = 30 * 60_000;
/// The band is never narrower than this share of the median, so a
/// perfectly flat history does not make every wiggle an anomaly.
const MIN_REL_HALF_WIDTH: f64 = 0.05;

#[derive(Debug)]
pub struct Anomaly {
    series: Expr,
    baseline_ms: i64,
    seasonality: Option<i64>,
    k: f64,
    direction: Direction,
    min_history_ms: i64,
    history: RollingHistory,
    refreshed_at: Option<i64>,
    learning: Option<(i64, usize)>,
}

impl Anomaly {
    pub fn new(
        series: Expr,
        baseline_ms: i64,
        seasonality: Option<i64>,
        k: f64,
        direction: Direction,
        min_history_ms: i64,
    ) -> Self {
        Anomaly {
            series,
            baseline_ms,
            seasonality,
            k,
            direction,
            min_history_ms,
            history: RollingHistory::default(),
            refreshed_at: None,
            learning: None,
        }
    }

    pub fn inherit(&mut self, old: &mut Anomaly) {
        self.history = std::mem::take(&mut old.history);
        self.refreshed_at = old.refreshed_at;
    }

    pub fn status(&self) -> Option<String> {
        self.learning.map(|(have, n)| {
            format!(
                "learning: {n} series have {} of the {} of history needed",
                crate::duration::PromDuration(std::time::Duration::from_millis(have.max(0) as u64)),
                crate::duration::PromDuration(std::time::Duration::from_millis(self.min_history_ms as u64)),
            )
        })
    }

    pub fn eval(&mut self, ctx: &KindContext) -> Result<Vec<KindSample>, EvalError> {
        if self.refreshed_at.is_none_or(|at| ctx.t - at >= REFRESH_MS || at > ctx.t) {
            let step = ctx.interval_ms.max(self.baseline_ms / 4000).max(1000);
            self.history.refresh(ctx, &self.series, self.baseline_ms, step)?;
            self.refreshed_at = Some(ctx.t);
        }
        let params = BandParams { k: self.k, min_rel_half_width: MIN_REL_HALF_WIDTH, ..BandParams::default() };
        let mut out = Vec::new();
        self.learning = None;
        for (labels, v) in instant(ctx, &self.series)? {
            if !v.is_finite() {
                continue;
            }
            let Some(h) = self.history.series.get(&labels.fingerprint()) else {
                self.note_learning(0);
                continue;
            };
            let have = h.samples.first().map(|f| ctx.t - f.t).unwrap_or(0);
            if have < self.min_history_ms {
                self.note_learning(have);
                continue;
            }
            // The baseline excludes the last few minutes: an incident in
            // progress must not become its own reference.
            let cutoff = self.refreshed_at.unwrap_or(ctx.t).min(ctx.t - PHASE_HALF_WINDOW_MS / 3);
            let past: Vec<_> = h.samples.iter().copied().filter(|x| x.t <= cutoff).collect();
            let values = match self.seasonality {
                Some(p) => {
                    let periods = (self.baseline_ms / p).max(1) as usize;
                    analysis::seasonal_baseline(&past, p, ctx.t, PHASE_HALF_WINDOW_MS, periods).unwrap_or_default()
                }
                None => past.iter().map(|x| x.v).collect(),
            };
            let Ok(band) = Band::learn(&values, &params) else {
                self.note_learning(have);
                continue;
            };
            let Some(verdict) = band.evaluate(v) else { continue };
            let fires = match (verdict.side, self.direction) {
                (Side::Inside, _) => false,
                (Side::Above, Direction::Up | Direction::Both) => true,
                (Side::Below, Direction::Down | Direction::Both) => true,
                _ => false,
            };
            if !fires {
                continue;
            }
            let z = verdict.sigmas.unwrap_or(f64::NAN);
            out.push(KindSample {
                labels,
                value: v,
                vars: vec![(
                    "anomaly".into(),
                    tpl_map(&[
                        ("z", TplValue::Num(if verdict.side == Side::Below { -z } else { z })),
                        ("expected", TplValue::Num(band.center)),
                        ("lower", TplValue::Num(band.lower)),
                        ("upper", TplValue::Num(band.upper)),
                    ]),
                )],
                onset: None,
            });
        }
        Ok(out)
    }

    fn note_learning(&mut self, have: i64) {
        let (h, n) = self.learning.unwrap_or((have, 0));
        self.learning = Some((h.min(have), n + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::store::Store;

    const DAY: i64 = 86_400_000;

    fn daily(t: i64) -> f64 {
        let phase = t.rem_euclid(DAY) as f64 / DAY as f64;
        100.0 + 80.0 * (std::f64::consts::TAU * phase).sin() + ((t / 30_000) % 7) as f64
    }

    #[test]
    fn seasonal_anomaly_fires_at_night_but_not_for_the_daily_peak() {
        let store = Store::new(i64::MAX / 4);
        let l = Labels::from_pairs([("__name__", "backlog")]);
        let onset = 4 * DAY + 3 * 3_600_000;
        let mut t = 0;
        while t <= onset + 3_600_000 {
            let extra = if t >= onset { 120.0 } else { 0.0 };
            store.append(&l, t, daily(t) + extra);
            t += 30_000;
        }
        let expr = crate::promql::parse("backlog").unwrap();
        let mut a = Anomaly::new(expr, 3 * DAY, Some(DAY), 5.0, Direction::Up, 2 * DAY);
        let opts = crate::promql::EvalOptions::default();
        let eval = |a: &mut Anomaly, t: i64| {
            let ctx = KindContext { store: &store, t, interval_ms: 60_000, options: &opts, restarts: None };
            a.eval(&ctx).unwrap()
        };
        // The daily peak (06:00 here) a day earlier is usual.
        assert!(eval(&mut a, 3 * DAY + 6 * 3_600_000).is_empty());
        let out = eval(&mut a, onset + 20 * 60_000);
        assert_eq!(out.len(), 1, "the night-time jump is an anomaly");
        // Too little history: learning, never firing.
        let mut young =
            Anomaly::new(crate::promql::parse("backlog").unwrap(), 3 * DAY, Some(DAY), 5.0, Direction::Up, 2 * DAY);
        assert!(eval(&mut young, DAY + 3_600_000).is_empty());
        assert!(young.status().unwrap_or_default().starts_with("learning"), "{:?}", young.status());
    }
}
