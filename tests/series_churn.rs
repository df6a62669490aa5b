//! Series churn keeps memory bounded: the real `forewarn` binary scrapes a
//! target on 127.0.0.1 whose `request_id` label changes at every scrape.
//! Each series ends (gets a staleness marker) one scrape later and leaves
//! memory `storage.stale_series_retention` after that, like Prometheus's
//! head garbage collection; `forewarn_store_series_created_total` and
//! `forewarn_store_series_removed_total{reason="stale"}` show the churn,
//! and `forewarn_store_series` drops back once the churn stops.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;

mod support;
use support::{free_port, temp_dir, Daemon};

#[derive(Clone, Default)]
struct Target {
    n: Arc<AtomicU64>,
    churn: Arc<AtomicBool>,
}

async fn metric(listen: &str, name: &str) -> f64 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Ok(r) = reqwest::get(format!("http://{listen}/metrics")).await else { return -1.0 };
    let text = r.text().await.unwrap_or_default();
    // `name{labels} value`, the key exactly as given.
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(key, _)| *key == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

async fn wait_metric(listen: &str, name: &str, what: &str, timeout: Duration, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + timeout;
    loop {
        let v = metric(listen, name).await;
        if ok(v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {name} = {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churned_series_leave_memory_after_they_end() {
    let dir = temp_dir("series-churn");
    let target = Target::default();
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(t): State<Target>| async move {
                let n = t.n.fetch_add(1, Ordering::SeqCst);
                let id = if t.churn.load(Ordering::SeqCst) { n } else { 0 };
                format!("app_requests{{request_id=\"r{id}\"}} 1\napp_up 1\n")
            }),
        )
        .with_state(target.clone());
    target.churn.store(true, Ordering::SeqCst);
    let addr = support::serve(app).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = format!(
        r#"global: {{ scrape_interval: 100ms, scrape_timeout: 100ms }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{addr}"] }} ]
storage: {{ stale_series_retention: 2s }}
http: {{ listen: "{listen}" }}
self_monitoring: {{ enabled: false }}
"#
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    let _daemon = Daemon::on(&path).quiet().start();

    // Churn: about 10 new series a second, each gone one scrape later.
    let created =
        wait_metric(&listen, "forewarn_store_series_created_total", "churn", Duration::from_secs(20), |v| v >= 150.0)
            .await;
    let removed = wait_metric(
        &listen,
        "forewarn_store_series_removed_total{reason=\"stale\"}",
        "ended series removed",
        Duration::from_secs(10),
        |v| v >= 50.0,
    )
    .await;
    let during = metric(&listen, "forewarn_store_series").await;
    // Live: the 2s retention plus up to 1s until the next compaction, at
    // ~10 series a second, plus the target's own and up/scrape_* series.
    assert!(during < 80.0, "{during} series in memory after {created} created, {removed} removed");

    // The churn stops: the index shrinks to the steady series.
    target.churn.store(false, Ordering::SeqCst);
    let after = wait_metric(&listen, "forewarn_store_series", "the index to shrink", Duration::from_secs(15), |v| {
        (0.0..=10.0).contains(&v)
    })
    .await;
    eprintln!("churn: {created} series created, {removed}+ removed; {during} in memory during churn, {after} after");
    let _ = std::fs::remove_dir_all(&dir);
}
