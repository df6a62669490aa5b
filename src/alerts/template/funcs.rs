//! Template functions: Go's builtins and Prometheus's alert-template
//! functions, with Go's argument checks and Prometheus's exact output.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use regex::Regex;

use super::exec::{truth, zero_for, State, V};
use super::gofmt::{self, type_name};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Func {
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Print,
    Printf,
    Println,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Html,
    Js,
    Urlquery,
    Query,
    First,
    Label,
    Value,
    StrValue,
    Args,
    ReReplaceAll,
    SafeHtml,
    Match,
    Title,
    ToUpper,
    ToLower,
    GraphLink,
    TableLink,
    SortByLabel,
    Humanize,
    Humanize1024,
    HumanizeDuration,
    HumanizePercentage,
    HumanizeTimestamp,
    ToTime,
    ToDuration,
    ParseDuration,
    Now,
    PathPrefix,
    ExternalUrl,
    StripPort,
    StripDomain,
    Tmpl,
}

#[derive(Clone, Copy)]
enum Arity {
    Exact(usize),
    AtLeast(usize),
}

use Arity::{AtLeast, Exact};

const TABLE: &[(&str, Func, Arity)] = &[
    ("and", Func::And, AtLeast(1)),
    ("or", Func::Or, AtLeast(1)),
    ("not", Func::Not, Exact(1)),
    ("len", Func::Len, Exact(1)),
    ("index", Func::Index, AtLeast(1)),
    ("slice", Func::Slice, AtLeast(1)),
    ("print", Func::Print, AtLeast(0)),
    ("printf", Func::Printf, AtLeast(1)),
    ("println", Func::Println, AtLeast(0)),
    ("eq", Func::Eq, AtLeast(1)),
    ("ne", Func::Ne, Exact(2)),
    ("lt", Func::Lt, Exact(2)),
    ("le", Func::Le, Exact(2)),
    ("gt", Func::Gt, Exact(2)),
    ("ge", Func::Ge, Exact(2)),
    ("html", Func::Html, AtLeast(0)),
    ("js", Func::Js, AtLeast(0)),
    ("urlquery", Func::Urlquery, AtLeast(0)),
    ("query", Func::Query, Exact(1)),
    ("first", Func::First, Exact(1)),
    ("label", Func::Label, Exact(2)),
    ("value", Func::Value, Exact(1)),
    ("strvalue", Func::StrValue, Exact(1)),
    ("args", Func::Args, AtLeast(0)),
    ("reReplaceAll", Func::ReReplaceAll, Exact(3)),
    ("safeHtml", Func::SafeHtml, Exact(1)),
    ("match", Func::Match, Exact(2)),
    ("title", Func::Title, Exact(1)),
    ("toUpper", Func::ToUpper, Exact(1)),
    ("toLower", Func::ToLower, Exact(1)),
    ("graphLink", Func::GraphLink, Exact(1)),
    ("tableLink", Func::TableLink, Exact(1)),
    ("sortByLabel", Func::SortByLabel, Exact(2)),
    ("humanize", Func::Humanize, Exact(1)),
    ("humanize1024", Func::Humanize1024, Exact(1)),
    ("humanizeDuration", Func::HumanizeDuration, Exact(1)),
    ("humanizePercentage", Func::HumanizePercentage, Exact(1)),
    ("humanizeTimestamp", Func::HumanizeTimestamp, Exact(1)),
    ("toTime", Func::ToTime, Exact(1)),
    ("toDuration", Func::ToDuration, Exact(1)),
    ("parseDuration", Func::ParseDuration, Exact(1)),
    ("now", Func::Now, Exact(0)),
    ("pathPrefix", Func::PathPrefix, Exact(0)),
    ("externalURL", Func::ExternalUrl, Exact(0)),
    ("stripPort", Func::StripPort, Exact(1)),
    ("stripDomain", Func::StripDomain, Exact(1)),
    ("tmpl", Func::Tmpl, Exact(2)),
];

impl Func {
    pub fn lookup(name: &str) -> Option<Func> {
        TABLE.iter().find(|(n, _, _)| *n == name).map(|(_, f, _)| *f)
    }

    fn entry(self) -> &'static (&'static str, Func, Arity) {
        TABLE.iter().find(|(_, f, _)| *f == self).unwrap_or(&TABLE[0])
    }

    pub fn name(self) -> &'static str {
        self.entry().0
    }
}

type FResult = Result<V, String>;

fn want_str(v: &V) -> Result<&str, String> {
    match v {
        V::Str(s) | V::Html(s) => Ok(s),
        other => Err(format!("wrong type for value; expected string; got {}", type_name(other))),
    }
}

/// Prometheus's `convertToFloat`: numbers, numeric strings and durations.
fn to_float(f: Func, v: &V) -> Result<f64, String> {
    match v {
        V::Float(x) => Ok(*x),
        V::Int(n) => Ok(*n as f64),
        V::Duration(ns) => Ok(*ns as f64 / 1e9),
        V::Str(s) | V::Html(s) => parse_go_float(s).ok_or_else(|| {
            format!("error calling {}: strconv.ParseFloat: parsing {}: invalid syntax", f.name(), gofmt::quote(s))
        }),
        other => Err(format!("error calling {}: can't convert {} to float", f.name(), type_name(other))),
    }
}

fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s).to_ascii_lowercase();
    if t.is_empty()
        || t.contains('_')
        || !(t.starts_with(|c: char| c.is_ascii_digit() || c == '.') || t == "inf" || t == "infinity" || t == "nan")
    {
        return None;
    }
    s.parse().ok()
}

/// A query-result sample: a map with `Labels` (and `Value`).
fn sample(f: Func, v: &V) -> Result<&BTreeMap<String, V>, String> {
    match v {
        V::Map(m) => Ok(m),
        V::Nil => Err(format!("error calling {}: sample is nil", f.name())),
        other => Err(format!("wrong type for value; expected *template.sample; got {}", type_name(other))),
    }
}

fn sample_label(s: &BTreeMap<String, V>, name: &str) -> String {
    match s.get("Labels") {
        Some(V::Map(l)) => match l.get(name) {
            Some(V::Str(v)) => v.clone(),
            Some(other) => gofmt::fmt_v(other),
            None => String::new(),
        },
        _ => String::new(),
    }
}

fn query_result(v: &V) -> Result<Vec<V>, String> {
    match v {
        V::List(l) => Ok(l.clone()),
        V::Nil => Ok(Vec::new()),
        other => Err(format!("wrong type for value; expected template.queryResult; got {}", type_name(other))),
    }
}

pub(super) fn call(st: &mut State<'_>, f: Func, args: Vec<V>, pos: usize) -> Result<V, (usize, String)> {
    match f.entry().2 {
        Exact(n) if args.len() != n => {
            return Err((pos, format!("wrong number of args for {}: want {n} got {}", f.name(), args.len())));
        }
        AtLeast(n) if args.len() < n => {
            return Err((pos, format!("wrong number of args for {}: want at least {n} got {}", f.name(), args.len())));
        }
        _ => {}
    }
    let r = match f {
        Func::Tmpl => {
            let name = want_str(&args[0]).map_err(|e| (pos, e))?.to_string();
            let out = st.capture_template(&name, args[1].clone(), pos)?;
            return Ok(V::Html(out));
        }
        Func::Query => query(st, &args[0]),
        Func::Now => Ok(V::Float(st.opts.now.unwrap_or_else(wall_clock))),
        Func::ExternalUrl => Ok(V::Str(st.external_url.clone())),
        Func::PathPrefix => Ok(V::Str(url_path(&st.external_url))),
        _ => pure(f, args),
    };
    r.map_err(|e| (pos, e))
}

fn wall_clock() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn query(st: &State<'_>, q: &V) -> FResult {
    let q = want_str(q)?;
    let Some(hook) = st.opts.query else {
        return Err("error calling query: query is not supported in templates yet".into());
    };
    let rows = hook(q).map_err(|e| format!("error calling query: {e}"))?;
    Ok(V::List(
        rows.iter()
            .map(|(l, v)| {
                let labels = l.iter().map(|(k, v)| (k.to_string(), V::Str(v.to_string()))).collect();
                V::Map(BTreeMap::from([("Labels".to_string(), V::Map(labels)), ("Value".to_string(), V::Float(*v))]))
            })
            .collect(),
    ))
}

/// The path of a URL (what Go's `url.URL.Path` holds), "" when it has none.
fn url_path(u: &str) -> String {
    let rest = match u.find("://") {
        Some(i) => &u[i + 3..],
        None => u,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    match rest.find('/') {
        Some(i) if u.contains("://") => rest[i..].to_string(),
        _ if !u.contains("://") => rest.to_string(),
        _ => String::new(),
    }
}

fn pure(f: Func, args: Vec<V>) -> FResult {
    let name = f.name();
    let call_err = |m: String| format!("error calling {name}: {m}");
    match f {
        Func::Not => Ok(V::Bool(!truth(&args[0]))),
        Func::Len => match &args[0] {
            V::Str(s) | V::Html(s) => Ok(V::Int(s.len() as i64)),
            V::List(l) => Ok(V::Int(l.len() as i64)),
            V::Map(m) => Ok(V::Int(m.len() as i64)),
            V::Nil => Err(call_err("len of untyped nil".into())),
            other => Err(call_err(format!("len of type {}", type_name(other)))),
        },
        Func::Index => index(&args).map_err(call_err),
        Func::Slice => slice(&args).map_err(call_err),
        Func::Print => Ok(V::Str(gofmt::sprint(&args))),
        Func::Println => Ok(V::Str(gofmt::sprintln(&args))),
        Func::Printf => Ok(V::Str(gofmt::sprintf(want_str(&args[0])?, &args[1..]))),
        Func::Eq => {
            if args.len() < 2 {
                return Err(call_err("missing argument for comparison".into()));
            }
            for b in &args[1..] {
                if eq(&args[0], b).map_err(call_err)? {
                    return Ok(V::Bool(true));
                }
            }
            Ok(V::Bool(false))
        }
        Func::Ne => Ok(V::Bool(!eq(&args[0], &args[1]).map_err(call_err)?)),
        Func::Lt => Ok(V::Bool(cmp(&args[0], &args[1]).map_err(call_err)? == Ordering::Less)),
        Func::Le => Ok(V::Bool(cmp(&args[0], &args[1]).map_err(call_err)? != Ordering::Greater)),
        Func::Gt => Ok(V::Bool(cmp(&args[0], &args[1]).map_err(call_err)? == Ordering::Greater)),
        Func::Ge => Ok(V::Bool(cmp(&args[0], &args[1]).map_err(call_err)? != Ordering::Less)),
        // Escaped already: an HTML body prints it as it is.
        Func::Html => Ok(V::Html(html_escape(&args_string(&args)))),
        Func::Js => Ok(V::Str(js_escape(&args_string(&args)))),
        Func::Urlquery => Ok(V::Str(query_escape(&args_string(&args)))),
        Func::First => match query_result(&args[0])?.into_iter().next() {
            Some(s) => Ok(s),
            None => Err(call_err("first() called on vector with no elements".into())),
        },
        Func::Label => {
            let l = want_str(&args[0])?;
            Ok(V::Str(sample_label(sample(f, &args[1])?, l)))
        }
        Func::Value => match sample(f, &args[0])?.get("Value") {
            Some(V::Int(n)) => Ok(V::Float(*n as f64)),
            Some(v @ V::Float(_)) => Ok(v.clone()),
            Some(V::Str(s)) => Ok(V::Float(parse_go_float(s).unwrap_or(f64::NAN))),
            _ => Ok(V::Float(0.0)),
        },
        Func::StrValue => Ok(V::Str(sample_label(sample(f, &args[0])?, "__value__"))),
        Func::Args => Ok(V::Map(args.into_iter().enumerate().map(|(i, a)| (format!("arg{i}"), a)).collect())),
        Func::ReReplaceAll => {
            let re = compile(want_str(&args[0])?).map_err(call_err)?;
            let repl = want_str(&args[1])?;
            Ok(V::Str(re.replace_all(want_str(&args[2])?, repl).into_owned()))
        }
        Func::SafeHtml => Ok(V::Html(want_str(&args[0])?.to_string())),
        Func::Match => {
            let re = compile(want_str(&args[0])?).map_err(call_err)?;
            Ok(V::Bool(re.is_match(want_str(&args[1])?)))
        }
        Func::Title => Ok(V::Str(title(want_str(&args[0])?))),
        Func::ToUpper => Ok(V::Str(want_str(&args[0])?.to_uppercase())),
        Func::ToLower => Ok(V::Str(want_str(&args[0])?.to_lowercase())),
        Func::GraphLink => Ok(V::Str(format!("/graph?g0.expr={}&g0.tab=0", query_escape(want_str(&args[0])?)))),
        Func::TableLink => Ok(V::Str(format!("/graph?g0.expr={}&g0.tab=1", query_escape(want_str(&args[0])?)))),
        Func::SortByLabel => {
            let l = want_str(&args[0])?.to_string();
            let mut rows = query_result(&args[1])?;
            rows.sort_by_cached_key(|r| match r {
                V::Map(m) => sample_label(m, &l),
                _ => String::new(),
            });
            Ok(V::List(rows))
        }
        Func::Humanize => Ok(V::Str(humanize(to_float(f, &args[0])?))),
        Func::Humanize1024 => Ok(V::Str(humanize1024(to_float(f, &args[0])?))),
        Func::HumanizeDuration => Ok(V::Str(humanize_duration(to_float(f, &args[0])?))),
        Func::HumanizePercentage => Ok(V::Str(format!("{}%", g4(to_float(f, &args[0])? * 100.0)))),
        Func::HumanizeTimestamp => {
            if let V::Time { secs, nanos } = args[0] {
                return Ok(V::Str(gofmt::time_string(secs, nanos)));
            }
            let v = to_float(f, &args[0])?;
            if !v.is_finite() {
                return Ok(V::Str(g4(v)));
            }
            let (secs, nanos) = float_to_time(v).map_err(call_err)?;
            Ok(V::Str(gofmt::time_string(secs, nanos)))
        }
        Func::ToTime => {
            let v = to_float(f, &args[0])?;
            let (secs, nanos) = float_to_time(v).map_err(call_err)?;
            Ok(V::Time { secs, nanos })
        }
        Func::ToDuration => {
            let v = to_float(f, &args[0])?;
            if !v.is_finite() {
                return Err(call_err("value is NaN or Inf".into()));
            }
            let ns = v * 1e9;
            if !(-I64_LIMIT..I64_LIMIT).contains(&ns) {
                return Err(call_err(format!(
                    "{} cannot be represented as a duration since it overflows int64",
                    gofmt::fmt_v(&V::Float(v))
                )));
            }
            Ok(V::Duration(ns as i64))
        }
        Func::ParseDuration => {
            let s = want_str(&args[0])?;
            parse_prom_duration(s).map(V::Float).map_err(call_err)
        }
        Func::StripPort => {
            let s = want_str(&args[0])?;
            Ok(V::Str(split_host_port(s).map_or_else(|| s.to_string(), |(h, _)| h.to_string())))
        }
        Func::StripDomain => Ok(V::Str(strip_domain(want_str(&args[0])?))),
        // Handled by `call`, which needs the render state.
        Func::And | Func::Or | Func::Query | Func::Now | Func::PathPrefix | Func::ExternalUrl | Func::Tmpl => {
            Err(format!("{name} cannot be called here"))
        }
    }
}

fn compile(p: &str) -> Result<Regex, String> {
    Regex::new(p).map_err(|e| format!("error parsing regexp: {}", e.to_string().lines().last().unwrap_or("invalid")))
}

/// Go's `evalArgs` for html/js/urlquery: a lone string as is, else `Sprint`.
fn args_string(args: &[V]) -> String {
    match args {
        [V::Str(s)] | [V::Html(s)] => s.clone(),
        _ => gofmt::sprint(args),
    }
}

#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
}

fn basic_kind(v: &V) -> Result<Kind, String> {
    match v {
        V::Bool(_) => Ok(Kind::Bool),
        V::Int(_) | V::Duration(_) => Ok(Kind::Int),
        V::Float(_) => Ok(Kind::Float),
        V::Str(_) | V::Html(_) => Ok(Kind::Str),
        _ => Err("invalid type for comparison".into()),
    }
}

/// Go's `eq` for two values: same basic kind required; nil equals only nil.
fn eq(a: &V, b: &V) -> Result<bool, String> {
    if matches!(a, V::Nil) || matches!(b, V::Nil) {
        return Ok(matches!(a, V::Nil) && matches!(b, V::Nil));
    }
    if let (V::Time { .. }, V::Time { .. }) = (a, b) {
        return Ok(a == b);
    }
    let (ka, kb) = match (basic_kind(a), basic_kind(b)) {
        (Ok(ka), Ok(kb)) => (ka, kb),
        _ => return Err("non-comparable types".into()),
    };
    if ka != kb {
        return Err("incompatible types for comparison".into());
    }
    Ok(match (a, b) {
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Float(x), V::Float(y)) => x == y,
        (V::Int(x) | V::Duration(x), V::Int(y) | V::Duration(y)) => x == y,
        (V::Str(x) | V::Html(x), V::Str(y) | V::Html(y)) => x == y,
        _ => false,
    })
}

/// Go's `lt` family: ordered basic kinds of the same kind only.
fn cmp(a: &V, b: &V) -> Result<Ordering, String> {
    let ka = basic_kind(a)?;
    let kb = basic_kind(b)?;
    if ka != kb {
        return Err("incompatible types for comparison".into());
    }
    match (a, b) {
        (V::Bool(_), _) => Err("invalid type for comparison".into()),
        (V::Float(x), V::Float(y)) => Ok(x.partial_cmp(y).unwrap_or(Ordering::Greater)),
        (V::Int(x) | V::Duration(x), V::Int(y) | V::Duration(y)) => Ok(x.cmp(y)),
        (V::Str(x) | V::Html(x), V::Str(y) | V::Html(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
        _ => Err("invalid type for comparison".into()),
    }
}

fn index(args: &[V]) -> FResult {
    let mut cur = args[0].clone();
    for ix in &args[1..] {
        cur = match cur {
            V::List(l) => {
                let i = match ix {
                    V::Int(i) => *i,
                    V::Nil => return Err("cannot index slice/array with nil".into()),
                    other => return Err(format!("cannot index slice/array with type {}", type_name(other))),
                };
                usize::try_from(i)
                    .ok()
                    .and_then(|i| l.get(i).cloned())
                    .ok_or_else(|| format!("index out of range: {i}"))?
            }
            V::Str(s) | V::Html(s) => {
                let i = match ix {
                    V::Int(i) => *i,
                    other => return Err(format!("cannot index slice/array with type {}", type_name(other))),
                };
                let b = usize::try_from(i).ok().and_then(|i| s.as_bytes().get(i).copied());
                V::Int(i64::from(b.ok_or_else(|| format!("index out of range: {i}"))?))
            }
            V::Map(m) => match ix {
                V::Str(k) | V::Html(k) => m.get(k).cloned().unwrap_or_else(|| zero_for(&m)),
                other => return Err(format!("value has type {}; should be string", type_name(other))),
            },
            V::Nil => return Err("index of untyped nil".into()),
            other => return Err(format!("can't index item of type {}", type_name(&other))),
        };
    }
    Ok(cur)
}

fn slice(args: &[V]) -> FResult {
    let mut idx = Vec::new();
    for a in &args[1..] {
        match a {
            V::Int(i) if *i >= 0 => idx.push(*i as usize),
            V::Int(i) => return Err(format!("index out of range: {i}")),
            other => return Err(format!("cannot index slice/array with type {}", type_name(other))),
        }
    }
    let check = |len: usize, idx: &[usize]| -> Result<(), String> {
        for (k, i) in idx.iter().enumerate() {
            if *i > len {
                return Err(format!("index out of range: {i}"));
            }
            if k > 0 && idx[k - 1] > *i {
                return Err(format!("invalid slice index: {} > {i}", idx[k - 1]));
            }
        }
        Ok(())
    };
    match &args[0] {
        V::Str(s) | V::Html(s) => {
            if idx.len() > 2 {
                return Err("cannot 3-index slice a string".into());
            }
            check(s.len(), &idx)?;
            let a = idx.first().copied().unwrap_or(0);
            let b = idx.get(1).copied().unwrap_or(s.len());
            s.get(a..b).map(|t| V::Str(t.to_string())).ok_or_else(|| "slice splits a UTF-8 character".into())
        }
        V::List(l) => {
            if idx.len() > 3 {
                return Err(format!("too many slice indexes: {}", idx.len()));
            }
            check(l.len(), &idx)?;
            let a = idx.first().copied().unwrap_or(0);
            let b = idx.get(1).copied().unwrap_or(l.len());
            Ok(V::List(l[a..b].to_vec()))
        }
        V::Nil => Err("slice of untyped nil".into()),
        other => Err(format!("can't slice item of type {}", type_name(other))),
    }
}

/// `fmt.Sprintf("%.4g", v)`.
fn g4(v: f64) -> String {
    gofmt::sprintf("%.4g", &[V::Float(v)])
}

/// 2^63 as f64: the bound of a nanosecond count in an i64.
const I64_LIMIT: f64 = 9.223_372_036_854_776e18;

const BIG: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

/// Scales `v` (|v| < 1) up by thousands, returning the value and SI prefix.
fn scale_small(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in SMALL {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

pub(crate) fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in BIG {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    let (v, prefix) = scale_small(v);
    format!("{}{prefix}", g4(v))
}

pub(super) fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

pub(super) fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        // Go's int64(v) truncates; `as` saturates instead of wrapping, fine for durations.
        let d = v as i64;
        let (seconds, minutes, hours, days) = (d % 60, d / 60 % 60, d / 3600 % 24, d / 86_400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let (v, prefix) = scale_small(v);
    format!("{}{prefix}s", g4(v))
}

/// Prometheus's float seconds to a UTC time, truncated to milliseconds
/// (`model.TimeFromUnixNano(int64(v * 1e9))`).
fn float_to_time(v: f64) -> Result<(i64, u32), String> {
    if !v.is_finite() {
        return Err("value is NaN or Inf".into());
    }
    let ns = v * 1e9;
    if !(-I64_LIMIT..I64_LIMIT).contains(&ns) {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            gofmt::fmt_v(&V::Float(v))
        ));
    }
    let ms = (ns as i64) / 1_000_000;
    Ok((ms.div_euclid(1000), (ms.rem_euclid(1000) * 1_000_000) as u32))
}

/// Prometheus's `model.ParseDuration`, in seconds.
fn parse_prom_duration(s: &str) -> Result<f64, String> {
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    if s == "0" {
        return Ok(0.0);
    }
    let bad = || format!("not a valid duration string: {}", gofmt::quote(s));
    const UNITS: [(&str, u128); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let b = s.as_bytes();
    let (mut i, mut total, mut next_unit) = (0usize, 0u128, 0usize);
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n: u128 = s[start..i].parse().map_err(|_| bad())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let k = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        if k < next_unit {
            return Err(bad());
        }
        next_unit = k + 1;
        total = total.checked_add(n.checked_mul(UNITS[k].1).ok_or_else(bad)?).ok_or_else(bad)?;
    }
    if total > i64::MAX as u128 / 1_000_000 {
        return Err("duration out of range".into());
    }
    Ok(total as f64 / 1000.0)
}

/// Go's `net.SplitHostPort`; None where Go returns an error.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let port = rest[end + 1..].strip_prefix(':')?;
        return Some((&rest[..end], port));
    }
    let i = s.rfind(':')?;
    let host = &s[..i];
    if host.contains([':', '[', ']']) {
        return None;
    }
    Some((host, &s[i + 1..]))
}

fn strip_domain(s: &str) -> String {
    let (host, port) = split_host_port(s).unwrap_or((s, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return s.to_string();
    }
    let host = host.split('.').next().unwrap_or("");
    if port.is_empty() {
        host.to_string()
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's deprecated `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        }
    };
    let mut prev = ' ';
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_sep(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || (!c.is_ascii() && c.is_control()) => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(super) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
