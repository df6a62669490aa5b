//! Small wording helpers shared by correlation notes and chart labels:
//! durations the way people say them ("7 min", "3 h", "2 d 4 h") and
//! versions with a `v` when they are bare numbers ("2.3" -> "v2.3").

/// A duration in milliseconds, rounded to what a reader cares about.
pub fn duration(ms: i64) -> String {
    let s = ms.unsigned_abs() / 1000;
    if s < 60 {
        return format!("{s} s");
    }
    let m = (s + 30) / 60;
    if m < 60 {
        return format!("{m} min");
    }
    let h = s / 3600;
    let rem_m = (s % 3600 + 30) / 60;
    if h < 10 {
        return match rem_m {
            0 => format!("{h} h"),
            60 => format!("{} h", h + 1),
            r => format!("{h} h {r} min"),
        };
    }
    if h < 48 {
        let rounded = (s + 1800) / 3600;
        return format!("{rounded} h");
    }
    let d = s / 86_400;
    match (s % 86_400 + 1800) / 3600 {
        0 => format!("{d} d"),
        24 => format!("{} d", d + 1),
        r => format!("{d} d {r} h"),
    }
}

/// `2.3` -> `v2.3`; anything not starting with a digit is kept as is.
pub fn version(v: &str) -> String {
    if v.starts_with(|c: char| c.is_ascii_digit()) {
        format!("v{v}")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(30_000), "30 s");
        assert_eq!(duration(7 * 60_000 + 10_000), "7 min");
        assert_eq!(duration(3 * 3_600_000), "3 h");
        assert_eq!(duration(3 * 3_600_000 + 20 * 60_000), "3 h 20 min");
        assert_eq!(duration(17 * 3_600_000 + 10 * 60_000), "17 h");
        assert_eq!(duration(52 * 3_600_000), "2 d 4 h");
        assert_eq!(duration(-90_000), "2 min");
    }

    #[test]
    fn versions() {
        assert_eq!(version("2.3"), "v2.3");
        assert_eq!(version("v2.3"), "v2.3");
        assert_eq!(version("abc123"), "abc123");
    }
}
