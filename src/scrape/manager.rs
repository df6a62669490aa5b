//! Runs one task per target, each on its own interval with a stable
//! per-target offset, so a thousand targets do not all fire on the same tick.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::cluster::ScrapeClusterConfig;
use super::config::{ScrapeConfig, ScrapeDefaults};
use super::discovery::{Discovery, DroppedTarget};
use super::target::{scrape_once, ScrapeState, Target, TargetHealth};
use crate::store::Store;

struct Running {
    target: Target,
    health: Arc<Mutex<TargetHealth>>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Owns the scrape tasks and the target discovery that feeds them.
pub struct ScrapeManager {
    inner: Arc<Inner>,
    /// Polls file-SD files; replaced on every `apply_config`.
    sd_task: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    store: Arc<Store>,
    client: reqwest::Client,
    running: Mutex<Vec<Running>>,
    /// Discovered targets that relabeling dropped, for the API.
    dropped: Mutex<Vec<DroppedTarget>>,
    /// Deploy/restart detection, handed to every scrape task (set once).
    detector: Arc<std::sync::OnceLock<Arc<crate::deploys::Detector>>>,
    discovery: Mutex<Option<Discovery>>,
    /// `scrape_cluster`: only this member's share of the targets runs.
    cluster: Mutex<Option<super::cluster::ScrapeClusterConfig>>,
}

impl Drop for ScrapeManager {
    fn drop(&mut self) {
        if let Some(t) = self.sd_task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

impl ScrapeManager {
    pub fn new(store: Arc<Store>) -> Result<Self, ClientError> {
        let client = reqwest::Client::builder()
            .gzip(true)
            .redirect(reqwest::redirect::Policy::limited(10))
            .user_agent(concat!("forewarn/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError(e.to_string()))?;
        let inner = Inner {
            store,
            client,
            running: Mutex::new(Vec::new()),
            dropped: Mutex::new(Vec::new()),
            detector: Default::default(),
            discovery: Mutex::new(None),
            cluster: Mutex::new(None),
        };
        Ok(ScrapeManager { inner: Arc::new(inner), sd_task: Mutex::new(None) })
    }

    /// Runs the targets of the scrape configs `jobs`, static and file-SD,
    /// and keeps polling the file-SD files every `refresh_interval`;
    /// under `cluster`, only this member's share.
    pub fn apply_config(&self, jobs: &[ScrapeConfig], defaults: &ScrapeDefaults, cluster: Option<ScrapeClusterConfig>) {
        *self.inner.cluster.lock().unwrap_or_else(|e| e.into_inner()) = cluster;
        let mut disc = Discovery::new(jobs, defaults);
        disc.refresh();
        self.inner.apply(disc.resolve_all());
        let every = disc.refresh_interval();
        *self.inner.discovery.lock().unwrap_or_else(|e| e.into_inner()) = Some(disc);
        let mut task = self.sd_task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = task.take() {
            t.abort();
        }
        if let Some(every) = every {
            let weak = Arc::downgrade(&self.inner);
            *task = Some(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(inner) = weak.upgrade() else { return };
                    let targets = {
                        let mut d = inner.discovery.lock().unwrap_or_else(|e| e.into_inner());
                        d.as_mut().and_then(|d| d.refresh().then(|| d.resolve_all()))
                    };
                    if let Some(t) = targets {
                        inner.apply(t);
                    }
                }
            }));
        }
    }

    /// Replaces the running targets. Targets whose URL and labels are
    /// unchanged keep running (and keep their staleness state).
    pub fn replace(&self, targets: Vec<Target>) {
        self.inner.replace(targets)
    }

    /// Hands every scrape (running and future targets) to `d`; once.
    pub fn set_detector(&self, d: Arc<crate::deploys::Detector>) {
        let _ = self.inner.detector.set(d);
    }

    /// Discovered targets that relabeling dropped, for the API.
    pub fn dropped_targets(&self) -> Vec<DroppedTarget> {
        self.inner.dropped.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Targets and their health, for the API.
    pub fn targets(&self) -> Vec<(Target, TargetHealth)> {
        let running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        running.iter().map(|r| (r.target.clone(), r.health.lock().unwrap_or_else(|e| e.into_inner()).clone())).collect()
    }
}

impl Inner {
    fn apply(&self, (mut targets, dropped): (Vec<Target>, Vec<DroppedTarget>)) {
        *self.dropped.lock().unwrap_or_else(|e| e.into_inner()) = dropped;
        if let Some(c) = &*self.cluster.lock().unwrap_or_else(|e| e.into_inner()) {
            let all = targets.len();
            targets.retain(|t| c.owns(t));
            metrics::gauge!("forewarn_scrape_cluster_targets_skipped").set((all - targets.len()) as f64);
        }
        self.replace(targets);
    }

    fn replace(&self, targets: Vec<Target>) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut old: Vec<Running> = std::mem::take(&mut *running);
        for t in targets {
            if let Some(pos) = old.iter().position(|r| same(&r.target, &t)) {
                running.push(old.swap_remove(pos));
            } else {
                running.push(self.start(t));
            }
        }
        drop(old);
        metrics::gauge!("forewarn_scrape_targets").set(running.len() as f64);
    }

    fn start(&self, target: Target) -> Running {
        let health = Arc::new(Mutex::new(TargetHealth { health: "unknown", ..Default::default() }));
        let (client, store, h, t) = (self.client.clone(), self.store.clone(), health.clone(), target.clone());
        let det = self.detector.clone();
        let task = tokio::spawn(async move {
            let interval_ms = t.interval.as_millis().max(1) as u64;
            let offset = crate::labels::Labels::from_pairs([("u", t.url.as_str())]).fingerprint() % interval_ms;
            // Spread over the whole interval, so many targets do not fire together.
            tokio::time::sleep(Duration::from_millis(offset)).await;
            let mut tick = tokio::time::interval(t.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut state = ScrapeState::default();
            let mut last: Option<tokio::time::Instant> = None;
            let missed = metrics::counter!("forewarn_scrape_iterations_missed_total", "scrape_job" => t.job.clone());
            missed.increment(0);
            loop {
                let at = tick.tick().await;
                // A late tick skips the points it overran (`Skip`): the
                // gap between two ticks' schedule points counts them.
                if let Some(prev) = last {
                    let gap = at.duration_since(prev).as_nanos() / t.interval.as_nanos().max(1);
                    missed.increment(gap.saturating_sub(1) as u64);
                }
                last = Some(at);
                if state.detector.is_none() {
                    state.detector = det.get().cloned();
                }
                let now = chrono::Utc::now().timestamp_millis();
                let result = scrape_once(&client, &t, &store, &mut state, now).await;
                *h.lock().unwrap_or_else(|e| e.into_inner()) = result;
            }
        });
        Running { target, health, task }
    }
}

fn same(a: &Target, b: &Target) -> bool {
    a.url == b.url
        && a.labels == b.labels
        && a.interval == b.interval
        && a.timeout == b.timeout
        && a.honor_labels == b.honor_labels
        && a.body_size_limit == b.body_size_limit
        && a.sample_limit == b.sample_limit
        && a.config_fp == b.config_fp
}
