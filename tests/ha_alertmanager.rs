//! HA end to end: two identical forewarn replicas (different
//! `external_labels: {replica}`, same rules and target) post every alert to
//! both nodes of a real Alertmanager 0.25 cluster (gossip on 127.0.0.1),
//! which sends to one webhook served by this test. Each alert must page
//! exactly once: with everything up, and after one forewarn and one
//! Alertmanager are killed with SIGKILL mid-incident (the first alert keeps
//! firing through the kills; a second one starts after them).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

mod support;
use support::{free_port, peer_installed, temp_dir, Daemon, Proc};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

type Pages = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook that records (alertname, status) of every alert in every notification.
async fn start_webhook() -> (String, Pages) {
    let pages: Pages = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(|State(p): State<Pages>, Json(body): Json<Value>| async move {
                let mut p = p.lock().unwrap();
                for a in body["alerts"].as_array().cloned().unwrap_or_default() {
                    let name = a["labels"]["alertname"].as_str().unwrap_or("").to_string();
                    p.push((name, a["status"].as_str().unwrap_or("").to_string()));
                }
            }),
        )
        .with_state(pages.clone());
    (support::serve(app).await, pages)
}

/// A target whose `second_incident` switches to 1 when told.
async fn start_target() -> (String, Arc<Mutex<bool>>) {
    let second = Arc::new(Mutex::new(false));
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Arc<Mutex<bool>>>| async move {
                let b = *s.lock().unwrap() as u8;
                format!("first_incident 1\nsecond_incident {b}\n")
            }),
        )
        .with_state(second.clone());
    (support::serve(app).await, second)
}

fn start_alertmanager(dir: &Path, web: u16, cluster: u16, peer: u16, hook: &str) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(
        &cfg,
        format!(
            "route: {{ receiver: hook, group_by: [alertname], group_wait: 1s, group_interval: 2s, repeat_interval: 1h }}\n\
             receivers: [ {{ name: hook, webhook_configs: [ {{ url: \"http://{hook}/hook\", send_resolved: false }} ] }} ]\n"
        ),
    )
    .unwrap();
    Proc(
        Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .arg(format!("--cluster.listen-address=127.0.0.1:{cluster}"))
            .arg(format!("--cluster.advertise-address=127.0.0.1:{cluster}"))
            .arg(format!("--cluster.peer=127.0.0.1:{peer}"))
            .arg("--cluster.settle-timeout=2s")
            .arg("--cluster.peer-timeout=3s")
            .arg("--cluster.gossip-interval=50ms")
            .arg("--cluster.pushpull-interval=1s")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager"),
    )
}

fn start_forewarn(dir: &Path, replica: &str, target: &str, ams: &[u16]) -> (Proc, String) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n- name: g\n  interval: 500ms\n  rules:\n  - alert: FirstIncident\n    expr: first_incident > 0\n  - alert: SecondIncident\n    expr: second_incident > 0\n",
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let targets: Vec<String> = ams.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    let cfg = format!(
        r#"global: {{ scrape_interval: 500ms, scrape_timeout: 500ms, evaluation_interval: 500ms, external_labels: {{ replica: {replica} }} }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{target}"] }} ]
rule_files: [ rules.yml ]
storage: {{ path: "{}" }}
http: {{ listen: "{listen}" }}
# The Alertmanagers are to see exactly the test's alerts, not Watchdog.
self_monitoring: {{ enabled: false }}
alerting:
  resend_delay: 1s
  alertmanagers:
    - static_configs: [ {{ targets: [{}] }} ]
      api_version: v2
      timeout: 2s
"#,
        dir.join("state").display(),
        targets.join(", ")
    );
    let p = Daemon::write(dir, &cfg).quiet().start();
    (p, format!("http://{listen}"))
}

fn count(pages: &Pages, name: &str) -> usize {
    pages.lock().unwrap().iter().filter(|(n, s)| n == name && s == "firing").count()
}

async fn wait_page(pages: &Pages, name: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while count(pages, name) == 0 {
        assert!(Instant::now() < deadline, "no page for {name} within {timeout:?}: {:?}", pages.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kill9(p: Proc) {
    let mut p = p;
    let _ = p.0.kill();
    let _ = p.0.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_and_an_alertmanager_cluster_page_once_per_alert_through_kills() {
    if !peer_installed(ALERTMANAGER, "prometheus-alertmanager") {
        return;
    }
    let dir = temp_dir("ha-am");
    let (hook, pages) = start_webhook().await;
    let (target, second) = start_target().await;
    let (w1, c1, w2, c2) = (free_port(), free_port(), free_port(), free_port());
    let am1 = start_alertmanager(&dir.join("am1"), w1, c1, c2, &hook);
    let am2 = start_alertmanager(&dir.join("am2"), w2, c2, c1, &hook);
    for w in [w1, w2] {
        support::wait_http_ok(&format!("http://127.0.0.1:{w}/-/ready"), Duration::from_secs(20)).await;
    }
    let (fw_a, url_a) = start_forewarn(&dir.join("a"), "a", &target, &[w1, w2]);
    let (fw_b, url_b) = start_forewarn(&dir.join("b"), "b", &target, &[w1, w2]);
    for u in [&url_a, &url_b] {
        support::wait_http_ok(&format!("{u}/-/ready"), Duration::from_secs(20)).await;
    }

    // Both replicas post FirstIncident to both Alertmanagers every second:
    // one page, and no second one while it keeps firing.
    wait_page(&pages, "FirstIncident", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(count(&pages, "FirstIncident"), 1, "{:?}", pages.lock().unwrap());
    // Both Alertmanagers hold the alert, from both replicas, without `replica`.
    for w in [w1, w2] {
        let v: Value = reqwest::get(format!("http://127.0.0.1:{w}/api/v2/alerts")).await.unwrap().json().await.unwrap();
        let names: Vec<&str> = v.as_array().unwrap().iter().filter_map(|a| a["labels"]["alertname"].as_str()).collect();
        assert_eq!(names, vec!["FirstIncident"], "{v}");
        assert!(v[0]["labels"].get("replica").is_none(), "external labels stay off alerts: {v}");
        assert!(v[0]["generatorURL"].as_str().is_some_and(|u| u.contains("FirstIncident")), "{v}");
    }

    // Mid-incident: one forewarn and the Alertmanager that paged are killed.
    kill9(fw_a);
    kill9(am1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(count(&pages, "FirstIncident"), 1, "a kill must not page again: {:?}", pages.lock().unwrap());

    // A new incident after the kills pages once, through the survivors.
    *second.lock().unwrap() = true;
    wait_page(&pages, "SecondIncident", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(count(&pages, "SecondIncident"), 1, "{:?}", pages.lock().unwrap());
    assert_eq!(count(&pages, "FirstIncident"), 1, "{:?}", pages.lock().unwrap());
    drop((fw_b, am2));
}

/// The other pair of kills: the second forewarn and the second Alertmanager.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_other_replica_and_alertmanager_does_not_page_again() {
    if !peer_installed(ALERTMANAGER, "prometheus-alertmanager") {
        return;
    }
    let dir = temp_dir("ha-am2");
    let (hook, pages) = start_webhook().await;
    let (target, _) = start_target().await;
    let (w1, c1, w2, c2) = (free_port(), free_port(), free_port(), free_port());
    let am1 = start_alertmanager(&dir.join("am1"), w1, c1, c2, &hook);
    let am2 = start_alertmanager(&dir.join("am2"), w2, c2, c1, &hook);
    for w in [w1, w2] {
        support::wait_http_ok(&format!("http://127.0.0.1:{w}/-/ready"), Duration::from_secs(20)).await;
    }
    let (fw_a, url_a) = start_forewarn(&dir.join("a"), "a", &target, &[w1, w2]);
    let (fw_b, url_b) = start_forewarn(&dir.join("b"), "b", &target, &[w1, w2]);
    for u in [&url_a, &url_b] {
        support::wait_http_ok(&format!("{u}/-/ready"), Duration::from_secs(20)).await;
    }
    wait_page(&pages, "FirstIncident", Duration::from_secs(20)).await;
    // Mid-incident, not within milliseconds of the page: the cluster's
    // dedup needs the notification log gossiped to the peer first (what
    // Alertmanager HA promises), which takes well under 3 s on loopback.
    tokio::time::sleep(Duration::from_secs(3)).await;
    kill9(fw_b);
    kill9(am2);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(count(&pages, "FirstIncident"), 1, "{:?}", pages.lock().unwrap());
    drop((fw_a, am1));
}
