//! What history a set of rules reads: every series selector in them, and
//! how far before the first evaluation each one must reach.
//!
//! `replay --source` pulls history from a Prometheus-compatible server, so it
//! has to ask for exactly the series the rules would have read, early enough
//! that the first evaluation at `--from` sees what the daemon would have
//! seen: range windows, offsets and subqueries, the instant lookback, a
//! trend's fit window and earlier seasons, a learned band's baseline. And
//! `for` must have run before `--from` for a pending alert to be firing
//! there, so evaluation itself starts a "warm-up" earlier.
//!
//! The rule files are read here a second time, loosely (the strict loader
//! has already accepted them): the rule kinds keep their windows private to
//! the engine, and this is the one place that needs them from outside.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::duration::PromDuration;
use promql_parser::parser::{AtModifier, Offset};

use crate::promql::{self, Expr};

/// An instant selector sees a sample this old (Prometheus's default).
const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// The history some rule files need.
#[derive(Debug, Default, PartialEq)]
pub struct Needs {
    /// Selector text (without offset or `@`) -> how long before an
    /// evaluation its samples are read.
    pub selectors: BTreeMap<String, i64>,
    /// Selector text -> the absolute windows `[lo, hi]` (Unix ms, sorted,
    /// not overlapping) that an `@ <time>` pins it to, read at every
    /// evaluation whatever the evaluation time.
    pub pinned: BTreeMap<String, Vec<(i64, i64)>>,
    /// The longest `for`: evaluation starts this long before `--from`.
    pub warmup_ms: i64,
    /// The shortest `interval:` a group sets, if any does.
    pub min_interval_ms: Option<i64>,
    /// The shortest range window or subquery range, to warn when the step
    /// leaves too few points in it.
    pub min_range_ms: Option<i64>,
}

/// Why the needs could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum NeedsError {
    #[error("{file}: cannot read: {msg}")]
    Read { file: String, msg: String },
    #[error("{file}: {msg}")]
    Parse { file: String, msg: String },
}

#[derive(Deserialize)]
struct FileYaml {
    #[serde(default)]
    groups: Vec<GroupYaml>,
}

#[derive(Deserialize)]
struct GroupYaml {
    interval: Option<PromDuration>,
    #[serde(default)]
    rules: Option<Vec<RuleYaml>>,
}

#[derive(Deserialize)]
struct RuleYaml {
    expr: Option<serde_json::Value>,
    #[serde(rename = "for")]
    for_: Option<PromDuration>,
    trend: Option<TrendYaml>,
    ratio: Option<RatioYaml>,
    anomaly: Option<AnomalyYaml>,
    threshold: Option<SeriesYaml>,
}

#[derive(Deserialize)]
struct TrendYaml {
    series: String,
    over: PromDuration,
    limit: Option<serde_json::Value>,
    seasonality: Option<String>,
}

#[derive(Deserialize)]
struct RatioYaml {
    of: String,
    to: String,
    baseline: Option<PromDuration>,
}

#[derive(Deserialize)]
struct AnomalyYaml {
    series: String,
    baseline: PromDuration,
}

#[derive(Deserialize)]
struct SeriesYaml {
    series: String,
}

impl Needs {
    /// Adds what the rule file `file` (its text) needs.
    pub fn add_file(&mut self, file: &str, text: &str) -> Result<(), NeedsError> {
        let parsed: FileYaml = serde_saphyr::from_str(text)
            .map_err(|e| NeedsError::Parse { file: file.to_string(), msg: e.without_snippet().to_string() })?;
        for g in parsed.groups {
            if let Some(i) = g.interval {
                let ms = i.as_millis();
                self.min_interval_ms = Some(self.min_interval_ms.map_or(ms, |m| m.min(ms)));
            }
            for r in g.rules.unwrap_or_default() {
                self.add_rule(file, &r)?;
            }
        }
        Ok(())
    }

    fn add_rule(&mut self, file: &str, r: &RuleYaml) -> Result<(), NeedsError> {
        self.warmup_ms = self.warmup_ms.max(r.for_.map_or(0, |d| d.as_millis()));
        // (expression text, window the rule reads before its own lookback).
        let mut exprs: Vec<(String, i64)> = Vec::new();
        if let Some(e) = &r.expr {
            let text = match e {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            exprs.push((text, 0));
        }
        if let Some(t) = &r.trend {
            let over = t.over.as_millis();
            // Earlier seasons: `auto` (the default) looks at earlier days.
            let period = match t.seasonality.as_deref() {
                Some("none") => None,
                Some("1w") => Some(7 * crate::analysis::DAY_MS),
                _ => Some(crate::analysis::DAY_MS),
            };
            let seasons = crate::analysis::SeasonalCheck::default().periods as i64;
            let window = over + period.map_or(0, |p| seasons * p + over);
            exprs.push((t.series.clone(), window));
            if let Some(serde_json::Value::String(limit)) = &t.limit {
                if crate::rules::kinds::units::parse_amount(limit).is_err() {
                    exprs.push((limit.clone(), 0));
                }
            }
        }
        if let Some(ra) = &r.ratio {
            let window = ra.baseline.map_or(0, |b| b.as_millis());
            exprs.push((ra.of.clone(), window));
            exprs.push((ra.to.clone(), window));
        }
        if let Some(a) = &r.anomaly {
            exprs.push((a.series.clone(), a.baseline.as_millis()));
        }
        if let Some(t) = &r.threshold {
            exprs.push((t.series.clone(), 0));
        }
        for (text, window) in exprs {
            let e =
                promql::parse(&text).map_err(|e| NeedsError::Parse { file: file.to_string(), msg: e.to_string() })?;
            // A kind's window is evaluated as a range query over it, where
            // `@ start()` is the window's start; a plain rule is an instant
            // query, where it is the evaluation time.
            self.walk(&e, Frame::Relative(window), window);
        }
        Ok(())
    }

    /// Records every selector under `e`, evaluated over `frame`, in a query
    /// whose start (`@ start()`) is up to `start_before` ms before the
    /// evaluation time.
    fn walk(&mut self, e: &Expr, frame: Frame, start_before: i64) {
        match e {
            Expr::VectorSelector(vs) => {
                let mut plain = vs.clone();
                plain.offset = None;
                plain.at = None;
                self.read(plain.to_string(), frame.anchor(&vs.at, &vs.offset, start_before), LOOKBACK_MS);
            }
            Expr::MatrixSelector(ms) => {
                let mut plain = ms.vs.clone();
                plain.offset = None;
                plain.at = None;
                let range = ms.range.as_millis() as i64;
                self.range(range);
                self.read(plain.to_string(), frame.anchor(&ms.vs.at, &ms.vs.offset, start_before), range);
            }
            Expr::Subquery(sq) => {
                let range = sq.range.as_millis() as i64;
                self.range(range);
                self.walk(&sq.expr, frame.anchor(&sq.at, &sq.offset, start_before).widen(range), start_before);
            }
            Expr::Aggregate(a) => {
                self.walk(&a.expr, frame, start_before);
                if let Some(p) = &a.param {
                    self.walk(p, frame, start_before);
                }
            }
            Expr::Unary(u) => self.walk(&u.expr, frame, start_before),
            Expr::Binary(b) => {
                self.walk(&b.lhs, frame, start_before);
                self.walk(&b.rhs, frame, start_before);
            }
            Expr::Paren(p) => self.walk(&p.expr, frame, start_before),
            Expr::Call(c) => {
                for a in &c.args.args {
                    self.walk(a, frame, start_before);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    /// A selector read at the times of `frame`, each time reaching `window`
    /// back (the lookback, or its range).
    fn read(&mut self, text: String, frame: Frame, window: i64) {
        match frame.widen(window) {
            Frame::Relative(before) => self.selector(text, before),
            Frame::Fixed(lo, hi) => self.pin(text, lo, hi),
        }
    }

    /// Adds `[lo, hi]` to the fixed windows of `text`, merging overlaps.
    fn pin(&mut self, text: String, lo: i64, hi: i64) {
        let windows = self.pinned.entry(text).or_default();
        windows.push((lo, hi));
        windows.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(windows.len());
        for &(a, b) in windows.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *windows = merged;
    }

    fn selector(&mut self, text: String, lookback: i64) {
        let e = self.selectors.entry(text).or_insert(0);
        *e = (*e).max(lookback);
    }

    fn range(&mut self, range: i64) {
        self.min_range_ms = Some(self.min_range_ms.map_or(range, |m| m.min(range)));
    }
}

/// The times at which part of an expression is evaluated: relative to each
/// rule evaluation at `t`, `[t - before, t]`; or pinned by an `@ <time>`
/// to one absolute window `[lo, hi]` (Unix ms) whatever `t` is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Frame {
    Relative(i64),
    Fixed(i64, i64),
}

impl Frame {
    /// Where a selector or subquery with `at` and `offset` looks, evaluated
    /// over `self`. `@ start()` and `@ end()` are the query's bounds, not
    /// the time of the step being evaluated: a rule is evaluated as an
    /// instant query, so both are the evaluation time itself (in Prometheus
    /// as in forewarn's engine), even inside a subquery or under another
    /// `@`; `start_before` widens that for a kind's range-evaluated window.
    fn anchor(self, at: &Option<AtModifier>, offset: &Option<Offset>, start_before: i64) -> Frame {
        match (at, self) {
            (Some(AtModifier::At(st)), _) => {
                let t = unix_ms(st) - signed_offset_ms(offset);
                Frame::Fixed(t, t)
            }
            (Some(AtModifier::Start), _) => Frame::Relative(start_before + offset_ms(offset)),
            (Some(AtModifier::End), _) => Frame::Relative(offset_ms(offset)),
            (None, Frame::Relative(before)) => Frame::Relative(before + offset_ms(offset)),
            (None, Frame::Fixed(lo, hi)) => {
                let d = signed_offset_ms(offset);
                Frame::Fixed(lo - d, hi - d)
            }
        }
    }

    /// Each time also reaches `window` further back.
    fn widen(self, window: i64) -> Frame {
        match self {
            Frame::Relative(before) => Frame::Relative(before + window),
            Frame::Fixed(lo, hi) => Frame::Fixed(lo - window, hi),
        }
    }
}

/// A positive offset reads further back; a negative one reads ahead of the
/// evaluation, which history ending at `--to` cannot serve anyway.
fn offset_ms(o: &Option<Offset>) -> i64 {
    signed_offset_ms(o).max(0)
}

/// Under a fixed `@` time a negative offset is just a later fixed time.
fn signed_offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

fn unix_ms(st: &std::time::SystemTime) -> i64 {
    match st.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_offsets_subqueries_for_and_kinds() {
        let text = r#"
groups:
  - name: a
    interval: 30s
    rules:
      - alert: Errors
        expr: sum(rate(http_errors_total{code=~"5.."}[5m] offset 1h)) > 1 and on() up{job="x"} == 1
        for: 10m
      - record: slow
        expr: max_over_time(deriv(queue[2m])[30m:1m])
  - name: b
    rules:
      - alert: Leak
        trend: { series: 'mem_bytes{svc="a"}', over: 2h, rising: 10MiB/h, seasonality: none }
      - alert: Ratio
        ratio: { of: 'rate(out_total[5m])', to: 'rate(in_total[5m])', baseline: 1d }
        for: 15m
"#;
        let mut n = Needs::default();
        n.add_file("r.yml", text).unwrap();
        let m = 60_000;
        assert_eq!(n.selectors["http_errors_total{code=~\"5..\"}"], 65 * m);
        assert_eq!(n.selectors["up{job=\"x\"}"], 5 * m);
        assert_eq!(n.selectors["queue"], 32 * m);
        assert_eq!(n.selectors["mem_bytes{svc=\"a\"}"], 125 * m);
        assert_eq!(n.selectors["out_total"], 1440 * m + 5 * m);
        assert_eq!(n.selectors.len(), 6, "{:?}", n.selectors);
        assert_eq!(n.warmup_ms, 15 * m);
        assert_eq!(n.min_interval_ms, Some(30_000));
        assert_eq!(n.min_range_ms, Some(2 * m));
    }

    #[test]
    fn at_modifiers_pin_windows_or_follow_the_evaluation() {
        let text = r#"
groups:
  - name: a
    rules:
      - record: pinned
        expr: foo @ 1700000000 + foo @ 1700000200 + later @ 1700000000 offset -1m
      - record: pinned_range
        expr: rate(bar[10m] @ 1700000000 offset 1h) + max_over_time(baz[30m:1m] @ 1700000000)
      - record: bounds
        expr: qux @ start() + quux @ end() offset 2m + max_over_time((sub @ end())[1h:1m])
      - alert: Odd
        anomaly: { series: 'x @ start()', baseline: 1h }
"#;
        let mut n = Needs::default();
        n.add_file("r.yml", text).unwrap();
        let (t, m) = (1_700_000_000_000i64, 60_000);
        // Two overlapping lookbacks merge into one window.
        assert_eq!(n.pinned["foo"], vec![(t - 5 * m, t + 200_000)]);
        assert_eq!(n.pinned["later"], vec![(t + m - 5 * m, t + m)]);
        assert_eq!(n.pinned["bar"], vec![(t - 70 * m, t - 60 * m)]);
        // The subquery's steps reach back 30m, each step's lookback 5m more.
        assert_eq!(n.pinned["baz"], vec![(t - 35 * m, t)]);
        assert_eq!(n.pinned.len(), 4, "{:?}", n.pinned);
        // start()/end() are the evaluation time, in a subquery too, so the
        // subquery's hour does not widen `sub`; a kind's window is a range
        // query whose start() is the window's start.
        assert_eq!(n.selectors["qux"], 5 * m);
        assert_eq!(n.selectors["quux"], 7 * m);
        assert_eq!(n.selectors["sub"], 5 * m);
        assert_eq!(n.selectors["x"], 65 * m);
        assert_eq!(n.selectors.len(), 4, "{:?}", n.selectors);
    }
}
