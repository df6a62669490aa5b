//! Quantities with units in rule files: `1GiB`, `512MB`, `20MiB/h`, `5%`,
//! `0.5`. Rule authors write what they mean; the engine works in base units
//! (bytes, per second).

/// Why a quantity could not be read. The message explains the accepted forms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid quantity {input:?}: {reason} (write a number with an optional unit, e.g. 1GiB, 512MB, 0.9, 5%, and for rates a time unit: 20MiB/h, 3/s)")]
pub struct QuantityError {
    pub input: String,
    pub reason: String,
}

fn unit_factor(u: &str) -> Option<f64> {
    Some(match u {
        "" => 1.0,
        "%" => 0.01,
        "B" => 1.0,
        "k" | "K" | "kB" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "T" | "TB" => 1e12,
        "Ki" | "KiB" => 1024.0,
        "Mi" | "MiB" => 1024.0 * 1024.0,
        "Gi" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "Ti" | "TiB" => 1024f64.powi(4),
        _ => return None,
    })
}

fn per_seconds(u: &str) -> Option<f64> {
    Some(match u {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return None,
    })
}

/// Parses an amount like `1GiB` or `0.9` into base units.
pub fn parse_amount(s: &str) -> Result<f64, QuantityError> {
    let err = |reason: &str| QuantityError { input: s.to_string(), reason: reason.to_string() };
    let t = s.trim();
    if t.contains('/') {
        return Err(err("a rate (with /) is not allowed here"));
    }
    let split = t
        .char_indices()
        .find(|(i, c)| {
            !(c.is_ascii_digit()
                || *c == '.'
                || ((*c == '-' || *c == '+') && *i == 0)
                || *c == 'e' && *i > 0 && t[..*i].chars().all(|d| d.is_ascii_digit() || d == '.'))
        })
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| err("expected a number"))?;
    if !n.is_finite() {
        return Err(err("must be finite"));
    }
    let f = unit_factor(unit.trim()).ok_or_else(|| err("unknown unit"))?;
    Ok(n * f)
}

/// Parses a rate like `20MiB/h` into base units per second.
pub fn parse_rate(s: &str) -> Result<f64, QuantityError> {
    let err = |reason: &str| QuantityError { input: s.to_string(), reason: reason.to_string() };
    let (amount, per) = s.trim().split_once('/').ok_or_else(|| err("a rate needs a time unit, like 20MiB/h"))?;
    let secs = per_seconds(per.trim()).ok_or_else(|| err("unknown time unit after / (use s, m, h or d)"))?;
    Ok(parse_amount(amount)? / secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_rates() {
        assert_eq!(parse_amount("1GiB").unwrap(), 1073741824.0);
        assert_eq!(parse_amount("512MB").unwrap(), 512e6);
        assert_eq!(parse_amount("0.9").unwrap(), 0.9);
        assert_eq!(parse_amount("5%").unwrap(), 0.05);
        assert_eq!(parse_amount("1e3").unwrap(), 1000.0);
        assert!((parse_rate("20MiB/h").unwrap() - 20.0 * 1048576.0 / 3600.0).abs() < 1e-9);
        assert_eq!(parse_rate("3/s").unwrap(), 3.0);
        assert!(parse_amount("1 GiBs").is_err());
        assert!(parse_rate("20MiB").is_err());
        assert!(parse_rate("20MiB/week").is_err());
        assert!(parse_amount("ten").unwrap_err().to_string().contains("1GiB"));
    }
}
