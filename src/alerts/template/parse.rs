//! Parser: tokens to a tree of nodes, with Go's parse-time checks (unknown
//! functions, undefined variables, `break` outside `range`, stray `end`).

use std::collections::{BTreeSet, HashMap};

use super::funcs::Func;
use super::lex::{Kw, Tok, TokKind};

#[derive(Clone, Debug)]
pub(super) enum Node {
    Text(String),
    Action(Pipe),
    If(Box<Branch>),
    Range(Box<Branch>),
    With(Box<Branch>),
    Template { pos: usize, name: String, pipe: Option<Pipe> },
    Break,
    Continue,
}

#[derive(Clone, Debug)]
pub(super) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Clone, Debug)]
pub(super) struct Pipe {
    pub pos: usize,
    /// Declared or assigned variables, with their `$`.
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Clone, Debug)]
pub(super) struct Cmd {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug)]
pub(super) enum Arg {
    Field { pos: usize, names: Vec<String> },
    Var { pos: usize, name: String, fields: Vec<String> },
    Pipe { pos: usize, pipe: Box<Pipe>, fields: Vec<String> },
    Func(Func),
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Arg {
    /// Roughly how Go prints the node in error messages.
    pub fn describe(&self) -> String {
        match self {
            Arg::Field { names, .. } => names.iter().map(|n| format!(".{n}")).collect(),
            Arg::Var { name, fields, .. } => {
                format!("{name}{}", fields.iter().map(|n| format!(".{n}")).collect::<String>())
            }
            Arg::Pipe { fields, .. } => format!("(...){}", fields.iter().map(|n| format!(".{n}")).collect::<String>()),
            Arg::Func(f) => f.name().to_string(),
            Arg::Dot => ".".into(),
            Arg::Nil => "nil".into(),
            Arg::Bool(b) => b.to_string(),
            Arg::Int(n) => n.to_string(),
            Arg::Float(f) => f.to_string(),
            Arg::Str(s) => format!("{s:?}"),
        }
    }
}

type PResult<T> = Result<T, (usize, String)>;

/// Deepest nesting of parentheses and control structures accepted.
const MAX_DEPTH: usize = 100;

enum Item {
    Node(Node),
    End,
    Else { pos: usize, chain: Option<Kw> },
}

struct Parser<'a> {
    toks: &'a [Tok],
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    defines: HashMap<String, Vec<Node>>,
}

pub(super) type Defines = HashMap<String, Vec<Node>>;

pub(super) fn parse(toks: &[Tok], predeclared: &[&str]) -> PResult<(Vec<Node>, Defines)> {
    let mut vars = vec!["$".to_string()];
    vars.extend(predeclared.iter().map(|v| format!("${v}")));
    let mut p = Parser { toks, i: 0, vars, range_depth: 0, depth: 0, defines: HashMap::new() };
    let mut root = Vec::new();
    loop {
        let t = p.peek().clone();
        match t.kind {
            TokKind::Eof => break,
            TokKind::Text(s) => {
                p.i += 1;
                root.push(Node::Text(s));
            }
            TokKind::LeftDelim => {
                if p.toks.get(p.i + 1).is_some_and(|t| t.kind == TokKind::Kw(Kw::Define)) {
                    p.i += 2;
                    p.define(t.pos)?;
                    continue;
                }
                match p.action()? {
                    Item::Node(n) => root.push(n),
                    Item::End => return Err((t.pos, "unexpected {{end}}".into())),
                    Item::Else { pos, .. } => return Err((pos, "unexpected {{else}}".into())),
                }
            }
            k => return Err((t.pos, format!("unexpected {}", k.describe()))),
        }
    }
    Ok((root, p.defines))
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn expect_close(&mut self, context: &str) -> PResult<()> {
        let t = self.next();
        if t.kind != TokKind::RightDelim {
            return Err((t.pos, format!("unexpected {} in {context}", t.kind.describe())));
        }
        Ok(())
    }

    fn enter(&mut self, pos: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err((pos, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// Nodes up to the `{{end}}` or `{{else}}` that closes the enclosing control.
    fn item_list(&mut self) -> PResult<(Vec<Node>, Item)> {
        let mut list = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.kind {
                TokKind::Eof => return Err((t.pos, "unexpected EOF".into())),
                TokKind::Text(s) => {
                    self.i += 1;
                    list.push(Node::Text(s));
                }
                TokKind::LeftDelim => match self.action()? {
                    Item::Node(n) => list.push(n),
                    other => return Ok((list, other)),
                },
                k => return Err((t.pos, format!("unexpected {}", k.describe()))),
            }
        }
    }

    /// After `{{`.
    fn action(&mut self) -> PResult<Item> {
        self.next();
        let t = self.peek().clone();
        match t.kind {
            TokKind::Kw(Kw::Block) => {
                self.next();
                self.block(t.pos).map(Item::Node)
            }
            TokKind::Kw(kw @ (Kw::Break | Kw::Continue)) => {
                self.next();
                let word = if kw == Kw::Break { "break" } else { "continue" };
                if self.range_depth == 0 {
                    return Err((t.pos, format!("{{{{{word}}}}} outside {{{{range}}}}")));
                }
                self.expect_close(word)?;
                Ok(Item::Node(if kw == Kw::Break { Node::Break } else { Node::Continue }))
            }
            TokKind::Kw(Kw::Else) => {
                self.next();
                match self.peek().kind {
                    TokKind::Kw(kw @ (Kw::If | Kw::With)) => {
                        self.next();
                        Ok(Item::Else { pos: t.pos, chain: Some(kw) })
                    }
                    _ => {
                        self.expect_close("else")?;
                        Ok(Item::Else { pos: t.pos, chain: None })
                    }
                }
            }
            TokKind::Kw(Kw::End) => {
                self.next();
                self.expect_close("end")?;
                Ok(Item::End)
            }
            TokKind::Kw(kw @ (Kw::If | Kw::Range | Kw::With)) => {
                self.next();
                self.control(kw, t.pos).map(Item::Node)
            }
            TokKind::Kw(Kw::Template) => {
                self.next();
                self.template(t.pos).map(Item::Node)
            }
            TokKind::Kw(Kw::Define) => Err((t.pos, "{{define}} is only allowed at the top level".into())),
            _ => Ok(Item::Node(Node::Action(self.pipeline("command", &TokKind::RightDelim)?))),
        }
    }

    /// After `if`/`range`/`with` (and after `else if` / `else with`).
    fn control(&mut self, kw: Kw, pos: usize) -> PResult<Node> {
        self.enter(pos)?;
        let context = match kw {
            Kw::If => "if",
            Kw::Range => "range",
            _ => "with",
        };
        let mark = self.vars.len();
        let pipe = self.pipeline(context, &TokKind::RightDelim)?;
        if kw == Kw::Range {
            self.range_depth += 1;
        }
        let (list, term) = self.item_list()?;
        if kw == Kw::Range {
            self.range_depth -= 1;
        }
        let else_list = match term {
            Item::End => None,
            Item::Else { chain: None, .. } => {
                let (el, t2) = self.item_list()?;
                match t2 {
                    Item::End => Some(el),
                    Item::Else { pos, .. } => return Err((pos, "expected end; found {{else}}".into())),
                    Item::Node(_) => None,
                }
            }
            Item::Else { pos, chain: Some(k) } => {
                if k != kw {
                    let word = if k == Kw::If { "if" } else { "with" };
                    return Err((pos, format!("unexpected {{{{else {word}}}}} in {{{{{context}}}}}")));
                }
                Some(vec![self.control(k, pos)?])
            }
            Item::Node(_) => None,
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        let b = Box::new(Branch { pipe, list, else_list });
        Ok(match kw {
            Kw::If => Node::If(b),
            Kw::Range => Node::Range(b),
            _ => Node::With(b),
        })
    }

    fn template_name(&mut self, context: &str) -> PResult<String> {
        let t = self.next();
        match t.kind {
            TokKind::Str(s) => Ok(s),
            k => Err((t.pos, format!("unexpected {} in {context}", k.describe()))),
        }
    }

    fn template(&mut self, pos: usize) -> PResult<Node> {
        let name = self.template_name("template clause")?;
        let pipe = if self.peek().kind == TokKind::RightDelim {
            self.next();
            None
        } else {
            Some(self.pipeline("template clause", &TokKind::RightDelim)?)
        };
        Ok(Node::Template { pos, name, pipe })
    }

    /// The body of a `define`/`block`, up to its `{{end}}`, in a fresh scope.
    fn body(&mut self) -> PResult<Vec<Node>> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let rd = std::mem::replace(&mut self.range_depth, 0);
        let r = self.item_list();
        self.vars = vars;
        self.range_depth = rd;
        match r? {
            (list, Item::End) => Ok(list),
            (_, Item::Else { pos, .. }) => Err((pos, "unexpected {{else}}".into())),
            (list, Item::Node(_)) => Ok(list),
        }
    }

    fn add_define(&mut self, pos: usize, name: String, body: Vec<Node>) -> PResult<()> {
        let empty = |l: &[Node]| l.iter().all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
        match self.defines.get(&name) {
            Some(old) if !empty(old) && !empty(&body) => {
                Err((pos, format!("template: multiple definition of template {name:?}")))
            }
            Some(old) if !empty(old) => Ok(()),
            _ => {
                self.defines.insert(name, body);
                Ok(())
            }
        }
    }

    /// After `{{define`.
    fn define(&mut self, pos: usize) -> PResult<()> {
        let name = self.template_name("define clause")?;
        self.expect_close("define clause")?;
        let body = self.body()?;
        self.add_define(pos, name, body)
    }

    /// After `{{block`: defines the body and executes it in place.
    fn block(&mut self, pos: usize) -> PResult<Node> {
        let name = self.template_name("block clause")?;
        let pipe = self.pipeline("block clause", &TokKind::RightDelim)?;
        let body = self.body()?;
        self.add_define(pos, name.clone(), body)?;
        Ok(Node::Template { pos, name, pipe: Some(pipe) })
    }

    fn pipeline(&mut self, context: &str, end: &TokKind) -> PResult<Pipe> {
        let pos = self.peek().pos;
        let mut decl = Vec::new();
        let mut is_assign = false;
        if let TokKind::Var(name) = self.peek().kind.clone() {
            let after = self.toks.get(self.i + 1).map(|t| t.kind.clone());
            match after {
                Some(TokKind::Declare) | Some(TokKind::Assign) => {
                    is_assign = after == Some(TokKind::Assign);
                    if is_assign && !self.vars.contains(&name) {
                        return Err((pos, format!("undefined variable {name:?}")));
                    }
                    self.i += 2;
                    decl.push(name.clone());
                    if !is_assign {
                        self.vars.push(name);
                    }
                }
                Some(TokKind::Comma) => {
                    if context != "range" {
                        return Err((pos, format!("too many declarations in {context}")));
                    }
                    self.i += 2;
                    let t = self.next();
                    let TokKind::Var(second) = t.kind else {
                        return Err((t.pos, "range can only initialize variables".into()));
                    };
                    let op = self.next();
                    if op.kind != TokKind::Declare {
                        return Err((op.pos, format!("unexpected {} in range", op.kind.describe())));
                    }
                    decl.push(name.clone());
                    decl.push(second.clone());
                    self.vars.push(name);
                    self.vars.push(second);
                }
                _ => {}
            }
        }
        let mut cmds = Vec::new();
        loop {
            let t = self.peek().clone();
            if &t.kind == end {
                self.next();
                break;
            }
            match t.kind {
                TokKind::Bool(_)
                | TokKind::Char(_)
                | TokKind::Dot
                | TokKind::Field(_)
                | TokKind::Ident(_)
                | TokKind::Num(_)
                | TokKind::Nil
                | TokKind::Str(_)
                | TokKind::Var(_)
                | TokKind::LParen => cmds.push(self.command(end)?),
                k => return Err((t.pos, format!("unexpected {} in {context}", k.describe()))),
            }
        }
        if cmds.is_empty() {
            return Err((pos, format!("missing value for {context}")));
        }
        for (k, c) in cmds.iter().enumerate().skip(1) {
            if matches!(c.args[0], Arg::Bool(_) | Arg::Dot | Arg::Nil | Arg::Int(_) | Arg::Float(_) | Arg::Str(_)) {
                return Err((c.pos, format!("non executable command in pipeline stage {}", k + 1)));
            }
        }
        Ok(Pipe { pos, decl, is_assign, cmds })
    }

    fn command(&mut self, end: &TokKind) -> PResult<Cmd> {
        let pos = self.peek().pos;
        let mut args = Vec::new();
        loop {
            args.push(self.operand()?);
            let t = self.peek().clone();
            if &t.kind == end || matches!(t.kind, TokKind::RightDelim | TokKind::RParen) {
                break;
            }
            if t.kind == TokKind::Pipe {
                self.next();
                let n = self.peek();
                if &n.kind == end {
                    return Err((n.pos, "missing command after \"|\"".into()));
                }
                break;
            }
            if !t.space {
                return Err((t.pos, format!("unexpected {} in operand", t.kind.describe())));
            }
        }
        Ok(Cmd { pos, args })
    }

    fn operand(&mut self) -> PResult<Arg> {
        let start = self.peek().pos;
        let mut term = self.term()?;
        let mut chain = Vec::new();
        while let TokKind::Field(n) = &self.peek().kind {
            if self.peek().space {
                break;
            }
            chain.push(n.clone());
            self.next();
        }
        if !chain.is_empty() {
            match &mut term {
                Arg::Field { names, .. } => names.extend(chain),
                Arg::Var { fields, .. } | Arg::Pipe { fields, .. } => fields.extend(chain),
                other => return Err((start, format!("unexpected . after term {}", other.describe()))),
            }
        }
        Ok(term)
    }

    fn term(&mut self) -> PResult<Arg> {
        let t = self.next();
        Ok(match t.kind {
            TokKind::Ident(name) => {
                Arg::Func(Func::lookup(&name).ok_or_else(|| (t.pos, format!("function {name:?} not defined")))?)
            }
            TokKind::Dot => Arg::Dot,
            TokKind::Nil => Arg::Nil,
            TokKind::Var(name) => {
                if !self.vars.contains(&name) {
                    return Err((t.pos, format!("undefined variable {name:?}")));
                }
                Arg::Var { pos: t.pos, name, fields: Vec::new() }
            }
            TokKind::Field(n) => Arg::Field { pos: t.pos, names: vec![n] },
            TokKind::Bool(b) => Arg::Bool(b),
            TokKind::Char(c) => Arg::Int(i64::from(u32::from(c))),
            TokKind::Num(text) => parse_number(&text).map_err(|m| (t.pos, m))?,
            TokKind::Str(s) => Arg::Str(s),
            TokKind::LParen => {
                self.enter(t.pos)?;
                let pipe = self.pipeline("parenthesized pipeline", &TokKind::RParen)?;
                self.depth -= 1;
                Arg::Pipe { pos: t.pos, pipe: Box::new(pipe), fields: Vec::new() }
            }
            k => return Err((t.pos, format!("unexpected {} in operand", k.describe()))),
        })
    }
}

/// A Go number literal as an untyped constant: integer syntax gives an int,
/// anything with a fraction or exponent gives a float64.
fn parse_number(text: &str) -> Result<Arg, String> {
    let bad = || format!("bad number syntax: {text:?}");
    if text.ends_with('i') && !text.starts_with("0x") && !text.starts_with("0X") {
        return Err(format!("complex numbers are not supported: {text:?}"));
    }
    let clean = text.replace('_', "");
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, &clean[..]),
    };
    let lower = body.to_ascii_lowercase();
    let radix_int = |digits: &str, radix: u32| -> Result<Arg, String> {
        let v = u64::from_str_radix(digits, radix).map_err(|_| bad())?;
        let v = i64::try_from(v).map_err(|_| format!("{text} overflows int"))?;
        Ok(Arg::Int(if neg { -v } else { v }))
    };
    if let Some(h) = lower.strip_prefix("0x") {
        if h.contains(['p', '.']) {
            return Err(format!("hexadecimal floats are not supported: {text:?}"));
        }
        return radix_int(h, 16);
    }
    if let Some(o) = lower.strip_prefix("0o") {
        return radix_int(o, 8);
    }
    if let Some(b) = lower.strip_prefix("0b") {
        return radix_int(b, 2);
    }
    if lower.contains(['.', 'e']) {
        let v: f64 = clean.parse().map_err(|_| bad())?;
        return Ok(Arg::Float(v));
    }
    if lower.len() > 1 && lower.starts_with('0') {
        return radix_int(&lower[1..], 8);
    }
    radix_int(&lower, 10)
}

/// Label names read through `$labels.X`, `.Labels.X`, `index $labels "X"`.
pub(super) fn collect_label_refs(list: &[Node], out: &mut BTreeSet<String>) {
    for n in list {
        match n {
            Node::Action(p) => pipe_refs(p, out),
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                pipe_refs(&b.pipe, out);
                collect_label_refs(&b.list, out);
                if let Some(e) = &b.else_list {
                    collect_label_refs(e, out);
                }
            }
            Node::Template { pipe: Some(p), .. } => pipe_refs(p, out),
            _ => {}
        }
    }
}

fn is_labels(a: &Arg) -> bool {
    match a {
        Arg::Var { name, fields, .. } => name == "$labels" && fields.is_empty(),
        Arg::Field { names, .. } => names.len() == 1 && names[0] == "Labels",
        _ => false,
    }
}

fn pipe_refs(p: &Pipe, out: &mut BTreeSet<String>) {
    for c in &p.cmds {
        if let [Arg::Func(Func::Index), m, Arg::Str(k), ..] = c.args.as_slice() {
            if is_labels(m) {
                out.insert(k.clone());
            }
        }
        for a in &c.args {
            match a {
                Arg::Var { name, fields, .. } if name == "$labels" && !fields.is_empty() => {
                    out.insert(fields[0].clone());
                }
                Arg::Field { names, .. } if names.len() >= 2 && names[0] == "Labels" => {
                    out.insert(names[1].clone());
                }
                Arg::Pipe { pipe, .. } => pipe_refs(pipe, out),
                _ => {}
            }
        }
    }
}
