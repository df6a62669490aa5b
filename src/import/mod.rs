//! `forewarn import`: a forewarn config written from the files a team
//! already has (prometheus.yml, alertmanager.yml, web-config.yml), with
//! their comments, and a list of every key that could not be carried.
//!
//! forewarn's file is Prometheus's and Alertmanager's in one, so most keys
//! are carried as they are; the per-source modules (`prometheus`,
//! `alertmanager`, `web`) do the renames and moves (Alertmanager's `global`
//! merges into the one `global`, `mute_time_intervals` becomes
//! `time_intervals`, the web config goes under `http`) and explain the keys
//! forewarn handles differently. What is left is decided by forewarn's own
//! config loader rather than by a second copy of its schema here: the tree
//! is written out and loaded with [`Config::parse`]; each key the loader
//! refuses (unknown, wrong type) is traced back to its input line, removed
//! and reported, until the output loads. So the output always passes
//! `forewarn check`'s config part, every input key is either in it or in the
//! report, and the report cannot drift from what forewarn accepts.
//!
//! Comments survive because the work is done on a tree built from
//! `granit-parser`'s events, which carry positions and comments (the same
//! parser serde-saphyr uses, so the lines agree with `forewarn check`);
//! `emit` writes each comment back beside the key it described. serde_yaml
//! and serde-saphyr's value types drop comments, and text-level editing of
//! the inputs cannot merge two files' `global` sections or move a file
//! under `http:`.

mod alertmanager;
mod emit;
mod prometheus;
pub mod report;
mod tree;
mod web;

use std::path::{Path, PathBuf};

pub use report::NotCarried;
use tree::{Doc, Entry, Kind, Node};

use crate::config::{Config, Located};

/// The files to import; at least one must be given.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub prometheus: Option<PathBuf>,
    pub alertmanager: Option<PathBuf>,
    pub web_config: Option<PathBuf>,
    /// Where the output will live: relative paths in the inputs (rule
    /// files, certificates) are rewritten when the inputs live elsewhere.
    pub output_dir: PathBuf,
}

/// The forewarn config and what was left behind.
#[derive(Clone, Debug)]
pub struct Imported {
    pub config: String,
    pub not_carried: Vec<NotCarried>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("nothing to import: give --prometheus, --alertmanager and/or --web-config")]
    NoInput,
    #[error("{file}: cannot read: {source}; check the path")]
    Read { file: String, source: std::io::Error },
    #[error("{file}:{line}:{col}: {message}")]
    Yaml { file: String, line: usize, col: usize, message: String },
    #[error("{file}:{line}:{col}: `{path}` must be a {expected}")]
    Shape { file: String, line: usize, col: usize, path: String, expected: &'static str },
    #[error("the imported config would not pass `forewarn check` (is the input valid for Prometheus/Alertmanager?):\n{}", list(.0))]
    Invalid(Vec<Located>),
}

fn list(errs: &[Located]) -> String {
    errs.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
}

/// One input file, parsed.
struct Source {
    name: String,
    dir: PathBuf,
}

/// Reads the inputs and builds the forewarn config.
pub fn import(inputs: &Inputs) -> Result<Imported, ImportError> {
    let given = [
        (&inputs.prometheus, SourceKind::Prometheus),
        (&inputs.alertmanager, SourceKind::Alertmanager),
        (&inputs.web_config, SourceKind::Web),
    ];
    let mut docs = Vec::new();
    let mut sources = Vec::new();
    let mut kinds = Vec::new();
    for (path, kind) in given {
        let Some(path) = path else { continue };
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read { file: name.clone(), source })?;
        docs.push(tree::parse(docs.len(), &name, &text)?);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        sources.push(Source { name, dir });
        kinds.push(kind);
    }
    if docs.is_empty() {
        return Err(ImportError::NoInput);
    }
    let names = sources.iter().map(|s| s.name.clone()).collect();
    let mut out = Out { root: Node::map(Vec::new()), report: Vec::new(), names, gone: Vec::new() };
    for (i, kind) in kinds.iter().enumerate() {
        let root = docs[i].root.clone();
        let fix = PathFix::new(&sources[i].dir, &inputs.output_dir);
        match kind {
            SourceKind::Prometheus => prometheus::carry(root, &mut out, &fix)?,
            SourceKind::Alertmanager => alertmanager::carry(root, &mut out, &fix)?,
            SourceKind::Web => web::carry(root, &mut out, &fix)?,
        }
    }
    prometheus::finish(&mut out);
    let config = out.settle(&docs, &inputs.output_dir)?;
    let mut not_carried = out.report;
    not_carried.sort_by_key(|n| (sources.iter().position(|s| s.name == n.file), n.line, n.col));
    Ok(Imported { config, not_carried })
}

#[derive(Clone, Copy)]
enum SourceKind {
    Prometheus,
    Alertmanager,
    Web,
}

/// The output tree being built, and the report.
pub(crate) struct Out {
    root: Node,
    report: Vec<NotCarried>,
    names: Vec<String>,
    /// Input lines of keys not carried (file, first line, last line): their comments go with them.
    gone: Vec<(usize, usize, usize)>,
}

impl Out {
    fn entries(&mut self) -> &mut Vec<Entry> {
        match &mut self.root.kind {
            Kind::Map(m) => m,
            _ => unreachable!("the output root is built as a mapping"),
        }
    }

    /// Reports `node` (the value of `path`, or a list item) as not carried.
    fn drop_node(&mut self, node: &Node, pos: tree::Pos, why: String) {
        if let Some(f) = node.file {
            self.gone.push((f, pos.line, node.end_line.max(pos.line)));
        }
        let file = node.file.and_then(|f| self.names.get(f)).cloned().unwrap_or_default();
        self.report.push(NotCarried { file, line: pos.line, col: pos.col, path: node.path.clone(), why });
    }

    fn drop_entry(&mut self, e: &Entry, why: String) {
        self.drop_node(&e.value, e.key_pos, why);
    }

    /// The top-level entry `key`, if present.
    fn section(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries().iter_mut().find(|e| e.key == key)
    }

    /// Removes, everywhere under `node`, the keys a table explains (the
    /// first matching pattern decides; an empty explanation keeps the key).
    fn drop_known(&mut self, node: &mut Node, tables: &[&[(&str, &str)]]) {
        match &mut node.kind {
            Kind::Map(entries) => {
                let mut kept = Vec::new();
                let mut lead = None;
                for mut e in std::mem::take(entries) {
                    match tables.iter().find_map(|t| report::lookup(t, e.path())) {
                        Some(why) if !why.is_empty() => {
                            lead = lead.or(Some(e.value.lead_from));
                            self.drop_entry(&e, why);
                        }
                        _ => {
                            if let Some(l) = lead.take() {
                                e.value.lead_from = l;
                            }
                            self.drop_known(&mut e.value, tables);
                            kept.push(e);
                        }
                    }
                }
                if let Kind::Map(entries) = &mut node.kind {
                    *entries = kept;
                }
            }
            Kind::Seq(items) => {
                for it in items.iter_mut() {
                    self.drop_known(it, tables);
                }
            }
            Kind::Scalar { .. } => {}
        }
    }

    /// Writes the tree and loads it as forewarn would, removing and
    /// reporting each key the loader refuses, until it loads.
    fn settle(&mut self, docs: &[Doc], output_dir: &Path) -> Result<String, ImportError> {
        // Each round removes one key; an input has fewer keys than lines.
        let rounds = docs.iter().map(|d| d.lines.len() + 1).sum::<usize>() + 1;
        for _ in 0..rounds {
            let emitted = emit::emit(&self.root, docs, &self.gone);
            let errs = match Config::parse("imported config", &emitted.text, Some(output_dir)) {
                Ok(_) => return Ok(emitted.text),
                Err(errs) => errs,
            };
            let Some(err) = errs.iter().find(|e| e.line > 0) else { return Err(ImportError::Invalid(errs)) };
            let Some(mut path) = culprit(&emitted.units, err) else { return Err(ImportError::Invalid(errs)) };
            if err.message.starts_with("unknown variant") {
                // A relabel rule without its action would be a `replace`: drop the whole rule.
                if let Some(item) = relabel_item(&self.root, &path) {
                    path = item;
                }
            }
            if err.message.starts_with("expected sequence start") {
                if let Some(n) = node_at(&mut self.root, &path).filter(|n| n.is_null()) {
                    // `targets:` with its items commented out: Prometheus reads an empty list.
                    n.kind = Kind::Seq(Vec::new());
                    continue;
                }
            }
            let Some((node, pos)) = remove_at(&mut self.root, &path) else { return Err(ImportError::Invalid(errs)) };
            if node.file.is_none() {
                // A key the importer made up was refused: a bug here, not in the input.
                return Err(ImportError::Invalid(errs));
            }
            self.drop_node(&node, pos, report::why_unknown(&err.message));
            inherit_lead(&mut self.root, &path, node.lead_from);
        }
        Err(ImportError::Invalid(vec![Located::new("imported config", 0, 0, "the loader kept refusing keys")]))
    }
}

/// The output tree path of the entry or list item an error points at:
/// the innermost one holding the position; for a missing field, the
/// mapping that lacks it.
fn culprit(units: &[emit::Unit], err: &Located) -> Option<Vec<usize>> {
    let (line, col) = (err.line as usize, err.col as usize);
    let holds = |u: &&emit::Unit| (u.line < line || (u.line == line && u.col <= col.max(1))) && u.end_line >= line;
    let inner = units.iter().filter(holds).max_by_key(|u| (u.path.len(), u.line, u.col))?;
    let mut path = inner.path.clone();
    if err.message.starts_with("missing field") && inner.line == line && inner.col >= col {
        // The error points at the mapping's first key: the mapping is at fault.
        path.pop();
    }
    (!path.is_empty()).then_some(path)
}

/// The path of the relabel rule (an item of a `*relabel_configs` list) holding `path`.
fn relabel_item(root: &Node, path: &[usize]) -> Option<Vec<usize>> {
    let mut node = root;
    let mut found = None;
    let mut in_relabel = false;
    for (depth, &i) in path.iter().enumerate() {
        node = match &node.kind {
            Kind::Map(m) => {
                let e = m.get(i)?;
                in_relabel = e.key.ends_with("relabel_configs");
                &e.value
            }
            Kind::Seq(s) => {
                if in_relabel {
                    found = Some(path[..=depth].to_vec());
                }
                in_relabel = false;
                s.get(i)?
            }
            Kind::Scalar { .. } => return None,
        };
    }
    found
}

/// After a removal at `path`, the sibling that took its place inherits
/// where its comments begin, so the comments above the removed one that
/// were not its own stay in the output.
fn inherit_lead(root: &mut Node, path: &[usize], lead_from: usize) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut node = root;
    for &i in parents {
        node = match &mut node.kind {
            Kind::Map(m) => match m.get_mut(i) {
                Some(e) => &mut e.value,
                None => return,
            },
            Kind::Seq(s) => match s.get_mut(i) {
                Some(n) => n,
                None => return,
            },
            Kind::Scalar { .. } => return,
        };
    }
    let next = match &mut node.kind {
        Kind::Map(m) => m.get_mut(*last).map(|e| &mut e.value),
        Kind::Seq(s) => s.get_mut(*last),
        Kind::Scalar { .. } => None,
    };
    if let Some(n) = next {
        if n.file.is_some() {
            n.lead_from = n.lead_from.min(lead_from);
        }
    }
}

/// The value at an output path (an entry's value or a list item).
fn node_at<'a>(root: &'a mut Node, path: &[usize]) -> Option<&'a mut Node> {
    let mut node = root;
    for &i in path {
        node = match &mut node.kind {
            Kind::Map(m) => &mut m.get_mut(i)?.value,
            Kind::Seq(s) => s.get_mut(i)?,
            Kind::Scalar { .. } => return None,
        };
    }
    Some(node)
}

/// Removes the node at an output path; returns it with its input position
/// (the key's for an entry, the item's for a list item).
fn remove_at(root: &mut Node, path: &[usize]) -> Option<(Node, tree::Pos)> {
    let (last, parents) = path.split_last()?;
    let mut node = root;
    for &i in parents {
        node = match &mut node.kind {
            Kind::Map(m) => &mut m.get_mut(i)?.value,
            Kind::Seq(s) => s.get_mut(i)?,
            Kind::Scalar { .. } => return None,
        };
    }
    match &mut node.kind {
        Kind::Map(m) if *last < m.len() => {
            let e = m.remove(*last);
            Some((e.value, e.key_pos))
        }
        Kind::Seq(s) if *last < s.len() => {
            let n = s.remove(*last);
            let pos = n.pos;
            Some((n, pos))
        }
        _ => None,
    }
}

/// Rewrites relative file paths of an input so that they still point at
/// the same files from the output's directory.
pub(crate) struct PathFix {
    base: Option<PathBuf>,
}

impl PathFix {
    fn new(input_dir: &Path, output_dir: &Path) -> PathFix {
        let abs = |p: &Path| std::path::absolute(if p.as_os_str().is_empty() { Path::new(".") } else { p }).ok();
        let (i, o) = (abs(input_dir), abs(output_dir));
        PathFix { base: if i == o { None } else { i } }
    }

    /// Applies to the scalar values of the keys named in `keys`, and to the
    /// items of lists under those keys, anywhere under `node`.
    fn apply(&self, node: &mut Node, keys: &[&str]) {
        let Some(base) = &self.base else { return };
        match &mut node.kind {
            Kind::Map(entries) => {
                for e in entries {
                    if keys.contains(&e.key.as_str()) {
                        fix_paths(&mut e.value, base);
                    } else {
                        self.apply(&mut e.value, keys);
                    }
                }
            }
            Kind::Seq(items) => items.iter_mut().for_each(|n| self.apply(n, keys)),
            Kind::Scalar { .. } => {}
        }
    }
}

fn fix_paths(node: &mut Node, base: &Path) {
    if node.is_null() {
        return;
    }
    match &mut node.kind {
        Kind::Scalar { value, style } if !value.is_empty() && Path::new(value.as_str()).is_relative() => {
            *value = base.join(&*value).display().to_string();
            if *style == tree::Style::Plain && value.contains([' ', '#', ':']) {
                *style = tree::Style::Double;
            }
        }
        Kind::Seq(items) => items.iter_mut().for_each(|n| fix_paths(n, base)),
        _ => {}
    }
}

/// The top-level entries of an input worth carrying: those `table` reports
/// are dropped (and listed), the comments that led them move to the next
/// entry kept, and each kept section named in `maps` or `lists` must be a
/// mapping or a list, as the importer moves it.
fn top_level(
    root: Node,
    out: &mut Out,
    table: &[(&str, &str)],
    maps: &[&str],
    lists: &[&str],
) -> Result<Vec<Entry>, ImportError> {
    let Kind::Map(entries) = root.kind else { return Ok(Vec::new()) };
    let (mut kept, mut lead) = (Vec::new(), None);
    for mut e in entries {
        if let Some(why) = report::lookup(table, e.path()).filter(|w| !w.is_empty()) {
            lead = lead.or(Some(e.value.lead_from));
            out.drop_entry(&e, why);
            continue;
        }
        if let Some(l) = lead.take() {
            e.value.lead_from = l;
        }
        let k = e.key.as_str();
        if maps.contains(&k) && e.value.as_map().is_none() && !e.value.is_null() {
            return Err(shape_error(out, &e, "mapping"));
        }
        if lists.contains(&k) && !matches!(e.value.kind, Kind::Seq(_)) && !e.value.is_null() {
            return Err(shape_error(out, &e, "list"));
        }
        kept.push(e);
    }
    Ok(kept)
}

fn shape_error(out: &Out, e: &Entry, expected: &'static str) -> ImportError {
    let file = e.value.file.and_then(|f| out.names.get(f)).cloned().unwrap_or_default();
    ImportError::Shape { file, line: e.key_pos.line, col: e.key_pos.col, path: e.value.path.clone(), expected }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` into a fresh directory and imports them as Prometheus and Alertmanager files.
    fn run(tag: &str, prom: &str, am: Option<&str>) -> Result<Imported, ImportError> {
        let dir = std::env::temp_dir().join(format!("forewarn-import-unit-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("prometheus.yml");
        std::fs::write(&p, prom).expect("write");
        let a = am.map(|t| {
            let a = dir.join("alertmanager.yml");
            std::fs::write(&a, t).expect("write");
            a
        });
        import(&Inputs { prometheus: Some(p), alertmanager: a, web_config: None, output_dir: dir.clone() })
    }

    #[test]
    fn missing_file_names_it() {
        let e = import(&Inputs { prometheus: Some("/nonexistent/prometheus.yml".into()), ..Default::default() })
            .unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/prometheus.yml: cannot read:"), "{e}");
        assert!(matches!(import(&Inputs::default()), Err(ImportError::NoInput)));
    }

    #[test]
    fn not_yaml_has_file_line_col() {
        let e = run("notyaml", "global:\n  scrape_interval: 15s\n  x: [1, 2\n", None).unwrap_err();
        let ImportError::Yaml { file, line, col, .. } = &e else { panic!("{e}") };
        assert!(file.ends_with("prometheus.yml"), "{e}");
        assert!(*line >= 3 && *col >= 1, "{e}");
        let e = run("scalar", "just text\n", None).unwrap_err();
        assert!(e.to_string().contains("prometheus.yml:1:1: the file must be a mapping"), "{e}");
    }

    #[test]
    fn wrong_types_are_errors_or_reported_with_lines() {
        let e = run("shape", "global:\n  - 1\n", None).unwrap_err();
        assert!(e.to_string().ends_with("prometheus.yml:1:1: `global` must be a mapping"), "{e}");
        let ok = run(
            "types",
            "scrape_configs:\n  - job_name: a\n    scrape_interval: [1m]\n    scrape_intervall: 1m\n    static_configs: [ { targets: ['h:1'] } ]\n",
            None,
        )
        .expect("imports");
        let got: Vec<(usize, usize, &str)> = ok.not_carried.iter().map(|n| (n.line, n.col, n.path.as_str())).collect();
        assert_eq!(
            got,
            vec![(3, 5, "scrape_configs[0].scrape_interval"), (4, 5, "scrape_configs[0].scrape_intervall")]
        );
        assert!(ok.not_carried[0].why.contains("does not accept this value"), "{:?}", ok.not_carried[0]);
        assert!(ok.not_carried[1].why.contains("did you mean `scrape_interval`?"), "{:?}", ok.not_carried[1]);
        Config::parse("out.yml", &ok.config, None).expect("the output loads");
    }

    #[test]
    fn both_globals_merge_and_mute_intervals_rename() {
        let ok = run(
            "merge",
            "# prom\nglobal:\n  scrape_interval: 15s # fast\n",
            Some("global:\n  # the relay\n  smtp_smarthost: 'mx:25'\nroute: { receiver: r, routes: [ { receiver: r, mute_time_intervals: [n] } ] }\nreceivers: [ { name: r } ]\nmute_time_intervals:\n  - name: n\n    time_intervals: [ { weekdays: [saturday] } ]\n"),
        )
        .expect("imports");
        assert!(ok.not_carried.is_empty(), "{:?}", ok.not_carried);
        assert!(
            ok.config.starts_with(
                "# prom\nglobal:\n  scrape_interval: 15s # fast\n  # the relay\n  smtp_smarthost: 'mx:25'\n"
            ),
            "{}",
            ok.config
        );
        let c = Config::parse("out.yml", &ok.config, None).expect("loads");
        assert_eq!(c.time_intervals[0].name, "n");
        assert_eq!(c.global.smtp_smarthost.as_deref(), Some("mx:25"));
    }
}
