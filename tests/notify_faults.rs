//! Delivery under faults, against the real `forewarn` binary and real
//! servers on 127.0.0.1: a webhook answering 500 then 200, a webhook that
//! hangs past its timeout, an SMTP server that is down then comes up, and
//! the daemon killed with SIGKILL with notifications queued, then restarted
//! on the same state dir. Each checks that every notification arrives
//! exactly once after recovery, and that a restart re-sends nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, temp_dir, wait_for, Daemon, Proc, SmtpSink};

const OK: u8 = 0;
const FAIL_500: u8 = 1;
const HANG: u8 = 2;

/// The target's two series and the webhook's behaviour and inbox.
#[derive(Clone, Default)]
struct World {
    orders: Arc<AtomicU64>,
    billing: Arc<AtomicU64>,
    mode: Arc<AtomicU8>,
    attempts: Arc<AtomicU64>,
    delivered: Arc<Mutex<Vec<Value>>>,
}

impl World {
    fn set(&self, which: &AtomicU64, v: f64) {
        which.store(v.to_bits(), Ordering::SeqCst);
    }
    fn delivered(&self) -> Vec<Value> {
        self.delivered.lock().unwrap().clone()
    }
}

async fn start_servers(w: World) -> (String, String) {
    let target = Router::new()
        .route(
            "/metrics",
            get(|State(w): State<World>| async move {
                let v = |a: &AtomicU64| f64::from_bits(a.load(Ordering::SeqCst));
                format!(
                    "app_queue_depth{{queue=\"orders\"}} {}\napp_queue_depth{{queue=\"billing\"}} {}\n",
                    v(&w.orders),
                    v(&w.billing)
                )
            }),
        )
        .with_state(w.clone());
    let hook = Router::new()
        .route(
            "/hook",
            post(|State(w): State<World>, body: String| async move {
                w.attempts.fetch_add(1, Ordering::SeqCst);
                match w.mode.load(Ordering::SeqCst) {
                    FAIL_500 => StatusCode::INTERNAL_SERVER_ERROR,
                    HANG => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        StatusCode::OK
                    }
                    _ => {
                        w.delivered.lock().unwrap().push(serde_json::from_str(&body).unwrap_or(Value::Null));
                        StatusCode::OK
                    }
                }
            }),
        )
        .with_state(w);
    let tl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ta, ha) = (tl.local_addr().unwrap().to_string(), hl.local_addr().unwrap().to_string());
    tokio::spawn(async move { axum::serve(tl, target).await });
    tokio::spawn(async move { axum::serve(hl, hook).await });
    (ta, ha)
}

/// A config with 1 s scrapes and evaluations, no group_wait, a 1 s webhook
/// timeout and at most 1 s between retries, state in `dir/state`.
fn write_config(dir: &Path, target: &str, receiver: &str) -> PathBuf {
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: q\n    interval: 1s\n    rules:\n      - alert: QueueDeep\n        expr: app_queue_depth > 100\n",
    )
    .unwrap();
    let cfg = format!(
        r#"global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{target}"] }} ]
rule_files: [ "rules.yml" ]
route: {{ receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }}
receivers:
  - name: team
    {receiver}
outbox: {{ max_backoff: 1s }}
storage: {{ path: "{state}" }}
http: {{ listen: "127.0.0.1:{port}" }}
"#,
        state = dir.join("state").display(),
        port = free_port(),
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn start_daemon(cfg: &Path) -> Proc {
    Daemon::on(cfg).quiet().start()
}

/// Queue names of the firing alerts in a webhook body.
fn firing_queues(v: &Value) -> Vec<String> {
    let mut q: Vec<String> = v["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["status"] == "firing")
        .map(|a| a["labels"]["queue"].as_str().unwrap_or("").to_string())
        .collect();
    q.sort();
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_500_then_200_delivers_once() {
    let dir = temp_dir("500");
    let w = World::default();
    w.mode.store(FAIL_500, Ordering::SeqCst);
    let (target, hook) = start_servers(w.clone()).await;
    let cfg =
        write_config(&dir, &target, &format!(r#"webhook_configs: [ {{ url: "http://{hook}/hook", timeout: 1s }} ]"#));
    let _d = start_daemon(&cfg);
    w.set(&w.orders, 500.0);
    wait_for("two failed attempts", Duration::from_secs(10), || (w.attempts.load(Ordering::SeqCst) >= 2).then_some(()))
        .await;
    assert!(w.delivered().is_empty());
    w.mode.store(OK, Ordering::SeqCst);
    wait_for("the retried delivery", Duration::from_secs(10), || (!w.delivered().is_empty()).then_some(())).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = w.delivered();
    assert_eq!(got.len(), 1, "exactly once: {got:?}");
    assert_eq!(firing_queues(&got[0]), vec!["orders"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_webhook_times_out_then_retry_delivers_once() {
    let dir = temp_dir("hang");
    let w = World::default();
    w.mode.store(HANG, Ordering::SeqCst);
    let (target, hook) = start_servers(w.clone()).await;
    let cfg =
        write_config(&dir, &target, &format!(r#"webhook_configs: [ {{ url: "http://{hook}/hook", timeout: 1s }} ]"#));
    let _d = start_daemon(&cfg);
    w.set(&w.orders, 500.0);
    // A second attempt can only start after the first timed out.
    wait_for("a retry after the timeout", Duration::from_secs(12), || {
        (w.attempts.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    w.mode.store(OK, Ordering::SeqCst);
    wait_for("the delivery", Duration::from_secs(10), || (!w.delivered().is_empty()).then_some(())).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = w.delivered();
    assert_eq!(got.len(), 1, "exactly once: {got:?}");
    assert_eq!(firing_queues(&got[0]), vec!["orders"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_back_delivers_once() {
    let dir = temp_dir("smtp");
    let w = World::default();
    let (target, _hook) = start_servers(w.clone()).await;
    let port = free_port();
    let cfg = write_config(
        &dir,
        &target,
        &format!(
            r#"email_configs: [ {{ to: "team@example.com", from: "fw@example.com", smarthost: "127.0.0.1:{port}", require_tls: false }} ]"#
        ),
    );
    let _d = start_daemon(&cfg);
    w.set(&w.orders, 500.0);
    // Nothing listens on the port yet: let a few attempts fail.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let smtp = SmtpSink::start_on(&dir, port);
    let mail = &smtp.dir;
    wait_for("the mail after the server came up", Duration::from_secs(15), || {
        (mail.join("1.eml").exists()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!mail.join("2.eml").exists(), "exactly once");
    let eml = std::fs::read_to_string(mail.join("1.eml")).unwrap();
    assert!(eml.contains("QueueDeep"), "{eml}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_queued_notifications_loses_and_repeats_nothing() {
    let dir = temp_dir("kill");
    let w = World::default();
    let (target, hook) = start_servers(w.clone()).await;
    let cfg =
        write_config(&dir, &target, &format!(r#"webhook_configs: [ {{ url: "http://{hook}/hook", timeout: 1s }} ]"#));

    // 1. Delivered, then kill -9 and restart: nothing is sent again.
    let mut d = start_daemon(&cfg);
    w.set(&w.orders, 500.0);
    wait_for("the first delivery", Duration::from_secs(10), || (w.delivered().len() == 1).then_some(())).await;
    d.0.kill().unwrap();
    d.0.wait().unwrap();
    let mut d = start_daemon(&cfg);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(w.delivered().len(), 1, "re-sent after restart: {:?}", w.delivered());

    // 2. A new alert while the webhook fails: queued. kill -9 with it queued.
    w.mode.store(FAIL_500, Ordering::SeqCst);
    let before = w.attempts.load(Ordering::SeqCst);
    w.set(&w.billing, 500.0);
    wait_for("a failed attempt", Duration::from_secs(10), || {
        (w.attempts.load(Ordering::SeqCst) > before).then_some(())
    })
    .await;
    d.0.kill().unwrap();
    d.0.wait().unwrap();
    w.mode.store(OK, Ordering::SeqCst);
    let _d = start_daemon(&cfg);
    wait_for("the queued delivery", Duration::from_secs(10), || (w.delivered().len() >= 2).then_some(())).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = w.delivered();
    assert_eq!(got.len(), 2, "exactly once each: {got:?}");
    assert_eq!(firing_queues(&got[1]), vec!["billing", "orders"]);
    let _ = std::fs::remove_dir_all(&dir);
}
