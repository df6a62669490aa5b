//! Byte-level lexing of a single exposition line: metric and label names,
//! quoted strings, numbers, timestamps, exemplars and `#` lines.
//!
//! Everything here works on one line (without its `\n`) and borrows from it;
//! positions in errors are byte offsets into that line so the caller can turn
//! them into `line:col`. Nothing here knows about metric families or types —
//! that is the caller's (and `om.rs`'s) business.

use std::borrow::Cow;

use super::{Format, MetricType};

/// A lexing failure: byte offset within the line and a message.
#[derive(Debug)]
pub(super) struct LineError {
    pub pos: usize,
    pub msg: Cow<'static, str>,
}

impl LineError {
    pub(super) fn new(pos: usize, msg: impl Into<Cow<'static, str>>) -> LineError {
        LineError { pos, msg: msg.into() }
    }
}

pub(super) type LResult<T> = Result<T, LineError>;

fn err<T>(pos: usize, msg: impl Into<Cow<'static, str>>) -> LResult<T> {
    Err(LineError::new(pos, msg))
}

/// A label as lexed: the name still in its raw (possibly escaped, if it was
/// quoted) form, the value already unescaped.
pub(super) type RawLabel<'b> = (&'b str, Cow<'b, str>);

// Character classes, as a table because these tests sit in the innermost loop.
const METRIC_START: u8 = 1;
const METRIC_CHAR: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL_CHAR: u8 = 8;

static CLASS: [u8; 256] = build_class();

const fn build_class() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut v = 0;
        if alpha || b == b':' {
            v |= METRIC_START | METRIC_CHAR;
        }
        if digit {
            v |= METRIC_CHAR | LABEL_CHAR;
        }
        if alpha {
            v |= LABEL_START | LABEL_CHAR;
        }
        t[c] = v;
        c += 1;
    }
    t
}

#[inline]
pub(super) fn is_metric_start(b: u8) -> bool {
    CLASS[b as usize] & METRIC_START != 0
}

#[inline]
fn is_metric_char(b: u8) -> bool {
    CLASS[b as usize] & METRIC_CHAR != 0
}

#[inline]
fn is_label_start(b: u8) -> bool {
    CLASS[b as usize] & LABEL_START != 0
}

/// Offset of the first byte in `b` that is not a name character (or
/// `b.len()`), eight bytes per step: `[A-Za-z0-9_]`, plus `:` when `COLON`
/// (metric names). Names end at their first other byte whatever it is, so
/// one pass finds both the end and — by what stops it — whether the name is
/// followed by something legal; the caller checks that byte.
#[inline]
fn name_len<const COLON: bool>(b: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    // Per byte of `t` (high bit clear): high bit set iff t >= lo, or t > hi.
    const fn ge(lo: u8) -> u64 {
        LO * (0x80 - lo as u64)
    }
    const fn gt(hi: u8) -> u64 {
        LO * (0x7F - hi as u64)
    }
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let w = u64::from_le_bytes(w);
        // Masking to 7 bits keeps the additions from carrying across bytes;
        // bytes with the high bit set are never name characters.
        let t = w & LOW7;
        let l = t | (LO * 0x20); // ASCII letters to lower case
        let letter = (l + ge(b'a')) & !(l + gt(b'z'));
        let last = if COLON { b':' } else { b'9' };
        let digit = (t + ge(b'0')) & !(t + gt(last));
        // `u` is zero exactly at '_', and only a zero byte stays below 0x80
        // when 0x7F is added.
        let u = t ^ (LO * u64::from(b'_'));
        let under = !(u + LOW7);
        let ok = (letter | digit | under) & !w & HI;
        if ok != HI {
            return at + ((!ok & HI).trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let class = if COLON { METRIC_CHAR } else { LABEL_CHAR };
    at + chunks.remainder().iter().position(|&c| CLASS[c as usize] & class == 0).unwrap_or(chunks.remainder().len())
}

/// Turns a byte slice into `&str`, reporting the first invalid byte.
fn utf8<'b>(s: &'b [u8], base: usize, what: &str) -> LResult<&'b str> {
    std::str::from_utf8(s).map_err(|e| LineError::new(base + e.valid_up_to(), format!("invalid UTF-8 in {what}")))
}

/// Short, printable rendering of a token for error messages (never the whole
/// line: bodies are untrusted and lines can be megabytes long).
pub(super) fn shown(tok: &[u8]) -> String {
    let cut = &tok[..tok.len().min(40)];
    let mut s = format!("{:?}", String::from_utf8_lossy(cut));
    if cut.len() < tok.len() {
        s.push('…');
    }
    s
}

/// Offset of the first `"` or `\\` in `b` (or `b.len()`), eight bytes at a
/// time: label values are the longest tokens on a typical line.
pub(super) fn find_quote_or_backslash(b: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QU: u64 = LO * b'"' as u64;
    const BS: u64 = LO * b'\\' as u64;
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let w = u64::from_le_bytes(w);
        let (x, y) = (w ^ QU, w ^ BS);
        // Zero-byte detection; exact for the lowest match.
        let z = (x.wrapping_sub(LO) & !x | y.wrapping_sub(LO) & !y) & HI;
        if z != 0 {
            return at + (z.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + chunks.remainder().iter().position(|&c| c == b'"' || c == b'\\').unwrap_or(chunks.remainder().len())
}

/// A quoted string as found on the line (without the quotes).
pub(super) struct Quoted<'b> {
    pub raw: &'b str,
    pub escaped: bool,
}

impl<'b> Quoted<'b> {
    /// The value with `\\`, `\"` and `\n` resolved; borrowed unless a
    /// backslash was present (the common case costs no allocation).
    pub(super) fn decode(&self) -> Cow<'b, str> {
        if self.escaped {
            Cow::Owned(unescape(self.raw, true))
        } else {
            Cow::Borrowed(self.raw)
        }
    }
}

/// Resolves escapes. `quote` says whether `\"` is an escape (label values,
/// quoted names, OpenMetrics HELP) or literal (Prometheus 0.0.4 HELP, which only
/// escapes backslash and newline). Unknown escapes are kept verbatim, which is
/// what the OpenMetrics ABNF (`BS normal-char`) and Prometheus both do.
pub(super) fn unescape(raw: &str, quote: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') if quote => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[derive(Clone)]
pub(super) struct Cursor<'b> {
    pub s: &'b [u8],
    /// The line as `&str` when it is valid UTF-8 (nearly always): tokens are
    /// then sliced from it without validating each one again.
    st: Option<&'b str>,
    pub pos: usize,
}

impl<'b> Cursor<'b> {
    pub(super) fn new(s: &'b [u8]) -> Cursor<'b> {
        Cursor { s, st: std::str::from_utf8(s).ok(), pos: 0 }
    }

    /// A cursor over `s` whose text the caller already has (`text`, when
    /// given, is `s` as `&str`); `None` re-checks `s` here.
    pub(super) fn with_text(s: &'b [u8], text: Option<&'b str>) -> Cursor<'b> {
        match text {
            Some(st) if st.len() == s.len() => Cursor { s, st: Some(st), pos: 0 },
            _ => Cursor::new(s),
        }
    }

    /// `s[a..b]` as `&str`, or an error at the first invalid byte.
    #[inline(always)]
    fn text(&self, a: usize, b: usize, what: &str) -> LResult<&'b str> {
        if let Some(t) = self.st.and_then(|st| st.get(a..b)) {
            return Ok(t);
        }
        self.text_slow(a, b, what)
    }

    /// Out of line so the common case above inlines into every token.
    #[cold]
    #[inline(never)]
    fn text_slow(&self, a: usize, b: usize, what: &str) -> LResult<&'b str> {
        utf8(&self.s[a..b], a, what)
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    #[inline]
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    #[inline]
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skips spaces and tabs; says whether there were any.
    #[inline]
    pub(super) fn skip_blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Text up to the next space (or tab too, if `tabs`) or the end; `None`
    /// if it is not valid UTF-8 (then it can't be a number either).
    #[inline]
    fn token(&mut self, tabs: bool) -> (&'b [u8], Option<&'b str>) {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' || (tabs && b == b'\t') {
                break;
            }
            self.pos += 1;
        }
        let raw = &self.s[start..self.pos];
        (raw, self.text(start, self.pos, "number").ok())
    }

    /// An unquoted metric name; the caller has checked the first byte.
    /// Names are long (node_exporter's run to 40 bytes and more), so the end
    /// is found eight bytes at a time, in the one pass that also validates.
    #[inline]
    fn metric_name(&mut self) -> LResult<&'b str> {
        let start = self.pos;
        self.pos = start + name_len::<true>(&self.s[start..]);
        self.text(start, self.pos, "metric name")
    }

    /// An unquoted label name; the caller has checked the first byte.
    #[inline]
    fn label_name(&mut self) -> LResult<&'b str> {
        let start = self.pos;
        self.pos = start + name_len::<false>(&self.s[start..]);
        self.text(start, self.pos, "label name")
    }

    /// A double-quoted string; the cursor is just past the opening quote.
    /// `strict_escapes` (Prometheus 0.0.4) rejects escapes other than `\\`,
    /// `\"` and `\n`, as prometheus/common's parser does; OpenMetrics allows
    /// them.
    fn quoted(&mut self, strict_escapes: bool, what: &'static str) -> LResult<Quoted<'b>> {
        let s = self.s;
        let start = self.pos;
        let mut i = start;
        let mut escaped = false;
        loop {
            i += find_quote_or_backslash(&s[i..]);
            match s.get(i) {
                None => {
                    return err(
                        start.saturating_sub(1),
                        format!("unterminated {what}: missing closing '\"' before the end of the line"),
                    )
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    match s.get(i + 1) {
                        None => {
                            return err(
                                start.saturating_sub(1),
                                format!("unterminated {what}: missing closing '\"' before the end of the line"),
                            )
                        }
                        Some(b'\\' | b'"' | b'n') => {}
                        Some(_) if !strict_escapes => {}
                        Some(_) => {
                            return err(
                                i,
                                format!("invalid escape sequence in {what} (only \\\\, \\\" and \\n are allowed)"),
                            )
                        }
                    }
                    escaped = true;
                    i += 2;
                }
                // Unreachable: the scan stops only at '"', '\\' or the end.
                Some(_) => i += 1,
            }
        }
        let raw = self.text(start, i, what)?;
        self.pos = i + 1;
        Ok(Quoted { raw, escaped })
    }
}

/// Timestamp of a sample as written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Ts {
    None,
    /// Prometheus text format: integer milliseconds.
    Millis(i64),
    /// OpenMetrics: (float) seconds.
    Seconds(f64),
}

/// What `sample` found besides the labels (which go into the caller's buffer).
pub(super) struct RawSample<'b> {
    /// Raw name; if `name_escaped` it still contains escape sequences.
    pub name: &'b str,
    pub name_escaped: bool,
    /// Some label name was quoted with escapes, or there were so many labels
    /// that the duplicate check was left to the caller (which then works on
    /// decoded names with a hash set).
    pub labels_need_care: bool,
    pub value: f64,
    pub ts: Ts,
    pub exemplar: bool,
    /// Where the series text (name and label set, as written) ends on the
    /// line: the span a scraper keys its cache on.
    pub series_end: usize,
}

/// Above this many labels the in-line duplicate check (quadratic) is skipped
/// and the caller does a hashed one, so a hostile line can't burn CPU.
const LINEAR_DUP_CHECK_MAX: usize = 32;

/// Lexes a sample line starting at the cursor (leading blanks already skipped
/// in Prometheus format). Labels are appended to `labels` (cleared by the
/// caller); `ex` is scratch space for exemplar labels.
pub(super) fn sample<'b>(
    cur: &mut Cursor<'b>,
    fmt: Format,
    labels: &mut Vec<RawLabel<'b>>,
    ex: &mut Vec<RawLabel<'b>>,
) -> LResult<RawSample<'b>> {
    let om = fmt == Format::OpenMetrics;
    let name_pos = cur.pos;
    let mut name: Option<(&'b str, bool)> = None;
    match cur.peek() {
        Some(b'{') => {}
        Some(c) if is_metric_start(c) => name = Some((cur.metric_name()?, false)),
        _ => return err(cur.pos, "expected a metric name or '{'"),
    }
    let mut series_end = cur.pos;
    // Prometheus allows blanks between the name and '{' (or the value).
    let mut blanks = !om && cur.skip_blanks();
    let mut care = false;
    if cur.eat(b'{') {
        care = label_set(cur, om, labels, Some(&mut name))?;
        series_end = cur.pos;
        // The closing brace separates the value as blanks do.
        blanks = true;
    }
    let Some((name, name_escaped)) = name else {
        return err(name_pos, "metric name not set");
    };
    let (value, ts, exemplar) = sample_tail(cur, om, blanks, ex)?;
    Ok(RawSample { name, name_escaped, labels_need_care: care, value, ts, exemplar, series_end })
}

/// The scraper's fast path: a sample line whose series text is a plain
/// metric name and, right after it, a label set, lexed without its labels
/// (they are only skipped over, see [`skip_label_set`]). A scraper that
/// has seen the same series text before (under the same family type) needs
/// only the value: the labels were checked when it first saw them, and the
/// same bytes check the same. Returns the name, where the series text ends,
/// and the value, timestamp and exemplar flag; `None` sends the line to the
/// full lexer ([`sample`]), which also words any error.
pub(super) fn sample_unlabelled<'b>(
    cur: &mut Cursor<'b>,
    fmt: Format,
    ex: &mut Vec<RawLabel<'b>>,
) -> Option<(&'b str, usize, f64, Ts, bool)> {
    let om = fmt == Format::OpenMetrics;
    if !cur.peek().is_some_and(is_metric_start) {
        return None;
    }
    let name = cur.metric_name().ok()?;
    let separated = cur.eat(b'{');
    if separated && !skip_label_set(cur) {
        return None;
    }
    let series_end = cur.pos;
    let (value, ts, exemplar) = sample_tail(cur, om, separated, ex).ok()?;
    Some((name, series_end, value, ts, exemplar))
}

/// Moves the cursor, just past a label set's `{`, to just past its closing
/// `}` without lexing the labels: the first `}` outside double quotes, where
/// a backslash escapes the byte after it (as in [`Cursor::quoted`]). False,
/// with the cursor somewhere inside, if the line ends first.
pub(super) fn skip_label_set(cur: &mut Cursor<'_>) -> bool {
    let s = cur.s;
    let mut i = cur.pos;
    while let Some(&b) = s.get(i) {
        match b {
            b'}' => {
                cur.pos = i + 1;
                return true;
            }
            b'"' => {
                i += 1;
                loop {
                    let Some(rest) = s.get(i..) else { return false };
                    i += find_quote_or_backslash(rest);
                    match s.get(i) {
                        None => return false,
                        Some(b'"') => break,
                        Some(_) => i += 2,
                    }
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    cur.pos = i;
    false
}

/// The rest of a sample line after its series text: value, timestamp and
/// (OpenMetrics) exemplar. `separated`: blanks or a closing brace came
/// right before the cursor.
fn sample_tail<'b>(
    cur: &mut Cursor<'b>,
    om: bool,
    separated: bool,
    ex: &mut Vec<RawLabel<'b>>,
) -> LResult<(f64, Ts, bool)> {
    if om {
        if !cur.eat(b' ') {
            return err(cur.pos, "expected a single space before the value");
        }
    } else if !(cur.skip_blanks() || separated) {
        // prometheus/common accepts `name{...}1`, but a name must be followed
        // by whitespace or a brace.
        return err(cur.pos, "expected whitespace or '{' after the metric name");
    }
    let vpos = cur.pos;
    let (tok, text) = cur.token(!om);
    if tok.is_empty() {
        return err(vpos, "expected a value");
    }
    let Some(value) = text.and_then(parse_number) else {
        return err(vpos, format!("invalid value {}", shown(tok)));
    };

    let mut ts = Ts::None;
    let mut exemplar = false;
    if om {
        if cur.eat(b' ') {
            if cur.peek() != Some(b'#') {
                let tpos = cur.pos;
                let (t, text) = cur.token(false);
                match text.and_then(parse_real) {
                    Some(secs) => ts = Ts::Seconds(secs),
                    None if t.is_empty() => return err(tpos, "expected a timestamp (no trailing whitespace allowed)"),
                    None => return err(tpos, format!("invalid timestamp {}", shown(t))),
                }
                if cur.eat(b' ') && cur.peek() != Some(b'#') {
                    return err(cur.pos, "expected '# ' and an exemplar after the timestamp");
                }
            }
            if cur.peek() == Some(b'#') {
                exemplar_(cur, ex)?;
                exemplar = true;
            }
        }
        if !cur.at_end() {
            return err(cur.pos, "unexpected text after the value");
        }
    } else {
        cur.skip_blanks();
        if !cur.at_end() {
            let tpos = cur.pos;
            let (t, text) = cur.token(true);
            let Some(ms) = text.and_then(parse_int) else {
                return err(tpos, format!("invalid timestamp {} (expected integer milliseconds)", shown(t)));
            };
            ts = Ts::Millis(ms);
            cur.skip_blanks();
            if !cur.at_end() {
                return err(cur.pos, "unexpected text after the timestamp");
            }
        }
    }
    Ok((value, ts, exemplar))
}

/// Exemplar after a sample (OpenMetrics): `# {labels} value [timestamp]`.
/// Parsed and validated, then dropped.
fn exemplar_<'b>(cur: &mut Cursor<'b>, ex: &mut Vec<RawLabel<'b>>) -> LResult<()> {
    let start = cur.pos;
    cur.pos += 1; // '#'
    if !cur.eat(b' ') {
        return err(cur.pos, "expected a space after '#' before the exemplar");
    }
    if !cur.eat(b'{') {
        return err(cur.pos, "expected '{' opening the exemplar's labels");
    }
    ex.clear();
    label_set(cur, true, ex, None)?;
    let chars: usize = ex.iter().map(|(k, v)| k.chars().count() + v.chars().count()).sum();
    if chars > 128 {
        return err(start, format!("exemplar labels are {chars} characters long; at most 128 are allowed"));
    }
    if !cur.eat(b' ') {
        return err(cur.pos, "expected a space and the exemplar value");
    }
    let vpos = cur.pos;
    let (v, text) = cur.token(false);
    if text.and_then(parse_number).is_none() {
        return err(vpos, format!("invalid exemplar value {}", shown(v)));
    }
    if cur.eat(b' ') {
        let tpos = cur.pos;
        let (t, text) = cur.token(false);
        if text.and_then(parse_real).is_none() {
            return err(tpos, format!("invalid exemplar timestamp {}", shown(t)));
        }
    }
    Ok(())
}

/// Lexes labels after `{` up to and including `}`. A bare quoted string
/// (not followed by `=`) is the metric name (Prometheus 3 / UTF-8 names); it
/// goes into `name` when that is given, and is an error otherwise.
/// Returns whether the caller must decode label names / check duplicates.
fn label_set<'b>(
    cur: &mut Cursor<'b>,
    om: bool,
    out: &mut Vec<RawLabel<'b>>,
    mut name: Option<&mut Option<(&'b str, bool)>>,
) -> LResult<bool> {
    let mut care = false;
    let mut need_item = false;
    loop {
        if !om {
            cur.skip_blanks();
        }
        match cur.peek() {
            Some(b'}') => {
                if om && need_item {
                    return err(cur.pos, "expected a label after ','");
                }
                cur.pos += 1;
                return Ok(care);
            }
            None => return err(cur.pos, "unterminated label set: missing '}'"),
            _ => {}
        }
        let item = cur.pos;
        'item: {
            let (lname, lname_escaped) = match cur.peek() {
                Some(b'"') => {
                    cur.pos += 1;
                    let q = cur.quoted(!om, "quoted name")?;
                    if !om {
                        cur.skip_blanks();
                    }
                    if cur.peek() != Some(b'=') {
                        let Some(slot) = name.as_deref_mut() else {
                            return err(item, "expected a label name, not a quoted metric name");
                        };
                        if slot.is_some() {
                            return err(item, "metric name given more than once");
                        }
                        if q.raw.is_empty() {
                            return err(item, "empty metric name");
                        }
                        *slot = Some((q.raw, q.escaped));
                        break 'item;
                    }
                    if q.raw.is_empty() {
                        return err(item, "empty label name");
                    }
                    (q.raw, q.escaped)
                }
                Some(c) if is_label_start(c) => (cur.label_name()?, false),
                _ => return err(item, "expected a label name"),
            };
            if !om {
                cur.skip_blanks();
            }
            if !cur.eat(b'=') {
                return err(cur.pos, "expected '=' after the label name");
            }
            if !om {
                cur.skip_blanks();
            }
            if !cur.eat(b'"') {
                return err(cur.pos, "expected '\"' opening the label value");
            }
            let value = cur.quoted(!om, "label value")?.decode();
            if lname_escaped || out.len() >= LINEAR_DUP_CHECK_MAX {
                care = true;
            } else {
                // Length and first byte first: most distinct names differ there,
                // which spares a memcmp call per pair.
                let same =
                    |k: &str| k.len() == lname.len() && k.as_bytes().first() == lname.as_bytes().first() && k == lname;
                if same("__name__") {
                    return err(item, "label name \"__name__\" is reserved");
                }
                if out.iter().any(|(k, _)| same(k)) {
                    return err(item, format!("duplicate label name {lname:?}"));
                }
            }
            out.push((lname, value));
        }
        let blanks = !om && cur.skip_blanks();
        match cur.peek() {
            Some(b',') => {
                cur.pos += 1;
                need_item = true;
            }
            Some(b'}') => need_item = false,
            // Prometheus' own parser accepts labels separated by blanks only.
            Some(c) if blanks && (is_label_start(c) || c == b'"') => need_item = false,
            _ => return err(cur.pos, "expected ',' or '}' after a label"),
        }
    }
}

/// `# ...` line in OpenMetrics: only TYPE, HELP, UNIT and EOF exist.
pub(super) enum Meta<'b> {
    Type(Cow<'b, str>, MetricType),
    Help(Cow<'b, str>, Cow<'b, str>),
    Unit(Cow<'b, str>, &'b str),
    Eof,
}

/// A metric name in a metadata line: plain or quoted.
fn meta_name<'b>(cur: &mut Cursor<'b>, strict_escapes: bool) -> LResult<Cow<'b, str>> {
    match cur.peek() {
        Some(b'"') => {
            let at = cur.pos;
            cur.pos += 1;
            let q = cur.quoted(strict_escapes, "quoted metric name")?;
            if q.raw.is_empty() {
                return err(at, "empty metric name");
            }
            Ok(q.decode())
        }
        Some(c) if is_metric_start(c) => Ok(Cow::Borrowed(cur.metric_name()?)),
        _ => err(cur.pos, "expected a metric name"),
    }
}

pub(super) fn om_comment<'b>(cur: &mut Cursor<'b>) -> LResult<Meta<'b>> {
    let s = cur.s;
    if s == b"# EOF" {
        return Ok(Meta::Eof);
    }
    let kw = if s.starts_with(b"# TYPE ") {
        b'T'
    } else if s.starts_with(b"# HELP ") {
        b'H'
    } else if s.starts_with(b"# UNIT ") {
        b'U'
    } else {
        return err(
            0,
            "invalid line: in OpenMetrics only '# TYPE', '# HELP', '# UNIT' and '# EOF' lines may start with '#'",
        );
    };
    cur.pos = 7;
    let name = meta_name(cur, false)?;
    if !cur.eat(b' ') {
        return err(cur.pos, "expected a single space after the metric name");
    }
    let at = cur.pos;
    let rest = &s[at..];
    match kw {
        b'T' => {
            let t = cur.text(at, s.len(), "metric type")?;
            match MetricType::from_openmetrics(t) {
                Some(t) => Ok(Meta::Type(name, t)),
                None => err(at, format!("invalid metric type {}", shown(rest))),
            }
        }
        b'H' => {
            let h = cur.text(at, s.len(), "HELP text")?;
            let help = if h.contains('\\') { Cow::Owned(unescape(h, true)) } else { Cow::Borrowed(h) };
            Ok(Meta::Help(name, help))
        }
        _ => {
            if let Some(i) = rest.iter().position(|&b| !is_metric_char(b)) {
                return err(at + i, "invalid character in unit");
            }
            Ok(Meta::Unit(name, cur.text(at, s.len(), "unit")?))
        }
    }
}

/// `#` line in the Prometheus format: `# HELP name text`, `# TYPE name type`
/// or any other comment (`None`). Follows prometheus/common: blanks may
/// surround the keyword, and a HELP/TYPE with nothing after the name is
/// ignored like a plain comment.
pub(super) fn prom_comment<'b>(cur: &mut Cursor<'b>) -> LResult<Option<Meta<'b>>> {
    cur.pos += 1; // '#'
    cur.skip_blanks();
    let rest = &cur.s[cur.pos..];
    let is_type = if rest.starts_with(b"TYPE") {
        true
    } else if rest.starts_with(b"HELP") {
        false
    } else {
        return Ok(None);
    };
    cur.pos += 4;
    if !cur.skip_blanks() || cur.at_end() {
        // "# HELPER ..." or a bare "# HELP": just a comment.
        return Ok(None);
    }
    let name = match cur.peek() {
        Some(c) if c == b'"' || is_metric_start(c) => meta_name(cur, true)?,
        _ => return err(cur.pos, "invalid metric name in HELP/TYPE line"),
    };
    if cur.at_end() {
        return Ok(None);
    }
    if !cur.skip_blanks() {
        return err(cur.pos, "invalid metric name in HELP/TYPE line");
    }
    let at = cur.pos;
    let rest = &cur.s[at..];
    if is_type {
        let end = rest.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |i| i + 1);
        let t = cur.text(at, at + end, "metric type")?;
        match MetricType::from_prometheus(t) {
            Some(t) => Ok(Some(Meta::Type(name, t))),
            None => err(at, format!("unknown metric type {}", shown(&rest[..end]))),
        }
    } else {
        let h = cur.text(at, cur.s.len(), "HELP text")?;
        let help = if h.contains('\\') { Cow::Owned(unescape(h, false)) } else { Cow::Borrowed(h) };
        Ok(Some(Meta::Help(name, help)))
    }
}

/// `[sign] digits [. digits] [e [sign] digits]` with at least one mantissa
/// digit — the OpenMetrics `realnumber`. Rejects Go-isms that
/// `strconv.ParseFloat` would take (hex, underscores) and values that
/// overflow to infinity.
pub(super) fn parse_real(text: &str) -> Option<f64> {
    let tok = text.as_bytes();
    let mut i = 0;
    let neg = match tok.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    // Digits are accumulated while they are scanned (one pass); `m` wraps
    // harmlessly past 19 digits, where the fast paths below are not taken.
    let mut m: u64 = 0;
    let int_start = i;
    while let Some(d) = tok.get(i).filter(|d| d.is_ascii_digit()) {
        m = m.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
        i += 1;
    }
    let int_digits = i - int_start;
    // Fast path for the very common plain integer: exact in f64 up to 15 digits.
    if i == tok.len() && int_digits > 0 && int_digits <= 15 {
        let v = m as f64;
        return Some(if neg { -v } else { v });
    }
    let mut frac_digits = 0;
    if tok.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while let Some(d) = tok.get(i).filter(|d| d.is_ascii_digit()) {
            m = m.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            i += 1;
        }
        frac_digits = i - frac_start;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    let mut exp: i64 = 0;
    if matches!(tok.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exp_neg = tok.get(i) == Some(&b'-');
        if matches!(tok.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let e = i;
        while let Some(d) = tok.get(i).filter(|d| d.is_ascii_digit()) {
            // Clamped: only small exponents take the fast path anyway.
            exp = (exp * 10 + i64::from(d - b'0')).min(1 << 20);
            i += 1;
        }
        if i == e {
            return None;
        }
        if exp_neg {
            exp = -exp;
        }
    }
    if i != tok.len() {
        return None;
    }
    // Clinger's fast path: a mantissa below 2^53 and a power of ten up to
    // 1e22 are both exact in f64, so one multiply or divide is correctly
    // rounded — the same result as the full algorithm, at a fraction of
    // its cost. Covers Go's %g output (`1.234e+06`) and plain decimals.
    if int_digits + frac_digits <= 19 {
        let e = exp - frac_digits as i64;
        if m < (1 << 53) && (-22..=22).contains(&e) {
            let p = POW10[e.unsigned_abs() as usize];
            let v = if e >= 0 { m as f64 * p } else { m as f64 / p };
            return Some(if neg { -v } else { v });
        }
    }
    let v: f64 = text.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Powers of ten that are exact in f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// A sample value: a real number, `[sign]Inf`/`Infinity` or `NaN`
/// (case-insensitive, as in the OpenMetrics ABNF and Go's ParseFloat).
pub(super) fn parse_number(text: &str) -> Option<f64> {
    let tok = text.as_bytes();
    let (sign, rest) = match tok.first() {
        Some(b'+') => (1.0, &tok[1..]),
        Some(b'-') => (-1.0, &tok[1..]),
        _ => (0.0, tok),
    };
    match rest.first() {
        Some(c) if c.is_ascii_alphabetic() => {
            if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
                Some(if sign < 0.0 { f64::NEG_INFINITY } else { f64::INFINITY })
            } else if sign == 0.0 && rest.eq_ignore_ascii_case(b"nan") {
                Some(f64::NAN)
            } else {
                None
            }
        }
        _ => parse_real(text),
    }
}

/// Prometheus text timestamp: optionally negative integer milliseconds.
pub(super) fn parse_int(tok: &str) -> Option<i64> {
    let tok = tok.as_bytes();
    let (neg, digits) = match tok.first() {
        Some(b'-') => (true, &tok[1..]),
        _ => (false, tok),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        // Accumulate negatively so i64::MIN is representable.
        v = v.checked_mul(10)?.checked_sub(d)?;
    }
    if neg {
        Some(v)
    } else {
        v.checked_neg()
    }
}

#[cfg(test)]
mod name_scan_tests {
    use super::*;

    /// The word-at-a-time scan against the byte table, for every byte value
    /// at every offset of a name long enough to span whole words and a tail.
    #[test]
    fn name_len_matches_the_byte_table() {
        for stop in 0..=255u8 {
            for at in 0..21 {
                let mut b = b"abcXYZ_019:zzzzzzzzzzzzzzzz".to_vec();
                b.truncate(21);
                b[at] = stop;
                let want = |class: u8| b.iter().position(|&c| CLASS[c as usize] & class == 0).unwrap_or(b.len());
                assert_eq!(name_len::<true>(&b), want(METRIC_CHAR), "metric, byte {stop:#04x} at {at}");
                assert_eq!(name_len::<false>(&b), want(LABEL_CHAR), "label, byte {stop:#04x} at {at}");
            }
        }
    }
}
