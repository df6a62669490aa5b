//! The `{{schema:1 count:4 sum:5.6 buckets:[1 2 1]}}` notation of
//! Prometheus test files, both ways: parsing a histogram written by a test,
//! and printing one the way Prometheus's test tools print it, so that
//! expected and actual values compare as promtool compares them.

use std::collections::BTreeMap;
use std::fmt;

use super::{CounterResetHint, FloatHistogram, CUSTOM_BUCKETS_SCHEMA};

/// Parses one `{{...}}` histogram (the braces included).
pub fn parse_histogram(s: &str) -> Result<FloatHistogram, String> {
    let body =
        s.trim().strip_prefix("{{").and_then(|r| r.strip_suffix("}}")).ok_or_else(|| {
            format!("invalid histogram {s:?}: write it as {{{{schema:0 count:2 sum:3 buckets:[1 1]}}}}")
        })?;
    let mut h = FloatHistogram::default();
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let (mut buckets, mut n_buckets) = (Vec::new(), Vec::new());
    let mut rest = body.trim();
    while !rest.is_empty() {
        let (key, after) =
            rest.split_once(':').ok_or_else(|| format!("invalid histogram {s:?}: expected `key:value` at {rest:?}"))?;
        let key = key.trim();
        let after = after.trim_start();
        let (value, next) = if let Some(list) = after.strip_prefix('[') {
            let end = list.find(']').ok_or_else(|| format!("invalid histogram {s:?}: `{key}:[` is not closed"))?;
            (&list[..end], &list[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let bad = |what: &str| format!("invalid histogram {s:?}: {key}: {what} {value:?}");
        let num = || parse_number(value).ok_or_else(|| bad("not a number:"));
        let int = || value.parse::<i32>().map_err(|_| bad("not an integer:"));
        let list = || -> Result<Vec<f64>, String> {
            value.split_whitespace().map(|v| parse_number(v).ok_or_else(|| bad("not a list of numbers:"))).collect()
        };
        match key {
            "schema" => h.schema = int()?,
            "sum" => h.sum = num()?,
            "count" => h.count = num()?,
            "z_bucket" => h.zero_count = num()?,
            "z_bucket_w" => h.zero_threshold = num()?,
            "offset" => offset = int()?,
            "n_offset" => n_offset = int()?,
            "buckets" => buckets = list()?,
            "n_buckets" => n_buckets = list()?,
            "custom_values" => h.custom_values = list()?,
            "counter_reset_hint" => {
                h.hint = match value {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::Reset,
                    "not_reset" => CounterResetHint::NotReset,
                    "gauge" => CounterResetHint::Gauge,
                    _ => return Err(bad("expected unknown, reset, not_reset or gauge, got")),
                }
            }
            _ => {
                return Err(format!(
                    "invalid histogram {s:?}: unknown key {key:?} (known: schema, count, sum, z_bucket, z_bucket_w, \
                     buckets, offset, n_buckets, n_offset, custom_values, counter_reset_hint)"
                ))
            }
        }
        rest = next.trim_start();
    }
    if h.schema != CUSTOM_BUCKETS_SCHEMA && !(-4..=8).contains(&h.schema) {
        return Err(format!(
            "invalid histogram {s:?}: schema {} is not within -4..8 (or -53 for custom buckets)",
            h.schema
        ));
    }
    if !h.custom_values.is_empty() && h.schema != CUSTOM_BUCKETS_SCHEMA {
        return Err(format!("invalid histogram {s:?}: custom_values need schema:{CUSTOM_BUCKETS_SCHEMA}"));
    }
    h.positive = (offset..).zip(buckets).collect();
    h.negative = (n_offset..).zip(n_buckets).collect();
    Ok(h)
}

/// Prints the histogram as Prometheus's test tools do: keys with a zero
/// value left out, buckets as one span from the first to the last non-empty
/// bucket.
impl fmt::Display for FloatHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.schema != 0 {
            parts.push(format!("schema:{}", self.schema));
        }
        if self.count != 0.0 {
            parts.push(format!("count:{}", go_g(self.count)));
        }
        if self.sum != 0.0 {
            parts.push(format!("sum:{}", go_g(self.sum)));
        }
        if self.zero_count != 0.0 {
            parts.push(format!("z_bucket:{}", go_g(self.zero_count)));
        }
        if self.zero_threshold != 0.0 {
            parts.push(format!("z_bucket_w:{}", go_g(self.zero_threshold)));
        }
        if self.uses_custom_buckets() {
            parts.push(format!("custom_values:[{}]", list(&self.custom_values)));
        }
        match self.hint {
            CounterResetHint::Unknown => {}
            CounterResetHint::Reset => parts.push("counter_reset_hint:reset".into()),
            CounterResetHint::NotReset => parts.push("counter_reset_hint:not_reset".into()),
            CounterResetHint::Gauge => parts.push("counter_reset_hint:gauge".into()),
        }
        for (side, offset_key, buckets_key) in
            [(&self.positive, "offset", "buckets"), (&self.negative, "n_offset", "n_buckets")]
        {
            if let Some((offset, counts)) = one_span(side) {
                if offset != 0 {
                    parts.push(format!("{offset_key}:{offset}"));
                }
                parts.push(format!("{buckets_key}:[{}]", list(&counts)));
            }
        }
        write!(f, "{{{{{}}}}}", parts.join(" "))
    }
}

impl FloatHistogram {
    /// The histogram as Prometheus prints it in labels (`count_values`):
    /// `{count:4, sum:6, [-2,-1):1, [-0.001,0.001]:1, (1,2]:2}`, one entry
    /// per non-empty bucket, brackets saying which ends are closed.
    pub fn go_string(&self) -> String {
        use super::BucketKind;
        let mut out = format!("{{count:{}, sum:{}", go_g(self.count), go_g(self.sum));
        for b in self.buckets() {
            if b.count == 0.0 {
                continue;
            }
            let (open, close) = match b.kind {
                BucketKind::Negative => ('[', ')'),
                BucketKind::Zero => ('[', ']'),
                BucketKind::Positive | BucketKind::Custom => ('(', ']'),
            };
            out.push_str(&format!(", {open}{},{}{close}:{}", go_g(b.lower), go_g(b.upper), go_g(b.count)));
        }
        out.push('}');
        out
    }
}

/// The buckets from the first to the last non-empty one, gaps as zeros.
fn one_span(side: &BTreeMap<i32, f64>) -> Option<(i32, Vec<f64>)> {
    let first = *side.iter().find(|(_, &c)| c != 0.0)?.0;
    let last = *side.iter().rev().find(|(_, &c)| c != 0.0)?.0;
    Some((first, (first..=last).map(|i| side.get(&i).copied().unwrap_or(0.0)).collect()))
}

fn list(v: &[f64]) -> String {
    v.iter().map(|&x| go_g(x)).collect::<Vec<_>>().join(" ")
}

/// Go's `%g` for a float64: the shortest digits that read back exactly, in
/// exponent form when the exponent is below -4 or at least 6.
pub(crate) fn go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e6".
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if v < 0.0 { "-" } else { "" };
    // Go prints the shortest form in exponent notation when the exponent
    // is below -4 or at least 6 (its precision for that decision).
    if !(-4..6).contains(&exp) {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits.clone() };
        return format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    format!("{sign}{}", v.abs())
}

/// A float as the test files spell it (as PromQL does): decimal, `Inf`/`NaN` in any case, with sign.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_matches_go() {
        for (v, want) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (5.6, "5.6"),
            (-0.3, "-0.3"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e6, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (32.1, "32.1"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(go_g(v), want, "{v}");
        }
    }
}
