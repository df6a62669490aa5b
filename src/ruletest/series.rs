//! Input series of a test group: `up{job="x"}` parsed into labels, values
//! expanded from the `a+bxN` notation, and loaded into the store lazily,
//! up to each evaluation time (as promtool does).

use crate::labels::{Labels, METRIC_NAME};
use crate::promql::{self, Expr, SeriesValue};
use crate::store::Store;

/// Parses a series name as written in tests: `metric`, `metric{a="b"}` or
/// `{a="b"}`; only `=` matchers. An empty string is the empty label set.
pub fn parse_metric(s: &str) -> Result<Labels, String> {
    if s.trim().is_empty() {
        return Ok(Labels::new());
    }
    let expr = promql::parse(s).map_err(|e| format!("invalid series {s:?}: {}", one_line(&e.to_string())))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("invalid series {s:?}: expected a metric name and/or {{label=\"value\"}}"));
    };
    if vs.offset.is_some() || vs.at.is_some() || !vs.matchers.or_matchers.is_empty() {
        return Err(format!("invalid series {s:?}: expected a metric name and/or {{label=\"value\"}}"));
    }
    let mut labels = Labels::new();
    if let Some(n) = &vs.name {
        labels.set(METRIC_NAME.into(), n.clone());
    }
    for m in &vs.matchers.matchers {
        if !matches!(m.op, promql_parser::label::MatchOp::Equal) {
            return Err(format!("invalid series {s:?}: label {} must use `=`", m.name));
        }
        labels.set(m.name.clone(), m.value.clone());
    }
    Ok(labels)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Samples waiting to be appended, in time order.
#[derive(Default)]
pub struct Loader {
    series: Vec<Labels>,
    /// (time ms, series index, value: a float or a native histogram),
    /// sorted by time.
    samples: Vec<(i64, usize, SeriesValue)>,
    next: usize,
}

impl Loader {
    /// Adds a series whose `values` start at `start` and step by `interval`.
    pub fn add(&mut self, labels: Labels, values: Vec<SeriesValue>, start: i64, interval: i64) {
        let idx = self.series.len();
        self.series.push(labels);
        for (i, v) in values.into_iter().enumerate() {
            if !matches!(v, SeriesValue::Missing) {
                self.samples.push((start + i as i64 * interval, idx, v));
            }
        }
    }

    /// Sorts the samples; call once after the last `add`.
    pub fn seal(&mut self) {
        self.samples.sort_by_key(|s| s.0);
    }

    /// Appends every sample at or before `t` not appended yet.
    pub fn load_until(&mut self, store: &Store, t: i64) {
        while let Some((ts, idx, v)) = self.samples.get(self.next) {
            if *ts > t {
                break;
            }
            match v {
                SeriesValue::Float(v) => store.append(&self.series[*idx], *ts, *v),
                SeriesValue::Histogram(h) => store.append_histogram(&self.series[*idx], *ts, (**h).clone()),
                SeriesValue::Missing => {}
            }
            self.next += 1;
        }
    }
}
