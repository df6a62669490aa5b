//! Nobody on the network can crash, stall or mute the real binary through
//! the query API: expressions nested past the limit are refused with their
//! place (API, `forewarn check`, reload and start alike), `query.timeout`
//! and `query.max_samples` stop runaway queries in Prometheus's error
//! envelope, a client that hangs up cancels its query, bad range
//! parameters are 400s naming them, SIGTERM ends the process while queries
//! run, and alerts keep arriving while all of this hammers the API.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, serve, temp_dir, Proc, WebhookSink, BIN};

/// 10,000 unary minus signs, then `up`: one 10 KB request that used to
/// overflow the stack.
fn minus_chain() -> String {
    format!("{}up", "-".repeat(10_000))
}

/// 40,000 nested parentheses.
fn paren_chain() -> String {
    format!("{}up{}", "(".repeat(40_000), ")".repeat(40_000))
}

/// A target whose `x` is 0 until `on` is set, then 1.
async fn start_target(on: Arc<AtomicBool>) -> String {
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(on): State<Arc<AtomicBool>>| async move {
                format!("# TYPE x gauge\nx{{svc=\"a\"}} {}\n", u8::from(on.load(Ordering::SeqCst)))
            }),
        )
        .with_state(on);
    serve(app).await
}

struct Daemon {
    proc: Proc,
    base: String,
    dir: std::path::PathBuf,
}

/// Starts `forewarn run` scraping `target` every second with `rules` and
/// the `query:` section `query`; waits until it listens.
async fn start_daemon(tag: &str, target: &str, hook: &str, rules: &str, query: &str) -> Daemon {
    let dir = temp_dir(tag);
    let listen = format!("127.0.0.1:{}", free_port());
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    let cfg = format!(
        r#"global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{target}"] }} ]
rule_files: [ "rules.yml" ]
route: {{ receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }}
receivers:
  - name: team
    webhook_configs: [ {{ url: "http://{hook}/hook" }} ]
http: {{ listen: "{listen}", enable_lifecycle: true }}
query: {query}
"#
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    let proc = support::Daemon::on(&path).quiet().start();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "the daemon never listened on {listen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Daemon { proc, base: format!("http://{listen}"), dir }
}

const RULES: &str = "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: XUp\n        expr: x > 0\n";

/// A rule that would run for hours ahead of `XUp` in the same group: its
/// evaluation times out at the group's interval and the group goes on.
const SLOW_RULES: &str = "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - record: slow\n        expr: count_over_time(up[1y:1ms])\n      - alert: XUp\n        expr: x > 0\n";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn post_query(c: &reqwest::Client, base: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = c
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(form))
        .send()
        .await
        .expect("the daemon answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until `up` of the target is stored.
async fn wait_scraped(c: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = post_query(c, base, "/api/v1/query", &[("query", "up")]).await;
        if v["data"]["result"].as_array().is_some_and(|a| !a.is_empty()) {
            return;
        }
        assert!(Instant::now() < deadline, "the daemon never scraped its target");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An `application/x-www-form-urlencoded` body.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

fn assert_error(status: u16, v: &Value, code: u16, kind: &str, needle: &str) {
    assert_eq!(status, code, "{v}");
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["errorType"], kind, "{v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_queries_are_refused_and_the_daemon_lives() {
    let on = Arc::new(AtomicBool::new(true));
    let target = start_target(on).await;
    let hook = WebhookSink::start().await.addr;
    let d = start_daemon("qlimits-hostile", &target, &hook, RULES, "{ timeout: 2s, max_samples: 1000 }").await;
    let c = client();
    wait_scraped(&c, &d.base).await;

    // Deep nesting: refused with its place, in a GET and a POST body.
    let r = c.get(format!("{}/api/v1/query", d.base)).query(&[("query", minus_chain())]).send().await.unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_error(status, &v, 400, "bad_data", "1:1001: expression nests deeper than 1000 levels (at byte 1000)");
    let (status, v) = post_query(&c, &d.base, "/api/v1/query", &[("query", &paren_chain())]).await;
    assert_error(status, &v, 400, "bad_data", "1:1001: expression nests deeper than 1000");
    let chain = vec!["up"; 5000].join(" + ");
    let (status, v) = post_query(&c, &d.base, "/api/v1/query", &[("query", &chain)]).await;
    assert_error(status, &v, 400, "bad_data", "nests deeper than 1000");
    // At the limit it evaluates.
    let (status, v) = post_query(&c, &d.base, "/api/v1/query", &[("query", &format!("{}up", "-".repeat(999)))]).await;
    assert_eq!(status, 200, "{v}");

    // A subquery of 3e10 steps stops at query.timeout with Prometheus's envelope.
    let started = Instant::now();
    let (status, v) = post_query(&c, &d.base, "/api/v1/query", &[("query", "count_over_time(up[1y:1ms])")]).await;
    let took = started.elapsed();
    assert_error(status, &v, 503, "timeout", "query timed out in expression evaluation");
    eprintln!("count_over_time(up[1y:1ms]) refused after {took:?} (query.timeout 2s)");
    // The request's own `timeout` parameter can shorten it.
    let (status, v) =
        post_query(&c, &d.base, "/api/v1/query", &[("query", "count_over_time(up[1y:1ms])"), ("timeout", "0.3")]).await;
    assert_error(status, &v, 503, "timeout", "timed out");

    // A selection over max_samples stops with an execution error (422).
    let (status, v) = post_query(&c, &d.base, "/api/v1/query", &[("query", "count_over_time(vector(1)[1h:1s])")]).await;
    assert_error(status, &v, 422, "execution", "too many samples");

    // Bad range parameters: 400s naming them.
    let now = chrono::Utc::now().timestamp();
    let (s, e) = ((now - 60).to_string(), now.to_string());
    for (start, end, step, needle) in [
        (s.as_str(), e.as_str(), "0", "invalid parameter \"step\": zero or negative"),
        (&s, &e, "0s", "invalid parameter \"step\": zero or negative"),
        (&s, &e, "1e-300", "invalid parameter \"step\": zero or negative"),
        (&s, &e, "-5", "invalid parameter \"step\": zero or negative"),
        (&s, &e, "1e300", "invalid parameter \"step\""),
        (&s, &e, "NaN", "invalid parameter \"step\""),
        (&e, &s, "1", "invalid parameter \"end\": end timestamp must not be before start time"),
        ("1e300", &e, "1", "invalid parameter \"start\""),
        ("-9.3e18", &e, "1", "invalid parameter \"start\""),
        (&s, "9.3e18", "1", "invalid parameter \"end\""),
        ("0", "9e12", "1", "exceeded maximum resolution of 11,000 points per timeseries"),
        (&s, &e, "0.001", "exceeded maximum resolution of 11,000 points per timeseries"),
    ] {
        let (status, v) = post_query(
            &c,
            &d.base,
            "/api/v1/query_range",
            &[("query", "up"), ("start", start), ("end", end), ("step", step)],
        )
        .await;
        assert_error(status, &v, 400, "bad_data", needle);
    }
    let (status, v) = post_query(&c, &d.base, "/api/v1/query", &[("query", "up"), ("time", "1e300")]).await;
    assert_error(status, &v, 400, "bad_data", "invalid parameter \"time\"");
    for path in ["/api/v1/series", "/api/v1/labels"] {
        let (status, v) = post_query(&c, &d.base, path, &[("match[]", "up"), ("start", "1e300"), ("end", "NaN")]).await;
        assert_error(status, &v, 400, "bad_data", "invalid parameter \"start\"");
        let (status, v) = post_query(&c, &d.base, path, &[("match[]", &minus_chain())]).await;
        assert_error(status, &v, 400, "bad_data", "nests deeper than 1000");
    }
    // 11,000 points is Prometheus's limit, and allowed.
    let (status, v) = post_query(
        &c,
        &d.base,
        "/api/v1/query_range",
        &[("query", "up"), ("start", "0"), ("end", "11000"), ("step", "1")],
    )
    .await;
    assert_eq!(status, 200, "{v}");

    // Still alive and answering.
    let (status, v) = post_query(&c, &d.base, "/api/v1/query", &[("query", "up")]).await;
    assert_eq!(status, 200, "{v}");
    drop(d);
}

/// With one query slot, a client that hangs up on a slow query frees it:
/// without cancellation the second query would wait the first one's whole
/// minute for the slot and time out itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_cancels_its_query() {
    let target = start_target(Arc::new(AtomicBool::new(true))).await;
    let hook = WebhookSink::start().await.addr;
    let d = start_daemon("qlimits-cancel", &target, &hook, RULES, "{ timeout: 60s, max_concurrency: 1 }").await;
    let c = client();
    wait_scraped(&c, &d.base).await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let r = impatient
        .post(format!("{}/api/v1/query", d.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("query", "count_over_time(up[1y:1ms])")]))
        .send()
        .await;
    assert!(r.is_err(), "the slow query answered within 0.5 s: {r:?}");
    let started = Instant::now();
    let (status, v) = post_query(&c, &d.base, "/api/v1/query", &[("query", "up"), ("timeout", "30s")]).await;
    assert_eq!(status, 200, "the slot stayed taken by the abandoned query: {v}");
    eprintln!("next query answered {:?} after the first client hung up", started.elapsed());
}

/// A rule nested past the limit: `forewarn check` fails naming the place,
/// a reload (HTTP and SIGHUP) keeps the old rules running, and a start with
/// it fails with a clear error instead of crashing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_rule_is_refused_by_check_reload_and_start() {
    let target = start_target(Arc::new(AtomicBool::new(true))).await;
    let hook = WebhookSink::start().await.addr;
    let d = start_daemon("qlimits-rules", &target, &hook, RULES, "{}").await;
    let deep = format!("groups:\n  - name: g\n    rules:\n      - alert: Deep\n        expr: {}\n", minus_chain());
    let deep_path = d.dir.join("deep.yml");
    std::fs::write(&deep_path, &deep).unwrap();

    let out = Command::new(BIN).arg("check").arg(&deep_path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("deep.yml:5:15:") && stdout.contains("nests deeper than 1000 levels"), "{stdout}");

    let c = client();
    std::fs::write(d.dir.join("rules.yml"), &deep).unwrap();
    let r = c.post(format!("{}/-/reload", d.base)).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(body.contains("rules.yml:5:15") && body.contains("nests deeper"), "{body}");
    let pid = d.proc.0.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let rules: Value = c.get(format!("{}/api/v1/rules", d.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(rules["data"]["groups"][0]["rules"][0]["name"], "XUp", "old rules stay live: {rules}");
    drop(d);

    // Starting with it: a clear error and exit 1, not a crash.
    let dir = temp_dir("qlimits-start");
    std::fs::write(dir.join("rules.yml"), &deep).unwrap();
    let cfg = format!("rule_files: [rules.yml]\nhttp: {{ listen: \"127.0.0.1:{}\" }}\n", free_port());
    std::fs::write(dir.join("forewarn.yml"), cfg).unwrap();
    let out = Command::new(BIN).args(["run", "--config"]).arg(dir.join("forewarn.yml")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rules.yml:5:15") && stderr.contains("nests deeper than 1000"), "{stderr}");
}

/// SIGTERM ends the process within 10 s while queries that would run for
/// minutes are being evaluated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_process_while_queries_run() {
    let target = start_target(Arc::new(AtomicBool::new(true))).await;
    let hook = WebhookSink::start().await.addr;
    let mut d = start_daemon("qlimits-term", &target, &hook, RULES, "{ timeout: 10m }").await;
    let c = client();
    wait_scraped(&c, &d.base).await;
    for _ in 0..4 {
        let (c, base) = (c.clone(), d.base.clone());
        tokio::spawn(async move {
            let _ = c
                .post(format!("{base}/api/v1/query"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(&[("query", "count_over_time(up[1y:1ms])")]))
                .send()
                .await;
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = d.proc.0.id().to_string();
    let signalled = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = loop {
        if let Some(s) = d.proc.0.try_wait().unwrap() {
            break s;
        }
        assert!(signalled.elapsed() < Duration::from_secs(10), "still running 10 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("exited {:?} after SIGTERM ({status})", signalled.elapsed());
    assert!(status.success(), "{status}");
}

/// The issue's "done when": while several clients send every hostile
/// request above, the daemon keeps scraping and evaluating, and an alert
/// whose condition starts during the hammering reaches the webhook, though
/// a rule before it in its group times out at every evaluation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alerts_arrive_while_the_api_is_hammered() {
    let on = Arc::new(AtomicBool::new(false));
    let target = start_target(on.clone()).await;
    let got = WebhookSink::start().await;
    let hook = got.addr.clone();
    let d = start_daemon("qlimits-hammer", &target, &hook, SLOW_RULES, "{ timeout: 3s }").await;
    let c = client();
    wait_scraped(&c, &d.base).await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut hammers = Vec::new();
    let hostile: Vec<Vec<(&str, String)>> = vec![
        vec![("query", minus_chain())],
        vec![("query", paren_chain())],
        vec![("query", "count_over_time(up[1y:1ms])".into())],
        vec![("query", "sum(count_over_time({__name__=~\".+\"}[100y]))".into())],
    ];
    for (i, form) in hostile.into_iter().cycle().take(8).enumerate() {
        let (c, base, stop, sent) = (c.clone(), d.base.clone(), stop.clone(), sent.clone());
        hammers.push(tokio::spawn(async move {
            let path = if i % 4 == 3 { "/api/v1/query_range" } else { "/api/v1/query" };
            let mut form = form;
            if i % 4 == 3 {
                form.extend([("start", "0".into()), ("end", "1".into()), ("step", "0".into())]);
                form[0] = ("query", "up".into());
            }
            while !stop.load(Ordering::SeqCst) {
                // Impatient clients too: half of them hang up after 200 ms.
                let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let req = c
                    .post(format!("{base}{path}"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_body(&pairs));
                let req = if i % 2 == 0 { req.timeout(Duration::from_millis(200)) } else { req };
                let _ = req.send().await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let raised = Instant::now();
    on.store(true, Ordering::SeqCst);
    let deadline = raised + Duration::from_secs(60);
    let arrived = loop {
        let firing = got.received().iter().find(|(_, v)| v["status"] == "firing").map(|(t, _)| *t);
        if let Some(t) = firing {
            break t;
        }
        assert!(Instant::now() < deadline, "no alert reached the webhook within 60 s under the hammer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.store(true, Ordering::SeqCst);
    for h in hammers {
        let _ = h.await;
    }
    eprintln!(
        "alert arrived {:?} after the condition started, while {} hostile requests were sent",
        arrived.duration_since(raised),
        sent.load(Ordering::Relaxed)
    );
    // Scraping went on: the target was scraped during the hammering.
    let (status, v) = post_query(&c, &d.base, "/api/v1/query", &[("query", "count_over_time(up[8s])")]).await;
    assert_eq!(status, 200, "{v}");
    let scrapes: f64 = v["data"]["result"][0]["value"][1].as_str().unwrap_or("0").parse().unwrap_or(0.0);
    eprintln!("{scrapes} scrapes in the last 8 s of hammering (interval 1s)");
    assert!(scrapes >= 4.0, "scraping stalled under the hammer: {v}");
    // The slow rule timed out, was reported and counted.
    let rules: Value = c.get(format!("{}/api/v1/rules", d.base)).send().await.unwrap().json().await.unwrap();
    let slow = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(slow["health"], "err", "{rules}");
    assert!(slow["lastError"].as_str().unwrap_or_default().contains("timed out"), "{rules}");
    let metrics = c.get(format!("{}/metrics", d.base)).send().await.unwrap().text().await.unwrap();
    let failures: f64 = metrics
        .lines()
        .find(|l| l.starts_with("forewarn_rule_evaluation_failures_total{group=\"g\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(failures >= 1.0, "rule timeouts not counted: {metrics}");
}
