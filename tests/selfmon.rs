//! Watching the watcher, against the real `forewarn` binary on 127.0.0.1:
//! its own `forewarn_*` metrics are queryable as `job="forewarn"` series,
//! the built-in `Watchdog` fires and reaches only the dead man's switch
//! receiver (repeatedly), a receiver answering 500 makes
//! `ForewarnNotificationsFailing` fire and reach a second, working
//! receiver, and `self_monitoring.enabled: false` takes series and rules
//! away again. Also: `forewarn check` and `forewarn test rules` on the
//! shipped rule file, and the Grafana dashboard reads only metrics
//! forewarn exports.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, serve, temp_dir, wait_for_async, Daemon, Proc, BIN};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A webhook receiver: what it was sent, and the status it answers.
#[derive(Clone)]
struct Hook {
    bodies: Arc<Mutex<Vec<Value>>>,
    /// When each body came.
    times: Arc<Mutex<Vec<Instant>>>,
    status: StatusCode,
}

impl Hook {
    async fn start(status: StatusCode) -> (Hook, String) {
        let h = Hook { bodies: Default::default(), times: Default::default(), status };
        let app = Router::new()
            .route(
                "/hook",
                post(|State(h): State<Hook>, body: String| async move {
                    h.bodies.lock().unwrap().push(serde_json::from_str(&body).unwrap_or(Value::Null));
                    h.times.lock().unwrap().push(Instant::now());
                    h.status
                }),
            )
            .with_state(h.clone());
        let addr = serve(app).await;
        (h, format!("http://{addr}/hook"))
    }

    /// The firing alerts of every notification so far, as (alertname, labels, annotations).
    fn firing(&self) -> Vec<(String, Value, Value)> {
        let bodies = self.bodies.lock().unwrap();
        let mut out = Vec::new();
        for b in bodies.iter() {
            for a in b["alerts"].as_array().into_iter().flatten().filter(|a| a["status"] == "firing") {
                let name = a["labels"]["alertname"].as_str().unwrap_or("").to_string();
                out.push((name, a["labels"].clone(), a["annotations"].clone()));
            }
        }
        out
    }

    /// When the notifications carrying `alertname` came.
    fn arrivals_of(&self, alertname: &str) -> Vec<Instant> {
        let bodies = self.bodies.lock().unwrap();
        let times = self.times.lock().unwrap();
        bodies
            .iter()
            .zip(times.iter())
            .filter(|(b, _)| {
                b["alerts"].as_array().into_iter().flatten().any(|a| a["labels"]["alertname"] == alertname)
            })
            .map(|(_, t)| *t)
            .collect()
    }

    fn notifications_with(&self, alertname: &str) -> usize {
        let bodies = self.bodies.lock().unwrap();
        bodies
            .iter()
            .filter(|b| b["alerts"].as_array().into_iter().flatten().any(|a| a["labels"]["alertname"] == alertname))
            .count()
    }
}

/// reqwest needs rustls's crypto provider chosen once per process.
fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn start_daemon(cfg: &Path) -> Proc {
    crypto();
    Daemon::on(cfg).quiet().start()
}

async fn get_json(url: &str) -> Option<Value> {
    crypto();
    let r = reqwest::get(url).await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// The instant query's result vector (empty while the daemon is not up).
async fn query(base: &str, q: &str) -> Vec<Value> {
    crypto();
    let req = reqwest::Client::new().get(format!("{base}/api/v1/query")).query(&[("query", q)]);
    let Ok(r) = req.send().await else { return Vec::new() };
    let v: Option<Value> = if r.status().is_success() { r.json().await.ok() } else { None };
    v.and_then(|v| v["data"]["result"].as_array().cloned()).unwrap_or_default()
}

/// Rule groups the daemon runs, as (file, name).
async fn rule_groups(base: &str) -> Vec<(String, String)> {
    let v = get_json(&format!("{base}/api/v1/rules")).await.unwrap_or(Value::Null);
    v["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| (g["file"].as_str().unwrap_or("").to_string(), g["name"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn write_config(path: &Path, listen: &str, body: &str) {
    let text = format!(
        "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nhttp: {{ listen: \"{listen}\", enable_lifecycle: true }}\noutbox: {{ max_backoff: 1s }}\n{body}"
    );
    std::fs::write(path, text).expect("write forewarn.yml");
}

/// The self series are queryable, `Watchdog` fires and goes only to the
/// dead man's switch, again every `watchdog_repeat_interval`; turning
/// self-monitoring off on reload takes the series, the rules and the
/// alert away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_series_watchdog_and_turning_it_off() {
    let dir = temp_dir("selfmon-on");
    let (team, team_url) = Hook::start(StatusCode::OK).await;
    let (dms, dms_url) = Hook::start(StatusCode::OK).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{listen}");
    let cfg = dir.join("forewarn.yml");
    let receivers = format!(
        "route: {{ receiver: team, group_wait: 0s, group_interval: 1s, repeat_interval: 1h }}\n\
         receivers:\n  - name: team\n    webhook_configs: [ {{ url: \"{team_url}\" }} ]\n  \
         - name: dms\n    webhook_configs: [ {{ url: \"{dms_url}\" }} ]\n"
    );
    write_config(
        &cfg,
        &listen,
        &format!("{receivers}self_monitoring: {{ watchdog_receiver: dms, watchdog_repeat_interval: 2s }}\n"),
    );
    let _d = start_daemon(&cfg);

    // forewarn's own metrics, as series of job="forewarn", instance=<listen>.
    let rows = wait_for_async("forewarn_rule_groups{job=\"forewarn\"}", Duration::from_secs(20), async || {
        let r = query(&base, "forewarn_rule_groups{job=\"forewarn\"}").await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["metric"]["instance"], listen.as_str(), "{rows:?}");
    assert_eq!(rows[0]["value"][1], "1", "one rule group runs, the built-in one: {rows:?}");
    let up = query(&base, "up{job=\"forewarn\"}").await;
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["value"][1], "1");
    // Counters move: the self scrape counts itself.
    let scrapes = wait_for_async("the self scrape counted twice", Duration::from_secs(10), async || {
        let r = query(&base, "forewarn_scrapes_total{job=\"forewarn\",scrape_job=\"forewarn\"}").await;
        r.first().and_then(|v| v["value"][1].as_str()?.parse::<f64>().ok()).filter(|n| *n >= 2.0)
    })
    .await;
    assert!(scrapes >= 2.0);
    // Failure counters start at 0, so the first failure is an increase()
    // the built-in rules see (a counter first seen at 1 has none).
    let failed = query(&base, "forewarn_notifications_failed_total{job=\"forewarn\",receiver=\"team\"}").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["metric"]["integration"], "webhook", "{failed:?}");
    assert_eq!(failed[0]["value"][1], "0", "{failed:?}");
    let writes = query(&base, "forewarn_storage_write_failures_total{job=\"forewarn\"}").await;
    assert_eq!(writes.len(), 3, "wal, snapshot and sqlite: {writes:?}");
    assert_eq!(
        rule_groups(&base).await,
        vec![("forewarn-self.yml (built in)".to_string(), "forewarn-self".to_string())]
    );

    // Watchdog fires, and the dead man's switch hears it again and again.
    let alerts = query(&base, "ALERTS{alertname=\"Watchdog\",alertstate=\"firing\"}").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["metric"]["severity"], "none");
    wait_for_async("three Watchdog notifications at the dead man's switch", Duration::from_secs(15), async || {
        (dms.notifications_with("Watchdog") >= 3).then_some(())
    })
    .await;
    // Repeated every watchdog_repeat_interval (2s), not in a burst.
    let arrivals = dms.arrivals_of("Watchdog");
    let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g >= Duration::from_millis(1500)), "Watchdog repeats too often: {gaps:?}");
    assert!(
        dms.firing().iter().all(|(name, labels, _)| name == "Watchdog" && labels["job"] == "forewarn"),
        "only Watchdog goes to the dead man's switch: {:?}",
        dms.firing()
    );
    assert_eq!(team.notifications_with("Watchdog"), 0, "the default receiver is not paged with Watchdog");

    // Off on reload: series end at once, rules and Watchdog go.
    write_config(&cfg, &listen, &format!("{receivers}self_monitoring: {{ enabled: false }}\n"));
    let r = reqwest::Client::new().post(format!("{base}/-/reload")).send().await.expect("reload");
    assert!(r.status().is_success(), "reload: {}", r.text().await.unwrap_or_default());
    wait_for_async("the self series to end", Duration::from_secs(10), async || {
        query(&base, "count({job=\"forewarn\"})").await.is_empty().then_some(())
    })
    .await;
    assert!(rule_groups(&base).await.is_empty(), "{:?}", rule_groups(&base).await);
    wait_for_async("Watchdog to stop", Duration::from_secs(10), async || {
        query(&base, "ALERTS{alertname=\"Watchdog\"}").await.is_empty().then_some(())
    })
    .await;
    // And they stay away (no scrape left running).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(query(&base, "count({job=\"forewarn\"})").await.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Started with `self_monitoring.enabled: false`: no self series, no
/// built-in rules, though `/metrics` still serves the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_from_the_start() {
    let dir = temp_dir("selfmon-off");
    let listen = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{listen}");
    let cfg = dir.join("forewarn.yml");
    write_config(&cfg, &listen, "self_monitoring: { enabled: false }\n");
    let _d = start_daemon(&cfg);
    let metrics = wait_for_async("/metrics", Duration::from_secs(20), async || {
        reqwest::get(format!("{base}/metrics")).await.ok()?.text().await.ok()
    })
    .await;
    assert!(metrics.contains("forewarn_config_last_reload_successful 1"), "{metrics}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(query(&base, "count({job=\"forewarn\"})").await.is_empty());
    assert!(query(&base, "ALERTS").await.is_empty());
    assert!(rule_groups(&base).await.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A receiver answering 500 makes `ForewarnNotificationsFailing` fire,
/// with the failing receiver in its labels, and it reaches the working
/// receiver. The rules are the shipped file with its `for:` durations cut
/// to 0s (a copy named `forewarn-self` replaces the built-in group; the
/// real durations are tested by `forewarn test rules` below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_is_reported_to_a_working_one() {
    let dir = temp_dir("selfmon-failing");
    let (broken, broken_url) = Hook::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let (oncall, oncall_url) = Hook::start(StatusCode::OK).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{listen}");
    let shipped = std::fs::read_to_string(Path::new(ROOT).join("rules/forewarn-self.yml")).expect("read the rules");
    let fast = regex::Regex::new(r"(?m)^(\s+for:) \S+$").unwrap().replace_all(&shipped, "$1 0s");
    assert_ne!(fast, shipped, "the copy has shorter `for:` durations");
    std::fs::write(dir.join("self.yml"), fast.as_bytes()).unwrap();
    std::fs::write(
        dir.join("app.yml"),
        "groups:\n  - name: app\n    rules:\n      - alert: AppBroken\n        expr: vector(1)\n        labels: { team: app }\n",
    )
    .unwrap();
    let cfg = dir.join("forewarn.yml");
    write_config(
        &cfg,
        &listen,
        &format!(
            "rule_files: [app.yml, self.yml]\n\
             route:\n  receiver: oncall\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n  \
             routes: [ {{ matchers: [team=app], receiver: broken }} ]\n\
             receivers:\n  - name: oncall\n    webhook_configs: [ {{ url: \"{oncall_url}\" }} ]\n  \
             - name: broken\n    webhook_configs: [ {{ url: \"{broken_url}\" }} ]\n"
        ),
    );
    let _d = start_daemon(&cfg);
    let (labels, annotations) =
        wait_for_async("ForewarnNotificationsFailing at the working receiver", Duration::from_secs(60), async || {
            oncall.firing().into_iter().find(|(n, _, _)| n == "ForewarnNotificationsFailing").map(|(_, l, a)| (l, a))
        })
        .await;
    assert_eq!(labels["receiver"], "broken", "{labels}");
    assert_eq!(labels["integration"], "webhook", "{labels}");
    assert_eq!(labels["severity"], "critical", "{labels}");
    assert_eq!(labels["job"], "forewarn", "{labels}");
    assert_eq!(labels["instance"], listen.as_str(), "{labels}");
    let summary = annotations["summary"].as_str().unwrap_or("");
    assert!(summary.contains("broken"), "{annotations}");
    let description = annotations["description"].as_str().unwrap_or("");
    assert!(description.contains("100%") && description.contains("outbox"), "{annotations}");
    assert!(!broken.bodies.lock().unwrap().is_empty(), "the broken receiver was tried");
    // The copy replaced the built-in group instead of running beside it.
    let groups = rule_groups(&base).await;
    assert_eq!(groups.iter().filter(|(_, n)| n == "forewarn-self").count(), 1, "{groups:?}");
    assert!(groups.iter().any(|(f, n)| n == "forewarn-self" && f.ends_with("self.yml")), "{groups:?}");
    // Without a watchdog_receiver, Watchdog goes to nobody: not the
    // default receiver, though it fires.
    assert_eq!(query(&base, "ALERTS{alertname=\"Watchdog\",alertstate=\"firing\"}").await.len(), 1);
    assert_eq!(oncall.notifications_with("Watchdog"), 0);
    assert_eq!(broken.notifications_with("Watchdog"), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `forewarn check` accepts the shipped rule file without lint findings;
/// `forewarn test rules` runs its unit tests (each alert at its real
/// `for:`) and passes; a config with self-monitoring counts the built-in
/// rules, and a wrong `watchdog_receiver` fails the check.
#[test]
fn check_and_unit_tests_of_the_shipped_rules() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN).current_dir(ROOT).args(args).output().expect("run forewarn");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, text) = run(&["check", "--lint-fatal", "rules/forewarn-self.yml"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("SUCCESS: 12 rules found"), "{text}");
    let (code, text) = run(&["test", "rules", "rules/tests/forewarn-self.test.yml"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");

    let dir = temp_dir("selfmon-check");
    let cfg = dir.join("forewarn.yml");
    std::fs::write(&cfg, "route: { receiver: a }\nreceivers: [ { name: a } ]\n").unwrap();
    let (code, text) = run(&["check", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("(+12 built-in self-monitoring rules)"), "{text}");
    std::fs::write(&cfg, "route: { receiver: a }\nreceivers: [ { name: a } ]\nself_monitoring: { rules: false }\n")
        .unwrap();
    let (_, text) = run(&["check", cfg.to_str().unwrap()]);
    assert!(!text.contains("built-in"), "{text}");
    std::fs::write(
        &cfg,
        "route: { receiver: a }\nreceivers: [ { name: a } ]\nself_monitoring: { watchdog_receiver: dms }\n",
    )
    .unwrap();
    let (code, text) = run(&["check", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("self_monitoring.watchdog_receiver: receiver \"dms\" is not defined"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every query of the Grafana dashboard reads only metrics forewarn
/// exports (a renamed metric fails here, not on someone's wall screen),
/// and every panel uses the datasource variable.
#[test]
fn the_dashboard_reads_exported_metrics_through_the_datasource_variable() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("dashboards/forewarn.json")).expect("read the dashboard");
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let vars = dash["templating"]["list"].as_array().expect("templating variables");
    assert!(vars.iter().any(|v| v["type"] == "datasource" && v["name"] == "datasource" && v["query"] == "prometheus"));
    let mut exprs: Vec<String> = Vec::new();
    for v in vars.iter().filter(|v| v["type"] == "query") {
        let q = v["definition"].as_str().expect("a query variable's definition");
        let inner = q.strip_prefix("label_values(").and_then(|r| r.rsplit_once(',')).map(|(s, _)| s).expect(q);
        exprs.push(inner.to_string());
    }
    let mut rows = 0;
    for p in dash["panels"].as_array().expect("panels") {
        if p["type"] == "row" {
            rows += 1;
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {}", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {}", p["title"]);
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    assert!(rows >= 5, "sections for ingest, scrapes, rules, notifications, storage");
    assert!(exprs.len() > 30, "{}", exprs.len());
    let mut unknown = Vec::new();
    let mut read = std::collections::BTreeSet::new();
    for e in &exprs {
        let e = e.replace("$__rate_interval", "5m").replace("$instance", ".+");
        for name in forewarn::selfmon::names_in(&e).unwrap_or_else(|err| panic!("{err}")) {
            if !forewarn::selfmon::exports(&name) {
                unknown.push(format!("{name} in {e}"));
            }
            read.insert(name);
        }
    }
    assert!(unknown.is_empty(), "the dashboard reads metrics forewarn does not export:\n{}", unknown.join("\n"));
    // The check can fail: a misspelt name is not exported.
    assert!(!forewarn::selfmon::exports("forewarn_notification_attempt_failed_total"));
    // The parts the alerts are about are all on it.
    for m in [
        "forewarn_notification_attempts_failed_total",
        "forewarn_notifications_oldest_queued_timestamp_seconds",
        "forewarn_storage_write_failures_total",
        "forewarn_rule_group_iterations_missed_total",
        "forewarn_rule_group_last_duration_seconds",
        "forewarn_scrape_iterations_missed_total",
        "forewarn_config_last_reload_successful",
        "forewarn_rule_evaluation_failures_total",
    ] {
        assert!(read.contains(m), "the dashboard does not show {m}");
    }
}
