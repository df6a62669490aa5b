//! The expanding series notation of Prometheus test files and `promtool`
//! unit tests: `1 2 3`, `a+bxN` (a, then N more values stepping by b),
//! `a-bxN`, `axN`, `_` (no sample), `_xN` (N missing samples) and `stale`;
//! native histograms as `{{schema:0 count:1 buckets:[1]}}`, repeated with
//! `{{...}}xN` or stepped with `{{...}}+{{...}}xN` / `{{...}}-{{...}}xN`.

use crate::native_histogram::{parse_histogram, parse_number, FloatHistogram};
use crate::store::stale_nan;

/// One entry of an expanded series.
#[derive(Clone, Debug, PartialEq)]
pub enum SeriesValue {
    Missing,
    /// A float sample (the stale-marker NaN for `stale`).
    Float(f64),
    Histogram(Box<FloatHistogram>),
}

/// Expands a series description into one entry per interval: `None` for a
/// missing sample, the stale-marker NaN for `stale`. Native histograms are
/// refused; [`parse_series`] reads them.
pub fn parse_series_values(s: &str) -> Result<Vec<Option<f64>>, String> {
    parse_series(s)?
        .into_iter()
        .map(|v| match v {
            SeriesValue::Missing => Ok(None),
            SeriesValue::Float(f) => Ok(Some(f)),
            SeriesValue::Histogram(_) => Err("native histogram values are not allowed here".to_string()),
        })
        .collect()
}

/// Expands a series description with floats and native histograms.
pub fn parse_series(s: &str) -> Result<Vec<SeriesValue>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            rest = expand_histogram(rest, &mut out)?;
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let mut floats = Vec::new();
            expand(&rest[..end], &mut floats)?;
            out.extend(floats.into_iter().map(|v| v.map_or(SeriesValue::Missing, SeriesValue::Float)));
            rest = &rest[end..];
        }
        rest = rest.trim_start();
    }
    Ok(out)
}

/// Splits `{{...}}` off the front of `s`.
fn take_histogram(s: &str) -> Result<(FloatHistogram, &str), String> {
    let end = s.find("}}").ok_or_else(|| format!("histogram {s:?} is not closed with }}}}"))?;
    Ok((parse_histogram(&s[..end + 2])?, &s[end + 2..]))
}

/// Expands one histogram term (`{{..}}`, `{{..}}xN`, `{{..}}+{{..}}xN`,
/// `{{..}}-{{..}}xN`) from the front of `s`; returns what follows it.
fn expand_histogram<'a>(s: &'a str, out: &mut Vec<SeriesValue>) -> Result<&'a str, String> {
    let (base, rest) = take_histogram(s)?;
    let count_of = |r: &'a str| -> Result<(usize, &'a str), String> {
        let digits = r.strip_prefix('x').ok_or_else(|| format!("expected xN after the histogram step in {s:?}"))?;
        let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
        let n = parse_count(&digits[..end], s)?;
        Ok((n, &digits[end..]))
    };
    let sign = match rest.chars().next() {
        Some('+') => 1.0,
        Some('-') => -1.0,
        Some('x') => {
            let (n, after) = count_of(rest)?;
            out.extend(std::iter::repeat_n(SeriesValue::Histogram(Box::new(base)), n + 1));
            return Ok(after);
        }
        _ => {
            out.push(SeriesValue::Histogram(Box::new(base)));
            return Ok(rest);
        }
    };
    let (step, after) = take_histogram(rest[1..].trim_start())?;
    let (n, after) = count_of(after)?;
    let mut cur = base;
    out.push(SeriesValue::Histogram(Box::new(cur.clone())));
    for _ in 0..n {
        if cur.schema > step.schema && !cur.uses_custom_buckets() {
            // Prometheus refuses to step a histogram to a coarser schema.
            return Err(format!("in {s:?}: cannot step from schema {} to {}", step.schema, cur.schema));
        }
        let r = if sign > 0.0 { cur.add(&step) } else { cur.sub(&step) };
        r.map_err(|e| format!("in {s:?}: {e}"))?;
        out.push(SeriesValue::Histogram(Box::new(cur.clone())));
    }
    Ok(after)
}

fn expand(tok: &str, out: &mut Vec<Option<f64>>) -> Result<(), String> {
    match tok {
        "_" => {
            out.push(None);
            return Ok(());
        }
        "stale" => {
            out.push(Some(stale_nan()));
            return Ok(());
        }
        _ => {}
    }
    if let Some(n) = tok.strip_prefix("_x") {
        let n = parse_count(n, tok)?;
        out.extend(std::iter::repeat_n(None, n));
        return Ok(());
    }
    if let Some(n) = tok.strip_prefix("stalex") {
        let n = parse_count(n, tok)?;
        out.extend(std::iter::repeat_n(Some(stale_nan()), n));
        return Ok(());
    }
    if let Some(v) = parse_number(tok) {
        out.push(Some(v));
        return Ok(());
    }
    let (base, count) = tok.rsplit_once('x').ok_or_else(|| format!("invalid series value {tok:?}"))?;
    let n = parse_count(count, tok)?;
    // Split `a+b` / `a-b` at the sign that is neither leading nor part of an
    // exponent.
    let bytes = base.as_bytes();
    let split = (1..bytes.len())
        .rev()
        .find(|&i| (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E' | b'+' | b'-'));
    let (start, step) = match split {
        Some(i) => {
            let start = parse_number(&base[..i]).ok_or_else(|| format!("invalid series value {tok:?}"))?;
            let step = parse_number(&base[i..]).ok_or_else(|| format!("invalid series value {tok:?}"))?;
            (start, step)
        }
        None => (parse_number(base).ok_or_else(|| format!("invalid series value {tok:?}"))?, 0.0),
    };
    // Accumulate rather than multiply, as Prometheus does, so the values
    // carry the same rounding.
    let mut v = start;
    for _ in 0..=n {
        out.push(Some(v));
        v += step;
    }
    Ok(())
}

fn parse_count(s: &str, tok: &str) -> Result<usize, String> {
    s.parse::<usize>().map_err(|_| format!("invalid repetition count in {tok:?}"))
}
