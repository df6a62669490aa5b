//! Turning a [`Notification`] into a subject, a plain-text body and an HTML
//! alternative, for someone reading mail at 3 a.m.
//!
//! The subject keeps Alertmanager's default shape (`[FIRING:2] HighLatency
//! (checkout)`) so mail filters written for it keep working. Bodies put what
//! matters first: what is wrong (summary, description), since when, then the
//! labels and links. Everything here is pure (the clock is a parameter), so
//! the wording can be tested without a mail server. Custom templates will
//! plug in where [`BodySource`] is matched.

use chrono::{DateTime, Utc};

use super::config::{BodySource, EmailConfig, DEFAULT_SUBJECT_TEMPLATE};
use crate::labels::Labels;
use crate::notify::{Notification, NotifiedAlert, Status};

/// What a message says; a `None` body part is left out of the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Charts the HTML shows inline (`cid:`); empty without HTML.
    pub images: Vec<super::changes::InlineImage>,
}

/// Renders `n` for `cfg` as of now.
pub fn render(cfg: &EmailConfig, n: &Notification) -> Rendered {
    render_at(cfg, n, Utc::now())
}

/// Renders `n` for `cfg` as if the time were `now` (for "14m ago").
///
/// Sources that [`EmailConfig::validate`] would refuse fall back to the
/// built-in rendering; `send` validates first, so it never relies on that.
pub fn render_at(cfg: &EmailConfig, n: &Notification, now: DateTime<Utc>) -> Rendered {
    let subject = match cfg.header("Subject") {
        Some(s) if s.trim() != DEFAULT_SUBJECT_TEMPLATE && !s.contains("{{") => s.to_string(),
        Some(s) if s.trim() != DEFAULT_SUBJECT_TEMPLATE => custom("Subject", s, n).unwrap_or_else(|| subject(n)),
        _ => subject(n),
    };
    let text = match cfg.text_source().unwrap_or(BodySource::Builtin) {
        BodySource::Builtin => Some(text_body(n, &subject, now)),
        BodySource::Literal(t) => Some(t),
        BodySource::Template(t) => Some(custom("text", &t, n).unwrap_or_else(|| text_body(n, &subject, now))),
        BodySource::Omitted => None,
    };
    let mut images = Vec::new();
    let html = match cfg.html_source().unwrap_or(BodySource::Builtin) {
        BodySource::Builtin => {
            images = super::changes::images(n);
            Some(html_body(n, &subject, now, &images))
        }
        BodySource::Literal(t) => Some(t),
        BodySource::Template(t) => match custom("html", &t, n) {
            Some(h) => Some(h),
            None => {
                images = super::changes::images(n);
                Some(html_body(n, &subject, now, &images))
            }
        },
        BodySource::Omitted => None,
    };
    Rendered { subject, text, html, images }
}

/// What custom templates see as `.`: Alertmanager's notification data
/// (`.Status`, `.Receiver`, `.Alerts`, `.GroupLabels`, `.CommonLabels`,
/// `.CommonAnnotations`, `.ExternalURL`), with `.Firing` and `.Resolved`
/// standing for Alertmanager's `.Alerts.Firing` / `.Alerts.Resolved`.
/// Each alert has `.Status`, `.Labels`, `.Annotations`, `.StartsAt`,
/// `.EndsAt`, `.GeneratorURL`, `.Fingerprint`, and forewarn's `.Verdict`.
pub fn template_data(n: &Notification) -> crate::alerts::template::TemplateData {
    use crate::alerts::template::{TemplateData, TplValue};
    use std::collections::BTreeMap;
    let alert = |a: &crate::notify::NotifiedAlert| {
        let mut m = BTreeMap::new();
        m.insert("Status".to_string(), TplValue::from(a.status.as_str()));
        m.insert("Labels".to_string(), TplValue::from(&a.labels));
        m.insert("Annotations".to_string(), TplValue::from(&a.annotations));
        m.insert("StartsAt".to_string(), TplValue::from(a.starts_at.to_rfc3339()));
        m.insert("EndsAt".to_string(), TplValue::from(a.ends_at.map(|t| t.to_rfc3339()).unwrap_or_default()));
        m.insert("GeneratorURL".to_string(), TplValue::from(a.generator_url.as_str()));
        m.insert("Fingerprint".to_string(), TplValue::from(a.fingerprint.as_str()));
        let verdict = a.notes.as_ref().map(|x| x.verdict.clone()).unwrap_or_default();
        m.insert("Verdict".to_string(), TplValue::from(verdict));
        TplValue::Map(m)
    };
    let mut d = BTreeMap::new();
    d.insert("Receiver".to_string(), TplValue::from(n.receiver.as_str()));
    d.insert("Status".to_string(), TplValue::from(n.status.as_str()));
    d.insert("Alerts".to_string(), TplValue::List(n.alerts.iter().map(alert).collect()));
    d.insert("Firing".to_string(), TplValue::List(n.firing().map(alert).collect()));
    d.insert("Resolved".to_string(), TplValue::List(n.resolved().map(alert).collect()));
    d.insert("GroupLabels".to_string(), TplValue::from(&n.group_labels));
    d.insert("CommonLabels".to_string(), TplValue::from(&n.common_labels));
    d.insert("CommonAnnotations".to_string(), TplValue::from(&n.common_annotations));
    d.insert("ExternalURL".to_string(), TplValue::from(n.external_url.as_str()));
    TemplateData { vars: BTreeMap::new(), dot: TplValue::Map(d) }
}

/// Renders a custom template; on error logs it and returns None, so the
/// built-in rendering goes out instead of nothing.
fn custom(field: &str, text: &str, n: &Notification) -> Option<String> {
    let t = match crate::alerts::template::Template::parse_with_vars(field, text, &[]) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(receiver = %n.receiver, field, error = %e, "email template does not parse; sending the built-in one");
            return None;
        }
    };
    // HTML bodies escape every interpolated value (Alertmanager's html/template).
    let opts = crate::alerts::template::RenderOptions { escape_html: field == "html", ..Default::default() };
    match t.render_with(&template_data(n), &opts) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(receiver = %n.receiver, field, error = %e, "email template failed; sending the built-in one");
            None
        }
    }
}

/// Label values the way Alertmanager's `SortedPairs.Values` orders them:
/// `alertname` first, then by label name.
fn sorted_values(l: &Labels) -> Vec<&str> {
    let mut v: Vec<&str> = l.get("alertname").into_iter().collect();
    v.extend(l.iter().filter(|(k, _)| *k != "alertname").map(|(_, v)| v));
    v
}

/// `[FIRING:2] HighLatency (checkout)`: status, firing count, the group's
/// label values, then in parentheses what else all alerts have in common.
pub fn subject(n: &Notification) -> String {
    let mut s = match n.status {
        Status::Firing => format!("[FIRING:{}]", n.firing().count()),
        Status::Resolved => "[RESOLVED]".to_string(),
    };
    let group = sorted_values(&n.group_labels);
    if !group.is_empty() {
        s.push(' ');
        s.push_str(&group.join(" "));
    }
    if n.common_labels.len() > n.group_labels.len() {
        let names: Vec<String> = n.group_labels.iter().map(|(k, _)| k.to_string()).collect();
        let extra = n.common_labels.drop_names(&names);
        let extra = sorted_values(&extra);
        if !extra.is_empty() {
            s.push_str(&format!(" ({})", extra.join(" ")));
        }
    }
    s
}

/// "45s", "14m", "3h 5m", "2d 4h": coarse on purpose.
pub fn humanize(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => match (s / 3600, s % 3600 / 60) {
            (h, 0) => format!("{h}h"),
            (h, m) => format!("{h}h {m}m"),
        },
        _ => match (s / 86400, s % 86400 / 3600) {
            (d, 0) => format!("{d}d"),
            (d, h) => format!("{d}d {h}h"),
        },
    }
}

fn clock(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// One line about when: "firing since … (14m ago)" or "fired … to …".
fn timing(a: &NotifiedAlert, now: DateTime<Utc>) -> String {
    match (a.status, a.ends_at) {
        (Status::Resolved, Some(end)) => format!(
            "fired {} until {} (for {})",
            clock(&a.starts_at),
            end.format("%H:%M:%S UTC"),
            humanize(end - a.starts_at)
        ),
        (Status::Resolved, None) => format!("fired since {}, now resolved", clock(&a.starts_at)),
        (Status::Firing, _) => format!("firing since {} ({} ago)", clock(&a.starts_at), humanize(now - a.starts_at)),
    }
}

/// The headline of one alert: its name and, when there is one, the summary.
fn headline(a: &NotifiedAlert) -> String {
    let name = a.labels.get("alertname").unwrap_or("alert");
    match a.annotations.get("summary") {
        Some(s) => format!("{name}: {s}"),
        None => name.to_string(),
    }
}

/// Annotations other than summary and description, which are shown apart.
fn other_annotations(a: &NotifiedAlert) -> impl Iterator<Item = (&str, &str)> {
    a.annotations.iter().filter(|(k, _)| *k != "summary" && *k != "description")
}

fn label_line(l: &Labels) -> String {
    l.iter().filter(|(k, _)| *k != "alertname").map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

fn sections(n: &Notification) -> [(&'static str, Vec<&NotifiedAlert>); 2] {
    [("FIRING", n.firing().collect()), ("RESOLVED", n.resolved().collect())]
}

fn summary_line(n: &Notification) -> String {
    let (f, r) = (n.firing().count(), n.resolved().count());
    let mut parts = Vec::new();
    if f > 0 {
        parts.push(format!("{f} firing"));
    }
    if r > 0 {
        parts.push(format!("{r} resolved"));
    }
    if n.truncated_alerts > 0 {
        parts.push(format!("{} more not shown", n.truncated_alerts));
    }
    parts.join(", ")
}

fn text_body(n: &Notification, subject: &str, now: DateTime<Utc>) -> String {
    let mut out = format!("{subject}\n\n{}", summary_line(n));
    if !n.group_labels.is_empty() {
        out.push_str(&format!(" (group {})", n.group_labels));
    }
    out.push('\n');
    if !n.external_url.is_empty() {
        out.push_str(&format!("Open forewarn: {}\n", n.external_url));
    }
    for (title, alerts) in sections(n) {
        if alerts.is_empty() {
            continue;
        }
        out.push_str(&format!("\n== {title} ({}) ==\n", alerts.len()));
        for a in alerts {
            out.push_str(&format!("\n* {}\n", headline(a)));
            out.push_str(&format!("  {}\n", timing(a, now)));
            if let Some(d) = a.annotations.get("description") {
                for line in d.lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            let labels = label_line(&a.labels);
            if !labels.is_empty() {
                out.push_str(&format!("  labels: {labels}\n"));
            }
            for (k, v) in other_annotations(a) {
                out.push_str(&format!("  {k}: {v}\n"));
            }
            if !a.generator_url.is_empty() {
                out.push_str(&format!("  source: {}\n", a.generator_url));
            }
            if let Some(notes) = &a.notes {
                out.push_str(&super::changes::text(notes));
            }
        }
    }
    out.push_str(&format!("\n-- \nSent by forewarn to receiver {:?}.\n", n.receiver));
    out
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link only for http(s) URLs; anything else is shown as text.
fn link(url: &str, label: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        format!("<a href=\"{}\">{}</a>", escape_html(url), escape_html(label))
    } else {
        escape_html(url)
    }
}

fn html_body(n: &Notification, subject: &str, now: DateTime<Utc>, images: &[super::changes::InlineImage]) -> String {
    let e = escape_html;
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n\
         <body style=\"font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; font-size: 14px; color: #222;\">\n",
    );
    let color = if n.status == Status::Firing { "#c0392b" } else { "#27ae60" };
    out.push_str(&format!("<h2 style=\"color: {color}; margin: 0 0 8px;\">{}</h2>\n", e(subject)));
    out.push_str(&format!("<p style=\"margin: 0 0 4px;\">{}", e(&summary_line(n))));
    if !n.group_labels.is_empty() {
        out.push_str(&format!(" (group <code>{}</code>)", e(&n.group_labels.to_string())));
    }
    out.push_str("</p>\n");
    if !n.external_url.is_empty() {
        out.push_str(&format!("<p style=\"margin: 0 0 12px;\">{}</p>\n", link(&n.external_url, "Open forewarn")));
    }
    for (title, alerts) in sections(n) {
        if alerts.is_empty() {
            continue;
        }
        let color = if title == "FIRING" { "#c0392b" } else { "#27ae60" };
        out.push_str(&format!(
            "<h3 style=\"color: {color}; border-bottom: 1px solid #ddd; margin: 16px 0 8px;\">{title} ({})</h3>\n",
            alerts.len()
        ));
        for a in alerts {
            out.push_str("<div style=\"margin: 0 0 14px;\">\n");
            out.push_str(&format!("<div style=\"font-weight: bold;\">{}</div>\n", e(&headline(a))));
            out.push_str(&format!("<div style=\"color: #555;\">{}</div>\n", e(&timing(a, now))));
            if let Some(d) = a.annotations.get("description") {
                out.push_str(&format!("<div style=\"white-space: pre-wrap;\">{}</div>\n", e(d)));
            }
            let labels = label_line(&a.labels);
            if !labels.is_empty() {
                out.push_str(&format!("<div><code style=\"color: #555;\">{}</code></div>\n", e(&labels)));
            }
            for (k, v) in other_annotations(a) {
                let value = if v.starts_with("http://") || v.starts_with("https://") { link(v, v) } else { e(v) };
                out.push_str(&format!("<div>{}: {value}</div>\n", e(k)));
            }
            if !a.generator_url.is_empty() {
                out.push_str(&format!("<div>{}</div>\n", link(&a.generator_url, "Source")));
            }
            if let Some(notes) = &a.notes {
                out.push_str(&super::changes::html(a, notes, images));
            }
            out.push_str("</div>\n");
        }
    }
    out.push_str(&format!(
        "<p style=\"color: #888; font-size: 12px; margin-top: 24px;\">Sent by forewarn to receiver {}.</p>\n</body></html>\n",
        e(&n.receiver)
    ));
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, h, m, 0).unwrap()
    }

    fn alert(instance: &str, status: Status, ends: Option<DateTime<Utc>>) -> NotifiedAlert {
        NotifiedAlert {
            status,
            labels: Labels::from_pairs([("alertname", "HighLatency"), ("service", "checkout"), ("instance", instance)]),
            annotations: Labels::from_pairs([
                ("summary", "p99 latency above 500ms"),
                ("description", "p99 is 1.2s <for real>"),
                ("runbook_url", "https://runbooks/latency"),
            ]),
            starts_at: at(12, 0),
            ends_at: ends,
            generator_url: "http://prom:9090/graph?g0.expr=x".into(),
            fingerprint: "f".into(),
            notes: None,
        }
    }

    fn notification(alerts: Vec<NotifiedAlert>) -> Notification {
        Notification::new(
            "team-x",
            "k".into(),
            Labels::from_pairs([("alertname", "HighLatency")]),
            alerts,
            "http://forewarn:9093",
        )
    }

    #[test]
    fn subject_has_alertmanager_shape() {
        let n = notification(vec![alert("a:1", Status::Firing, None), alert("b:1", Status::Firing, None)]);
        assert_eq!(subject(&n), "[FIRING:2] HighLatency (checkout)");
        let n = notification(vec![alert("a:1", Status::Resolved, Some(at(12, 5)))]);
        assert_eq!(subject(&n), "[RESOLVED] HighLatency (a:1 checkout)");
        let mut n = notification(vec![alert("a:1", Status::Firing, None)]);
        n.group_labels = Labels::new();
        assert_eq!(subject(&n), "[FIRING:1] (HighLatency a:1 checkout)");
    }

    #[test]
    fn text_puts_the_story_first() {
        let n = notification(vec![alert("a:1", Status::Firing, None), alert("b:1", Status::Resolved, Some(at(12, 5)))]);
        let r = render_at(&EmailConfig::default(), &n, at(12, 14));
        assert_eq!(r.subject, "[FIRING:1] HighLatency (checkout)");
        let t = r.text.unwrap();
        assert!(t.contains("1 firing, 1 resolved"), "{t}");
        assert!(t.contains("== FIRING (1) =="), "{t}");
        assert!(t.contains("* HighLatency: p99 latency above 500ms"), "{t}");
        assert!(t.contains("firing since 2024-05-01 12:00:00 UTC (14m ago)"), "{t}");
        assert!(t.contains("fired 2024-05-01 12:00:00 UTC until 12:05:00 UTC (for 5m)"), "{t}");
        assert!(t.contains("labels: instance=a:1 service=checkout"), "{t}");
        assert!(t.contains("runbook_url: https://runbooks/latency"), "{t}");
        assert!(t.contains("source: http://prom:9090/graph?g0.expr=x"), "{t}");
        assert!(t.contains("Open forewarn: http://forewarn:9093"), "{t}");
        assert!(t.find("== FIRING").unwrap() < t.find("== RESOLVED").unwrap());
        let h = r.html.unwrap();
        assert!(h.contains("p99 is 1.2s &lt;for real&gt;"), "{h}");
        assert!(h.contains("<a href=\"https://runbooks/latency\">"), "{h}");
        assert!(!h.contains("<for real>"));
    }

    #[test]
    fn config_overrides_subject_and_bodies() {
        let n = notification(vec![alert("a:1", Status::Firing, None)]);
        let mut cfg = EmailConfig::default();
        cfg.headers.insert("subject".into(), "Checkout is slow".into());
        cfg.html = Some(String::new());
        cfg.text = Some("See the dashboard.".into());
        let r = render_at(&cfg, &n, at(13, 0));
        assert_eq!(r.subject, "Checkout is slow");
        assert_eq!(r.text.as_deref(), Some("See the dashboard."));
        assert_eq!(r.html, None);
    }

    #[test]
    fn humanize_is_coarse() {
        let d = chrono::Duration::seconds;
        assert_eq!(humanize(d(45)), "45s");
        assert_eq!(humanize(d(14 * 60 + 59)), "14m");
        assert_eq!(humanize(d(3 * 3600)), "3h");
        assert_eq!(humanize(d(3 * 3600 + 300)), "3h 5m");
        assert_eq!(humanize(d(2 * 86400 + 4 * 3600 + 7)), "2d 4h");
        assert_eq!(humanize(d(-5)), "0s");
    }

    #[test]
    fn custom_templates_render_alertmanager_style_data() {
        let n = crate::notify::Notification::new(
            "team",
            "g".into(),
            Labels::from_pairs([("alertname", "Disk")]),
            vec![crate::notify::NotifiedAlert {
                status: crate::notify::Status::Firing,
                labels: Labels::from_pairs([("alertname", "Disk"), ("instance", "db1")]),
                annotations: Labels::from_pairs([("summary", "96% full")]),
                starts_at: Utc::now(),
                ends_at: None,
                generator_url: "http://fw/x".into(),
                fingerprint: "00000000000000aa".into(),
                notes: None,
            }],
            "http://fw",
        );
        let mut cfg = EmailConfig::default();
        cfg.headers.insert(
            "Subject".into(),
            "{{ .Status | toUpper }}: {{ .GroupLabels.alertname }} ({{ len .Firing }})".into(),
        );
        cfg.text = Some("{{ range .Alerts }}{{ .Labels.instance }}: {{ .Annotations.summary }}\n{{ end }}".into());
        let r = render_at(&cfg, &n, Utc::now());
        assert_eq!(r.subject, "FIRING: Disk (1)");
        assert_eq!(r.text.as_deref(), Some("db1: 96% full\n"));
        // A template that fails at send time falls back to the built-in body.
        cfg.text = Some("{{ index .Alerts 5 }}".into());
        let r = render_at(&cfg, &n, Utc::now());
        assert!(r.text.unwrap_or_default().contains("96% full"));
    }
}
