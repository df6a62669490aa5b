//! A band learned from each series' own past, shared by `anomaly` and
//! `ratio` with `baseline`: the rolling history, the per-series episode
//! memory, the usual range (recent past, and the same hours of earlier
//! seasons when the rule has a seasonality), and the explanation a
//! notification carries.

use std::collections::HashMap;

use crate::alerts::template::TplValue;
use crate::analysis::{Side, UsualRange};
use crate::duration::PromDuration;
use crate::promql::{EvalError, Expr};
use crate::store::Sample;

use super::episode::{SeriesMemory, Verdict};
use super::spec::Direction;
use super::{tpl_map, KindContext, RollingHistory};

/// The baseline history is re-read this often.
const REFRESH_MS: i64 = 5 * 60_000;
/// Values within this distance of "the same time" of an earlier season
/// count as that time.
const PHASE_HALF_WINDOW_MS: i64 = 60 * 60_000;
/// Baseline values a usual range needs before it is trusted.
const MIN_POINTS: usize = 20;

/// How a learned band is configured (from the rule).
#[derive(Clone, Copy, Debug)]
pub struct LearnedSpec {
    pub baseline_ms: i64,
    pub seasonality: Option<i64>,
    /// Margin beyond the usual edges, in units of the series' spread.
    pub sensitivity: f64,
    pub direction: Direction,
    pub min_history_ms: i64,
}

/// The outcome for one series at one evaluation.
#[derive(Clone, Debug)]
pub enum Judged {
    /// Not enough history yet.
    Learning,
    /// Nothing to report; the range it was judged against, when there was one.
    Quiet(Option<UsualRange>),
    /// Active: the alert's input, with the range it was judged against.
    Active { range: UsualRange, verdict: Verdict, side: Side },
}

/// The learned band of a rule with its memory between evaluations.
#[derive(Debug)]
pub struct Learned {
    pub spec: LearnedSpec,
    history: RollingHistory,
    refreshed_at: Option<i64>,
    memory: HashMap<u64, SeriesMemory>,
    learning: Option<(i64, usize)>,
}

impl Learned {
    pub fn new(spec: LearnedSpec) -> Self {
        Learned { spec, history: RollingHistory::default(), refreshed_at: None, memory: HashMap::new(), learning: None }
    }

    /// Carries history and episode memory over from the same rule before a reload.
    pub fn inherit(&mut self, old: &mut Learned) {
        self.history = std::mem::take(&mut old.history);
        self.refreshed_at = old.refreshed_at;
        self.memory = std::mem::take(&mut old.memory);
    }

    /// "learning: N series have 3h of the 6h of history needed".
    pub fn status(&self) -> Option<String> {
        self.learning.map(|(have, n)| {
            format!(
                "learning: {n} series have {} of the {} of history needed",
                dur(have.max(0)),
                dur(self.spec.min_history_ms)
            )
        })
    }

    /// Brings the history of `expr` up to date (every few minutes) and
    /// starts a new evaluation's bookkeeping.
    pub fn begin(&mut self, ctx: &KindContext, expr: &Expr) -> Result<(), EvalError> {
        if self.refreshed_at.is_none_or(|at| ctx.t - at >= REFRESH_MS || at > ctx.t) {
            let step = ctx.interval_ms.max(self.spec.baseline_ms / 4000).max(1000);
            // At most ~4,000 raw samples per series: a week at a 15 s scrape
            // would be 40,320 (10x the memory and the work per evaluation
            // for the same quantiles).
            self.history.thin_ms = (self.spec.baseline_ms / 4000).max(1000);
            self.history.refresh(ctx, expr, self.spec.baseline_ms, step)?;
            self.refreshed_at = Some(ctx.t);
            // Series gone from the history take their memory with them.
            let history = &self.history.series;
            self.memory.retain(|fp, _| history.contains_key(fp));
        }
        self.learning = None;
        Ok(())
    }

    /// Judges value `v` of the series with fingerprint `fp` at `ctx.t`.
    pub fn judge(&mut self, ctx: &KindContext, fp: u64, v: f64) -> Judged {
        let Some(h) = self.history.series.get(&fp) else {
            self.note_learning(0);
            return Judged::Learning;
        };
        let have = h.samples.first().map(|f| ctx.t - f.t).unwrap_or(0);
        if have < self.spec.min_history_ms {
            self.note_learning(have);
            return Judged::Learning;
        }
        let memory = self.memory.entry(fp).or_default();
        let Some(range) = usual_range(&h.samples, memory, ctx.t, &self.spec) else {
            self.note_learning(have);
            return Judged::Learning;
        };
        let Some(side) = range.side(v) else { return Judged::Quiet(None) };
        let outside = match (side, self.spec.direction) {
            (Side::Inside, _) => false,
            (Side::Above, Direction::Up | Direction::Both) => true,
            (Side::Below, Direction::Down | Direction::Both) => true,
            _ => false,
        };
        let verdict = memory.judge(ctx.t, outside, range.within_edges(v), ctx.for_ms, ctx.t - self.spec.baseline_ms);
        if verdict.active() {
            Judged::Active { range, verdict, side }
        } else {
            Judged::Quiet(Some(range))
        }
    }

    fn note_learning(&mut self, have: i64) {
        let (h, n) = self.learning.unwrap_or((have, 0));
        self.learning = Some((h.min(have), n + 1));
    }
}

/// The usual range at `t`: the recent past (the whole baseline window, less
/// the last minutes and what the memory excludes), and with a seasonality
/// also the same hours of each earlier season; a value must be usual for
/// both.
fn usual_range(samples: &[Sample], memory: &SeriesMemory, t: i64, spec: &LearnedSpec) -> Option<UsualRange> {
    let cutoff = SeriesMemory::baseline_cutoff(t);
    let mut recent: Vec<f64> = samples.iter().filter(|x| x.t <= cutoff && !memory.excludes(x.t)).map(|x| x.v).collect();
    let range = UsualRange::learn(&mut recent, spec.sensitivity, MIN_POINTS).ok()?;
    let Some(period) = spec.seasonality else { return Some(range) };
    let mut phase = Vec::new();
    for k in 1..=(spec.baseline_ms / period).max(1) {
        let center = t - k * period;
        let from = samples.partition_point(|x| x.t < center - PHASE_HALF_WINDOW_MS);
        let to = samples.partition_point(|x| x.t <= (center + PHASE_HALF_WINDOW_MS).min(cutoff));
        phase.extend(samples[from..to.max(from)].iter().filter(|x| !memory.excludes(x.t)).map(|x| x.v));
    }
    match UsualRange::learn(&mut phase, spec.sensitivity, MIN_POINTS) {
        Ok(same_hours) => Some(range.intersect(&same_hours)),
        // Too little of this time of day yet: the recent past alone.
        Err(_) => Some(range),
    }
}

/// Template values and the explanation for an active series: `$<name>` gets
/// `expected`, `lower`, `upper`, `z` (distance from the median in units of
/// the series' spread), `since` (Unix s) and `moved`.
pub fn template_values(
    name: &str,
    value: f64,
    range: &UsualRange,
    verdict: Verdict,
    side: Side,
    spec: &LearnedSpec,
    extra: &[(&str, TplValue)],
) -> Vec<(String, TplValue)> {
    let since = match verdict {
        Verdict::Outside { since } | Verdict::Episode { since } | Verdict::Moved { since } => since,
        Verdict::Usual => 0,
    };
    let mut pairs = vec![
        ("expected", TplValue::Num(range.median)),
        ("lower", TplValue::Num(range.lower)),
        ("upper", TplValue::Num(range.upper)),
        ("z", TplValue::Num(range.deviation(value))),
        ("since", TplValue::Num(since as f64 / 1000.0)),
        ("moved", TplValue::Bool(matches!(verdict, Verdict::Moved { .. }))),
    ];
    pairs.extend(extra.iter().cloned());
    vec![
        (name.to_string(), tpl_map(&pairs)),
        (crate::alerts::EXPLANATION.to_string(), TplValue::Str(explain(value, range, verdict, side, spec))),
    ]
}

/// The usual range as a chart overlay.
pub fn overlay(range: &UsualRange) -> crate::alerts::Overlay {
    crate::alerts::Overlay::Band { label: "usual range".into(), lower: range.lower, upper: range.upper }
}

/// One sentence a person can act on: where the value is against what was
/// usual, how far, since when, or that the baseline moved.
pub fn explain(value: f64, range: &UsualRange, verdict: Verdict, side: Side, spec: &LearnedSpec) -> String {
    let over = match spec.seasonality {
        Some(p) => format!("the last {} and this time of day over {}", dur(spec.baseline_ms), per(p)),
        None => format!("the last {}", dur(spec.baseline_ms)),
    };
    let edge = match side {
        Side::Above => format!("above the usual range {} to {}", num(range.lower), num(range.upper)),
        Side::Below => format!("below the usual range {} to {}", num(range.lower), num(range.upper)),
        Side::Inside => format!("back within the usual range {} to {}", num(range.lower), num(range.upper)),
    };
    let dev = range.deviation(value);
    let far = if dev.is_finite() {
        format!("{:.1}x the usual spread from the median {}", dev.abs(), num(range.median))
    } else {
        format!("the series was flat at {}", num(range.median))
    };
    match verdict {
        Verdict::Moved { since } => format!(
            "{} has stayed outside its usual range since {} ({}), so the baseline moved: this level counts as normal from now on",
            num(value),
            utc(since),
            dur(super::episode::ADAPT_MS)
        ),
        Verdict::Outside { since } | Verdict::Episode { since } => {
            format!("{} is {edge} (learned from {over}; {far}), since {}", num(value), utc(since))
        }
        Verdict::Usual => format!("{} is usual", num(value)),
    }
}

fn dur(ms: i64) -> String {
    PromDuration(std::time::Duration::from_millis(ms.max(0) as u64)).to_string()
}

fn per(period_ms: i64) -> &'static str {
    if period_ms >= 7 * 86_400_000 {
        "earlier weeks"
    } else {
        "earlier days"
    }
}

fn num(v: f64) -> String {
    crate::alerts::template::humanize(v)
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}
