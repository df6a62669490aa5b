//! Rule kinds that say what a team means without hand-written statistics:
//! `trend` (a slow leak, hours before the limit), `ratio` (out/in leaves its
//! band), `anomaly` (a value far from its usual level for this time of day)
//! and `threshold` (with hysteresis and an explicit policy for missing data).
//!
//! Each kind reads series through the same PromQL evaluator and store as
//! `expr` rules, computes one verdict per series, and hands the series that
//! are "active" to the ordinary alert state machine, with extra template
//! values (`$trend`, `$ratio`, `$anomaly`, `$threshold`). The statistics
//! live in `crate::analysis`; this module decides what they mean for an alert.

mod anomaly;
mod episode;
mod learned;
mod ratio;
pub mod spec;
mod threshold;
mod trend;
pub mod units;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::alerts::template::TplValue;
use crate::labels::{Labels, METRIC_NAME};
use crate::promql::{self, EvalError, EvalOptions, Expr, Value};
use crate::store::{is_stale, Queryable, Series};

pub use anomaly::Anomaly;
pub use ratio::Ratio;
pub use spec::{build_kind, KindYaml};
pub use threshold::{OnMissing, Threshold};
pub use trend::Trend;

/// One active series from a kind's evaluation (the state machine's input).
pub use crate::alerts::AlertInput as KindSample;

/// The series nearest to firing at a kind's last evaluation: what the Rules
/// page shows beside a rule, so a rule with nothing active still says what it
/// sees (the steepest slope and soonest ETA, or the band and the value
/// farthest from its middle).
#[derive(Clone, Debug, PartialEq)]
pub struct Nearest {
    pub labels: Labels,
    pub value: f64,
    pub overlay: crate::alerts::Overlay,
    /// Series judged at that evaluation.
    pub judged: usize,
}

/// Keeps the highest-scoring series of one evaluation; clones its labels
/// only when it leads, so judging 10,000 quiet series stays cheap.
#[derive(Default)]
struct NearestPick {
    best: Option<(f64, Nearest)>,
    judged: usize,
}

impl NearestPick {
    fn offer(&mut self, score: f64, labels: &Labels, value: f64, overlay: impl FnOnce() -> crate::alerts::Overlay) {
        self.judged += 1;
        if score.is_nan() || self.best.as_ref().is_some_and(|(s, _)| *s >= score) {
            return;
        }
        self.best = Some((score, Nearest { labels: labels.clone(), value, overlay: overlay(), judged: 0 }));
    }

    fn finish(self) -> Option<Nearest> {
        let judged = self.judged;
        self.best.map(|(_, n)| Nearest { judged, ..n })
    }
}

/// What a kind needs to evaluate at time `t`.
pub struct KindContext<'a> {
    pub store: &'a dyn Queryable,
    pub t: i64,
    pub interval_ms: i64,
    /// The rule's `for`: learned-band kinds open an episode once a series
    /// has been outside this long (see `episode`).
    pub for_ms: i64,
    pub options: &'a EvalOptions,
    /// Deploy/restart markers, when known (daemon: the marker log; replay: `--markers`).
    pub restarts: Option<&'a crate::rules::RestartsHook>,
}

/// A rule kind with its parameters and its memory between evaluations.
/// (Boxed by its owner: kinds are few and large.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum RuleKind {
    Trend(Trend),
    Ratio(Ratio),
    Anomaly(Anomaly),
    Threshold(Threshold),
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Trend(_) => "trend",
            RuleKind::Ratio(_) => "ratio",
            RuleKind::Anomaly(_) => "anomaly",
            RuleKind::Threshold(_) => "threshold",
        }
    }

    pub fn eval(&mut self, ctx: &KindContext) -> Result<Vec<KindSample>, EvalError> {
        match self {
            RuleKind::Trend(k) => k.eval(ctx),
            RuleKind::Ratio(k) => k.eval(ctx),
            RuleKind::Anomaly(k) => k.eval(ctx),
            RuleKind::Threshold(k) => k.eval(ctx),
        }
    }

    /// The expressions this kind reads (besides its rule's `expr`).
    pub fn reads(&self) -> Vec<&Expr> {
        match self {
            RuleKind::Trend(k) => vec![&k.series],
            RuleKind::Ratio(k) => vec![&k.of, &k.to],
            RuleKind::Anomaly(k) => vec![&k.series],
            RuleKind::Threshold(k) => vec![&k.series],
        }
    }

    /// The series nearest to firing at the last evaluation (for the Rules
    /// page); `None` before the first evaluation and for `threshold`.
    pub fn nearest(&self) -> Option<&Nearest> {
        match self {
            RuleKind::Trend(k) => k.nearest.as_ref(),
            RuleKind::Ratio(k) => k.nearest.as_ref(),
            RuleKind::Anomaly(k) => k.nearest.as_ref(),
            RuleKind::Threshold(_) => None,
        }
    }

    /// A note for the API, e.g. "learning: 3h of 2d history".
    pub fn status(&self) -> Option<String> {
        match self {
            RuleKind::Anomaly(a) => a.status(),
            RuleKind::Ratio(r) => r.status(),
            _ => None,
        }
    }

    /// A `threshold`'s clear level (for charts); `None` for other kinds.
    pub fn clear_level(&self) -> Option<f64> {
        match self {
            RuleKind::Threshold(t) => Some(t.clear_level()),
            _ => None,
        }
    }

    /// The memory a restart must not lose, for `state.db`: a threshold's
    /// active series (its hysteresis). The other kinds' memory (a learned
    /// ratio band, an anomaly baseline and its learning progress) is
    /// re-read from the persisted samples at the first evaluation.
    pub fn saved_state(&self) -> Option<serde_json::Value> {
        match self {
            RuleKind::Threshold(t) => t.saved_state(),
            _ => None,
        }
    }

    /// Takes back what [`RuleKind::saved_state`] saved.
    pub fn restore_state(&mut self, v: &serde_json::Value) {
        if let RuleKind::Threshold(t) = self {
            t.restore_state(v);
        }
    }

    /// Carries memory over from the same rule before a reload.
    pub fn inherit(&mut self, old: &mut RuleKind) {
        match (self, old) {
            (RuleKind::Threshold(n), RuleKind::Threshold(o)) => n.inherit(o),
            (RuleKind::Ratio(n), RuleKind::Ratio(o)) => n.inherit(o),
            (RuleKind::Anomaly(n), RuleKind::Anomaly(o)) => n.inherit(o),
            _ => {}
        }
    }
}

/// A map template value from pairs.
pub(crate) fn tpl_map(pairs: &[(&str, TplValue)]) -> TplValue {
    TplValue::Map(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>())
}

/// Evaluates `expr` at `t` as an instant vector (a scalar becomes one
/// series without labels). Labels come back without `__name__`.
pub(crate) fn instant(ctx: &KindContext, expr: &Expr) -> Result<Vec<(Labels, f64)>, EvalError> {
    match promql::eval_instant(ctx.store, expr, ctx.t, ctx.options)? {
        // The rule kinds model float series; native histograms are skipped.
        Value::Vector(v) => {
            Ok(v.into_iter().filter(|s| s.h.is_none()).map(|s| (s.labels.without_name(), s.v)).collect())
        }
        Value::Scalar(x) => Ok(vec![(Labels::new(), x)]),
        _ => Err(EvalError::Unsupported("a rule kind's series must be an instant vector or a scalar".into())),
    }
}

/// A per-series history that grows at each refresh instead of being re-read
/// whole: learned bands over days must not cost days of evaluation each time.
#[derive(Debug, Default)]
pub(crate) struct RollingHistory {
    pub series: std::collections::HashMap<u64, Series>,
    /// The last refresh's end, and where the next one starts: the instant
    /// after it for raw samples, the next point of the step grid otherwise,
    /// so nothing between two refreshes is skipped and nothing is read twice.
    pub fetched_to: Option<i64>,
    next_from: i64,
    /// Raw samples are kept one per slot of this many ms (the first in
    /// each): a 7 d baseline of a series scraped every 15 s is 40,320
    /// samples, and a learned range gets nothing from more than a few
    /// thousand (0 keeps every sample).
    pub thin_ms: i64,
}

impl RollingHistory {
    /// Brings the history up to `ctx.t`, keeping only `[t - window, t]`.
    pub fn refresh(&mut self, ctx: &KindContext, expr: &Expr, window: i64, step: i64) -> Result<(), EvalError> {
        let oldest = ctx.t - window;
        let step = step.max(1);
        let from = match self.fetched_to {
            Some(f) if f >= oldest && f <= ctx.t => self.next_from.max(oldest),
            _ => {
                self.series.clear();
                oldest
            }
        };
        if from <= ctx.t {
            for s in history(ctx, expr, from, ctx.t, step)? {
                let entry = self
                    .series
                    .entry(s.labels.fingerprint())
                    .or_insert_with(|| Series { labels: s.labels.clone(), samples: Vec::new() });
                let mut last = entry.samples.last().map(|x| x.t);
                let slot = |t: i64| if self.thin_ms > 0 { t.div_euclid(self.thin_ms) } else { t };
                for x in s.samples {
                    let keep = match last {
                        None => true,
                        Some(l) => x.t > l && slot(x.t) != slot(l),
                    };
                    if keep {
                        entry.samples.push(x);
                        last = Some(x.t);
                    }
                }
            }
            self.next_from = if is_raw_selector(expr) { ctx.t + 1 } else { from + ((ctx.t - from) / step + 1) * step };
        }
        for s in self.series.values_mut() {
            let cut = s.samples.partition_point(|x| x.t < oldest);
            s.samples.drain(..cut);
        }
        self.series.retain(|_, s| !s.samples.is_empty());
        self.fetched_to = Some(ctx.t);
        Ok(())
    }
}

/// Whether [`history`] reads raw samples for `expr` (a plain selector).
fn is_raw_selector(expr: &Expr) -> bool {
    matches!(expr, Expr::VectorSelector(vs) if vs.offset.is_none() && vs.at.is_none())
}

/// The samples of `expr` over `[start, end]`: raw samples when it is a plain
/// selector (no offset/@), otherwise the expression evaluated every `step`.
/// Stale markers and NaN are dropped. Labels come back without `__name__`.
pub(crate) fn history(
    ctx: &KindContext,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Vec<Series>, EvalError> {
    let raw = match expr {
        Expr::VectorSelector(vs) if is_raw_selector(expr) => {
            let matchers = promql::selector_matchers(vs)?;
            // Windows past raw retention read 5-minute averages there.
            Some(ctx.store.select_long(&matchers, start, end, ctx.t))
        }
        _ => None,
    };
    let series = match raw {
        Some(s) => s,
        None => promql::eval_range(ctx.store, expr, start, end, step.max(1), ctx.options)?,
    };
    Ok(series
        .into_iter()
        .map(|mut s| {
            s.samples.retain(|x| !is_stale(x.v) && x.v.is_finite());
            s.labels.remove(METRIC_NAME);
            s
        })
        .filter(|s| !s.samples.is_empty())
        .collect())
}
