//! Evaluation of one expression at one instant: selectors (lookback,
//! staleness, offset, `@`), subqueries, literals and the dispatch to the
//! operator, aggregation and function modules.
//!
//! Everything is evaluated per timestamp: a range query is the same
//! expression evaluated at each step. That keeps one code path for instant and
//! range queries (and for subqueries, which are range queries inside a query),
//! at the cost of re-reading the store per step, which is cheap for an
//! in-memory store and rule-sized queries.

use std::time::{SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{AtModifier, Offset, VectorSelector};

use super::{aggregate, binary, functions, EvalError, EvalOptions, Expr, VectorSample};
use crate::labels::{Labels, MatchOp, Matcher, METRIC_NAME};
use crate::native_histogram::FloatHistogram;
use crate::store::{is_stale, HistogramSample, HistogramSeries, Queryable, Sample, Series};

/// Subquery step when the query does not give one (`x[5m:]`). Prometheus uses
/// the global evaluation interval, whose default is one minute.
pub(crate) const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// A range vector with the window it was selected for: `(start, end]`.
/// Rate-like functions extrapolate to the window's edges, so they need it.
#[derive(Clone, Debug)]
pub(crate) struct RangeVector {
    pub series: Vec<Series>,
    /// Native histogram samples, per series (a series may also have float
    /// samples in `series`).
    pub histograms: Vec<HistogramSeries>,
    pub start: i64,
    pub end: i64,
}

/// An intermediate value during evaluation at one instant.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Scalar(f64),
    Vector(Vec<VectorSample>),
    Matrix(RangeVector),
    String(String),
}

impl Val {
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
            Val::String(_) => "string",
        }
    }
}

/// What stays fixed while one query is evaluated.
pub(crate) struct Ctx<'a> {
    pub store: &'a dyn Queryable,
    pub opts: &'a EvalOptions,
    /// Time, samples and cancellation: checked at every node, step and series.
    pub budget: &'a super::limits::Budget,
    /// The outer query's bounds, which `@ start()` and `@ end()` refer to.
    pub query_start: i64,
    pub query_end: i64,
}

impl Ctx<'_> {
    pub fn eval(&self, expr: &Expr, t: i64) -> Result<Val, EvalError> {
        self.budget.check()?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Val::Scalar(v) => Ok(Val::Scalar(-v)),
                Val::Vector(vec) => {
                    let out: Vec<VectorSample> = vec
                        .into_iter()
                        .map(|s| VectorSample {
                            labels: drop_name(&s.labels),
                            v: -s.v,
                            h: s.h.map(|mut h| {
                                h.scale(-1.0);
                                h
                            }),
                        })
                        .collect();
                    check_unique(&out)?;
                    Ok(Val::Vector(out))
                }
                other => Err(EvalError::Type(format!("unary minus on {}", other.type_name()))),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.select_instant(vs, t)?)),
            Expr::MatrixSelector(ms) => Ok(Val::Matrix(self.select_range(&ms.vs, duration_ms(&ms.range), t)?)),
            Expr::Subquery(sq) => {
                let end = self.anchor(&sq.at, &sq.offset, t);
                let range = duration_ms(&sq.range);
                let step = sq.step.as_ref().map(duration_ms).unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
                Ok(Val::Matrix(self.subquery(&sq.expr, end.saturating_sub(range), end, step)?))
            }
            Expr::Binary(b) => binary::eval(self, b, t),
            Expr::Aggregate(a) => aggregate::eval(self, a, t),
            Expr::Call(c) => functions::eval(self, c, t),
            Expr::Extension(_) => Err(EvalError::Unsupported("extension expressions".into())),
        }
    }

    pub fn eval_scalar(&self, expr: &Expr, t: i64) -> Result<f64, EvalError> {
        match self.eval(expr, t)? {
            Val::Scalar(v) => Ok(v),
            other => Err(EvalError::Type(format!("expected scalar, got {}", other.type_name()))),
        }
    }

    pub fn eval_vector(&self, expr: &Expr, t: i64) -> Result<Vec<VectorSample>, EvalError> {
        match self.eval(expr, t)? {
            Val::Vector(v) => Ok(v),
            other => Err(EvalError::Type(format!("expected instant vector, got {}", other.type_name()))),
        }
    }

    pub fn eval_matrix(&self, expr: &Expr, t: i64) -> Result<RangeVector, EvalError> {
        match self.eval(expr, t)? {
            Val::Matrix(m) => Ok(m),
            other => Err(EvalError::Type(format!("expected range vector, got {}", other.type_name()))),
        }
    }

    /// The time a selector or subquery actually looks at: its `@` time (or
    /// the evaluation time) moved back by its offset.
    pub fn anchor(&self, at: &Option<AtModifier>, offset: &Option<Offset>, t: i64) -> i64 {
        let base = match at {
            None => t,
            Some(AtModifier::Start) => self.query_start,
            Some(AtModifier::End) => self.query_end,
            Some(AtModifier::At(st)) => system_time_ms(st),
        };
        match offset {
            None => base,
            Some(Offset::Pos(d)) => base.saturating_sub(duration_ms(d)),
            Some(Offset::Neg(d)) => base.saturating_add(duration_ms(d)),
        }
    }

    /// An instant selector: per series the newest sample within the lookback
    /// window `(t - lookback, t]`, unless that sample is a stale marker.
    pub fn select_instant(&self, vs: &VectorSelector, t: i64) -> Result<Vec<VectorSample>, EvalError> {
        Ok(self.select_instant_with_time(vs, t)?.into_iter().map(|(s, _)| s).collect())
    }

    /// Like [`Ctx::select_instant`], with each sample's own timestamp.
    pub fn select_instant_with_time(&self, vs: &VectorSelector, t: i64) -> Result<Vec<(VectorSample, i64)>, EvalError> {
        let t = self.anchor(&vs.at, &vs.offset, t);
        let matchers = selector_matchers(vs)?;
        let start = t.saturating_sub(self.opts.lookback_delta_ms).saturating_add(1);
        let series = self.select_newest(&matchers, start, t)?;
        let histograms = self.select_histograms(&matchers, start, t)?;
        if histograms.is_empty() {
            return Ok(series
                .into_iter()
                .filter_map(|s| {
                    let last = *s.samples.last()?;
                    (!is_stale(last.v)).then_some((VectorSample { labels: s.labels, v: last.v, h: None }, last.t))
                })
                .collect());
        }
        // A series may have both kinds of sample (a histogram series ends
        // with a float stale marker): the newest one wins.
        let mut newest: std::collections::BTreeMap<Labels, (i64, f64, Option<Box<FloatHistogram>>)> =
            std::collections::BTreeMap::new();
        for s in series {
            if let Some(last) = s.samples.last() {
                newest.insert(s.labels, (last.t, last.v, None));
            }
        }
        for s in histograms {
            let Some(last) = s.samples.last() else { continue };
            let newer = newest.get(&s.labels).is_none_or(|(ft, _, _)| last.t >= *ft);
            if newer {
                newest.insert(s.labels, (last.t, 0.0, Some(Box::new(last.h.clone()))));
            }
        }
        Ok(newest
            .into_iter()
            .filter(|(_, (_, v, h))| h.is_some() || !is_stale(*v))
            .map(|(labels, (ts, v, h))| (VectorSample { labels, v, h }, ts))
            .collect())
    }

    /// A range selector: every non-stale sample in `(t - range, t]`.
    pub fn select_range(&self, vs: &VectorSelector, range: i64, t: i64) -> Result<RangeVector, EvalError> {
        let end = self.anchor(&vs.at, &vs.offset, t);
        let start = end.saturating_sub(range);
        let matchers = selector_matchers(vs)?;
        let histograms = self.select_histograms(&matchers, start.saturating_add(1), end)?;
        let series = self
            .select(&matchers, start.saturating_add(1), end)?
            .into_iter()
            .filter_map(|mut s| {
                s.samples.retain(|x| !is_stale(x.v));
                (!s.samples.is_empty()).then_some(s)
            })
            .collect();
        Ok(RangeVector { series, histograms, start, end })
    }

    /// Evaluates `expr` at the step-aligned instants in `(start, end]`, as
    /// Prometheus does for subqueries (aligned to absolute time, so that
    /// consecutive evaluations see the same inner points).
    pub fn subquery(&self, expr: &Expr, start: i64, end: i64, step: i64) -> Result<RangeVector, EvalError> {
        if step <= 0 {
            return Err(EvalError::InvalidArgument("subquery step must be positive".into()));
        }
        let mut first = start.div_euclid(step).saturating_mul(step);
        if first <= start {
            first = first.saturating_add(step);
        }
        let mut out = SeriesCollector::default();
        let mut histograms: Vec<HistogramSeries> = Vec::new();
        let mut hist_index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
        let mut ts = first;
        while ts <= end {
            // Each step's intermediate samples are gone once its points are
            // collected; what stays held is the points themselves.
            let held = self.budget.held();
            let val = self.eval(expr, ts)?;
            self.budget.reset_to(held);
            match &val {
                Val::Vector(v) => self.budget.charge(v.len())?,
                _ => self.budget.charge(1)?,
            }
            match val {
                Val::Scalar(v) => out.push(&Labels::new(), ts, v),
                Val::Vector(vec) => {
                    for s in vec {
                        match s.h {
                            Some(h) => {
                                let i = *hist_index.entry(s.labels.clone()).or_insert_with(|| {
                                    histograms.push(HistogramSeries { labels: s.labels, samples: Vec::new() });
                                    histograms.len() - 1
                                });
                                histograms[i].samples.push(HistogramSample { t: ts, h: *h });
                            }
                            None => out.push(&s.labels, ts, s.v),
                        }
                    }
                }
                other => {
                    return Err(EvalError::Type(format!("subquery over {} is not allowed", other.type_name())));
                }
            }
            let Some(next) = ts.checked_add(step) else { break };
            ts = next;
        }
        Ok(RangeVector { series: out.finish(), histograms, start, end })
    }

    /// The store's float series for `matchers` in `[start, end]`, each
    /// series' samples charged to the budget as it is read: a selection
    /// too big stops before it is all in memory.
    pub fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Series>, EvalError> {
        self.charged(|more| self.store.select_checked(matchers, start, end, more))
    }

    /// Runs a selection that reports each series' samples to `more`,
    /// charging them to the budget and stopping it once over.
    fn charged(
        &self,
        select: impl FnOnce(&mut dyn FnMut(usize) -> bool) -> Vec<Series>,
    ) -> Result<Vec<Series>, EvalError> {
        let mut stopped = None;
        let out = select(&mut |n| match self.budget.charge(n) {
            Ok(()) => true,
            Err(e) => {
                stopped = Some(e);
                false
            }
        });
        match stopped {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Like [`Ctx::select`], each series with only its newest sample in
    /// `[start, end]` (charged as one).
    pub fn select_newest(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Series>, EvalError> {
        self.charged(|more| self.store.select_newest(matchers, start, end, more))
    }

    /// Native histogram series, charged to the budget.
    pub fn select_histograms(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<HistogramSeries>, EvalError> {
        let out = self.store.select_histograms(matchers, start, end);
        self.budget.charge(out.iter().map(|s| s.samples.len()).sum())?;
        Ok(out)
    }
}

/// The column-wise range engine carries floats only: a range query over
/// native histograms is refused with a reason rather than answered without
/// those series.
pub(crate) fn refuse_histograms(
    store: &dyn Queryable,
    matchers: &[Matcher],
    start: i64,
    end: i64,
) -> Result<(), EvalError> {
    match store.select_histograms(matchers, start, end).first() {
        Some(s) => Err(histograms_in_range(&s.labels)),
        None => Ok(()),
    }
}

pub(crate) fn histograms_in_range(labels: &Labels) -> EvalError {
    EvalError::Unsupported(format!(
        "native histogram samples in a range query or a range vector result (series {labels}); functions over \
         them (rate, sum_over_time, ...) work in instant queries and rules"
    ))
}

/// Gathers per-step samples into series keyed by label set, keeping the order
/// in which series first appeared.
#[derive(Default)]
pub(crate) struct SeriesCollector {
    index: std::collections::HashMap<Labels, usize>,
    series: Vec<Series>,
}

impl SeriesCollector {
    pub fn push(&mut self, labels: &Labels, t: i64, v: f64) {
        let i = match self.index.get(labels) {
            Some(&i) => i,
            None => {
                self.series.push(Series { labels: labels.clone(), samples: Vec::new() });
                self.index.insert(labels.clone(), self.series.len() - 1);
                self.series.len() - 1
            }
        };
        self.series[i].samples.push(Sample { t, v });
    }

    pub fn finish(self) -> Vec<Series> {
        self.series
    }
}

/// Converts a parsed selector into store matchers, metric name included.
pub fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, EvalError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(EvalError::Unsupported("`or` inside label matchers".into()));
    }
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        out.push(Matcher::equal(METRIC_NAME, name.clone()));
    }
    for m in &vs.matchers.matchers {
        let converted = match &m.op {
            PMatchOp::Equal => Matcher::equal(m.name.clone(), m.value.clone()),
            PMatchOp::NotEqual => Matcher { name: m.name.clone(), op: MatchOp::NotEqual(m.value.clone()) },
            PMatchOp::Re(parsed) | PMatchOp::NotRe(parsed) => {
                let negate = matches!(m.op, PMatchOp::NotRe(_));
                // Prefer our own anchoring (dot matches newline, as in Go);
                // fall back to the parser's regex, which escapes Go-only
                // syntax such as a literal `{`.
                match Matcher::regex(m.name.clone(), &m.value, negate) {
                    Ok(x) => x,
                    Err(_) => {
                        let op =
                            if negate { MatchOp::NotRegex(parsed.clone()) } else { MatchOp::Regex(parsed.clone()) };
                        Matcher { name: m.name.clone(), op }
                    }
                }
            }
        };
        out.push(converted);
    }
    Ok(out)
}

pub(crate) fn duration_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

pub(crate) fn system_time_ms(st: &SystemTime) -> i64 {
    match st.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

/// Labels that name the metric rather than the series: `__name__`, plus
/// the type and unit labels Prometheus attaches when asked to. A computed
/// value is no longer that metric, so it loses all three.
pub(crate) const NAME_LABELS: [&str; 3] = [METRIC_NAME, "__type__", "__unit__"];

/// Marks a series whose name is due to be removed when delayed name removal
/// is on. A label rather than a field on every sample, so that every operator
/// carries the mark along with the labels without knowing about it; grouping
/// and matching keys strip it (see [`strip_name`]), and [`finish_names`]
/// removes it before anything leaves the evaluator.
pub(crate) const DROP_MARK: &str = "__forewarn_drop_name__";

thread_local! {
    /// Whether the evaluation running on this thread delays name removal.
    /// Thread-scoped (set by [`DelayedNames`] for one evaluation) because the
    /// helpers that drop names are plain label functions called from dozens
    /// of places that have no evaluation context.
    static DELAYED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Turns delayed name removal on or off for the current thread until dropped,
/// restoring the previous setting (evaluations can nest, e.g. in tests).
pub(crate) struct DelayedNames(bool);

impl DelayedNames {
    pub fn set(on: bool) -> DelayedNames {
        DelayedNames(DELAYED.with(|d| d.replace(on)))
    }
}

impl Drop for DelayedNames {
    fn drop(&mut self) {
        DELAYED.with(|d| d.set(self.0));
    }
}

/// The labels of a computed value: without its name, or, with delayed name
/// removal, still named but marked for removal at the end.
pub(crate) fn drop_name(l: &Labels) -> Labels {
    if DELAYED.with(|d| d.get()) {
        let mut out = l.clone();
        if NAME_LABELS.iter().any(|n| l.get(n).is_some()) {
            out.set(DROP_MARK.to_string(), "1".to_string());
        }
        return out;
    }
    strip_name(l)
}

/// Removes the name labels (and any delayed-removal mark) now: for grouping
/// and matching keys, which never include the name.
pub(crate) fn strip_name(l: &Labels) -> Labels {
    let mut out = l.clone();
    for n in NAME_LABELS {
        out.remove(n);
    }
    out.remove(DROP_MARK);
    out
}

/// Whether a series carries the delayed-removal mark.
pub(crate) fn is_marked(l: &Labels) -> bool {
    l.get(DROP_MARK).is_some()
}

/// Carries `from`'s mark over to `to` when `to` still has a name to remove:
/// operators that rebuild label sets (`on (...)`, `by (...)`) would lose it.
pub(crate) fn keep_mark(from: &Labels, to: &mut Labels) {
    if is_marked(from) && NAME_LABELS.iter().any(|n| to.get(n).is_some()) {
        to.set(DROP_MARK.to_string(), "1".to_string());
    }
}

/// The final step of delayed name removal: marked labels lose their name.
pub(crate) fn finish_labels(l: Labels) -> Labels {
    if is_marked(&l) {
        strip_name(&l)
    } else {
        l
    }
}

/// Applies [`finish_labels`] to a result vector; two series left with one
/// label set are an error, as in Prometheus.
pub(crate) fn finish_names(vec: Vec<VectorSample>) -> Result<Vec<VectorSample>, EvalError> {
    if !vec.iter().any(|s| is_marked(&s.labels)) {
        return Ok(vec);
    }
    let out: Vec<VectorSample> =
        vec.into_iter().map(|s| VectorSample { labels: finish_labels(s.labels), v: s.v, h: s.h }).collect();
    check_unique(&out)?;
    Ok(out)
}

/// Errors when two elements of a result share a label set, which Prometheus
/// refuses because the result would be ambiguous.
pub(crate) fn check_unique(vec: &[VectorSample]) -> Result<(), EvalError> {
    if vec.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(vec.len());
    for s in vec {
        if !seen.insert(&s.labels) {
            return Err(EvalError::DuplicateLabelset);
        }
    }
    Ok(())
}
