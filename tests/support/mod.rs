//! Helpers the integration tests share, so a test reads as its story: the
//! `forewarn` binary ([`BIN`]) and [`Daemon`], which writes a config and
//! runs `forewarn run` on it until the test ends; the sinks notifications
//! land in ([`WebhookSink`], [`SmtpSink`]); waiting for something to happen
//! ([`wait_for`] with a plain predicate, [`wait_for_async`] with one that
//! awaits); a private temp dir, a free port on 127.0.0.1, a child process
//! killed when the test ends, and the peer servers (Prometheus,
//! VictoriaMetrics) some tests compare with.
//! (Each test binary uses some of them.)
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `forewarn` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_forewarn");

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

/// How often [`wait_for`] and [`wait_for_async`] look again: often enough
/// that a test waits no longer than the event it waits for.
const POLL: Duration = Duration::from_millis(20);

/// Waits until `f` returns `Some` and returns that value; panics naming
/// `what` after `timeout`. `f` is a plain predicate (a lock, a file, a
/// process status), looked at again every [`POLL`].
pub async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// [`wait_for`] with a predicate that awaits (an HTTP request, a browser):
/// the next look starts [`POLL`] after the last one answered.
pub async fn wait_for_async<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until something accepts connections on `addr` (`host:port`): the
/// daemon's HTTP server is up.
pub async fn wait_listening(addr: &str, timeout: Duration) {
    wait_for(&format!("{addr} to accept connections"), timeout, || std::net::TcpStream::connect(addr).ok()).await;
}

/// `forewarn run --config FILE` as a test starts it: [`Daemon::write`]
/// writes the config (and the rule files beside it) first, [`Daemon::on`]
/// runs a config already written (a restart); stdout and stderr are the
/// test's unless set. [`Daemon::start`] returns the process, killed when
/// dropped.
pub struct Daemon {
    config: PathBuf,
    files: Vec<(PathBuf, String)>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    envs: Vec<(OsString, OsString)>,
    current_dir: Option<PathBuf>,
}

impl Daemon {
    /// Will write `yml` as DIR/forewarn.yml and run on it.
    pub fn write(dir: &Path, yml: &str) -> Daemon {
        let config = dir.join("forewarn.yml");
        Daemon { files: vec![(config.clone(), yml.to_string())], ..Daemon::on(config) }
    }

    /// Will run on the config already at `config`.
    pub fn on(config: impl Into<PathBuf>) -> Daemon {
        Daemon {
            config: config.into(),
            files: Vec::new(),
            stdout: None,
            stderr: None,
            envs: Vec::new(),
            current_dir: None,
        }
    }

    /// Also writes `text` as `name` beside the config (a rule file).
    pub fn file(mut self, name: &str, text: &str) -> Daemon {
        let path = self.config.parent().unwrap_or(Path::new(".")).join(name);
        self.files.push((path, text.to_string()));
        self
    }

    /// No log on the test's stderr (tests whose daemons would drown the
    /// output of a failure).
    pub fn quiet(self) -> Daemon {
        self.stderr(Stdio::null())
    }

    pub fn stderr(mut self, s: impl Into<Stdio>) -> Daemon {
        self.stderr = Some(s.into());
        self
    }

    pub fn stdout(mut self, s: impl Into<Stdio>) -> Daemon {
        self.stdout = Some(s.into());
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Daemon {
        self.envs.push((key.into(), value.into()));
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Daemon {
        self.current_dir = Some(dir.into());
        self
    }

    /// Writes the files and starts the daemon.
    pub fn start(self) -> Proc {
        for (path, text) in &self.files {
            std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--config"]).arg(&self.config).envs(self.envs);
        if let Some(s) = self.stdout {
            cmd.stdout(s);
        }
        if let Some(s) = self.stderr {
            cmd.stderr(s);
        }
        if let Some(d) = self.current_dir {
            cmd.current_dir(d);
        }
        Proc(cmd.spawn().expect("start forewarn run"))
    }
}

/// A webhook receiver on 127.0.0.1 recording every notification body (and
/// when it came) posted to `/hook`; it answers each with `status`.
#[derive(Clone)]
pub struct WebhookSink {
    /// `host:port`.
    pub addr: String,
    received: Received,
}

/// What a [`WebhookSink`] got: each body with the moment it arrived.
type Received = Arc<Mutex<Vec<(Instant, Value)>>>;

impl WebhookSink {
    /// A sink answering 200.
    pub async fn start() -> WebhookSink {
        WebhookSink::answering(axum::http::StatusCode::OK).await
    }

    /// A sink answering `status` (a failing receiver still records what came).
    pub async fn answering(status: axum::http::StatusCode) -> WebhookSink {
        let received: Received = Arc::default();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    move |axum::extract::State(r): axum::extract::State<Received>, body: String| async move {
                        r.lock().unwrap().push((Instant::now(), serde_json::from_str(&body).unwrap_or(Value::Null)));
                        status
                    },
                ),
            )
            .with_state(received.clone());
        WebhookSink { addr: serve(app).await, received }
    }

    /// `http://host:port/hook`, for a `webhook_configs` url.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every body so far (not JSON: `null`), oldest first.
    pub fn bodies(&self) -> Vec<Value> {
        self.received.lock().unwrap().iter().map(|(_, v)| v.clone()).collect()
    }

    /// Every body so far with the moment it arrived.
    pub fn received(&self) -> Vec<(Instant, Value)> {
        self.received.lock().unwrap().clone()
    }

    pub fn is_empty(&self) -> bool {
        self.received.lock().unwrap().is_empty()
    }

    /// Forgets what came so far.
    pub fn clear(&self) {
        self.received.lock().unwrap().clear();
    }
}

/// tests/support/smtp_sink.py (Debian's python3-aiosmtpd) on a free port:
/// every message it accepts lands in `dir` as a `.eml` file.
pub struct SmtpSink {
    pub port: u16,
    pub dir: PathBuf,
    _proc: Proc,
}

impl SmtpSink {
    /// Starts the sink on a free port, writing into DIR/mail; returns once it listens.
    pub fn start(dir: &Path) -> SmtpSink {
        SmtpSink::start_on(dir, 0)
    }

    /// [`SmtpSink::start`] on `port` (a receiver's smarthost that was down
    /// until now); 0 picks a free one.
    pub fn start_on(dir: &Path, port: u16) -> SmtpSink {
        let out = dir.join("mail");
        std::fs::create_dir_all(&out).expect("create the mail dir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new("/usr/bin/python3")
            .args([script, "--port", &port.to_string(), "--dir"])
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start /usr/bin/python3 tests/support/smtp_sink.py (apt-get install python3-aiosmtpd)");
        let stdout = child.stdout.take().expect("the sink's stdout");
        let child = Proc(child);
        // It prints its port once it listens.
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read smtp_sink's port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("smtp_sink printed {line:?}, not a port"));
        SmtpSink { port, dir: out, _proc: child }
    }

    /// The `.eml` files so far in the order they came (`1.eml`, `2.eml`, ...).
    pub fn mails(&self) -> Vec<PathBuf> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
            .collect();
        files.sort();
        files.into_iter().map(|(_, p)| p).collect()
    }
}
