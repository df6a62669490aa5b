//! Tokenizer: splits text from `{{ }}` actions, applies the `{{-`/`-}}` trim
//! markers, drops `{{/* */}}` comments and tokenizes action contents.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kw {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum TokKind {
    Text(String),
    LeftDelim,
    RightDelim,
    Ident(String),
    /// `.Name`, holding `Name`.
    Field(String),
    /// `$name` or `$`, holding it with the `$`.
    Var(String),
    Dot,
    Str(String),
    Num(String),
    Char(char),
    Bool(bool),
    Nil,
    Kw(Kw),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Eof,
}

#[derive(Clone, Debug)]
pub(super) struct Tok {
    pub kind: TokKind,
    pub pos: usize,
    /// Whitespace separates this token from the previous one.
    pub space: bool,
}

impl TokKind {
    /// How the token reads in error messages.
    pub fn describe(&self) -> String {
        match self {
            TokKind::Text(_) => "text".into(),
            TokKind::LeftDelim => "\"{{\"".into(),
            TokKind::RightDelim => "\"}}\"".into(),
            TokKind::Ident(s) => format!("<{s}>"),
            TokKind::Field(s) => format!("<.{s}>"),
            TokKind::Var(s) => format!("<{s}>"),
            TokKind::Dot => "<.>".into(),
            TokKind::Str(s) => format!("{s:?}"),
            TokKind::Num(s) => format!("<{s}>"),
            TokKind::Char(c) => format!("{c:?}"),
            TokKind::Bool(b) => format!("<{b}>"),
            TokKind::Nil => "<nil>".into(),
            TokKind::Kw(k) => format!("<{}>", format!("{k:?}").to_lowercase()),
            TokKind::Pipe => "\"|\"".into(),
            TokKind::LParen => "\"(\"".into(),
            TokKind::RParen => "\")\"".into(),
            TokKind::Declare => "\":=\"".into(),
            TokKind::Assign => "\"=\"".into(),
            TokKind::Comma => "\",\"".into(),
            TokKind::Eof => "EOF".into(),
        }
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// ` -}}` at `i`: one whitespace character, a dash, the closing delimiter.
fn right_trim_at(src: &str, i: usize) -> bool {
    let rest = &src[i..];
    rest.chars().next().is_some_and(is_space) && rest[1..].starts_with("-}}")
}

type LexResult<T> = Result<T, (usize, String)>;

pub(super) fn lex(src: &str) -> LexResult<Vec<Tok>> {
    let mut toks = Vec::new();
    let mut i = 0;
    let mut trim_next = false;
    loop {
        let next = src[i..].find("{{").map(|k| i + k);
        let end = next.unwrap_or(src.len());
        let mut text_start = i;
        let mut text = &src[i..end];
        if trim_next {
            let t = text.trim_start_matches(is_space);
            text_start += text.len() - t.len();
            text = t;
        }
        let left_trim = next.is_some_and(|d| {
            let r = &src[d + 2..];
            r.starts_with('-') && r[1..].chars().next().is_some_and(is_space)
        });
        if left_trim {
            text = text.trim_end_matches(is_space);
        }
        if !text.is_empty() {
            toks.push(Tok { kind: TokKind::Text(text.to_string()), pos: text_start, space: false });
        }
        let Some(d) = next else { break };
        // Skip "{{" and a "- " trim marker (the dash plus one whitespace character).
        let mut p = d + 2;
        if left_trim {
            p += 1 + src[p + 1..].chars().next().map_or(0, char::len_utf8);
        }
        if src[p..].starts_with("/*") {
            let Some(close) = src[p + 2..].find("*/") else {
                return Err((d, "unclosed comment".into()));
            };
            let q = p + 2 + close + 2;
            if right_trim_at(src, q) {
                i = q + 4;
                trim_next = true;
            } else if src[q..].starts_with("}}") {
                i = q + 2;
                trim_next = false;
            } else {
                return Err((q, "comment ends before closing delimiter".into()));
            }
            continue;
        }
        toks.push(Tok { kind: TokKind::LeftDelim, pos: d, space: false });
        let (ni, trim) = lex_action(src, p, d, &mut toks)?;
        i = ni;
        trim_next = trim;
    }
    toks.push(Tok { kind: TokKind::Eof, pos: src.len(), space: false });
    Ok(toks)
}

/// Lexes one action's insides from `i`; returns the position after `}}` and
/// whether it ended with a trim marker.
fn lex_action(src: &str, mut i: usize, open: usize, toks: &mut Vec<Tok>) -> LexResult<(usize, bool)> {
    let mut space = false;
    let mut parens = 0usize;
    let b = src.as_bytes();
    loop {
        let Some(c) = src[i..].chars().next() else {
            return Err((open, "unclosed action".into()));
        };
        let at_close = if right_trim_at(src, i) {
            Some((i + 1, i + 4, true))
        } else if src[i..].starts_with("}}") {
            Some((i, i + 2, false))
        } else {
            None
        };
        if let Some((pos, after, trim)) = at_close {
            if parens > 0 {
                return Err((pos, "unclosed left paren".into()));
            }
            toks.push(Tok { kind: TokKind::RightDelim, pos, space });
            return Ok((after, trim));
        }
        let start = i;
        let kind = match c {
            c if is_space(c) => {
                space = true;
                i += 1;
                continue;
            }
            '|' => {
                i += 1;
                TokKind::Pipe
            }
            '(' => {
                i += 1;
                parens += 1;
                TokKind::LParen
            }
            ')' => {
                if parens == 0 {
                    return Err((i, "unexpected right paren".into()));
                }
                parens -= 1;
                i += 1;
                TokKind::RParen
            }
            ',' => {
                i += 1;
                TokKind::Comma
            }
            ':' => {
                if b.get(i + 1) != Some(&b'=') {
                    return Err((i, "expected :=".into()));
                }
                i += 2;
                TokKind::Declare
            }
            '=' => {
                i += 1;
                TokKind::Assign
            }
            '"' => {
                let (s, ni) = lex_quote(src, i)?;
                i = ni;
                TokKind::Str(s)
            }
            '`' => {
                let Some(k) = src[i + 1..].find('`') else {
                    return Err((i, "unterminated raw quoted string".into()));
                };
                let s = src[i + 1..i + 1 + k].replace('\r', "");
                i += k + 2;
                TokKind::Str(s)
            }
            '\'' => {
                let (ch, ni) = lex_char(src, i)?;
                i = ni;
                TokKind::Char(ch)
            }
            '$' => {
                i += 1;
                while let Some(c) = src[i..].chars().next().filter(|c| is_alnum(*c)) {
                    i += c.len_utf8();
                }
                TokKind::Var(src[start..i].to_string())
            }
            '.' => {
                let n = src[i + 1..].chars().next();
                if n.is_some_and(|c| c.is_ascii_digit()) {
                    i = scan_number(src, i)?;
                    TokKind::Num(src[start..i].to_string())
                } else if n.is_some_and(is_alnum) {
                    i += 1;
                    while let Some(c) = src[i..].chars().next().filter(|c| is_alnum(*c)) {
                        i += c.len_utf8();
                    }
                    TokKind::Field(src[start + 1..i].to_string())
                } else {
                    i += 1;
                    TokKind::Dot
                }
            }
            '+' | '-' | '0'..='9' => {
                i = scan_number(src, i)?;
                TokKind::Num(src[start..i].to_string())
            }
            c if is_alnum(c) => {
                while let Some(c) = src[i..].chars().next().filter(|c| is_alnum(*c)) {
                    i += c.len_utf8();
                }
                match &src[start..i] {
                    "block" => TokKind::Kw(Kw::Block),
                    "break" => TokKind::Kw(Kw::Break),
                    "continue" => TokKind::Kw(Kw::Continue),
                    "define" => TokKind::Kw(Kw::Define),
                    "else" => TokKind::Kw(Kw::Else),
                    "end" => TokKind::Kw(Kw::End),
                    "if" => TokKind::Kw(Kw::If),
                    "range" => TokKind::Kw(Kw::Range),
                    "template" => TokKind::Kw(Kw::Template),
                    "with" => TokKind::Kw(Kw::With),
                    "true" => TokKind::Bool(true),
                    "false" => TokKind::Bool(false),
                    "nil" => TokKind::Nil,
                    w => TokKind::Ident(w.to_string()),
                }
            }
            c => return Err((i, format!("bad character {:?} (U+{:04X}) in action", c, c as u32))),
        };
        toks.push(Tok { kind, pos: start, space });
        space = false;
    }
}

/// Scans a Go number literal starting at `i` (sign, base prefix, digits with
/// underscores, fraction, exponent); the text is validated by the parser.
fn scan_number(src: &str, mut i: usize) -> LexResult<usize> {
    let b = src.as_bytes();
    let start = i;
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let mut digits: &[u8] = b"0123456789_";
    let mut exp: &[u8] = b"eE";
    if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        digits = b"0123456789abcdefABCDEF_";
        exp = b"pP";
    } else if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'o' | b'O' | b'b' | b'B')) {
        i += 2;
    }
    let run = |i: &mut usize| {
        while b.get(*i).is_some_and(|c| digits.contains(c)) {
            *i += 1;
        }
    };
    run(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        run(&mut i);
    }
    if b.get(i).is_some_and(|c| exp.contains(c)) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if b.get(i) == Some(&b'i') {
        i += 1;
    }
    if src[i..].chars().next().is_some_and(is_alnum) || i == start + 1 && !b[start].is_ascii_digit() {
        let mut j = i;
        while let Some(c) = src[j..].chars().next().filter(|c| is_alnum(*c) || *c == '.') {
            j += c.len_utf8();
        }
        let j = j.max(i);
        return Err((start, format!("bad number syntax: {:?}", &src[start..j])));
    }
    Ok(i)
}

fn lex_quote(src: &str, i: usize) -> LexResult<(String, usize)> {
    let mut out: Vec<u8> = Vec::new();
    let mut it = src[i + 1..].char_indices();
    let bad = || (i, "invalid syntax in quoted string".to_string());
    while let Some((k, c)) = it.next() {
        match c {
            '"' => {
                let s = String::from_utf8(out).map_err(|_| (i, "quoted string is not valid UTF-8".to_string()))?;
                return Ok((s, i + 1 + k + 1));
            }
            '\n' => break,
            '\\' => {
                let (_, e) = it.next().ok_or_else(|| (i, "unterminated quoted string".to_string()))?;
                let simple = match e {
                    'a' => Some(7u8),
                    'b' => Some(8),
                    'f' => Some(12),
                    'n' => Some(b'\n'),
                    'r' => Some(b'\r'),
                    't' => Some(b'\t'),
                    'v' => Some(11),
                    '\\' => Some(b'\\'),
                    '"' => Some(b'"'),
                    _ => None,
                };
                if let Some(v) = simple {
                    out.push(v);
                    continue;
                }
                let (len, radix) = match e {
                    'x' => (2, 16),
                    'u' => (4, 16),
                    'U' => (8, 16),
                    '0'..='7' => (2, 8),
                    _ => return Err(bad()),
                };
                let mut digits = String::new();
                if radix == 8 {
                    digits.push(e);
                }
                for _ in 0..len {
                    digits.push(it.next().ok_or_else(bad)?.1);
                }
                let v = u32::from_str_radix(&digits, radix).map_err(|_| bad())?;
                if e == 'x' || radix == 8 {
                    out.push(u8::try_from(v).map_err(|_| bad())?);
                } else {
                    let ch = char::from_u32(v).ok_or_else(bad)?;
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Err((i, "unterminated quoted string".into()))
}

fn lex_char(src: &str, i: usize) -> LexResult<(char, usize)> {
    let rest = &src[i + 1..];
    let bad = || (i, "malformed character constant".to_string());
    let mut it = rest.char_indices();
    let (_, c) = it.next().ok_or_else(bad)?;
    let ch = if c == '\\' {
        let (_, e) = it.next().ok_or_else(bad)?;
        match e {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\\' => '\\',
            '\'' => '\'',
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut d = String::new();
                for _ in 0..n {
                    d.push(it.next().ok_or_else(bad)?.1);
                }
                u32::from_str_radix(&d, 16).ok().and_then(char::from_u32).ok_or_else(bad)?
            }
            _ => return Err(bad()),
        }
    } else if c == '\'' || c == '\n' {
        return Err(bad());
    } else {
        c
    };
    match it.next() {
        Some((k, '\'')) => Ok((ch, i + 1 + k + 1)),
        _ => Err(bad()),
    }
}
