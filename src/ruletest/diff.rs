//! Expected-versus-got comparison and a readable diff: lines only in the
//! expectation start with `-`, lines only in the result with `+`, shared
//! lines with two spaces.

use std::collections::BTreeMap;

use crate::labels::Labels;

/// One alert as compared: labels (with `alertname`) and annotations.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AlertRow {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// One sample as compared: a float, or a native histogram in the test
/// notation (compared as text, as promtool does).
#[derive(Clone, Debug)]
pub struct SampleRow {
    pub labels: Labels,
    pub value: f64,
    pub histogram: Option<String>,
}

fn map_text(m: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

fn alert_text(a: &AlertRow) -> String {
    format!("labels {} annotations {}", map_text(&a.labels), map_text(&a.annotations))
}

/// The diff of two sorted alert lists.
pub fn alerts(exp: &[AlertRow], got: &[AlertRow]) -> String {
    let e: Vec<String> = exp.iter().map(alert_text).collect();
    let g: Vec<String> = got.iter().map(alert_text).collect();
    lines(&e, &g)
}

/// Within one unit in the last place: differences in the last bit of the
/// mantissa are ignored (promtool's `fuzzy_compare`).
pub fn fuzzy_equal(a: f64, b: f64) -> bool {
    if a == b || (a.is_nan() && b.is_nan()) {
        return true;
    }
    if !a.is_finite() || !b.is_finite() || a.is_sign_negative() != b.is_sign_negative() {
        return false;
    }
    let (x, y) = (a.abs().to_bits() as i64, b.abs().to_bits() as i64);
    (x - y).abs() <= 1
}

fn exact_equal(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Compares samples regardless of order; `Err` holds the diff.
pub fn samples(mut exp: Vec<SampleRow>, mut got: Vec<SampleRow>, fuzzy: bool) -> Result<(), String> {
    exp.sort_by(|a, b| a.labels.cmp(&b.labels));
    got.sort_by(|a, b| a.labels.cmp(&b.labels));
    let eq = if fuzzy { fuzzy_equal } else { exact_equal };
    let eq = |a: &SampleRow, b: &SampleRow| a.labels == b.labels && eq(a.value, b.value) && a.histogram == b.histogram;
    let same = exp.len() == got.len() && exp.iter().zip(&got).all(|(e, g)| eq(e, g));
    if same {
        return Ok(());
    }
    let text = |s: &SampleRow| match &s.histogram {
        Some(h) => format!("{} {h}", s.labels),
        None => format!("{} {}", s.labels, s.value),
    };
    let e: Vec<String> = exp.iter().map(text).collect();
    // A got value equal (fuzzily) to the expected one prints as expected.
    let g: Vec<String> = got
        .iter()
        .map(|s| match exp.iter().find(|x| eq(x, s)) {
            Some(x) => text(x),
            None => text(s),
        })
        .collect();
    Err(format!("samples differ\n{}", lines(&e, &g)))
}

/// A multiset diff of two line lists, in expectation order then extras.
pub fn lines(exp: &[String], got: &[String]) -> String {
    let mut left: Vec<Option<&String>> = got.iter().map(Some).collect();
    let mut out = String::from("        (- expected, not got; + got, not expected)\n");
    for e in exp {
        match left.iter_mut().find(|g| g.is_some_and(|g| g == e)) {
            Some(slot) => {
                *slot = None;
                out.push_str(&format!("          {e}\n"));
            }
            None => out.push_str(&format!("        - {e}\n")),
        }
    }
    for g in left.into_iter().flatten() {
        out.push_str(&format!("        + {g}\n"));
    }
    if exp.is_empty() && got.is_empty() {
        out.push_str("          (nothing)\n");
    }
    out.trim_end().to_string()
}
