//! The email receiver: Alertmanager's `email_configs` over SMTP.
//!
//! `config` owns the YAML shape, the `global.smtp_*` defaults and
//! validation; `render` owns the words (subject, text and HTML bodies) and
//! is where custom templates and chart attachments will plug in; `send` owns
//! the SMTP session and what its failures mean for retrying. This file
//! plugs them into the pipeline as an [`Integration`].

pub mod changes;
pub mod config;
pub mod render;
pub mod send;

pub use config::{BodySource, EmailConfig, EmailConfigError, EmailTlsConfig, SmtpDefaults, TlsMode};
pub use render::{render, render_at, subject, Rendered};
pub use send::{build_message, send, send_with_timeout};

use super::integration::{CheckError, Integration, SendContext, SendFuture};
use super::Notification;

impl Integration for EmailConfig {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// The chart goes into the HTML body as an inline PNG (mail clients do
    /// not load remote images by default).
    fn wants_chart(&self) -> bool {
        true
    }

    /// Run after `apply_defaults` (the config loader fills in `global.smtp_*`).
    fn check(&self) -> Result<(), CheckError> {
        Ok(self.validate()?)
    }

    /// No shared client: one SMTP connection per message (see `send`).
    fn send<'a>(&'a self, _ctx: &'a SendContext, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(send(self, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_an_integration() {
        let mut c: EmailConfig =
            crate::yaml::parse("e.yml", "to: team@example.org\nfrom: fw@example.org\nsmarthost: mail:587\n").unwrap();
        assert_eq!(c.kind(), "email");
        assert!(c.wants_chart(), "the chart is inlined as a PNG");
        assert!(!c.send_resolved(), "Alertmanager's default for email");
        assert!(c.check().is_ok());
        c.to = None;
        assert_eq!(c.check().unwrap_err().to_string(), "email_configs: missing `to`");
    }
}
