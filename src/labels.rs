//! Label sets and label matchers: the identity of a series.
//!
//! A `Labels` is a set of name/value pairs kept sorted by name, so that two
//! equal sets compare, hash and print the same way whatever order a target
//! wrote them in. `__name__` is an ordinary label here, as in Prometheus.
//! `Matcher` is the one selector primitive the store understands; PromQL
//! selectors and alert routes are both built from it.

use std::fmt;

use regex::Regex;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// The label that carries a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// A sorted set of label name/value pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn new() -> Self {
        Labels(Vec::new())
    }

    /// An empty set with room for `n` pairs.
    pub fn with_capacity(n: usize) -> Self {
        Labels(Vec::with_capacity(n))
    }

    /// Builds a label set from pairs in any order. Later duplicates win;
    /// empty values are dropped (an empty label is the same as no label).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut l = Labels::new();
        for (k, v) in pairs {
            l.set(k.into(), v.into());
        }
        l
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|i| self.0[i].1.as_str())
    }

    /// The value of `name`, or "" when absent (PromQL's view of a missing label).
    pub fn value(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: String, value: String) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
            Ok(i) => {
                if value.is_empty() {
                    self.0.remove(i);
                } else {
                    self.0[i].1 = value;
                }
            }
            Err(i) => {
                if !value.is_empty() {
                    self.0.insert(i, (name, value));
                }
            }
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            self.0.remove(i);
        }
    }

    pub fn name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The same set without `__name__` (what most PromQL functions return).
    pub fn without_name(&self) -> Labels {
        Labels(self.0.iter().filter(|(n, _)| n != METRIC_NAME).cloned().collect())
    }

    /// Only the listed labels (`by (...)`, `on (...)`).
    pub fn keep_only(&self, names: &[String]) -> Labels {
        Labels(self.0.iter().filter(|(n, _)| names.iter().any(|k| k == n)).cloned().collect())
    }

    /// All labels but the listed ones (`without (...)`, `ignoring (...)`).
    pub fn drop_names(&self, names: &[String]) -> Labels {
        Labels(self.0.iter().filter(|(n, _)| !names.iter().any(|k| k == n)).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A stable 64-bit fingerprint (FNV-1a over names and values).
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        for (n, v) in &self.0 {
            for b in n.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
                h ^= b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
        }
        h
    }
}

impl fmt::Display for Labels {
    /// `name{a="b", c="d"}`, the way Prometheus prints a series.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.name() {
            f.write_str(n)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for (n, v) in self.iter().filter(|(n, _)| *n != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}=\"{}\"", n, v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))?;
        }
        f.write_str("}")
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (n, v) in &self.0 {
            m.serialize_entry(n, v)?;
        }
        m.end()
    }
}

/// How a matcher compares a label value.
#[derive(Clone, Debug)]
pub enum MatchOp {
    Equal(String),
    NotEqual(String),
    /// Fully anchored, as in PromQL: `=~"a|b"` means `^(?:a|b)$`.
    Regex(Regex),
    NotRegex(Regex),
}

/// One `name op value` condition on a label.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
}

impl Matcher {
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { name: name.into(), op: MatchOp::Equal(value.into()) }
    }

    /// Builds a regex matcher, anchoring the pattern like Prometheus does.
    pub fn regex(name: impl Into<String>, pattern: &str, negate: bool) -> Result<Self, regex::Error> {
        let re = Regex::new(&format!("^(?s:{pattern})$"))?;
        let op = if negate { MatchOp::NotRegex(re) } else { MatchOp::Regex(re) };
        Ok(Matcher { name: name.into(), op })
    }

    pub fn matches_value(&self, v: &str) -> bool {
        match &self.op {
            MatchOp::Equal(x) => v == x,
            MatchOp::NotEqual(x) => v != x,
            MatchOp::Regex(re) => re.is_match(v),
            MatchOp::NotRegex(re) => !re.is_match(v),
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.value(&self.name))
    }

    /// True when the matcher also matches the empty string (and so series
    /// without the label), which the index cannot answer from postings alone.
    pub fn matches_empty(&self) -> bool {
        self.matches_value("")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            MatchOp::Equal(v) => write!(f, "{}=\"{}\"", self.name, v),
            MatchOp::NotEqual(v) => write!(f, "{}!=\"{}\"", self.name, v),
            MatchOp::Regex(r) => write!(f, "{}=~\"{}\"", self.name, strip_anchor(r.as_str())),
            MatchOp::NotRegex(r) => write!(f, "{}!~\"{}\"", self.name, strip_anchor(r.as_str())),
        }
    }
}

pub(crate) fn strip_anchor(s: &str) -> &str {
    s.strip_prefix("^(?s:").and_then(|s| s.strip_suffix(")$")).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_deduplicated() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "1"), ("b", "3")]);
        assert_eq!(l.fingerprint(), Labels::from_pairs([("a", "1"), ("b", "3")]).fingerprint());
        assert_ne!(l.fingerprint(), Labels::from_pairs([("a", "13")]).fingerprint());
    }

    #[test]
    fn regex_is_anchored() {
        let m = Matcher::regex("job", "api|web", false).unwrap();
        assert!(m.matches_value("api"));
        assert!(!m.matches_value("apis"));
        assert!(!m.matches_empty());
        let n = Matcher::regex("job", ".*", true).unwrap();
        assert!(!n.matches_value(""));
    }

    #[test]
    fn display_like_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]);
        assert_eq!(l.to_string(), "up{job=\"a\\\"b\"}");
    }
}
