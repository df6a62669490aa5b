//! The PromQL evaluator: turns a parsed expression (the `promql-parser`
//! crate's AST) plus the sample [`Queryable`] into values, with Prometheus's
//! semantics (lookback, staleness, left-open ranges, extrapolated rates,
//! vector matching).
//!
//! The parser is borrowed; evaluation is ours, because rule results must agree
//! with what Prometheus would alert on. Everything the evaluator cannot do yet
//! is refused by [`check_supported`] at rule-load time rather than answered
//! wrongly at evaluation time.

mod aggregate;
mod binary;
pub mod client;
mod eval;
mod functions;
mod histogram;
#[cfg(test)]
mod histogram_tests;
pub mod limits;
pub mod promqltest;
mod range_eval;
#[cfg(test)]
mod range_eval_tests;
mod range_functions;
mod series_notation;
mod strings;
mod support;
#[cfg(test)]
mod tests;

/// The label matchers of a vector selector (name included), for callers that
/// read raw samples from the store.
pub use eval::selector_matchers;
pub use series_notation::{parse_series, parse_series_values, SeriesValue};
pub use support::{check_supported, selector_names};

use crate::labels::Labels;
use crate::native_histogram::FloatHistogram;
use crate::store::{Queryable, Series};
use eval::{Ctx, Val};

pub use promql_parser::parser::Expr;

/// Prometheus refuses range queries with more points than this per series.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Knobs that change query results.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// How far back an instant selector looks for the latest sample.
    pub lookback_delta_ms: i64,
    /// Prometheus's `promql-delayed-name-removal`: operators that drop
    /// `__name__` only mark the series, and the name goes at the end of the
    /// query, so `label_replace` can still read or keep it. Off by default,
    /// as in the Prometheus server; on in its test engine.
    pub delayed_name_removal: bool,
    /// Timeout, sample limit and cancellation of each evaluation.
    pub limits: limits::QueryLimits,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            delayed_name_removal: false,
            limits: limits::QueryLimits::default(),
        }
    }
}

/// The result of evaluating an expression at one instant.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(f64),
    Vector(Vec<VectorSample>),
    Matrix(Vec<Series>),
    String(String),
}

/// One element of an instant vector: a float, or a native histogram (then
/// `v` is 0 and means nothing).
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    pub labels: Labels,
    pub v: f64,
    pub h: Option<Box<FloatHistogram>>,
}

/// Why an expression could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("not supported yet: {0}")]
    Unsupported(String),
    #[error("vector cannot contain metrics with the same labelset")]
    DuplicateLabelset,
    /// One side of a vector match has several series for one match group.
    #[error("{0};many-to-many matching not allowed: matching labels must be unique on one side")]
    ManyToMany(String),
    /// A match produced ambiguous results (missing group_left/group_right, or
    /// grouping labels that do not make results unique).
    #[error("{0}")]
    DuplicateMatch(String),
    #[error("type error: {0}")]
    Type(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The query ran past its timeout (`query.timeout`, or a rule's group interval).
    #[error("query timed out in expression evaluation (after {:.1}s; the limit is query.timeout)", .0.as_secs_f64())]
    Timeout(std::time::Duration),
    /// The query would hold more than `query.max_samples` samples.
    #[error("{} (limit: query.max_samples)", limits::TOO_MANY_SAMPLES)]
    TooManySamples,
    /// Its caller stopped it: the client went away, or the daemon is shutting down.
    #[error("query was canceled in expression evaluation")]
    Canceled,
    /// The series could not be read (a `datasource` that did not answer).
    #[error("{0}")]
    Read(String),
}

/// Why an expression was refused before evaluation: too big to parse
/// safely ([`limits`]), a string literal that is not UTF-8 (`strings.rs`), or
/// a syntax error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("query is {0} bytes long, more than the {max} accepted; split it into recording rules", max = limits::MAX_QUERY_BYTES)]
    TooLong(usize),
    /// Found by scanning the text, before parsing: names the place.
    #[error(
        "{line}:{col}: expression nests deeper than {max} levels (at byte {at}); \
         simplify it or split it into recording rules",
        max = limits::MAX_DEPTH
    )]
    NestsTooDeep { line: usize, col: usize, at: usize },
    /// `literal` is the string as written, quotes included.
    #[error(
        "1:{col}: string {literal} is not valid UTF-8 once its escapes are decoded; \
         label names and values must be UTF-8"
    )]
    InvalidUtf8 { col: usize, literal: String },
    /// The parser's message (`promql_parser` reports errors as text).
    #[error("{0}")]
    Syntax(String),
    /// Found in the parsed tree (the text scan is an upper bound).
    #[error("expression nests deeper than {max} levels; simplify it or split it into recording rules", max = limits::MAX_DEPTH)]
    TreeTooDeep,
    #[error("expression has more than {max} parts; simplify it or split it into recording rules", max = limits::MAX_NODES)]
    TooManyParts,
}

/// Parses a PromQL expression, refusing text too long or too deeply nested
/// to parse and evaluate safely ([`limits`]).
pub fn parse(expr: &str) -> Result<Expr, ParseError> {
    limits::prescan(expr)?;
    strings::check_literals(expr)?;
    let parsed = promql_parser::parser::parse(expr).map_err(ParseError::Syntax)?;
    limits::check_tree(&parsed)?;
    Ok(parsed)
}

/// Evaluates `expr` at `t_ms`.
pub fn eval_instant(store: &dyn Queryable, expr: &Expr, t_ms: i64, opts: &EvalOptions) -> Result<Value, EvalError> {
    let _delayed = eval::DelayedNames::set(opts.delayed_name_removal);
    let budget = limits::Budget::start(&opts.limits);
    let ctx = Ctx { store, opts, budget: &budget, query_start: t_ms, query_end: t_ms };
    Ok(match ctx.eval(expr, t_ms)? {
        Val::Scalar(v) => Value::Scalar(v),
        Val::Vector(v) => Value::Vector(eval::finish_names(v)?),
        Val::Matrix(m) => match m.histograms.first() {
            // Range vector results carry float samples only.
            Some(h) => return Err(eval::histograms_in_range(&h.labels)),
            None => Value::Matrix(finish_series(m.series)?),
        },
        Val::String(s) => Value::String(s),
    })
}

/// Evaluates `expr` at every step of `[start_ms, end_ms]`, like `query_range`:
/// one series per label set, with a point for each step where it had a value.
/// A scalar result becomes a series without labels. Evaluated by column
/// (`range_eval`), which reads each series once for all steps.
pub fn eval_range(
    store: &dyn Queryable,
    expr: &Expr,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    opts: &EvalOptions,
) -> Result<Vec<Series>, EvalError> {
    if step_ms <= 0 {
        return Err(EvalError::InvalidArgument(
            "zero or negative query resolution step widths are not accepted".into(),
        ));
    }
    if end_ms < start_ms {
        return Err(EvalError::InvalidArgument("end timestamp must not be before start time".into()));
    }
    let points = end_ms.checked_sub(start_ms).map(|span| span / step_ms);
    let Some(points) = points.filter(|&p| p <= MAX_POINTS_PER_SERIES) else {
        return Err(EvalError::InvalidArgument(format!(
            "exceeded maximum resolution of {MAX_POINTS_PER_SERIES} points per timeseries"
        )));
    };
    let _delayed = eval::DelayedNames::set(opts.delayed_name_removal);
    let budget = limits::Budget::start(&opts.limits);
    let ctx = Ctx { store, opts, budget: &budget, query_start: start_ms, query_end: end_ms };
    // At most MAX_POINTS_PER_SERIES steps, each within [start, end]: no overflow.
    let steps: Vec<i64> = (0..=points).map(|i| start_ms + i * step_ms).collect();
    let engine = range_eval::RangeEval { ctx: &ctx, steps: steps.clone() };
    let series = match engine.eval(expr)? {
        range_eval::Cols::Scalar(v) => vec![Series {
            labels: Labels::new(),
            samples: steps.iter().zip(v).map(|(&t, v)| crate::store::Sample { t, v }).collect(),
        }],
        range_eval::Cols::Vector(cols) => range_eval::merge(finish_columns(cols), opts.delayed_name_removal)?
            .into_iter()
            .map(|c| Series {
                labels: c.labels,
                samples: steps
                    .iter()
                    .zip(c.vals)
                    .filter_map(|(&t, v)| v.map(|v| crate::store::Sample { t, v }))
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect(),
    };
    Ok(series)
}

/// Delayed name removal for a range result: series that end up with one
/// label set are joined; where both have a point that is the duplicate label
/// set error, as at an instant.
fn finish_columns(cols: Vec<range_eval::Column>) -> Vec<range_eval::Column> {
    cols.into_iter().map(|c| range_eval::Column { labels: eval::finish_labels(c.labels), vals: c.vals }).collect()
}

/// Delayed name removal for a range vector result (a matrix selector or
/// subquery at the top level); a label set may not repeat.
fn finish_series(series: Vec<Series>) -> Result<Vec<Series>, EvalError> {
    let out: Vec<Series> =
        series.into_iter().map(|s| Series { labels: eval::finish_labels(s.labels), samples: s.samples }).collect();
    let mut seen = std::collections::HashSet::with_capacity(out.len());
    if out.iter().all(|s| seen.insert(&s.labels)) {
        Ok(out)
    } else {
        Err(EvalError::DuplicateLabelset)
    }
}
