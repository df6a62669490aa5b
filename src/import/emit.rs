//! Writes the imported tree back as YAML text, with each input comment
//! next to the key it was written beside or above.
//!
//! A comment belongs to the entry (or list item) below it when it sits
//! between that entry and the previous sibling, to the line it ends, or,
//! after a collection's last entry and at least as indented as its entries,
//! to that collection; comments after a file's last key stay at the end.
//! Comments inside a key that was not carried go with it. Block style is
//! written throughout (2 spaces per level); a flow list or mapping of plain
//! values stays on one line. The writer also records where each entry
//! landed, so that an error `forewarn check` finds in the output can be
//! traced to the input key that caused it.

use std::collections::HashSet;

use super::tree::{Doc, Entry, Kind, Node, Style};

/// Where an entry or list item starts and ends in the output, and its
/// index path in the output tree.
#[derive(Clone, Debug)]
pub struct Unit {
    pub line: usize,
    pub col: usize,
    pub end_line: usize,
    pub path: Vec<usize>,
}

/// The text and where each unit is in it.
pub struct Emitted {
    pub text: String,
    pub units: Vec<Unit>,
}

struct Writer<'a> {
    docs: &'a [Doc],
    claimed: HashSet<(usize, usize)>,
    out: String,
    line: usize,
    units: Vec<Unit>,
}

/// Writes `root` (a mapping) and the comments of `docs` (indexed like the
/// nodes' `file`), but for the comments of keys not carried: `gone` holds
/// their (file, first line, last line), and the comment block right above
/// each goes too.
pub fn emit(root: &Node, docs: &[Doc], gone: &[(usize, usize, usize)]) -> Emitted {
    let mut claimed = HashSet::new();
    for &(f, first, last) in gone {
        let Some(doc) = docs.get(f) else { continue };
        let own = |line: usize| doc.comments.iter().any(|c| c.own_line && c.line == line);
        let mut top = first;
        while top > 1 && own(top - 1) {
            top -= 1;
        }
        for (i, c) in doc.comments.iter().enumerate() {
            if c.line >= top && c.line <= last {
                claimed.insert((f, i));
            }
        }
    }
    let mut w = Writer { docs, claimed, out: String::new(), line: 1, units: Vec::new() };
    if let Kind::Map(entries) = &root.kind {
        w.entries(entries, 0, &mut Vec::new(), false, true);
    }
    Emitted { text: w.out, units: w.units }
}

impl Writer<'_> {
    fn push(&mut self, s: &str) {
        self.line += s.matches('\n').count();
        self.out.push_str(s);
    }

    fn col(&self) -> usize {
        self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1) + 1
    }

    fn indent(&mut self, n: usize) {
        self.push(&" ".repeat(n));
    }

    /// Own-line comments of `file` strictly between lines `from` and `to`, not yet written.
    fn take_between(&mut self, file: usize, from: usize, to: usize) -> Vec<(usize, String)> {
        let docs = self.docs;
        let mut out = Vec::new();
        for (i, c) in docs[file].comments.iter().enumerate() {
            if c.own_line && c.line > from && c.line < to && self.claimed.insert((file, i)) {
                out.push((c.line, c.text.clone()));
            }
        }
        out
    }

    /// Comments ending lines `from..=to` of `file`, joined.
    fn take_right(&mut self, file: Option<usize>, from: usize, to: usize) -> String {
        let Some(file) = file else { return String::new() };
        let docs = self.docs;
        let mut out = String::new();
        for (i, c) in docs[file].comments.iter().enumerate() {
            if !c.own_line && c.line >= from && c.line <= to && self.claimed.insert((file, i)) {
                out.push(' ');
                out.push_str(&c.text);
            }
        }
        out
    }

    /// The comments above a node, with the blank lines the input had
    /// before them (none before a collection's first child).
    fn leading(&mut self, file: Option<usize>, from: usize, at: usize, indent: usize, first: bool) {
        let Some(f) = file else { return };
        let docs = self.docs;
        let blank = |line: usize| line >= 2 && docs[f].lines.get(line - 2).is_some_and(|l| l.trim().is_empty());
        let mut suppress = first || self.out.is_empty();
        for c in self.take_between(f, from, at) {
            if blank(c.0) && !suppress {
                self.push("\n");
            }
            suppress = false;
            self.indent(indent);
            self.push(&c.1);
            self.push("\n");
        }
        if blank(at) && !suppress {
            self.push("\n");
        }
    }

    /// Own-line comments after line `after` of the node's file, up to the
    /// next content, indented at least `min_col` (all of them at the end of
    /// the file when `to_end`).
    fn trailing(&mut self, file: Option<usize>, after: usize, min_col: usize, indent: usize, to_end: bool) {
        let Some(f) = file else { return };
        let docs = self.docs;
        let doc = &docs[f];
        let next = doc.content_lines.range(after + 1..).next().copied().unwrap_or(usize::MAX);
        if to_end && next != usize::MAX {
            return;
        }
        let mut lines = Vec::new();
        for (i, c) in doc.comments.iter().enumerate() {
            if !c.own_line || c.line <= after || c.line >= next || self.claimed.contains(&(f, i)) {
                continue;
            }
            if c.col < min_col && !to_end {
                break;
            }
            self.claimed.insert((f, i));
            let blank = c.line >= 2 && doc.lines.get(c.line - 2).is_some_and(|l| l.trim().is_empty());
            lines.push((blank, c.text.clone()));
        }
        for (blank, text) in lines {
            if blank {
                self.push("\n");
            }
            self.indent(indent);
            self.push(&text);
            self.push("\n");
        }
    }

    fn entries(&mut self, entries: &[Entry], indent: usize, path: &mut Vec<usize>, first_inline: bool, top: bool) {
        for (i, e) in entries.iter().enumerate() {
            if !(i == 0 && first_inline) {
                self.leading(e.value.file, e.value.lead_from, e.key_pos.line, indent, i == 0);
                if let Some(note) = &e.note {
                    if !self.out.is_empty() && !self.out.ends_with("\n\n") {
                        self.push("\n");
                    }
                    for l in note.lines() {
                        self.indent(indent);
                        self.push(&format!("# {l}\n"));
                    }
                }
                self.indent(indent);
            }
            path.push(i);
            let unit = self.units.len();
            self.units.push(Unit { line: self.line, col: self.col(), end_line: 0, path: path.clone() });
            self.push(&key_text(&e.key));
            self.push(":");
            self.value(&e.value, indent, e.key_pos.line, path);
            self.units[unit].end_line = self.line - 1;
            path.pop();
            if !is_block(&e.value) {
                // `rule_files:` followed by commented-out items: they stay below it.
                let after = if e.value.is_null() { e.key_pos.line } else { e.value.end_line.max(e.key_pos.line) };
                self.trailing(e.value.file, after, e.key_pos.col + 1, indent + 2, false);
            }
            if !top && entries.get(i + 1).is_none_or(|n| n.value.file != e.value.file) {
                // A merged mapping: the comments closing this file's part follow its last key.
                let after = e.value.end_line.max(e.key_pos.line);
                self.trailing(e.value.file, after, e.key_pos.col, indent, false);
            }
            if top {
                // Comments after a file's last key end that file's part.
                let after = e.value.end_line.max(e.key_pos.line);
                self.trailing(e.value.file, after, 1, 0, true);
            }
        }
    }

    /// Writes `v` after `key:` or `-` (the caller wrote those), through its last line.
    fn value(&mut self, v: &Node, indent: usize, key_line: usize, path: &mut Vec<usize>) {
        match &v.kind {
            Kind::Scalar { value, style: Style::Block } if block_ok(value) => {
                let right = self.take_right(v.file, key_line, key_line);
                self.push(&format!(" {}{right}\n", block_header(value)));
                for l in block_body(value).split('\n') {
                    if !l.is_empty() {
                        self.indent(indent + 2);
                    }
                    self.push(l);
                    self.push("\n");
                }
            }
            Kind::Scalar { .. } => {
                let text = scalar_text(v);
                if !text.is_empty() {
                    self.push(" ");
                }
                self.push(&text);
                let right = self.take_right(v.file, key_line.min(v.pos.line), v.end_line.max(key_line));
                self.push(&right);
                self.push("\n");
            }
            Kind::Seq(items) if items.is_empty() => self.inline(v, " []", key_line),
            Kind::Map(entries) if entries.is_empty() => self.inline(v, " {}", key_line),
            _ if v.flow && flat(v) => {
                let text = format!(" {}", flow_text(v));
                self.inline(v, &text, key_line);
            }
            Kind::Seq(items) => {
                let right = self.take_right(v.file, key_line, key_line);
                self.push(&right);
                self.push("\n");
                let src_col = items.first().map_or(1, |n| n.pos.col);
                self.items(items, indent + 2, path);
                self.trailing(v.file, v.end_line, src_col.saturating_sub(2).max(1), indent + 2, false);
            }
            Kind::Map(entries) => {
                let right = self.take_right(v.file, key_line, key_line);
                self.push(&right);
                self.push("\n");
                let src_col = entries.first().map_or(1, |e| e.key_pos.col);
                self.entries(entries, indent + 2, path, false, false);
                self.trailing(v.file, v.end_line, src_col, indent + 2, false);
            }
        }
    }

    fn inline(&mut self, v: &Node, text: &str, key_line: usize) {
        self.push(text);
        let right = self.take_right(v.file, key_line.min(v.pos.line), v.end_line.max(key_line));
        self.push(&right);
        self.push("\n");
    }

    fn items(&mut self, items: &[Node], indent: usize, path: &mut Vec<usize>) {
        for (i, it) in items.iter().enumerate() {
            self.leading(it.file, it.lead_from, it.pos.line, indent, i == 0);
            self.indent(indent);
            path.push(i);
            let unit = self.units.len();
            self.units.push(Unit { line: self.line, col: self.col(), end_line: 0, path: path.clone() });
            self.push("-");
            match &it.kind {
                Kind::Map(entries) if !(entries.is_empty() || it.flow && flat(it)) => {
                    self.push(" ");
                    self.entries(entries, indent + 2, path, true, false);
                    let src_col = entries.first().map_or(1, |e| e.key_pos.col);
                    self.trailing(it.file, it.end_line, src_col, indent + 2, false);
                }
                _ => self.value(it, indent, it.pos.line, path),
            }
            self.units[unit].end_line = self.line - 1;
            path.pop();
        }
    }
}

/// Written over several lines (a non-empty block mapping or list).
fn is_block(v: &Node) -> bool {
    match &v.kind {
        Kind::Seq(items) => !(items.is_empty() || v.flow && flat(v)),
        Kind::Map(entries) => !(entries.is_empty() || v.flow && flat(v)),
        Kind::Scalar { .. } => false,
    }
}

/// A flow collection of plain values only (written back on one line).
fn flat(v: &Node) -> bool {
    let scalar =
        |n: &Node| matches!(&n.kind, Kind::Scalar { value, style } if *style != Style::Block && !value.contains('\n'));
    match &v.kind {
        Kind::Seq(items) => items.iter().all(scalar),
        Kind::Map(entries) => entries.iter().all(|e| scalar(&e.value)),
        Kind::Scalar { .. } => false,
    }
}

fn flow_text(v: &Node) -> String {
    match &v.kind {
        Kind::Seq(items) => format!("[{}]", items.iter().map(flow_scalar).collect::<Vec<_>>().join(", ")),
        Kind::Map(entries) => format!(
            "{{ {} }}",
            entries
                .iter()
                .map(|e| format!("{}: {}", key_text(&e.key), flow_scalar(&e.value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Kind::Scalar { .. } => scalar_text(v),
    }
}

fn flow_scalar(n: &Node) -> String {
    let t = scalar_text(n);
    if matches!(&n.kind, Kind::Scalar { style: Style::Plain, .. }) && t.contains([',', '[', ']', '{', '}']) {
        double(n.as_str().unwrap_or_default())
    } else {
        t
    }
}

fn key_text(k: &str) -> String {
    if plain_ok(k) {
        k.to_string()
    } else {
        double(k)
    }
}

/// A scalar as written in a block context, in its input style where that is valid.
pub fn scalar_text(n: &Node) -> String {
    let Kind::Scalar { value, style } = &n.kind else { return String::new() };
    match style {
        Style::Plain if value.is_empty() => String::new(),
        Style::Plain if plain_ok(value) => value.clone(),
        Style::Single if !value.contains('\n') && !value.chars().any(char::is_control) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        _ => double(value),
    }
}

/// True when `s` reads back as the same string without quotes.
fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    // `-x`, `?x`, `:x` are plain; `- x` starts a list item.
    let start_ok = !"-?:,[]{}#&*!|>'\"%@`".contains(first)
        || (matches!(first, '-' | '?' | ':') && s.len() > 1 && !s[1..].starts_with(' '));
    start_ok
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && !s.chars().any(char::is_control)
        && s.trim() == s
}

fn double(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
}

/// A literal block keeps the text byte for byte unless it holds control characters.
fn block_ok(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') && !s.is_empty()
}

fn block_header(s: &str) -> String {
    let chomp = if !s.ends_with('\n') {
        "-"
    } else if s.ends_with("\n\n") {
        "+"
    } else {
        ""
    };
    let indicator = if s.starts_with(' ') || s.starts_with('\n') { "2" } else { "" };
    format!("|{indicator}{chomp}")
}

fn block_body(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::super::tree::parse;
    use super::*;

    fn round(text: &str) -> String {
        let d = parse(0, "t.yml", text).unwrap();
        let root = d.root.clone();
        emit(&root, &[d], &[]).text
    }

    #[test]
    fn comments_stay_next_to_their_keys() {
        let text = "# head\n\nglobal:\n  a: 1 # one\n  # above b\n  b: [x, y]\n  # end of global\njobs:\n  - name: x # n\n    # above t\n    t: |\n      two\n      lines\n  - 'q'\n# tail\n";
        let out = round(text);
        assert_eq!(out, "# head\n\nglobal:\n  a: 1 # one\n  # above b\n  b: [x, y]\n  # end of global\njobs:\n  - name: x # n\n    # above t\n    t: |\n      two\n      lines\n  - 'q'\n# tail\n");
    }

    #[test]
    fn values_read_back_the_same() {
        let text = "a: \"x\\ny\"\nb: 'it''s'\nc: '#x'\nd: {k: 'v, w', l: 2}\ne: |-\n  x\n   y\nf:\ng: [\"a,b\", c]\n";
        let out = round(text);
        let back: serde_json::Value = serde_saphyr::from_str(&out).unwrap();
        let orig: serde_json::Value = serde_saphyr::from_str(text).unwrap();
        assert_eq!(back, orig, "{out}");
    }
}
