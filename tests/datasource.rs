//! `datasource:` against real stores: the same scenario, written to a real
//! VictoriaMetrics and a real Prometheus, evaluated by the same rules of
//! every kind (PromQL, `trend`, `ratio`, `anomaly`, `threshold`) on the
//! local store and through each store's query API, gives the same alerts
//! at the same evaluation times. Then the daemon as a pure rule engine in
//! front of VictoriaMetrics: no `scrape_configs`, an alert reaches the
//! webhook, and a fresh replica (empty state dir) restores the alert's
//! `activeAt` from `ALERTS_FOR_STATE`, retrying while the store is down.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarn::datasource::{DatasourceConfig, RemoteSource};
use forewarn::remote_write::proto;
use forewarn::rules::{EvalContext, RuleGroup};
use forewarn::{Labels, Store};
use serde_json::Value;

mod support;
use support::{free_port, peer_installed, temp_dir, Daemon, WebhookSink, PROMETHEUS, VICTORIA_METRICS};

const STEP: i64 = 15_000;
const MIN: i64 = 60_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The scenario: (labels, samples) over `[t0, t0 + 110 min]` every 15 s.
/// Values are integers or halves, so every store keeps them exactly.
fn scenario(t0: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let n = 110 * MIN / STEP;
    let at = |i: i64| t0 + i * STEP;
    let minute = |i: i64| (i * STEP) / MIN;
    let series = |name: &str, extra: &[(&str, &str)], f: &dyn Fn(i64) -> f64| {
        let mut pairs = vec![("__name__", name)];
        pairs.extend_from_slice(extra);
        (Labels::from_pairs(pairs), (0..=n).map(|i| (at(i), f(i))).collect::<Vec<_>>())
    };
    // A fixed pseudo-random wobble: same on every run.
    let wobble = |i: i64| ((i * 7919 + 13) % 9) as f64 * 0.5;
    vec![
        // Flat, then a leak of 1 MiB a minute from minute 80.
        series("mem_bytes", &[("instance", "a")], &|i| {
            let m = minute(i).max(80) - 80;
            100.0 * 1_048_576.0 + (m * 1_048_576) as f64 + wobble(i) * 1024.0
        }),
        series("mem_bytes", &[("instance", "b")], &|i| 200.0 * 1_048_576.0 + wobble(i) * 1024.0),
        // A filter passing half its input, then all of it from minute 90.
        series("events_in_total", &[("service", "f")], &|i| (i * 100) as f64),
        series("events_out_total", &[("service", "f")], &|i| {
            let m = minute(i);
            if m < 90 {
                (i * 50) as f64
            } else {
                let i30 = 90 * MIN / STEP;
                (i30 * 50 + (i - i30) * 100) as f64
            }
        }),
        // Latency wobbling around 10, a burst at minutes 98-102.
        series("latency_ms", &[("route", "/x")], &|i| {
            if (98..102).contains(&minute(i)) {
                40.0 + wobble(i)
            } else {
                10.0 + wobble(i)
            }
        }),
        // A queue that grows past 50 at minute 95, back under 20 at 104.
        series("queue_depth", &[("queue", "q")], &|i| {
            let m = minute(i);
            if (95..104).contains(&m) {
                60.0 + wobble(i)
            } else if m >= 104 {
                5.0
            } else {
                10.0 + wobble(i)
            }
        }),
    ]
}

const RULES: &str = r#"groups:
  - name: promql
    interval: 15s
    rules:
      - record: service:events_in:rate2m
        expr: sum by (service) (rate(events_in_total[2m]))
      - alert: QueueDeep
        expr: max_over_time(queue_depth[1m]) > 40
        for: 1m
      - alert: PassingTooMuch
        expr: rate(events_out_total[2m]) / rate(events_in_total[2m]) > 0.8
  - name: kinds
    interval: 15s
    rules:
      - alert: Leak
        trend:
          series: mem_bytes
          over: 10m
          rising: 20MiB/h
          min_points: 10
          seasonality: none
        for: 1m
      - alert: FilterPassesEverything
        ratio:
          of: sum by (service) (rate(events_out_total[2m]))
          to: sum by (service) (rate(events_in_total[2m]))
          expect: 0.5
          tolerance: 0.15
        for: 1m
      - alert: SlowRoute
        anomaly:
          series: latency_ms
          baseline: 1h
          min_history: 20m
          sensitivity: 1
          direction: up
      - alert: QueueHigh
        threshold:
          series: queue_depth
          above: 50
          clear_below: 20
"#;

async fn push(url: &str, data: &[(Labels, Vec<(i64, f64)>)]) {
    let req = proto::WriteRequest {
        timeseries: data
            .iter()
            .map(|(l, s)| proto::TimeSeries {
                labels: l.iter().map(|(n, v)| proto::Label { name: n.into(), value: v.into() }).collect(),
                samples: s.iter().map(|&(t, v)| proto::Sample { value: v, timestamp: t }).collect(),
            })
            .collect(),
    };
    let r = remote_write(&reqwest::Client::new(), url, &req).await.expect("remote write");
    assert!(r.status().is_success(), "{url} refused the scenario: {}", r.status());
}

/// POSTs `req` to `url`'s `/api/v1/write` as remote write 1.0.
async fn remote_write(
    client: &reqwest::Client,
    url: &str,
    req: &proto::WriteRequest,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{url}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(proto::encode(req).expect("encode"))
        .send()
        .await
}

/// Waits until `base` answers `count_over_time(...)` with every sample.
async fn wait_ingested(base: &str, at: i64, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut got = Some(0.0);
        for name in ["mem_bytes", "events_in_total", "events_out_total", "latency_ms", "queue_depth"] {
            let n = query_scalar(base, &format!("sum(count_over_time({name}[2h]))"), at).await;
            got = got.zip(n).map(|(a, b)| a + b);
        }
        if got == Some(expected as f64) {
            return;
        }
        if Instant::now() > deadline {
            let url =
                format!("{base}/api/v1/query?query=count_over_time(mem_bytes[1h])&time={:.3}", at as f64 / 1000.0);
            let text = reqwest::get(url).await.unwrap().text().await.unwrap();
            panic!("{base} holds {got:?} samples, expected {expected}: {text}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn query_scalar(base: &str, q: &str, at: i64) -> Option<f64> {
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/api/v1/query"),
        &[("query", q), ("time", &format!("{:.3}", at as f64 / 1000.0))],
    )
    .ok()?;
    let v: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn groups(dir: &Path) -> Vec<RuleGroup> {
    let path = dir.join("rules.yml");
    std::fs::write(&path, RULES).unwrap();
    forewarn::rules::load_file(&path, forewarn::duration::PromDuration(Duration::from_secs(15))).expect("rules load")
}

/// What an evaluation shows of its alerts: the `ALERTS` (state) and
/// `ALERTS_FOR_STATE` (activeAt) samples of every pending and firing alert.
type Seen = BTreeMap<String, f64>;

fn seen(g: &RuleGroup) -> Seen {
    g.alert_series().into_iter().map(|(l, v)| (format!("{l:?}"), v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_kind_gives_the_same_alerts_on_the_local_store_victoriametrics_and_prometheus() {
    if !peer_installed(VICTORIA_METRICS, "victoria-metrics") || !peer_installed(PROMETHEUS, "prometheus") {
        return;
    }
    let dir = temp_dir("ds-diff");
    let (_vm, vm) = support::start_victoria_metrics(&dir.join("vm"), free_port()).await;
    let (_prom, prom) = support::start_prometheus_receiver(&dir.join("prom"), free_port()).await;
    let end = now_ms() / STEP * STEP - 2 * MIN;
    let t0 = end - 110 * MIN;
    let data = scenario(t0);
    let total: usize = data.iter().map(|(_, s)| s.len()).sum();
    push(&vm, &data).await;
    push(&prom, &data).await;
    wait_ingested(&vm, end, total).await;
    wait_ingested(&prom, end, total).await;

    let local = Store::new(86_400_000);
    for (l, s) in &data {
        for &(t, v) in s {
            local.append(l, t, v);
        }
    }
    let ctx = EvalContext::default();
    let sources: Vec<(&str, Arc<RemoteSource>)> = vec![
        ("victoria-metrics", RemoteSource::new(&DatasourceConfig::new(&vm)).expect("datasource")),
        ("prometheus", RemoteSource::new(&DatasourceConfig::new(&prom)).expect("datasource")),
    ];
    let differences = tokio::task::spawn_blocking(move || {
        let mut reference = groups(&dir);
        let mut remote: Vec<(String, Arc<RemoteSource>, Vec<RuleGroup>, Store)> = sources
            .into_iter()
            .map(|(name, src)| (name.to_string(), src, groups(&dir), Store::new(86_400_000)))
            .collect();
        let mut differences = Vec::new();
        let mut fired: BTreeMap<String, usize> = BTreeMap::new();
        let mut t = t0 + 10 * MIN;
        while t <= end {
            for (gi, g) in reference.iter_mut().enumerate() {
                let out = g.eval(&local, t, &ctx);
                assert!(out.errors.iter().all(Option::is_none), "local: {:?}", out.errors);
                let want = seen(g);
                for key in want.keys().filter(|k| k.contains("firing")) {
                    *fired.entry(key.clone()).or_default() += 1;
                }
                for (name, src, gs, scratch) in remote.iter_mut() {
                    let out = gs[gi].eval_reading(&src.reader(), scratch, t, &ctx);
                    if let Some(e) = out.errors.iter().flatten().next() {
                        differences.push(format!("{name} at {}: error {e}", (t - t0) / 1000));
                        continue;
                    }
                    let got = seen(&gs[gi]);
                    if got != want {
                        differences.push(format!(
                            "{name} at +{}s, group {}:\n  local {want:?}\n  {name} {got:?}",
                            (t - t0) / 1000,
                            g.name
                        ));
                    }
                }
            }
            t += STEP;
        }
        (differences, fired)
    })
    .await
    .unwrap();
    let (differences, fired) = differences;
    // The comparison means something only if every rule fired.
    for name in ["QueueDeep", "PassingTooMuch", "Leak", "FilterPassesEverything", "SlowRoute", "QueueHigh"] {
        assert!(
            fired.keys().any(|k| k.contains(&format!("\"{name}\""))),
            "{name} never fired on the local store: {fired:?}"
        );
    }
    assert!(differences.is_empty(), "{} differences:\n{}", differences.len(), differences.join("\n"));
}

/// Pushes `hot{instance="a"} 100` to `url` every second, forever.
fn spawn_pusher(url: String) {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        loop {
            let req = proto::WriteRequest {
                timeseries: vec![proto::TimeSeries {
                    labels: vec![
                        proto::Label { name: "__name__".into(), value: "hot".into() },
                        proto::Label { name: "instance".into(), value: "a".into() },
                    ],
                    samples: vec![proto::Sample { value: 100.0, timestamp: now_ms() }],
                }],
            };
            // Refused while the store is down: the test restarts it.
            let _ = remote_write(&client, &url, &req).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// A replica with no scrape_configs: rules read `vm`, results go back to it.
fn start_replica(dir: &Path, replica: &str, vm: &str, hook: &str) -> (support::Proc, String) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Hot\n        expr: hot > 50\n        for: 5s\n",
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = format!(
        r#"global: {{ evaluation_interval: 1s, external_labels: {{ replica: {replica} }} }}
datasource: {{ url: "{vm}", timeout: 2s }}
rule_files: [ rules.yml ]
storage: {{ path: "{state}", wal_fsync_interval: 500ms }}
remote_write:
  - url: "{vm}/api/v1/write"
    queue_config: {{ batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s }}
route: {{ receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }}
receivers:
  - name: team
    webhook_configs: [ {{ url: "http://{hook}/hook" }} ]
http: {{ listen: "{listen}" }}
"#,
        state = dir.join("state").display()
    );
    let p = Daemon::write(dir, &cfg).stderr(std::fs::File::create(dir.join("stderr.log")).unwrap()).start();
    (p, format!("http://{listen}"))
}

async fn get_json(url: &str) -> Option<Value> {
    reqwest::get(url).await.ok()?.json().await.ok()
}

/// `(state, activeAt)` of the alert `Hot` on `base`'s `/api/v1/alerts`.
async fn hot_alert(base: &str) -> Option<(String, String)> {
    let v = get_json(&format!("{base}/api/v1/alerts")).await?;
    let a = v["data"]["alerts"].as_array()?.iter().find(|a| a["labels"]["alertname"] == "Hot")?.clone();
    Some((a["state"].as_str()?.to_string(), a["activeAt"].as_str()?.to_string()))
}

async fn until<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(x) = f().await {
            return x;
        }
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pure_rule_engine_alerts_and_a_fresh_replica_restores_for_state_from_the_store() {
    if !peer_installed(VICTORIA_METRICS, "victoria-metrics") {
        return;
    }
    let dir = temp_dir("ds-engine");
    let vm_port = free_port();
    let (vm, vm_url) = support::start_victoria_metrics(&dir.join("vm"), vm_port).await;
    spawn_pusher(vm_url.clone());
    let got = WebhookSink::start().await;
    let hook = got.addr.clone();

    // Replica a: no scrape_configs, reads the store, pages through the webhook.
    let (mut a, a_url) = start_replica(&dir.join("a"), "a", &vm_url, &hook);
    until("replica a's page", 60, async || {
        got.bodies().iter().any(|v| v["alerts"][0]["labels"]["alertname"] == "Hot").then_some(())
    })
    .await;
    let (state, active_at) = until("Hot firing on replica a", 10, async || hot_alert(&a_url).await).await;
    assert_eq!(state, "firing");
    // Queries and charts read the store too: `hot` is in no local store.
    let q = get_json(&format!("{a_url}/api/v1/query?query=hot")).await.expect("query answer");
    assert_eq!(q["data"]["result"][0]["value"][1], "100", "{q}");
    let alerts = get_json(&format!("{a_url}/api/v1/alerts")).await.unwrap();
    let fp = alerts["data"]["alerts"][0]["fingerprint"].as_str().unwrap().to_string();
    let svg = reqwest::get(format!("{a_url}/api/v1/alerts/{fp}/chart.svg")).await.unwrap();
    assert_eq!(svg.status(), 200);
    let svg = svg.text().await.unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("<polyline"),
        "a chart with the series: {}",
        &svg[..svg.len().min(300)]
    );
    // Its ALERTS_FOR_STATE reached the store through remote_write.
    until("ALERTS_FOR_STATE in VictoriaMetrics", 30, async || {
        query_scalar(&vm_url, "ALERTS_FOR_STATE{alertname=\"Hot\",replica=\"a\"}", now_ms()).await
    })
    .await;
    // Let VictoriaMetrics write it to disk, then stop both.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = a.0.kill();
    let _ = a.0.wait();
    stop_gently(vm);

    // Replica b starts fresh while the store is down: it retries the
    // restore (and says so) instead of starting `for` over.
    let (_b, b_url) = start_replica(&dir.join("b"), "b", &vm_url, &hook);
    until("replica b reporting the failed restore", 60, async || {
        let v = get_json(&format!("{b_url}/api/v1/rules")).await?;
        let err = v["data"]["groups"][0]["rules"][0]["lastError"].as_str()?.to_string();
        err.contains("restoring alert state").then_some(())
    })
    .await;
    assert!(hot_alert(&b_url).await.is_none(), "no alert before the store answers");
    let (_vm2, _) = support::start_victoria_metrics(&dir.join("vm"), vm_port).await;
    let (state_b, active_b) =
        until("Hot on replica b", 60, async || hot_alert(&b_url).await.filter(|(s, _)| s == "firing")).await;
    assert_eq!(state_b, "firing");
    assert_eq!(active_b, active_at, "replica b restored replica a's activeAt from ALERTS_FOR_STATE");
}

/// SIGTERM, then wait: VictoriaMetrics flushes what it holds.
fn stop_gently(p: support::Proc) {
    let mut p = p;
    let _ = std::process::Command::new("kill").arg("-TERM").arg(p.0.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = p.0.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
