//! The daemon's config file, `forewarn.yml`.
//!
//! Its sections are the ones users already have: Prometheus's `global`,
//! `scrape_configs` and `rule_files`, Alertmanager's `route` and `receivers`
//! (same keys, same meanings, so sections can be pasted across), plus
//! forewarn's own `storage` and `http`. Every struct denies unknown keys: a
//! typo is an error with its line, never a silently ignored setting.
//!
//! Each stage owns the types of its sections (`scrape::config`,
//! `notify::config`, `store::StorageConfig`, `deploys::DeploysConfig`, ...);
//! this module assembles them into [`Config`], re-exports the common ones,
//! and checks what spans sections (a route naming an undefined receiver).

pub mod http;
pub mod tls;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

pub use crate::byte_size::ByteSize;
use crate::duration::PromDuration;
pub use crate::notify::config::{OutboxConfig, ReceiverConfig, RouteConfig};
pub use crate::scrape::config::{ScrapeConfig, ScrapeDefaults, StaticConfig};
pub use crate::store::StorageConfig;
use crate::yaml;
pub use crate::yaml::Located;
pub use http::HttpConfig;

/// The whole config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub global: GlobalConfig,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(default)]
    pub rule_files: Vec<String>,
    /// How rules run: `alert.for_outage_tolerance`, `alert.for_grace_period`
    /// (Prometheus's `--rules.alert.*` flags).
    #[serde(default)]
    pub rules: RulesConfig,
    #[serde(default)]
    pub route: Option<RouteConfig>,
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    #[serde(default)]
    pub inhibit_rules: Vec<crate::notify::inhibit::InhibitRuleConfig>,
    #[serde(default)]
    pub time_intervals: Vec<crate::notify::time_interval::TimeIntervalConfig>,
    /// forewarn's own: how the durable outbox retries.
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub http: HttpConfig,
    /// Limits on silences created through the API.
    #[serde(default)]
    pub silences: crate::notify::silence::SilenceLimits,
    /// forewarn's own: deploy markers (matching, lookback, API token).
    #[serde(default)]
    pub deploys: crate::deploys::DeploysConfig,
    /// What one query may cost: Prometheus's `--query.*` flags.
    #[serde(default)]
    pub query: QueryConfig,
    /// Prometheus's `remote_write`: where scraped, recorded and `ALERTS`
    /// samples are sent, fed from the WAL.
    #[serde(default)]
    pub remote_write: Vec<crate::remote_write::RemoteWriteConfig>,
    /// Prometheus's `alerting`: Alertmanagers every alert is posted to
    /// (HA pairs) and `alert_relabel_configs`.
    #[serde(default)]
    pub alerting: crate::notify::alertmanagers::AlertingConfig,
    /// vmagent's `-promscrape.cluster.*`: this member scrapes only its
    /// share of the targets.
    #[serde(default)]
    pub scrape_cluster: Option<crate::scrape::cluster::ScrapeClusterConfig>,
    /// vmalert's `-datasource.*`: rules read from this query API instead
    /// of the local store.
    #[serde(default)]
    pub datasource: Option<crate::datasource::DatasourceConfig>,
    /// forewarn's own: its `forewarn_*` metrics in its own store and the
    /// built-in rules over them (`selfmon`).
    #[serde(default)]
    pub self_monitoring: SelfMonitoringConfig,
}

/// The `self_monitoring` section: watching the watcher.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfMonitoringConfig {
    /// Ingest forewarn's own metrics every `global.scrape_interval` as
    /// series with `job="forewarn"`, `instance=<http.listen>`.
    pub enabled: bool,
    /// Also evaluate the built-in `rules/forewarn-self.yml` (only while
    /// `enabled`).
    pub rules: bool,
    /// The receiver that hears of the always-firing `Watchdog` alert every
    /// `watchdog_repeat_interval` (a dead man's switch). Unset: `Watchdog`
    /// is sent to no receiver (it still shows in the UI, the API and to
    /// `alerting.alertmanagers`).
    pub watchdog_receiver: Option<String>,
    pub watchdog_repeat_interval: PromDuration,
}

impl Default for SelfMonitoringConfig {
    fn default() -> Self {
        SelfMonitoringConfig {
            enabled: true,
            rules: true,
            watchdog_receiver: None,
            watchdog_repeat_interval: PromDuration::from_secs(300),
        }
    }
}

impl SelfMonitoringConfig {
    /// Whether the built-in rules run.
    pub fn rules_on(&self) -> bool {
        self.enabled && self.rules
    }
}

/// The `query` section: Prometheus's `--query.timeout`, `--query.max-samples`,
/// `--query.max-concurrency` and `--query.lookback-delta`, same defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// An API query running longer than this stops with a timeout error.
    #[serde(default = "default_query_timeout")]
    pub timeout: PromDuration,
    /// A query that would hold more samples than this at once stops with an error.
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
    /// API queries evaluated at once; more wait their turn.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// How far back an instant selector looks for a series' latest sample.
    #[serde(default = "default_lookback_delta")]
    pub lookback_delta: PromDuration,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            timeout: default_query_timeout(),
            max_samples: default_max_samples(),
            max_concurrency: default_max_concurrency(),
            lookback_delta: default_lookback_delta(),
        }
    }
}

impl QueryConfig {
    /// Evaluation options for these settings (no cancellation flag yet).
    pub fn eval_options(&self) -> crate::promql::EvalOptions {
        crate::promql::EvalOptions {
            lookback_delta_ms: self.lookback_delta.as_millis(),
            limits: crate::promql::limits::QueryLimits {
                timeout: std::time::Duration::from_millis(self.timeout.as_millis().max(0) as u64),
                max_samples: self.max_samples,
                cancel: None,
                shutdown: None,
            },
            ..Default::default()
        }
    }
}

fn default_query_timeout() -> PromDuration {
    PromDuration::from_secs(120)
}
fn default_max_samples() -> usize {
    50_000_000
}
fn default_max_concurrency() -> usize {
    20
}
fn default_lookback_delta() -> PromDuration {
    PromDuration::from_secs(300)
}

/// The `rules` section: settings Prometheus takes as `--rules.*` flags.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// How saved alert state is restored after a restart.
    #[serde(default)]
    pub alert: crate::alerts::RestoreOptions,
}

/// Prometheus's `global` plus Alertmanager's `global.smtp_*` defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    #[serde(default = "default_interval")]
    pub scrape_interval: PromDuration,
    #[serde(default = "default_timeout")]
    pub scrape_timeout: PromDuration,
    #[serde(default = "default_interval")]
    pub evaluation_interval: PromDuration,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    pub smtp_from: Option<String>,
    pub smtp_smarthost: Option<String>,
    pub smtp_hello: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<String>,
    pub smtp_require_tls: Option<bool>,
    /// How long a resolved alert is still sent; how long a firing alert that is
    /// no longer reported stays firing (Alertmanager's `resolve_timeout`).
    #[serde(default = "default_resolve_timeout")]
    pub resolve_timeout: PromDuration,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: default_interval(),
            scrape_timeout: default_timeout(),
            evaluation_interval: default_interval(),
            external_labels: BTreeMap::new(),
            smtp_from: None,
            smtp_smarthost: None,
            smtp_hello: None,
            smtp_auth_username: None,
            smtp_auth_password: None,
            smtp_require_tls: None,
            resolve_timeout: default_resolve_timeout(),
        }
    }
}

impl GlobalConfig {
    /// The scrape interval and timeout of jobs that set none.
    pub fn scrape_defaults(&self) -> ScrapeDefaults {
        ScrapeDefaults { interval: self.scrape_interval, timeout: self.scrape_timeout }
    }
}

fn default_interval() -> PromDuration {
    PromDuration::from_secs(60)
}
fn default_timeout() -> PromDuration {
    PromDuration::from_secs(10)
}
fn default_resolve_timeout() -> PromDuration {
    PromDuration::from_secs(300)
}

impl Config {
    /// Reads, parses and validates a config file. Relative `rule_files`
    /// are resolved against the config file's directory, as Prometheus does.
    pub fn load(path: &Path) -> Result<Config, Vec<Located>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![Located::new(path.display().to_string(), 0, 0, format!("cannot read config: {e}"))])?;
        Config::parse(&path.display().to_string(), &text, path.parent())
    }

    pub fn parse(file: &str, text: &str, base: Option<&Path>) -> Result<Config, Vec<Located>> {
        let mut cfg: Config = yaml::parse(file, text).map_err(|e| vec![e])?;
        if let Some(base) = base {
            for f in cfg.rule_files.iter_mut() {
                if Path::new(f).is_relative() && !base.as_os_str().is_empty() {
                    *f = base.join(&*f).display().to_string();
                }
            }
            let sd_files = cfg
                .scrape_configs
                .iter_mut()
                .flat_map(|sc| sc.file_sd_configs.iter_mut())
                .flat_map(|f| f.files.iter_mut());
            cfg.http.resolve_paths(base);
            for f in sd_files {
                if Path::new(f).is_relative() && !base.as_os_str().is_empty() {
                    *f = base.join(&*f).display().to_string();
                }
            }
        }
        let errors = cfg.validate(file);
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors)
        }
    }

    /// Checks what serde cannot: references, uniqueness, ranges.
    fn validate(&mut self, file: &str) -> Vec<Located> {
        let mut errs = Vec::new();
        let mut err = |m: String| errs.push(Located::new(file, 0, 0, m));
        let g = &self.global;
        if g.scrape_interval.is_zero() || g.evaluation_interval.is_zero() {
            err("global: scrape_interval and evaluation_interval must be greater than 0s".into());
        }
        let q = &self.query;
        if q.timeout.is_zero() || q.lookback_delta.is_zero() {
            err("query: timeout and lookback_delta must be greater than 0s".into());
        }
        if q.max_samples == 0 || q.max_concurrency == 0 {
            err("query: max_samples and max_concurrency must be at least 1".into());
        }
        let mut jobs = std::collections::HashSet::new();
        for sc in &self.scrape_configs {
            if !jobs.insert(sc.job_name.clone()) {
                err(format!("scrape_configs: duplicate job_name {:?}", sc.job_name));
            }
            if sc.scheme != "http" && sc.scheme != "https" {
                err(format!("scrape_configs[{}]: scheme must be http or https, not {:?}", sc.job_name, sc.scheme));
            }
            let interval = sc.scrape_interval.unwrap_or(g.scrape_interval);
            let timeout = sc.scrape_timeout.unwrap_or(g.scrape_timeout.min(interval));
            if timeout > interval {
                err(format!(
                    "scrape_configs[{}]: scrape_timeout {} is greater than scrape_interval {}",
                    sc.job_name, timeout, interval
                ));
            }
            for (what, rules) in
                [("relabel_configs", &sc.relabel_configs), ("metric_relabel_configs", &sc.metric_relabel_configs)]
            {
                if let Err(e) = crate::scrape::relabel::Relabel::compile(rules) {
                    err(format!("scrape_configs[{}].{what}{e}", sc.job_name));
                }
            }
            for st in &sc.static_configs {
                for t in &st.targets {
                    if t.contains('/') || t.is_empty() {
                        err(format!(
                            "scrape_configs[{}]: target {:?} must be host:port (the path goes in metrics_path)",
                            sc.job_name, t
                        ));
                    }
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for r in &mut self.receivers {
            if !names.insert(r.name.clone()) {
                err(format!("receivers: duplicate receiver name {:?}", r.name));
            }
            // `global.smtp_*` lives in this module's section, so the email
            // receiver gets its defaults here, before it is checked.
            for e in r.email_configs.iter_mut() {
                e.apply_defaults(&crate::notify::email::SmtpDefaults {
                    smtp_from: g.smtp_from.clone(),
                    smtp_smarthost: g.smtp_smarthost.clone(),
                    smtp_hello: g.smtp_hello.clone(),
                    smtp_auth_username: g.smtp_auth_username.clone(),
                    smtp_auth_password: g.smtp_auth_password.clone(),
                    smtp_require_tls: g.smtp_require_tls,
                });
            }
            for c in r.integrations() {
                if let Err(e) = c.integration.check() {
                    err(format!("receivers[{}].{}[{}]: {}", r.name, c.field, c.index, e));
                }
            }
        }
        let mut intervals = std::collections::HashSet::new();
        for t in &self.time_intervals {
            if !intervals.insert(t.name.clone()) {
                err(format!("time_intervals: duplicate name {:?}", t.name));
            }
            if let Err(e) = crate::notify::time_interval::TimeInterval::from_config(t) {
                err(format!("time_intervals[{}]: {e}", t.name));
            }
        }
        for (i, r) in self.inhibit_rules.iter().enumerate() {
            if let Err(e) = crate::notify::inhibit::InhibitRule::from_config(r) {
                err(format!("inhibit_rules[{i}]: {e}"));
            }
        }
        if self.outbox.max_age.is_zero() || self.outbox.max_backoff.is_zero() {
            err("outbox: max_age and max_backoff must be greater than 0s".into());
        }
        match &self.route {
            Some(route) => {
                if route.receiver.is_none() {
                    err("route: the root route needs a `receiver`".into());
                }
                if !route.matchers.is_empty() || !route.match_eq.is_empty() || !route.match_re.is_empty() {
                    err("route: the root route must not have matchers (it matches every alert)".into());
                }
                if !route.mute_time_intervals.is_empty() || !route.active_time_intervals.is_empty() {
                    err("route: the root route must not have mute_time_intervals or active_time_intervals (set them on a child route)".into());
                }
                check_route(route, &names, "route", &mut err);
                check_route_intervals(route, &intervals, "route", &mut err);
            }
            None if !self.receivers.is_empty() => {
                err("route: missing; add `route: { receiver: <name> }` so alerts reach a receiver".into())
            }
            None => {}
        }
        for e in self.deploys.validate() {
            err(e);
        }
        for e in self.http.validate() {
            err(e);
        }
        let mut remote_names = std::collections::HashSet::new();
        for (i, rw) in self.remote_write.iter().enumerate() {
            if let Err(e) = rw.validate() {
                err(format!("remote_write[{i}]: {e}"));
            }
            if !remote_names.insert(rw.queue_name()) {
                err(format!(
                    "remote_write[{i}]: duplicate remote name {:?}; give each a distinct `name`",
                    rw.queue_name()
                ));
            }
        }
        if let Some(Err(e)) = self.scrape_cluster.as_ref().map(|c| c.validate()) {
            err(format!("scrape_cluster: {e}"));
        }
        if let Some(ds) = &self.datasource {
            if let Err(e) = ds.validate() {
                err(format!("datasource.{e}"));
            }
        }
        if let Some(name) = &self.self_monitoring.watchdog_receiver {
            if !names.contains(name) {
                err(format!("self_monitoring.watchdog_receiver: receiver {name:?} is not defined under `receivers`"));
            }
        }
        if self.self_monitoring.watchdog_repeat_interval.is_zero() {
            err("self_monitoring.watchdog_repeat_interval must be greater than 0s".into());
        }
        if let Err(e) = self.alerting.validate() {
            err(format!("alerting.{e}"));
        }
        if !self.remote_write.is_empty() && self.storage.path.is_none() {
            err("remote_write: needs storage.path (samples are sent from the write-ahead log, which lives there)"
                .into());
        }
        if self.storage.retention.as_millis() < 60_000 {
            err(format!("storage.retention {} is too short (at least 1m)", self.storage.retention));
        }
        errs
    }

    /// The sections the notification pipeline is built from.
    pub fn notify_sections(&self) -> crate::notify::config::NotifySections<'_> {
        crate::notify::config::NotifySections {
            route: self.route.as_ref(),
            receivers: &self.receivers,
            inhibit_rules: &self.inhibit_rules,
            time_intervals: &self.time_intervals,
        }
    }

    pub fn external_labels(&self) -> crate::labels::Labels {
        crate::labels::Labels::from_pairs(self.global.external_labels.clone())
    }

    pub fn external_url(&self) -> String {
        match &self.http.external_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.http.listen),
        }
    }
}

fn check_route(
    r: &RouteConfig,
    receivers: &std::collections::HashSet<String>,
    path: &str,
    err: &mut impl FnMut(String),
) {
    if let Some(name) = &r.receiver {
        if !receivers.contains(name) {
            err(format!("{path}: receiver {name:?} is not defined under `receivers`"));
        }
    }
    for m in &r.matchers {
        if let Err(e) = crate::notify::route::parse_matcher(m) {
            err(format!("{path}: matcher {m:?}: {e}"));
        }
    }
    for (k, v) in &r.match_re {
        if let Err(e) = crate::labels::Matcher::regex(k.clone(), v, false) {
            err(format!("{path}: match_re {k}: {e}"));
        }
    }
    for (i, child) in r.routes.iter().enumerate() {
        check_route(child, receivers, &format!("{path}.routes[{i}]"), err);
    }
}

fn check_route_intervals(
    r: &RouteConfig,
    intervals: &std::collections::HashSet<String>,
    path: &str,
    err: &mut impl FnMut(String),
) {
    for (key, names) in
        [("mute_time_intervals", &r.mute_time_intervals), ("active_time_intervals", &r.active_time_intervals)]
    {
        for n in names {
            if !intervals.contains(n) {
                err(format!("{path}: {key}: {n:?} is not defined under `time_intervals`"));
            }
        }
    }
    for (i, child) in r.routes.iter().enumerate() {
        check_route_intervals(child, intervals, &format!("{path}.routes[{i}]"), err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_example_parses() {
        let text = r#"
global: { scrape_interval: 15s, evaluation_interval: 15s }
scrape_configs:
  - job_name: checkout
    static_configs: [ { targets: ["127.0.0.1:9100"] } ]
rule_files: [ "rules/*.yml" ]
route: { receiver: team, group_by: [alertname, job], group_wait: 0s }
receivers:
  - name: team
    webhook_configs: [ { url: "http://127.0.0.1:5001/hook" } ]
    email_configs: [ { to: "team@example.com", from: "forewarn@example.com", smarthost: "127.0.0.1:25", require_tls: false } ]
storage: { path: /var/lib/forewarn, retention: 8d }
http: { listen: "127.0.0.1:9099" }
"#;
        let c = Config::parse("f.yml", text, Some(Path::new("/etc/forewarn"))).unwrap();
        assert_eq!(c.global.scrape_interval.as_millis(), 15_000);
        assert_eq!(c.rule_files, vec!["/etc/forewarn/rules/*.yml".to_string()]);
        assert_eq!(c.receivers[0].webhook_configs.len(), 1);
    }

    #[test]
    fn unknown_key_is_an_error_with_line() {
        let e = Config::parse("f.yml", "global:\n  scrape_intervall: 15s\n", None).unwrap_err();
        assert_eq!(e[0].line, 2, "{}", e[0]);
        assert!(e[0].message.contains("scrape_intervall"), "{}", e[0]);
    }

    #[test]
    fn undefined_receiver_is_reported() {
        let e = Config::parse("f.yml", "route: { receiver: nobody }\n", None).unwrap_err();
        assert!(e[0].message.contains("nobody"), "{}", e[0]);
    }

    #[test]
    fn routes_inhibit_and_time_intervals_are_checked() {
        let ok = "route: { receiver: t, routes: [ { matchers: [a=b], mute_time_intervals: [nights] } ] }\nreceivers: [ { name: t } ]\ntime_intervals: [ { name: nights, time_intervals: [ { times: [ { start_time: '00:00', end_time: '06:00' } ] } ] } ]\ninhibit_rules: [ { source_matchers: [severity=page], target_matchers: [severity=info], equal: [job] } ]\n";
        let c = Config::parse("f.yml", ok, None).unwrap();
        assert_eq!(c.inhibit_rules.len(), 1);
        assert_eq!(c.outbox.max_age.as_millis(), 24 * 3600 * 1000);
        let bad = "route: { receiver: t, mute_time_intervals: [x], routes: [ { active_time_intervals: [weekends] } ] }\nreceivers: [ { name: t } ]\ntime_intervals: [ { name: x, time_intervals: [ { weekdays: [funday] } ] } ]\ninhibit_rules: [ { target_matchers: ['a=~\"(\"'] } ]\n";
        let e: Vec<String> = Config::parse("f.yml", bad, None).unwrap_err().iter().map(|e| e.message.clone()).collect();
        let has = |s: &str| e.iter().any(|m| m.contains(s));
        assert!(has("root route must not have mute_time_intervals"), "{e:?}");
        assert!(has("route.routes[0]: active_time_intervals: \"weekends\""), "{e:?}");
        assert!(has("time_intervals[x]") && has("funday"), "{e:?}");
        assert!(has("inhibit_rules[0]: target_matchers"), "{e:?}");
    }

    #[test]
    fn every_receiver_kind_is_checked_at_load() {
        let ok = "route: { receiver: t }\nreceivers: [ { name: t, webhook_configs: [ { url: 'http://hook/' } ] } ]\n";
        Config::parse("f.yml", ok, None).unwrap();
        let bad = "route: { receiver: t }\nreceivers:\n  - name: t\n    webhook_configs: [ { url: 'http://hook/' }, { send_resolved: false } ]\n    email_configs: [ { from: a@b.c, smarthost: 'mail:25' } ]\n    alertmanager_configs: [ { urls: [] } ]\n";
        let e: Vec<String> = Config::parse("f.yml", bad, None).unwrap_err().iter().map(|e| e.message.clone()).collect();
        assert_eq!(
            e,
            vec![
                "receivers[t].webhook_configs[1]: webhook_configs: missing `url`",
                "receivers[t].email_configs[0]: email_configs: missing `to`",
                "receivers[t].alertmanager_configs[0]: urls: at least one Alertmanager URL is needed",
            ]
        );
        // global.smtp_* fills in before the email receiver is checked.
        let defaults = "global: { smtp_from: a@b.c, smtp_smarthost: 'mail:25' }\nroute: { receiver: t }\nreceivers: [ { name: t, email_configs: [ { to: x@y.z } ] } ]\n";
        let c = Config::parse("f.yml", defaults, None).unwrap();
        assert_eq!(c.receivers[0].email_configs[0].from.as_deref(), Some("a@b.c"));
    }

    #[test]
    fn remote_write_alerting_and_scrape_cluster_are_checked() {
        let ok = "storage: { path: /tmp/x }\nremote_write: [ { url: 'http://vm:8428/api/v1/write', queue_config: { max_shards: 4 } } ]\nalerting: { alertmanagers: [ { static_configs: [ { targets: ['am:9093'] } ] } ] }\nscrape_cluster: { members_count: 3, member_num: forewarn-2, replication_factor: 2 }\n";
        let c = Config::parse("f.yml", ok, None).unwrap();
        assert_eq!(c.remote_write[0].queue_config.max_shards, 4);
        assert_eq!(c.remote_write[0].queue_config.max_samples_per_send, 500);
        assert_eq!(c.alerting.resend_delay.as_millis(), 60_000);
        let none = Config::parse("f.yml", "global: { scrape_interval: 15s }\n", None).unwrap();
        assert_eq!(none.alerting.resend_delay.as_millis(), 60_000, "defaults hold without an alerting section");
        let bad = "remote_write: [ { url: 'ftp://x', headers: { Content-Type: x } }, { url: 'http://a/w', name: a, queue_config: { min_backoff: 10s, max_backoff: 1s } } ]\nalerting: { alertmanagers: [ { api_version: v1, static_configs: [ { targets: ['am:9093'] } ] } ] }\nscrape_cluster: { members_count: 2, member_num: 2 }\n";
        let e: Vec<String> = Config::parse("f.yml", bad, None).unwrap_err().iter().map(|e| e.message.clone()).collect();
        let has = |s: &str| e.iter().any(|m| m.contains(s));
        assert!(has("remote_write[0]: url: needs http"), "{e:?}");
        assert!(has("remote_write[1]: queue_config: min_backoff"), "{e:?}");
        assert!(has("remote_write: needs storage.path"), "{e:?}");
        assert!(has("alerting.alertmanagers[0].api_version"), "{e:?}");
        assert!(has("scrape_cluster: member_num 2 must be below members_count 2"), "{e:?}");
    }
}
