//! Deploy markers end to end: the real `forewarn` binary, a real target, a
//! real webhook listener and a real SMTP server (tests/support/smtp_sink.py)
//! on 127.0.0.1.
//!
//! The story: a refactor of checkout was deployed hours ago (posted with
//! `forewarn deploy --at`) and rolled back 30 s ago; now a fan-out starts,
//! for another reason. The webhook and the email must say the deploy is not
//! the cause. Meanwhile a memory leak in cart starts right after a cart
//! deploy, and is tied to it. Then the target's `app_build_info` version
//! changes (a deploy forewarn sees by itself) and changes back (a rollback).

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

mod support;
use support::{free_port, serve, temp_dir, wait_for, wait_listening, Daemon, SmtpSink, WebhookSink, BIN};

const TOKEN: &str = "s3cret-token";

#[derive(Clone)]
struct Target {
    ratio: f64,
    leak: f64,
    version: String,
    start: f64,
}

type Shared = Arc<Mutex<Target>>;

/// The target serving `target`'s current values; returns `host:port`.
async fn start_target(target: Shared) -> String {
    let t = Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Shared>| async move {
                let t = s.lock().unwrap().clone();
                format!(
                    "events_ratio{{service=\"checkout\"}} {}\nleak_bytes{{service=\"cart\"}} {}\n\
                     app_build_info{{version=\"{}\",revision=\"r-{}\"}} 1\nprocess_start_time_seconds {}\n",
                    t.ratio, t.leak, t.version, t.version, t.start
                )
            }),
        )
        .with_state(target);
    serve(t).await
}

const RULES: &str = r#"groups:
  - name: story
    interval: 1s
    rules:
      - alert: FanOut
        expr: events_ratio{job="checkout"} > 0.8
      - alert: MemoryLeak
        expr: leak_bytes{job="cart"} > 1000
"#;

/// The daemon scraping `target` as checkout and cart, FanOut and MemoryLeak
/// going to the webhook at `hook` and the SMTP server on `smtp_port`.
fn daemon(dir: &Path, target: &str, hook: &str, smtp_port: u16, listen: &str) -> Daemon {
    let cfg = format!(
        r#"global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}
scrape_configs:
  - job_name: checkout
    static_configs: [ {{ targets: ["{target}"] }} ]
  - job_name: cart
    static_configs: [ {{ targets: ["{target}"] }} ]
rule_files: [ "rules.yml" ]
route: {{ receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }}
receivers:
  - name: team
    webhook_configs: [ {{ url: "{hook}" }} ]
    email_configs: [ {{ to: "team@example.com", from: "forewarn@example.com", smarthost: "127.0.0.1:{smtp_port}", require_tls: false }} ]
storage: {{ path: "{state}" }}
http: {{ listen: "{listen}" }}
deploys: {{ token: "{TOKEN}", lookback: 6h }}
"#,
        state = dir.join("state").display()
    );
    Daemon::write(dir, &cfg).file("rules.yml", RULES)
}

fn alert_in(hooks: &WebhookSink, name: &str) -> Option<Value> {
    hooks
        .bodies()
        .iter()
        .flat_map(|v| v["alerts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["labels"]["alertname"] == name)
}

/// Quoted-printable soft breaks and `=3D` undone, so phrases can be found.
fn readable_mail(raw: &str) -> String {
    raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

async fn markers(client: &reqwest::Client, listen: &str, service: &str) -> Vec<Value> {
    let v: Value = client
        .get(format!("http://{listen}/api/v1/deploys?service={service}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_story_end_to_end() {
    let dir = temp_dir("deploys");
    let target: Shared =
        Arc::new(Mutex::new(Target { ratio: 0.5, leak: 10.0, version: "2.2".into(), start: now_secs() - 3600.0 }));
    let target_addr = start_target(target.clone()).await;
    let hooks = WebhookSink::start().await;
    let smtp = SmtpSink::start(&dir);
    let listen = format!("127.0.0.1:{}", free_port());
    let _daemon = daemon(&dir, &target_addr, &hooks.url(), smtp.port, &listen).start();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    wait_listening(&listen, Duration::from_secs(10)).await;
    let api = format!("http://{listen}/api/v1/deploys");

    // The API refuses a missing token and names a bad field.
    let r = client.post(&api).json(&json!({"service": "checkout", "version": "9"})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client.post(&api).bearer_auth(TOKEN).json(&json!({"version": "9"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().starts_with("service:"), "{body}");

    // The refactor, 3 h ago, from a CI pipeline.
    let now_s = chrono::Utc::now().timestamp();
    let out = Command::new(BIN)
        .args(["deploy", "--service", "checkout", "--version", "2.3", "--commit", "abc123", "--by", "ci"])
        .args(["--at", &(now_s - 3 * 3600).to_string(), "--server", &format!("http://{listen}"), "--token", TOKEN])
        .output()
        .unwrap();
    assert!(out.status.success(), "forewarn deploy failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("recorded deploy 2.3 of checkout"));
    // Its rollback 30 s ago, and a cart deploy 2 min ago, through the API.
    for body in [
        json!({"service": "checkout", "version": "2.2", "kind": "rollback", "at": now_s - 30}),
        json!({"service": "cart", "version": "5.0", "at": (now_s - 120) * 1000, "url": "https://ci.example/cart/5"}),
    ] {
        let r = client.post(&api).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    assert_eq!(markers(&client, &listen, "checkout").await.len(), 2);

    // Grafana annotations: ms times, tag filter.
    let from = (now_s - 4 * 3600) * 1000;
    let ann: Value = client
        .get(format!(
            "http://{listen}/api/v1/annotations?from={from}&to={}&tags=checkout,rollback",
            (now_s + 60) * 1000
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ann = ann.as_array().unwrap();
    assert_eq!(ann.len(), 1, "{ann:?}");
    assert_eq!(ann[0]["time"], (now_s - 30) * 1000);
    assert_eq!(ann[0]["text"], "checkout rolled back to v2.2");

    // The fan-out and the leak begin.
    {
        let mut t = target.lock().unwrap();
        t.ratio = 1.0;
        t.leak = 5000.0;
    }
    let fan = wait_for("FanOut webhook", Duration::from_secs(20), || alert_in(&hooks, "FanOut")).await;
    let verdict = fan["verdict"].as_str().unwrap_or_default();
    assert!(verdict.contains("not the cause"), "{fan}");
    assert!(verdict.contains("rolled back to v2.2"), "{verdict}");
    let changes = fan["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{fan}");
    assert_eq!(changes[0]["text"], "checkout v2.3 deployed by ci 3 h before onset");
    assert_eq!(changes[0]["commit"], "abc123");
    let leak = wait_for("MemoryLeak webhook", Duration::from_secs(20), || alert_in(&hooks, "MemoryLeak")).await;
    let lv = leak["verdict"].as_str().unwrap_or_default();
    assert!(lv.starts_with("began ") && lv.ends_with("after cart v5.0 was deployed"), "{leak}");
    assert_eq!(leak["changes"].as_array().unwrap().len(), 1, "checkout's markers are not cart's: {leak}");

    // /api/v1/alerts carries the same correlation.
    let api: serde_json::Value =
        client.get(format!("http://{listen}/api/v1/alerts")).send().await.unwrap().json().await.unwrap();
    let listed = api["data"]["alerts"].as_array().unwrap();
    let fan_api = listed.iter().find(|a| a["labels"]["alertname"] == "FanOut").expect("FanOut listed");
    assert_eq!(fan_api["verdict"], fan["verdict"], "{fan_api}");
    assert_eq!(fan_api["fingerprint"], fan["fingerprint"], "{fan_api}");
    assert!(fan_api["changes"].as_array().is_some_and(|c| c.len() == 2), "{fan_api}");

    // The chart the webhook links to.
    let url = fan["chartURL"].as_str().unwrap();
    assert_eq!(url, format!("http://{listen}/api/v1/alerts/{}/chart.svg", fan["fingerprint"].as_str().unwrap()));
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let svg = r.text().await.unwrap();
    assert!(svg.contains("checkout rollback to v2.2") && svg.contains("&gt; 0.8"), "markers and threshold drawn");
    let r = client.get(format!("http://{listen}/api/v1/alerts/00000000000000ff/chart.svg")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // The emails say the same, with the chart inline.
    let mails = wait_for("two emails", Duration::from_secs(20), || {
        let mut m: Vec<String> = (1..=2)
            .filter_map(|i| std::fs::read_to_string(smtp.dir.join(format!("{i}.eml"))).ok())
            .map(|r| readable_mail(&r))
            .collect();
        m.sort();
        (m.len() == 2).then_some(m)
    })
    .await;
    let fan_mail = mails.iter().find(|m| m.contains("FanOut")).expect("an email about FanOut");
    assert!(fan_mail.contains("Recent changes"), "{fan_mail}");
    assert!(fan_mail.contains("v2.3 was no longer running, so it is not the cause"), "{fan_mail}");
    assert!(fan_mail.contains("Content-Type: image/png"), "chart attached inline");
    assert!(fan_mail.contains("multipart/related"), "{fan_mail}");

    // Automatic detection: a new version (the process restarted with it)...
    {
        let mut t = target.lock().unwrap();
        t.version = "2.4".into();
        t.start = now_secs() - 1.0;
    }
    let found = wait_for_marker(&client, &listen, "2.4").await;
    assert_eq!(found["kind"], "deploy");
    let at = chrono::DateTime::parse_from_rfc3339(found["at"].as_str().unwrap()).unwrap().timestamp() as f64;
    assert!((at - target.lock().unwrap().start).abs() < 1.0, "dated at the new process's start: {found}");
    assert_eq!(found["commit"], "r-2.4");
    let restarts = markers(&client, &listen, "checkout").await.into_iter().filter(|m| m["kind"] == "restart").count();
    assert_eq!(restarts, 0, "the deploy explains the restart");
    // ...and back: a rollback.
    target.lock().unwrap().version = "2.2".into();
    let back = wait_for_marker(&client, &listen, "2.2").await;
    assert_eq!(back["kind"], "rollback", "{back}");
    if std::env::var_os("FOREWARN_KEEP_TEST_DIR").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn now_secs() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

/// Waits for a checkout marker of `version` recorded by forewarn itself.
async fn wait_for_marker(client: &reqwest::Client, listen: &str, version: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = markers(client, listen, "checkout")
            .await
            .into_iter()
            .find(|m| m["version"] == version && m["by"].as_str().is_some_and(|b| b.starts_with("forewarn")));
        if let Some(m) = found {
            return m;
        }
        assert!(Instant::now() < deadline, "no detected marker for version {version}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
