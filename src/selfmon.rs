//! Watching the watcher: forewarn's own `forewarn_*` metrics as series in
//! its own store, the built-in rules over them, and the route of their
//! always-firing `Watchdog` alert.
//!
//! Every `global.scrape_interval` the metrics registry that `/metrics`
//! renders is rendered in process and fed to the scrape ingest path
//! ([`crate::scrape::target::ingest`]) as a target with `job="forewarn"`,
//! `instance=<http.listen>`: the same parser, staleness, `up` and WAL as a
//! scraped target, so rules, the query API, the Graph page and
//! `remote_write` see them, without an HTTP round trip through the
//! server's own auth and limits. [`RULES`] (`rules/forewarn-self.yml`,
//! built into the binary so a package install has it) alert on forewarn's
//! own failures; [`route_watchdog`] sends `Watchdog` only to
//! `self_monitoring.watchdog_receiver`, as kube-prometheus routes its
//! `Watchdog` to a dead man's switch and nowhere else. [`METRICS`] names
//! every metric forewarn exports, with its help text (a test holds it to
//! the code, another holds the dashboard and the rules to it).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinHandle;

use crate::config::{Config, Located};
use crate::labels::{Labels, Matcher};
use crate::notify::route::{GroupBy, Route};
use crate::rules::RuleGroup;
use crate::scrape::parse::Format;
use crate::scrape::target::{ingest, ScrapeState, Target, DEFAULT_BODY_LIMIT};
use crate::store::Store;

/// `rules/forewarn-self.yml`, as built into the binary.
pub const RULES: &str = include_str!("../rules/forewarn-self.yml");

/// The file name the built-in rules show under (rules page, API).
pub const RULES_FILE: &str = "forewarn-self.yml (built in)";

/// The group in [`RULES`]; a group of this name in the user's
/// `rule_files` replaces the built-in one.
pub const GROUP: &str = "forewarn-self";

/// The `job` label of the self series and of `Watchdog`.
pub const JOB: &str = "forewarn";

/// The id of the `Watchdog` route under the root (not a number, so the
/// user's routes keep their ids and their notification log).
pub const WATCHDOG_ROUTE_ID: &str = "0.watchdog";

/// The built-in rule groups for `cfg`: none when `self_monitoring` or its
/// rules are off, or when `loaded` already has a group named [`GROUP`]
/// (the user's copy wins).
pub fn rule_groups(cfg: &Config, loaded: &[RuleGroup]) -> Result<Vec<RuleGroup>, Vec<Located>> {
    if !cfg.self_monitoring.rules_on() || loaded.iter().any(|g| g.name == GROUP) {
        return Ok(Vec::new());
    }
    crate::rules::parse_rules(RULES_FILE, RULES, cfg.global.evaluation_interval)
}

/// Puts the `Watchdog` route first under `root` while self-monitoring is
/// on: `Watchdog{job="forewarn"}` (from the built-in rules or a copy of
/// them) goes to `watchdog_receiver` every `watchdog_repeat_interval`, or,
/// without one, to no receiver, so that it never pages the default
/// receiver over and over.
pub fn route_watchdog(root: &mut Route, cfg: &Config) {
    let sm = &cfg.self_monitoring;
    if !sm.enabled {
        return;
    }
    let every = sm.watchdog_repeat_interval;
    let route = Route {
        id: WATCHDOG_ROUTE_ID.into(),
        receiver: sm.watchdog_receiver.clone().unwrap_or_default(),
        group_by: GroupBy::Labels(vec!["alertname".into(), "job".into()]),
        matchers: vec![Matcher::equal("alertname", "Watchdog"), Matcher::equal("job", JOB)],
        continue_matching: false,
        group_wait: crate::duration::PromDuration::from_secs(0),
        group_interval: every,
        repeat_interval: every,
        mute_time_intervals: Vec::new(),
        active_time_intervals: Vec::new(),
        routes: Vec::new(),
    };
    root.routes.insert(0, route);
}

/// What the self scrape depends on: a change restarts it.
#[derive(Clone, Debug, PartialEq)]
struct Settings {
    interval: Duration,
    instance: String,
}

impl Settings {
    fn of(cfg: &Config) -> Option<Settings> {
        cfg.self_monitoring.enabled.then(|| Settings {
            interval: Duration::from_millis(cfg.global.scrape_interval.as_millis().max(1) as u64),
            instance: cfg.http.listen.clone(),
        })
    }
}

/// The running self scrape.
struct Running {
    settings: Settings,
    /// `None` once stopped: a tick already past its wait when the task was
    /// aborted finds nothing to ingest into, so no sample follows the
    /// staleness markers.
    state: Arc<Mutex<Option<ScrapeState>>>,
    task: JoinHandle<()>,
}

/// Ingests the daemon's own metrics into its store while
/// `self_monitoring.enabled`; [`SelfScrape::apply`] follows reloads.
pub struct SelfScrape {
    store: Arc<Store>,
    handle: PrometheusHandle,
    running: Mutex<Option<Running>>,
}

impl SelfScrape {
    /// Starts ingesting if `cfg` says so.
    pub fn new(store: Arc<Store>, handle: PrometheusHandle, cfg: &Config) -> SelfScrape {
        let s = SelfScrape { store, handle, running: Mutex::new(None) };
        s.apply(cfg);
        s
    }

    /// Starts, restarts (interval or listen address changed) or stops the
    /// self scrape for `cfg`. Stopping ends the self series (staleness
    /// markers), so queries stop returning them at once.
    pub fn apply(&self, cfg: &Config) {
        let want = Settings::of(cfg);
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.as_ref().map(|r| &r.settings) == want.as_ref() {
            return;
        }
        if let Some(old) = running.take() {
            old.task.abort();
            let state = old.state.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(mut state) = state {
                state.end(&self.store, chrono::Utc::now().timestamp_millis());
            }
        }
        if let Some(settings) = want {
            tracing::info!(instance = %settings.instance, interval_ms = settings.interval.as_millis() as u64,
                "self-monitoring: ingesting forewarn_* metrics as job=\"forewarn\"");
            *running = Some(self.start(settings));
        }
    }

    fn start(&self, settings: Settings) -> Running {
        let target = self_target(&settings);
        let state = Arc::new(Mutex::new(Some(ScrapeState::default())));
        let (store, handle, st) = (self.store.clone(), self.handle.clone(), state.clone());
        let interval = settings.interval;
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let now = chrono::Utc::now().timestamp_millis();
                // A render and a parse of a few hundred lines: short
                // enough to run on the runtime's thread.
                let mut state = st.lock().unwrap_or_else(|e| e.into_inner());
                let Some(state) = state.as_mut() else { return };
                ingest_once(&handle, &target, &store, state, now);
            }
        });
        Running { settings, state, task }
    }
}

impl Drop for SelfScrape {
    fn drop(&mut self) {
        if let Some(r) = self.running.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            r.task.abort();
        }
    }
}

/// The target the self series are written as.
fn self_target(s: &Settings) -> Target {
    let labels = Labels::from_pairs([("job", JOB), ("instance", s.instance.as_str())]);
    let mut discovered = labels.clone();
    discovered.set("__address__".into(), s.instance.clone());
    Target {
        job: JOB.into(),
        url: format!("http://{}/metrics", s.instance),
        labels,
        discovered_labels: discovered,
        interval: s.interval,
        timeout: s.interval,
        honor_labels: false,
        honor_timestamps: true,
        body_size_limit: DEFAULT_BODY_LIMIT,
        sample_limit: 0,
        label_limit: 0,
        label_name_length_limit: 0,
        label_value_length_limit: 0,
        metric_relabel: Arc::new(Vec::new()),
        client: Default::default(),
        config_fp: 0,
    }
}

/// One self scrape: render the registry and ingest it as a scrape body.
/// (The store's series and sample gauges are refreshed by the retention
/// pass once a minute, not here: counting walks every series.)
fn ingest_once(handle: &PrometheusHandle, t: &Target, store: &Store, state: &mut ScrapeState, now: i64) {
    let started = Instant::now();
    let body = handle.render();
    ingest(t, Ok((body.as_bytes(), Format::Prometheus)), store, state, now, started.elapsed().as_secs_f64());
}

/// The gauges computed when read rather than kept up to date as they
/// change: `/metrics` calls this, and the daemon's retention pass once a
/// minute (what the self series see).
pub fn refresh_gauges(store: &Store) {
    set_store_gauges(store.stats());
}

/// Sets the store gauges from counts already taken (the retention pass's).
pub fn set_store_gauges(st: crate::store::StoreStats) {
    metrics::gauge!("forewarn_store_series").set(st.series as f64);
    metrics::gauge!("forewarn_store_samples").set(st.samples as f64);
}

/// How a metric is exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Recorded as a histogram, rendered as a summary: `{quantile}`,
    /// `_sum` and `_count`.
    Summary,
}

/// One exported metric: name, kind, help text.
pub type Metric = (&'static str, Kind, &'static str);

use Kind::{Counter as C, Gauge as G, Summary as S};

/// Every metric forewarn exports.
pub const METRICS: &[Metric] = &[
    ("forewarn_alert_state_writes_total", C, "Alert state rows written to state.db."),
    ("forewarn_config_last_reload_successful", G, "Whether the last config (re)load succeeded (1) or failed (0)."),
    ("forewarn_config_last_reload_success_timestamp_seconds", G, "When the config was last loaded successfully."),
    ("forewarn_datasource_mirrored_samples", G, "Samples kept in memory from the datasource for range queries."),
    ("forewarn_datasource_mirrored_selectors", G, "Selectors mirrored from the datasource."),
    ("forewarn_datasource_read_duration_seconds", S, "Time of one read from the datasource."),
    ("forewarn_datasource_requests_total", C, "Requests to the datasource, by outcome."),
    ("forewarn_deploy_markers_refused_total", C, "Deploy markers refused (invalid, over the limits)."),
    ("forewarn_deploy_markers_total", C, "Deploy markers recorded, by source."),
    ("forewarn_http_bcrypt_checks_total", C, "Password checks that ran bcrypt (not answered from the cache)."),
    ("forewarn_http_cross_site_refused_total", C, "Cross-site requests refused."),
    ("forewarn_http_idle_connections_closed_total", C, "HTTP connections closed for being idle."),
    ("forewarn_http_open_connections", G, "HTTP connections open now."),
    ("forewarn_http_panics_total", C, "HTTP handlers that panicked (answered 500)."),
    ("forewarn_http_request_too_large_total", C, "HTTP requests refused for their body size."),
    ("forewarn_http_unauthorized_total", C, "HTTP requests refused for missing or wrong credentials."),
    ("forewarn_notification_attempts_failed_total", C, "Delivery attempts to a receiver's integration that failed."),
    ("forewarn_notification_attempts_total", C, "Delivery attempts to a receiver's integration."),
    ("forewarn_notification_delivery_latency_seconds", S, "Time from queueing a notification to its delivery."),
    ("forewarn_notifications_dropped_total", C, "Alerts not posted to an Alertmanager of alerting.alertmanagers."),
    ("forewarn_notifications_errors_total", C, "Failed posts to an Alertmanager of alerting.alertmanagers."),
    (
        "forewarn_notifications_failed_total",
        C,
        "Notifications given up on (refused for good, older than outbox.max_age).",
    ),
    (
        "forewarn_notifications_oldest_queued_timestamp_seconds",
        G,
        "When the oldest notification in the outbox was queued (0: none queued).",
    ),
    ("forewarn_notifications_queued", G, "Notifications waiting in the outbox."),
    ("forewarn_notifications_retried_total", C, "Failed delivery attempts that will be retried."),
    ("forewarn_notifications_sent_total", C, "Notifications delivered (alerts, for alerting.alertmanagers)."),
    (
        "forewarn_remote_storage_highest_timestamp_in_seconds",
        G,
        "Newest sample read from the WAL for a remote_write queue.",
    ),
    ("forewarn_remote_storage_queue_highest_sent_timestamp_seconds", G, "Newest sample a remote_write queue sent."),
    (
        "forewarn_remote_storage_samples_dropped_total",
        C,
        "Samples a remote_write queue dropped (relabeled away, too old).",
    ),
    ("forewarn_remote_storage_samples_failed_total", C, "Samples a remote_write queue failed to send for good."),
    ("forewarn_remote_storage_samples_pending", G, "Samples read from the WAL and not acknowledged yet."),
    ("forewarn_remote_storage_samples_retried_total", C, "Samples a remote_write queue sent again after a failure."),
    ("forewarn_remote_storage_samples_total", C, "Samples a remote_write queue sent."),
    (
        "forewarn_remote_storage_wal_segments_lost_total",
        C,
        "WAL segments deleted before a remote_write queue sent them.",
    ),
    ("forewarn_rule_evaluation_failures_total", C, "Rule evaluations that failed, by group."),
    ("forewarn_rule_group_duration_seconds", S, "Time of one evaluation of a rule group."),
    ("forewarn_rule_group_evaluations_total", C, "Evaluations of a rule group."),
    ("forewarn_rule_group_interval_seconds", G, "A rule group's evaluation interval."),
    (
        "forewarn_rule_group_iterations_missed_total",
        C,
        "Scheduled evaluations of a rule group skipped because the one before ran late.",
    ),
    ("forewarn_rule_group_last_duration_seconds", G, "Time of a rule group's last evaluation."),
    ("forewarn_rule_group_last_evaluation_timestamp_seconds", G, "When a rule group last evaluated."),
    ("forewarn_rule_groups", G, "Rule groups running."),
    ("forewarn_scrape_cluster_targets_skipped", G, "Targets left to other scrape_cluster members."),
    ("forewarn_scrape_duration_seconds", S, "Time of one scrape, by scrape_job."),
    ("forewarn_scrape_failures_total", C, "Scrapes that failed, by scrape_job."),
    (
        "forewarn_scrape_iterations_missed_total",
        C,
        "Scheduled scrapes skipped because the one before ran late, by scrape_job.",
    ),
    ("forewarn_scrape_targets", G, "Targets scraped."),
    ("forewarn_scrapes_total", C, "Scrapes, by scrape_job (the self scrape is scrape_job=\"forewarn\")."),
    ("forewarn_sd_discovered_targets", G, "Targets found by file service discovery."),
    ("forewarn_sd_file_read_errors_total", C, "File service discovery files that could not be read or parsed."),
    ("forewarn_silences_refused_total", C, "Silences refused (over the limits)."),
    ("forewarn_storage_faults", G, "State dir writers failing now (/-/ready answers 503 while above 0)."),
    ("forewarn_storage_write_failures_total", C, "Failed writes to the state dir, by what (wal, snapshot, sqlite)."),
    ("forewarn_store_decode_errors_total", C, "Chunks that could not be decoded."),
    ("forewarn_store_last_snapshot_timestamp_seconds", G, "When the samples were last snapshotted."),
    ("forewarn_store_out_of_order_samples_total", C, "Samples dropped for being older than their series' newest."),
    ("forewarn_store_recovery_problems_total", C, "Problems found while recovering samples at start."),
    ("forewarn_store_recovery_seconds", G, "Time the samples took to recover at start."),
    ("forewarn_store_samples", G, "Samples held."),
    ("forewarn_store_samples_appended_total", C, "Samples appended."),
    ("forewarn_store_series", G, "Series held."),
    ("forewarn_store_series_created_total", C, "Series created."),
    ("forewarn_store_series_removed_total", C, "Series removed, by reason (stale, retention)."),
    ("forewarn_store_snapshot_bytes", G, "Size of the last sample snapshot."),
    ("forewarn_store_snapshot_duration_seconds", S, "Time of one sample snapshot."),
    ("forewarn_store_wal_bytes_dropped_total", C, "WAL bytes dropped because writing them failed."),
    ("forewarn_store_wal_bytes_total", C, "Bytes written to the sample WAL."),
    (
        "forewarn_store_wal_held_segments_deleted_total",
        C,
        "WAL segments held for remote_write deleted over the size limit.",
    ),
    ("forewarn_web_silences_created_total", C, "Silences created from the web UI."),
    ("forewarn_web_silences_expired_total", C, "Silences expired from the web UI."),
];

/// Registers the help text of [`METRICS`] with the recorder (`# HELP`).
pub fn describe() {
    for &(name, kind, help) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Summary => metrics::describe_histogram!(name, help),
        }
    }
}

/// Whether `name` is a series name forewarn exports: a metric of
/// [`METRICS`], or a summary's `_sum`/`_count`.
pub fn exports(name: &str) -> bool {
    METRICS.iter().any(|&(m, kind, _)| {
        m == name || (kind == Kind::Summary && ["_sum", "_count"].iter().any(|sfx| name.strip_suffix(sfx) == Some(m)))
    })
}

/// The series names `expr` reads; an error for a selector without a
/// literal metric name (rules and dashboards over forewarn's own metrics
/// name each one, so that [`exports`] can check it).
pub fn names_in(expr: &str) -> Result<Vec<String>, String> {
    let e = crate::promql::parse(expr).map_err(|e| e.to_string())?;
    crate::promql::selector_names(&e)
        .into_iter()
        .map(|n| n.ok_or_else(|| format!("{expr}: a selector without a metric name")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`METRICS`] lists exactly the metrics the code records, with their
    /// kinds: a metric added or renamed in the code without its entry here
    /// (or the other way round) fails.
    #[test]
    fn the_list_matches_the_code() {
        let re = regex::Regex::new(r#"metrics::(counter|gauge|histogram)!\(\s*"(forewarn_[a-z_]+)""#).unwrap();
        let mut found = std::collections::BTreeMap::new();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut dirs = vec![src];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for c in re.captures_iter(&text) {
                        let kind = match &c[1] {
                            "counter" => Kind::Counter,
                            "gauge" => Kind::Gauge,
                            _ => Kind::Summary,
                        };
                        found.insert(c[2].to_string(), kind);
                    }
                }
            }
        }
        let listed: std::collections::BTreeMap<String, Kind> =
            METRICS.iter().map(|&(n, k, _)| (n.to_string(), k)).collect();
        assert_eq!(found, listed, "selfmon::METRICS differs from the metrics the code records");
        assert!(found.len() > 60, "the search found only {} metrics", found.len());
    }

    #[test]
    fn exports_knows_summary_parts() {
        assert!(exports("forewarn_rule_group_duration_seconds_sum"));
        assert!(exports("forewarn_rule_group_duration_seconds_count"));
        assert!(!exports("forewarn_rule_groups_count"));
        assert!(!exports("forewarn_rule_group_duration_seconds_bucket"));
        assert!(!exports("up"));
    }

    /// Every series the built-in rules read is one forewarn exports (a
    /// misspelt name would make its alert silently never fire), and every
    /// alert says how long, how bad and what to do.
    #[test]
    fn the_rules_read_exported_metrics_and_say_what_to_do() {
        let groups =
            crate::rules::parse_rules(RULES_FILE, RULES, crate::duration::PromDuration::from_secs(15)).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].name, GROUP);
        let re = regex::Regex::new(r"(?m)^\s+expr: (\|\n)?((?:.+\n)+?)\s+for:").unwrap();
        let exprs: Vec<String> = re.captures_iter(RULES).map(|c| c[2].to_string()).collect();
        assert!(exprs.len() >= 10, "{exprs:?}");
        for e in &exprs {
            for n in names_in(e).unwrap() {
                assert!(exports(&n), "{n} in {e} is not a metric forewarn exports");
            }
        }
        let alerts = RULES.matches("- alert: ").count();
        assert_eq!(alerts, exprs.len(), "every alert has a `for:` after its expr");
        for key in ["severity: ", "summary: ", "description: "] {
            assert_eq!(RULES.matches(key).count(), alerts, "every alert has {key}");
        }
    }
}
