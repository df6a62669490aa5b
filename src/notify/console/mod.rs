//! The console receiver: notifications printed to stdout as short blocks.
//!
//! It exists for `forewarn demo`, where a newcomer watches alerts arrive in
//! the terminal, so it favours a glanceable layout over completeness: one
//! header line per notification (the same subject an email would carry),
//! then per alert its status, name, labels, summary, the rule kind's
//! explanation, value and timing.
//! [`format_at`] is pure for tests; [`ConsoleReceiver::print`] adds colour
//! only when stdout is a terminal and `NO_COLOR` is unset.

use std::io::{IsTerminal, Write};

use chrono::{DateTime, Utc};

use crate::notify::email::render::{humanize, subject};
use crate::notify::integration::{Integration, SendContext, SendFuture};
use crate::notify::{Notification, NotifiedAlert, Status};

/// Prints notifications to stdout. Stateless, so usable as a unit value.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConsoleReceiver;

impl ConsoleReceiver {
    /// Writes [`format()`]`(n)` to stdout, coloured on a terminal. A closed
    /// stdout is not worth failing a notification over, so write errors are
    /// logged and dropped.
    pub fn print(&self, n: &Notification) {
        let text = format(n);
        let out = std::io::stdout();
        let text = if out.is_terminal() && std::env::var_os("NO_COLOR").is_none() { colorize(&text) } else { text };
        let mut lock = out.lock();
        if let Err(e) = lock.write_all(text.as_bytes()).and_then(|()| lock.flush()) {
            tracing::debug!(receiver = %n.receiver, error = %e, "console: could not write to stdout");
        }
    }
}

/// Added by `forewarn demo` (not a config key), so it has nothing to check.
impl Integration for ConsoleReceiver {
    fn kind(&self) -> &'static str {
        "console"
    }

    /// The demo shows alerts ending too.
    fn send_resolved(&self) -> bool {
        true
    }

    fn send<'a>(&'a self, _ctx: &'a SendContext, n: &'a Notification) -> SendFuture<'a> {
        self.print(n);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The block for `n` as of now.
pub fn format(n: &Notification) -> String {
    format_at(n, Utc::now())
}

fn hms(t: &DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

fn alert_lines(out: &mut String, a: &NotifiedAlert, now: DateTime<Utc>) {
    let (mark, word) = match a.status {
        Status::Firing => ("●", "FIRING  "),
        Status::Resolved => ("✓", "RESOLVED"),
    };
    let name = a.labels.get("alertname").unwrap_or("alert");
    let labels: Vec<String> =
        a.labels.iter().filter(|(k, _)| *k != "alertname").map(|(k, v)| format!("{k}={v}")).collect();
    out.push_str(&format!("  {mark} {word} {name}"));
    if !labels.is_empty() {
        out.push_str(&format!("  {}", labels.join(" ")));
    }
    out.push('\n');
    let pad = "             ";
    if let Some(s) = a.annotations.get("summary") {
        out.push_str(&format!("{pad}{s}\n"));
    }
    // A rule kind's own account of why it fired (band, trend, since when).
    if let Some(w) = a.annotations.get(crate::alerts::EXPLANATION) {
        out.push_str(&format!("{pad}why: {w}\n"));
    }
    let mut facts = Vec::new();
    if let Some(v) = a.annotations.get("value") {
        facts.push(format!("value {v}"));
    }
    match (a.status, a.ends_at) {
        (Status::Resolved, Some(end)) => {
            facts.push(format!("resolved {} after {}", hms(&end), humanize(end - a.starts_at)));
        }
        _ => facts.push(format!("since {} ({} ago)", hms(&a.starts_at), humanize(now - a.starts_at))),
    }
    out.push_str(&format!("{pad}{}\n", facts.join(" · ")));
    // What changed before the onset, and the chart with the deploy lines.
    if let Some(notes) = &a.notes {
        if !notes.verdict.is_empty() {
            out.push_str(&format!("{pad}changes: {}\n", notes.verdict));
        }
        if !notes.chart_url.is_empty() {
            out.push_str(&format!("{pad}chart: {}\n", notes.chart_url));
        }
    }
}

/// The block for `n` as if the time were `now`: a header line, then two or
/// three lines per alert, firing ones first. Times are UTC.
pub fn format_at(n: &Notification, now: DateTime<Utc>) -> String {
    let mut out = format!("{}  [{} UTC → {}]\n", subject(n), hms(&now), n.receiver);
    for a in n.firing().chain(n.resolved()) {
        alert_lines(&mut out, a, now);
    }
    if n.truncated_alerts > 0 {
        out.push_str(&format!("  … and {} more\n", n.truncated_alerts));
    }
    out
}

/// Red for firing, green for resolved: the header tag and each status word.
fn colorize(text: &str) -> String {
    const RED: &str = "\x1b[1;31m";
    const GREEN: &str = "\x1b[1;32m";
    const RESET: &str = "\x1b[0m";
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let colored = if line.starts_with("[FIRING") {
            line.find(']').map(|i| format!("{RED}{}{RESET}{}", &line[..=i], &line[i + 1..]))
        } else if let Some(rest) = line.strip_prefix("[RESOLVED]") {
            Some(format!("{GREEN}[RESOLVED]{RESET}{rest}"))
        } else if let Some(rest) = line.strip_prefix("  ● FIRING  ") {
            Some(format!("  {RED}● FIRING{RESET}   {rest}"))
        } else {
            line.strip_prefix("  ✓ RESOLVED ").map(|rest| format!("  {GREEN}✓ RESOLVED{RESET} {rest}"))
        };
        out.push_str(colored.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::labels::Labels;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, h, m, s).unwrap()
    }

    fn alert(name: &str, instance: &str, status: Status, ends: Option<DateTime<Utc>>) -> NotifiedAlert {
        NotifiedAlert {
            status,
            labels: Labels::from_pairs([("alertname", name), ("instance", instance), ("job", "demo")]),
            annotations: Labels::from_pairs([("summary", format!("{name} on {instance}")), ("value", "0.93".into())]),
            starts_at: at(12, 0, 5),
            ends_at: ends,
            generator_url: String::new(),
            fingerprint: "f".into(),
            notes: None,
        }
    }

    #[test]
    fn block_reads_at_a_glance() {
        let n = Notification::new(
            "demo",
            "k".into(),
            Labels::from_pairs([("alertname", "HighErrorRate")]),
            vec![
                alert("HighErrorRate", "web-2:8080", Status::Resolved, Some(at(12, 3, 5))),
                alert("HighErrorRate", "web-1:8080", Status::Firing, None),
            ],
            "",
        );
        let s = format_at(&n, at(12, 4, 35));
        let expected = "\
[FIRING:1] HighErrorRate (demo)  [12:04:35 UTC → demo]
  ● FIRING   HighErrorRate  instance=web-1:8080 job=demo
             HighErrorRate on web-1:8080
             value 0.93 · since 12:00:05 (4m ago)
  ✓ RESOLVED HighErrorRate  instance=web-2:8080 job=demo
             HighErrorRate on web-2:8080
             value 0.93 · resolved 12:03:05 after 3m
";
        assert_eq!(s, expected);
        let c = colorize(&s);
        assert!(c.contains("\x1b[1;31m[FIRING:1]\x1b[0m HighErrorRate"), "{c}");
        assert!(c.contains("\x1b[1;32m✓ RESOLVED\x1b[0m HighErrorRate"), "{c}");
        assert_eq!(c.lines().count(), s.lines().count());
    }

    #[test]
    fn minimal_alert_still_prints() {
        let a = NotifiedAlert {
            status: Status::Firing,
            labels: Labels::new(),
            annotations: Labels::new(),
            starts_at: at(12, 0, 0),
            ends_at: None,
            generator_url: String::new(),
            fingerprint: String::new(),
            notes: None,
        };
        let s = format_at(&Notification::new("r", "k".into(), Labels::new(), vec![a], ""), at(12, 0, 30));
        assert_eq!(s, "[FIRING:1]  [12:00:30 UTC → r]\n  ● FIRING   alert\n             since 12:00:00 (30s ago)\n");
    }
}
