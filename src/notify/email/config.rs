//! The `email_configs` entry of a receiver and the `global.smtp_*` defaults.
//!
//! Keys and defaults follow Alertmanager so its configs load unchanged:
//! `send_resolved` is false, `require_tls` is true (STARTTLS or fail), port
//! 465 means implicit TLS, `hello` is "localhost". Fields the global section
//! may fill are `Option`s so [`EmailConfig::apply_defaults`] can tell "unset"
//! from "set"; [`EmailConfig::validate`] then reports the first missing or
//! malformed key by name. Go templates are not evaluated yet: Alertmanager's
//! default template references map to forewarn's built-in rendering and any
//! other `{{ … }}` is refused at load time rather than mailed verbatim.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use lettre::message::{Mailbox, Mailboxes};
use serde::Deserialize;

use crate::http_client::Secret;

/// Alertmanager's default `Subject` header, i.e. forewarn's built-in subject.
pub const DEFAULT_SUBJECT_TEMPLATE: &str = r#"{{ template "email.default.subject" . }}"#;
/// Alertmanager's default `html`, i.e. forewarn's built-in HTML body.
pub const DEFAULT_HTML_TEMPLATE: &str = r#"{{ template "email.default.html" . }}"#;
/// Alertmanager's name for a built-in plain-text body (forewarn always has one).
pub const DEFAULT_TEXT_TEMPLATE: &str = r#"{{ template "email.default.text" . }}"#;

/// A config mistake, named by the key that carries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailConfigError {
    #[error("email_configs: missing `{0}`")]
    Missing(&'static str),
    #[error("email_configs: invalid `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("email_configs: at most one of {0} may be set")]
    Conflict(&'static str),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> EmailConfigError {
    EmailConfigError::Invalid { field, reason: reason.into() }
}

/// One entry of a receiver's `email_configs`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Recipients, comma-separated (`a@x, "Ops" <ops@x>`).
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    /// `host:port` of the SMTP server (`[::1]:25` for IPv6).
    #[serde(default)]
    pub smarthost: Option<String>,
    /// The name sent with EHLO; Alertmanager's default is "localhost".
    #[serde(default)]
    pub hello: Option<String>,
    #[serde(default)]
    pub auth_username: Option<String>,
    #[serde(default)]
    pub auth_password: Option<Secret>,
    #[serde(default)]
    pub auth_password_file: Option<PathBuf>,
    /// PLAIN authorization identity; only "same as the username" is supported.
    #[serde(default)]
    pub auth_identity: Option<String>,
    /// STARTTLS is required (true, the default) or not used at all (false).
    #[serde(default)]
    pub require_tls: Option<bool>,
    /// Implicit TLS from the first byte; defaults to "port is 465".
    #[serde(default)]
    pub force_implicit_tls: Option<bool>,
    #[serde(default)]
    pub tls_config: EmailTlsConfig,
    /// Extra or overriding headers (`Subject`, `To`, `From`, `Reply-To`, …).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HTML body: unset for the built-in one, "" for none.
    #[serde(default)]
    pub html: Option<String>,
    /// Plain-text body: unset for the built-in one, "" for none.
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub send_resolved: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailTlsConfig {
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// PEM bundle; when set, only these roots are trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The name expected in the server certificate; defaults to the host.
    #[serde(default)]
    pub server_name: Option<String>,
}

/// Alertmanager's `global.smtp_*` keys, filled into each email config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SmtpDefaults {
    pub smtp_from: Option<String>,
    pub smtp_smarthost: Option<String>,
    pub smtp_hello: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<String>,
    pub smtp_require_tls: Option<bool>,
}

/// Where a body comes from once the config is validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodySource {
    /// forewarn's own rendering.
    Builtin,
    /// The part is left out of the message.
    Omitted,
    /// Sent as written (the config had no template markup).
    Literal(String),
    /// A Go template rendered against the notification (see `render`).
    Template(String),
}

/// Parses a custom email template, so mistakes show at load time.
pub fn check_template(field: &'static str, text: &str) -> Result<(), EmailConfigError> {
    crate::alerts::template::Template::parse_with_vars(field, text, &[])
        .map(|_| ())
        .map_err(|e| invalid(field, format!("template: {e}")))
}

/// How the SMTP session is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// Plain connect, then STARTTLS, which must be offered.
    StartTls,
    /// No TLS at all (`require_tls: false`).
    None,
}

impl EmailConfig {
    /// Fills unset keys from `global`, as Alertmanager does at load time.
    pub fn apply_defaults(&mut self, global: &SmtpDefaults) {
        fn fill(slot: &mut Option<String>, from: &Option<String>) {
            if slot.as_deref().is_none_or(str::is_empty) {
                if let Some(v) = from.as_ref().filter(|v| !v.is_empty()) {
                    *slot = Some(v.clone());
                }
            }
        }
        fill(&mut self.from, &global.smtp_from);
        fill(&mut self.smarthost, &global.smtp_smarthost);
        fill(&mut self.hello, &global.smtp_hello);
        fill(&mut self.auth_username, &global.smtp_auth_username);
        if self.auth_password.is_none() && self.auth_password_file.is_none() {
            if let Some(p) = global.smtp_auth_password.as_ref().filter(|p| !p.is_empty()) {
                self.auth_password = Some(Secret::new(p.clone()));
            }
        }
        if self.require_tls.is_none() {
            self.require_tls = global.smtp_require_tls;
        }
    }

    /// Checks the config after [`apply_defaults`](Self::apply_defaults);
    /// the error names the first key that is missing or wrong.
    pub fn validate(&self) -> Result<(), EmailConfigError> {
        self.recipients()?;
        self.sender()?;
        self.host_port()?;
        if self.auth_password.is_some() && self.auth_password_file.is_some() {
            return Err(EmailConfigError::Conflict("`auth_password` and `auth_password_file`"));
        }
        let has_password = self.auth_password.is_some() || self.auth_password_file.is_some();
        if has_password && self.auth_username.as_deref().is_none_or(str::is_empty) {
            return Err(EmailConfigError::Missing("auth_username"));
        }
        if let Some(id) = self.auth_identity.as_deref().filter(|s| !s.is_empty()) {
            if Some(id) != self.auth_username.as_deref() {
                return Err(invalid("auth_identity", "only an identity equal to `auth_username` is supported"));
            }
        }
        if let Some(h) = &self.hello {
            if h.is_empty() || h.contains(char::is_whitespace) {
                return Err(invalid("hello", format!("{h:?} is not a host name")));
            }
        }
        if let Some(name) = &self.tls_config.server_name {
            if name.is_empty() {
                return Err(invalid("tls_config.server_name", "empty"));
            }
        }
        let html = self.html_source()?;
        let text = self.text_source()?;
        if html == BodySource::Omitted && text == BodySource::Omitted {
            return Err(invalid("text", "`text` and `html` are both empty: the message would have no body"));
        }
        for (name, value) in &self.headers {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(invalid("headers", format!("{name:?} is not a header name")));
            }
            if value.contains(['\r', '\n']) {
                return Err(invalid("headers", format!("the value of {name} spans lines")));
            }
            let is_subject = name.eq_ignore_ascii_case("subject");
            if is_subject && value.contains("{{") && value.trim() != DEFAULT_SUBJECT_TEMPLATE {
                check_template("headers", value)?;
            } else if value.contains("{{") && !is_subject {
                return Err(invalid(
                    "headers",
                    format!(
                        "{name}: templates are supported in Subject, text and html only; write this header's value out"
                    ),
                ));
            }
        }
        for (field, name) in [("headers", "To"), ("headers", "From")] {
            if let Some(v) = self.header(name) {
                Mailboxes::from_str(v).map_err(|e| invalid(field, format!("{name}: {e}")))?;
            }
        }
        Ok(())
    }

    /// A header from `headers`, matched without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The envelope recipients parsed from `to`.
    pub fn recipients(&self) -> Result<Mailboxes, EmailConfigError> {
        let to = self.to.as_deref().map(str::trim).filter(|s| !s.is_empty()).ok_or(EmailConfigError::Missing("to"))?;
        let boxes = Mailboxes::from_str(to).map_err(|e| invalid("to", format!("{to:?}: {e}")))?;
        if boxes.iter().next().is_none() {
            return Err(EmailConfigError::Missing("to"));
        }
        Ok(boxes)
    }

    /// The envelope sender parsed from `from`.
    pub fn sender(&self) -> Result<Mailbox, EmailConfigError> {
        let from =
            self.from.as_deref().map(str::trim).filter(|s| !s.is_empty()).ok_or(EmailConfigError::Missing("from"))?;
        Mailbox::from_str(from).map_err(|e| invalid("from", format!("{from:?}: {e}")))
    }

    /// `smarthost` split into host and port.
    pub fn host_port(&self) -> Result<(String, u16), EmailConfigError> {
        let s = self
            .smarthost
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(EmailConfigError::Missing("smarthost"))?;
        let bad = |why: &str| invalid("smarthost", format!("{s:?}: {why} (expected host:port)"));
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.contains(':') && !s.starts_with('[') {
            return Err(bad("IPv6 addresses go in brackets"));
        }
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok((host.to_string(), port))
    }

    /// How the connection is protected, from the port and the TLS keys.
    pub fn tls_mode(&self) -> Result<TlsMode, EmailConfigError> {
        let (_, port) = self.host_port()?;
        Ok(if self.force_implicit_tls.unwrap_or(port == 465) {
            TlsMode::Implicit
        } else if self.require_tls.unwrap_or(true) {
            TlsMode::StartTls
        } else {
            TlsMode::None
        })
    }

    pub fn html_source(&self) -> Result<BodySource, EmailConfigError> {
        body_source("html", self.html.as_deref(), DEFAULT_HTML_TEMPLATE)
    }

    pub fn text_source(&self) -> Result<BodySource, EmailConfigError> {
        body_source("text", self.text.as_deref(), DEFAULT_TEXT_TEMPLATE)
    }
}

fn body_source(field: &'static str, v: Option<&str>, builtin: &str) -> Result<BodySource, EmailConfigError> {
    match v.map(str::trim) {
        None => Ok(BodySource::Builtin),
        Some("") => Ok(BodySource::Omitted),
        Some(t) if t == builtin => Ok(BodySource::Builtin),
        Some(t) if t.contains("{{") => {
            check_template(field, v.unwrap_or_default())?;
            Ok(BodySource::Template(v.unwrap_or_default().to_string()))
        }
        Some(_) => Ok(BodySource::Literal(v.unwrap_or_default().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<EmailConfig, String> {
        serde_saphyr::from_str::<EmailConfig>(yaml).map_err(|e| e.to_string())
    }

    fn minimal() -> EmailConfig {
        parse("to: team@example.org\nfrom: fw@example.org\nsmarthost: mail.example.org:587\n").unwrap()
    }

    #[test]
    fn defaults_follow_alertmanager() {
        let c = minimal();
        c.validate().unwrap();
        assert!(!c.send_resolved);
        assert_eq!(c.tls_mode().unwrap(), TlsMode::StartTls);
        assert_eq!(c.html_source().unwrap(), BodySource::Builtin);
        assert_eq!(c.text_source().unwrap(), BodySource::Builtin);
        let mut c465 = c.clone();
        c465.smarthost = Some("mail.example.org:465".into());
        assert_eq!(c465.tls_mode().unwrap(), TlsMode::Implicit);
        c465.force_implicit_tls = Some(false);
        assert_eq!(c465.tls_mode().unwrap(), TlsMode::StartTls);
        let mut plain = c;
        plain.require_tls = Some(false);
        assert_eq!(plain.tls_mode().unwrap(), TlsMode::None);
    }

    #[test]
    fn full_alertmanager_entry_parses() {
        let c = parse(
            r#"
to: 'a@example.org, "On Call" <oncall@example.org>'
from: alertmanager@example.org
smarthost: '[::1]:2525'
hello: fw.example.org
auth_username: fw
auth_password: hunter2
auth_identity: fw
require_tls: false
tls_config:
  insecure_skip_verify: true
  server_name: mail.example.org
headers:
  Subject: '{{ template "email.default.subject" . }}'
  Reply-To: ops@example.org
html: '{{ template "email.default.html" . }}'
send_resolved: true
"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.recipients().unwrap().iter().count(), 2);
        assert_eq!(c.host_port().unwrap(), ("::1".to_string(), 2525));
        assert_eq!(c.header("reply-to"), Some("ops@example.org"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = parse("to: a@x.org\nsmtp_from: b@x.org\n").unwrap_err();
        assert!(e.contains("smtp_from"), "{e}");
        let e = parse("to: a@x.org\ntls_config:\n  insecure: true\n").unwrap_err();
        assert!(e.contains("insecure"), "{e}");
    }

    #[test]
    fn global_defaults_fill_only_gaps() {
        let mut c = parse("to: a@x.org\nfrom: me@x.org\n").unwrap();
        let g = SmtpDefaults {
            smtp_from: Some("global@x.org".into()),
            smtp_smarthost: Some("localhost:25".into()),
            smtp_hello: Some("fw".into()),
            smtp_auth_username: Some("user".into()),
            smtp_auth_password: Some("pw".into()),
            smtp_require_tls: Some(false),
        };
        c.apply_defaults(&g);
        assert_eq!(c.from.as_deref(), Some("me@x.org"));
        assert_eq!(c.smarthost.as_deref(), Some("localhost:25"));
        assert_eq!(c.hello.as_deref(), Some("fw"));
        assert_eq!(c.auth_username.as_deref(), Some("user"));
        assert_eq!(c.auth_password.as_ref().map(Secret::expose), Some("pw"));
        assert_eq!(c.require_tls, Some(false));
        c.validate().unwrap();

        let mut own = parse("to: a@x.org\nrequire_tls: true\nauth_password_file: /run/pw\n").unwrap();
        own.apply_defaults(&g);
        assert_eq!(own.require_tls, Some(true));
        assert!(own.auth_password.is_none());
    }

    #[test]
    fn validation_names_the_missing_field() {
        let msg = |c: &EmailConfig| c.validate().unwrap_err().to_string();
        let mut c = minimal();
        c.to = None;
        assert_eq!(msg(&c), "email_configs: missing `to`");
        let mut c = minimal();
        c.from = Some(" ".into());
        assert_eq!(msg(&c), "email_configs: missing `from`");
        let mut c = minimal();
        c.smarthost = None;
        assert_eq!(msg(&c), "email_configs: missing `smarthost`");
        for bad in ["mail.example.org", "mail:smtp", ":25", "::1:25", "h:0"] {
            let mut c = minimal();
            c.smarthost = Some(bad.into());
            assert!(msg(&c).contains("`smarthost`"), "{bad}");
        }
        let mut c = minimal();
        c.to = Some("not an address".into());
        assert!(msg(&c).contains("`to`"));
        let mut c = minimal();
        c.auth_password = Some(Secret::new("pw"));
        assert_eq!(msg(&c), "email_configs: missing `auth_username`");
        // Custom templates are checked when the config loads.
        let mut c = minimal();
        c.html = Some("{{ .CommonLabels.alertname }}".into());
        assert!(c.validate().is_ok());
        c.html = Some("{{ .CommonLabels.alertname ".into());
        assert!(msg(&c).contains("`html`") && msg(&c).contains("template"), "{}", msg(&c));
        let mut c = minimal();
        c.headers.insert("Subject".into(), "{{ .Status }}".into());
        assert!(c.validate().is_ok());
        c.headers.insert("Subject".into(), "{{ nosuchfunc .Status }}".into());
        assert!(msg(&c).contains("`headers`"), "{}", msg(&c));
        let mut c = minimal();
        c.headers.insert("Reply-To".into(), "{{ .Status }}@example.com".into());
        assert!(msg(&c).contains("Subject, text and html only"), "{}", msg(&c));
        let mut c = minimal();
        c.html = Some(String::new());
        c.text = Some(String::new());
        assert!(msg(&c).contains("no body"));
        let mut c = minimal();
        c.text = Some("Look at the dashboard.".into());
        assert_eq!(c.text_source().unwrap(), BodySource::Literal("Look at the dashboard.".into()));
    }
}
