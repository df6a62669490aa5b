//! The sample store survives restarts: the real `forewarn` binary with
//! `storage.path` scrapes a target on 127.0.0.1 every 200 ms, is killed with
//! SIGKILL mid-ingest (or stopped with SIGTERM), restarts on the same state
//! dir, and the API shows the history from before the stop, with at most
//! the last WAL flush interval (1 s) lost.
//!
//! The target serves a counter that goes up by one per request, so every
//! sample says which scrape it came from: a lost sample is a missing value,
//! not a guess from timings.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, temp_dir, wait_for, Daemon, Proc};

const SCRAPE_MS: u64 = 200;

/// A target whose `app_scrapes_total` is the number of requests served.
async fn start_target() -> (String, Arc<AtomicU64>) {
    let served = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(n): State<Arc<AtomicU64>>| async move {
                let v = n.fetch_add(1, Ordering::SeqCst) + 1;
                format!("# TYPE app_scrapes_total counter\napp_scrapes_total {v}\n")
            }),
        )
        .with_state(served.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, served)
}

fn write_config(dir: &Path, target: &str, listen: &str) -> PathBuf {
    let cfg = format!(
        r#"global: {{ scrape_interval: {SCRAPE_MS}ms, scrape_timeout: {SCRAPE_MS}ms, evaluation_interval: 1s }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{target}"] }} ]
storage: {{ path: "{}", retention: 1h, wal_fsync_interval: 1s }}
http: {{ listen: "{listen}" }}
"#,
        dir.join("state").display()
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn start(cfg: &Path) -> Proc {
    Daemon::on(cfg).quiet().start()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn get_json(url: String) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new().get(url).send().await.unwrap().json().await.unwrap()
}

/// Raw samples (t ms, value) of `app_scrapes_total` over the last 10 minutes.
async fn raw_samples(listen: &str) -> Vec<(i64, u64)> {
    let v = get_json(format!("http://{listen}/api/v1/query?query=app_scrapes_total%5B10m%5D")).await;
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["result"][0]["values"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| ((p[0].as_f64().unwrap() * 1000.0).round() as i64, p[1].as_str().unwrap().parse().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the daemon until ~`secs` of scrapes are in, stops it with `signal`,
/// restarts it, and returns (samples after restart, requests served before
/// the stop, wall-clock ms of the stop, listen address, the running daemon).
async fn stop_and_restart(tag: &str, signal: &str, secs: u64) -> (Vec<(i64, u64)>, u64, i64, String, Proc) {
    let dir = temp_dir(tag);
    let (target, served) = start_target().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = write_config(&dir, &target, &listen);

    let mut first = start(&cfg);
    wait_for("ready", Duration::from_secs(10), || std::net::TcpStream::connect(&listen).ok()).await;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let before = raw_samples(&listen).await;
    assert!(before.len() as u64 >= secs * 1000 / SCRAPE_MS / 2, "scraping runs: {} samples", before.len());
    let pid = first.0.id().to_string();
    assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    let stopped_at = now_ms();
    wait_for("exit", Duration::from_secs(20), || first.0.try_wait().ok().flatten()).await;
    let served_before = served.load(Ordering::SeqCst);

    let second = start(&cfg);
    wait_for("ready again", Duration::from_secs(20), || std::net::TcpStream::connect(&listen).ok()).await;
    wait_for("scrapes after restart", Duration::from_secs(10), || {
        (served.load(Ordering::SeqCst) >= served_before + 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2 * SCRAPE_MS)).await;
    let after = raw_samples(&listen).await;
    let _ = std::fs::remove_dir_all(&dir);
    (after, served_before, stopped_at, listen, second)
}

/// Checks the recovered pre-stop history is complete from its first sample
/// and returns (samples lost at the end, ms from the last one to the stop).
fn check_history(after: &[(i64, u64)], served_before: u64, stopped_at: i64) -> (u64, i64) {
    let old: Vec<&(i64, u64)> = after.iter().filter(|(_, v)| *v <= served_before).collect();
    assert!(!old.is_empty(), "no history came back: {after:?}");
    assert!(old[0].1 <= 3, "history starts at the first scrapes, not at {}", old[0].1);
    for w in old.windows(2) {
        assert_eq!(w[1].1, w[0].1 + 1, "a hole in the recovered history: {:?} -> {:?}", w[0], w[1]);
    }
    let last = old[old.len() - 1];
    assert!(after.iter().any(|(_, v)| *v > served_before), "new scrapes after the restart too");
    (served_before - last.1, stopped_at - last.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_ingest_loses_at_most_the_last_flush_interval() {
    let (after, served_before, killed_at, listen, _daemon) = stop_and_restart("durable-kill", "-KILL", 4).await;
    let (lost, gap_ms) = check_history(&after, served_before, killed_at);
    eprintln!(
        "kill -9: {served_before} scrapes served, {lost} lost, last recovered sample {gap_ms} ms before the kill"
    );
    // WAL flushed every 1 s: at most ~1 s of samples (5 scrapes) plus one
    // in flight; 2.5 s leaves room for a slow CI machine.
    assert!(lost <= 2500 / SCRAPE_MS, "{lost} samples lost");
    assert!(gap_ms <= 2500, "{gap_ms} ms of history lost");

    // The same history through query_range: a value at each step before the kill.
    let (first_t, _) = after[0];
    let v = get_json(format!(
        "http://{listen}/api/v1/query_range?query=app_scrapes_total&start={}&end={}&step=1",
        first_t as f64 / 1000.0,
        (killed_at - 2500) as f64 / 1000.0
    ))
    .await;
    let points = v["data"]["result"][0]["values"].as_array().cloned().unwrap_or_default();
    assert!(points.len() >= 2, "{v}");
    let vals: Vec<u64> = points.iter().map(|p| p[1].as_str().unwrap().parse().unwrap()).collect();
    assert!(vals.windows(2).all(|w| w[1] > w[0]), "the counter rises through the recovered range: {vals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_a_final_snapshot_and_loses_nothing_flushed() {
    let (after, served_before, stopped_at, _, _daemon) = stop_and_restart("durable-term", "-TERM", 3).await;
    let (lost, gap_ms) = check_history(&after, served_before, stopped_at);
    eprintln!(
        "SIGTERM: {served_before} scrapes served, {lost} lost, last recovered sample {gap_ms} ms before the stop"
    );
    // Scrapes keep running while the HTTP server drains; the one or two
    // that land after the final flush are the only ones allowed to go.
    assert!(lost <= 2, "{lost} samples lost on a clean stop");
}
