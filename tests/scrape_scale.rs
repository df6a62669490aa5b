//! One `forewarn` process scrapes 1,000 targets every second: a single axum
//! server on 127.0.0.1 serves them all on one path, told apart by a
//! `__param_id` label per target (so each target has its own URL and its
//! own series). Every target must reach `up` = 1 and be scraped at least 4
//! times in a 5 s window, counted both by the server and in the store. The
//! scrape duration distribution is printed (run with `--nocapture`).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::Daemon;

const TARGETS: usize = 1000;

type Hits = Arc<Mutex<HashMap<String, u64>>>;

async fn start_server(hits: Hits) -> String {
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(h): State<Hits>, Query(q): Query<HashMap<String, String>>| async move {
                let id = q.get("id").cloned().unwrap_or_default();
                *h.lock().unwrap().entry(id.clone()).or_default() += 1;
                let mut body = String::from("# TYPE work_items gauge\n");
                for i in 0..10 {
                    body += &format!("work_items{{id=\"{id}\",slot=\"{i}\"}} {i}\n");
                }
                body
            }),
        )
        .with_state(hits);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

async fn query(client: &reqwest::Client, listen: &str, q: &str) -> Vec<Value> {
    let url = format!("http://{listen}/api/v1/query");
    let v: Value = client.get(url).query(&[("query", q)]).send().await.unwrap().json().await.unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

async fn scalar(client: &reqwest::Client, listen: &str, q: &str) -> f64 {
    let r = query(client, listen, q).await;
    r.first().and_then(|s| s["value"][1].as_str()).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_targets_are_scraped_on_schedule() {
    let dir = std::env::temp_dir().join(format!("forewarn-scrape-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let hits: Hits = Arc::default();
    let addr = start_server(hits.clone()).await;
    let listen =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let mut cfg = String::from(
        "global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: scale\n    static_configs:\n",
    );
    for i in 0..TARGETS {
        cfg += &format!("      - {{ targets: [\"{addr}\"], labels: {{ shard: \"{i}\", __param_id: \"{i}\" }} }}\n");
    }
    cfg += &format!("http: {{ listen: \"{listen}\" }}\n");
    let _daemon = Daemon::write(&dir, &cfg).stdout(Stdio::null()).start();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();

    // All targets up.
    let started = Instant::now();
    loop {
        let up = if std::net::TcpStream::connect(&listen).is_ok() {
            let v: Value =
                client.get(format!("http://{listen}/api/v1/targets")).send().await.unwrap().json().await.unwrap();
            let list = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
            assert!(list.len() <= TARGETS);
            list.iter().filter(|t| t["health"] == "up").count()
        } else {
            0
        };
        if up == TARGETS {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "only {up} of {TARGETS} targets up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("all {TARGETS} targets up {:.1}s after start", started.elapsed().as_secs_f64());

    // A 5 s window, counted by the server.
    let before = hits.lock().unwrap().clone();
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = hits.lock().unwrap().clone();
    let elapsed = window.elapsed().as_secs_f64();
    let counts: Vec<u64> = (0..TARGETS)
        .map(|i| after.get(&i.to_string()).copied().unwrap_or(0) - before.get(&i.to_string()).copied().unwrap_or(0))
        .collect();
    let (min, max) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
    let total: u64 = counts.iter().sum();
    println!(
        "server: {total} scrapes in {elapsed:.2}s ({:.0}/s); per target min {min} max {max}",
        total as f64 / elapsed
    );
    assert!(min >= 4, "a target was scraped only {min} times in {elapsed:.1}s at a 1s interval");
    assert!(max <= 7, "a target was scraped {max} times in {elapsed:.1}s at a 1s interval");

    // The same, seen in the store; and the scrape duration distribution.
    let n = scalar(&client, &listen, "count(count_over_time(up{job=\"scale\"}[5s]) >= 4)").await;
    assert_eq!(n, TARGETS as f64, "targets with at least 4 `up` samples in 5s");
    assert_eq!(scalar(&client, &listen, "count(up{job=\"scale\"} == 1)").await, TARGETS as f64);
    assert_eq!(scalar(&client, &listen, "count(work_items)").await, (TARGETS * 10) as f64);
    let mut line = String::from("scrape_duration_seconds over the last 5s:");
    for (name, q) in [
        ("p50", "quantile(0.5, max_over_time(scrape_duration_seconds{job=\"scale\"}[5s]))"),
        ("p90", "quantile(0.9, max_over_time(scrape_duration_seconds{job=\"scale\"}[5s]))"),
        ("p99", "quantile(0.99, max_over_time(scrape_duration_seconds{job=\"scale\"}[5s]))"),
        ("max", "max(max_over_time(scrape_duration_seconds{job=\"scale\"}[5s]))"),
    ] {
        let v = scalar(&client, &listen, q).await;
        assert!(v.is_finite(), "{name}: {q}");
        line += &format!(" {name} {:.1}ms", v * 1000.0);
    }
    println!("{line} (p/max of each target's slowest scrape)");
    let _ = std::fs::remove_dir_all(&dir);
}
