//! Prometheus-style durations (`15s`, `1h30m`, `7d`, `500ms`) for config and
//! rule files, with serde support so a bad value is reported at its line.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration written the way Prometheus writes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(pub Duration);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "invalid duration {input:?}: {reason} (use a number with a unit: ms, s, m, h, d, w, y, e.g. \"30s\" or \"1h30m\")"
)]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

impl PromDuration {
    pub fn from_secs(s: u64) -> Self {
        PromDuration(Duration::from_secs(s))
    }

    pub fn as_millis(&self) -> i64 {
        self.0.as_millis().min(i64::MAX as u128) as i64
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    pub fn parse(s: &str) -> Result<Self, DurationError> {
        let err = |reason| DurationError { input: s.to_string(), reason };
        let t = s.trim();
        if t.is_empty() {
            return Err(err("empty"));
        }
        if t == "0" {
            return Ok(PromDuration::default());
        }
        let b = t.as_bytes();
        let mut i = 0;
        let mut total: u128 = 0;
        let mut last_rank = usize::MAX;
        while i < b.len() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(err("expected a number"));
            }
            let n: u128 = t[start..i].parse().map_err(|_| err("number too large"))?;
            let ustart = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let (ms, rank) = match &t[ustart..i] {
                "y" => (365 * 86_400_000, 0),
                "w" => (7 * 86_400_000, 1),
                "d" => (86_400_000, 2),
                "h" => (3_600_000, 3),
                "m" => (60_000, 4),
                "s" => (1000, 5),
                "ms" => (1, 6),
                "" => return Err(err("missing unit")),
                _ => return Err(err("unknown unit")),
            };
            if last_rank != usize::MAX && rank <= last_rank {
                return Err(err("units must go from largest to smallest, each once"));
            }
            last_rank = rank;
            total = total
                .checked_add(n.checked_mul(ms).ok_or_else(|| err("too large"))?)
                .ok_or_else(|| err("too large"))?;
        }
        if total > i64::MAX as u128 {
            return Err(err("too large"));
        }
        Ok(PromDuration(Duration::from_millis(total as u64)))
    }
}

impl fmt::Display for PromDuration {
    /// Formats like Prometheus: `1h30m`, `15s`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("y", 365 * 86_400_000u128),
            ("w", 7 * 86_400_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{}", ms / size, unit)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PromDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        for (s, ms) in [("15s", 15_000), ("1h30m", 5_400_000), ("500ms", 500), ("7d", 604_800_000), ("0s", 0), ("0", 0)]
        {
            assert_eq!(PromDuration::parse(s).unwrap().as_millis(), ms, "{s}");
        }
        assert_eq!(PromDuration::parse("1h30m").unwrap().to_string(), "1h30m");
        assert_eq!(PromDuration::parse("90s").unwrap().to_string(), "1m30s");
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "15", "1x", "s", "1m1h", "1s1s", "-1s"] {
            assert!(PromDuration::parse(s).is_err(), "{s}");
        }
    }
}
