//! Helpers the integration tests share: a private temp dir, a free port on
//! 127.0.0.1, and a child process that is killed when the test ends.
//! (Each test binary uses some of them.)
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Child;

/// A fresh, empty directory for this test process and `tag`.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("forewarn-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create the test's temp dir");
    d
}

/// A port nothing listens on right now (the kernel's pick).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

/// Kills the child when the test ends, whatever happens.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `app` on a kernel-picked port of 127.0.0.1 for the rest of the
/// test; returns `host:port`.
pub async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = l.local_addr().expect("listener address").to_string();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

/// Debian's Prometheus, which `.ci/run` installs; tests that compare with it
/// fail (not skip) without it.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Starts Prometheus in `dir` scraping `target` (job `app`) every second;
/// returns the process and its base URL.
pub fn start_prometheus(dir: &std::path::Path, target: &str) -> (Proc, String) {
    use std::process::{Command, Stdio};
    assert!(std::path::Path::new(PROMETHEUS).exists(), "{PROMETHEUS} is missing: apt-get install -y prometheus");
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = format!(
        "global: {{ scrape_interval: 1s, scrape_timeout: 1s }}\n\
         scrape_configs:\n  - job_name: app\n    static_configs: [ {{ targets: [\"{target}\"] }} ]\n"
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, cfg).expect("write prometheus.yml");
    let p = Proc(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("prometheus-data").display()))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    (p, format!("http://{listen}"))
}

/// Whether the peer binary `path` (a Debian package's) is installed. In CI
/// (`CI=true`) a missing one fails the test; elsewhere the test is skipped
/// with a loud message naming the package to install.
pub fn peer_installed(path: &str, package: &str) -> bool {
    if std::path::Path::new(path).exists() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{path} is missing in CI: .ci/run must apt-get install {package}");
    }
    eprintln!("\n!!!!! SKIPPED: {path} is missing; apt-get install -y {package} to run this test !!!!!\n");
    false
}

pub const VICTORIA_METRICS: &str = "/usr/bin/victoria-metrics";

/// Starts VictoriaMetrics single-node on a free port with its data in
/// `data` (kept across restarts); returns the process and its base URL
/// once `/health` answers.
pub async fn start_victoria_metrics(data: &std::path::Path, port: u16) -> (Proc, String) {
    use std::process::{Command, Stdio};
    let p = Proc(
        Command::new(VICTORIA_METRICS)
            .arg(format!("-storageDataPath={}", data.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start victoria-metrics"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{url}/health"), std::time::Duration::from_secs(20)).await;
    (p, url)
}

/// Starts Prometheus as a remote write receiver (no scraping) on `port`,
/// data in `data`; returns once it is ready.
pub async fn start_prometheus_receiver(data: &std::path::Path, port: u16) -> (Proc, String) {
    use std::process::{Command, Stdio};
    let cfg = data.join("prometheus-receiver.yml");
    std::fs::create_dir_all(data).expect("create prometheus dir");
    std::fs::write(&cfg, "global: { scrape_interval: 1m }\n").expect("write prometheus config");
    let p = Proc(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", data.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_http_ok(&format!("{url}/-/ready"), std::time::Duration::from_secs(30)).await;
    (p, url)
}

/// Polls `url` until it answers 200 (panics after `timeout`).
pub async fn wait_http_ok(url: &str, timeout: std::time::Duration) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let deadline = std::time::Instant::now() + timeout;
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(url).timeout(std::time::Duration::from_secs(2)).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(std::time::Instant::now() < deadline, "{url} did not answer 200 within {timeout:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
