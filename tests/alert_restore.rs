//! Alert state survives `kill -9`: the real `forewarn` binary with a state
//! dir scrapes a target on 127.0.0.1 and notifies a real webhook listener.
//! After SIGKILL and a restart on the same state dir, `/api/v1/alerts` shows
//! every alert as before (same state, same `activeAt`) from the first
//! answer on, a threshold rule keeps its hysteresis, and the webhook hears
//! nothing new. A rule whose labels changed meanwhile starts over (with a
//! log line); an outage longer than `for_outage_tolerance` restores nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, temp_dir, wait_for_async, Daemon, Proc, WebhookSink};

/// A target serving `step 150` and `level <value>`; returns `host:port`.
async fn start_target(level: Arc<AtomicU64>) -> String {
    let target = Router::new()
        .route(
            "/metrics",
            get(|State(v): State<Arc<AtomicU64>>| async move {
                format!("step 150\nlevel {}\n", f64::from_bits(v.load(Ordering::SeqCst)))
            }),
        )
        .with_state(level);
    support::serve(target).await
}

fn write_rules(dir: &Path, slow_labels: &str) {
    let rules = format!(
        r#"groups:
  - name: restore
    interval: 1s
    rules:
      - alert: StepHigh
        expr: step > 100
        for: 3s
        labels: {{ severity: page }}
      - alert: StepSlow
        expr: step > 100
        for: 1h
        labels: {slow_labels}
      - alert: LevelHigh
        threshold: {{ series: level, above: 100, clear_below: 90 }}
"#
    );
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
}

fn write_config(dir: &Path, target: &str, hook: &str, listen: &str, tolerance: &str) -> PathBuf {
    let cfg = format!(
        r#"global: {{ scrape_interval: 500ms, scrape_timeout: 500ms, evaluation_interval: 1s }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{target}"] }} ]
rule_files: [ "rules.yml" ]
rules: {{ alert: {{ for_outage_tolerance: {tolerance}, for_grace_period: 10m }} }}
route: {{ receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }}
receivers:
  - name: team
    webhook_configs: [ {{ url: "http://{hook}/hook", send_resolved: true }} ]
storage: {{ path: "{}" }}
http: {{ listen: "{listen}" }}
"#,
        dir.join("state").display()
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn start(cfg: &Path, log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Daemon::on(cfg).stdout(Stdio::null()).stderr(log).start()
}

fn kill9(p: &mut Proc) {
    assert!(Command::new("kill").args(["-KILL", &p.0.id().to_string()]).status().unwrap().success());
    let _ = p.0.wait();
}

/// alertname -> (state, activeAt), or None while the server does not answer.
async fn alerts(listen: &str) -> Option<BTreeMap<String, (String, String)>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let v: Value = reqwest::get(format!("http://{listen}/api/v1/alerts")).await.ok()?.json().await.ok()?;
    let mut out = BTreeMap::new();
    for a in v["data"]["alerts"].as_array()? {
        let name = a["labels"]["alertname"].as_str()?.to_string();
        out.insert(name, (a["state"].as_str()?.to_string(), a["activeAt"].as_str()?.to_string()));
    }
    Some(out)
}

/// How many times the group has been evaluated by this process.
async fn evaluations(listen: &str) -> u64 {
    let Ok(r) = reqwest::get(format!("http://{listen}/metrics")).await else { return 0 };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("forewarn_rule_group_evaluations_total{group=\"restore\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

fn state_of(a: &BTreeMap<String, (String, String)>, name: &str) -> String {
    a.get(name).map(|s| s.0.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_changes_nothing_a_receiver_or_the_api_can_see() {
    let dir = temp_dir("alert-restore");
    let level = Arc::new(AtomicU64::new(150f64.to_bits()));
    let received = WebhookSink::start().await;
    let (target, hook) = (start_target(level.clone()).await, received.addr.clone());
    let listen = format!("127.0.0.1:{}", free_port());
    write_rules(&dir, "{ team: core }");
    let cfg = write_config(&dir, &target, &hook, &listen, "1h");

    let mut first = start(&cfg, &dir.join("first.log"));
    let before = wait_for_async("StepHigh firing, StepSlow pending", Duration::from_secs(20), async || {
        let a = alerts(&listen).await?;
        let ok = state_of(&a, "StepHigh") == "firing"
            && state_of(&a, "StepSlow") == "pending"
            && state_of(&a, "LevelHigh") == "firing";
        ok.then_some(a)
    })
    .await;
    // The threshold's hysteresis: 95 is below `above` but above `clear_below`.
    level.store(95f64.to_bits(), Ordering::SeqCst);
    let n = evaluations(&listen).await;
    wait_for_async("two evaluations at level 95", Duration::from_secs(10), async || {
        (evaluations(&listen).await >= n + 3).then_some(())
    })
    .await;
    let a = alerts(&listen).await.unwrap();
    assert_eq!(state_of(&a, "LevelHigh"), "firing", "hysteresis keeps it firing at 95: {a:?}");
    wait_for_async("both firing alerts notified", Duration::from_secs(10), async || {
        (received.bodies().len() >= 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let notified = received.bodies().len();
    assert_eq!(notified, 2, "one notification per firing alert: {:?}", received.bodies());
    kill9(&mut first);

    let log = dir.join("second.log");
    let mut second = start(&cfg, &log);
    let after =
        wait_for_async("the API after the restart", Duration::from_secs(20), async || alerts(&listen).await).await;
    assert_eq!(after, before, "right after the restart: same alerts, same states, same activeAt");
    wait_for_async("three evaluations after the restart", Duration::from_secs(15), async || {
        (evaluations(&listen).await >= 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // past group_interval
    let later = alerts(&listen).await.unwrap();
    assert_eq!(later, before, "after evaluations on fresh data: unchanged");
    assert_eq!(received.bodies().len(), notified, "nothing new sent: {:?}", received.bodies());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("alert state restored"), "{text}");

    // StepSlow's labels change while forewarn is down: its state is dropped.
    kill9(&mut second);
    write_rules(&dir, "{ team: edge }");
    let log = dir.join("third.log");
    let mut third = start(&cfg, &log);
    let after = wait_for_async("the API after the rule change", Duration::from_secs(20), async || {
        let a = alerts(&listen).await?;
        a.contains_key("StepSlow").then_some(a)
    })
    .await;
    assert_eq!(after["StepHigh"], before["StepHigh"], "an unchanged rule keeps its state");
    assert_ne!(after["StepSlow"].1, before["StepSlow"].1, "a changed rule starts over");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("saved alert state dropped") && text.contains("StepSlow"), "{text}");

    // Down longer than the tolerance: nothing is restored.
    kill9(&mut third);
    let cfg = write_config(&dir, &target, &hook, &listen, "1ms");
    let log = dir.join("fourth.log");
    let _fourth = start(&cfg, &log);
    let after = wait_for_async("the API after a long outage", Duration::from_secs(20), async || {
        let a = alerts(&listen).await?;
        a.contains_key("StepHigh").then_some(a)
    })
    .await;
    assert_eq!(state_of(&after, "StepHigh"), "pending", "starts over: {after:?}");
    assert_ne!(after["StepHigh"].1, before["StepHigh"].1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("for_outage_tolerance"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
