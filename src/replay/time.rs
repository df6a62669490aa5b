//! The times `replay --from/--to` accept: RFC 3339, Unix seconds, `now`,
//! or a duration before now (`-6h`, `now-6h`), so a CI job can say "the
//! last week" without computing dates.

use crate::duration::PromDuration;

/// Why a time could not be read.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{input:?}: expected RFC 3339 (2026-03-02T06:00:00Z), Unix seconds, `now` or a duration before now (-6h)")]
pub struct TimeError {
    pub input: String,
}

/// `text` as Unix milliseconds, relative forms counted back from `now_ms`.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, TimeError> {
    let err = || TimeError { input: text.to_string() };
    let t = text.trim();
    if t == "now" {
        return Ok(now_ms);
    }
    if let Some(ago) = t.strip_prefix("now-").or_else(|| t.strip_prefix('-')) {
        let d = PromDuration::parse(ago).map_err(|_| err())?;
        return Ok(now_ms - d.as_millis());
    }
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() {
            return Ok((secs * 1000.0).round() as i64);
        }
        return Err(err());
    }
    chrono::DateTime::parse_from_rfc3339(t).map(|d| d.timestamp_millis()).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form() {
        let now = 1_772_409_600_000;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("-6h", now), Ok(now - 6 * 3_600_000));
        assert_eq!(parse_time("now-1d30m", now), Ok(now - 86_400_000 - 1_800_000));
        assert_eq!(parse_time("1772409600", now), Ok(now));
        assert_eq!(parse_time("1772409600.5", now), Ok(now + 500));
        assert_eq!(parse_time("2026-03-02T00:00:00Z", now), Ok(now));
        assert_eq!(parse_time("2026-03-02T01:00:00+01:00", now), Ok(now));
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("-6", now).is_err());
        assert!(parse_time("NaN", now).is_err());
    }
}
