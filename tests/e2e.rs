//! End to end: the real `forewarn` binary scrapes a target on 127.0.0.1
//! whose value crosses a threshold, and a real webhook listener and a real
//! SMTP server (Debian's python3-aiosmtpd) receive the firing and the
//! resolved notifications. Also: reload keeps old rules on a broken file,
//! SIGTERM exits cleanly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, temp_dir, Proc};

const BIN: &str = env!("CARGO_BIN_EXE_forewarn");

#[derive(Clone, Default)]
struct Hooks {
    received: Arc<Mutex<Vec<(Instant, Value)>>>,
}

async fn start_servers(value: Arc<AtomicU64>, hooks: Hooks) -> (String, String) {
    let target = Router::new()
        .route(
            "/metrics",
            get(|State(v): State<Arc<AtomicU64>>| async move {
                format!(
                    "# HELP app_queue_depth Items waiting.\n# TYPE app_queue_depth gauge\napp_queue_depth{{queue=\"orders\"}} {}\n",
                    f64::from_bits(v.load(Ordering::SeqCst))
                )
            }),
        )
        .with_state(value);
    let hook = Router::new()
        .route(
            "/hook",
            post(|State(h): State<Hooks>, body: String| async move {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                h.received.lock().unwrap().push((Instant::now(), v));
                "ok"
            }),
        )
        .with_state(hooks);
    let tl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ta, ha) = (tl.local_addr().unwrap().to_string(), hl.local_addr().unwrap().to_string());
    tokio::spawn(async move { axum::serve(tl, target).await });
    tokio::spawn(async move { axum::serve(hl, hook).await });
    (ta, ha)
}

struct Smtp {
    _proc: Proc,
    port: u16,
    dir: PathBuf,
}

fn start_smtp(dir: &Path) -> Smtp {
    let out = dir.join("mail");
    std::fs::create_dir_all(&out).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
    let mut child = Command::new("/usr/bin/python3")
        .args([script, "--port", "0", "--dir"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start /usr/bin/python3 tests/support/smtp_sink.py (apt-get install python3-aiosmtpd)");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("smtp_sink printed {line:?}, not a port"));
    Smtp { _proc: Proc(child), port, dir: out }
}

fn write_config(dir: &Path, target: &str, hook: &str, smtp_port: u16, listen: &str) -> PathBuf {
    std::fs::write(
        dir.join("rules.yml"),
        r#"groups:
  - name: queue
    interval: 1s
    rules:
      - alert: QueueDeep
        expr: app_queue_depth > 100
        labels: { severity: page }
        annotations:
          summary: "{{ $labels.queue }} queue holds {{ $value }} items"
"#,
    )
    .unwrap();
    let cfg = format!(
        r#"global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{target}"] }} ]
rule_files: [ "rules.yml" ]
route: {{ receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h }}
receivers:
  - name: team
    webhook_configs: [ {{ url: "http://{hook}/hook", send_resolved: true }} ]
    email_configs: [ {{ to: "team@example.com", from: "forewarn@example.com", smarthost: "127.0.0.1:{smtp_port}", require_tls: false, send_resolved: true }} ]
http: {{ listen: "{listen}", enable_lifecycle: true }}
"#
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn statuses(hooks: &Hooks) -> Vec<String> {
    hooks.received.lock().unwrap().iter().map(|(_, v)| v["status"].as_str().unwrap_or("").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_crossing_reaches_webhook_and_email_then_resolves() {
    let dir = temp_dir("e2e");
    let value = Arc::new(AtomicU64::new(5f64.to_bits()));
    let hooks = Hooks::default();
    let (target, hook) = start_servers(value.clone(), hooks.clone()).await;
    let smtp = start_smtp(&dir);
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = write_config(&dir, &target, &hook, smtp.port, &listen);
    let mut daemon = Proc(Command::new(BIN).args(["run", "--config"]).arg(&cfg).spawn().unwrap());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();

    // Ready, and a few quiet scrapes: no alert while below the threshold.
    wait_for("ready", Duration::from_secs(10), || std::net::TcpStream::connect(&listen).ok()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(hooks.received.lock().unwrap().is_empty(), "no notification below the threshold");
    let targets: Value =
        client.get(format!("http://{listen}/api/v1/targets")).send().await.unwrap().json().await.unwrap();
    assert_eq!(targets["data"]["activeTargets"][0]["health"], "up", "{targets}");

    // Cross the threshold.
    let crossed = Instant::now();
    value.store(250f64.to_bits(), Ordering::SeqCst);
    let (arrived, firing) = wait_for("firing webhook", Duration::from_secs(15), || {
        hooks.received.lock().unwrap().iter().find(|(_, v)| v["status"] == "firing").cloned()
    })
    .await;
    let latency = arrived - crossed;
    eprintln!("threshold crossing -> webhook: {} ms (scrape and evaluation every 1s)", latency.as_millis());
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["receiver"], "team");
    let a = &firing["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "QueueDeep");
    assert_eq!(a["labels"]["job"], "app");
    assert_eq!(a["labels"]["instance"], target.as_str());
    assert_eq!(a["labels"]["queue"], "orders");
    assert_eq!(a["labels"]["severity"], "page");
    assert!(a["labels"].get("__name__").is_none());
    assert_eq!(a["annotations"]["summary"], "orders queue holds 250 items");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");

    // The API shows it firing.
    let alerts: Value =
        client.get(format!("http://{listen}/api/v1/alerts")).send().await.unwrap().json().await.unwrap();
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing", "{alerts}");

    // Back below: the resolved notification follows.
    value.store(7f64.to_bits(), Ordering::SeqCst);
    let (_, resolved) = wait_for("resolved webhook", Duration::from_secs(15), || {
        hooks.received.lock().unwrap().iter().find(|(_, v)| v["status"] == "resolved").cloned()
    })
    .await;
    let r = &resolved["alerts"][0];
    assert_eq!(r["status"], "resolved");
    assert_eq!(r["labels"]["alertname"], "QueueDeep");
    assert_ne!(r["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(statuses(&hooks), vec!["firing", "resolved"], "exactly one of each");

    // Email: a firing and a resolved message reached the real SMTP server.
    let mails = wait_for("two emails", Duration::from_secs(15), || {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&smtp.dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        (files.len() >= 2).then_some(files)
    })
    .await;
    let first = std::fs::read_to_string(&mails[0]).unwrap();
    assert!(first.contains("Subject: [FIRING:1] QueueDeep"), "{first}");
    assert!(first.contains("team@example.com"), "{first}");
    assert!(first.contains("orders queue holds 250 items"), "{first}");
    let second = std::fs::read_to_string(&mails[1]).unwrap();
    assert!(second.contains("Subject: [RESOLVED] QueueDeep"), "{second}");

    // SIGTERM: clean exit.
    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = wait_for("exit", Duration::from_secs(10), || daemon.0.try_wait().ok().flatten()).await;
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_rule_file_on_reload_keeps_old_rules() {
    let dir = temp_dir("reload");
    let value = Arc::new(AtomicU64::new(500f64.to_bits()));
    let hooks = Hooks::default();
    let (target, hook) = start_servers(value, hooks.clone()).await;
    let listen = format!("127.0.0.1:{}", free_port());
    // Email goes to a closed port here; this test is about rules.
    let cfg = write_config(&dir, &target, &hook, free_port(), &listen);
    let daemon = Proc(Command::new(BIN).args(["run", "--config"]).arg(&cfg).stderr(Stdio::piped()).spawn().unwrap());
    wait_for("ready", Duration::from_secs(10), || std::net::TcpStream::connect(&listen).ok()).await;
    wait_for("firing", Duration::from_secs(15), || (!hooks.received.lock().unwrap().is_empty()).then_some(())).await;

    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: queue\n    rules:\n      - alert: Broken\n        expr: rate(app_queue_depth[5m]\n",
    )
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let resp = client.post(format!("http://{listen}/-/reload")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let body = resp.text().await.unwrap();
    assert!(body.contains("rules.yml:5:15"), "error names file:line:col: {body}");

    // SIGHUP with the same broken file: still the old rule, still firing.
    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rules: Value = client.get(format!("http://{listen}/api/v1/rules")).send().await.unwrap().json().await.unwrap();
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["name"], "QueueDeep", "{rules}");
    assert_eq!(rule["state"], "firing", "{rules}");
    assert_eq!(rule["health"], "ok", "{rules}");

    // A good file is picked up.
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: queue\n    interval: 1s\n    rules:\n      - alert: QueueVeryDeep\n        expr: app_queue_depth > 1000\n",
    )
    .unwrap();
    let resp = client.post(format!("http://{listen}/-/reload")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let rules: Value = client.get(format!("http://{listen}/api/v1/rules")).send().await.unwrap().json().await.unwrap();
    assert_eq!(rules["data"]["groups"][0]["rules"][0]["name"], "QueueVeryDeep", "{rules}");
    // The self-metrics say the last reload worked.
    let metrics = client.get(format!("http://{listen}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("forewarn_config_last_reload_successful 1"), "{metrics}");
    assert!(metrics.contains("forewarn_scrapes_total"), "{metrics}");
}

#[test]
fn check_reports_file_line_col_and_exit_code() {
    let dir = temp_dir("check");
    let bad = dir.join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(rate(x[5m])\n      - alert: B\n        expr: up\n        fro: 5m\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("check").arg(&bad).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let b = bad.display().to_string();
    assert!(stdout.contains(&format!("{b}:8:9: ")), "unknown field at its line: {stdout}");
    assert!(stdout.contains("fro"), "{stdout}");

    // Every example rule file and the example config are valid (rules/tests
    // holds their unit tests, which `forewarn test rules` runs).
    let root = env!("CARGO_MANIFEST_DIR");
    let mut args: Vec<String> = std::fs::read_dir(format!("{root}/rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    assert!(args.iter().any(|a| a.ends_with("forewarn-self.yml")), "{args:?}");
    args.sort();
    let out = Command::new(BIN).arg("check").args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let cfg_dir = temp_dir("check-cfg");
    std::fs::create_dir_all(cfg_dir.join("rules")).unwrap();
    std::fs::copy(format!("{root}/forewarn.example.yml"), cfg_dir.join("forewarn.yml")).unwrap();
    std::fs::copy(format!("{root}/rules/target-down.yml"), cfg_dir.join("rules/target-down.yml")).unwrap();
    let out = Command::new(BIN).arg("check").arg(cfg_dir.join("forewarn.yml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_systemd_it_is_ready() {
    // Type=notify: systemd passes a datagram socket in NOTIFY_SOCKET and
    // waits for READY=1 once the daemon serves.
    let dir = temp_dir("notify");
    let sock_path = dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let value = Arc::new(AtomicU64::new(1f64.to_bits()));
    let (target, hook) = start_servers(value, Hooks::default()).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = write_config(&dir, &target, &hook, free_port(), &listen);
    let daemon =
        Proc(Command::new(BIN).args(["run", "--config"]).arg(&cfg).env("NOTIFY_SOCKET", &sock_path).spawn().unwrap());
    let msg = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a datagram from forewarn");
        String::from_utf8_lossy(&buf[..n]).to_string()
    })
    .await
    .unwrap();
    assert_eq!(msg, "READY=1");
    // By then the HTTP server answers.
    assert!(std::net::TcpStream::connect(&listen).is_ok());
    drop(daemon);
}
