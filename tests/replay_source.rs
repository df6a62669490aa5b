//! `forewarn replay --source`: history pulled from Debian's Prometheus
//! (`/usr/bin/prometheus`, which `.ci/run` installs; the test fails, not
//! skips, without it) that scraped a scenario target served here every
//! second. The queue is shallow, then deep for eight seconds, then shallow
//! again; the replayed alert must be pending, firing and resolved when the
//! scenario says, within what scraping and the 1 s step can shift it, and
//! count two notifications (fired, resolved).

use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, serve, start_prometheus, temp_dir, BIN};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The deep-queue window, in Unix ms; i64::MAX until the scenario starts.
#[derive(Clone)]
struct Scenario {
    deep_from: Arc<AtomicI64>,
    deep_to: Arc<AtomicI64>,
}

async fn start_target(s: Scenario) -> String {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let s = s.clone();
            async move {
                let t = now_ms();
                let deep = t >= s.deep_from.load(Ordering::SeqCst) && t < s.deep_to.load(Ordering::SeqCst);
                let v = if deep { 500 } else { 5 };
                format!("# TYPE queue_depth gauge\nqueue_depth{{queue=\"orders\"}} {v}\n")
            }
        }),
    );
    serve(app).await
}

/// `queue_depth` at Unix ms `t` (None: the server's now), if Prometheus has it.
async fn depth_at(client: &reqwest::Client, base: &str, t: Option<i64>) -> Option<String> {
    let mut r = client.get(format!("{base}/api/v1/query")).query(&[("query", "queue_depth")]);
    if let Some(t) = t {
        r = r.query(&[("time", &format!("{:.3}", t as f64 / 1000.0))]);
    }
    let v: Value = r.send().await.ok()?.json().await.ok()?;
    v["data"]["result"][0]["value"][1].as_str().map(str::to_string)
}

/// Polls until Prometheus answers `want` for `queue_depth` at `t` (bounded).
async fn wait_for_depth(client: &reqwest::Client, base: &str, t: Option<i64>, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = depth_at(client, base, t).await;
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus at {base}: queue_depth at {t:?} is {got:?}, not {want}, after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).timestamp_millis()
}

/// `lo <= x - at <= hi`, with a message naming what was checked.
fn near(what: &str, x: i64, at: i64, lo: i64, hi: i64) {
    let d = x - at;
    assert!((lo..=hi).contains(&d), "{what}: {d} ms after the scenario's time, expected {lo}..={hi} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_from_prometheus_matches_the_scenario() {
    let dir = temp_dir("replay-source");
    let scenario =
        Scenario { deep_from: Arc::new(AtomicI64::new(i64::MAX)), deep_to: Arc::new(AtomicI64::new(i64::MAX)) };
    let target = start_target(scenario.clone()).await;
    let (_prom, prom) = start_prometheus(&dir, &target);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();

    // Once Prometheus has the shallow queue, the queue is deep 3 s from now
    // for 8 s.
    let t0 = now_ms();
    wait_for_depth(&client, &prom, None, "5").await;
    let from = now_ms();
    let (deep_from, deep_to) = (from + 3000, from + 11_000);
    scenario.deep_to.store(deep_to, Ordering::SeqCst);
    scenario.deep_from.store(deep_from, Ordering::SeqCst);
    let to = deep_to + 4000;
    tokio::time::sleep(Duration::from_millis((to + 1000 - now_ms()).max(0) as u64)).await;
    // Prometheus saw the queue deep and shallow again by `to`.
    wait_for_depth(&client, &prom, Some(deep_from + 2000), "500").await;
    wait_for_depth(&client, &prom, Some(to), "5").await;

    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: queues\n    interval: 1s\n    rules:\n      - alert: QueueDeep\n        \
         expr: queue_depth > 100\n        for: 3s\n        labels: { severity: page }\n",
    )
    .unwrap();
    let secs = |t: i64| format!("{:.3}", t as f64 / 1000.0);
    let replay_file = |rules: &str, from: i64, to: i64, extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["replay", "--rules"])
            .arg(dir.join(rules))
            .args(["--source", &prom, "--from", &secs(from), "--to", &secs(to), "--output", "json"])
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{extra:?}: {stderr}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
        doc
    };
    let replay = |extra: &[&str]| replay_file("rules.yml", from, to, extra);
    // The default step is the group's 1s; at 10ms the ~5 minutes fetched
    // (with the lookback before --from) are ~31,000 points per series, more
    // than Prometheus serves in one request, so this also goes in chunks.
    for (extra, label) in [(&[][..], "step 1s"), (&["--step", "10ms"][..], "step 10ms, chunked")] {
        let doc = replay(extra);
        let spans = doc["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 2, "{label}: pending then firing: {doc:#}");
        let (pending, firing) = (&spans[0], &spans[1]);
        assert_eq!((&pending["state"], &firing["state"]), (&"pending".into(), &"firing".into()), "{doc:#}");
        assert_eq!(firing["alertname"], "QueueDeep");
        assert_eq!(firing["labels"]["queue"], "orders");
        assert_eq!(firing["labels"]["severity"], "page");
        assert_eq!(firing["labels"]["job"], "app", "labels as Prometheus stored them");
        // A scrape's timestamp is taken just before the target answers; the
        // scrape, the step grid and the evaluation each add up to a second.
        near(&format!("{label}: pending from"), ms(&pending["from"]), deep_from, -500, 3500);
        assert_eq!(pending["to"], firing["from"]);
        near(
            &format!("{label}: firing after pending (for: 3s)"),
            ms(&firing["from"]),
            ms(&pending["from"]),
            3000,
            4000,
        );
        near(&format!("{label}: resolved"), ms(&firing["to"]), deep_to, -500, 3500);
        assert_eq!(doc["notifications"], 2, "{label}: one when firing, one when resolved: {doc:#}");
        assert_eq!(doc["errors"], Value::Array(vec![]));
        println!(
            "{label}: scenario began {} ms after prometheus started; pending +{} ms, firing +{} ms after deep, resolved +{} ms after shallow",
            from - t0,
            ms(&pending["from"]) - deep_from,
            ms(&firing["from"]) - deep_from,
            ms(&firing["to"]) - deep_to
        );
    }

    // `@ <time>` reads that time at every evaluation: replaying only the
    // two shallow seconds before the deep queue, a rule pinned inside the
    // deep window fires from the first evaluation on. The pinned time is
    // after --to, beyond any lookback of the replayed window, so this needs
    // its own fetch.
    let pinned = deep_from + 4000;
    std::fs::write(
        dir.join("pinned.yml"),
        format!(
            "groups:\n  - name: pinned\n    interval: 1s\n    rules:\n      - alert: WasDeep\n        \
             expr: queue_depth @ {} > 100\n",
            secs(pinned)
        ),
    )
    .unwrap();
    let doc = replay_file("pinned.yml", from, from + 2000, &[]);
    let spans = doc["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 1, "one firing span over the whole window: {doc:#}");
    assert_eq!((&spans[0]["alertname"], &spans[0]["state"]), (&"WasDeep".into(), &"firing".into()), "{doc:#}");
    assert_eq!(spans[0]["labels"]["queue"], "orders");
    assert_eq!(spans[0]["from"], doc["from"], "firing from --from on: {doc:#}");
    assert_eq!(spans[0]["to"], Value::Null);
}

/// A server that refuses the query: the error names the URL and says what
/// the server said (here, which credentials it got).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_name_the_url_and_the_message() {
    let app = Router::new().route(
        "/api/v1/query_range",
        get(|headers: axum::http::HeaderMap| async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("none").to_string();
            let body = serde_json::json!({
                "status": "error",
                "errorType": "execution",
                "error": format!("query processing would load too many samples (auth: {auth})"),
            });
            (axum::http::StatusCode::UNPROCESSABLE_ENTITY, body.to_string())
        }),
    );
    let addr = serve(app).await;
    let dir = temp_dir("replay-source-errors");
    std::fs::write(dir.join("r.yml"), "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n")
        .unwrap();
    std::fs::write(dir.join("token"), "s3cret\n").unwrap();
    std::fs::write(dir.join("password"), "p").unwrap();
    let run = |source: String, auth: Vec<String>| {
        let dir = dir.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new(BIN)
                    .args(["replay", "--rules"])
                    .arg(dir.join("r.yml"))
                    .args(["--source", &source, "--from", "-1h", "--to", "now"])
                    .args(auth)
                    .current_dir(&dir)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let out = run(format!("http://{addr}"), vec![]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("http://{addr}/api/v1/query_range")), "{err}");
    assert!(err.contains("query processing would load too many samples (auth: none)"), "{err}");
    let bearer = vec!["--bearer-token-file".to_string(), "token".to_string()];
    let err = String::from_utf8_lossy(&run(format!("http://{addr}/"), bearer).await.stderr).to_string();
    assert!(err.contains("(auth: Bearer s3cret)"), "{err}");
    let basic: Vec<String> =
        ["--basic-auth-user", "u", "--basic-auth-password-file", "password"].iter().map(|s| s.to_string()).collect();
    let err = String::from_utf8_lossy(&run(format!("http://{addr}"), basic).await.stderr).to_string();
    // base64("u:p")
    assert!(err.contains("(auth: Basic dTpw)"), "{err}");

    // Nothing listening: the URL and the cause.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let out = run(closed.clone(), vec![]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&closed) && err.to_lowercase().contains("refused"), "{err}");
}
