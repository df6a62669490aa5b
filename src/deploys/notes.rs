//! What a notification says about changes: the correlation of one alert,
//! the link to its chart, and (for email) the chart itself.
//!
//! The dispatcher calls [`notes_for`] once per alert when it builds a
//! notification, and the result travels with the alert through the outbox
//! (hence plain serialisable data: the PNG as base64 text) to the webhook
//! payload (`changes`, `verdict`, `chartURL`) and the email body.

use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use super::{ChangeNote, DeployLog};
use crate::labels::Labels;

/// The deploy-related part of one notified alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertNotes {
    pub changes: Vec<ChangeNote>,
    pub verdict: String,
    /// `GET /api/v1/alerts/<fingerprint>/chart.svg` under `http.external_url`.
    #[serde(rename = "chartURL")]
    pub chart_url: String,
    /// The chart as a base64 PNG, for email; absent for other receivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_png: Option<String>,
}

impl AlertNotes {
    /// The PNG bytes, if a chart was attached.
    pub fn chart_png_bytes(&self) -> Option<Vec<u8>> {
        self.chart_png.as_ref().and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
    }
}

/// The chart URL of the alert with `fingerprint`.
pub fn chart_url(external_url: &str, fingerprint: u64) -> String {
    format!("{}/api/v1/alerts/{fingerprint:016x}/chart.svg", external_url.trim_end_matches('/'))
}

/// Recently rendered PNGs, so that several email integrations flushed at
/// the same instant draw each chart once.
#[derive(Default)]
pub struct PngCache {
    at: i64,
    by_fingerprint: HashMap<u64, Option<String>>,
}

/// Notes for one alert, or `None` without a marker log.
#[allow(clippy::too_many_arguments)]
pub fn notes_for(
    log: Option<&DeployLog>,
    labels: &Labels,
    fingerprint: u64,
    onset: i64,
    resolved: Option<i64>,
    now: i64,
    external_url: &str,
    with_png: bool,
) -> Option<AlertNotes> {
    let log = log?;
    let c = log.correlate_alert(labels, onset, resolved, now)?;
    let chart_png = if with_png {
        let mut cache = log.png_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.at != now {
            cache.at = now;
            cache.by_fingerprint.clear();
        }
        cache
            .by_fingerprint
            .entry(fingerprint)
            .or_insert_with(|| {
                log.chart_png(fingerprint, onset, resolved, now)
                    .map(|png| base64::engine::general_purpose::STANDARD.encode(png))
            })
            .clone()
    } else {
        None
    };
    Some(AlertNotes {
        changes: c.changes,
        verdict: c.verdict,
        chart_url: chart_url(external_url, fingerprint),
        chart_png,
    })
}

/// The webhook's per-alert additions: `changes` (oldest first, each with
/// `text`, `service`, `version`, `kind`, `at`, `beforeOnsetSeconds` and
/// `commit`/`url`/`by` when known), `verdict` and `chartURL`.
pub fn webhook_fields(n: &AlertNotes) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{json, Value};
    let changes: Vec<Value> = n
        .changes
        .iter()
        .map(|c| {
            let m = &c.marker;
            let mut v = json!({
                "text": c.text,
                "service": m.service,
                "version": m.version,
                "kind": m.kind.as_str(),
                "at": super::rfc3339(m.at),
                "beforeOnsetSeconds": c.before_onset_ms as f64 / 1000.0,
            });
            for (k, val) in [("commit", &m.commit), ("url", &m.url), ("by", &m.by)] {
                if let (Some(x), Value::Object(o)) = (val, &mut v) {
                    o.insert(k.into(), Value::String(x.clone()));
                }
            }
            v
        })
        .collect();
    let mut o = serde_json::Map::new();
    o.insert("changes".into(), Value::Array(changes));
    o.insert("verdict".into(), Value::String(n.verdict.clone()));
    o.insert("chartURL".into(), Value::String(n.chart_url.clone()));
    o
}
