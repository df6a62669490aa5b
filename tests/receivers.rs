//! Receivers against real servers on 127.0.0.1: the webhook sender against
//! an axum app that records what it gets, the email sender against
//! `tests/support/smtp_sink.py` (aiosmtpd under Debian's /usr/bin/python3).
//! Every wait is bounded, so a broken sender fails a test instead of hanging.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use forewarn::notify::email::{self, EmailConfig};
use forewarn::notify::webhook::{hmac_sha256_hex, Secret, WebhookConfig, WebhookSender};
use forewarn::notify::{DeliveryError, Notification, NotifiedAlert, Status};
use forewarn::Labels;

const TEST_DEADLINE: Duration = Duration::from_secs(20);

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, h, m, s).unwrap()
}

fn alert(instance: &str, status: Status, ends: Option<DateTime<Utc>>) -> NotifiedAlert {
    NotifiedAlert {
        status,
        labels: Labels::from_pairs([
            ("alertname", "HighLatency"),
            ("service", "checkout"),
            ("instance", instance),
            ("severity", "page"),
        ]),
        annotations: Labels::from_pairs([
            ("summary", format!("p99 latency above 500ms on {instance}")),
            ("description", "Checkout requests are slow; customers notice.".to_string()),
            ("runbook_url", "https://runbooks.example.org/latency".to_string()),
        ]),
        starts_at: at(12, 0, 0),
        ends_at: ends,
        generator_url: "http://prometheus:9090/graph?g0.expr=latency".into(),
        fingerprint: format!("fp-{instance}"),
        notes: None,
    }
}

fn notification(alerts: Vec<NotifiedAlert>) -> Notification {
    Notification::new(
        "team-x",
        "{}:{alertname=\"HighLatency\"}".into(),
        Labels::from_pairs([("alertname", "HighLatency")]),
        alerts,
        "http://forewarn.example.org:9093",
    )
}

fn firing_two() -> Notification {
    notification(vec![alert("api-1:8080", Status::Firing, None), alert("api-2:8080", Status::Firing, None)])
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn retryable(r: Result<(), DeliveryError>) -> String {
    match r {
        Err(e @ DeliveryError::Retryable { .. }) => {
            eprintln!("retryable: {e}");
            e.to_string()
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
}

fn permanent(r: Result<(), DeliveryError>) -> String {
    match r {
        Err(e @ DeliveryError::Permanent { .. }) => {
            eprintln!("permanent: {e}");
            e.to_string()
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------- webhook

type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

async fn record(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock().unwrap().push((headers, v));
    StatusCode::OK
}

async fn fail_with(Path(code): Path<u16>) -> (StatusCode, &'static str) {
    (StatusCode::from_u16(code).unwrap(), "boom: upstream\nexploded")
}

async fn hang() -> StatusCode {
    tokio::time::sleep(Duration::from_secs(60)).await;
    StatusCode::OK
}

async fn webhook_server() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/hook", post(record))
        .route("/status/{code}", post(fail_with))
        .route("/hang", post(hang))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TEST_DEADLINE, f).await.expect("test step took too long")
}

#[tokio::test]
async fn webhook_posts_alertmanager_json() {
    install_crypto();
    let (addr, seen) = webhook_server().await;
    let mut cfg = WebhookConfig::new(&format!("http://{addr}/hook"));
    cfg.headers.insert("X-Team".into(), Secret::new("payments"));
    cfg.http_config.bearer_token = Some(Secret::new("tok3n"));
    cfg.hmac_secret = Some(Secret::new("shared-secret"));
    cfg.validate().unwrap();
    let sender = WebhookSender::new();

    bounded(sender.send(&cfg, &firing_two())).await.unwrap();

    let (headers, body) = seen.lock().unwrap().pop().unwrap();
    let alert_json = |instance: &str| {
        json!({
            "status": "firing",
            "labels": {"alertname": "HighLatency", "instance": instance, "service": "checkout", "severity": "page"},
            "annotations": {
                "description": "Checkout requests are slow; customers notice.",
                "runbook_url": "https://runbooks.example.org/latency",
                "summary": format!("p99 latency above 500ms on {instance}"),
            },
            "startsAt": "2024-05-01T12:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=latency",
            "fingerprint": format!("fp-{instance}"),
        })
    };
    let expected = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"HighLatency\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "team-x",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency", "service": "checkout", "severity": "page"},
        "commonAnnotations": {
            "description": "Checkout requests are slow; customers notice.",
            "runbook_url": "https://runbooks.example.org/latency",
        },
        "externalURL": "http://forewarn.example.org:9093",
        "alerts": [alert_json("api-1:8080"), alert_json("api-2:8080")],
    });
    assert_eq!(body, expected);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-team"], "payments");
    assert_eq!(headers["authorization"], "Bearer tok3n");
    assert!(headers["user-agent"].to_str().unwrap().starts_with("forewarn/"));
    // The signature covers the exact bytes sent; re-serializing the parsed
    // body reproduces them because serde_json keeps keys sorted both times.
    let sig = headers["x-forewarn-signature"].to_str().unwrap().to_string();
    let bytes = serde_json::to_vec(&body).unwrap();
    assert_eq!(sig, format!("sha256={}", hmac_sha256_hex(b"shared-secret", &bytes)));
}

#[tokio::test]
async fn webhook_resolved_truncation_and_send_resolved() {
    install_crypto();
    let (addr, seen) = webhook_server().await;
    let sender = WebhookSender::new();
    let mut cfg = WebhookConfig::new(&format!("http://{addr}/hook"));
    let resolved = notification(vec![
        alert("api-1:8080", Status::Resolved, Some(at(12, 5, 0))),
        alert("api-2:8080", Status::Resolved, Some(at(12, 6, 30))),
    ]);

    bounded(sender.send(&cfg, &resolved)).await.unwrap();
    let (_, body) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(body["status"], "resolved");
    assert_eq!(body["alerts"][0]["status"], "resolved");
    assert_eq!(body["alerts"][0]["endsAt"], "2024-05-01T12:05:00Z");
    assert_eq!(body["alerts"][1]["endsAt"], "2024-05-01T12:06:30Z");

    cfg.max_alerts = 1;
    bounded(sender.send(&cfg, &firing_two())).await.unwrap();
    let (_, body) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(body["truncatedAlerts"], 1);

    cfg.max_alerts = 0;
    cfg.send_resolved = false;
    bounded(sender.send(&cfg, &resolved)).await.unwrap();
    assert!(seen.lock().unwrap().is_empty(), "a resolved-only group must not be sent");
    let mixed = notification(vec![
        alert("api-1:8080", Status::Firing, None),
        alert("api-2:8080", Status::Resolved, Some(at(12, 5, 0))),
    ]);
    bounded(sender.send(&cfg, &mixed)).await.unwrap();
    let (_, body) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(body["alerts"][0]["labels"]["instance"], "api-1:8080");
    assert_eq!(body["commonLabels"]["instance"], "api-1:8080");
}

#[tokio::test]
async fn webhook_status_codes_map_to_retry_or_not() {
    install_crypto();
    let (addr, _) = webhook_server().await;
    let sender = WebhookSender::new();
    let n = firing_two();
    let send = |code: u16| {
        let cfg = WebhookConfig::new(&format!("http://user:hunter2@{addr}/status/{code}?token=zzz"));
        let sender = sender.clone();
        let n = n.clone();
        async move { bounded(sender.send(&cfg, &n)).await }
    };

    let e = retryable(send(500).await);
    assert!(e.contains(&format!("http://{addr}/status/500?…")), "{e}");
    assert!(e.contains("500") && e.contains("boom: upstream exploded"), "{e}");
    assert!(!e.contains("hunter2") && !e.contains("zzz"), "{e}");
    retryable(send(503).await);
    retryable(send(429).await);

    let e = permanent(send(400).await);
    assert!(e.contains("400") && e.contains("boom"), "{e}");
    permanent(send(404).await);
}

#[tokio::test]
async fn webhook_hanging_server_times_out_as_retryable() {
    install_crypto();
    let (addr, _) = webhook_server().await;
    let mut cfg = WebhookConfig::new(&format!("http://{addr}/hang"));
    cfg.timeout = forewarn::duration::PromDuration(Duration::from_millis(700));
    let started = Instant::now();
    let e = retryable(bounded(WebhookSender::new().send(&cfg, &firing_two())).await);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(650) && took < Duration::from_secs(3), "took {took:?}");
    assert!(e.contains("timeout"), "{e}");
}

#[tokio::test]
async fn webhook_connection_refused_is_retryable() {
    install_crypto();
    let cfg = WebhookConfig::new(&format!("http://127.0.0.1:{}/hook", closed_port()));
    let e = retryable(bounded(WebhookSender::new().send(&cfg, &firing_two())).await);
    assert!(e.contains("could not connect"), "{e}");
}

#[tokio::test]
async fn webhook_url_file_is_read_at_send_time() {
    install_crypto();
    let (addr, seen) = webhook_server().await;
    let dir = scratch_dir("url-file");
    let path = dir.join("url");
    std::fs::write(&path, format!("http://{addr}/hook\n")).unwrap();
    let mut cfg = WebhookConfig::new("http://unused/");
    cfg.url = None;
    cfg.url_file = Some(path.clone());
    cfg.validate().unwrap();
    bounded(WebhookSender::new().send(&cfg, &firing_two())).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
    std::fs::remove_file(&path).unwrap();
    let e = permanent(bounded(WebhookSender::new().send(&cfg, &firing_two())).await);
    assert!(e.contains("url_file"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------ email

fn scratch_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("forewarn-receivers-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `smtp_sink.py` running for one test; stopped (SIGTERM) when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl SmtpSink {
    fn start(extra: &[&str]) -> SmtpSink {
        let dir = scratch_dir("smtp");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--port", "0", "--dir"])
            .arg(&dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning /usr/bin/python3 tests/support/smtp_sink.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(15)).expect("smtp_sink.py did not print its port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("smtp_sink.py printed {line:?}, not a port"));
        SmtpSink { child, port, dir }
    }

    fn config(&self) -> EmailConfig {
        EmailConfig {
            to: Some("oncall@example.org, \"Team X\" <team-x@example.org>".into()),
            from: Some("forewarn@example.org".into()),
            smarthost: Some(format!("127.0.0.1:{}", self.port)),
            hello: Some("forewarn.test".into()),
            require_tls: Some(false),
            ..EmailConfig::default()
        }
    }

    /// Message `n` (from 1): its envelope and raw text, if it arrived.
    fn message(&self, n: usize) -> Option<(Value, String)> {
        let eml = std::fs::read(self.dir.join(format!("{n}.eml"))).ok()?;
        let meta = std::fs::read(self.dir.join(format!("{n}.json"))).ok()?;
        Some((serde_json::from_slice(&meta).unwrap(), String::from_utf8_lossy(&eml).into_owned()))
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Undoes quoted-printable soft breaks and `=XX` escapes, enough to search
/// a MIME body for text.
fn unqp(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn email_is_delivered_with_subject_recipients_and_story() {
    install_crypto();
    let sink = SmtpSink::start(&[]);
    let mut cfg = sink.config();
    cfg.headers.insert("Reply-To".into(), "ops@example.org".into());
    cfg.validate().unwrap();

    bounded(email::send(&cfg, &firing_two())).await.unwrap();

    let (meta, raw) = sink.message(1).expect("message 1 arrived");
    assert_eq!(meta["mail_from"], "forewarn@example.org");
    assert_eq!(meta["rcpt_tos"], json!(["oncall@example.org", "team-x@example.org"]));
    assert_eq!(meta["helo"], "forewarn.test");
    let body = unqp(&raw);
    assert!(raw.contains("Subject: [FIRING:2] HighLatency (checkout page)"), "{raw}");
    assert!(raw.contains("From: forewarn@example.org"), "{raw}");
    assert!(raw.contains("oncall@example.org") && raw.contains("\"Team X\" <team-x@example.org>"), "{raw}");
    assert!(raw.contains("Reply-To: ops@example.org"), "{raw}");
    assert!(raw.contains("multipart/alternative") && raw.contains("text/html"), "{raw}");
    for needle in [
        "2 firing",
        "* HighLatency: p99 latency above 500ms on api-1:8080",
        "* HighLatency: p99 latency above 500ms on api-2:8080",
        "firing since 2024-05-01 12:00:00 UTC",
        "Checkout requests are slow; customers notice.",
        "labels: instance=api-1:8080 service=checkout severity=page",
        "runbook_url: https://runbooks.example.org/latency",
        "source: http://prometheus:9090/graph?g0.expr=latency",
        "Open forewarn: http://forewarn.example.org:9093",
    ] {
        assert!(body.contains(needle), "missing {needle:?} in\n{body}");
    }
    assert!(sink.message(2).is_none());
}

#[tokio::test]
async fn email_resolved_only_respects_send_resolved() {
    install_crypto();
    let sink = SmtpSink::start(&[]);
    let mut cfg = sink.config();
    let resolved = notification(vec![alert("api-1:8080", Status::Resolved, Some(at(12, 5, 0)))]);
    bounded(email::send(&cfg, &resolved)).await.unwrap();
    assert!(sink.message(1).is_none(), "send_resolved defaults to false");
    cfg.send_resolved = true;
    bounded(email::send(&cfg, &resolved)).await.unwrap();
    let (_, raw) = sink.message(1).expect("resolved message arrived");
    assert!(raw.contains("Subject: [RESOLVED] HighLatency"), "{raw}");
    assert!(unqp(&raw).contains("until 12:05:00 UTC (for 5m)"), "{raw}");
}

#[tokio::test]
async fn email_auth_and_server_replies() {
    install_crypto();
    let sink = SmtpSink::start(&["--auth", "fw:s3cret"]);
    let mut cfg = sink.config();
    cfg.auth_username = Some("fw".into());
    cfg.auth_password = Some(Secret::new("s3cret"));
    bounded(email::send(&cfg, &firing_two())).await.unwrap();
    let (meta, _) = sink.message(1).expect("authenticated message arrived");
    assert_eq!(meta["login"], "fw");

    cfg.auth_password = Some(Secret::new("wrong"));
    let e = permanent(bounded(email::send(&cfg, &firing_two())).await);
    assert!(e.contains("535") && !e.contains("wrong"), "{e}");
    drop(sink);

    let busy = SmtpSink::start(&["--data-reply", "451 4.3.0 Try again later"]);
    let e = retryable(bounded(email::send(&busy.config(), &firing_two())).await);
    assert!(e.contains("451"), "{e}");
    drop(busy);

    let strict = SmtpSink::start(&["--data-reply", "554 5.7.1 Message rejected"]);
    let e = permanent(bounded(email::send(&strict.config(), &firing_two())).await);
    assert!(e.contains("554"), "{e}");
}

#[tokio::test]
async fn email_requires_starttls_by_default() {
    install_crypto();
    let sink = SmtpSink::start(&[]);
    let mut cfg = sink.config();
    cfg.require_tls = None;
    let e = permanent(bounded(email::send(&cfg, &firing_two())).await);
    assert!(e.to_lowercase().contains("starttls"), "{e}");
    assert!(sink.message(1).is_none());
}

#[tokio::test]
async fn email_connection_refused_is_retryable() {
    install_crypto();
    let cfg = EmailConfig {
        to: Some("oncall@example.org".into()),
        from: Some("forewarn@example.org".into()),
        smarthost: Some(format!("127.0.0.1:{}", closed_port())),
        require_tls: Some(false),
        ..EmailConfig::default()
    };
    let started = Instant::now();
    let e = retryable(bounded(email::send(&cfg, &firing_two())).await);
    assert!(e.contains("email via 127.0.0.1:"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn email_invalid_config_is_permanent() {
    install_crypto();
    let cfg = EmailConfig { to: Some("oncall@example.org".into()), ..EmailConfig::default() };
    let e = permanent(bounded(email::send(&cfg, &firing_two())).await);
    assert!(e.contains("missing `from`"), "{e}");
}
