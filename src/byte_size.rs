//! Sizes in bytes as the config file writes them: `1024`, `10MB`,
//! `512KiB`, `1GB`. Like `duration`, it imports nothing of ours, so every
//! stage's settings can hold a size without importing `config`.

use serde::Deserialize;

/// Why a size was refused; quotes the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByteSizeError {
    #[error("invalid size {0:?}: expected a number with a unit like 10MB")]
    Number(String),
    #[error("invalid size {text:?}: unknown unit {unit:?} (use B, KB, MB, GB, KiB, MiB, GiB)")]
    Unit { text: String, unit: String },
}

/// A size in bytes written as `1024`, `10MB`, `512KiB`, `1GB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, ByteSizeError> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| ByteSizeError::Number(s.to_string()))?;
        let mult: f64 = match unit.trim() {
            "" | "B" => 1.0,
            "KB" | "kB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            u => return Err(ByteSizeError::Unit { text: s.to_string(), unit: u.to_string() }),
        };
        Ok(ByteSize((n * mult) as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("10MB").unwrap().0, 10_000_000);
        assert_eq!(ByteSize::parse("1KiB").unwrap().0, 1024);
        assert!(ByteSize::parse("ten").is_err());
    }
}
