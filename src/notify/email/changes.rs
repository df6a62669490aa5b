//! The "Recent changes" part of an alert in an email: the deploy verdict,
//! the changes before the onset, a link to the chart, and the chart itself
//! inline (a `multipart/related` PNG referenced by `cid:`). At most
//! [`MAX_CHARTS`] charts per message, so a big group stays a small email.

use crate::deploys::AlertNotes;
use crate::notify::{Notification, NotifiedAlert};

use super::render::escape_html;

/// Charts attached to one message at most.
pub const MAX_CHARTS: usize = 5;

/// A PNG shown inline in the HTML body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineImage {
    /// Content-ID without angle brackets, as used in `src="cid:..."`.
    pub cid: String,
    pub png: Vec<u8>,
}

fn cid(a: &NotifiedAlert) -> String {
    format!("chart-{}@forewarn", a.fingerprint)
}

/// The charts of the first alerts that carry one (firing first).
pub fn images(n: &Notification) -> Vec<InlineImage> {
    n.firing()
        .chain(n.resolved())
        .filter_map(|a| {
            a.notes.as_ref().and_then(AlertNotes::chart_png_bytes).map(|png| InlineImage { cid: cid(a), png })
        })
        .take(MAX_CHARTS)
        .collect()
}

/// Plain-text lines for one alert (indented like the rest of the alert).
pub fn text(notes: &AlertNotes) -> String {
    let mut out = String::from("  Recent changes:\n");
    out.push_str(&format!("    {}\n", notes.verdict));
    for c in &notes.changes {
        out.push_str(&format!("    - {}\n", c.text));
    }
    out.push_str(&format!("  chart: {}\n", notes.chart_url));
    out
}

/// HTML for one alert; `inline` lists the Content-IDs attached to the message.
pub fn html(a: &NotifiedAlert, notes: &AlertNotes, inline: &[InlineImage]) -> String {
    let e = escape_html;
    let mut out = String::from(
        "<div style=\"margin: 6px 0 0; padding: 6px 10px; background: #f5f7fa; border-left: 3px solid #1a5ac8;\">\n",
    );
    out.push_str("<div style=\"font-weight: bold;\">Recent changes</div>\n");
    out.push_str(&format!("<div>{}</div>\n", e(&notes.verdict)));
    if !notes.changes.is_empty() {
        out.push_str("<ul style=\"margin: 4px 0; padding-left: 18px;\">\n");
        for c in &notes.changes {
            let text = match &c.marker.url {
                Some(u) => format!("<a href=\"{}\">{}</a>", e(u), e(&c.text)),
                None => e(&c.text),
            };
            out.push_str(&format!("<li>{text}</li>\n"));
        }
        out.push_str("</ul>\n");
    }
    let id = cid(a);
    if inline.iter().any(|i| i.cid == id) {
        out.push_str(&format!(
            "<div><a href=\"{}\"><img src=\"cid:{}\" alt=\"chart of the alert\" width=\"900\" style=\"max-width: 100%; height: auto;\"></a></div>\n",
            e(&notes.chart_url),
            e(&id)
        ));
    } else {
        out.push_str(&format!("<div><a href=\"{}\">Chart</a></div>\n", e(&notes.chart_url)));
    }
    out.push_str("</div>\n");
    out
}
