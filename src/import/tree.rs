//! A YAML document as a tree that remembers where everything was: each key's
//! line and column, each node's last line, and the file's comments.
//!
//! The importer moves, renames and removes keys and must say where each
//! removed key was; then it writes the tree back with the comments next to
//! the keys they described. serde's data model keeps neither positions nor
//! comments, so this tree is built from the events of `granit-parser` (the
//! parser serde-saphyr uses for `forewarn check`, so the positions agree),
//! whose `comments` feature reports every comment with its span.

use std::collections::BTreeSet;

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

use super::ImportError;

/// A 1-based line and column in one input file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// How a scalar was written, so that it is written back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
    Block,
}

#[derive(Clone, Debug)]
pub enum Kind {
    Scalar { value: String, style: Style },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A value with where it came from. `file` indexes the importer's inputs;
/// `None` for nodes the importer made up.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    pub file: Option<usize>,
    pub pos: Pos,
    /// The last line holding this node's content.
    pub end_line: usize,
    /// The line after which comments above this node (or entry) begin.
    pub lead_from: usize,
    /// Written in flow style (`[a, b]`, `{a: b}`) in the input.
    pub flow: bool,
    /// Where it was in its input file, e.g. `scrape_configs[0].static_configs`.
    pub path: String,
}

/// One `key: value` of a mapping.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
    /// A comment the importer writes above this entry (for keys it made up).
    pub note: Option<String>,
}

impl Entry {
    /// Where the entry was in its input file (its value's path).
    pub fn path(&self) -> &str {
        &self.value.path
    }
}

/// One comment of an input file.
#[derive(Clone, Debug)]
pub struct Comment {
    pub line: usize,
    pub col: usize,
    /// From `#` to the end of the line.
    pub text: String,
    /// Alone on its line (else it follows content).
    pub own_line: bool,
}

/// A parsed input file.
#[derive(Debug)]
pub struct Doc {
    pub root: Node,
    pub comments: Vec<Comment>,
    /// The file's lines, to tell where blank lines separated keys.
    pub lines: Vec<String>,
    /// Lines holding YAML content (not only comments or blanks).
    pub content_lines: BTreeSet<usize>,
}

impl Node {
    pub fn scalar(value: &str) -> Node {
        Node {
            kind: Kind::Scalar { value: value.to_string(), style: Style::Plain },
            file: None,
            pos: Pos::default(),
            end_line: 0,
            lead_from: 0,
            flow: false,
            path: String::new(),
        }
    }

    pub fn map(entries: Vec<Entry>) -> Node {
        Node { kind: Kind::Map(entries), ..Node::scalar("") }
    }

    pub fn as_map(&self) -> Option<&Vec<Entry>> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Vec<Entry>> {
        match &mut self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// A plain `~`, `null` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, style: Style::Plain } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
}

/// Parses one input file. An empty file is an empty mapping.
pub fn parse(file_index: usize, name: &str, text: &str) -> Result<Doc, ImportError> {
    let options = granit_parser::options! { max_buffered_comment_events: 1 << 20 };
    let mut events = Vec::new();
    for next in Parser::new_from_str_with_options(text, options) {
        let (event, span) = next.map_err(|e| ImportError::Yaml {
            file: name.to_string(),
            line: e.marker().line(),
            col: e.marker().col() + 1,
            message: e.info(),
        })?;
        events.push((event, span));
    }
    let mut b = Builder { file: file_index, name, events, i: 0, comments: Vec::new(), anchors: Vec::new() };
    let mut root = None;
    while b.i < b.events.len() {
        match &b.events[b.i].0 {
            Event::Comment(..) => b.take_comment(text),
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..) | Event::Alias(..) => {
                if root.is_some() {
                    return Err(b.error(b.i, "more than one YAML document; keep one per file"));
                }
                root = Some(b.node(text, String::new(), 0)?);
            }
            _ => b.i += 1,
        }
    }
    let mut root = root.unwrap_or_else(|| Node::map(Vec::new()));
    if root.is_null() {
        root = Node { kind: Kind::Map(Vec::new()), ..root };
    }
    if root.as_map().is_none() {
        return Err(ImportError::Yaml {
            file: name.to_string(),
            line: root.pos.line,
            col: root.pos.col,
            message: "the file must be a mapping of `key: value` at the top".into(),
        });
    }
    let mut content_lines = BTreeSet::new();
    collect_lines(&root, &mut content_lines);
    Ok(Doc { root, comments: b.comments, lines: text.lines().map(str::to_string).collect(), content_lines })
}

fn collect_lines(n: &Node, out: &mut BTreeSet<usize>) {
    out.insert(n.pos.line);
    match &n.kind {
        Kind::Scalar { .. } => out.extend(n.pos.line..=n.end_line),
        Kind::Seq(items) => items.iter().for_each(|i| collect_lines(i, out)),
        Kind::Map(entries) => {
            for e in entries {
                out.insert(e.key_pos.line);
                collect_lines(&e.value, out);
            }
        }
    }
    if n.flow {
        out.insert(n.end_line);
    }
}

struct Builder<'a> {
    file: usize,
    name: &'a str,
    events: Vec<(Event<'a>, granit_parser::Span)>,
    i: usize,
    comments: Vec<Comment>,
    /// Anchored nodes by anchor id, for aliases (copied where used).
    anchors: Vec<(usize, Node)>,
}

impl<'a> Builder<'a> {
    fn error(&self, i: usize, message: &str) -> ImportError {
        let m = self.events.get(i).map(|(_, s)| s.start).unwrap_or(granit_parser::Marker::new(0, 0, 0));
        ImportError::Yaml { file: self.name.to_string(), line: m.line(), col: m.col() + 1, message: message.into() }
    }

    fn take_comment(&mut self, text: &str) {
        if let (Event::Comment(_, _), span) = &self.events[self.i] {
            let (line, col) = (span.start.line(), span.start.col());
            let line_text = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
            let before: String = line_text.chars().take(col).collect();
            let full = span.slice(text).map(str::to_string).unwrap_or_default();
            self.comments.push(Comment { line, col: col + 1, text: full, own_line: before.trim().is_empty() });
        }
        self.i += 1;
    }

    fn skip_comments(&mut self, text: &str) {
        while let Some((Event::Comment(..), _)) = self.events.get(self.i) {
            self.take_comment(text);
        }
    }

    /// Builds the node starting at event `self.i`.
    fn node(&mut self, text: &str, path: String, lead_from: usize) -> Result<Node, ImportError> {
        self.skip_comments(text);
        let Some((event, span)) = self.events.get(self.i).cloned() else {
            return Err(self.error(self.i.saturating_sub(1), "unexpected end of the file"));
        };
        self.i += 1;
        let pos = Pos { line: span.start.line(), col: span.start.col() + 1 };
        let file = self.file;
        let base =
            |kind, end_line, flow| Node { kind, file: Some(file), pos, end_line, lead_from, flow, path: path.clone() };
        let (node, anchor) = match event {
            Event::Scalar(value, style, anchor, _) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::Single,
                    ScalarStyle::DoubleQuoted => Style::Double,
                    ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
                };
                // A block scalar's span ends at the start of the line after it.
                // A block scalar's span runs over the blank lines after it.
                let mut end = span.end.line();
                let blank = |l: usize| text.lines().nth(l.saturating_sub(1)).is_none_or(|t| t.trim().is_empty());
                while end > pos.line && (blank(end) || (span.end.col() == 0 && end == span.end.line())) {
                    end -= 1;
                }
                (base(Kind::Scalar { value: value.into_owned(), style }, end, false), anchor)
            }
            Event::Alias(id) => {
                let Some((_, target)) = self.anchors.iter().rev().find(|(a, _)| *a == id) else {
                    return Err(self.error(self.i - 1, "alias to an unknown anchor"));
                };
                // The copy keeps the anchor's content but the alias's place.
                let mut copy = target.clone();
                copy.pos = pos;
                copy.end_line = span.end.line();
                copy.lead_from = lead_from;
                copy.path = path.clone();
                return Ok(copy);
            }
            Event::SequenceStart(style, anchor, _) => {
                let mut items = Vec::new();
                let mut prev_end = if style == StructureStyle::Flow { pos.line } else { lead_from };
                loop {
                    self.skip_comments(text);
                    match self.events.get(self.i) {
                        Some((Event::SequenceEnd, end)) => {
                            let end_line = end.end.line();
                            self.i += 1;
                            let flow = style == StructureStyle::Flow;
                            let last =
                                if flow { end_line } else { items.last().map_or(pos.line, |n: &Node| n.end_line) };
                            break (base(Kind::Seq(items), last, flow), anchor);
                        }
                        Some(_) => {
                            let item = self.node(text, format!("{path}[{}]", items.len()), prev_end)?;
                            prev_end = item.end_line;
                            items.push(item);
                        }
                        None => return Err(self.error(self.i - 1, "unterminated list")),
                    }
                }
            }
            Event::MappingStart(style, anchor, _) => {
                let mut entries: Vec<Entry> = Vec::new();
                let flow = style == StructureStyle::Flow;
                let mut prev_end = if flow { pos.line } else { lead_from };
                loop {
                    self.skip_comments(text);
                    match self.events.get(self.i).cloned() {
                        Some((Event::MappingEnd, end)) => {
                            self.i += 1;
                            let last = if flow {
                                end.end.line()
                            } else {
                                entries.last().map_or(pos.line, |e| e.value.end_line.max(e.key_pos.line))
                            };
                            break (base(Kind::Map(entries), last, flow), anchor);
                        }
                        Some((Event::Scalar(key, ..), kspan)) => {
                            self.i += 1;
                            let key_pos = Pos { line: kspan.start.line(), col: kspan.start.col() + 1 };
                            let key = key.into_owned();
                            let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                            let mut value = self.node(text, child, key_pos.line)?;
                            value.lead_from = prev_end;
                            if value.is_null() {
                                // An empty value has no place of its own: the key's.
                                value.pos = key_pos;
                                value.end_line = key_pos.line;
                            }
                            if key == "<<" {
                                merge_into(&mut entries, value);
                                continue;
                            }
                            prev_end = value.end_line.max(key_pos.line);
                            entries.push(Entry { key, key_pos, value, note: None });
                        }
                        Some(_) => return Err(self.error(self.i, "a mapping key must be text, not a list or mapping")),
                        None => return Err(self.error(self.i.saturating_sub(1), "unterminated mapping")),
                    }
                }
            }
            _ => return Err(self.error(self.i - 1, "unexpected YAML event")),
        };
        if anchor != 0 {
            self.anchors.push((anchor, node.clone()));
        }
        Ok(node)
    }
}

/// YAML's merge key `<<: *base`: the base's entries the mapping does not set.
fn merge_into(entries: &mut Vec<Entry>, base: Node) {
    let bases = match base.kind {
        Kind::Map(m) => vec![m],
        Kind::Seq(items) => {
            items.into_iter().filter_map(|n| if let Kind::Map(m) = n.kind { Some(m) } else { None }).collect()
        }
        Kind::Scalar { .. } => Vec::new(),
    };
    for m in bases {
        for e in m {
            if !entries.iter().any(|x| x.key == e.key) {
                entries.push(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_comments_and_aliases() {
        let text = "# head\na: 1 # one\nb:\n  - &x { c: d }\n  - *x\ns: |\n  two\n  lines\n\nz: 'q'\n";
        let d = parse(0, "t.yml", text).unwrap();
        let m = d.root.as_map().unwrap();
        assert_eq!(m[0].key_pos, Pos { line: 2, col: 1 });
        assert_eq!(m[1].value.pos.line, 4);
        let Kind::Seq(items) = &m[1].value.kind else { panic!("{:?}", m[1].value) };
        assert_eq!(items[1].as_map().unwrap()[0].value.as_str(), Some("d"));
        assert_eq!(items[1].path, "b[1]");
        assert_eq!((m[2].value.pos.line, m[2].value.end_line), (7, 8));
        assert_eq!(m[3].value.lead_from, 8);
        let c: Vec<(usize, bool)> = d.comments.iter().map(|c| (c.line, c.own_line)).collect();
        assert_eq!(c, vec![(1, true), (2, false)]);
        assert_eq!(d.comments[1].text, "# one");
    }

    #[test]
    fn bad_yaml_has_position() {
        let e = parse(0, "t.yml", "a: 1\nb: [1, 2\n").unwrap_err();
        let ImportError::Yaml { line, .. } = e else { panic!("{e}") };
        assert!(line >= 2, "{e}");
        assert!(matches!(parse(0, "t.yml", "- a\n"), Err(ImportError::Yaml { line: 1, .. })));
    }
}
