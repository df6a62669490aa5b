//! End to end: the real `forewarn` binary scrapes a target on 127.0.0.1
//! whose value crosses a threshold, and a real webhook listener and a real
//! SMTP server (Debian's python3-aiosmtpd) receive the firing and the
//! resolved notifications. Also: reload keeps old rules on a broken file,
//! SIGTERM exits cleanly.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, serve, temp_dir, wait_for, wait_listening, Daemon, SmtpSink, WebhookSink, BIN};

/// A target whose `app_queue_depth{queue="orders"}` is `value`; returns `host:port`.
async fn start_target(value: Arc<AtomicU64>) -> String {
    let target = Router::new()
        .route(
            "/metrics",
            get(|State(v): State<Arc<AtomicU64>>| async move {
                format!(
                    "# HELP app_queue_depth Items waiting.\n# TYPE app_queue_depth gauge\napp_queue_depth{{queue=\"orders\"}} {}\n",
                    f64::from_bits(v.load(Ordering::SeqCst))
                )
            }),
        )
        .with_state(value);
    serve(target).await
}

const RULES: &str = r#"groups:
  - name: queue
    interval: 1s
    rules:
      - alert: QueueDeep
        expr: app_queue_depth > 100
        labels: { severity: page }
        annotations:
          summary: "{{ $labels.queue }} queue holds {{ $value }} items"
"#;

/// The daemon scraping `target`, with QueueDeep going to the webhook at
/// `hook` and to the SMTP server on `smtp_port`, serving on `listen`.
fn daemon(dir: &Path, target: &str, hook: &str, smtp_port: u16, listen: &str) -> Daemon {
    let cfg = format!(
        r#"global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{target}"] }} ]
rule_files: [ "rules.yml" ]
route: {{ receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }}
receivers:
  - name: team
    webhook_configs: [ {{ url: "{hook}", send_resolved: true }} ]
    email_configs: [ {{ to: "team@example.com", from: "forewarn@example.com", smarthost: "127.0.0.1:{smtp_port}", require_tls: false, send_resolved: true }} ]
http: {{ listen: "{listen}", enable_lifecycle: true }}
"#
    );
    Daemon::write(dir, &cfg).file("rules.yml", RULES)
}

fn statuses(hooks: &WebhookSink) -> Vec<String> {
    hooks.bodies().iter().map(|v| v["status"].as_str().unwrap_or("").to_string()).collect()
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_crossing_reaches_webhook_and_email_then_resolves() {
    let dir = temp_dir("e2e");
    let value = Arc::new(AtomicU64::new(5f64.to_bits()));
    let target = start_target(value.clone()).await;
    let hooks = WebhookSink::start().await;
    let smtp = SmtpSink::start(&dir);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut daemon = daemon(&dir, &target, &hooks.url(), smtp.port, &listen).start();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();

    // Ready, and a few quiet scrapes: no alert while below the threshold.
    wait_listening(&listen, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(hooks.is_empty(), "no notification below the threshold");
    let targets: Value =
        client.get(format!("http://{listen}/api/v1/targets")).send().await.unwrap().json().await.unwrap();
    assert_eq!(targets["data"]["activeTargets"][0]["health"], "up", "{targets}");

    // Cross the threshold.
    let crossed = Instant::now();
    value.store(250f64.to_bits(), Ordering::SeqCst);
    let (arrived, firing) = wait_for("firing webhook", Duration::from_secs(15), || {
        hooks.received().into_iter().find(|(_, v)| v["status"] == "firing")
    })
    .await;
    let latency = arrived - crossed;
    eprintln!("threshold crossing -> webhook: {} ms (scrape and evaluation every 1s)", latency.as_millis());
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["receiver"], "team");
    let a = &firing["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "QueueDeep");
    assert_eq!(a["labels"]["job"], "app");
    assert_eq!(a["labels"]["instance"], target.as_str());
    assert_eq!(a["labels"]["queue"], "orders");
    assert_eq!(a["labels"]["severity"], "page");
    assert!(a["labels"].get("__name__").is_none());
    assert_eq!(a["annotations"]["summary"], "orders queue holds 250 items");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");

    // The API shows it firing.
    let alerts: Value =
        client.get(format!("http://{listen}/api/v1/alerts")).send().await.unwrap().json().await.unwrap();
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing", "{alerts}");

    // Back below: the resolved notification follows.
    value.store(7f64.to_bits(), Ordering::SeqCst);
    let (_, resolved) = wait_for("resolved webhook", Duration::from_secs(15), || {
        hooks.received().into_iter().find(|(_, v)| v["status"] == "resolved")
    })
    .await;
    let r = &resolved["alerts"][0];
    assert_eq!(r["status"], "resolved");
    assert_eq!(r["labels"]["alertname"], "QueueDeep");
    assert_ne!(r["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(statuses(&hooks), vec!["firing", "resolved"], "exactly one of each");

    // Email: a firing and a resolved message reached the real SMTP server.
    let mails = wait_for("two emails", Duration::from_secs(15), || Some(smtp.mails()).filter(|m| m.len() >= 2)).await;
    let first = std::fs::read_to_string(&mails[0]).unwrap();
    assert!(first.contains("Subject: [FIRING:1] QueueDeep"), "{first}");
    assert!(first.contains("team@example.com"), "{first}");
    assert!(first.contains("orders queue holds 250 items"), "{first}");
    let second = std::fs::read_to_string(&mails[1]).unwrap();
    assert!(second.contains("Subject: [RESOLVED] QueueDeep"), "{second}");

    // SIGTERM: clean exit.
    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = wait_for("exit", Duration::from_secs(10), || daemon.0.try_wait().ok().flatten()).await;
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_rule_file_on_reload_keeps_old_rules() {
    let dir = temp_dir("reload");
    let value = Arc::new(AtomicU64::new(500f64.to_bits()));
    let target = start_target(value).await;
    let hooks = WebhookSink::start().await;
    let listen = format!("127.0.0.1:{}", free_port());
    // Email goes to a closed port here; this test is about rules.
    let daemon = daemon(&dir, &target, &hooks.url(), free_port(), &listen).stderr(Stdio::piped()).start();
    wait_listening(&listen, Duration::from_secs(10)).await;
    wait_for("firing", Duration::from_secs(15), || (!hooks.is_empty()).then_some(())).await;

    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: queue\n    rules:\n      - alert: Broken\n        expr: rate(app_queue_depth[5m]\n",
    )
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let resp = client.post(format!("http://{listen}/-/reload")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let body = resp.text().await.unwrap();
    assert!(body.contains("rules.yml:5:15"), "error names file:line:col: {body}");

    // SIGHUP with the same broken file: still the old rule, still firing.
    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rules: Value = client.get(format!("http://{listen}/api/v1/rules")).send().await.unwrap().json().await.unwrap();
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["name"], "QueueDeep", "{rules}");
    assert_eq!(rule["state"], "firing", "{rules}");
    assert_eq!(rule["health"], "ok", "{rules}");

    // A good file is picked up.
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: queue\n    interval: 1s\n    rules:\n      - alert: QueueVeryDeep\n        expr: app_queue_depth > 1000\n",
    )
    .unwrap();
    let resp = client.post(format!("http://{listen}/-/reload")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let rules: Value = client.get(format!("http://{listen}/api/v1/rules")).send().await.unwrap().json().await.unwrap();
    assert_eq!(rules["data"]["groups"][0]["rules"][0]["name"], "QueueVeryDeep", "{rules}");
    // The self-metrics say the last reload worked.
    let metrics = client.get(format!("http://{listen}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("forewarn_config_last_reload_successful 1"), "{metrics}");
    assert!(metrics.contains("forewarn_scrapes_total"), "{metrics}");
}

#[test]
fn check_reports_file_line_col_and_exit_code() {
    let dir = temp_dir("check");
    let bad = dir.join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(rate(x[5m])\n      - alert: B\n        expr: up\n        fro: 5m\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("check").arg(&bad).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let b = bad.display().to_string();
    assert!(stdout.contains(&format!("{b}:8:9: ")), "unknown field at its line: {stdout}");
    assert!(stdout.contains("fro"), "{stdout}");

    // Every example rule file and the example config are valid (rules/tests
    // holds their unit tests, which `forewarn test rules` runs).
    let root = env!("CARGO_MANIFEST_DIR");
    let mut args: Vec<String> = std::fs::read_dir(format!("{root}/rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    assert!(args.iter().any(|a| a.ends_with("forewarn-self.yml")), "{args:?}");
    args.sort();
    let out = Command::new(BIN).arg("check").args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let cfg_dir = temp_dir("check-cfg");
    std::fs::create_dir_all(cfg_dir.join("rules")).unwrap();
    std::fs::copy(format!("{root}/forewarn.example.yml"), cfg_dir.join("forewarn.yml")).unwrap();
    std::fs::copy(format!("{root}/rules/target-down.yml"), cfg_dir.join("rules/target-down.yml")).unwrap();
    let out = Command::new(BIN).arg("check").arg(cfg_dir.join("forewarn.yml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_systemd_it_is_ready() {
    // Type=notify: systemd passes a datagram socket in NOTIFY_SOCKET and
    // waits for READY=1 once the daemon serves.
    let dir = temp_dir("notify");
    let sock_path = dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let value = Arc::new(AtomicU64::new(1f64.to_bits()));
    let target = start_target(value).await;
    let hooks = WebhookSink::start().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let daemon = daemon(&dir, &target, &hooks.url(), free_port(), &listen).env("NOTIFY_SOCKET", &sock_path).start();
    let msg = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a datagram from forewarn");
        String::from_utf8_lossy(&buf[..n]).to_string()
    })
    .await
    .unwrap();
    assert_eq!(msg, "READY=1");
    // By then the HTTP server answers.
    assert!(std::net::TcpStream::connect(&listen).is_ok());
    drop(daemon);
}
