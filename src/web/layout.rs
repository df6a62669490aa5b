//! The page shell every page shares (head, navigation, skip link, the one
//! stylesheet) and the small pieces pages are made of: escaped text, label
//! chips, times "3 min ago", durations. Every value that reaches HTML goes
//! through [`esc`], here or in the page that builds it.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};

use crate::labels::Labels;

/// The stylesheet, compiled in (light and dark by `prefers-color-scheme`).
pub const CSS: &str = include_str!("style.css");

/// The pages' Content-Security-Policy: no scripts, styles and images from
/// this server only (inline styles: chart SVG and the deploy timeline),
/// forms post here only, no framing.
pub const CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    crate::chart::escape(s)
}

/// Escapes a value for a URL query string (then for HTML, as it sits in an
/// attribute).
pub fn url_arg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The pages in the navigation: (path, name).
const NAV: [(&str, &str); 7] = [
    ("/alerts", "Alerts"),
    ("/rules", "Rules"),
    ("/targets", "Targets"),
    ("/deploys", "Deploys"),
    ("/silences", "Silences"),
    ("/graph", "Graph"),
    ("/api/v1/alerts", "API"),
];

/// A whole page: `title` (already plain text, escaped here), the nav entry
/// marked current, and `body` (HTML the page built, values escaped).
pub fn page(title: &str, current: &str, body: &str) -> Response {
    page_with_head(title, current, "", body)
}

/// [`page`] with extra `<head>` elements (trusted HTML built by the caller).
pub fn page_with_head(title: &str, current: &str, head: &str, body: &str) -> Response {
    let mut nav = String::new();
    for (href, name) in NAV {
        let cur = if href == current { " aria-current=\"page\"" } else { "" };
        nav.push_str(&format!("<li><a href=\"{href}\"{cur}>{name}</a></li>"));
    }
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · forewarn</title><link rel=\"stylesheet\" href=\"/ui/style.css\">{head}</head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><a class=\"brand\" href=\"/\">forewarn</a><nav aria-label=\"Pages\"><ul>{nav}</ul></nav></header>\
         <main id=\"main\" tabindex=\"-1\">{body}</main></body></html>\n",
        t = esc(title),
    );
    let mut r = axum::response::Html(html).into_response();
    let h = r.headers_mut();
    // Pages are live views: never from a cache.
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    // Defence in depth: the pages have no script, so none may run (should
    // a value ever slip through unescaped), and no other site may frame
    // them to trick a click on "Create silence".
    h.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("same-origin"));
    r
}

/// A page that says what went wrong, with `status`.
pub fn error_page(status: StatusCode, title: &str, message: &str, current: &str) -> Response {
    let body = format!("<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>", esc(title), esc(message));
    let mut r = page(title, current, &body);
    *r.status_mut() = status;
    r
}

/// `GET /ui/style.css`.
pub async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], CSS).into_response()
}

/// Labels as chips, `name=value`, skipping `skip`.
pub fn chips(labels: &Labels, skip: &[&str]) -> String {
    labels
        .iter()
        .filter(|(k, _)| !skip.contains(k))
        .map(|(k, v)| format!("<span class=\"chip\"><b>{}</b>={}</span>", esc(k), esc(v)))
        .collect()
}

/// `2026-12-05 18:30:27 UTC` in a `<time>` element.
pub fn time(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) if ms > 0 => format!(
            "<time datetime=\"{}\">{}</time>",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            t.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        _ => "never".into(),
    }
}

/// RFC 3339, plain text.
pub fn rfc(ms: i64) -> String {
    crate::deploys::rfc3339(ms)
}

/// "3 min ago" (or "in 3 min" for the future).
pub fn ago(ms: i64, now: i64) -> String {
    let d = crate::deploys::words::duration(now - ms);
    if ms > now {
        format!("in {d}")
    } else {
        format!("{d} ago")
    }
}

/// A duration in words ("7 min", "2 h 5 min").
pub fn span(ms: i64) -> String {
    crate::deploys::words::duration(ms)
}

/// Seconds as a short human figure: "1.2 ms", "3.40 s".
pub fn seconds(s: f64) -> String {
    if !s.is_finite() {
        "–".into()
    } else if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_chips_and_urls() {
        let l = Labels::from_pairs([("alertname", "A"), ("x", "<script>alert(1)</script>\"'")]);
        let c = chips(&l, &["alertname"]);
        assert!(!c.contains("<script>") && c.contains("&lt;script&gt;") && c.contains("&quot;&#39;"), "{c}");
        assert!(!c.contains("alertname"));
        assert_eq!(url_arg("a=\"b c\"&<"), "a%3D%22b%20c%22%26%3C");
    }

    #[test]
    fn times_read_as_people_say_them() {
        assert_eq!(ago(0, 180_000), "3 min ago");
        assert_eq!(ago(240_000, 0), "in 4 min");
        assert_eq!(seconds(0.0023), "2.3 ms");
        assert!(time(1_700_000_000_000).contains("2023-11-14 22:13:20 UTC"));
        assert_eq!(time(0), "never");
    }
}
