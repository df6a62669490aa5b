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

pub use targets::{serve_targets, Scenario};

/// The demo's rules, the same file as `rules/demo.yml`.
pub const DEMO_RULES: &str = include_str!("../../rules/demo.yml");

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
