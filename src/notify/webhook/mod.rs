//! The webhook receiver: Alertmanager's `webhook_configs`, POSTing the
//! version "4" JSON that existing webhook consumers already understand.
//!
//! `config` owns the YAML shape and its validation, `send` the payload and
//! the HTTP exchange. Keeping both here means a receiver can be read, changed
//! and tested without touching routing or dispatch.

pub mod config;
pub mod send;

pub use config::{
    redact_url, Authorization, BasicAuth, HttpConfig, Secret, TlsConfig, WebhookConfig, WebhookConfigError,
};
pub use send::{hmac_sha256_hex, payload, rfc3339, without_resolved, WebhookSender, SIGNATURE_HEADER, ZERO_TIME};
