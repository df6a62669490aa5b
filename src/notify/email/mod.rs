//! The email receiver: Alertmanager's `email_configs` over SMTP.
//!
//! `config` owns the YAML shape, the `global.smtp_*` defaults and
//! validation; `render` owns the words (subject, text and HTML bodies) and
//! is where custom templates and chart attachments will plug in; `send` owns
//! the SMTP session and what its failures mean for retrying.

pub mod changes;
pub mod config;
pub mod render;
pub mod send;

pub use config::{BodySource, EmailConfig, EmailConfigError, EmailTlsConfig, SmtpDefaults, TlsMode};
pub use render::{render, render_at, subject, Rendered};
pub use send::{build_message, send, send_with_timeout};
