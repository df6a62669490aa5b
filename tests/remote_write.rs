//! Remote write against real receivers: the `forewarn` binary scrapes a
//! test target on 127.0.0.1, records a rule and fires an alert, and sends
//! everything with `remote_write` to a real VictoriaMetrics
//! (`/api/v1/write`) and a real Prometheus (`--web.enable-remote-write-receiver`).
//! The receivers' query APIs must hold exactly the samples forewarn's own
//! `/api/v1/query` shows (scraped, recorded and `ALERTS`), with the
//! `external_labels` added; after VictoriaMetrics is down for a while, and
//! after forewarn is killed with SIGKILL and restarted, there is no gap.
//!
//! The target's counter goes up by one per request, so a lost sample is a
//! missing value, not a guess from timings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, peer_installed, temp_dir, Daemon, Proc, PROMETHEUS, VICTORIA_METRICS};

async fn start_target() -> String {
    let served = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(n): State<Arc<AtomicU64>>| async move {
                let v = n.fetch_add(1, Ordering::SeqCst) + 1;
                format!("# TYPE app_scrapes_total counter\napp_scrapes_total {v}\n")
            }),
        )
        .with_state(served);
    support::serve(app).await
}

fn write_config(dir: &Path, target: &str, listen: &str, vm: &str, prom: &str) -> PathBuf {
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n- name: g\n  interval: 500ms\n  rules:\n  - record: job:app_scrapes:sum\n    expr: sum by (job) (app_scrapes_total)\n  - alert: Always\n    expr: app_scrapes_total > 0\n    labels: { severity: info }\n",
    )
    .unwrap();
    let cfg = format!(
        r#"global: {{ scrape_interval: 500ms, scrape_timeout: 500ms, evaluation_interval: 500ms, external_labels: {{ replica: a }} }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{target}"] }} ]
rule_files: [ rules.yml ]
storage: {{ path: "{}", retention: 1h, wal_fsync_interval: 500ms, snapshot_interval: 2s }}
http: {{ listen: "{listen}" }}
remote_write:
  - url: "{vm}/api/v1/write"
    name: vm
    queue_config: {{ batch_send_deadline: 500ms, min_backoff: 50ms, max_backoff: 1s }}
  - url: "{prom}/api/v1/write"
    name: prom
    queue_config: {{ batch_send_deadline: 500ms, max_samples_per_send: 7 }}
"#,
        dir.join("state").display()
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn start_forewarn(cfg: &Path) -> Proc {
    Daemon::on(cfg).quiet().start()
}

async fn get_json(url: &str) -> Option<Value> {
    let r = reqwest::get(url).await.ok()?;
    r.json().await.ok()
}

/// Samples of the series named by `selector` in a Prometheus-style
/// instant query of `selector[10m]` at `at_ms`: labels (sorted text) -> t -> v.
async fn prom_samples(base: &str, selector: &str, at_ms: i64) -> BTreeMap<String, BTreeMap<i64, f64>> {
    let q = format!("{selector}[10m]");
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/api/v1/query"),
        &[("query", q.as_str()), ("time", &format!("{:.3}", at_ms as f64 / 1000.0))],
    )
    .unwrap();
    let mut out = BTreeMap::new();
    let Some(v) = get_json(url.as_str()).await else { return out };
    for s in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let key = labels_key(&s["metric"]);
        let samples = s["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let t = (p[0].as_f64()? * 1000.0).round() as i64;
                Some((t, p[1].as_str()?.parse::<f64>().ok()?))
            })
            .collect();
        out.insert(key, samples);
    }
    out
}

/// The same from VictoriaMetrics's raw export (`/api/v1/export`).
async fn vm_samples(base: &str, selector: &str, at_ms: i64) -> BTreeMap<String, BTreeMap<i64, f64>> {
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/api/v1/export"),
        &[("match[]", selector), ("end", &format!("{:.3}", at_ms as f64 / 1000.0))],
    )
    .unwrap();
    let mut out: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    let Ok(r) = reqwest::get(url.as_str()).await else { return out };
    let text = r.text().await.unwrap_or_default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(s) = serde_json::from_str::<Value>(line) else { continue };
        let e = out.entry(labels_key(&s["metric"])).or_default();
        let ts = s["timestamps"].as_array().cloned().unwrap_or_default();
        let vs = s["values"].as_array().cloned().unwrap_or_default();
        for (t, v) in ts.iter().zip(&vs) {
            let (Some(t), Some(v)) = (t.as_i64(), v.as_f64()) else { continue };
            if !v.is_nan() && t <= at_ms {
                e.insert(t, v);
            }
        }
    }
    out
}

fn labels_key(m: &Value) -> String {
    let mut pairs: Vec<String> = m
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "replica")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// Every series of `selector` that forewarn holds up to `cutoff`, as the
/// receivers must hold it (receivers' keys drop `replica`, which the test
/// checks separately).
async fn compare(fw: &str, vm: Option<&str>, prom: Option<&str>, selector: &str, cutoff: i64, after: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let clip = |m: BTreeMap<String, BTreeMap<i64, f64>>| -> BTreeMap<String, BTreeMap<i64, f64>> {
        m.into_iter()
            .map(|(k, s)| (k, s.into_iter().filter(|(t, _)| *t > after && *t <= cutoff).collect::<BTreeMap<_, _>>()))
            .filter(|(_, s)| !s.is_empty())
            .collect()
    };
    let want = clip(prom_samples(fw, selector, cutoff).await);
    assert!(!want.is_empty(), "forewarn holds no samples of {selector} before {cutoff}");
    loop {
        let got_vm = match vm {
            Some(u) => clip(vm_samples(u, selector, cutoff).await),
            None => want.clone(),
        };
        let got_prom = match prom {
            Some(u) => clip(prom_samples(u, selector, cutoff).await),
            None => want.clone(),
        };
        if got_vm == want && got_prom == want {
            return;
        }
        if Instant::now() > deadline {
            let diff = |got: &BTreeMap<String, BTreeMap<i64, f64>>| -> String {
                let mut d = String::new();
                for (k, s) in &want {
                    let g = got.get(k).cloned().unwrap_or_default();
                    let missing: Vec<&i64> = s.keys().filter(|t| !g.contains_key(t)).collect();
                    let wrong: Vec<&i64> =
                        s.iter().filter(|(t, v)| g.get(t).is_some_and(|x| x != *v)).map(|(t, _)| t).collect();
                    d += &format!("{k}: {} wanted, {} missing {missing:?}, wrong {wrong:?}; ", s.len(), missing.len());
                }
                for k in got.keys().filter(|k| !want.contains_key(*k)) {
                    d += &format!("extra series {k}; ");
                }
                d
            };
            panic!(
                "{selector}: receivers differ from forewarn up to {cutoff}:\nVictoriaMetrics: {}\nPrometheus: {}",
                diff(&got_vm),
                diff(&got_prom)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

struct Setup {
    dir: PathBuf,
    cfg: PathBuf,
    fw_url: String,
    vm_port: u16,
}

async fn setup(tag: &str) -> Option<(Setup, Proc, Proc, Proc)> {
    if !peer_installed(VICTORIA_METRICS, "victoria-metrics") || !peer_installed(PROMETHEUS, "prometheus") {
        return None;
    }
    let dir = temp_dir(tag);
    let target = start_target().await;
    let vm_port = free_port();
    let (vm, vm_url) = support::start_victoria_metrics(&dir.join("vm"), vm_port).await;
    let (prom, prom_url) = support::start_prometheus_receiver(&dir.join("prom"), free_port()).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = write_config(&dir, &target, &listen, &vm_url, &prom_url);
    let fw = start_forewarn(&cfg);
    let fw_url = format!("http://{listen}");
    support::wait_http_ok(&format!("{fw_url}/-/ready"), Duration::from_secs(20)).await;
    Some((Setup { dir, cfg, fw_url, vm_port }, fw, vm, prom))
}

const VM: &str = "http://127.0.0.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_hold_what_forewarn_holds_and_an_outage_leaves_no_gap() {
    let Some((s, _fw, vm, prom)) = setup("rw-outage").await else { return };
    let vm_url = format!("{VM}:{}", s.vm_port);
    let prom_url = {
        // The receiver's URL is in forewarn's config; read it back.
        let text = std::fs::read_to_string(&s.cfg).unwrap();
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("- url: \""))
            .nth(1)
            .unwrap()
            .trim_end_matches("/api/v1/write\"")
            .to_string()
    };
    let start = now_ms();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let cutoff = now_ms() - 1500;
    for sel in ["app_scrapes_total", "job:app_scrapes:sum", "ALERTS", "ALERTS_FOR_STATE"] {
        compare(&s.fw_url, Some(&vm_url), Some(&prom_url), sel, cutoff, start - 60_000).await;
    }
    // external_labels are on the written series, not on forewarn's own.
    let own = prom_samples(&s.fw_url, "app_scrapes_total", cutoff).await;
    assert!(own.keys().all(|k| !k.contains("replica")), "{own:?}");
    let q = reqwest::Url::parse_with_params(
        &format!("{prom_url}/api/v1/query"),
        &[("query", "count(app_scrapes_total{replica=\"a\"})")],
    )
    .unwrap();
    let v = get_json(q.as_str()).await.unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
    let q = reqwest::Url::parse_with_params(
        &format!("{prom_url}/api/v1/query"),
        &[("query", "ALERTS{alertname=\"Always\",alertstate=\"firing\",severity=\"info\",replica=\"a\"}")],
    )
    .unwrap();
    let v = get_json(q.as_str()).await.unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");

    // VictoriaMetrics is down for 6 s (many batches, retried), then back on
    // the same data. Stopped with SIGTERM: under SIGKILL it loses what it
    // acknowledged in its last second (its own in-memory buffer).
    let mut vm = vm;
    let _ = Command::new("kill").arg("-TERM").arg(vm.0.id().to_string()).status();
    let _ = vm.0.wait();
    let down_from = now_ms();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let metrics = reqwest::get(format!("{}/metrics", s.fw_url)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("forewarn_remote_storage_samples_retried_total{") && l.contains("remote_name=\"vm\"")
        ),
        "retries are counted: {metrics}"
    );
    let pending = metrics
        .lines()
        .filter(|l| l.starts_with("forewarn_remote_storage_samples_pending{") && l.contains("remote_name=\"vm\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .next();
    assert!(pending.is_some_and(|p| p > 0.0), "samples wait while the receiver is down: {pending:?}");
    let (_vm2, _) = support::start_victoria_metrics(&s.dir.join("vm"), s.vm_port).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cutoff = now_ms() - 1500;
    for sel in ["app_scrapes_total", "job:app_scrapes:sum", "ALERTS"] {
        compare(&s.fw_url, Some(&vm_url), Some(&prom_url), sel, cutoff, down_from - 2000).await;
    }
    drop(prom);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_of_forewarn_leaves_no_gap_once_caught_up() {
    let Some((s, fw, _vm, _prom)) = setup("rw-kill").await else { return };
    let vm_url = format!("{VM}:{}", s.vm_port);
    let text = std::fs::read_to_string(&s.cfg).unwrap();
    let prom_url = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- url: \""))
        .nth(1)
        .unwrap()
        .trim_end_matches("/api/v1/write\"")
        .to_string();
    let start = now_ms();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut fw = fw;
    fw.0.kill().unwrap(); // SIGKILL
    let _ = fw.0.wait();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fw2 = start_forewarn(&s.cfg);
    support::wait_http_ok(&format!("{}/-/ready", s.fw_url), Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cutoff = now_ms() - 1500;
    // forewarn's own store (recovered from its WAL) and both receivers agree,
    // from before the kill to after the restart.
    for sel in ["app_scrapes_total", "job:app_scrapes:sum", "ALERTS"] {
        compare(&s.fw_url, Some(&vm_url), Some(&prom_url), sel, cutoff, start - 60_000).await;
    }
    let own = prom_samples(&s.fw_url, "app_scrapes_total", cutoff).await;
    let n: usize = own.values().map(|s| s.len()).sum();
    assert!(n >= 8, "both runs' samples are compared ({n})");
    drop(fw2);
}
