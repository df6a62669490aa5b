//! The notification sections of `forewarn.yml`: Alertmanager's `route` and
//! `receivers` (same keys, so they can be pasted across), forewarn's
//! `outbox`, and [`NotifySections`], the borrowed view `config` hands to
//! [`super::dispatch`]. A receiver's own settings live next to its sender;
//! `receiver_kinds!` below is the one list of receiver kinds.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::inhibit::InhibitRuleConfig;
use super::integration::Integration;
use super::time_interval::TimeIntervalConfig;
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

/// The one list of receiver kinds. Each line is the key a receiver lists
/// that kind's entries under and the kind's config type (which implements
/// [`Integration`]); it becomes a field of [`ReceiverConfig`] and an entry of
/// its registry, in this order (the order of notifications per flush). A
/// new kind of receiver is its folder, its `pub mod` line in `notify/mod.rs`
/// and one line here.
macro_rules! receiver_kinds {
    ($($(#[$doc:meta])* $field:ident: $config:ty,)*) => {
        /// One named receiver with any number of integrations.
        #[derive(Clone, Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ReceiverConfig {
            pub name: String,
            $($(#[$doc])* #[serde(default)] pub $field: Vec<$config>,)*
        }

        impl ReceiverConfig {
            fn registry(&self) -> Registry {
                let mut r = Registry::default();
                $(r.register(stringify!($field), &self.$field);)*
                r
            }
        }
    };
}

receiver_kinds! {
    webhook_configs: super::webhook::WebhookConfig,
    email_configs: super::email::EmailConfig,
    /// forewarn extension: forward alerts to Alertmanagers' `/api/v2/alerts`.
    alertmanager_configs: super::alertmanager::AlertmanagerConfig,
}

/// One integration of a receiver and where the config file has it.
#[derive(Clone, Debug)]
pub struct Configured {
    /// The receiver's list it is in, e.g. `webhook_configs`.
    pub field: &'static str,
    /// Its position in that list.
    pub index: usize,
    pub integration: Arc<dyn Integration>,
}

/// The integrations of one receiver, and every list that may hold them.
#[derive(Debug, Default)]
struct Registry {
    fields: Vec<&'static str>,
    configured: Vec<Configured>,
}

impl Registry {
    fn register<T: Integration + Clone + 'static>(&mut self, field: &'static str, list: &[T]) {
        self.fields.push(field);
        let at = |(index, c): (usize, &T)| Configured { field, index, integration: Arc::new(c.clone()) };
        self.configured.extend(list.iter().enumerate().map(at));
    }
}

impl ReceiverConfig {
    /// This receiver's integrations, in config order within each kind (an
    /// integration's key counts within its kind, see
    /// [`integration_key`](super::integration::integration_key)).
    pub fn integrations(&self) -> Vec<Configured> {
        self.registry().configured
    }

    /// The fields a receiver may list integrations in (`webhook_configs`,
    /// ...), for `forewarn import` to tell which Alertmanager integrations
    /// forewarn has.
    pub fn integration_fields() -> Vec<&'static str> {
        ReceiverConfig::default().registry().fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrations_are_registered_with_their_key_and_index() {
        let r: ReceiverConfig = crate::yaml::parse(
            "r.yml",
            "name: team\nwebhook_configs: [ { url: 'http://a/' }, { url: 'http://b/' } ]\nalertmanager_configs: [ { urls: ['http://am:9093'] } ]\nemail_configs: [ { to: a@b.c } ]\n",
        )
        .unwrap();
        let got: Vec<(&str, usize, &str)> =
            r.integrations().iter().map(|c| (c.field, c.index, c.integration.kind())).collect();
        assert_eq!(
            got,
            vec![
                ("webhook_configs", 0, "webhook"),
                ("webhook_configs", 1, "webhook"),
                ("email_configs", 0, "email"),
                ("alertmanager_configs", 0, "alertmanager"),
            ]
        );
        // Every key is `<kind>_configs`, as Alertmanager spells them.
        assert_eq!(
            ReceiverConfig::integration_fields(),
            vec!["webhook_configs", "email_configs", "alertmanager_configs"]
        );
        for c in r.integrations() {
            assert_eq!(c.field, format!("{}_configs", c.integration.kind()));
        }
    }
}
