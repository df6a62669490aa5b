//! The notification sections of `forewarn.yml`: Alertmanager's `route` and
//! `receivers` (same keys, so they can be pasted across), forewarn's
//! `outbox`, and [`NotifySections`], the borrowed view `config` hands to
//! [`super::dispatch`]. A receiver's own settings live next to its sender.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::email::EmailConfig;
use super::inhibit::InhibitRuleConfig;
use super::time_interval::TimeIntervalConfig;
use super::webhook::WebhookConfig;
use crate::duration::PromDuration;

/// The sections of the config file the notification pipeline is built
/// from: Alertmanager's `route`, `receivers`, `inhibit_rules` and
/// `time_intervals` (top-level keys there, so they stay separate here).
#[derive(Clone, Copy, Debug)]
pub struct NotifySections<'a> {
    pub route: Option<&'a RouteConfig>,
    pub receivers: &'a [ReceiverConfig],
    pub inhibit_rules: &'a [InhibitRuleConfig],
    pub time_intervals: &'a [TimeIntervalConfig],
}

/// Alertmanager's `route`: a tree of matchers deciding who hears of an alert.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub receiver: Option<String>,
    pub group_by: Option<Vec<String>>,
    /// `label=value`, `label!=value`, `label=~re`, `label!~re` (Alertmanager's syntax).
    #[serde(default)]
    pub matchers: Vec<String>,
    /// Deprecated in Alertmanager but still common in pasted configs.
    #[serde(default, rename = "match")]
    pub match_eq: BTreeMap<String, String>,
    #[serde(default)]
    pub match_re: BTreeMap<String, String>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    pub group_wait: Option<PromDuration>,
    pub group_interval: Option<PromDuration>,
    pub repeat_interval: Option<PromDuration>,
    /// Names from `time_intervals` during which this route sends nothing.
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    /// Names from `time_intervals` outside which this route sends nothing.
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// How long and how hard the outbox tries to deliver a notification.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// A notification not delivered within this long is dropped (logged and
    /// counted in `forewarn_notifications_failed_total`).
    #[serde(default = "default_max_age")]
    pub max_age: PromDuration,
    /// The longest wait between two attempts (backoff grows up to it).
    #[serde(default = "default_max_backoff")]
    pub max_backoff: PromDuration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig { max_age: default_max_age(), max_backoff: default_max_backoff() }
    }
}

fn default_max_age() -> PromDuration {
    PromDuration::from_secs(24 * 3600)
}
fn default_max_backoff() -> PromDuration {
    PromDuration::from_secs(60)
}

/// One named receiver with any number of integrations.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(default)]
    pub email_configs: Vec<EmailConfig>,
    /// forewarn extension: forward alerts to Alertmanagers' `/api/v2/alerts`.
    #[serde(default)]
    pub alertmanager_configs: Vec<super::alertmanager::AlertmanagerConfig>,
}
