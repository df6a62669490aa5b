//! Parsing of scraped bodies: the Prometheus text exposition format 0.0.4 and
//! the OpenMetrics 1.0 text format. This module owns turning the bytes a
//! target returned into samples (name, labels, value, timestamp) and deciding
//! whether the body is acceptable at all; it knows nothing about HTTP or
//! storage. It is the hot path of every scrape, so it is zero-copy: names and
//! label values borrow from the body, a label value is only copied when it
//! contains a backslash escape, and the label buffer is reused from sample to
//! sample. A scraper that caches its series goes further ([`parse_keyed`]):
//! a line is first offered by the hash of its series text, and only a
//! series not seen before has its labels lexed. The body comes from the
//! network, so nothing here panics on input:
//! garbage, invalid UTF-8 and huge lines become [`ParseError`]s with a line and
//! column.
//!
//! The two formats differ in strictness on purpose. The Prometheus format is
//! parsed as leniently as Prometheus and prometheus/common do (blanks around
//! tokens, CRLF, trailing commas, comments anywhere), rejecting what they
//! reject. OpenMetrics is parsed strictly by default: besides its exact syntax
//! (single spaces, mandatory `# EOF`, nothing after it), the spec's validity
//! rules for families, metrics and metric points are enforced (see `om.rs`),
//! because the spec says partial or invalid expositions must be rejected in
//! their entirety. [`ParseOptions::strict_openmetrics`] turns the semantic
//! rules off for targets that Prometheus' own (laxer) OpenMetrics parser
//! would accept.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

pub(crate) mod hash;
mod lex;
mod om;
#[cfg(test)]
mod tests;

use hash::{label_set_hash, series_hash, IdBuild};
use lex::{Cursor, LineError, Meta, RawLabel, RawSample, Ts};
use om::{allowed_suffixes, split_suffix, Suffix};

/// Which text format a body is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4 (`text/plain; version=0.0.4`).
    Prometheus,
    /// OpenMetrics 1.0 text format (`application/openmetrics-text`).
    OpenMetrics,
}

impl Format {
    /// Picks the format from a response's `Content-Type`. Anything that is not
    /// `application/openmetrics-text` (including a missing or odd header) is
    /// treated as the Prometheus format, as Prometheus does.
    pub fn from_content_type(ct: &str) -> Format {
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// The `Accept` header to scrape with, modelled on what Prometheus sends:
/// OpenMetrics 1.0 preferred, then 0.0.1, then the Prometheus text format,
/// then anything (parsed as the Prometheus format).
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;q=0.75,application/openmetrics-text;version=0.0.1;q=0.6,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Metric family type as declared by a `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// OpenMetrics' name for "no type".
    Unknown,
    /// Prometheus format's name for "no type" (rejected in OpenMetrics).
    Untyped,
}

impl MetricType {
    fn from_openmetrics(s: &str) -> Option<MetricType> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "unknown" => MetricType::Unknown,
            _ => return None,
        })
    }

    fn from_prometheus(s: &str) -> Option<MetricType> {
        match s {
            "untyped" => Some(MetricType::Untyped),
            _ => MetricType::from_openmetrics(s),
        }
    }

    /// The name used in `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
            MetricType::Untyped => "untyped",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sample, as handed to the `on_sample` callback. It borrows from the
/// body (or, rarely, from per-line scratch), so copy out what you keep.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample<'a> {
    /// The sample's metric name, suffix included (`http_requests_total`,
    /// `x_bucket`); for quoted UTF-8 names, the unescaped name.
    pub name: &'a str,
    /// Labels in the order they appear on the line, values unescaped. Values
    /// are `Cow::Borrowed` unless they contained an escape. The vector is
    /// recycled between samples, so the callback sees no allocation per
    /// sample in the common case.
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
    /// Prometheus format: as written (milliseconds). OpenMetrics: seconds
    /// converted to milliseconds, rounded to the nearest; saturates at the
    /// i64 range.
    pub timestamp_ms: Option<i64>,
}

impl ParsedSample<'_> {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_ref())
    }
}

/// Where and why a body was rejected. `line` and `col` are 1-based; `col`
/// counts bytes. Rules about a whole metric point (e.g. a histogram's +Inf
/// bucket) are reported at the line where the point started, column 1.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("line {line}:{col}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Counts over a parsed body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseSummary {
    /// Sample lines accepted.
    pub samples: usize,
    /// Distinct (name, label set) pairs; label order does not matter. Counted
    /// by 64-bit hash, so a collision could undercount by one.
    pub series: usize,
    /// Distinct metric families: names introduced by HELP/TYPE/UNIT lines, plus
    /// sample names that belong to no declared family.
    pub metric_families: usize,
}

/// Knobs for [`parse_with`] / [`check_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseOptions {
    /// Enforce OpenMetrics' semantic rules (family grouping, type-specific
    /// value and label rules, timestamps order, exemplar placement). The
    /// syntax, `# EOF` included, is always strict. Default: true.
    pub strict_openmetrics: bool,
    /// Count distinct series into [`ParseSummary::series`] (a hash and a set
    /// insert per sample). The scraper does not need it. Default: true.
    pub count_series: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions { strict_openmetrics: true, count_series: true }
    }
}

impl ParseOptions {
    /// What a scrape needs: lenient OpenMetrics, as Prometheus scrapes
    /// (real client libraries emit bodies the strict spec rejects), and no
    /// series count.
    pub fn scrape() -> Self {
        ParseOptions { strict_openmetrics: false, count_series: false }
    }
}

/// Metadata of one metric family, from its HELP/TYPE/UNIT lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricMetadata {
    pub name: String,
    pub metric_type: Option<MetricType>,
    pub help: Option<String>,
    pub unit: Option<String>,
}

/// `check` stops collecting after this many errors: a garbage body could
/// otherwise produce one per line.
pub const MAX_CHECK_ERRORS: usize = 1000;

/// Calls `on_sample` for every sample in order; stops at the first error (a
/// scrape is all-or-nothing, as in Prometheus — samples already passed to the
/// callback must then be discarded by the caller).
pub fn parse(
    body: &[u8],
    format: Format,
    on_sample: impl FnMut(&ParsedSample<'_>),
) -> Result<ParseSummary, ParseError> {
    parse_with(body, format, ParseOptions::default(), on_sample)
}

/// [`parse`] with options.
pub fn parse_with(
    body: &[u8],
    format: Format,
    opts: ParseOptions,
    on_sample: impl FnMut(&ParsedSample<'_>),
) -> Result<ParseSummary, ParseError> {
    let mut p = Parser::new(body, format, opts, 1);
    p.run(&mut Every(on_sample));
    match p.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(p.summary),
    }
}

/// A series as written on a sample line (its name and label set, byte for
/// byte), the format and the family type it was read under, as two independent 64-bit
/// hashes: a scraper keys its cache on it, with collision odds of about
/// 2^-128 per pair, and never stores the bytes (~100 per series).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeriesKey(pub u64, pub u64);

/// What [`parse_keyed`] hands its callback for a sample line.
pub enum Seen<'s, 'a> {
    /// The line's series key, value and timestamp, its labels not yet
    /// lexed. The callback returns whether it knows the key; if not, the
    /// line is lexed in full and comes back as [`Seen::Parsed`].
    Key { key: SeriesKey, value: f64, timestamp_ms: Option<i64> },
    /// The whole sample, for a key the callback did not know (or a line the
    /// fast path does not take: a quoted name, a blank before `{`). The
    /// return value is ignored.
    Parsed { key: SeriesKey, sample: &'s ParsedSample<'a> },
}

/// [`parse_with`] for a scraper that caches the series it has seen: each
/// sample line is first offered as its [`SeriesKey`] with only the value
/// and timestamp lexed, so a series seen in an earlier scrape costs no
/// label lexing, unescaping or checking (Prometheus's scrape cache works
/// from the raw series bytes the same way). Same bytes under the same
/// family type pass the same checks, so nothing the full parse would reject
/// gets through; the value checks (a negative bucket count) still run on
/// every line.
pub fn parse_keyed(
    body: &[u8],
    format: Format,
    opts: ParseOptions,
    on_line: impl FnMut(Seen<'_, '_>) -> bool,
) -> Result<ParseSummary, ParseError> {
    let mut p = Parser::new(body, format, opts, 1);
    p.run(&mut Keyed(on_line));
    match p.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(p.summary),
    }
}

/// Where the parser's samples go: every one in full ([`parse_with`]), or
/// first as a key ([`parse_keyed`]).
trait Sink {
    /// Whether lines are offered by key first (and keys computed at all).
    const KEYED: bool;
    /// A line's key, value and timestamp; true if the caller knows the key.
    fn known(&mut self, key: SeriesKey, value: f64, timestamp_ms: Option<i64>) -> bool;
    fn sample(&mut self, key: SeriesKey, s: &ParsedSample<'_>);
}

struct Every<F>(F);

impl<F: FnMut(&ParsedSample<'_>)> Sink for Every<F> {
    const KEYED: bool = false;
    fn known(&mut self, _: SeriesKey, _: f64, _: Option<i64>) -> bool {
        false
    }
    #[inline(always)]
    fn sample(&mut self, _: SeriesKey, s: &ParsedSample<'_>) {
        (self.0)(s)
    }
}

struct Keyed<F>(F);

impl<F: FnMut(Seen<'_, '_>) -> bool> Sink for Keyed<F> {
    const KEYED: bool = true;
    #[inline(always)]
    fn known(&mut self, key: SeriesKey, value: f64, timestamp_ms: Option<i64>) -> bool {
        (self.0)(Seen::Key { key, value, timestamp_ms })
    }
    #[inline(always)]
    fn sample(&mut self, key: SeriesKey, s: &ParsedSample<'_>) {
        (self.0)(Seen::Parsed { key, sample: s });
    }
}

/// The [`SeriesKey`] of series text `series` read as a `typ` sample in
/// format `fmt` (the formats check label sets differently).
#[inline]
fn series_key(series: &[u8], fmt: Format, typ: MetricType) -> SeriesKey {
    let t = typ as u64 | (fmt as u64) << 8;
    SeriesKey(
        hash::hash_bytes(0x9E37_79B9_7F4A_7C15 ^ t, series),
        hash::hash_bytes(0xC2B2_AE3D_27D4_EB4F ^ (t << 32), series),
    )
}

/// Like [`parse`] but collects every error it can find (up to
/// [`MAX_CHECK_ERRORS`]), resyncing at the next line, for
/// `forewarn check metrics`.
pub fn check(body: &[u8], format: Format) -> (ParseSummary, Vec<ParseError>) {
    check_with(body, format, ParseOptions::default())
}

/// [`check`] with options.
pub fn check_with(body: &[u8], format: Format, opts: ParseOptions) -> (ParseSummary, Vec<ParseError>) {
    let mut p = Parser::new(body, format, opts, MAX_CHECK_ERRORS);
    p.run(&mut Every(|_: &ParsedSample<'_>| {}));
    (p.summary, p.errors)
}

/// Metric family metadata (HELP/TYPE/UNIT) in order of first appearance;
/// fails like [`parse`] does.
pub fn metadata(body: &[u8], format: Format) -> Result<Vec<MetricMetadata>, ParseError> {
    let mut p = Parser::new(body, format, ParseOptions::default(), 1);
    p.meta = Some(MetaCollector::default());
    p.run(&mut Every(|_: &ParsedSample<'_>| {}));
    match p.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(p.meta.map(|m| m.list).unwrap_or_default()),
    }
}

#[derive(Default)]
struct MetaCollector {
    list: Vec<MetricMetadata>,
    index: HashMap<String, usize>,
}

impl MetaCollector {
    fn get(&mut self, name: &str) -> &mut MetricMetadata {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.list.push(MetricMetadata { name: name.to_owned(), ..MetricMetadata::default() });
                self.index.insert(name.to_owned(), self.list.len() - 1);
                self.list.len() - 1
            }
        };
        &mut self.list[i]
    }
}

#[derive(Default)]
struct FamInfo {
    typ: Option<MetricType>,
    help: bool,
    sampled: bool,
}

/// Family bookkeeping for the Prometheus format (and lenient OpenMetrics):
/// attributes samples to families by name and suffix so `metric_families` can
/// be counted and type-specific checks applied. Families may be interleaved
/// here, hence the map; the current family is cached so the map is only
/// consulted when the family changes.
struct Families {
    map: HashMap<Box<str>, FamInfo, IdBuild>,
    cur: String,
    cur_type: MetricType,
    cur_sampled: bool,
    has_cur: bool,
    fmt: Format,
    /// prometheus/common's rules: one HELP and one TYPE per name, TYPE before
    /// samples.
    strict: bool,
}

impl Families {
    fn new(fmt: Format) -> Families {
        Families {
            map: HashMap::default(),
            cur: String::new(),
            cur_type: MetricType::Untyped,
            cur_sampled: false,
            has_cur: false,
            fmt,
            strict: fmt == Format::Prometheus,
        }
    }

    fn untyped(&self) -> MetricType {
        match self.fmt {
            Format::Prometheus => MetricType::Untyped,
            Format::OpenMetrics => MetricType::Unknown,
        }
    }

    /// The entry for `name`, created if needed (allocating the key only then).
    fn entry(&mut self, name: &str) -> Option<&mut FamInfo> {
        if !self.map.contains_key(name) {
            self.map.insert(name.into(), FamInfo::default());
        }
        self.map.get_mut(name)
    }

    fn set_cur(&mut self, name: &str, t: MetricType, sampled: bool) {
        self.cur.clear();
        self.cur.push_str(name);
        self.cur_type = t;
        self.cur_sampled = sampled;
        self.has_cur = true;
    }

    fn meta(&mut self, name: &str, typ: Option<MetricType>, help: bool) -> Result<(), String> {
        let strict = self.strict;
        let untyped = self.untyped();
        let Some(info) = self.entry(name) else {
            return Ok(());
        };
        if let Some(t) = typ {
            if strict && info.typ.is_some() {
                return Err(format!("second TYPE line for metric name {name:?}"));
            }
            if strict && info.sampled {
                return Err(format!("TYPE line for metric name {name:?} after its samples"));
            }
            info.typ = Some(t);
        }
        if help {
            if strict && info.help {
                return Err(format!("second HELP line for metric name {name:?}"));
            }
            info.help = true;
        }
        let (t, sampled) = (info.typ.unwrap_or(untyped), info.sampled);
        self.set_cur(name, t, sampled);
        Ok(())
    }

    /// The family type and suffix of sample `name`.
    fn sample(&mut self, name: &str) -> (MetricType, Suffix) {
        if self.has_cur {
            if let Some(suf) = split_suffix(name, &self.cur, self.cur_type, self.fmt) {
                if !self.cur_sampled {
                    if let Some(i) = self.map.get_mut(self.cur.as_str()) {
                        i.sampled = true;
                    }
                    self.cur_sampled = true;
                }
                return (self.cur_type, suf);
            }
        }
        for suf in Suffix::NON_EMPTY {
            let Some(base) = name.strip_suffix(suf.text()) else {
                continue;
            };
            let Some(info) = self.map.get_mut(base) else {
                continue;
            };
            if let Some(t) = info.typ {
                if allowed_suffixes(t, self.fmt).contains(&suf) {
                    info.sampled = true;
                    self.set_cur(base, t, true);
                    return (t, suf);
                }
            }
        }
        let untyped = self.untyped();
        let t = match self.entry(name) {
            Some(info) => {
                info.sampled = true;
                info.typ.unwrap_or(untyped)
            }
            None => untyped,
        };
        self.set_cur(name, t, true);
        (t, Suffix::None)
    }
}

struct Parser<'b> {
    body: &'b [u8],
    fmt: Format,
    labels: Vec<RawLabel<'b>>,
    ex_labels: Vec<RawLabel<'b>>,
    series: HashSet<u64, IdBuild>,
    count_series: bool,
    summary: ParseSummary,
    fams: Families,
    om: Option<om::Validator>,
    eof_line: Option<usize>,
    meta: Option<MetaCollector>,
    errors: Vec<ParseError>,
    max_errors: usize,
}

fn line_err(line: usize, e: LineError) -> ParseError {
    ParseError { line, col: e.pos + 1, message: e.msg.into_owned() }
}

impl<'b> Parser<'b> {
    fn new(body: &'b [u8], fmt: Format, opts: ParseOptions, max_errors: usize) -> Parser<'b> {
        let strict_om = fmt == Format::OpenMetrics && opts.strict_openmetrics;
        Parser {
            body,
            fmt,
            labels: Vec::with_capacity(16),
            ex_labels: Vec::new(),
            // Roughly one series per 80 bytes of body; capped so a huge body
            // doesn't reserve more than a few MB up front.
            series: if opts.count_series {
                HashSet::with_capacity_and_hasher((body.len() / 80).min(1 << 18), IdBuild::default())
            } else {
                HashSet::default()
            },
            count_series: opts.count_series,
            summary: ParseSummary::default(),
            fams: Families::new(fmt),
            om: strict_om.then(om::Validator::default),
            eof_line: None,
            meta: None,
            errors: Vec::new(),
            max_errors,
        }
    }

    fn full(&self) -> bool {
        self.errors.len() >= self.max_errors
    }

    /// Moves the validator's findings into `errors`; says whether there were any.
    fn drain_om(&mut self) -> bool {
        let Some(v) = self.om.as_mut() else {
            return false;
        };
        if v.errors.is_empty() {
            return false;
        }
        for d in v.errors.drain(..) {
            self.errors.push(ParseError { line: d.line, col: 1, message: d.msg });
        }
        true
    }

    fn run<S: Sink>(&mut self, on_sample: &mut S) {
        let body = self.body;
        // One UTF-8 check over the whole body is much cheaper than one per
        // line; only a body that fails it is checked line by line (so the
        // error still points at the bad byte).
        let text = std::str::from_utf8(body).ok();
        let mut pos = 0;
        let mut ln = 0;
        while pos < body.len() && !self.full() {
            ln += 1;
            let rest = &body[pos..];
            let (end, next) = match find_newline(rest) {
                Some(i) => (pos + i, pos + i + 1),
                None => (body.len(), body.len()),
            };
            let line = &body[pos..end];
            // A '\n' is always a char boundary, so this slice cannot fail.
            let line_text = text.and_then(|t| t.get(pos..end));
            if self.eof_line.is_some() {
                self.errors.push(ParseError { line: ln, col: 1, message: "unexpected data after '# EOF'".into() });
                break;
            }
            if let Err(e) = self.line(ln, line, line_text, on_sample) {
                self.errors.push(line_err(ln, e));
            }
            pos = next;
        }
        if self.fmt == Format::OpenMetrics && self.eof_line.is_none() && !self.full() {
            if let Some(v) = self.om.as_mut() {
                v.finish();
                self.drain_om();
            }
            self.errors.push(ParseError {
                line: ln + 1,
                col: 1,
                message: "missing '# EOF' at the end (required in OpenMetrics)".into(),
            });
        }
        self.errors.truncate(self.max_errors);
        self.summary.series = self.series.len();
        self.summary.metric_families = match &self.om {
            Some(v) => v.families,
            None => self.fams.map.len(),
        };
    }

    fn line<S: Sink>(
        &mut self,
        ln: usize,
        mut line: &'b [u8],
        mut text: Option<&'b str>,
        on_sample: &mut S,
    ) -> Result<(), LineError> {
        match self.fmt {
            Format::Prometheus => {
                if let [rest @ .., b'\r'] = line {
                    line = rest;
                    text = text.and_then(|t| t.get(..rest.len()));
                }
                let mut cur = Cursor::with_text(line, text);
                cur.skip_blanks();
                match cur.peek() {
                    None => Ok(()),
                    Some(b'#') => match lex::prom_comment(&mut cur)? {
                        Some(m) => self.meta(m, ln),
                        None => Ok(()),
                    },
                    Some(_) => self.sample(cur, ln, on_sample),
                }
            }
            Format::OpenMetrics => match line.first() {
                None => Err(LineError::new(0, "empty line (not allowed in OpenMetrics)")),
                Some(b'#') => {
                    let m = lex::om_comment(&mut Cursor::with_text(line, text))?;
                    self.meta(m, ln)
                }
                Some(_) => self.sample(Cursor::with_text(line, text), ln, on_sample),
            },
        }
    }

    fn meta(&mut self, m: Meta<'b>, ln: usize) -> Result<(), LineError> {
        let fam_err = |msg: String| LineError::new(0, msg);
        let (kind, name) = match &m {
            Meta::Eof => {
                self.eof_line = Some(ln);
                if let Some(v) = self.om.as_mut() {
                    v.finish();
                    self.drain_om();
                }
                return Ok(());
            }
            Meta::Type(n, _) => ("TYPE", n),
            Meta::Help(n, _) => ("HELP", n),
            Meta::Unit(n, _) => ("UNIT", n),
        };
        let typ = match &m {
            Meta::Type(_, t) => Some(*t),
            _ => None,
        };
        let unit = match &m {
            Meta::Unit(_, u) => Some(*u),
            _ => None,
        };
        if let Some(c) = self.meta.as_mut() {
            let md = c.get(name);
            match &m {
                Meta::Type(_, t) => md.metric_type = Some(*t),
                Meta::Help(_, h) => md.help = Some(h.to_string()),
                Meta::Unit(_, u) => md.unit = Some((*u).to_owned()),
                Meta::Eof => {}
            }
        }
        match self.om.as_mut() {
            Some(v) => {
                v.metadata(kind, name, typ, unit, ln);
                self.drain_om();
                Ok(())
            }
            None => self.fams.meta(name, typ, kind == "HELP").map_err(fam_err),
        }
    }

    fn sample<S: Sink>(&mut self, mut cur: Cursor<'b>, ln: usize, on_sample: &mut S) -> Result<(), LineError> {
        let start = cur.pos;
        if S::KEYED && self.om.is_none() && !self.count_series && self.meta.is_none() {
            let line = cur.s;
            let mut fast = cur.clone();
            if let Some((name, end, value, ts, _)) = lex::sample_unlabelled(&mut fast, self.fmt, &mut self.ex_labels) {
                let (typ, suf) = self.fams.sample(name);
                if on_sample.known(series_key(&line[start..end], self.fmt, typ), value, ts_ms(ts)) {
                    if self.fmt == Format::Prometheus {
                        prom_value_checks(typ, suf, name, value)?;
                    }
                    self.summary.samples += 1;
                    return Ok(());
                }
            }
        }
        let mut labels = std::mem::take(&mut self.labels);
        labels.clear();
        let raw = match lex::sample(&mut cur, self.fmt, &mut labels, &mut self.ex_labels) {
            Ok(r) => r,
            Err(e) => {
                self.labels = labels;
                return Err(e);
            }
        };
        let result = if raw.name_escaped || raw.labels_need_care {
            self.sample_slow(&raw, &labels, &cur.s[start..raw.series_end], start, ln, on_sample)
        } else {
            let s = ParsedSample { name: raw.name, labels, value: raw.value, timestamp_ms: ts_ms(raw.ts) };
            let r = self.accept(&s, &cur.s[start..raw.series_end], raw.ts, raw.exemplar, ln, on_sample);
            labels = s.labels;
            r
        };
        self.labels = labels;
        result
    }

    /// Rare path: quoted names with escapes, or very many labels. Decodes
    /// names into owned strings and checks duplicates with a hash set.
    fn sample_slow<S: Sink>(
        &mut self,
        raw: &RawSample<'b>,
        labels: &[RawLabel<'b>],
        series: &[u8],
        start: usize,
        ln: usize,
        on_sample: &mut S,
    ) -> Result<(), LineError> {
        let decode = |s: &'b str| -> Cow<'b, str> {
            if s.contains('\\') {
                Cow::Owned(lex::unescape(s, true))
            } else {
                Cow::Borrowed(s)
            }
        };
        let name = if raw.name_escaped { decode(raw.name) } else { Cow::Borrowed(raw.name) };
        let names: Vec<Cow<'b, str>> = labels.iter().map(|(k, _)| decode(k)).collect();
        let mut seen = HashSet::with_capacity(names.len());
        for n in &names {
            if n == "__name__" {
                return Err(LineError::new(start, "label name \"__name__\" is reserved"));
            }
            if !seen.insert(n.as_ref()) {
                return Err(LineError::new(start, format!("duplicate label name {n:?}")));
            }
        }
        let s = ParsedSample {
            name: &name,
            labels: names.iter().zip(labels).map(|(n, (_, v))| (n.as_ref(), v.clone())).collect(),
            value: raw.value,
            timestamp_ms: ts_ms(raw.ts),
        };
        self.accept(&s, series, raw.ts, raw.exemplar, ln, on_sample)
    }

    /// Family/semantic checks, then counting and the callback.
    fn accept<S: Sink>(
        &mut self,
        s: &ParsedSample<'_>,
        series: &[u8],
        ts: Ts,
        exemplar: bool,
        ln: usize,
        on_sample: &mut S,
    ) -> Result<(), LineError> {
        // The strict OpenMetrics validator keeps family types itself.
        let typ = if let Some(v) = self.om.as_mut() {
            let set_hash = label_set_hash(&s.labels);
            let secs = match ts {
                Ts::Seconds(t) => Some(t),
                _ => None,
            };
            v.sample(s, set_hash, secs, exemplar, ln);
            if self.drain_om() {
                return Ok(());
            }
            MetricType::Unknown
        } else {
            let (typ, suf) = self.fams.sample(s.name);
            if self.fmt == Format::Prometheus {
                prom_checks(typ, suf, s)?;
            }
            typ
        };
        if self.count_series {
            self.series.insert(series_hash(s.name, label_set_hash(&s.labels)));
        }
        self.summary.samples += 1;
        let key = if S::KEYED { series_key(series, self.fmt, typ) } else { SeriesKey(0, 0) };
        on_sample.sample(key, s);
        Ok(())
    }
}

/// Index of the first `\n`, eight bytes at a time: splitting lines is a
/// pass over the whole body, and `iter().position` goes byte by byte.
fn find_newline(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w) ^ NL;
        // Classic "has a zero byte": exact for the lowest zero byte.
        let z = x.wrapping_sub(LO) & !x & HI;
        if z != 0 {
            return Some(at + (z.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&c| c == b'\n').map(|i| at + i)
}

fn ts_ms(ts: Ts) -> Option<i64> {
    match ts {
        Ts::None => None,
        Ts::Millis(ms) => Some(ms),
        // `as` saturates, which is the sanest reading of absurd timestamps.
        Ts::Seconds(s) => Some((s * 1000.0).round() as i64),
    }
}

/// The few type rules prometheus/common enforces on the Prometheus format.
fn prom_checks(typ: MetricType, suf: Suffix, s: &ParsedSample<'_>) -> Result<(), LineError> {
    let bad_float = |l: &str| s.label(l).is_some_and(|v| lex::parse_number(v).is_none());
    let fail = |msg: String| Err(LineError::new(0, msg));
    match (typ, suf) {
        (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) if bad_float("le") => {
            fail(format!("expected a number as value of the 'le' label of {:?}", s.name))
        }
        (MetricType::Summary, Suffix::None) if bad_float("quantile") => {
            fail(format!("expected a number as value of the 'quantile' label of {:?}", s.name))
        }
        _ => prom_value_checks(typ, suf, s.name, s.value),
    }
}

/// The part of [`prom_checks`] that looks at the value only (run on every
/// line, also on those a scraper knows by key).
fn prom_value_checks(typ: MetricType, suf: Suffix, name: &str, value: f64) -> Result<(), LineError> {
    let fail = |msg: String| Err(LineError::new(0, msg));
    match (typ, suf) {
        (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) if value < 0.0 => {
            fail(format!("negative bucket population in histogram sample {name:?}"))
        }
        (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Count | Suffix::Gcount) if value < 0.0 => {
            fail(format!("negative count in histogram sample {name:?}"))
        }
        _ => Ok(()),
    }
}
