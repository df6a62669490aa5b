//! A runner for Prometheus's PromQL test scripts (`*.test`: `load`, `clear`,
//! `eval instant|range ...` with expected results), so the evaluator can be
//! checked against the reference engine's own expectations.
//!
//! Cases the evaluator refuses (per [`check_supported`], or by an
//! `Unsupported` error such as a range query over native histograms), that
//! expect native histograms from a range query, or that the parser cannot
//! read are counted as unsupported
//! rather than failed: they measure coverage, not correctness. Annotations
//! (`expect warn`/`info`) are not produced by this evaluator and are ignored;
//! for `expect fail` only the failure itself is checked, not its message.

use std::collections::HashMap;
use std::path::Path;

use super::eval::selector_matchers;
use super::{
    check_supported, eval_instant, eval_range, parse, parse_series, parse_series_values, EvalError, EvalOptions, Expr,
    SeriesValue, Value,
};
use crate::labels::{Labels, METRIC_NAME};
use crate::native_histogram::parse_number;
use crate::native_histogram::{CounterResetHint, FloatHistogram};
use crate::store::{Series, Store};

/// Outcome of one test file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileReport {
    pub passed: usize,
    pub failed: usize,
    pub unsupported: usize,
    /// One line per failed case: line number, query and what went wrong.
    pub failures: Vec<String>,
    /// One line per unsupported case, saying why.
    pub unsupported_reasons: Vec<String>,
}

/// Runs every case of a test file. An unreadable file is one failure.
pub fn run_file(path: impl AsRef<Path>) -> FileReport {
    match std::fs::read_to_string(path.as_ref()) {
        Ok(text) => run_script(&text),
        Err(e) => {
            FileReport { failed: 1, failures: vec![format!("{}: {e}", path.as_ref().display())], ..Default::default() }
        }
    }
}

/// Runs a test script given as text.
pub fn run_script(text: &str) -> FileReport {
    // Comments count as blank lines, which end a command's block.
    let lines: Vec<&str> = text.lines().map(|l| if l.trim().starts_with('#') { "" } else { l.trim() }).collect();
    let mut report = FileReport::default();
    let mut store = Store::new(i64::MAX / 4);
    // Native histograms `load_with_nhcb` would build from classic buckets
    // (this runner does not): a query that selects any is unsupported.
    let mut histogram_series: Vec<Labels> = Vec::new();
    // Set when a load used notation we cannot read (e.g. start timestamps):
    // results until the next `clear` would be meaningless.
    let mut unreadable_load: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let start_line = i + 1;
        i += 1;
        if line.is_empty() {
            continue;
        }
        let word = line.split_whitespace().next().unwrap_or("");
        let mut block = Vec::new();
        // `clear` stands alone; other commands own the lines up to a blank.
        while word != "clear" && i < lines.len() && !lines[i].is_empty() {
            block.push(lines[i]);
            i += 1;
        }
        match word {
            "clear" => {
                store = Store::new(i64::MAX / 4);
                histogram_series.clear();
                unreadable_load = None;
            }
            // NHCB loads also add the float series, which is all we use.
            "load" | "load_with_nhcb" => match load(&store, line, &block) {
                Ok(hist) => histogram_series.extend(hist),
                Err(e) => unreadable_load = Some(format!("unreadable load at line {start_line}: {e}")),
            },
            w if w.starts_with("eval") => {
                if let Some(why) = &unreadable_load {
                    report.unsupported += 1;
                    report.unsupported_reasons.push(format!("line {start_line}: {line}: {why}"));
                    continue;
                }
                match run_eval(&store, line, &block, &histogram_series) {
                    Outcome::Pass => report.passed += 1,
                    Outcome::Unsupported(why) => {
                        report.unsupported += 1;
                        report.unsupported_reasons.push(format!("line {start_line}: {line}: {why}"));
                    }
                    Outcome::Fail(why) => {
                        report.failed += 1;
                        report.failures.push(format!("line {start_line}: {line}: {why}"));
                    }
                }
            }
            _ => {
                report.failed += 1;
                report.failures.push(format!("line {start_line}: unknown command {line:?}"));
            }
        }
    }
    report
}

/// Loads a `load <interval>` block; returns the series for which
/// `load_with_nhcb` would also have built native histograms from classic
/// buckets (which this runner does not do).
fn load(store: &Store, header: &str, block: &[&str]) -> Result<Vec<Labels>, String> {
    let with_nhcb = header.starts_with("load_with_nhcb");
    let interval = header.split_whitespace().nth(1).ok_or("load without interval")?;
    let interval = parse_time_ms(interval)?;
    let mut histograms = Vec::new();
    for line in block {
        let (labels, values) = split_series_line(line)?;
        if values.contains("{{") {
            for (i, v) in parse_series(values)?.into_iter().enumerate() {
                match v {
                    SeriesValue::Float(v) => store.append(&labels, i as i64 * interval, v),
                    SeriesValue::Histogram(h) => store.append_histogram(&labels, i as i64 * interval, *h),
                    SeriesValue::Missing => {}
                }
            }
            continue;
        }
        if with_nhcb {
            // The runner also builds a native histogram named after the
            // classic one; queries on that name are about native histograms.
            if let Some(base) = ["_bucket", "_count", "_sum"].iter().find_map(|s| labels.name()?.strip_suffix(s)) {
                let mut h = labels.clone();
                h.remove("le");
                h.set(METRIC_NAME.to_string(), base.to_string());
                histograms.push(h);
            }
        }
        for (i, v) in parse_series_values(values)?.into_iter().enumerate() {
            if let Some(v) = v {
                store.append(&labels, i as i64 * interval, v);
            }
        }
    }
    Ok(histograms)
}

enum Outcome {
    Pass,
    Fail(String),
    Unsupported(String),
}

/// What an eval block expects.
#[derive(Default)]
struct Expectation {
    fail: bool,
    ordered: bool,
    string: Option<String>,
    scalar: Option<f64>,
    /// (labels, values per step or the single instant value).
    series: Vec<(Labels, Vec<Option<f64>>)>,
    /// Native histograms expected from an instant query.
    histograms: Vec<(Labels, FloatHistogram)>,
    /// `expect range vector from A to B step S` for instant matrix results.
    range_vector: Option<(i64, i64, i64)>,
    native_histograms: bool,
}

enum Query {
    Instant(i64),
    Range(i64, i64, i64),
}

fn run_eval(store: &Store, header: &str, block: &[&str], histogram_series: &[Labels]) -> Outcome {
    let (query, expr_text, mut exp) = match parse_eval_header(header) {
        Ok(x) => x,
        Err(e) => return Outcome::Fail(format!("bad eval line: {e}")),
    };
    if let Err(e) = parse_expectations(block, &mut exp) {
        return Outcome::Fail(format!("bad expectation: {e}"));
    }
    if exp.native_histograms {
        return Outcome::Unsupported("native histograms in the expected result".into());
    }
    let expr = match parse(expr_text) {
        Ok(e) => e,
        // Either a query Prometheus also rejects, or syntax the parser lacks.
        Err(_) if exp.fail => return Outcome::Pass,
        Err(e) => return Outcome::Unsupported(format!("parse error: {e}")),
    };
    if let Err(e) = check_supported(&expr) {
        return Outcome::Unsupported(e.to_string());
    }
    if selects_any(&expr, histogram_series) {
        return Outcome::Unsupported("selects native histograms".into());
    }
    // Prometheus's test engine evaluates with delayed name removal.
    let opts = EvalOptions { delayed_name_removal: true, ..EvalOptions::default() };
    let result = match query {
        Query::Instant(t) => eval_instant(store, &expr, t, &opts).map(Ok),
        Query::Range(s, e, st) => eval_range(store, &expr, s, e, st, &opts).map(Err),
    };
    let result = match result {
        Err(e @ EvalError::Unsupported(_)) => return Outcome::Unsupported(e.to_string()),
        Err(e) if !exp.fail => return Outcome::Fail(format!("unexpected error: {e}")),
        Err(_) => return Outcome::Pass,
        Ok(_) if exp.fail => return Outcome::Fail("expected an error, got a result".into()),
        Ok(r) => r,
    };
    let checked = match (result, &query) {
        (Ok(v), Query::Instant(_)) => check_instant(v, &exp),
        (Err(m), Query::Range(s, _, st)) => check_range(&m, &exp, *s, *st),
        _ => Err("internal: result kind does not match query kind".into()),
    };
    match checked {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(e),
    }
}

/// Whether any selector in `expr` matches one of `series`.
fn selects_any(expr: &Expr, series: &[Labels]) -> bool {
    if series.is_empty() {
        return false;
    }
    let check = |vs: &promql_parser::parser::VectorSelector| match selector_matchers(vs) {
        Ok(ms) => series.iter().any(|l| ms.iter().all(|m| m.matches(l))),
        Err(_) => true,
    };
    match expr {
        Expr::VectorSelector(vs) => check(vs),
        Expr::MatrixSelector(ms) => check(&ms.vs),
        Expr::Paren(p) => selects_any(&p.expr, series),
        Expr::Unary(u) => selects_any(&u.expr, series),
        Expr::Subquery(s) => selects_any(&s.expr, series),
        Expr::Binary(b) => selects_any(&b.lhs, series) || selects_any(&b.rhs, series),
        Expr::Aggregate(a) => selects_any(&a.expr, series) || a.param.as_ref().is_some_and(|p| selects_any(p, series)),
        Expr::Call(c) => c.args.args.iter().any(|a| selects_any(a, series)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
    }
}

fn parse_eval_header(line: &str) -> Result<(Query, &str, Expectation), String> {
    let (cmd, rest) = line.split_once(char::is_whitespace).ok_or("empty eval")?;
    let mut exp = Expectation::default();
    match cmd {
        "eval" | "eval_warn" | "eval_info" => {}
        "eval_fail" => exp.fail = true,
        "eval_ordered" => exp.ordered = true,
        _ => return Err(format!("unknown command {cmd}")),
    }
    let rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix("instant") {
        let r = r.trim_start().strip_prefix("at").ok_or("instant without `at`")?.trim_start();
        let (t, expr) = r.split_once(char::is_whitespace).ok_or("missing query")?;
        return Ok((Query::Instant(parse_time_ms(t)?), expr.trim(), exp));
    }
    if let Some(r) = rest.strip_prefix("range") {
        let words: Vec<&str> = r.split_whitespace().collect();
        if words.len() < 7 || words[0] != "from" || words[2] != "to" || words[4] != "step" {
            return Err("expected `range from <t> to <t> step <d> <query>`".into());
        }
        let pos = r.find(words[5]).ok_or("missing step")? + words[5].len();
        // The step word may also occur earlier; find it after `step`.
        let step_kw = r.find(" step ").ok_or("missing step")?;
        let pos = r[step_kw + 6..].find(words[5]).map(|p| step_kw + 6 + p + words[5].len()).unwrap_or(pos);
        let q = Query::Range(parse_time_ms(words[1])?, parse_time_ms(words[3])?, parse_time_ms(words[5])?);
        return Ok((q, r[pos..].trim(), exp));
    }
    Err("expected `instant` or `range`".into())
}

fn parse_expectations(block: &[&str], exp: &mut Expectation) -> Result<(), String> {
    for line in block {
        if let Some(rest) = line.strip_prefix("expect ") {
            let rest = rest.trim();
            let kind = rest.split(|c: char| c.is_whitespace() || c == ':').next().unwrap_or("");
            match kind {
                "fail" => exp.fail = true,
                "ordered" => exp.ordered = true,
                "string" => exp.string = Some(unquote(rest["string".len()..].trim())?),
                "range" => {
                    let w: Vec<&str> = rest.split_whitespace().collect();
                    // expect range vector from A to B step S
                    if w.len() != 8 || w[1] != "vector" || w[2] != "from" || w[4] != "to" || w[6] != "step" {
                        return Err(format!("bad range vector expectation {line:?}"));
                    }
                    exp.range_vector = Some((parse_time_ms(w[3])?, parse_time_ms(w[5])?, parse_time_ms(w[7])?));
                }
                // Annotations are not modelled.
                "warn" | "info" | "no_warn" | "no_info" => {}
                _ => return Err(format!("unknown expectation {line:?}")),
            }
            continue;
        }
        if line.contains("{{") {
            let (labels, values) = split_series_line(line)?;
            match parse_series(values)?.as_slice() {
                [SeriesValue::Histogram(h)] => exp.histograms.push((labels, (**h).clone())),
                // Histograms over several steps: range results carry floats only.
                _ => exp.native_histograms = true,
            }
            continue;
        }
        if let Some(v) = parse_number(line) {
            exp.scalar = Some(v);
            continue;
        }
        let (labels, values) = split_series_line(line)?;
        exp.series.push((labels, parse_series_values(values)?));
    }
    Ok(())
}

fn unquote(s: &str) -> Result<String, String> {
    let q = s.chars().next().ok_or("empty string")?;
    if !matches!(q, '"' | '`' | '\'') || s.len() < 2 || !s.ends_with(q) {
        return Err(format!("not a quoted string: {s}"));
    }
    let body = &s[1..s.len() - 1];
    if q == '`' {
        return Ok(body.to_string());
    }
    Ok(unescape(body))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

fn check_instant(v: Value, exp: &Expectation) -> Result<(), String> {
    if let Some(want) = &exp.string {
        return match v {
            Value::String(s) if &s == want => Ok(()),
            other => Err(format!("expected string {want:?}, got {other:?}")),
        };
    }
    if let Some(want) = exp.scalar {
        return match v {
            Value::Scalar(x) if almost_equal(want, x) => Ok(()),
            other => Err(format!("expected scalar {want}, got {other:?}")),
        };
    }
    match v {
        Value::Vector(vec) => {
            let got: Vec<(Labels, Sampled)> = vec
                .into_iter()
                .map(|s| (s.labels, s.h.map_or(Sampled::Float(s.v), |h| Sampled::Histogram(*h))))
                .collect();
            let mut want: Vec<(Labels, Sampled)> = exp
                .series
                .iter()
                .map(|(l, vals)| (l.clone(), Sampled::Float(vals.first().copied().flatten().unwrap_or(f64::NAN))))
                .collect();
            want.extend(exp.histograms.iter().map(|(l, h)| (l.clone(), Sampled::Histogram(h.clone()))));
            compare_samples(&got, &want, exp.ordered)
        }
        Value::Matrix(m) => {
            let Some((from, to, step)) = exp.range_vector else {
                return if m.is_empty() && exp.series.is_empty() {
                    Ok(())
                } else {
                    Err("range vector result without `expect range vector`".into())
                };
            };
            compare_matrix(&m, &exp.series, from, step, Some(to))
        }
        Value::Scalar(x) => {
            if exp.series.is_empty() {
                return Err(format!("expected empty vector, got scalar {x}"));
            }
            Err(format!("expected vector, got scalar {x}"))
        }
        Value::String(s) => Err(format!("expected vector, got string {s:?}")),
    }
}

/// One element of an instant result as compared.
#[derive(Debug)]
enum Sampled {
    Float(f64),
    Histogram(FloatHistogram),
}

impl std::fmt::Display for Sampled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sampled::Float(v) => write!(f, "{v}"),
            Sampled::Histogram(h) => write!(f, "{h}"),
        }
    }
}

fn sampled_equal(want: &Sampled, got: &Sampled) -> bool {
    match (want, got) {
        (Sampled::Float(w), Sampled::Float(g)) => almost_equal(*w, *g),
        (Sampled::Histogram(w), Sampled::Histogram(g)) => histograms_match(w, g),
        _ => false,
    }
}

/// Histograms agree as Prometheus's test runner checks them: same layout,
/// counts and sum within its tolerance, empty buckets ignored; the counter
/// reset hint only when the expectation names one.
fn histograms_match(want: &FloatHistogram, got: &FloatHistogram) -> bool {
    let filled = |m: &std::collections::BTreeMap<i32, f64>| -> Vec<(i32, f64)> {
        m.iter().filter(|(_, &c)| c != 0.0).map(|(&i, &c)| (i, c)).collect()
    };
    let buckets_match = |a: Vec<(i32, f64)>, b: Vec<(i32, f64)>| {
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.0 == y.0 && almost_equal(x.1, y.1))
    };
    want.schema == got.schema
        && almost_equal(want.count, got.count)
        && almost_equal(want.sum, got.sum)
        && want.zero_threshold == got.zero_threshold
        && almost_equal(want.zero_count, got.zero_count)
        && want.custom_values == got.custom_values
        && (want.hint == CounterResetHint::Unknown || want.hint == got.hint)
        && buckets_match(filled(&want.positive), filled(&got.positive))
        && buckets_match(filled(&want.negative), filled(&got.negative))
}

fn compare_samples(got: &[(Labels, Sampled)], want: &[(Labels, Sampled)], ordered: bool) -> Result<(), String> {
    let want_index: HashMap<&Labels, (usize, &Sampled)> =
        want.iter().enumerate().map(|(i, (l, v))| (l, (i, v))).collect();
    for (pos, (l, v)) in got.iter().enumerate() {
        let Some(&(i, w)) = want_index.get(l) else {
            return Err(format!("unexpected series {l} {v}"));
        };
        if ordered && i != pos {
            return Err(format!("series {l} at position {pos}, expected {i}"));
        }
        if !sampled_equal(w, v) {
            return Err(format!("{l}: expected {w}, got {v}"));
        }
    }
    if got.len() != want.len() {
        let missing: Vec<String> =
            want.iter().filter(|(l, _)| !got.iter().any(|(g, _)| g == l)).map(|(l, _)| l.to_string()).collect();
        return Err(format!("expected {} series, got {} (missing: {})", want.len(), got.len(), missing.join(", ")));
    }
    Ok(())
}

fn check_range(m: &[Series], exp: &Expectation, start: i64, step: i64) -> Result<(), String> {
    if let Some(want) = exp.scalar {
        // A scalar expectation on a range query: every point has that value.
        return match m {
            [s] if s.labels.is_empty() && s.samples.iter().all(|x| almost_equal(want, x.v)) => Ok(()),
            _ => Err(format!("expected scalar {want} at every step, got {m:?}")),
        };
    }
    compare_matrix(m, &exp.series, start, step, None)
}

/// Compares series point by point; expected `_` means "no point at that step".
fn compare_matrix(
    got: &[Series],
    want: &[(Labels, Vec<Option<f64>>)],
    start: i64,
    step: i64,
    end: Option<i64>,
) -> Result<(), String> {
    let want: Vec<&(Labels, Vec<Option<f64>>)> = want.iter().filter(|(_, v)| v.iter().any(|x| x.is_some())).collect();
    for s in got {
        let Some((_, vals)) = want.iter().find(|(l, _)| *l == s.labels) else {
            return Err(format!("unexpected series {}", s.labels));
        };
        let expected: Vec<(i64, f64)> =
            vals.iter().enumerate().filter_map(|(i, v)| v.map(|v| (start + i as i64 * step, v))).collect();
        let actual: Vec<(i64, f64)> =
            s.samples.iter().filter(|x| end.is_none_or(|e| x.t <= e)).map(|x| (x.t, x.v)).collect();
        let same = expected.len() == actual.len()
            && expected.iter().zip(&actual).all(|(e, a)| e.0 == a.0 && almost_equal(e.1, a.1));
        if !same {
            return Err(format!("{}: expected {:?}, got {:?}", s.labels, expected, actual));
        }
    }
    if got.len() != want.len() {
        let missing: Vec<String> =
            want.iter().filter(|(l, _)| !got.iter().any(|g| &g.labels == l)).map(|(l, _)| l.to_string()).collect();
        return Err(format!("expected {} series, got {} (missing: {})", want.len(), got.len(), missing.join(", ")));
    }
    Ok(())
}

/// Equality with the relative tolerance the Prometheus test runner uses;
/// NaN equals NaN.
fn almost_equal(a: f64, b: f64) -> bool {
    const EPS: f64 = 1e-6;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < EPS * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < EPS
}

/// Splits `metric{a="b"} 1 2 3` into labels and the values text.
fn split_series_line(line: &str) -> Result<(Labels, &str), String> {
    let line = line.trim();
    let brace = line.find('{');
    let ws = line.find(char::is_whitespace).unwrap_or(line.len());
    let (labels_end, name, inner) = match brace {
        Some(b) if b <= ws => {
            let close = matching_brace(line, b).ok_or_else(|| format!("unclosed braces in {line:?}"))?;
            (close + 1, &line[..b], Some(&line[b + 1..close]))
        }
        _ => (ws, &line[..ws], None),
    };
    let mut labels = Labels::new();
    if !name.is_empty() {
        labels.set(METRIC_NAME.to_string(), name.to_string());
    }
    if let Some(inner) = inner {
        parse_label_list(inner, &mut labels)?;
    }
    Ok((labels, line[labels_end..].trim()))
}

fn matching_brace(s: &str, open: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s[open..].char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '}' => return Some(open + i),
            _ => {}
        }
    }
    None
}

/// Parses `a="b", "c.d"="e", "metric.name"` (a lone quoted name is the metric).
fn parse_label_list(s: &str, labels: &mut Labels) -> Result<(), String> {
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (name, after) = take_token(rest)?;
        let after = after.trim_start();
        if let Some(after) = after.strip_prefix('=') {
            let (value, after) = take_token(after.trim_start())?;
            labels.set(name, value);
            rest = after.trim_start();
        } else {
            labels.set(METRIC_NAME.to_string(), name);
            rest = after;
        }
        rest = rest.trim_start().strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(())
}

/// Takes a quoted string or a bare identifier off the front of `s`.
fn take_token(s: &str) -> Result<(String, &str), String> {
    let first = s.chars().next().ok_or("unexpected end of labels")?;
    if matches!(first, '"' | '\'' | '`') {
        let end = matching_quote(s, first).ok_or_else(|| format!("unterminated string in {s:?}"))?;
        let body = &s[1..end];
        let v = if first == '`' { body.to_string() } else { unescape(body) };
        return Ok((v, &s[end + 1..]));
    }
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '.')).unwrap_or(s.len());
    if end == 0 {
        return Err(format!("expected a label name at {s:?}"));
    }
    Ok((s[..end].to_string(), &s[end..]))
}

fn matching_quote(s: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' && q != '`' {
            escaped = true;
        } else if c == q {
            return Some(i);
        }
    }
    None
}

/// A test-file time: a duration such as `50m` or `10s53ms`, or plain seconds.
fn parse_time_ms(s: &str) -> Result<i64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let ms = if let Ok(secs) = body.parse::<f64>() {
        (secs * 1000.0).round() as i64
    } else {
        let mut total = 0i64;
        let mut rest = body;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("bad duration {s:?}"));
            }
            let n: i64 = rest[..digits].parse().map_err(|_| format!("bad duration {s:?}"))?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 7 * 86_400_000,
                "y" => 365 * 86_400_000,
                u => return Err(format!("bad duration unit {u:?} in {s:?}")),
            };
            total += n * unit;
            rest = &rest[unit_len..];
        }
        total
    };
    Ok(if neg { -ms } else { ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_lines_and_times() {
        let (l, v) = split_series_line(r#"http_requests{job="api", "a.b"="x\"y"} 1+1x2 _"#).unwrap();
        assert_eq!(l, Labels::from_pairs([("__name__", "http_requests"), ("job", "api"), ("a.b", "x\"y")]));
        assert_eq!(v, "1+1x2 _");
        let (l, _) = split_series_line("{} 5").unwrap();
        assert!(l.is_empty());
        assert_eq!(parse_time_ms("10s53ms").unwrap(), 10_053);
        assert_eq!(parse_time_ms("0").unwrap(), 0);
        assert_eq!(parse_time_ms("1h").unwrap(), 3_600_000);
    }

    #[test]
    fn a_tiny_script() {
        let r = run_script(
            "load 1m\n  m{a=\"1\"} 0+10x10\n\neval instant at 5m m\n  m{a=\"1\"} 50\n\n\
             eval range from 0 to 2m step 1m m * 2\n  {a=\"1\"} 0 20 40\n\n\
             eval instant at 5m m\n  m{a=\"1\"} 51\n\neval instant at 1m holt_winters(m[5m], 0.5, 0.5)\n",
        );
        assert_eq!((r.passed, r.failed, r.unsupported), (2, 1, 1), "{:?}", r.failures);
    }

    /// Runs Prometheus's own test files and fails if any file passes fewer
    /// cases than recorded in `promqltest_baseline.txt`. Set
    /// `PROMQLTEST_FAILURES=1` to print every failing case.
    #[test]
    fn prometheus_test_files_do_not_regress() {
        let dir = Path::new(TESTDATA_DIR);
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e} (clone ../shared beside the repo)", dir.display()));
        let mut files: Vec<_> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "test")).collect();
        files.sort();
        let baseline: HashMap<&str, usize> = include_str!("promqltest_baseline.txt")
            .lines()
            .filter_map(|l| {
                let (f, n) = l.split_once(char::is_whitespace)?;
                Some((f, n.trim().parse().ok()?))
            })
            .collect();
        let verbose = std::env::var_os("PROMQLTEST_FAILURES").is_some();
        let (mut tp, mut tf, mut tu) = (0, 0, 0);
        let mut regressions = Vec::new();
        for path in files {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let r = run_file(&path);
            println!("{name} {} passed, {} failed, {} unsupported", r.passed, r.failed, r.unsupported);
            if verbose {
                for f in &r.failures {
                    println!("    FAIL {f}");
                }
                for f in &r.unsupported_reasons {
                    println!("    UNSUPPORTED {f}");
                }
            }
            (tp, tf, tu) = (tp + r.passed, tf + r.failed, tu + r.unsupported);
            let want = baseline.get(name.as_str()).copied().unwrap_or(0);
            if r.passed < want {
                regressions.push(format!("{name}: {} passed, baseline {want}", r.passed));
            }
        }
        println!("total {tp} passed, {tf} failed, {tu} unsupported");
        assert!(regressions.is_empty(), "regressions: {regressions:?}");
        // Every supported case passes today; a new failure is a regression
        // even where a file's pass count still meets its baseline.
        assert_eq!(tf, 0, "failing cases (PROMQLTEST_FAILURES=1 lists them)");
    }

    const TESTDATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/promqltest");
}
