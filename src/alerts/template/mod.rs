//! Annotation and notification templates: a subset of Go's `text/template`
//! with Prometheus's template functions, so rule files written for Prometheus
//! render the same text here.
//!
//! This module owns the whole template pipeline: the lexer (`lex`), the parser
//! producing a tree that is built once per annotation and rendered many times
//! (`parse`), the evaluator with Go's builtins (`exec`), Prometheus's functions
//! (`funcs`) and a re-implementation of the parts of Go's `fmt`/`strconv`/`time`
//! output that users see (`gofmt`), because alert text such as `1.235M` or
//! `1e+06` must match what Prometheus prints byte for byte.
//!
//! Deliberate choices, mirroring Prometheus where it matters:
//! - Prometheus prepends `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}
//!   {{$externalURL := .ExternalURL}}{{$value := .Value}}`; here every entry of
//!   [`TemplateData::vars`] is a predeclared variable instead, so both `$labels.x`
//!   and `.Labels.x` work. Like Go, using a variable that is neither declared in
//!   the template nor one of [`KNOWN_VARS`] is a parse error (see
//!   [`Template::parse_with_vars`] to allow more names).
//! - Prometheus executes with `missingkey=zero`: a missing key of a string map
//!   (labels) renders as the empty string; a missing key of a mixed map yields
//!   "no value" (printed `<no value>`), as Go does for `map[string]interface{}`.
//! - Number literals keep Go's int/float distinction, so `gt $value 100` fails
//!   with "incompatible types for comparison" exactly as in Prometheus (write
//!   `100.0`), and `printf "%d" $value` prints `%!d(float64=3)`.
//! - `query` parses, but rendering it needs a hook ([`RenderOptions::query`]);
//!   without one it is an execution error "query is not supported in templates yet".
//! - Unknown function names are parse errors; wrong argument counts and types
//!   are execution errors, as in Go.

mod exec;
mod funcs;
pub(crate) use funcs::humanize;
mod gofmt;
mod lex;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::labels::Labels;

/// A value handed to a template: the data model is the JSON-like subset of
/// Go values that alert templates see (labels are string maps, the value is a
/// float64, query results are lists of `{Labels, Value}` maps).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum TplValue {
    #[default]
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<TplValue>),
    Map(BTreeMap<String, TplValue>),
}

impl From<&str> for TplValue {
    fn from(s: &str) -> Self {
        TplValue::Str(s.to_string())
    }
}

impl From<String> for TplValue {
    fn from(s: String) -> Self {
        TplValue::Str(s)
    }
}

impl From<f64> for TplValue {
    fn from(v: f64) -> Self {
        TplValue::Num(v)
    }
}

impl From<bool> for TplValue {
    fn from(v: bool) -> Self {
        TplValue::Bool(v)
    }
}

impl From<&Labels> for TplValue {
    fn from(l: &Labels) -> Self {
        TplValue::Map(l.iter().map(|(k, v)| (k.to_string(), TplValue::Str(v.to_string()))).collect())
    }
}

impl From<Vec<TplValue>> for TplValue {
    fn from(v: Vec<TplValue>) -> Self {
        TplValue::List(v)
    }
}

impl From<BTreeMap<String, TplValue>> for TplValue {
    fn from(m: BTreeMap<String, TplValue>) -> Self {
        TplValue::Map(m)
    }
}

impl TplValue {
    /// A query-result sample as Prometheus templates see it: `{Labels, Value}`.
    pub fn sample(labels: &Labels, value: f64) -> TplValue {
        let mut m = BTreeMap::new();
        m.insert("Labels".to_string(), TplValue::from(labels));
        m.insert("Value".to_string(), TplValue::Num(value));
        TplValue::Map(m)
    }
}

/// A template failed to parse or to render. `name` is the template's name
/// (for annotations, the annotation key such as "summary").
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum TemplateError {
    #[error("{name}:{line}:{col}: {message}")]
    Parse { name: String, line: usize, col: usize, message: String },
    #[error("{name}: executing: {message}")]
    Exec { name: String, message: String },
}

/// Variables every alert template may use without declaring them: the four
/// Prometheus defines plus the ones forewarn adds.
pub const KNOWN_VARS: &[&str] = &[
    "labels",
    "value",
    "externalLabels",
    "externalURL",
    "trend",
    "ratio",
    "anomaly",
    "threshold",
    "deploy",
    "changes",
    "explanation",
];

/// What a template is rendered against.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemplateData {
    /// Predeclared variables, by name without `$`.
    pub vars: BTreeMap<String, TplValue>,
    /// The initial `.` (and `$`).
    pub dot: TplValue,
}

impl TemplateData {
    /// The data Prometheus gives alert annotations: `.Labels`, `.ExternalLabels`,
    /// `.ExternalURL`, `.Value`, and the variables `$labels`, `$externalLabels`,
    /// `$externalURL`, `$value`.
    pub fn for_alert(labels: &Labels, value: f64, external_labels: &Labels, external_url: &str) -> Self {
        let mut vars = BTreeMap::new();
        vars.insert("labels".to_string(), TplValue::from(labels));
        vars.insert("externalLabels".to_string(), TplValue::from(external_labels));
        vars.insert("externalURL".to_string(), TplValue::from(external_url));
        vars.insert("value".to_string(), TplValue::Num(value));
        let mut dot = BTreeMap::new();
        dot.insert("Labels".to_string(), TplValue::from(labels));
        dot.insert("ExternalLabels".to_string(), TplValue::from(external_labels));
        dot.insert("ExternalURL".to_string(), TplValue::from(external_url));
        dot.insert("Value".to_string(), TplValue::Num(value));
        TemplateData { vars, dot: TplValue::Map(dot) }
    }
}

/// One sample returned by a [`QueryFn`].
pub type QueryFn = dyn Fn(&str) -> Result<Vec<(Labels, f64)>, String> + Send + Sync;

/// Optional context for [`Template::render_with`].
#[derive(Default)]
pub struct RenderOptions<'a> {
    /// Evaluation time in Unix seconds for `now`; the wall clock when unset.
    pub now: Option<f64>,
    /// Runs PromQL for the `query` function; without it `query` is an error.
    pub query: Option<&'a QueryFn>,
    /// HTML-escape every value an action prints (for HTML email bodies, as
    /// Go's html/template does); values from `safeHtml` and `html` print
    /// as they are. The template's own text is never changed.
    pub escape_html: bool,
}

impl fmt::Debug for RenderOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderOptions")
            .field("now", &self.now)
            .field("query", &self.query.is_some())
            .field("escape_html", &self.escape_html)
            .finish()
    }
}

/// A parsed template: parse once, render many times. `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Template {
    name: String,
    root: Vec<parse::Node>,
    defines: HashMap<String, Vec<parse::Node>>,
    line_starts: Vec<usize>,
    src: String,
}

impl Template {
    /// Parses `text`; `name` is only used in error messages. Undeclared
    /// variables other than [`KNOWN_VARS`] are rejected.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        Template::parse_with_vars(name, text, KNOWN_VARS)
    }

    /// Like [`Template::parse`], with the given names (without `$`) predeclared.
    pub fn parse_with_vars(name: &str, text: &str, vars: &[&str]) -> Result<Template, TemplateError> {
        let line_starts = line_starts(text);
        let perr = |pos: usize, message: String| {
            let (line, col) = line_col(text, &line_starts, pos);
            TemplateError::Parse { name: name.to_string(), line, col, message }
        };
        let toks = lex::lex(text).map_err(|(pos, m)| perr(pos, m))?;
        let (root, defines) = parse::parse(&toks, vars).map_err(|(pos, m)| perr(pos, m))?;
        Ok(Template { name: name.to_string(), root, defines, line_starts, src: text.to_string() })
    }

    /// The template's name, as given to `parse`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders against `data`; `now` is the wall clock and `query` is unavailable.
    pub fn render(&self, data: &TemplateData) -> Result<String, TemplateError> {
        self.render_with(data, &RenderOptions::default())
    }

    /// Renders with an evaluation time and/or a query hook.
    pub fn render_with(&self, data: &TemplateData, opts: &RenderOptions<'_>) -> Result<String, TemplateError> {
        exec::render(self, data, opts).map_err(|(pos, message)| {
            let (line, col) = line_col(&self.src, &self.line_starts, pos);
            TemplateError::Exec { name: self.name.clone(), message: format!("{line}:{col}: {message}") }
        })
    }

    /// Every label name the template reads through `$labels.X`, `.Labels.X`
    /// or `index $labels "X"` / `index .Labels "X"`, sorted and deduplicated.
    pub fn referenced_label_names(&self) -> Vec<String> {
        let mut out = BTreeSet::new();
        parse::collect_label_refs(&self.root, &mut out);
        for body in self.defines.values() {
            parse::collect_label_refs(body, &mut out);
        }
        out.into_iter().collect()
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
    v
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_col(text: &str, starts: &[usize], pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let line = starts.partition_point(|&s| s <= pos).max(1);
    let start = starts[line - 1];
    let col = text.get(start..pos).map(|s| s.chars().count()).unwrap_or(pos - start) + 1;
    (line, col)
}
