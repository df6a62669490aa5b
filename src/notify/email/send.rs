//! Delivering a rendered notification over SMTP with lettre.
//!
//! This file owns the SMTP session (TLS mode, EHLO name, authentication)
//! and the mapping of its outcome onto [`DeliveryError`]: 4xx replies,
//! refused connections and timeouts are retried; 5xx replies, TLS failures
//! and config mistakes are not, since the next attempt would meet the same
//! answer. One connection per message: no pool, nothing to go stale.

use std::str::FromStr;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailboxes, Message, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config::{EmailConfig, TlsMode};
use super::render::{render, Rendered};
use crate::notify::webhook::without_resolved;
use crate::notify::{DeliveryError, Notification};

/// Deadline for each SMTP command (lettre's own timeout).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline for the whole exchange, so a trickling server cannot hold a
/// notification forever.
const SESSION_TIMEOUT: Duration = Duration::from_secs(90);

/// Headers forewarn sets itself and `headers` may only override through
/// the dedicated handling below.
const OWN_HEADERS: [&str; 8] =
    ["subject", "to", "from", "date", "message-id", "content-type", "content-transfer-encoding", "mime-version"];

/// Sends `n` as one email per [`EmailConfig`].
///
/// With `send_resolved: false` (the default), resolved alerts are left out
/// and a notification with nothing firing is skipped (and counts as sent).
pub async fn send(cfg: &EmailConfig, n: &Notification) -> Result<(), DeliveryError> {
    send_with_timeout(cfg, n, SESSION_TIMEOUT).await
}

/// [`send`] with a caller-chosen deadline for the whole SMTP exchange.
pub async fn send_with_timeout(cfg: &EmailConfig, n: &Notification, timeout: Duration) -> Result<(), DeliveryError> {
    let filtered;
    let n = if cfg.send_resolved {
        n
    } else {
        match without_resolved(n) {
            Some(f) => {
                filtered = f;
                &filtered
            }
            None => {
                tracing::debug!(receiver = %n.receiver, group_key = %n.group_key, "email: nothing firing and send_resolved is false; skipped");
                return Ok(());
            }
        }
    };
    let permanent = |message: String| DeliveryError::Permanent { receiver: n.receiver.clone(), message };
    let retryable = |message: String| DeliveryError::Retryable { receiver: n.receiver.clone(), message };

    cfg.validate().map_err(|e| permanent(e.to_string()))?;
    let (host, port) = cfg.host_port().map_err(|e| permanent(e.to_string()))?;
    let smarthost = format!("{host}:{port}");
    let message = build_message(cfg, &render(cfg, n)).map_err(|e| permanent(format!("email via {smarthost}: {e}")))?;
    let transport = transport(cfg, &host, port).map_err(|e| permanent(format!("email via {smarthost}: {e}")))?;

    let recipients = message.envelope().to().len();
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(timeout, transport.send(message)).await;
    match outcome {
        Ok(Ok(resp)) => {
            tracing::debug!(
                receiver = %n.receiver, smarthost = %smarthost, recipients, alerts = n.alerts.len(),
                code = %resp.code(), elapsed_ms = started.elapsed().as_millis() as u64, "email delivered"
            );
            Ok(())
        }
        Ok(Err(e)) => {
            let (mut msg, retry) = classify(&e);
            if e.is_client() && msg.contains("STARTTLS") {
                msg.push_str(" (require_tls is true, the default; set require_tls: false only for a trusted relay)");
            }
            tracing::debug!(receiver = %n.receiver, smarthost = %smarthost, error = %msg, retry, "email delivery failed");
            let msg = format!("email via {smarthost}: {msg}");
            Err(if retry { retryable(msg) } else { permanent(msg) })
        }
        Err(_) => {
            tracing::debug!(receiver = %n.receiver, smarthost = %smarthost, "email delivery timed out");
            Err(retryable(format!("email via {smarthost}: no answer within {}s", timeout.as_secs())))
        }
    }
}

/// Says what an SMTP failure was and whether it is worth a retry.
fn classify(e: &lettre::transport::smtp::Error) -> (String, bool) {
    if e.is_permanent() {
        (format!("rejected by the server: {e}"), false)
    } else if e.is_transient() {
        (format!("temporarily refused by the server: {e}"), true)
    } else if e.is_timeout() {
        (format!("timed out: {e}"), true)
    } else if e.is_tls() {
        (format!("TLS failed (check tls_config, require_tls and the port): {e}"), false)
    } else if e.is_client() {
        (format!("cannot proceed: {e}"), false)
    } else {
        (format!("connection failed: {e}"), true)
    }
}

/// The MIME message: headers from the config, the rendered parts.
pub fn build_message(cfg: &EmailConfig, r: &Rendered) -> Result<Message, String> {
    let from = cfg.sender().map_err(|e| e.to_string())?;
    let rcpt = cfg.recipients().map_err(|e| e.to_string())?;
    let header_to = match cfg.header("To") {
        Some(v) => Mailboxes::from_str(v).map_err(|e| format!("header To: {e}"))?,
        None => rcpt.clone(),
    };
    let header_from = match cfg.header("From") {
        Some(v) => lettre::message::Mailbox::from_str(v).map_err(|e| format!("header From: {e}"))?,
        None => from.clone(),
    };
    let envelope = Envelope::new(Some(from.email.clone()), rcpt.iter().map(|m| m.email.clone()).collect())
        .map_err(|e| format!("envelope: {e}"))?;

    let mut b = Message::builder()
        .from(header_from)
        .subject(r.subject.clone())
        .date_now()
        .message_id(None)
        .user_agent(format!("forewarn/{}", env!("CARGO_PKG_VERSION")))
        .envelope(envelope);
    for to in header_to {
        b = b.to(to);
    }
    for (name, value) in &cfg.headers {
        if OWN_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        let hn = HeaderName::new_from_ascii(name.clone()).map_err(|_| format!("invalid header name {name:?}"))?;
        b = b.raw_header(HeaderValue::new(hn, value.clone()));
    }
    let built = match (&r.text, &r.html) {
        (Some(t), Some(h)) if !r.images.is_empty() => b.multipart(
            MultiPart::alternative().singlepart(SinglePart::plain(t.clone())).multipart(with_images(h, &r.images)),
        ),
        (None, Some(h)) if !r.images.is_empty() => b.multipart(with_images(h, &r.images)),
        (Some(t), Some(h)) => b.multipart(MultiPart::alternative_plain_html(t.clone(), h.clone())),
        (Some(t), None) => b.singlepart(SinglePart::plain(t.clone())),
        (None, Some(h)) => b.singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(h.clone())),
        (None, None) => return Err("the message has no body (text and html are both empty)".to_string()),
    };
    built.map_err(|e| format!("building the message: {e}"))
}

/// The HTML part with its inline charts (`multipart/related`).
fn with_images(html: &str, images: &[super::changes::InlineImage]) -> MultiPart {
    let mut m = MultiPart::related().singlepart(SinglePart::html(html.to_string()));
    for img in images {
        let png = ContentType::parse("image/png").unwrap_or(ContentType::TEXT_PLAIN);
        m = m.singlepart(lettre::message::Attachment::new_inline(img.cid.clone()).body(img.png.clone(), png));
    }
    m
}

fn transport(cfg: &EmailConfig, host: &str, port: u16) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let mode = cfg.tls_mode().map_err(|e| e.to_string())?;
    let tls = match mode {
        TlsMode::None => Tls::None,
        TlsMode::StartTls => Tls::Required(tls_parameters(cfg, host)?),
        TlsMode::Implicit => Tls::Wrapper(tls_parameters(cfg, host)?),
    };
    let hello = cfg.hello.clone().unwrap_or_else(|| "localhost".to_string());
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .hello_name(ClientId::Domain(hello))
        .timeout(Some(COMMAND_TIMEOUT));
    if let Some(user) = cfg.auth_username.as_deref().filter(|u| !u.is_empty()) {
        let password = match (&cfg.auth_password, &cfg.auth_password_file) {
            (Some(p), _) => p.expose().to_string(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("reading auth_password_file {}: {e}", f.display()))?,
            (None, None) => String::new(),
        };
        b = b.credentials(Credentials::new(user.to_string(), password));
    }
    Ok(b.build())
}

fn tls_parameters(cfg: &EmailConfig, host: &str) -> Result<TlsParameters, String> {
    let t = &cfg.tls_config;
    let domain = t.server_name.clone().unwrap_or_else(|| host.to_string());
    let mut b = TlsParameters::builder(domain).dangerous_accept_invalid_certs(t.insecure_skip_verify);
    if let Some(path) = &t.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("reading tls_config.ca_file {}: {e}", path.display()))?;
        let cert =
            Certificate::from_pem(&pem).map_err(|e| format!("parsing tls_config.ca_file {}: {e}", path.display()))?;
        b = b.certificate_store(CertificateStore::None).add_root_certificate(cert);
    }
    b.build_rustls().map_err(|e| format!("TLS setup: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EmailConfig {
        EmailConfig {
            to: Some("a@example.org, \"On Call\" <oncall@example.org>".into()),
            from: Some("fw@example.org".into()),
            smarthost: Some("127.0.0.1:25".into()),
            ..EmailConfig::default()
        }
    }

    fn rendered() -> Rendered {
        Rendered {
            subject: "[FIRING:1] X".into(),
            text: Some("hello".into()),
            html: Some("<p>hello</p>".into()),
            images: Vec::new(),
        }
    }

    #[test]
    fn message_has_envelope_and_headers() {
        let mut c = cfg();
        c.headers.insert("Reply-To".into(), "ops@example.org".into());
        c.headers.insert("To".into(), "list@example.org".into());
        let m = build_message(&c, &rendered()).unwrap();
        let rcpt: Vec<String> = m.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(rcpt, ["a@example.org", "oncall@example.org"]);
        assert_eq!(m.envelope().from().map(|a| a.to_string()).as_deref(), Some("fw@example.org"));
        let raw = String::from_utf8_lossy(&m.formatted()).to_string();
        assert!(raw.contains("Subject: [FIRING:1] X"), "{raw}");
        assert!(raw.contains("To: list@example.org"), "{raw}");
        assert!(raw.contains("Reply-To: ops@example.org"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
    }

    #[test]
    fn html_only_and_text_only() {
        let mut r = rendered();
        r.html = None;
        let raw = String::from_utf8_lossy(&build_message(&cfg(), &r).unwrap().formatted()).to_string();
        assert!(raw.contains("text/plain") && !raw.contains("text/html"), "{raw}");
        r.text = None;
        r.html = Some("<p>x</p>".into());
        let raw = String::from_utf8_lossy(&build_message(&cfg(), &r).unwrap().formatted()).to_string();
        assert!(raw.contains("text/html") && !raw.contains("text/plain"), "{raw}");
    }
}
