//! Sharded scraping with `scrape_cluster` (vmagent's semantics): three
//! forewarn members (`members_count: 3`, `replication_factor: 2`) share 30
//! targets served by one test HTTP server on 30 paths. Every target must be
//! scraped by exactly two members (their own `up` series say which), and
//! the union the members write with `remote_write` to one real
//! VictoriaMetrics must be the series a single unsharded forewarn writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use axum::extract::Path as UrlPath;
use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, peer_installed, temp_dir, Daemon, Proc, VICTORIA_METRICS};

const TARGETS: usize = 30;

fn start_forewarn(dir: &Path, target: &str, vm: &str, replica: &str, cluster: &str) -> (Proc, String) {
    std::fs::create_dir_all(dir).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let groups: Vec<String> = (0..TARGETS)
        .map(|i| {
            format!("      - {{ targets: [\"{target}\"], labels: {{ __metrics_path__: \"/t/{i}\", t: \"{i}\" }} }}")
        })
        .collect();
    let cfg = format!(
        r#"global: {{ scrape_interval: 500ms, scrape_timeout: 500ms, external_labels: {{ replica: {replica} }} }}
{cluster}
scrape_configs:
  - job_name: app
    static_configs:
{}
storage: {{ path: "{}", wal_fsync_interval: 500ms }}
http: {{ listen: "{listen}" }}
self_monitoring: {{ enabled: false }}
remote_write:
  - url: "{vm}/api/v1/write"
    queue_config: {{ batch_send_deadline: 500ms }}
"#,
        groups.join("\n"),
        dir.join("state").display()
    );
    let p = Daemon::write(dir, &cfg).quiet().start();
    (p, format!("http://{listen}"))
}

async fn json(url: &str, params: &[(&str, &str)]) -> Value {
    let u = reqwest::Url::parse_with_params(url, params).unwrap();
    reqwest::get(u.as_str()).await.unwrap().json().await.unwrap()
}

/// The `t` labels of targets whose `up` is 1 in `fw`'s own store.
async fn scraped_by(fw: &str) -> BTreeSet<String> {
    let v = json(&format!("{fw}/api/v1/query"), &[("query", "up == 1")]).await;
    v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["metric"]["t"].as_str().map(String::from))
        .collect()
}

/// Series in VictoriaMetrics for `replica` (regex), without the `replica` label.
async fn vm_series(vm: &str, replica: &str) -> BTreeSet<String> {
    let m = format!("{{__name__=~\"up|target_metric\",replica=~\"{replica}\"}}");
    let v = json(&format!("{vm}/api/v1/series"), &[("match[]", m.as_str())]).await;
    v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let mut l: Vec<String> = s
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != "replica")
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            l.sort();
            l.join(",")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_thirty_targets_with_replication_two() {
    if !peer_installed(VICTORIA_METRICS, "victoria-metrics") {
        return;
    }
    let dir = temp_dir("scrape-cluster");
    let app = Router::new()
        .route("/t/{i}", get(|UrlPath(i): UrlPath<String>| async move { format!("target_metric{{n=\"{i}\"}} 1\n") }));
    let target = support::serve(app).await;
    let (_vm, vm) = support::start_victoria_metrics(&dir.join("vm"), free_port()).await;
    let mut members = Vec::new();
    for m in 0..3 {
        let cluster =
            format!("scrape_cluster: {{ members_count: 3, member_num: \"forewarn-{m}\", replication_factor: 2 }}");
        members.push(start_forewarn(&dir.join(format!("m{m}")), &target, &vm, &format!("m{m}"), &cluster));
    }
    let single = start_forewarn(&dir.join("single"), &target, &vm, "single", "");
    for (_, u) in members.iter().chain([&single]) {
        support::wait_http_ok(&format!("{u}/-/ready"), Duration::from_secs(20)).await;
    }

    // Each target is scraped by exactly two members.
    let deadline = Instant::now() + Duration::from_secs(30);
    let per_target = loop {
        let mut per_target: BTreeMap<String, usize> = BTreeMap::new();
        let mut per_member = Vec::new();
        for (_, u) in &members {
            let got = scraped_by(u).await;
            per_member.push(got.len());
            for t in got {
                *per_target.entry(t).or_default() += 1;
            }
        }
        if per_target.len() == TARGETS && per_target.values().all(|&n| n == 2) {
            // Shared out, not all on one member.
            assert!(per_member.iter().all(|&n| n > 0 && n < TARGETS), "{per_member:?}");
            break per_target;
        }
        assert!(
            Instant::now() < deadline,
            "targets not scraped exactly twice: {per_target:?} (per member {per_member:?})"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(per_target.len(), TARGETS);

    // The members' union in VictoriaMetrics is the single scraper's series.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let union = vm_series(&vm, "m[0-9]").await;
        let one = vm_series(&vm, "single").await;
        if one.len() == 2 * TARGETS && union == one {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "union of members ({}) differs from the single scraper ({}): only in union {:?}, only in single {:?}",
            union.len(),
            one.len(),
            union.difference(&one).collect::<Vec<_>>(),
            one.difference(&union).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
