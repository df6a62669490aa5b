//! The `webhook_configs` entry of a receiver, as Alertmanager spells it.
//!
//! Parsing is strict (`deny_unknown_fields`) so a typo such as `send_resolve`
//! is an error at load time instead of a silently ignored option, and
//! [`WebhookConfig::validate`] catches what serde cannot (url vs url_file,
//! two kinds of auth at once, header names that HTTP would reject). Secrets
//! are wrapped in `Secret` (`crate::http_client`) so a `{:?}` of a config never prints them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::duration::PromDuration;
pub use crate::http_client::{redact_url, Authorization, BasicAuth, Secret, TlsConfig};

/// A config mistake, named by the key that carries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookConfigError {
    #[error("webhook_configs: missing `{0}`")]
    Missing(&'static str),
    #[error("webhook_configs: invalid `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("webhook_configs: at most one of {0} may be set")]
    Conflict(&'static str),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> WebhookConfigError {
    WebhookConfigError::Invalid { field, reason: reason.into() }
}

/// One entry of a receiver's `webhook_configs`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Also notify when the whole group is resolved (Alertmanager: true).
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    /// Where to POST; a secret because tokens often live in the path.
    #[serde(default)]
    pub url: Option<Secret>,
    /// A file whose (trimmed) content is the URL, read at each send.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    #[serde(default)]
    pub http_config: HttpConfig,
    /// At most this many alerts per message; 0 means all.
    #[serde(default)]
    pub max_alerts: usize,
    /// Whole-request deadline; `0s` means none. forewarn's default is 10s
    /// (Alertmanager's is 0s) so a hung endpoint cannot stall a group.
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    /// forewarn extra: headers added to every request.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// forewarn extra: when set, requests carry
    /// `X-Forewarn-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    #[serde(default)]
    pub hmac_secret: Option<Secret>,
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> PromDuration {
    PromDuration::from_secs(10)
}

/// The subset of Prometheus' `http_config` a webhook needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default)]
    pub authorization: Option<Authorization>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Deprecated in Prometheus in favour of `authorization`, still accepted.
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_config: TlsConfig,
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            authorization: None,
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
        }
    }
}

impl WebhookConfig {
    /// A config for `url` with every other key at its default.
    pub fn new(url: &str) -> Self {
        WebhookConfig {
            send_resolved: true,
            url: Some(Secret::new(url)),
            url_file: None,
            http_config: HttpConfig::default(),
            max_alerts: 0,
            timeout: default_timeout(),
            headers: BTreeMap::new(),
            hmac_secret: None,
        }
    }

    /// Checks what the types cannot: call once after loading the config.
    pub fn validate(&self) -> Result<(), WebhookConfigError> {
        match (&self.url, &self.url_file) {
            (None, None) => return Err(WebhookConfigError::Missing("url")),
            (Some(_), Some(_)) => return Err(WebhookConfigError::Conflict("`url` and `url_file`")),
            (Some(u), None) => {
                check_url(u.expose())?;
            }
            (None, Some(p)) => check_path("url_file", p)?,
        }
        let h = &self.http_config;
        let bearer = h.bearer_token.is_some() || h.bearer_token_file.is_some();
        let kinds = [h.authorization.is_some(), h.basic_auth.is_some(), bearer];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(WebhookConfigError::Conflict("`authorization`, `basic_auth` and `bearer_token`"));
        }
        if h.bearer_token.is_some() && h.bearer_token_file.is_some() {
            return Err(WebhookConfigError::Conflict("`bearer_token` and `bearer_token_file`"));
        }
        if let Some(a) = &h.authorization {
            if a.kind.trim().is_empty() || a.kind.contains(char::is_whitespace) {
                return Err(invalid("http_config.authorization.type", format!("{:?} is not a single word", a.kind)));
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                return Err(invalid("http_config.authorization.type", "use `basic_auth` for Basic"));
            }
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return Err(WebhookConfigError::Conflict(
                    "`authorization.credentials` and `authorization.credentials_file`",
                ));
            }
        }
        if let Some(b) = &h.basic_auth {
            if b.username.is_empty() {
                return Err(WebhookConfigError::Missing("http_config.basic_auth.username"));
            }
            if b.password.is_some() && b.password_file.is_some() {
                return Err(WebhookConfigError::Conflict("`basic_auth.password` and `basic_auth.password_file`"));
            }
        }
        for (name, value) in &self.headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid("headers", format!("{name:?} is not a valid header name")))?;
            reqwest::header::HeaderValue::from_str(value.expose())
                .map_err(|_| invalid("headers", format!("the value of {name:?} is not a valid header value")))?;
        }
        if matches!(&self.hmac_secret, Some(s) if s.is_empty()) {
            return Err(invalid("hmac_secret", "empty"));
        }
        Ok(())
    }
}

fn check_path(field: &'static str, p: &Path) -> Result<(), WebhookConfigError> {
    if p.as_os_str().is_empty() {
        return Err(invalid(field, "empty path"));
    }
    Ok(())
}

/// Checks a webhook URL; errors never repeat the URL (it may hold a token).
pub(crate) fn check_url(raw: &str) -> Result<reqwest::Url, WebhookConfigError> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| invalid("url", format!("not a URL ({e})")))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(invalid("url", format!("scheme {other:?} is not http or https"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("url", "no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<WebhookConfig, String> {
        serde_saphyr::from_str::<WebhookConfig>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_match_alertmanager_except_timeout() {
        let c = parse("url: http://example.org/hook\n").unwrap();
        assert!(c.send_resolved);
        assert_eq!(c.max_alerts, 0);
        assert_eq!(c.timeout, PromDuration::from_secs(10));
        assert!(c.http_config.follow_redirects);
        assert_eq!(c.http_config.tls_config, TlsConfig::default());
        assert!(c.headers.is_empty() && c.hmac_secret.is_none());
        c.validate().unwrap();
        assert_eq!(c, WebhookConfig::new("http://example.org/hook"));
    }

    #[test]
    fn full_config_parses() {
        let c = parse(
            r#"
url: https://hooks.example.org/a?token=abc
send_resolved: false
max_alerts: 5
timeout: 3s
http_config:
  authorization:
    credentials: s3cret
  tls_config:
    insecure_skip_verify: true
    ca_file: /etc/ca.pem
  follow_redirects: false
headers:
  X-Team: payments
hmac_secret: shh
"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert!(!c.send_resolved);
        assert_eq!(c.max_alerts, 5);
        assert_eq!(c.timeout, PromDuration::from_secs(3));
        let a = c.http_config.authorization.as_ref().unwrap();
        assert_eq!(a.kind, "Bearer");
        assert_eq!(a.credentials.as_ref().unwrap().expose(), "s3cret");
        assert!(c.http_config.tls_config.insecure_skip_verify);
        assert_eq!(c.headers["X-Team"].expose(), "payments");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret") && !dbg.contains("shh") && !dbg.contains("abc"), "{dbg}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = parse("url: http://x/\nsend_resolve: true\n").unwrap_err();
        assert!(e.contains("send_resolve"), "{e}");
        let e = parse("url: http://x/\nhttp_config:\n  basic_auth:\n    username: u\n    pasword: p\n").unwrap_err();
        assert!(e.contains("pasword"), "{e}");
        assert!(parse("url: http://x/\ntimeout: 10\n").is_err());
    }

    #[test]
    fn validation_names_the_problem() {
        let mut c = WebhookConfig::new("http://x/");
        c.url = None;
        assert_eq!(c.validate().unwrap_err().to_string(), "webhook_configs: missing `url`");
        c.url_file = Some("/run/secret/url".into());
        c.validate().unwrap();
        c.url = Some(Secret::new("http://x/"));
        assert!(c.validate().unwrap_err().to_string().contains("`url_file`"));

        let e = WebhookConfig::new("ftp://x/").validate().unwrap_err().to_string();
        assert!(e.contains("`url`") && e.contains("ftp"), "{e}");
        let e = WebhookConfig::new("not a url?token=zzz").validate().unwrap_err().to_string();
        assert!(!e.contains("zzz"), "{e}");

        let mut c = WebhookConfig::new("http://x/");
        c.http_config.bearer_token = Some(Secret::new("t"));
        c.http_config.basic_auth = Some(BasicAuth { username: "u".into(), password: None, password_file: None });
        assert!(matches!(c.validate(), Err(WebhookConfigError::Conflict(_))));

        let mut c = WebhookConfig::new("http://x/");
        c.headers.insert("Bad Header".into(), Secret::new("v"));
        assert!(c.validate().unwrap_err().to_string().contains("headers"));
    }

    #[test]
    fn redaction_drops_credentials_and_query() {
        let u = reqwest::Url::parse("https://user:pw@example.org:8443/hook/x?token=abc#f").unwrap();
        assert_eq!(redact_url(&u), "https://example.org:8443/hook/x?…");
        let u = reqwest::Url::parse("http://example.org/hook").unwrap();
        assert_eq!(redact_url(&u), "http://example.org/hook");
    }
}
