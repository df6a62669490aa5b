//! The webhook receiver: Alertmanager's `webhook_configs`, POSTing the
//! version "4" JSON that existing webhook consumers already understand.
//!
//! `config` owns the YAML shape and its validation, `send` the payload and
//! the HTTP exchange; this file plugs both into the pipeline as an
//! [`Integration`]. Keeping them here means a receiver can be read, changed
//! and tested without touching routing or dispatch.

pub mod config;
pub mod send;

pub use config::{
    redact_url, Authorization, BasicAuth, HttpConfig, Secret, TlsConfig, WebhookConfig, WebhookConfigError,
};
pub use send::{hmac_sha256_hex, payload, rfc3339, without_resolved, WebhookSender, SIGNATURE_HEADER, ZERO_TIME};

use super::integration::{CheckError, Integration, SendContext, SendFuture};
use super::Notification;

impl Integration for WebhookConfig {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// A webhook without `url` (or with a bad one) is refused at load time
    /// rather than failing every notification later.
    fn check(&self) -> Result<(), CheckError> {
        Ok(self.validate()?)
    }

    fn send<'a>(&'a self, ctx: &'a SendContext, n: &'a Notification) -> SendFuture<'a> {
        // One sender per daemon: it pools a client per TLS setting.
        Box::pin(async move { ctx.shared::<WebhookSender>().send(self, n).await })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn as_an_integration() {
        let mut c = WebhookConfig::new("http://hooks.example.org/a");
        assert_eq!(c.kind(), "webhook");
        assert!(c.send_resolved() && !c.wants_chart() && c.check().is_ok());
        let (hour, minute) = (Duration::from_secs(3600), Duration::from_secs(60));
        assert_eq!(c.repeat_interval(hour, minute), hour, "the route's repeat_interval");
        c.send_resolved = false;
        assert!(!c.send_resolved());
        c.url = None;
        assert_eq!(c.check().unwrap_err().to_string(), "webhook_configs: missing `url`");
    }
}
