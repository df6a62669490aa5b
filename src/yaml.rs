//! Reading YAML with errors that point at the file, line and column.
//!
//! Config and rule files are both written by hand and both must say exactly
//! where they are wrong, so they share this one entry point; like
//! `labels` and `duration` it imports nothing of ours, so `rules` (and any
//! stage) can read its files without importing `config`. serde-saphyr
//! already tracks positions; this turns its errors into our
//! `file:line:col: message` shape and strips the source snippet (callers
//! print many errors in a row and the position says enough).

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;

/// A problem at a place in a file. `line`/`col` are 1-based; 0 when unknown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Located {
    pub file: String,
    pub line: u64,
    pub col: u64,
    pub message: String,
}

impl Located {
    /// Problems one to a line, as `forewarn check` and the error paths print them.
    pub fn join(errs: &[Located]) -> String {
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (l, 0) => write!(f, "{}:{}: {}", self.file, l, self.message),
            (l, c) => write!(f, "{}:{}:{}: {}", self.file, l, c, self.message),
        }
    }
}

impl Located {
    pub fn new(file: impl Into<String>, line: u64, col: u64, message: impl Into<String>) -> Self {
        Located { file: file.into(), line, col, message: message.into() }
    }

    /// At the position of a spanned YAML value.
    pub fn at<T>(file: &str, span: &serde_saphyr::Spanned<T>, message: impl Into<String>) -> Self {
        Located::new(file, span.referenced.line(), span.referenced.column(), message)
    }
}

/// Parses `text` (from `file`, for messages) into `T`.
pub fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, Located> {
    serde_saphyr::from_str::<T>(text).map_err(|e| {
        let (line, col) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        let message = match e.without_snippet() {
            serde_saphyr::Error::Budget { breach, .. } => budget_message(breach),
            other => first_line(&other.to_string()),
        };
        Located::new(file, line, col, message)
    })
}

/// The YAML reader's safety limits, said so that the reader knows what to
/// change (the defaults of serde-saphyr's `Budget`).
fn budget_message(b: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let limits = serde_saphyr::Budget::default();
    let (what, limit) = match b {
        B::Nodes { .. } => ("YAML nodes (values, lists and maps)", limits.max_nodes),
        B::Events { .. } => ("YAML parser events", limits.max_events),
        B::Depth { .. } => ("levels of nested lists and maps", limits.max_depth),
        B::Aliases { .. } => ("aliases (*ref)", limits.max_aliases),
        B::Anchors { .. } => ("anchors (&name)", limits.max_anchors),
        B::Documents { .. } => ("YAML documents", limits.max_documents),
        B::ScalarBytes { .. } => ("bytes of text values", limits.max_total_scalar_bytes),
        B::MergeKeys { .. } => ("merge keys (<<)", limits.max_merge_keys),
        other => {
            return format!("file refused by the YAML reader's safety limits ({other:?}); make it smaller or simpler")
        }
    };
    format!("file too large or too deep: more than {limit} {what}, the limit for a config or rule file; split it into several files")
}

/// Reads and parses a file.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T, Located> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Located::new(&name, 0, 0, format!("cannot read: {e}")))?;
    parse(&name, &text)
}

/// serde-saphyr prefixes messages with their own position; we print ours.
fn first_line(msg: &str) -> String {
    let line = msg.lines().next().unwrap_or(msg).trim();
    let stripped = strip_position_prefix(line);
    stripped.to_string()
}

fn strip_position_prefix(s: &str) -> &str {
    // "line 6 column 5: unknown field ..." -> "unknown field ..."
    if let Some(rest) = s.strip_prefix("line ") {
        if let Some(idx) = rest.find(": ") {
            let head = &rest[..idx];
            if head.split_whitespace().all(|w| w == "column" || w.chars().all(|c| c.is_ascii_digit())) {
                return &rest[idx + 2..];
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
        b: Option<String>,
    }

    #[test]
    fn unknown_field_has_position() {
        let e = parse::<T>("x.yml", "a: 1\nbee: 2\n").unwrap_err();
        assert_eq!((e.line, e.file.as_str()), (2, "x.yml"));
        assert!(e.message.contains("bee"), "{}", e.message);
        assert!(e.to_string().starts_with("x.yml:2:"), "{e}");
    }

    #[test]
    fn budget_breach_is_explained() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct L {
            a: Vec<u32>,
        }
        let text = format!("a: [{}]\n", vec!["1"; 300_000].join(","));
        let e = parse::<L>("big.yml", &text).unwrap_err();
        assert!(e.message.contains("more than") && e.message.contains("split it"), "{}", e.message);
        assert!(!e.message.contains("budget breached"), "{}", e.message);
    }

    #[test]
    fn wrong_type_has_position() {
        let e = parse::<T>("x.yml", "a: nope\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.col >= 1);
    }
}
