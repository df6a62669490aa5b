//! Evaluator: walks the parsed tree against [`TemplateData`], with Go's
//! variable scoping, truthiness, pipelines and `missingkey=zero` lookups.

use std::collections::BTreeMap;

use super::funcs::{self, Func};
use super::gofmt;
use super::parse::{Arg, Branch, Cmd, Node, Pipe};
use super::{RenderOptions, Template, TemplateData, TplValue};

/// A value during evaluation. Unlike [`TplValue`] it keeps Go's distinction
/// between int and float64 constants and has the few Go types Prometheus
/// functions return (`template.HTML`, `time.Time`, `time.Duration`).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum V {
    /// Go's "no value" (invalid reflect.Value / nil interface).
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Html(String),
    List(Vec<V>),
    Map(BTreeMap<String, V>),
    Time {
        secs: i64,
        nanos: u32,
    },
    Duration(i64),
}

impl From<&TplValue> for V {
    fn from(t: &TplValue) -> Self {
        match t {
            TplValue::Null => V::Nil,
            TplValue::Bool(b) => V::Bool(*b),
            TplValue::Num(n) => V::Float(*n),
            TplValue::Str(s) => V::Str(s.clone()),
            TplValue::List(l) => V::List(l.iter().map(V::from).collect()),
            TplValue::Map(m) => V::Map(m.iter().map(|(k, v)| (k.clone(), V::from(v))).collect()),
        }
    }
}

fn node_pos(n: &Node) -> Option<usize> {
    match n {
        Node::Action(p) => Some(p.pos),
        Node::If(b) | Node::Range(b) | Node::With(b) => Some(b.pipe.pos),
        Node::Template { pos, .. } => Some(*pos),
        _ => None,
    }
}

/// Go's truth: false, 0, nil and empty strings/lists/maps are false.
pub(super) fn truth(v: &V) -> bool {
    match v {
        V::Nil => false,
        V::Bool(b) => *b,
        V::Int(n) | V::Duration(n) => *n != 0,
        V::Float(f) => *f != 0.0,
        V::Str(s) | V::Html(s) => !s.is_empty(),
        V::List(l) => !l.is_empty(),
        V::Map(m) => !m.is_empty(),
        V::Time { .. } => true,
    }
}

/// What a missing key of `m` yields under `missingkey=zero`: "" for string
/// maps (labels), no value otherwise.
pub(super) fn zero_for(m: &BTreeMap<String, V>) -> V {
    if m.values().all(|v| matches!(v, V::Str(_))) {
        V::Str(String::new())
    } else {
        V::Nil
    }
}

type EResult<T> = Result<T, (usize, String)>;

/// Deepest nesting of `{{template}}` calls.
const MAX_TEMPLATE_DEPTH: usize = 100;
/// Deepest nesting of lists being walked (controls inside template calls),
/// keeping the evaluator's recursion well inside a small thread stack.
const MAX_NEST: usize = 300;
/// Most iterations of `range` over an integer.
const MAX_RANGE_INT: i64 = 1_000_000;
/// Largest output a render may produce.
const MAX_OUTPUT: usize = 16 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctl {
    Normal,
    Break,
    Continue,
}

pub(super) struct State<'a> {
    tpl: &'a Template,
    pub opts: &'a RenderOptions<'a>,
    vars: Vec<(String, V)>,
    out: String,
    depth: usize,
    nest: usize,
    pub external_url: String,
}

pub(super) fn render(tpl: &Template, data: &TemplateData, opts: &RenderOptions<'_>) -> EResult<String> {
    let dot = V::from(&data.dot);
    let mut vars = vec![("$".to_string(), dot.clone())];
    vars.extend(data.vars.iter().map(|(k, v)| (format!("${k}"), V::from(v))));
    let external_url = match data.vars.get("externalURL") {
        Some(TplValue::Str(s)) => s.clone(),
        _ => String::new(),
    };
    let mut st = State { tpl, opts, vars, out: String::new(), depth: 0, nest: 0, external_url };
    st.walk(&tpl.root, &dot)?;
    Ok(st.out)
}

impl State<'_> {
    fn write(&mut self, s: &str, pos: usize) -> EResult<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err((pos, format!("output exceeds {MAX_OUTPUT} bytes")));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk(&mut self, list: &[Node], dot: &V) -> EResult<Ctl> {
        if self.nest >= MAX_NEST {
            let pos = list.iter().find_map(node_pos).unwrap_or(0);
            return Err((pos, format!("template nesting exceeds {MAX_NEST} levels")));
        }
        self.nest += 1;
        let r = self.walk_list(list, dot);
        self.nest -= 1;
        r
    }

    fn walk_list(&mut self, list: &[Node], dot: &V) -> EResult<Ctl> {
        for node in list {
            let ctl = match node {
                Node::Text(s) => {
                    self.write(s, 0)?;
                    Ctl::Normal
                }
                Node::Action(p) => {
                    let v = self.eval_pipeline(dot, p)?;
                    if p.decl.is_empty() {
                        let s = match &v {
                            V::Nil => "<no value>".to_string(),
                            V::Html(h) if self.opts.escape_html => h.clone(),
                            v if self.opts.escape_html => super::funcs::html_escape(&gofmt::fmt_v(v)),
                            v => gofmt::fmt_v(v),
                        };
                        self.write(&s, p.pos)?;
                    }
                    Ctl::Normal
                }
                Node::If(b) => self.walk_if_with(b, dot, false)?,
                Node::With(b) => self.walk_if_with(b, dot, true)?,
                Node::Range(b) => self.walk_range(b, dot)?,
                Node::Template { pos, name, pipe } => {
                    let d = match pipe {
                        Some(p) => self.eval_pipeline(dot, p)?,
                        None => V::Nil,
                    };
                    self.call_template(name, d, *pos)?;
                    Ctl::Normal
                }
                Node::Break => Ctl::Break,
                Node::Continue => Ctl::Continue,
            };
            if ctl != Ctl::Normal {
                return Ok(ctl);
            }
        }
        Ok(Ctl::Normal)
    }

    fn walk_if_with(&mut self, b: &Branch, dot: &V, with: bool) -> EResult<Ctl> {
        let mark = self.vars.len();
        let r = self.if_with_body(b, dot, with);
        self.vars.truncate(mark);
        r
    }

    fn if_with_body(&mut self, b: &Branch, dot: &V, with: bool) -> EResult<Ctl> {
        let v = self.eval_pipeline(dot, &b.pipe)?;
        if truth(&v) {
            self.walk(&b.list, if with { &v } else { dot })
        } else if let Some(e) = &b.else_list {
            self.walk(e, dot)
        } else {
            Ok(Ctl::Normal)
        }
    }

    fn walk_range(&mut self, b: &Branch, dot: &V) -> EResult<Ctl> {
        let mark = self.vars.len();
        let v = self.eval_cmds(dot, &b.pipe)?;
        let items: Vec<(V, V)> = match v {
            V::List(l) => l.into_iter().enumerate().map(|(i, e)| (V::Int(i as i64), e)).collect(),
            V::Map(m) => m.into_iter().map(|(k, e)| (V::Str(k), e)).collect(),
            V::Int(n) => {
                if b.pipe.decl.len() > 1 {
                    return Err((b.pipe.pos, "can't use range over int with two variables".into()));
                }
                if n > MAX_RANGE_INT {
                    return Err((b.pipe.pos, format!("range over {n} exceeds the limit of {MAX_RANGE_INT}")));
                }
                (0..n.max(0)).map(|i| (V::Int(i), V::Int(i))).collect()
            }
            V::Nil => Vec::new(),
            other => return Err((b.pipe.pos, format!("range can't iterate over {}", gofmt::fmt_v(&other)))),
        };
        if items.is_empty() {
            let r = match &b.else_list {
                Some(e) => self.walk(e, dot),
                None => Ok(Ctl::Normal),
            };
            self.vars.truncate(mark);
            return r.map(|_| Ctl::Normal);
        }
        for (k, e) in items {
            self.vars.truncate(mark);
            match b.pipe.decl.as_slice() {
                [v] => self.bind(v, e.clone(), b.pipe.is_assign, b.pipe.pos)?,
                [kn, vn] => {
                    self.bind(kn, k, b.pipe.is_assign, b.pipe.pos)?;
                    self.bind(vn, e.clone(), b.pipe.is_assign, b.pipe.pos)?;
                }
                _ => {}
            }
            let r = self.walk(&b.list, &e);
            if r? == Ctl::Break {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Ctl::Normal)
    }

    fn bind(&mut self, name: &str, v: V, assign: bool, pos: usize) -> EResult<()> {
        if assign {
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = v,
                None => return Err((pos, format!("undefined variable: {name}"))),
            }
        } else {
            self.vars.push((name.to_string(), v));
        }
        Ok(())
    }

    pub(super) fn call_template(&mut self, name: &str, dot: V, pos: usize) -> EResult<()> {
        let tpl = self.tpl;
        let Some(body) = tpl.defines.get(name) else {
            return Err((pos, format!("no such template {name:?}")));
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return Err((pos, format!("exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")));
        }
        self.depth += 1;
        let saved = std::mem::replace(&mut self.vars, vec![("$".to_string(), dot.clone())]);
        let r = self.walk(body, &dot);
        self.vars = saved;
        self.depth -= 1;
        r.map(|_| ())
    }

    /// Runs a named template and returns what it printed (for `tmpl`).
    pub(super) fn capture_template(&mut self, name: &str, dot: V, pos: usize) -> EResult<String> {
        let saved = std::mem::take(&mut self.out);
        let r = self.call_template(name, dot, pos);
        let got = std::mem::replace(&mut self.out, saved);
        r.map(|_| got)
    }

    fn eval_cmds(&mut self, dot: &V, p: &Pipe) -> EResult<V> {
        let mut val: Option<V> = None;
        for c in &p.cmds {
            val = Some(self.eval_command(dot, c, val.take())?);
        }
        Ok(val.unwrap_or(V::Nil))
    }

    fn eval_pipeline(&mut self, dot: &V, p: &Pipe) -> EResult<V> {
        let v = self.eval_cmds(dot, p)?;
        for name in &p.decl {
            self.bind(name, v.clone(), p.is_assign, p.pos)?;
        }
        Ok(v)
    }

    fn not_a_function(&self, c: &Cmd, final_: &Option<V>) -> EResult<()> {
        if c.args.len() > 1 || final_.is_some() {
            return Err((c.pos, format!("can't give argument to non-function {}", c.args[0].describe())));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &V, c: &Cmd, final_: Option<V>) -> EResult<V> {
        match &c.args[0] {
            Arg::Func(f) => self.eval_func(dot, *f, &c.args[1..], final_, c.pos),
            Arg::Field { .. } | Arg::Var { .. } => {
                if c.args.len() > 1 || final_.is_some() {
                    return Err((c.pos, format!("{} is not a method but has arguments", c.args[0].describe())));
                }
                self.eval_arg(dot, &c.args[0], c.pos)
            }
            Arg::Nil => Err((c.pos, "nil is not a command".into())),
            a => {
                self.not_a_function(c, &final_)?;
                self.eval_arg(dot, a, c.pos)
            }
        }
    }

    fn chain(&self, base: &V, names: &[String], pos: usize) -> EResult<V> {
        let mut cur = base;
        for (i, n) in names.iter().enumerate() {
            match cur {
                V::Map(m) => match m.get(n) {
                    Some(v) => cur = v,
                    None => {
                        let z = zero_for(m);
                        return self.chain(&z, &names[i + 1..], pos);
                    }
                },
                V::Nil => return Ok(V::Nil),
                other => {
                    return Err((pos, format!("can't evaluate field {n} in type {}", gofmt::type_name(other))));
                }
            }
        }
        Ok(cur.clone())
    }

    fn eval_arg(&mut self, dot: &V, a: &Arg, pos: usize) -> EResult<V> {
        Ok(match a {
            Arg::Field { pos, names } => self.chain(dot, names, *pos)?,
            Arg::Var { pos, name, fields } => {
                let base = self.vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
                match base {
                    Some(b) => self.chain(b, fields, *pos)?,
                    None => V::Nil,
                }
            }
            Arg::Pipe { pos, pipe, fields } => {
                let v = self.eval_pipeline(dot, pipe)?;
                self.chain(&v, fields, *pos)?
            }
            Arg::Func(f) => self.eval_func(dot, *f, &[], None, pos)?,
            Arg::Dot => dot.clone(),
            Arg::Nil => V::Nil,
            Arg::Bool(b) => V::Bool(*b),
            Arg::Int(n) => V::Int(*n),
            Arg::Float(f) => V::Float(*f),
            Arg::Str(s) => V::Str(s.clone()),
        })
    }

    fn eval_func(&mut self, dot: &V, f: Func, args: &[Arg], final_: Option<V>, pos: usize) -> EResult<V> {
        if matches!(f, Func::And | Func::Or) {
            // Short-circuit, returning the deciding argument, as Go 1.18+ does.
            let n = args.len() + usize::from(final_.is_some());
            if n == 0 {
                return Err((pos, format!("wrong number of args for {}: want at least 1 got 0", f.name())));
            }
            let mut last = V::Nil;
            for a in args {
                let v = self.eval_arg(dot, a, pos)?;
                if truth(&v) == (f == Func::Or) {
                    return Ok(v);
                }
                last = v;
            }
            return Ok(final_.unwrap_or(last));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_arg(dot, a, pos)?);
        }
        if let Some(v) = final_ {
            vals.push(v);
        }
        funcs::call(self, f, vals, pos)
    }
}
