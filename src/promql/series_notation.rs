//! The expanding series notation of Prometheus test files and `promtool`
//! unit tests: `1 2 3`, `a+bxN` (a, then N more values stepping by b),
//! `a-bxN`, `axN`, `_` (no sample), `_xN` (N missing samples) and `stale`.

use crate::store::stale_nan;

/// Expands a series description into one entry per interval: `None` for a
/// missing sample, the stale-marker NaN for `stale`.
pub fn parse_series_values(s: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        expand(tok, &mut out)?;
    }
    Ok(out)
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

/// A float as PromQL spells it: decimal, `Inf`/`NaN` in any case, with sign.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match body.to_ascii_lowercase().as_str() {
        "inf" => f64::INFINITY,
        "nan" => f64::NAN,
        lower => {
            // No hex here: in this notation `0x5` means "0, five more times".
            if lower.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
                lower.parse::<f64>().ok()?
            } else {
                return None;
            }
        }
    };
    Some(if neg { -v } else { v })
}
