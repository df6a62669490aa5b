//! The parts of Go's `fmt`, `strconv` and `time` output that template users
//! see: `%v` of values, `printf` verbs, float formatting with Go's exact
//! `%g`/`%e` rules, and `time.Time` / `time.Duration` strings.

use super::exec::V;

/// Go's type name of a value, as `fmt` and template errors print it.
pub(super) fn type_name(v: &V) -> String {
    match v {
        V::Nil => "<nil>".into(),
        V::Bool(_) => "bool".into(),
        V::Int(_) => "int".into(),
        V::Float(_) => "float64".into(),
        V::Str(_) => "string".into(),
        V::Html(_) => "template.HTML".into(),
        V::List(_) => "[]interface {}".into(),
        V::Map(m) if m.values().all(|v| matches!(v, V::Str(_))) => "map[string]string".into(),
        V::Map(_) => "map[string]interface {}".into(),
        V::Time { .. } => "time.Time".into(),
        V::Duration(_) => "time.Duration".into(),
    }
}

/// `fmt.Sprint(v)` of one value (`<nil>` for no value).
pub(super) fn fmt_v(v: &V) -> String {
    format_arg(v, 'v', &Flags::default())
}

/// `fmt.Sprint(args...)`: spaces between operands when neither is a string.
pub(super) fn sprint(args: &[V]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &V| matches!(v, V::Str(_) | V::Html(_));
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&fmt_v(a));
    }
    out
}

/// `fmt.Sprintln(args...)`: always spaces, then a newline.
pub(super) fn sprintln(args: &[V]) -> String {
    let mut out = args.iter().map(fmt_v).collect::<Vec<_>>().join(" ");
    out.push('\n');
    out
}

#[derive(Clone, Debug, Default)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// `fmt.Sprintf(format, args...)`.
pub(super) fn sprintf(format: &str, args: &[V]) -> String {
    let mut out = String::new();
    let mut it = format.chars().peekable();
    let mut argi = 0usize;
    let mut reordered = false;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut fl = Flags::default();
        while let Some(&c) = it.peek() {
            match c {
                '+' => fl.plus = true,
                '-' => {
                    fl.minus = true;
                    fl.zero = false;
                }
                '#' => fl.sharp = true,
                ' ' => fl.space = true,
                '0' => fl.zero = !fl.minus,
                _ => break,
            }
            it.next();
        }
        let mut arg_index = |it: &mut std::iter::Peekable<std::str::Chars<'_>>, argi: &mut usize| -> bool {
            if it.peek() != Some(&'[') {
                return true;
            }
            it.next();
            let mut n = String::new();
            while let Some(&c) = it.peek() {
                it.next();
                if c == ']' {
                    break;
                }
                n.push(c);
            }
            reordered = true;
            match n.parse::<usize>() {
                Ok(k) if k >= 1 => {
                    *argi = k - 1;
                    true
                }
                _ => false,
            }
        };
        let mut good = arg_index(&mut it, &mut argi);
        let take_num = |it: &mut std::iter::Peekable<std::str::Chars<'_>>, argi: &mut usize| -> Option<i64> {
            if it.peek() == Some(&'*') {
                it.next();
                let v = match args.get(*argi) {
                    Some(V::Int(n)) => Some(*n),
                    _ => None,
                };
                *argi += 1;
                return v.or(Some(i64::MIN));
            }
            let mut s = String::new();
            while let Some(&c) = it.peek().filter(|c| c.is_ascii_digit()) {
                s.push(c);
                it.next();
            }
            if s.is_empty() {
                None
            } else {
                Some(s.parse::<i64>().unwrap_or(1_000_000).min(1_000_000))
            }
        };
        match take_num(&mut it, &mut argi) {
            Some(i64::MIN) => out.push_str("%!(BADWIDTH)"),
            Some(w) if w < 0 => {
                fl.minus = true;
                fl.zero = false;
                fl.width = Some(w.unsigned_abs().min(1_000_000) as usize);
            }
            Some(w) => fl.width = Some(w as usize),
            None => {}
        }
        if it.peek() == Some(&'.') {
            it.next();
            good &= arg_index(&mut it, &mut argi);
            match take_num(&mut it, &mut argi) {
                Some(i64::MIN) => out.push_str("%!(BADPREC)"),
                Some(p) if p < 0 => {}
                Some(p) => fl.prec = Some(p as usize),
                None => fl.prec = Some(0),
            }
        }
        good &= arg_index(&mut it, &mut argi);
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        if !good {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
            continue;
        }
        match args.get(argi) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(a) => {
                out.push_str(&format_arg(a, verb, &fl));
                argi += 1;
            }
        }
    }
    if !reordered && argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| if matches!(a, V::Nil) { "<nil>".to_string() } else { format!("{}={}", type_name(a), fmt_v(a)) })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn bad_verb(v: &V, verb: char) -> String {
    match v {
        V::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", type_name(v), fmt_v(v)),
    }
}

fn pad(s: &str, fl: &Flags, zero_ok: bool) -> String {
    let n = s.chars().count();
    let Some(w) = fl.width.filter(|w| *w > n) else { return s.to_string() };
    let fill = w - n;
    if fl.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if fl.zero && zero_ok {
        format!("{}{s}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

/// Pads a number whose sign is separate, putting zero padding after the sign.
fn pad_signed(sign: &str, body: &str, fl: &Flags) -> String {
    if fl.zero && !fl.minus {
        if let Some(w) = fl.width {
            let n = sign.chars().count() + body.chars().count();
            if w > n {
                return format!("{sign}{}{body}", "0".repeat(w - n));
            }
        }
    }
    pad(&format!("{sign}{body}"), &Flags { zero: false, ..fl.clone() }, false)
}

fn format_arg(v: &V, verb: char, fl: &Flags) -> String {
    match v {
        V::Nil => match verb {
            'v' => pad("<nil>", fl, false),
            _ => bad_verb(v, verb),
        },
        V::Bool(b) => match verb {
            'v' | 't' => pad(if *b { "true" } else { "false" }, fl, false),
            _ => bad_verb(v, verb),
        },
        V::Int(n) => format_int(*n, verb, fl).unwrap_or_else(|| bad_verb(v, verb)),
        V::Duration(n) => match verb {
            'v' | 's' => pad(&duration_string(*n), fl, false),
            'q' => pad(&quote(&duration_string(*n)), fl, false),
            _ => format_int(*n, verb, fl).unwrap_or_else(|| bad_verb(v, verb)),
        },
        V::Float(f) => format_float_verb(*f, verb, fl).unwrap_or_else(|| bad_verb(v, verb)),
        V::Str(s) | V::Html(s) => format_str(s, verb, fl).unwrap_or_else(|| bad_verb(v, verb)),
        V::Time { secs, nanos } => match verb {
            'v' | 's' => pad(&time_string(*secs, *nanos), fl, false),
            'q' => pad(&quote(&time_string(*secs, *nanos)), fl, false),
            _ => bad_verb(v, verb),
        },
        V::List(items) => {
            let parts: Vec<String> = items.iter().map(|e| format_arg(e, verb, fl)).collect();
            format!("[{}]", parts.join(" "))
        }
        V::Map(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, e)| {
                    format!("{}:{}", format_str(k, verb, fl).unwrap_or_else(|| k.clone()), format_arg(e, verb, fl))
                })
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn format_str(s: &str, verb: char, fl: &Flags) -> Option<String> {
    let s: String = match fl.prec {
        Some(p) if matches!(verb, 'v' | 's' | 'q') => s.chars().take(p).collect(),
        _ => s.to_string(),
    };
    Some(match verb {
        'v' | 's' => pad(&s, fl, true),
        'q' => pad(&quote(&s), fl, false),
        'x' | 'X' => {
            let mut h = String::new();
            for (i, b) in s.bytes().enumerate() {
                if fl.space && i > 0 {
                    h.push(' ');
                }
                if fl.sharp && (fl.space || i == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    h.push_str(&format!("{b:02x}"));
                } else {
                    h.push_str(&format!("{b:02X}"));
                }
            }
            pad(&h, fl, false)
        }
        _ => return None,
    })
}

fn format_int(n: i64, verb: char, fl: &Flags) -> Option<String> {
    let mag = n.unsigned_abs();
    let mut digits = match verb {
        'd' | 'v' => mag.to_string(),
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        'o' | 'O' => format!("{mag:o}"),
        'b' => format!("{mag:b}"),
        'c' => {
            return Some(pad(
                &u32::try_from(n).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}').to_string(),
                fl,
                false,
            ))
        }
        'q' => {
            let c = u32::try_from(n).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
            let q = if c == '\'' { "'\\''".to_string() } else { format!("'{}'", quote_inner(&c.to_string(), '\'')) };
            return Some(pad(&q, fl, false));
        }
        'U' => return Some(pad(&format!("U+{mag:04X}"), fl, false)),
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => return None,
        _ => return None,
    };
    if let Some(p) = fl.prec {
        if p == 0 && n == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let prefix = match verb {
        'x' if fl.sharp => "0x",
        'X' if fl.sharp => "0X",
        'o' if fl.sharp => "0",
        'O' => "0o",
        _ => "",
    };
    let sign = if n < 0 {
        "-"
    } else if fl.plus {
        "+"
    } else if fl.space {
        " "
    } else {
        ""
    };
    let sign = format!("{sign}{prefix}");
    let fl = if fl.prec.is_some() { Flags { zero: false, ..fl.clone() } } else { fl.clone() };
    Some(pad_signed(&sign, &digits, &fl))
}

fn format_float_verb(f: f64, verb: char, fl: &Flags) -> Option<String> {
    let (sv, prec) = match verb {
        'v' => ('g', fl.prec),
        'g' | 'G' => (verb, fl.prec),
        'e' | 'E' | 'f' => (verb, Some(fl.prec.unwrap_or(6))),
        'F' => ('f', Some(fl.prec.unwrap_or(6))),
        _ => return None,
    };
    let num = strconv_float(f, sv, prec);
    let (neg, body) = match num.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, num.trim_start_matches('+').to_string()),
    };
    if body == "Inf" || body == "NaN" {
        let s = if body == "NaN" {
            if fl.plus {
                "+NaN"
            } else if fl.space {
                " NaN"
            } else {
                "NaN"
            }
        } else if neg {
            "-Inf"
        } else if fl.space && !fl.plus {
            " Inf"
        } else {
            "+Inf"
        };
        return Some(pad(s, &Flags { zero: false, ..fl.clone() }, false));
    }
    let mut body = body;
    if fl.sharp && !body.contains('.') {
        // '#' keeps a decimal point; good enough for alert text.
        if let Some(k) = body.find(['e', 'E']) {
            body.insert(k, '.');
        } else {
            body.push('.');
        }
    }
    let sign = if neg {
        "-"
    } else if fl.plus {
        "+"
    } else if fl.space {
        " "
    } else {
        ""
    };
    Some(pad_signed(sign, &body, fl))
}

/// The decimal digits of |v| (no trailing zeros, empty for zero) and the
/// position of the decimal point, rounded to `sig` significant digits or
/// the shortest representation that reads back as `v`.
fn decimal(abs: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    if abs == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match sig {
        Some(p) => format!("{:.*e}", p.max(1) - 1, abs),
        None => format!("{abs:e}"),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.len() > 1 && d.last() == Some(&b'0') {
        d.pop();
    }
    (d, exp + 1)
}

fn fmt_e(neg: bool, d: &[u8], dp: i32, prec: usize, upper: bool) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push(d.first().map_or('0', |c| *c as char));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(d.get(i).map_or('0', |c| *c as char));
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if d.is_empty() { 0 } else { dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.unsigned_abs()));
    out
}

fn fmt_f(neg: bool, d: &[u8], dp: i32, prec: usize) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(d.get(i).map_or('0', |c| *c as char));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i32 {
            let j = dp + i - 1;
            out.push(if j >= 0 { d.get(j as usize).map_or('0', |c| *c as char) } else { '0' });
        }
    }
    out
}

/// `strconv.FormatFloat(v, verb, prec, 64)`; `prec` None is -1 (shortest).
pub(super) fn strconv_float(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let neg = v.is_sign_negative();
    let abs = v.abs();
    match verb {
        'f' => {
            let s = match prec {
                Some(p) => format!("{abs:.p$}"),
                None => format!("{abs}"),
            };
            if neg {
                format!("-{s}")
            } else {
                s
            }
        }
        'e' | 'E' => {
            let (d, dp) = decimal(abs, prec.map(|p| p + 1));
            let p = prec.unwrap_or(d.len().max(1) - 1);
            fmt_e(neg, &d, dp, p, verb == 'E')
        }
        _ => {
            // 'g' / 'G'
            let shortest = prec.is_none();
            let mut p = match prec {
                Some(0) => 1,
                Some(p) => p,
                None => 0,
            };
            let (d, dp) = decimal(abs, prec.map(|_| p));
            let nd = d.len() as i32;
            if shortest {
                p = 6;
            }
            let mut eprec = p as i32;
            if !shortest && eprec > nd && nd >= dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            if exp < -4 || exp >= eprec {
                let mut pp = if shortest { nd } else { p as i32 };
                if pp > nd {
                    pp = nd;
                }
                return fmt_e(neg, &d, dp, (pp - 1).max(0) as usize, verb == 'G');
            }
            let mut pp = if shortest { nd } else { p as i32 };
            if pp > dp {
                pp = nd;
            }
            fmt_f(neg, &d, dp, (pp - dp).max(0) as usize)
        }
    }
}

/// `strconv.Quote`.
pub(super) fn quote(s: &str) -> String {
    format!("\"{}\"", quote_inner(s, '"'))
}

fn quote_inner(s: &str, q: char) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Go's `time.Time.String()` for a UTC time:
/// `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub(super) fn time_string(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let mut frac = String::new();
    if nanos > 0 {
        frac = format!(".{nanos:09}");
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    let year = if y < 0 { format!("-{:04}", -y) } else { format!("{y:04}") };
    format!("{year}-{mo:02}-{d:02} {:02}:{:02}:{:02}{frac} +0000 UTC", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// Go's `time.Duration.String()`: `1h1m1s`, `1.5s`, `500ms`, `0s`.
pub(super) fn duration_string(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let frac = |v: u64, digits: u32| -> String {
        let p = 10u64.pow(digits);
        let mut f = format!("{:0width$}", v % p, width = digits as usize);
        while f.ends_with('0') {
            f.pop();
        }
        if f.is_empty() {
            format!("{}", v / p)
        } else {
            format!("{}.{f}", v / p)
        }
    };
    let s = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u, 3))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u, 6))
    } else {
        let secs = u / 1_000_000_000;
        let sec_part = frac(u % 60_000_000_000, 9);
        let mins = secs / 60;
        if mins == 0 {
            format!("{sec_part}s")
        } else if mins < 60 {
            format!("{mins}m{sec_part}s")
        } else {
            format!("{}h{}m{sec_part}s", mins / 60, mins % 60)
        }
    };
    if neg {
        format!("-{s}")
    } else {
        s
    }
}
