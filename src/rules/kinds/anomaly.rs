//! `anomaly`: a value beyond what the series' own past regularly did.
//!
//! "Usual" is the range between the 1.5th and 98.5th percentile of the trailing
//! `baseline` window, widened by `sensitivity` times the series' spread, and,
//! with `seasonality: 1d|1w`, also that of the same hours of earlier days
//! (weeks): the value must be usual for both, so a nightly batch is not an
//! anomaly at night and a quiet night does not hide a jump. Bursts the recent
//! past had regularly are usual; an incident is one episode and never part
//! of its own baseline; a level that stays becomes the baseline (see
//! `episode`). Until `min_history` of data exists the rule only learns (the
//! API says so) and never fires. Tuned on NAB's realTraffic, realAdExchange,
//! realTweets and artificialNoAnomaly (bench/README.md).

use crate::promql::{EvalError, Expr};

use super::learned::{overlay, template_values, Judged, Learned, LearnedSpec};
use super::spec::Direction;
use super::{instant, KindContext, KindSample};

/// `sensitivity` when the rule does not say: the margin beyond the usual
/// edges, in units of the distance from the median to the farther edge.
pub const DEFAULT_SENSITIVITY: f64 = 0.6;
/// The default with a seasonality: a value is then judged twice (recent
/// past and same hours), so each judgment needs a wider margin for the same
/// false-alarm rate.
pub const DEFAULT_SEASONAL_SENSITIVITY: f64 = 0.8;

#[derive(Debug)]
pub struct Anomaly {
    pub(super) series: Expr,
    learned: Learned,
    pub(super) nearest: Option<super::Nearest>,
}

impl Anomaly {
    pub fn new(
        series: Expr,
        baseline_ms: i64,
        seasonality: Option<i64>,
        sensitivity: f64,
        direction: Direction,
        min_history_ms: i64,
    ) -> Self {
        let spec = LearnedSpec { baseline_ms, seasonality, sensitivity, direction, min_history_ms };
        Anomaly { series, learned: Learned::new(spec), nearest: None }
    }

    pub fn inherit(&mut self, old: &mut Anomaly) {
        self.learned.inherit(&mut old.learned);
    }

    pub fn status(&self) -> Option<String> {
        self.learned.status()
    }

    pub fn eval(&mut self, ctx: &KindContext) -> Result<Vec<KindSample>, EvalError> {
        self.learned.begin(ctx, &self.series)?;
        let mut out = Vec::new();
        let mut nearest = super::NearestPick::default();
        for (labels, v) in instant(ctx, &self.series)? {
            if !v.is_finite() {
                continue;
            }
            let (range, verdict, side) = match self.learned.judge(ctx, labels.fingerprint(), v) {
                Judged::Active { range, verdict, side } => (range, verdict, side),
                Judged::Quiet(Some(range)) => {
                    nearest.offer(range.deviation(v).abs(), &labels, v, || overlay(&range));
                    continue;
                }
                _ => continue,
            };
            nearest.offer(range.deviation(v).abs(), &labels, v, || overlay(&range));
            let vars = template_values("anomaly", v, &range, verdict, side, &self.learned.spec, &[]);
            let overlay = Some(overlay(&range));
            out.push(KindSample { labels, value: v, vars, onset: None, overlay });
        }
        self.nearest = nearest.finish();
        Ok(out)
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
        let mut a = Anomaly::new(expr, 3 * DAY, Some(DAY), DEFAULT_SENSITIVITY, Direction::Up, 2 * DAY);
        let opts = crate::promql::EvalOptions::default();
        let eval = |a: &mut Anomaly, t: i64| {
            let ctx = KindContext { store: &store, t, interval_ms: 60_000, for_ms: 0, options: &opts, restarts: None };
            a.eval(&ctx).unwrap()
        };
        // The daily peak (06:00 here) a day earlier is usual.
        assert!(eval(&mut a, 3 * DAY + 6 * 3_600_000).is_empty());
        let out = eval(&mut a, onset + 20 * 60_000);
        assert_eq!(out.len(), 1, "the night-time jump is an anomaly");
        // Too little history: learning, never firing.
        let mut young = Anomaly::new(
            crate::promql::parse("backlog").unwrap(),
            3 * DAY,
            Some(DAY),
            DEFAULT_SENSITIVITY,
            Direction::Up,
            2 * DAY,
        );
        assert!(eval(&mut young, DAY + 3_600_000).is_empty());
        assert!(young.status().unwrap_or_default().starts_with("learning"), "{:?}", young.status());
    }
}
