//! Log lines on stderr as an operator ships them, like Prometheus's
//! `--log.format` and `--log.level`: logfmt (`ts=… level=info msg="…" key=value`)
//! or JSON (one object per line). Each line carries the event's fields; colour
//! only when stderr is a terminal (and `NO_COLOR` is unset), so a file or
//! journald gets plain text.

use std::fmt::Write as _;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `--log.format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `ts=… level=info msg="…" key=value`, values with spaces, quotes or `=` quoted.
    #[default]
    Logfmt,
    /// One JSON object per line: `{"ts":…,"level":"info","msg":"…","key":"value"}`.
    Json,
}

/// `--log.level`: this level and the more severe ones are logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("RUST_LOG: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("a log subscriber is already installed: {0}")]
    Init(String),
}

/// The filter: `RUST_LOG` when set, else `--log.level`, else `default` (an
/// `EnvFilter` directive such as `info` or `warn,forewarn=warn`).
pub fn filter(level: Option<LogLevel>, default: &str) -> Result<tracing_subscriber::EnvFilter, LogError> {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => Ok(tracing_subscriber::EnvFilter::try_new(v)?),
        _ => Ok(tracing_subscriber::EnvFilter::try_new(level.map_or(default, |l| l.as_str()))?),
    }
}

/// Whether stderr gets colour: a terminal, and `NO_COLOR` unset.
pub fn stderr_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber writing `format` lines to stderr.
pub fn init(format: LogFormat, level: Option<LogLevel>, default: &str) -> Result<(), LogError> {
    tracing_subscriber::fmt()
        .with_env_filter(filter(level, default)?)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(Lines { format, colour: stderr_colour() })
        .try_init()
        .map_err(|e| LogError::Init(e.to_string()))
}

/// The event formatter for both formats.
#[derive(Clone, Copy, Debug)]
pub struct Lines {
    pub format: LogFormat,
    /// Colour the level (logfmt only; JSON never carries escape codes).
    pub colour: bool,
}

/// Keys the line itself uses; an event field with one of these names is
/// written as `field_<name>` so nothing is overwritten.
const RESERVED: [&str; 4] = ["ts", "level", "msg", "source"];

enum Value {
    Str(String),
    /// A number or bool, written bare in both formats.
    Raw(String),
}

#[derive(Default)]
struct Fields {
    msg: String,
    fields: Vec<(String, Value)>,
}

impl Fields {
    fn push(&mut self, field: &Field, v: Value) {
        let name = field.name();
        if name == "message" {
            self.msg = match v {
                Value::Str(s) | Value::Raw(s) => s,
            };
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        let key = if RESERVED.contains(&name) { format!("field_{name}") } else { name.to_string() };
        self.fields.push((key, v));
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, Value::Str(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::Str(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::Raw(value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::Raw(value.to_string()));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those go as strings.
        if value.is_finite() {
            self.push(field, Value::Raw(value.to_string()));
        } else {
            self.push(field, Value::Str(value.to_string()));
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Raw(value.to_string()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, Value::Str(value.to_string()));
    }
}

fn level_str(l: &Level) -> &'static str {
    match *l {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

fn level_colour(l: &Level) -> &'static str {
    match *l {
        Level::TRACE => "35",
        Level::DEBUG => "34",
        Level::INFO => "32",
        Level::WARN => "33",
        Level::ERROR => "31",
    }
}

/// Appends `v` as a logfmt value: bare when it is non-empty and has no
/// space, control character, `"` or `=`; else quoted with `\"`, `\\`,
/// `\n`, `\r`, `\t` and `\u{…}` escapes.
pub fn logfmt_value(out: &mut String, v: &str) {
    let needs_quotes = v.is_empty() || v.chars().any(|c| c <= ' ' || c == '"' || c == '=' || c.is_control());
    if !needs_quotes {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A logfmt key: characters that would break the `key=value` pair
/// (space, `=`, `"`, control characters) become `_`.
fn logfmt_key(out: &mut String, k: &str) {
    if k.is_empty() {
        out.push('_');
    }
    out.extend(k.chars().map(|c| if c <= ' ' || c == '=' || c == '"' || c.is_control() { '_' } else { c }));
}

impl Lines {
    /// The line for one event, without the newline.
    fn line(&self, ts: &str, level: &Level, source: &str, f: Fields) -> String {
        match self.format {
            LogFormat::Logfmt => {
                let mut out = String::with_capacity(128);
                out.push_str("ts=");
                out.push_str(ts);
                out.push_str(" level=");
                if self.colour {
                    let _ = write!(out, "\x1b[{}m{}\x1b[0m", level_colour(level), level_str(level));
                } else {
                    out.push_str(level_str(level));
                }
                out.push_str(" source=");
                logfmt_value(&mut out, source);
                out.push_str(" msg=");
                logfmt_value(&mut out, &f.msg);
                for (k, v) in &f.fields {
                    out.push(' ');
                    logfmt_key(&mut out, k);
                    out.push('=');
                    match v {
                        Value::Str(s) | Value::Raw(s) => logfmt_value(&mut out, s),
                    }
                }
                out
            }
            LogFormat::Json => {
                // Written by hand to keep ts, level, source, msg first, then
                // the fields in the order the event gives them.
                let js = |s: &str| serde_json::Value::from(s).to_string();
                let mut out = String::with_capacity(160);
                let _ = write!(
                    out,
                    "{{\"ts\":{},\"level\":\"{}\",\"source\":{},\"msg\":{}",
                    js(ts),
                    level_str(level),
                    js(source),
                    js(&f.msg)
                );
                for (k, v) in &f.fields {
                    out.push(',');
                    out.push_str(&js(k));
                    out.push(':');
                    match v {
                        Value::Str(s) => out.push_str(&js(s)),
                        // Raw holds a bool, an integer or a finite float, each valid JSON as it is.
                        Value::Raw(s) => out.push_str(s),
                    }
                }
                out.push('}');
                out
            }
        }
    }
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        let mut f = Fields::default();
        event.record(&mut f);
        let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        writeln!(w, "{}", self.line(&ts, meta.level(), meta.target(), f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(format: LogFormat, colour: bool, f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let b2 = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || b2.clone())
            .with_ansi(false)
            .event_format(Lines { format, colour })
            .finish();
        tracing::subscriber::with_default(sub, f);
        let out = buf.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8(out).expect("utf-8 log")
    }

    fn emit() {
        let url = "http://127.0.0.1:1/metrics";
        tracing::warn!(target = %url, job = "app x", attempts = 3u32, ok = false, ratio = 0.5, level = "dup", "scrape failed");
        tracing::error!(error = %"quote \" and = and\nnewline", "reload failed");
        tracing::info!("plain");
    }

    #[test]
    fn logfmt_lines_quote_what_needs_it() {
        let out = capture(LogFormat::Logfmt, false, emit);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("ts=20"), "{}", lines[0]);
        assert!(
            lines[0].ends_with(
                " level=warn source=forewarn::logging::tests msg=\"scrape failed\" target=http://127.0.0.1:1/metrics \
                 job=\"app x\" attempts=3 ok=false ratio=0.5 field_level=dup"
            ),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].ends_with(r#" level=error source=forewarn::logging::tests msg="reload failed" error="quote \" and = and\nnewline""#),
            "{}",
            lines[1]
        );
        assert!(lines[2].ends_with(" level=info source=forewarn::logging::tests msg=plain"), "{}", lines[2]);
        assert!(!out.contains('\x1b'));
    }

    #[test]
    fn logfmt_colours_the_level_only_when_asked() {
        let out = capture(LogFormat::Logfmt, true, || tracing::warn!("w"));
        assert!(out.contains("level=\x1b[33mwarn\x1b[0m"), "{out:?}");
    }

    #[test]
    fn json_lines_parse_with_typed_fields() {
        let out = capture(LogFormat::Json, true, emit);
        assert!(!out.contains('\x1b'), "JSON never carries colour: {out:?}");
        let lines: Vec<serde_json::Value> =
            out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
        assert_eq!(lines.len(), 3);
        assert!(out.starts_with("{\"ts\":\"20"), "{out}");
        assert!(
            out.contains(
                ",\"level\":\"warn\",\"source\":\"forewarn::logging::tests\",\"msg\":\"scrape failed\",\"target\":"
            ),
            "{out}"
        );
        let w = &lines[0];
        assert_eq!(w["level"], "warn");
        assert_eq!(w["msg"], "scrape failed");
        assert_eq!(w["target"], "http://127.0.0.1:1/metrics");
        assert_eq!(w["job"], "app x");
        assert_eq!(w["attempts"], 3);
        assert_eq!(w["ok"], false);
        assert_eq!(w["ratio"], 0.5);
        assert_eq!(w["field_level"], "dup");
        assert_eq!(w["source"], "forewarn::logging::tests");
        assert!(w["ts"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(lines[1]["error"], "quote \" and = and\nnewline");
        assert_eq!(lines[2]["msg"], "plain");
    }

    #[test]
    fn logfmt_values() {
        let q = |v: &str| {
            let mut s = String::new();
            logfmt_value(&mut s, v);
            s
        };
        assert_eq!(q("abc"), "abc");
        assert_eq!(q(""), "\"\"");
        assert_eq!(q("a b"), "\"a b\"");
        assert_eq!(q("a=b"), "\"a=b\"");
        assert_eq!(q("a\\b"), "a\\b");
        assert_eq!(q("a\\ b"), "\"a\\\\ b\"");
        assert_eq!(q("x\u{1}"), "\"x\\u{1}\"");
        let mut k = String::new();
        logfmt_key(&mut k, "a b=c");
        assert_eq!(k, "a_b_c");
    }

    #[test]
    fn level_flag_and_default() {
        // RUST_LOG is not set by the test runner; when it is, it wins by design.
        if std::env::var("RUST_LOG").is_ok_and(|v| !v.trim().is_empty()) {
            return;
        }
        assert_eq!(filter(Some(LogLevel::Warn), "info").map(|f| f.to_string()).ok().as_deref(), Some("warn"));
        assert_eq!(filter(None, "info").map(|f| f.to_string()).ok().as_deref(), Some("info"));
    }
}
