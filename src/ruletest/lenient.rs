//! `forewarn test rules --ignore-unknown-fields`: promtool's flag for rule
//! files that carry fields other tools add (`namespace:`, `ownership:`).
//!
//! The rule loader itself stays strict (the daemon and `forewarn check` must
//! catch a misspelt `anotations:`), so this module works on the text: it
//! parses, and while the loader names an unknown field at a line and column,
//! it removes that key and its value (the lines indented under it) and tries
//! again. Rule files are block-style YAML; an unknown key in flow style
//! (`{a: 1, extra: 2}`) cannot be cut out by lines and stays an error.

use std::path::Path;

use crate::config::Located;
use crate::duration::PromDuration;
use crate::rules::{parse_rules, RuleGroup};

/// More unknown fields than this in one file is not a file worth rescuing.
const MAX_REMOVALS: usize = 1000;

/// Like [`crate::rules::load_patterns`], with unknown fields dropped.
pub fn load_patterns(patterns: &[String], default_interval: PromDuration) -> Result<Vec<RuleGroup>, Vec<Located>> {
    crate::rules::load_patterns_with(patterns, default_interval, load_file)
}

fn load_file(path: &Path, default_interval: PromDuration) -> Result<Vec<RuleGroup>, Vec<Located>> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![Located::new(&name, 0, 0, format!("cannot read: {e}"))])?;
    parse_lenient(&name, &text, default_interval)
}

/// Parses rule file text, removing every unknown field the loader reports.
pub fn parse_lenient(file: &str, text: &str, default_interval: PromDuration) -> Result<Vec<RuleGroup>, Vec<Located>> {
    let mut text = text.to_string();
    for _ in 0..MAX_REMOVALS {
        let errs = match parse_rules(file, &text, default_interval) {
            Ok(groups) => return Ok(groups),
            Err(errs) => errs,
        };
        let unknown = match errs.as_slice() {
            [e] if e.message.starts_with("unknown field") && e.line > 0 && e.col > 0 => e,
            _ => return Err(errs),
        };
        match remove_key(&text, unknown.line as usize, unknown.col as usize) {
            Some(t) => text = t,
            None => return Err(errs),
        }
    }
    parse_rules(file, &text, default_interval)
}

/// Removes the mapping key at 1-based `line`/`col` and the lines indented
/// deeper than it (its value). A key after `- ` keeps the dash, so the list
/// item stays and its other keys (on the following lines) remain its own.
/// None when the position does not hold a block-style key.
fn remove_key(text: &str, line: usize, col: usize) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let at = line.checked_sub(1)?;
    let key_line = lines.get(at)?;
    let indent = col - 1;
    let prefix = key_line.get(..indent)?;
    let rest = key_line.get(indent..)?;
    // A flow mapping or a key not at that column: leave it to the error.
    if !rest.contains(':') || prefix.contains(['{', ',', '[']) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for l in &lines[..at] {
        out.push_str(l);
    }
    let prefix_is_dash = prefix.trim() == "-";
    if prefix_is_dash {
        out.push_str(prefix.trim_end());
        out.push('\n');
    } else if !prefix.trim().is_empty() {
        return None;
    }
    let mut i = at + 1;
    while let Some(l) = lines.get(i) {
        let body = l.trim_end_matches(['\n', '\r']);
        let deeper = body.len() - body.trim_start().len() > indent;
        let blank = body.trim().is_empty();
        if !(deeper || blank) {
            break;
        }
        i += 1;
    }
    for l in &lines[i..] {
        out.push_str(l);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: vector(1)\n";

    #[test]
    fn drops_unknown_group_fields_scalar_and_nested() {
        let text = "groups:\n  - name: g\n    namespace: \"x\"\n    ownership:\n      service: \"t\"\n\n      team: a\n    rules:\n      - record: a\n        expr: vector(1)\n";
        assert!(parse_rules("r.yml", text, PromDuration::from_secs(60)).is_err());
        let g = parse_lenient("r.yml", text, PromDuration::from_secs(60)).unwrap();
        assert_eq!((g.len(), g[0].rules.len()), (1, 1));
    }

    #[test]
    fn drops_an_unknown_first_key_of_a_list_item() {
        let text = "groups:\n  - name: g\n    rules:\n      - owner: me\n        record: a\n        expr: vector(1)\n";
        let g = parse_lenient("r.yml", text, PromDuration::from_secs(60)).unwrap();
        assert_eq!(g[0].rules[0].name(), "a");
    }

    #[test]
    fn other_errors_stay_errors() {
        let bad = GOOD.replace("vector(1)", "vector(");
        let e = parse_lenient("r.yml", &bad, PromDuration::from_secs(60)).err().unwrap();
        assert!(e[0].to_string().contains("r.yml:5"), "{e:?}");
        assert!(parse_lenient("r.yml", GOOD, PromDuration::from_secs(60)).is_ok());
    }
}
