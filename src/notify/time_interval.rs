//! Named time intervals (`time_intervals`), Alertmanager's format, and the
//! question routes ask of them: is this instant inside?
//!
//! A route's `mute_time_intervals` silence it while inside, its
//! `active_time_intervals` only let it speak while inside. An interval is a
//! list of periods; a period matches when every field it sets matches (times
//! of day, weekdays, days of month, months, years), evaluated in its
//! `location` (UTC, `Local`, or an IANA zone read from the system's
//! zoneinfo). Config mistakes are reported with the field and value.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::Deserialize;

/// One `time_intervals` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalConfig {
    pub name: String,
    #[serde(default)]
    pub time_intervals: Vec<PeriodConfig>,
}

/// One period: every field set must match.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodConfig {
    #[serde(default)]
    pub times: Vec<TimeRangeConfig>,
    /// `monday`, `monday:friday`.
    #[serde(default)]
    pub weekdays: Vec<String>,
    /// `1`, `1:5`, `-3:-1` (negative counts from the month's end).
    #[serde(default)]
    pub days_of_month: Vec<String>,
    /// `january`, `1:3`, `may:august`.
    #[serde(default)]
    pub months: Vec<String>,
    /// `2024`, `2024:2026`.
    #[serde(default)]
    pub years: Vec<String>,
    /// `UTC` (default), `Local`, or an IANA name such as `Europe/Berlin`.
    pub location: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeConfig {
    /// `HH:MM`, inclusive.
    pub start_time: String,
    /// `HH:MM` (up to `24:00`), exclusive.
    pub end_time: String,
}

/// A compiled interval.
#[derive(Clone, Debug)]
pub struct TimeInterval {
    periods: Vec<Period>,
}

#[derive(Clone, Debug)]
struct Period {
    /// Minutes of the day, [start, end).
    times: Vec<(u32, u32)>,
    /// 0 = Sunday, inclusive ranges.
    weekdays: Vec<(u32, u32)>,
    days_of_month: Vec<(i32, i32)>,
    months: Vec<(u32, u32)>,
    years: Vec<(i32, i32)>,
    zone: Zone,
}

#[derive(Clone, Debug)]
enum Zone {
    Utc,
    Local,
    /// Transitions (UTC seconds, offset seconds), sorted; plus the offset
    /// before the first one.
    Table {
        before: i32,
        transitions: Vec<(i64, i32)>,
    },
}

const WEEKDAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Why a time interval was refused: the period by index and what is wrong
/// with it (the caller adds `time_intervals[name]`).
#[derive(Debug, thiserror::Error)]
#[error("time_intervals[{index}].{source}")]
pub struct TimeIntervalError {
    pub index: usize,
    #[source]
    pub source: PeriodError,
}

/// What is wrong with one period; names the field as written in the config.
#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    /// `field` is `start_time` or `end_time`.
    #[error("times.{field}: {text:?} is not HH:MM")]
    NotHhmm { field: &'static str, text: String },
    #[error("times.{field}: {text:?} is not HH:MM between 00:00 and 24:00")]
    HhmmRange { field: &'static str, text: String },
    #[error("times: start_time {start} must be before end_time {end}")]
    TimesOrder { start: String, end: String },
    /// An entry of `weekdays`, `months` or `years` (`item` as written).
    #[error("{field}: {item:?}: {source}")]
    Item { field: &'static str, item: String, source: ItemError },
    /// `field` is `weekdays`, `months`, `years` or `days_of_month`.
    #[error("{field}: {item:?}: start is after end")]
    RangeOrder { field: &'static str, item: String },
    #[error("days_of_month: {0:?}: days are 1..31 or -31..-1")]
    Day(String),
    #[error("days_of_month: {0:?}: a negative start needs a negative end")]
    NegativeStart(String),
    #[error("location: {name:?}: {source}")]
    Location { name: String, source: ZoneError },
}

/// Why one end of a `weekdays`, `months` or `years` range was refused.
#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error("unknown name (expected one of {0})")]
    UnknownName(String),
    #[error("not a year")]
    NotAYear,
}

/// Why a `location` could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("not a zone name")]
    NotAName,
    #[error("cannot read {} ({source}); install tzdata or use UTC", path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("{} is not a TZif file", path.display())]
    NotTzif { path: std::path::PathBuf },
}

impl TimeInterval {
    pub fn from_config(cfg: &TimeIntervalConfig) -> Result<TimeInterval, TimeIntervalError> {
        let mut periods = Vec::new();
        for (index, p) in cfg.time_intervals.iter().enumerate() {
            periods.push(Period::from_config(p).map_err(|source| TimeIntervalError { index, source })?);
        }
        Ok(TimeInterval { periods })
    }

    /// Whether the instant `ms` (Unix milliseconds) is inside. As in
    /// Alertmanager, an interval without periods is never inside and a
    /// period without fields always is.
    pub fn contains(&self, ms: i64) -> bool {
        self.periods.iter().any(|p| p.contains(ms))
    }
}

impl Period {
    fn from_config(p: &PeriodConfig) -> Result<Period, PeriodError> {
        let mut times = Vec::new();
        for t in &p.times {
            let s = hhmm(&t.start_time, "start_time")?;
            let e = hhmm(&t.end_time, "end_time")?;
            if s >= e {
                return Err(PeriodError::TimesOrder { start: t.start_time.clone(), end: t.end_time.clone() });
            }
            times.push((s, e));
        }
        let weekdays = ranges(&p.weekdays, "weekdays", |x| named(x, &WEEKDAYS, 0))?;
        let months = ranges(&p.months, "months", |x| named(x, &MONTHS, 1))?;
        let mut days_of_month = Vec::new();
        for d in &p.days_of_month {
            let (a, b) = split(d);
            let parse = |x: &str| -> Result<i32, PeriodError> {
                match x.trim().parse::<i32>() {
                    Ok(n) if n != 0 && (-31..=31).contains(&n) => Ok(n),
                    _ => Err(PeriodError::Day(d.clone())),
                }
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if (a > 0) == (b > 0) && a > b {
                return Err(PeriodError::RangeOrder { field: "days_of_month", item: d.clone() });
            }
            if a < 0 && b > 0 {
                return Err(PeriodError::NegativeStart(d.clone()));
            }
            days_of_month.push((a, b));
        }
        let years = ranges(&p.years, "years", |x| x.parse::<i32>().map_err(|_| ItemError::NotAYear))?;
        let zone = match p.location.as_deref() {
            None | Some("UTC") | Some("") => Zone::Utc,
            Some("Local") => Zone::Local,
            Some(name) => load_zone(name).map_err(|source| PeriodError::Location { name: name.to_string(), source })?,
        };
        Ok(Period { times, weekdays, days_of_month, months, years, zone })
    }

    fn contains(&self, ms: i64) -> bool {
        let secs = ms.div_euclid(1000);
        let offset = match &self.zone {
            Zone::Utc => 0,
            Zone::Local => {
                let Some(t) = DateTime::<Utc>::from_timestamp(secs, 0) else { return false };
                t.with_timezone(&chrono::Local).offset().local_minus_utc()
            }
            Zone::Table { before, transitions } => {
                let i = transitions.partition_point(|(at, _)| *at <= secs);
                if i == 0 {
                    *before
                } else {
                    transitions[i - 1].1
                }
            }
        };
        let Some(t) = DateTime::<Utc>::from_timestamp(secs + offset as i64, 0) else { return false };
        let t = t.naive_utc();
        let minute = t.hour() * 60 + t.minute();
        let in_ranges = |v: &[(u32, u32)], x: u32| v.is_empty() || v.iter().any(|(a, b)| *a <= x && x <= *b);
        if !self.times.is_empty() && !self.times.iter().any(|(s, e)| *s <= minute && minute < *e) {
            return false;
        }
        if !in_ranges(&self.weekdays, t.weekday().num_days_from_sunday()) || !in_ranges(&self.months, t.month()) {
            return false;
        }
        if !self.years.is_empty() && !self.years.iter().any(|(a, b)| *a <= t.year() && t.year() <= *b) {
            return false;
        }
        if !self.days_of_month.is_empty() {
            let dim = days_in_month(t.year(), t.month()) as i32;
            let day = t.day() as i32;
            let abs = |d: i32| if d < 0 { dim + d + 1 } else { d };
            let hit = self.days_of_month.iter().any(|(a, b)| {
                let (a, b) = (abs(*a), abs(*b).min(dim));
                a <= dim && a <= day && day <= b
            });
            if !hit {
                return false;
            }
        }
        true
    }
}

fn days_in_month(y: i32, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    match (NaiveDate::from_ymd_opt(ny, nm, 1), NaiveDate::from_ymd_opt(y, m, 1)) {
        (Some(a), Some(b)) => (a - b).num_days() as u32,
        _ => 31,
    }
}

/// Minutes since midnight of `s`, the value of `times.{field}`.
fn hhmm(s: &str, field: &'static str) -> Result<u32, PeriodError> {
    let (h, m) = s.trim().split_once(':').ok_or_else(|| PeriodError::NotHhmm { field, text: s.to_string() })?;
    let (h, m): (u32, u32) = match (h.parse(), m.parse()) {
        (Ok(h), Ok(m)) if m < 60 && (h < 24 || (h == 24 && m == 0)) => (h, m),
        _ => return Err(PeriodError::HhmmRange { field, text: s.to_string() }),
    };
    Ok(h * 60 + m)
}

fn split(s: &str) -> (&str, &str) {
    // A leading '-' is a sign, so split on the ':' only.
    s.split_once(':').unwrap_or((s, s))
}

fn named(x: &str, names: &[&str], first: u32) -> Result<u32, ItemError> {
    let x = x.trim().to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == x) {
        return Ok(i as u32 + first);
    }
    match x.parse::<u32>() {
        Ok(n) if n >= first && n < names.len() as u32 + first => Ok(n),
        _ => Err(ItemError::UnknownName(names.join(", "))),
    }
}

fn ranges<T: PartialOrd + Copy>(
    items: &[String],
    field: &'static str,
    parse: impl Fn(&str) -> Result<T, ItemError>,
) -> Result<Vec<(T, T)>, PeriodError> {
    let mut out = Vec::new();
    for it in items {
        let (a, b) = split(it);
        let item = |source: ItemError| PeriodError::Item { field, item: it.clone(), source };
        let a = parse(a).map_err(item)?;
        let b = parse(b).map_err(item)?;
        if a > b {
            return Err(PeriodError::RangeOrder { field, item: it.clone() });
        }
        out.push((a, b));
    }
    Ok(out)
}

/// Reads an IANA zone from the system's zoneinfo (TZif, RFC 8536). Past the
/// last listed transition the last offset holds (Debian's files list DST
/// transitions up to 2037).
fn load_zone(name: &str) -> Result<Zone, ZoneError> {
    if name.contains("..") || name.starts_with('/') {
        return Err(ZoneError::NotAName);
    }
    let dir =
        std::env::var_os("ZONEINFO").map(std::path::PathBuf::from).unwrap_or_else(|| "/usr/share/zoneinfo".into());
    let path = dir.join(name);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(source) => return Err(ZoneError::Read { path, source }),
    };
    parse_tzif(&data).ok_or(ZoneError::NotTzif { path })
}

fn parse_tzif(d: &[u8]) -> Option<Zone> {
    let be32 = |at: usize| -> Option<i64> { Some(i32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?) as i64) };
    let header = |at: usize| -> Option<[usize; 6]> {
        if d.get(at..at + 4)? != b"TZif" {
            return None;
        }
        let mut c = [0usize; 6];
        for (i, v) in c.iter_mut().enumerate() {
            *v = be32(at + 20 + 4 * i)? as usize;
        }
        Some(c)
    };
    let [isut, isstd, leap, timecnt, typecnt, charcnt] = header(0)?;
    let version = *d.get(4)?;
    let (base, tsize, timecnt, typecnt) = if version >= b'2' {
        let v1 = 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut;
        let [_, _, _, t2, ty2, _] = header(v1)?;
        (v1 + 44, 8, t2, ty2)
    } else {
        (44, 4, timecnt, typecnt)
    };
    let time = |i: usize| -> Option<i64> {
        let at = base + i * tsize;
        if tsize == 8 {
            Some(i64::from_be_bytes(d.get(at..at + 8)?.try_into().ok()?))
        } else {
            be32(at)
        }
    };
    let idx_base = base + timecnt * tsize;
    let types_base = idx_base + timecnt;
    let utoff = |t: usize| -> Option<i32> { Some(be32(types_base + t * 6)? as i32) };
    if typecnt == 0 {
        return None;
    }
    let mut transitions = Vec::with_capacity(timecnt);
    for i in 0..timecnt {
        let t = *d.get(idx_base + i)? as usize;
        if t >= typecnt {
            return None;
        }
        transitions.push((time(i)?, utoff(t)?));
    }
    Some(Zone::Table { before: utoff(0)?, transitions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn interval(y: &str) -> Result<TimeInterval, String> {
        let c: TimeIntervalConfig = crate::yaml::parse("t.yml", y).map_err(|e| e.to_string())?;
        TimeInterval::from_config(&c).map_err(|e| e.to_string())
    }

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().timestamp_millis()
    }

    #[test]
    fn office_hours_weekdays() {
        let t = interval(
            "name: office\ntime_intervals:\n  - times: [{start_time: '09:00', end_time: '17:00'}]\n    weekdays: ['monday:friday']\n",
        )
        .unwrap();
        // 2024-05-06 is a Monday.
        assert!(t.contains(ms(2024, 5, 6, 9, 0)));
        assert!(t.contains(ms(2024, 5, 10, 16, 59)));
        assert!(!t.contains(ms(2024, 5, 10, 17, 0)), "end is exclusive");
        assert!(!t.contains(ms(2024, 5, 11, 12, 0)), "Saturday");
    }

    #[test]
    fn days_months_years() {
        let t = interval(
            "name: x\ntime_intervals:\n  - days_of_month: ['-1']\n    months: ['february']\n    years: ['2024:2025']\n",
        )
        .unwrap();
        assert!(t.contains(ms(2024, 2, 29, 12, 0)), "last day of a leap February");
        assert!(!t.contains(ms(2024, 2, 28, 12, 0)));
        assert!(t.contains(ms(2025, 2, 28, 0, 0)));
        assert!(!t.contains(ms(2026, 2, 28, 0, 0)));
        let all = interval("name: all\n").unwrap();
        assert!(!all.contains(0), "no periods: never");
        let always = interval("name: all\ntime_intervals: [{}]\n").unwrap();
        assert!(always.contains(0));
    }

    #[test]
    fn location_shifts_the_clock() {
        let t = interval(
            "name: x\ntime_intervals:\n  - times: [{start_time: '09:00', end_time: '10:00'}]\n    location: Europe/Berlin\n",
        )
        .unwrap();
        // Summer: Berlin is UTC+2; winter: UTC+1.
        assert!(t.contains(ms(2024, 7, 1, 7, 30)));
        assert!(!t.contains(ms(2024, 7, 1, 9, 30)));
        assert!(t.contains(ms(2024, 1, 15, 8, 30)));
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = interval("name: x\ntime_intervals:\n  - weekdays: [funday]\n").unwrap_err();
        assert!(e.contains("weekdays") && e.contains("funday"), "{e}");
        let e =
            interval("name: x\ntime_intervals:\n  - times: [{start_time: '10:00', end_time: '09:00'}]\n").unwrap_err();
        assert!(e.contains("times"), "{e}");
        let e = interval("name: x\ntime_intervals:\n  - days_of_month: ['0']\n").unwrap_err();
        assert!(e.contains("days_of_month"), "{e}");
        let e = interval("name: x\ntime_intervals:\n  - location: Mars/Olympus\n").unwrap_err();
        assert!(e.contains("location"), "{e}");
        assert!(interval("name: x\ntime_intervals:\n  - times: [{start_time: '25:00', end_time: '26:00'}]\n").is_err());
    }
}
