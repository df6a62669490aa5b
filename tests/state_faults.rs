//! Disk faults are visible and survivable: the real `forewarn` binary on a
//! state dir that cannot be written (a file in its place) or that fills up
//! mid-run (a 4 MiB tmpfs, mounted by the test: CI runs as root) keeps
//! scraping, evaluating and notifying a real webhook listener on
//! 127.0.0.1, answers `/-/ready` with 503 while writes fail, counts the
//! failures in `forewarn_storage_write_failures_total{what}`, logs each
//! fault once rather than at every flush, and after space is freed and a
//! `kill -9` neither lost the samples of the full period nor re-sends
//! what was delivered; a `kill -9` and a start while the disk is still
//! full starts (in memory, from a copy of `state.db`) and re-sends nothing.

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

/// A target whose `app_scrapes_total` counts requests (a lost sample is a
/// missing value) and whose `step` is 150; returns `host:port`.
async fn start_target() -> String {
    let served = Arc::new(AtomicU64::new(0));
    let target = Router::new()
        .route(
            "/metrics",
            get(|State(n): State<Arc<AtomicU64>>| async move {
                let v = n.fetch_add(1, Ordering::SeqCst) + 1;
                // 50 more series, so the WAL grows by a few KiB a second.
                let pad: String = (0..50).map(|i| format!("pad{{i=\"{i}\"}} {}\n", v * 7 + i)).collect();
                format!("app_scrapes_total {v}\nstep 150\n{pad}")
            }),
        )
        .with_state(served);
    support::serve(target).await
}

fn write_config(dir: &Path, state: &Path, target: &str, hook: &str, listen: &str) -> PathBuf {
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: StepHigh\n        expr: step > 100\n",
    )
    .unwrap();
    let cfg = format!(
        r#"global: {{ scrape_interval: 200ms, scrape_timeout: 200ms, evaluation_interval: 1s }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{target}"] }} ]
rule_files: [ "rules.yml" ]
route: {{ receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }}
receivers:
  - name: team
    webhook_configs: [ {{ url: "http://{hook}/hook", send_resolved: true }} ]
storage: {{ path: "{}", wal_fsync_interval: 200ms, snapshot_interval: 3s }}
http: {{ listen: "{listen}" }}
"#,
        state.display()
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn start(cfg: &Path, log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Daemon::on(cfg).stdout(Stdio::null()).stderr(log).start()
}

async fn fetch(url: String) -> Option<(u16, String)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::get(url).await.ok()?;
    Some((r.status().as_u16(), r.text().await.ok()?))
}

/// The value of `forewarn_storage_write_failures_total{what=...}`.
async fn write_failures(listen: &str, what: &str) -> f64 {
    let Some((_, text)) = fetch(format!("http://{listen}/metrics")).await else { return 0.0 };
    let prefix = format!("forewarn_storage_write_failures_total{{what=\"{what}\"}}");
    text.lines().find(|l| l.starts_with(&prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

async fn ready(listen: &str) -> Option<(u16, String)> {
    fetch(format!("http://{listen}/-/ready")).await
}

fn firing_count(received: &WebhookSink) -> usize {
    received.bodies().iter().filter(|v| v["status"] == "firing").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_state_dir_runs_in_memory_alerts_and_says_so() {
    let dir = temp_dir("faults-file");
    let received = WebhookSink::start().await;
    let (target, hook) = (start_target().await, received.addr.clone());
    let listen = format!("127.0.0.1:{}", free_port());
    // A file where the state dir should be: nothing can be created in it.
    let state = dir.join("state");
    std::fs::write(&state, "not a directory").unwrap();
    let cfg = write_config(&dir, &state, &target, &hook, &listen);
    let log = dir.join("forewarn.log");
    let _daemon = start(&cfg, &log);

    let (status, body) = wait_for_async("/-/ready", Duration::from_secs(15), async || ready(&listen).await).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("sqlite") && body.contains("wal"), "{body}");
    assert!(write_failures(&listen, "sqlite").await >= 1.0);
    assert!(write_failures(&listen, "wal").await >= 1.0);
    // Alerting goes on: the alert reaches the webhook.
    wait_for_async("a firing notification", Duration::from_secs(15), async || {
        (firing_count(&received) >= 1).then_some(())
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("STATE DIR NOT WRITABLE") && text.contains("STORE NOT DURABLE"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tmpfs mounted for the test, unmounted when it ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount -t tmpfs failed: this test needs root with CAP_SYS_ADMIN (CI runs as root)");
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `path` until a write fails.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 << 10];
    while f.write_all(&block).is_ok() {}
    let small = vec![0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
}

/// The alerts' labels, states and activeAt, as `/api/v1/alerts` shows them.
async fn alerts_text(listen: &str) -> String {
    let Some((_, body)) = fetch(format!("http://{listen}/api/v1/alerts")).await else { return String::new() };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let list = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
    let picked: Vec<String> =
        list.iter().map(|a| format!("{} {} {}", a["labels"], a["state"], a["activeAt"])).collect();
    picked.join("\n")
}

/// Raw `app_scrapes_total` values over the last 10 minutes.
async fn scrape_counts(listen: &str) -> Vec<u64> {
    let Some((_, body)) = fetch(format!("http://{listen}/api/v1/query?query=app_scrapes_total%5B10m%5D")).await else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["data"]["result"][0]["values"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p[1].as_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_mid_run_is_visible_then_nothing_is_lost_or_sent_twice() {
    let dir = temp_dir("faults-full");
    let received = WebhookSink::start().await;
    let (target, hook) = (start_target().await, received.addr.clone());
    let listen = format!("127.0.0.1:{}", free_port());
    let mnt = Tmpfs::mount(&dir.join("state"), "4m");
    let cfg = write_config(&dir, &mnt.0, &target, &hook, &listen);
    let mut first = start(&cfg, &dir.join("first.log"));
    wait_for_async("ready", Duration::from_secs(15), async || {
        ready(&listen).await.filter(|(s, _)| *s == 200).map(|_| ())
    })
    .await;

    // The disk fills up before the alert fires.
    let filler = mnt.0.join("filler");
    fill(&filler);
    // The WAL (flushed every second) and state.db (at the next evaluation)
    // fail at their own moments: wait for both to be named.
    wait_for_async("/-/ready 503 naming the WAL and state.db", Duration::from_secs(15), async || {
        ready(&listen).await.filter(|(s, b)| *s == 503 && b.contains("wal/store") && b.contains("sqlite"))
    })
    .await;
    // Alerting goes on while the disk is full.
    wait_for_async("the firing notification", Duration::from_secs(15), async || {
        (firing_count(&received) >= 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failures = write_failures(&listen, "wal").await;
    assert!(failures >= 5.0, "a failure per flush is counted: {failures}");
    let text = std::fs::read_to_string(dir.join("first.log")).unwrap();
    let lines = text.lines().filter(|l| l.contains("state dir: write")).count();
    assert!(lines <= 4, "one log line per fault, not per flush ({failures} failures): {text}");

    // Space is freed: writes resume, /-/ready recovers.
    std::fs::remove_file(&filler).unwrap();
    wait_for_async("/-/ready 200 again", Duration::from_secs(15), async || {
        ready(&listen).await.filter(|(s, _)| *s == 200).map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await; // a WAL flush or two
    let before_kill = scrape_counts(&listen).await;
    let sent = received.bodies().len();
    assert_eq!(firing_count(&received), 1, "{:?}", received.bodies());
    assert!(Command::new("kill").args(["-KILL", &first.0.id().to_string()]).status().unwrap().success());
    let _ = first.0.wait();

    let mut second = start(&cfg, &dir.join("second.log"));
    let after = wait_for_async("history after the restart", Duration::from_secs(15), async || {
        let c = scrape_counts(&listen).await;
        (!c.is_empty()).then_some(c)
    })
    .await;
    // Every sample up to shortly before the kill is back, the full period included.
    let last_before = *before_kill.last().unwrap();
    let old: Vec<u64> = after.iter().copied().filter(|v| *v <= last_before).collect();
    assert!(old.first().is_some_and(|v| *v <= 3), "history from the start: {old:?}");
    for w in old.windows(2) {
        assert_eq!(w[1], w[0] + 1, "a hole in the recovered history: {old:?}");
    }
    assert!(last_before - old.last().unwrap() <= 10, "at most the last flushes lost: {old:?} vs {last_before}");
    // Evaluations run and the group interval passes: nothing is re-sent.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(received.bodies().len(), sent, "re-sent after the restart: {:?}", received.bodies());
    let alert_before = alerts_text(&listen).await;
    assert!(alert_before.contains("\"firing\""), "{alert_before}");

    // Full again, `kill -9`, and a start on the full disk: forewarn starts
    // (on a copy of state.db in memory), says so, shows the alert as it
    // was, and re-sends nothing.
    fill(&filler);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(Command::new("kill").args(["-KILL", &second.0.id().to_string()]).status().unwrap().success());
    let _ = second.0.wait();
    let log = dir.join("third.log");
    let _third = start(&cfg, &log);
    let (status, body) =
        wait_for_async("/-/ready on a full disk", Duration::from_secs(15), async || ready(&listen).await).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(alerts_text(&listen).await, alert_before, "the alert as it was, from the first answer on");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(received.bodies().len(), sent, "re-sent on the full disk: {:?}", received.bodies());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("STATE DIR NOT WRITABLE"), "{text}");
    drop(mnt);
    let _ = std::fs::remove_dir_all(&dir);
}
