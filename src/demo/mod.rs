//! `forewarn demo`: the whole chain with nothing to set up.
//!
//! Built-in targets are served in-process on 127.0.0.1, each a compressed
//! replay of an incident forewarn exists for: a memory leak, a filter whose
//! out/in ratio jumps from 0.5 to 1.0, and a backlog that steps up. The
//! daemon scrapes them every second, evaluates `rules/demo.yml` (compiled
//! in) and prints notifications to the terminal, so the first alert shows
//! within a minute.

mod targets;

use std::path::PathBuf;

use crate::config::Config;
use crate::daemon::{Daemon, DaemonError, Options};

pub use targets::{serve_targets, Scenario};

/// The demo's rules, the same file as `rules/demo.yml`.
pub const DEMO_RULES: &str = include_str!("../../rules/demo.yml");

/// `forewarn demo`: serves the built-in targets on a free port, says what
/// to watch for, and runs the daemon on them with its web UI on `listen`
/// (notifications print to the terminal) until SIGTERM or SIGINT.
pub async fn run(listen: String) -> Result<(), DaemonError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(DaemonError::DemoBind)?;
    let targets = listener.local_addr().map_err(DaemonError::LocalAddr)?.to_string();
    tokio::spawn(serve_targets(listener, Default::default()));
    let (cfg, _dir) = config(&targets, &listen).map_err(DaemonError::DemoConfig)?;
    println!(
        "forewarn demo: scraping built-in targets at {targets} every second.\n\
         In ~10 s memory starts leaking, at ~20 s a filter starts passing everything,\n\
         at ~30 s a backlog steps up. Alerts print below as they fire and resolve.\n\
         forewarn also watches itself: its always-firing Watchdog shows on the alerts page\n\
         (it goes to a dead man's switch when self_monitoring.watchdog_receiver is set; not printed here).\n\
         Web UI and API: http://{listen}/  (Ctrl-C to stop)\n"
    );
    let d = Daemon::start(cfg, Options { config_path: None, console_receiver: Some("terminal".into()) }).await?;
    crate::service::serve(d, &listen, std::future::pending()).await
}

/// Writes the demo rules to a private temp dir and returns a config that
/// scrapes the demo targets at `targets_addr` and listens on `listen`.
pub fn config(targets_addr: &str, listen: &str) -> std::io::Result<(Config, PathBuf)> {
    let dir = std::env::temp_dir().join(format!("forewarn-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rules = dir.join("demo.yml");
    std::fs::write(&rules, DEMO_RULES)?;
    let yaml = format!(
        r#"
global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}
scrape_configs:
  - job_name: demo-checkout
    metrics_path: /checkout/metrics
    static_configs: [ {{ targets: ["{a}"] }} ]
  - job_name: demo-filter
    metrics_path: /filter/metrics
    static_configs: [ {{ targets: ["{a}"] }} ]
  - job_name: demo-queue
    metrics_path: /queue/metrics
    static_configs: [ {{ targets: ["{a}"] }} ]
rule_files: [ "{r}" ]
route: {{ receiver: terminal, group_by: [alertname], group_wait: 0s, group_interval: 5s, repeat_interval: 1h }}
receivers:
  - name: terminal
http: {{ listen: "{listen}" }}
storage: {{ retention: 1h }}
"#,
        a = targets_addr,
        r = rules.display(),
    );
    let cfg = Config::parse("<demo>", &yaml, None)
        .map_err(|e| std::io::Error::other(e.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n")))?;
    Ok((cfg, dir))
}
