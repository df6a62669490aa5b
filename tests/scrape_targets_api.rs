//! `/api/v1/targets` lists what relabeling dropped: a real `forewarn`
//! process with a `relabel_configs` drop rule shows the dropped target under
//! `droppedTargets` with the labels it was discovered with (Prometheus'
//! shape), and `?state=active|dropped|any` and `?scrapePool=` filter the
//! lists as in Prometheus.

use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::{free_port, temp_dir, Daemon};

fn addresses(list: &Value) -> Vec<String> {
    let mut out: Vec<String> = list
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["discoveredLabels"]["__address__"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_targets_are_listed_with_their_discovered_labels() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp_dir("targets-api");
    let (kept, dropped, other) = (free_port(), free_port(), free_port());
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = format!(
        "global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}\n\
         scrape_configs:\n\
         \x20 - job_name: kept\n\
         \x20   static_configs: [{{targets: ['127.0.0.1:{kept}', '127.0.0.1:{dropped}'], labels: {{env: prod}}}}]\n\
         \x20   relabel_configs: [{{source_labels: [__address__], regex: '.*:{dropped}', action: drop}}]\n\
         \x20 - job_name: other\n\
         \x20   static_configs: [{{targets: ['127.0.0.1:{other}']}}]\n\
         http: {{ listen: \"{listen}\" }}\n"
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).expect("write config");
    let _daemon = Daemon::on(&path).start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "forewarn did not start listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = reqwest::Client::new();
    let get = |q: &'static str| {
        let (client, url) = (client.clone(), format!("http://{listen}/api/v1/targets{q}"));
        async move {
            let v: Value = client.get(url).send().await.expect("GET targets").json().await.expect("JSON");
            assert_eq!(v["status"], "success", "{v}");
            v["data"].clone()
        }
    };
    let (k, d, o) = (format!("127.0.0.1:{kept}"), format!("127.0.0.1:{dropped}"), format!("127.0.0.1:{other}"));

    let all = get("").await;
    let mut active = vec![k.clone(), o.clone()];
    active.sort();
    assert_eq!(addresses(&all["activeTargets"]), active);
    assert_eq!(addresses(&all["droppedTargets"]), std::slice::from_ref(&d));
    let labels = &all["droppedTargets"][0]["discoveredLabels"];
    assert_eq!(labels["job"], "kept", "{labels}");
    assert_eq!(labels["env"], "prod", "{labels}");
    assert_eq!(labels["__scheme__"], "http", "{labels}");
    assert_eq!(labels["__metrics_path__"], "/metrics", "{labels}");
    assert_eq!(all["droppedTargets"][0]["scrapePool"], "kept");
    assert_eq!(all["droppedTargetCounts"]["kept"], 1);
    assert_eq!(get("?state=any").await["droppedTargets"], all["droppedTargets"]);

    let only_active = get("?state=active").await;
    assert_eq!(addresses(&only_active["activeTargets"]), active);
    assert_eq!(only_active["droppedTargets"], Value::Array(Vec::new()));

    let only_dropped = get("?state=dropped").await;
    assert_eq!(only_dropped["activeTargets"], Value::Array(Vec::new()));
    assert_eq!(addresses(&only_dropped["droppedTargets"]), [d]);

    let pool = get("?scrapePool=other").await;
    assert_eq!(addresses(&pool["activeTargets"]), [o]);
    assert_eq!(pool["droppedTargets"], Value::Array(Vec::new()));
    let _ = std::fs::remove_dir_all(&dir);
}
