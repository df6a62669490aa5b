//! The daemon: wires config, store, scrapers, rules and notifier together,
//! and owns reload and the start of shutdown. It does not know its HTTP
//! face: the `service` module serves it and handles the signals.
//!
//! Reload is all-or-nothing per part: a config or rule file that fails to
//! load is reported (log, `/-/reload` response, `forewarn_config_last_reload_successful`)
//! and whatever ran before keeps running.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::mpsc;

use crate::config::{Config, Located};
use crate::notify::dispatch::{Dispatcher, Parts};
use crate::notify::silence::Silences;
use crate::promql::EvalOptions;
use crate::rules::{self, EvalContext, RuleManager};
use crate::scrape::ScrapeManager;
use crate::store::Store;

/// Why the daemon could not start or reload.
///
/// Each stage's own error is kept whole (`#[from]`, `transparent`): its
/// text already names the file, path or setting to fix, and callers that
/// care can still match on it or walk `source()`.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{}", Located::join(.0))]
    Config(Vec<Located>),
    #[error("{}", Located::join(.0))]
    Rules(Vec<Located>),
    #[error("route: {0}")]
    Route(#[from] crate::notify::dispatch::PartsError),
    #[error("cannot listen on {addr}: {source} (is another forewarn running? change http.listen)")]
    Listen { addr: String, source: std::io::Error },
    /// A second recorder in the same process (tests) or a broken exporter.
    #[error("cannot install metrics recorder: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    ScrapeClient(#[from] crate::scrape::manager::ClientError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Outbox(#[from] crate::notify::outbox::OutboxError),
    #[error(transparent)]
    Deploys(#[from] crate::deploys::DeploysError),
    #[error(transparent)]
    Alertmanagers(#[from] crate::notify::alertmanagers::AlertingError),
    #[error(transparent)]
    Datasource(#[from] crate::datasource::FetchError),
    /// The bound listener has no local address (should not happen once bound).
    #[error("{0}")]
    LocalAddr(std::io::Error),
    #[error("cannot install {signal} handler: {source}")]
    Signal { signal: &'static str, source: std::io::Error },
    #[error("cannot bind the demo targets: {0}")]
    DemoBind(std::io::Error),
    #[error("cannot prepare the demo: {0}")]
    DemoConfig(std::io::Error),
    /// The blocking task that flushes the WAL and writes the last snapshot
    /// panicked or was cancelled.
    #[error("the final store flush failed: {0}")]
    FinalFlush(tokio::task::JoinError),
}

/// How the daemon was started.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Re-read on reload; `None` for a config built in memory (the demo).
    pub config_path: Option<PathBuf>,
    /// Also print every notification of this receiver to the terminal.
    pub console_receiver: Option<String>,
}

type Reconfigure = Parts;

/// Shared state of a running daemon, handed to the HTTP server.
pub struct Daemon {
    pub options: Options,
    pub store: Arc<Store>,
    pub scrape: ScrapeManager,
    pub rules: RuleManager,
    pub config: Mutex<Config>,
    pub metrics: PrometheusHandle,
    pub ready: AtomicBool,
    /// Silences, shared with the dispatcher (the `/api/v1/silences` API).
    pub silences: Arc<Silences>,
    /// Deploy markers (`/api/v1/deploys`), shared with scrapers and notifier.
    pub deploys: Arc<crate::deploys::DeployLog>,
    /// The `remote_write` queues.
    pub remote_write: crate::remote_write::RemoteWrite,
    /// The daemon's own metrics ingested as `job="forewarn"` (`self_monitoring`).
    pub selfmon: crate::selfmon::SelfScrape,
    /// `datasource:`: where rules, charts and queries read series instead
    /// of the local store.
    datasource: Mutex<Option<Arc<crate::datasource::RemoteSource>>>,
    alertmanagers: Arc<Mutex<Option<crate::notify::alertmanagers::AlertmanagerNotifier>>>,
    reconfigure: mpsc::UnboundedSender<Reconfigure>,
    reload_lock: tokio::sync::Mutex<()>,
    /// API queries evaluating at once (`query.max_concurrency`); replaced
    /// when a reload changes the number, queries running keep their slot.
    query_slots: Mutex<(usize, Arc<tokio::sync::Semaphore>)>,
    /// Set once shutdown begins: every running query and rule evaluation stops.
    pub shutting_down: Arc<AtomicBool>,
}

/// Installs the `forewarn_*` metrics recorder once per process.
pub fn metrics_handle() -> Result<PrometheusHandle, DaemonError> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let h = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    crate::selfmon::describe();
    // A counter first seen at 1 has no increase() to alert on: the first
    // failed write must count from an existing 0.
    for kind in [crate::state::WriteKind::Wal, crate::state::WriteKind::Snapshot, crate::state::WriteKind::Sqlite] {
        metrics::counter!("forewarn_storage_write_failures_total", "what" => kind.as_str()).increment(0);
    }
    Ok(HANDLE.get_or_init(|| h).clone())
}

/// The routing tree and receivers of `cfg`, with the `Watchdog` route of
/// the built-in rules (see [`crate::selfmon::route_watchdog`]).
pub fn dispatcher_of(cfg: &Config) -> Result<Dispatcher, DaemonError> {
    let mut parts = crate::notify::dispatch::parts_of(cfg.notify_sections())?;
    crate::selfmon::route_watchdog(&mut parts.root, cfg);
    Ok(Dispatcher::from_parts(parts, cfg.external_url()))
}

/// The rule groups of `cfg`: its `rule_files`, then the built-in
/// self-monitoring rules (unless off or replaced).
pub fn rule_groups_of(cfg: &Config) -> Result<Vec<rules::RuleGroup>, DaemonError> {
    let mut groups =
        rules::load_patterns(&cfg.rule_files, cfg.global.evaluation_interval).map_err(DaemonError::Rules)?;
    let builtin = crate::selfmon::rule_groups(cfg, &groups).map_err(DaemonError::Rules)?;
    groups.extend(builtin);
    Ok(groups)
}

fn receivers_of(cfg: &Config, console: &Option<String>) -> Result<Parts, DaemonError> {
    let mut d = dispatcher_of(cfg)?;
    if let Some(name) = console {
        d.add_integration(name, Arc::new(crate::notify::console::ConsoleReceiver));
    }
    Ok(d.into_parts())
}

impl Daemon {
    /// Starts scraping, rule evaluation and notification for `cfg`.
    pub async fn start(cfg: Config, options: Options) -> Result<Arc<Daemon>, DaemonError> {
        let metrics = metrics_handle()?;
        // Durable in storage.path/samples when set (recovers the history), else in memory.
        let store = Arc::new(crate::store::open_configured(&cfg.storage)?);
        // Queues take their hold on unsent WAL segments before the first checkpoint.
        let remote_write = crate::remote_write::RemoteWrite::default();
        remote_write.apply(&cfg.remote_write, &cfg.external_labels(), &store);
        crate::store::spawn_persistence(&store, &cfg.storage);
        let groups = rule_groups_of(&cfg)?;
        let scrape = ScrapeManager::new(store.clone())?;
        scrape.apply_config(&cfg.scrape_configs, &cfg.global.scrape_defaults(), cfg.scrape_cluster.clone());

        let mut dispatcher = dispatcher_of(&cfg)?;
        if let Some(name) = &options.console_receiver {
            dispatcher.add_integration(name, Arc::new(crate::notify::console::ConsoleReceiver));
        }
        // The state dir holds the outbox, the notification log and silences.
        let state = crate::state::StateDir::open_or_fallback(cfg.storage.path.as_deref())?;
        let worker = crate::notify::outbox::WorkerOptions {
            max_age_ms: cfg.outbox.max_age.as_millis(),
            max_backoff_ms: cfg.outbox.max_backoff.as_millis() as u64,
        };
        let silences = dispatcher.attach(&state, worker)?;
        silences.set_limits(cfg.silences.clone());
        let deploys = crate::deploys::DeployLog::open(&state, cfg.deploys.clone())?;
        dispatcher.set_deploys(deploys.clone());
        scrape.set_detector(Arc::new(crate::deploys::Detector::new(deploys.clone())));
        let (alerts_tx, alerts_rx) = mpsc::unbounded_channel();
        let (reconf_tx, reconf_rx) = mpsc::unbounded_channel();
        // Every batch goes to the routing tree and to `alerting.alertmanagers`.
        let (dispatch_tx, dispatch_rx) = mpsc::unbounded_channel();
        tokio::spawn(dispatcher.run(dispatch_rx, reconf_rx));
        let alertmanagers = Arc::new(Mutex::new(crate::notify::alertmanagers::AlertmanagerNotifier::new(
            &cfg.alerting,
            &cfg.external_url(),
        )?));
        tokio::spawn(tee_alerts(alerts_rx, dispatch_tx, alertmanagers.clone()));

        let log = deploys.clone();
        let shutting_down = Arc::new(AtomicBool::new(false));
        let ctx = EvalContext {
            external_labels: cfg.external_labels(),
            external_url: cfg.external_url(),
            options: eval_options(&cfg, &shutting_down),
            changes: Some(crate::rules::ChangesHook(Arc::new(move |labels, onset, now| {
                log.correlate_alert(labels, onset, None, now)
            }))),
            restarts: {
                let log = deploys.clone();
                Some(crate::rules::RestartsHook(Arc::new(move |labels, from, to| log.restart_times(labels, from, to))))
            },
            query_offset_ms: cfg.datasource.as_ref().map_or(0, |d| d.query_offset.as_millis()),
        };
        let datasource = open_datasource(&cfg)?;
        let mut rules = RuleManager::new(store.clone(), ctx, alerts_tx);
        rules.set_datasource(datasource.clone());
        match crate::alerts::AlertStateStore::open(&state) {
            Ok(p) => rules = rules.with_persistence(Arc::new(p), cfg.rules.alert),
            Err(e) => crate::state::faults().failed(crate::state::WriteKind::Sqlite, "alerts", &e),
        }
        let n_groups = groups.len();
        rules.replace(groups);
        tracing::info!(targets = scrape.targets().len(), rule_groups = n_groups, "forewarn started");

        let stale_ms = cfg.storage.stale_series_retention.as_millis();
        let every_ms = if stale_ms > 0 { (stale_ms / 2).clamp(1000, 60_000) } else { 60_000 };
        let slots = cfg.query.max_concurrency;
        let selfmon = crate::selfmon::SelfScrape::new(store.clone(), metrics.clone(), &cfg);
        let daemon = Arc::new(Daemon {
            selfmon,
            query_slots: Mutex::new((slots, Arc::new(tokio::sync::Semaphore::new(slots)))),
            shutting_down,
            options,
            store: store.clone(),
            scrape,
            rules,
            config: Mutex::new(cfg),
            metrics,
            ready: AtomicBool::new(false),
            silences,
            deploys: deploys.clone(),
            remote_write,
            datasource: Mutex::new(datasource),
            alertmanagers,
            reconfigure: reconf_tx,
            reload_lock: tokio::sync::Mutex::new(()),
        });
        metrics::gauge!("forewarn_config_last_reload_successful").set(1.0);
        metrics::gauge!("forewarn_config_last_reload_success_timestamp_seconds")
            .set(chrono::Utc::now().timestamp() as f64);
        deploys.set_chart_hook(png_hook(Arc::downgrade(&daemon)));

        // Retention: drop old samples and ended series once a minute (more
        // often when series end sooner, e.g. in tests).
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(every_ms as u64));
            loop {
                tick.tick().await;
                let left = store.compact(chrono::Utc::now().timestamp_millis());
                crate::selfmon::set_store_gauges(left);
            }
        });
        Ok(daemon)
    }

    /// Re-reads the config file and rule files. On any error nothing changes.
    pub async fn reload(&self) -> Result<(), DaemonError> {
        let _guard = self.reload_lock.lock().await;
        let result = self.reload_inner();
        match &result {
            Ok(()) => {
                metrics::gauge!("forewarn_config_last_reload_successful").set(1.0);
                metrics::gauge!("forewarn_config_last_reload_success_timestamp_seconds")
                    .set(chrono::Utc::now().timestamp() as f64);
                tracing::info!("configuration reloaded");
            }
            Err(e) => {
                metrics::gauge!("forewarn_config_last_reload_successful").set(0.0);
                let config = self.options.config_path.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
                tracing::error!(config = %config, error = %e, "reload failed; the previous configuration and rules keep running");
            }
        }
        result
    }

    fn reload_inner(&self) -> Result<(), DaemonError> {
        let cfg = match &self.options.config_path {
            Some(p) => Config::load(p).map_err(DaemonError::Config)?,
            None => self.config.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        };
        let groups = rule_groups_of(&cfg)?;
        let parts = receivers_of(&cfg, &self.options.console_receiver)?;
        let am_changed = self.config.lock().unwrap_or_else(|e| e.into_inner()).alerting != cfg.alerting;
        let alertmanagers = if am_changed {
            Some(crate::notify::alertmanagers::AlertmanagerNotifier::new(&cfg.alerting, &cfg.external_url())?)
        } else {
            None
        };
        let ds_changed = self.config.lock().unwrap_or_else(|e| e.into_inner()).datasource != cfg.datasource;
        let datasource = if ds_changed { Some(open_datasource(&cfg)?) } else { None };
        // Everything is valid: swap.
        self.scrape.apply_config(&cfg.scrape_configs, &cfg.global.scrape_defaults(), cfg.scrape_cluster.clone());
        self.rules.set_options(eval_options(&cfg, &self.shutting_down));
        self.rules.set_query_offset(cfg.datasource.as_ref().map_or(0, |d| d.query_offset.as_millis()));
        if let Some(ds) = datasource {
            self.rules.set_datasource(ds.clone());
            *self.datasource.lock().unwrap_or_else(|e| e.into_inner()) = ds;
        }
        self.rules.replace(groups);
        {
            let mut slots = self.query_slots.lock().unwrap_or_else(|e| e.into_inner());
            if slots.0 != cfg.query.max_concurrency {
                *slots = (cfg.query.max_concurrency, Arc::new(tokio::sync::Semaphore::new(cfg.query.max_concurrency)));
            }
        }
        let _ = self.reconfigure.send(parts);
        self.deploys.set_settings(cfg.deploys.clone());
        self.silences.set_limits(cfg.silences.clone());
        self.remote_write.apply(&cfg.remote_write, &cfg.external_labels(), &self.store);
        self.selfmon.apply(&cfg);
        if let Some(am) = alertmanagers {
            *self.alertmanagers.lock().unwrap_or_else(|e| e.into_inner()) = am;
        }
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = cfg;
        Ok(())
    }
}

impl Daemon {
    /// Evaluation options for one API query under the current `query:`
    /// settings (stopped by shutdown; the caller adds its own cancel flag).
    pub fn query_options(&self) -> EvalOptions {
        eval_options(&self.config.lock().unwrap_or_else(|e| e.into_inner()), &self.shutting_down)
    }

    /// What queries and charts read: the datasource when one is set (every
    /// read fetched, nothing kept), else the local store.
    pub fn reads(&self) -> Arc<dyn crate::store::Queryable> {
        match &*self.datasource.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(src) => Arc::new(src.uncached()),
            None => self.store.clone(),
        }
    }

    /// The semaphore API queries take a slot of before they evaluate.
    pub fn query_slots(&self) -> Arc<tokio::sync::Semaphore> {
        self.query_slots.lock().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    /// Stops every running query and rule evaluation at its next check.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.query_slots().close();
    }
}

/// The `datasource` client, if one is configured; warns when recording
/// rules would have nowhere to go.
fn open_datasource(cfg: &Config) -> Result<Option<Arc<crate::datasource::RemoteSource>>, DaemonError> {
    let Some(ds) = &cfg.datasource else { return Ok(None) };
    let src = crate::datasource::RemoteSource::new(ds)?;
    if cfg.remote_write.is_empty() {
        tracing::warn!(datasource = %ds.url_label(),
            "datasource is set without remote_write: recording rule results and ALERTS_FOR_STATE stay local, \
             so rules cannot read recordings back and a fresh replica cannot restore alert state; add a remote_write to the same store");
    }
    tracing::info!(datasource = %ds.url_label(), query_offset = %ds.query_offset, "rules read from the datasource");
    Ok(Some(src))
}

fn eval_options(cfg: &Config, shutdown: &Arc<AtomicBool>) -> EvalOptions {
    let mut o = cfg.query.eval_options();
    o.limits.shutdown = Some(shutdown.clone());
    o
}

/// Hands each rule evaluation's alerts to the routing tree, then posts the
/// due ones to `alerting.alertmanagers` (in order, one batch at a time).
async fn tee_alerts(
    mut rx: mpsc::UnboundedReceiver<rules::manager::AlertBatch>,
    dispatch: mpsc::UnboundedSender<rules::manager::AlertBatch>,
    alertmanagers: Arc<Mutex<Option<crate::notify::alertmanagers::AlertmanagerNotifier>>>,
) {
    while let Some(batch) = rx.recv().await {
        let post = {
            let mut am = alertmanagers.lock().unwrap_or_else(|e| e.into_inner());
            am.as_mut().map(|n| {
                let due = n.due(&batch);
                n.post(due)
            })
        };
        if dispatch.send(batch).is_err() {
            return;
        }
        if let Some(post) = post {
            post.await;
        }
    }
}

/// The chart renderer the daemon installs on its marker log, so emails
/// can carry a PNG. Holds the daemon weakly: no cycle, and after shutdown
/// it simply draws nothing.
fn png_hook(daemon: std::sync::Weak<Daemon>) -> crate::deploys::log::ChartHook {
    Box::new(move |fingerprint, _onset, _resolved, now| {
        let d = daemon.upgrade()?;
        let spec = crate::chart::alert::spec_for_fingerprint(
            &*d.reads(),
            &d.rules,
            Some(&d.deploys),
            fingerprint,
            now,
            &d.query_options(),
        );
        match spec.and_then(|s| crate::chart::render_png(&s)) {
            Ok(png) => Some(png),
            Err(e) => {
                tracing::warn!(alert = %format!("{fingerprint:016x}"), error = %e, "no chart for the email");
                None
            }
        }
    })
}

/// Tells systemd (Type=notify) that we are ready, if it is listening.
pub fn notify_systemd(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "sd_notify: cannot create socket");
            return;
        }
    };
    let bytes = path.as_encoded_bytes();
    let result = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name).and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&path))
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}
