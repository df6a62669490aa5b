//! Where targets come from: `static_configs` and `file_sd_configs`, turned
//! into scrape targets by `relabel_configs`.
//!
//! A file-SD file is a JSON (`.json`) or YAML (`.yml`, `.yaml`) list of
//! `{targets: [host:port, ...], labels: {...}}` groups, as in Prometheus.
//! Files are globbed and their modification times polled every
//! `refresh_interval`; a changed file is re-read. A file that cannot be read
//! or parsed keeps the groups it last yielded, and the error is logged with
//! the file's path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::client::JobClient;
use super::config::{ScrapeConfig, ScrapeDefaults};
use super::relabel::{self, Relabel};
use super::target::{Target, DEFAULT_BODY_LIMIT};
use crate::duration::PromDuration;
use crate::labels::Labels;

/// How often file-SD files are checked when `refresh_interval` is not set.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// One `file_sd_configs` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Paths or glob patterns; the file extension picks JSON or YAML.
    pub files: Vec<String>,
    pub refresh_interval: Option<PromDuration>,
}

/// A group of targets sharing labels (a `static_configs` entry or one item of a file).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Why a file-SD file was not used.
#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    #[error("file_sd {file}: cannot read: {source}; the targets it last listed are kept")]
    Read { file: String, source: std::io::Error },
    #[error("file_sd {file}: {message}; fix the file (the targets it last listed are kept)")]
    Invalid { file: String, message: String },
}

/// Reads one file-SD file.
pub fn read_file(path: &Path) -> Result<Vec<TargetGroup>, FileSdError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FileSdError::Read { file: file.clone(), source })?;
    let invalid = |message: String| FileSdError::Invalid { file: file.clone(), message };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let groups: Vec<TargetGroup> = match ext {
        "json" => serde_json::from_str(&text).map_err(|e| invalid(format!("invalid JSON: {e}")))?,
        "yml" | "yaml" => {
            if text.trim().is_empty() {
                Vec::new()
            } else {
                serde_saphyr::from_str(&text).map_err(|e| invalid(format!("invalid YAML: {e}")))?
            }
        }
        _ => return Err(invalid(format!("unknown extension {ext:?}: name it .json, .yml or .yaml"))),
    };
    for g in &groups {
        for t in &g.targets {
            if t.is_empty() || t.contains('/') {
                return Err(invalid(format!("target {t:?} must be host:port")));
            }
        }
    }
    Ok(groups)
}

/// A discovered target that relabeling dropped: its job and the labels it
/// was discovered with (`__address__` and the other `__` labels included).
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedTarget {
    pub job: String,
    pub discovered_labels: Labels,
}

struct FileState {
    stamp: Option<(SystemTime, u64)>,
    groups: Vec<TargetGroup>,
}

/// One job's resolved settings plus its file-SD state.
struct Job {
    sc: ScrapeConfig,
    client: JobClient,
    relabel: Result<Vec<Relabel>, relabel::CompileError>,
    metric_relabel: Arc<Vec<Relabel>>,
    config_fp: u64,
    files: BTreeMap<PathBuf, FileState>,
}

/// Every job's target sources; `targets()` is what the manager runs.
pub struct Discovery {
    defaults: ScrapeDefaults,
    jobs: Vec<Job>,
}

impl Discovery {
    pub fn new(configs: &[ScrapeConfig], defaults: &ScrapeDefaults) -> Self {
        let jobs = configs
            .iter()
            .map(|sc| {
                let metric_relabel = Relabel::compile(&sc.metric_relabel_configs).unwrap_or_else(|e| {
                    tracing::error!(job = %sc.job_name, error = %e, "metric_relabel_configs unusable; ignored");
                    Vec::new()
                });
                Job {
                    client: JobClient::new(sc),
                    relabel: Relabel::compile(&sc.relabel_configs),
                    metric_relabel: Arc::new(metric_relabel),
                    config_fp: Labels::from_pairs([("c", format!("{sc:?}"))]).fingerprint(),
                    files: BTreeMap::new(),
                    sc: sc.clone(),
                }
            })
            .collect();
        Discovery { defaults: *defaults, jobs }
    }

    /// The shortest `refresh_interval`, or `None` without file-SD.
    pub fn refresh_interval(&self) -> Option<Duration> {
        self.jobs
            .iter()
            .flat_map(|j| &j.sc.file_sd_configs)
            .map(|f| f.refresh_interval.map(|d| d.0).unwrap_or(DEFAULT_REFRESH).max(Duration::from_millis(100)))
            .min()
    }

    /// Re-globs and re-reads changed files; true when any group changed.
    pub fn refresh(&mut self) -> bool {
        let mut changed = false;
        for job in &mut self.jobs {
            let mut seen = Vec::new();
            for pattern in job.sc.file_sd_configs.iter().flat_map(|f| &f.files) {
                match glob::glob(pattern) {
                    Ok(paths) => seen.extend(paths.flatten()),
                    Err(e) => {
                        tracing::error!(job = %job.sc.job_name, pattern = %pattern, error = %e, "file_sd: bad glob")
                    }
                }
            }
            let before = job.files.len();
            job.files.retain(|p, _| seen.contains(p));
            changed |= job.files.len() != before;
            for path in seen {
                let stamp = std::fs::metadata(&path).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
                let state = job.files.entry(path.clone()).or_insert(FileState { stamp: None, groups: Vec::new() });
                // A file modified in the last 2 s is re-read even with an
                // unchanged stamp: coarse mtimes can hide a quick rewrite.
                let recent = stamp.is_some_and(|(m, _)| m.elapsed().map_or(true, |age| age < Duration::from_secs(2)));
                if state.stamp.is_some() && state.stamp == stamp && !recent {
                    continue;
                }
                state.stamp = stamp;
                match read_file(&path) {
                    Ok(groups) => {
                        if groups != state.groups {
                            tracing::info!(job = %job.sc.job_name, file = %path.display(), groups = groups.len(), "file_sd: targets updated");
                            state.groups = groups;
                            changed = true;
                        }
                    }
                    Err(e) => {
                        metrics::counter!("forewarn_sd_file_read_errors_total").increment(1);
                        tracing::error!(job = %job.sc.job_name, file = %path.display(), error = %e, "file_sd: file not used");
                    }
                }
            }
        }
        changed
    }

    /// Every target of every job, after relabeling.
    pub fn targets(&self) -> Vec<Target> {
        self.resolve_all().0
    }

    /// Every target of every job after relabeling, plus the discovered
    /// targets that relabeling dropped (or left without a usable address),
    /// which `/api/v1/targets` lists as `droppedTargets`.
    pub fn resolve_all(&self) -> (Vec<Target>, Vec<DroppedTarget>) {
        let mut out = Vec::new();
        let mut dropped = Vec::new();
        for job in &self.jobs {
            let relabel = match &job.relabel {
                Ok(r) => r.as_slice(),
                Err(e) => {
                    tracing::error!(job = %job.sc.job_name, error = %e, "relabel_configs unusable; job not scraped");
                    continue;
                }
            };
            let static_groups = job
                .sc
                .static_configs
                .iter()
                .map(|s| (None, TargetGroup { targets: s.targets.clone(), labels: s.labels.clone() }));
            let file_groups =
                job.files.iter().flat_map(|(p, st)| st.groups.iter().map(move |g| (Some(p.as_path()), g.clone())));
            for (file, group) in static_groups.chain(file_groups) {
                for addr in &group.targets {
                    match self.resolve(job, relabel, file, &group, addr) {
                        Ok(t) => out.push(t),
                        Err(discovered_labels) => {
                            dropped.push(DroppedTarget { job: job.sc.job_name.clone(), discovered_labels })
                        }
                    }
                }
            }
        }
        metrics::gauge!("forewarn_sd_discovered_targets").set(out.len() as f64);
        (out, dropped)
    }

    fn resolve(
        &self,
        job: &Job,
        relabel: &[Relabel],
        file: Option<&Path>,
        g: &TargetGroup,
        addr: &str,
    ) -> Result<Target, Labels> {
        let sc = &job.sc;
        let interval = sc.scrape_interval.unwrap_or(self.defaults.interval);
        let timeout = sc.scrape_timeout.unwrap_or(self.defaults.timeout);
        let mut l = Labels::from_pairs(g.labels.clone());
        let mut default = |k: &str, v: String| {
            if l.get(k).is_none() {
                l.set(k.into(), v);
            }
        };
        default("job", sc.job_name.clone());
        default("__scheme__", sc.scheme.clone());
        default("__metrics_path__", sc.metrics_path.clone());
        default("__scrape_interval__", interval.to_string());
        default("__scrape_timeout__", timeout.to_string());
        for (k, vs) in &sc.params {
            if let Some(v) = vs.first() {
                default(&format!("__param_{k}"), v.clone());
            }
        }
        l.set("__address__".into(), addr.into());
        if let Some(f) = file {
            l.set("__meta_filepath".into(), f.display().to_string());
        }
        let discovered = l.clone();
        let Some(mut l) = relabel::process(l, relabel) else {
            return Err(discovered);
        };
        let address = l.value("__address__").to_string();
        if address.is_empty() {
            return Err(discovered);
        }
        let scheme = l.value("__scheme__").to_string();
        if address.contains('/') || (scheme != "http" && scheme != "https") {
            tracing::warn!(job = %sc.job_name, address = %address, scheme = %scheme, "target dropped: after relabeling it needs host:port and scheme http or https");
            return Err(discovered);
        }
        let mut params = sc.params.clone();
        for (k, v) in l.iter() {
            if let Some(name) = k.strip_prefix("__param_") {
                params.insert(name.to_string(), vec![v.to_string()]);
            }
        }
        let mut url = format!("{scheme}://{address}{}", l.value("__metrics_path__"));
        let query: Vec<String> = params
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{}={}", urlencode(k), urlencode(v))))
            .collect();
        if !query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query.join("&"));
        }
        if l.get("instance").is_none() {
            l.set("instance".into(), address.clone());
        }
        let internal: Vec<String> = l.iter().filter(|(k, _)| k.starts_with("__")).map(|(k, _)| k.to_string()).collect();
        for k in internal {
            l.remove(&k);
        }
        let interval = interval.0;
        Ok(Target {
            job: sc.job_name.clone(),
            url,
            labels: l,
            discovered_labels: discovered,
            interval,
            timeout: timeout.0.min(interval),
            honor_labels: sc.honor_labels,
            honor_timestamps: sc.honor_timestamps,
            body_size_limit: sc.body_size_limit.map(|b| b.0).filter(|&b| b > 0).unwrap_or(DEFAULT_BODY_LIMIT),
            sample_limit: sc.sample_limit,
            label_limit: sc.label_limit,
            label_name_length_limit: sc.label_name_length_limit,
            label_value_length_limit: sc.label_value_length_limit,
            metric_relabel: job.metric_relabel.clone(),
            client: job.client.clone(),
            config_fp: job.config_fp,
        })
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> ScrapeConfig {
        serde_saphyr::from_str(yaml).expect("scrape config yaml")
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("forewarn-sd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn static_targets_with_relabeling_params_and_path() {
        let sc = config(
            r#"
job_name: node
metrics_path: /probe
params: { module: [http_2xx] }
static_configs:
  - targets: ["a:1", "b:2", "drop:3", "c:4"]
    labels: { env: prod, __tmp_x: y }
relabel_configs:
  - { source_labels: [__address__], regex: 'drop:.*', action: drop }
  - { source_labels: [__address__], regex: 'c:4', target_label: __address__, replacement: '' }
  - { source_labels: [__address__], target_label: __param_target }
  - { source_labels: [__address__], regex: 'b:2', target_label: __scheme__, replacement: https }
"#,
        );
        let d = Discovery::new(&[sc], &crate::config::GlobalConfig::default().scrape_defaults());
        let ts = d.targets();
        let urls: Vec<&str> = ts.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(
            urls,
            ["http://a:1/probe?module=http_2xx&target=a%3A1", "https://b:2/probe?module=http_2xx&target=b%3A2"]
        );
        let l = &ts[0].labels;
        assert_eq!(l, &Labels::from_pairs([("env", "prod"), ("instance", "a:1"), ("job", "node")]));
        assert_eq!(ts[0].discovered_labels.get("__tmp_x"), Some("y"));
        // The dropped ones keep the labels they were discovered with.
        let (_, dropped) = d.resolve_all();
        let addrs: Vec<&str> = dropped.iter().map(|t| t.discovered_labels.value("__address__")).collect();
        assert_eq!(addrs, ["drop:3", "c:4"]);
        assert!(dropped.iter().all(|t| t.job == "node" && t.discovered_labels.get("env") == Some("prod")));
        assert_eq!(dropped[0].discovered_labels.get("__metrics_path__"), Some("/probe"));
    }

    #[test]
    fn file_sd_reads_json_and_yaml_and_keeps_targets_of_a_broken_file() {
        let d = dir("files");
        std::fs::write(d.join("a.json"), r#"[{"targets": ["h1:9100"], "labels": {"team": "x"}}]"#).unwrap();
        std::fs::write(d.join("b.yml"), "- targets: [h2:9100, h3:9100]\n").unwrap();
        let sc = config(&format!(
            "job_name: f\nfile_sd_configs: [{{files: ['{}/*.json', '{}/*.yml'], refresh_interval: 1s}}]\n",
            d.display(),
            d.display()
        ));
        let mut disc = Discovery::new(&[sc], &crate::config::GlobalConfig::default().scrape_defaults());
        assert_eq!(disc.refresh_interval(), Some(Duration::from_secs(1)));
        assert!(disc.refresh());
        let mut inst: Vec<String> = disc.targets().iter().map(|t| t.labels.value("instance").to_string()).collect();
        inst.sort();
        assert_eq!(inst, ["h1:9100", "h2:9100", "h3:9100"]);
        assert!(!disc.refresh(), "unchanged files are not re-read");
        assert_eq!(disc.targets()[0].labels.get("team"), Some("x"));

        // Broken: previous targets stay.
        std::fs::write(d.join("b.yml"), "- targets: [h2:9100\n  oops: {").unwrap();
        assert!(!disc.refresh());
        assert_eq!(disc.targets().len(), 3);
        // Fixed, with one target fewer.
        std::fs::write(d.join("b.yml"), "- targets: [h2:9100]\n").unwrap();
        assert!(disc.refresh());
        assert_eq!(disc.targets().len(), 2);
        // Removed file: its targets go.
        std::fs::remove_file(d.join("a.json")).unwrap();
        assert!(disc.refresh());
        assert_eq!(disc.targets().len(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn config_load_rejects_bad_relabel_rules_naming_the_job() {
        let text = "scrape_configs:\n  - job_name: api\n    relabel_configs: [{source_labels: [a], regex: '(', target_label: b}]\n";
        let errs = crate::config::Config::parse("f.yml", text, None).expect_err("bad regex must be rejected");
        let msg = format!("{errs:?}");
        assert!(msg.contains("scrape_configs[api].relabel_configs[0]") && msg.contains("invalid regex"), "{msg}");
        let text =
            "scrape_configs:\n  - job_name: api\n    metric_relabel_configs: [{action: hashmod, target_label: x}]\n";
        assert!(crate::config::Config::parse("f.yml", text, None).is_err(), "hashmod without modulus");
    }

    #[test]
    fn read_file_errors_name_the_file() {
        let d = dir("errs");
        let p = d.join("t.txt");
        std::fs::write(&p, "[]").unwrap();
        let e = read_file(&p).unwrap_err().to_string();
        assert!(e.contains("t.txt") && e.contains(".json"), "{e}");
        let p = d.join("t.json");
        std::fs::write(&p, r#"[{"targets": ["h/x"]}]"#).unwrap();
        let e = read_file(&p).unwrap_err().to_string();
        assert!(e.contains("t.json") && e.contains("host:port"), "{e}");
        let e = read_file(&d.join("missing.json")).unwrap_err().to_string();
        assert!(e.contains("missing.json"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
