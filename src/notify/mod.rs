//! Notifications: from alerts to a receiver's inbox.
//!
//! This module owns everything between an alert and a receiver's inbox,
//! in the order an alert passes through it: `route` picks the receivers;
//! `dispatch` groups alerts and decides when a group is due (group_wait,
//! group_interval), then runs the stages of `pipeline` over it: mute
//! (`silence`), inhibit (`inhibit`), time interval (`time_interval`), dedup
//! against what each integration was last told (repeat_interval) and build
//! the [`Notification`]; `outbox` stores every notification in the state
//! dir before it is sent, and retries until delivered, through
//! `integration::deliver_once` (the send stage). `config` holds the
//! `route`, `receivers` and `outbox` sections; `alertmanagers` and `client`
//! are the `alerting` section's forwarding and the CLI's side of silences.
//!
//! A receiver is one folder (`webhook/`, `email/`, `alertmanager/`,
//! `console/`) holding its config, its sender and its implementation of
//! [`integration::Integration`], the trait through which the rest of the
//! pipeline sees it (its kind, whether it wants resolutions, its repeat
//! rule, whether it wants a chart, config checks, `send`). Adding one is
//! that folder, a `pub mod` line below, and one line in `config.rs`'s
//! `receiver_kinds!` (its `<kind>_configs` key and config type). Nothing in `dispatch`, `pipeline` or
//! `outbox` names a receiver, and the config loader only checks each
//! integration (and fills in email's `global.smtp_*` defaults).

pub mod alertmanager;
pub mod alertmanagers;
pub mod client;
pub mod config;
pub mod console;
pub mod dispatch;
pub mod email;
pub mod inhibit;
pub mod integration;
pub mod outbox;
pub mod pipeline;
pub mod route;
pub mod silence;
pub mod time_interval;
pub mod webhook;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::labels::Labels;

/// Whether a notification (or one alert in it) is about trouble or its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert as a receiver sees it (the Alertmanager webhook's `alerts[]`).
/// Also stored as JSON in the outbox: new fields need `Deserialize` and,
/// so rows queued by an older version still load, `#[serde(default)]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifiedAlert {
    pub status: Status,
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: DateTime<Utc>,
    /// Unset (`0001-01-01T00:00:00Z` on the wire) while the alert fires.
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
    /// What changed before the alert began, the verdict and the chart
    /// (deploy markers); not part of Alertmanager's `alerts[]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<crate::deploys::AlertNotes>,
}

/// One message for one receiver about one group of alerts. Stored as JSON
/// in the outbox (see [`NotifiedAlert`] on adding fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub receiver: String,
    pub status: Status,
    pub alerts: Vec<NotifiedAlert>,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: Labels,
    /// Where a human can look at forewarn (`http.external_url`).
    pub external_url: String,
    /// Identifies the route and group, stable across notifications.
    pub group_key: String,
    #[serde(default)]
    pub truncated_alerts: usize,
}

impl Notification {
    /// Builds the message, computing status and the common labels/annotations.
    pub fn new(
        receiver: &str,
        group_key: String,
        group_labels: Labels,
        alerts: Vec<NotifiedAlert>,
        external_url: &str,
    ) -> Self {
        let status = if alerts.iter().any(|a| a.status == Status::Firing) { Status::Firing } else { Status::Resolved };
        let common = |f: fn(&NotifiedAlert) -> &Labels| -> Labels {
            let mut it = alerts.iter();
            let Some(first) = it.next() else { return Labels::new() };
            let mut common = f(first).clone();
            for a in it {
                let other = f(a);
                let keep: Vec<(String, String)> = common
                    .iter()
                    .filter(|(n, v)| other.get(n) == Some(*v))
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                common = Labels::from_pairs(keep);
            }
            common
        };
        Notification {
            receiver: receiver.to_string(),
            status,
            common_labels: common(|a| &a.labels),
            common_annotations: common(|a| &a.annotations),
            alerts,
            group_labels,
            external_url: external_url.to_string(),
            group_key,
            truncated_alerts: 0,
        }
    }

    pub fn firing(&self) -> impl Iterator<Item = &NotifiedAlert> {
        self.alerts.iter().filter(|a| a.status == Status::Firing)
    }

    pub fn resolved(&self) -> impl Iterator<Item = &NotifiedAlert> {
        self.alerts.iter().filter(|a| a.status == Status::Resolved)
    }
}

/// Why a delivery failed, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Network trouble, timeouts, 5xx, 429: worth a retry.
    #[error("{receiver}: {message} (will retry)")]
    Retryable { receiver: String, message: String },
    /// 4xx, a bad address, a template error: retrying sends the same mistake.
    #[error("{receiver}: {message} (not retried; fix the receiver config)")]
    Permanent { receiver: String, message: String },
}

impl DeliveryError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, DeliveryError::Retryable { .. })
    }
}
