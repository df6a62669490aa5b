//! Running rule groups in the daemon: one task per group, ticking on the
//! group's interval with the wall clock, and whole-set swaps on reload.
//!
//! A reload builds the new rule set completely before touching the running
//! one; if any file is broken the old set keeps running untouched and the
//! errors are returned for the caller to report.
//!
//! With persistence attached, the first rule set put in place gets the
//! alert state saved by the previous run, and every group evaluation saves
//! what changed (see [`crate::alerts::persist`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{EvalContext, RuleGroup, RuleHealth};
use crate::alerts::{Alert, AlertStateStore, RestoreOptions};
use crate::datasource::RemoteSource;
use crate::state::{faults, WriteKind};
use crate::store::Store;

/// A batch of alerts from one group evaluation, for the notifier.
#[derive(Debug)]
pub struct AlertBatch {
    pub at: i64,
    /// How long an alert in this batch stays valid if no newer batch comes
    /// (it resolves then; covers a deleted rule or a stuck evaluation).
    pub valid_for_ms: i64,
    pub alerts: Vec<Alert>,
}

/// A running group and what the API shows of it.
pub struct RunningGroup {
    pub group: Arc<Mutex<RuleGroup>>,
    pub health: Arc<Mutex<Vec<RuleHealth>>>,
    task: JoinHandle<()>,
}

impl Drop for RunningGroup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Owns the running groups.
pub struct RuleManager {
    store: Arc<Store>,
    /// Handed to groups as they start (a reload sets new options first).
    ctx: Mutex<EvalContext>,
    alerts_tx: mpsc::UnboundedSender<AlertBatch>,
    running: Mutex<Vec<RunningGroup>>,
    persist: Option<(Arc<AlertStateStore>, RestoreOptions)>,
    /// Whether a rule set was put in place yet: only the first one gets
    /// the saved state (or, without it, the datasource's).
    started: std::sync::atomic::AtomicBool,
    /// Where rules read from when not from `store` (`datasource:`).
    datasource: Mutex<Option<Arc<RemoteSource>>>,
}

impl RuleManager {
    pub fn new(store: Arc<Store>, ctx: EvalContext, alerts_tx: mpsc::UnboundedSender<AlertBatch>) -> Self {
        RuleManager {
            store,
            ctx: Mutex::new(ctx),
            alerts_tx,
            running: Mutex::new(Vec::new()),
            persist: None,
            started: std::sync::atomic::AtomicBool::new(false),
            datasource: Mutex::new(None),
        }
    }

    /// How far in the past groups without their own `query_offset`
    /// evaluate, for groups started from now on.
    pub fn set_query_offset(&self, ms: i64) {
        self.ctx.lock().unwrap_or_else(|e| e.into_inner()).query_offset_ms = ms;
    }

    /// Where groups started from now on read their series: the datasource,
    /// or the local store when `None`.
    pub fn set_datasource(&self, source: Option<Arc<RemoteSource>>) {
        *self.datasource.lock().unwrap_or_else(|e| e.into_inner()) = source;
    }

    /// Saves alert state in `store` and restores it into the first rule set.
    pub fn with_persistence(mut self, store: Arc<AlertStateStore>, opts: RestoreOptions) -> Self {
        self.persist = Some((store, opts));
        self
    }

    /// Evaluation options (lookback, limits) for groups started from now on.
    pub fn set_options(&self, options: crate::promql::EvalOptions) {
        self.ctx.lock().unwrap_or_else(|e| e.into_inner()).options = options;
    }

    /// The alert state saved by the previous run (read for the first rule set).
    fn take_saved(&self) -> std::collections::HashMap<String, crate::alerts::persist::SavedGroup> {
        let Some((p, _)) = &self.persist else { return Default::default() };
        match p.load() {
            Ok(saved) => saved,
            Err(e) => {
                tracing::error!(error = %e, "cannot read saved alert state; alerts start over");
                Default::default()
            }
        }
    }

    /// Replaces the running groups with `groups`, carrying alert state over
    /// from groups with the same file and name.
    pub fn replace(&self, groups: Vec<RuleGroup>) {
        let first = !self.started.swap(true, std::sync::atomic::Ordering::SeqCst);
        let mut saved = if first { self.take_saved() } else { Default::default() };
        let now = chrono::Utc::now().timestamp_millis();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut old: Vec<RunningGroup> = std::mem::take(&mut *running);
        let mut keys = std::collections::HashSet::new();
        for mut g in groups {
            keys.insert(g.key());
            // A group of the first rule set with no state saved here gets
            // what the datasource remembers (a fresh HA replica).
            let mut from_datasource = first;
            if let Some(prev) = old.iter().find(|o| {
                let og = o.group.lock().unwrap_or_else(|e| e.into_inner());
                og.file == g.file && og.name == g.name
            }) {
                let mut og = prev.group.lock().unwrap_or_else(|e| e.into_inner());
                g.inherit(&mut og);
                from_datasource = false;
            } else if let (Some(s), Some((_, opts))) = (saved.remove(&g.key()), &self.persist) {
                from_datasource = s.alerts.is_empty();
                g.restore(s, now, opts);
            }
            running.push(self.start(g, from_datasource));
        }
        old.clear(); // aborts the old tasks
        for (key, s) in saved.into_iter().filter(|(_, s)| !s.alerts.is_empty()) {
            let n: usize = s.alerts.values().map(Vec::len).sum();
            tracing::warn!(group = %key.replace('\u{1f}', " "), alerts = n, "saved alert state dropped: the group is gone");
        }
        if let Some((p, _)) = &self.persist {
            match p.forget_groups_except(&keys) {
                Ok(_) => faults().ok(WriteKind::Sqlite, "alerts"),
                Err(e) => faults().failed(WriteKind::Sqlite, "alerts", &e),
            }
        }
        metrics::gauge!("forewarn_rule_groups").set(running.len() as f64);
    }

    fn start(&self, g: RuleGroup, restore_from_datasource: bool) -> RunningGroup {
        let interval = g.interval.0.max(Duration::from_millis(100));
        let n_rules = g.rules.len();
        let name = g.name.clone();
        let source = self.datasource.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let restore_from = source.clone().filter(|_| restore_from_datasource && has_for(&g));
        let group = Arc::new(Mutex::new(g));
        let health = Arc::new(Mutex::new(vec![RuleHealth::default(); n_rules]));
        let ctx = self.ctx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (store, tx) = (self.store.clone(), self.alerts_tx.clone());
        let (g2, h2) = (group.clone(), health.clone());
        let valid_for_ms = 4 * (interval.as_millis() as i64).max(60_000);
        let persist = self.persist.as_ref().map(|(p, _)| p.clone());
        let mut ingested = store.subscribe_ingest();
        let restore = self.persist.as_ref().map(|(_, o)| *o).unwrap_or_default();
        let task = tokio::spawn(async move {
            if let Some(src) = restore_from {
                restore_until_answered(&src, &g2, &h2, &ctx.external_labels, &restore).await;
            }
            let mut next = tokio::time::Instant::now();
            // ALERTS series written at the last evaluation (ended ones get a stale marker).
            let mut alert_series: std::collections::HashSet<crate::labels::Labels> = Default::default();
            loop {
                let boundary = next;
                tokio::time::sleep_until(boundary).await;
                // Evaluate on fresh data: if no scrape landed since the last
                // evaluation, wait for the next one (at most half an
                // interval). Evaluations then lock on just after the scrapes,
                // which takes up to an interval off the time from a crossing
                // to a notification. Without scrapes the schedule keeps its
                // period, shifted by half an interval.
                // (Data from a datasource arrives on no local signal.)
                let fresh = source.is_none()
                    && (ingested.has_changed().unwrap_or(false)
                        || tokio::time::timeout(interval / 2, ingested.changed()).await.is_ok_and(|r| r.is_ok()));
                ingested.borrow_and_update();
                next = if fresh { tokio::time::Instant::now() + interval } else { boundary + interval };
                let t = chrono::Utc::now().timestamp_millis();
                let started = std::time::Instant::now();
                let outcome = {
                    let mut g = g2.lock().unwrap_or_else(|e| e.into_inner());
                    tokio::task::block_in_place(|| {
                        let outcome = match &source {
                            Some(src) => g.eval_reading(&src.reader(), &store, t, &ctx),
                            None => g.eval(&store, t, &ctx),
                        };
                        write_alert_series(&store, t, &g.alert_series(), &mut alert_series);
                        if let Some(p) = &persist {
                            // Saved before the batch goes to the notifier: what a
                            // receiver hears about is on disk first.
                            match p.save_group(&g.key(), t, &g.alert_rules_keyed()) {
                                Ok(_) => faults().ok(WriteKind::Sqlite, "alerts"),
                                Err(e) => faults().failed(WriteKind::Sqlite, "alerts", &e),
                            }
                        }
                        outcome
                    })
                };
                let took = started.elapsed();
                {
                    let mut h = h2.lock().unwrap_or_else(|e| e.into_inner());
                    for (slot, err) in h.iter_mut().zip(&outcome.errors) {
                        slot.last_error = err.clone();
                        slot.last_evaluation = t;
                        slot.evaluation_ms = took.as_secs_f64() * 1000.0 / n_rules.max(1) as f64;
                    }
                }
                let failures = outcome.errors.iter().filter(|e| e.is_some()).count();
                for e in outcome.errors.iter().flatten() {
                    tracing::warn!(group = %name, error = %e, "rule evaluation failed");
                }
                metrics::counter!("forewarn_rule_group_evaluations_total", "group" => name.clone()).increment(1);
                metrics::counter!("forewarn_rule_evaluation_failures_total", "group" => name.clone())
                    .increment(failures as u64);
                metrics::histogram!("forewarn_rule_group_duration_seconds", "group" => name.clone())
                    .record(took.as_secs_f64());
                if tx.send(AlertBatch { at: t, valid_for_ms, alerts: outcome.alerts }).is_err() {
                    return;
                }
            }
        });
        RunningGroup { group, health, task }
    }

    /// Calls `f` on each running group (for the API), in load order.
    pub fn with_groups<R>(&self, mut f: impl FnMut(&RuleGroup, &[RuleHealth]) -> R) -> Vec<R> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .iter()
            .map(|r| {
                let g = r.group.lock().unwrap_or_else(|e| e.into_inner());
                let h = r.health.lock().unwrap_or_else(|e| e.into_inner());
                f(&g, &h)
            })
            .collect()
    }
}

/// Whether any alerting rule of the group has a `for` to restore.
fn has_for(g: &RuleGroup) -> bool {
    g.rules.iter().any(|r| matches!(r, super::Rule::Alert(a) if a.hold.as_millis() > 0))
}

/// Reads `ALERTS_FOR_STATE` from the datasource into the group, retrying
/// with backoff (1 s doubling to 30 s) until the datasource answers; the
/// error shows on the group's rules meanwhile.
async fn restore_until_answered(
    src: &Arc<RemoteSource>,
    group: &Mutex<RuleGroup>,
    health: &Mutex<Vec<RuleHealth>>,
    external: &crate::labels::Labels,
    opts: &RestoreOptions,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let src2 = src.clone();
        let got = tokio::task::spawn_blocking(move || src2.alerts_for_state(now)).await;
        match got {
            Ok(Ok(series)) => {
                let found = crate::datasource::restore::alerts(series, external);
                let mut g = group.lock().unwrap_or_else(|e| e.into_inner());
                g.restore_remote(&found, now, opts);
                return;
            }
            Ok(Err(e)) => {
                let msg = format!("restoring alert state: {e}; retrying in {}s", backoff.as_secs());
                let g = group.lock().unwrap_or_else(|e| e.into_inner()).name.clone();
                tracing::warn!(group = %g, error = %e, retry_in_s = backoff.as_secs(), "cannot restore alert state from the datasource yet");
                for slot in health.lock().unwrap_or_else(|e| e.into_inner()).iter_mut() {
                    slot.last_error = Some(msg.clone());
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "alert state restore task failed");
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Appends this evaluation's `ALERTS`/`ALERTS_FOR_STATE` samples and a
/// staleness marker for each such series that ended, as Prometheus does;
/// they reach the WAL and so `remote_write`.
fn write_alert_series(
    store: &Store,
    t: i64,
    now: &[(crate::labels::Labels, f64)],
    prev: &mut std::collections::HashSet<crate::labels::Labels>,
) {
    let mut app = store.appender_quiet();
    let mut seen = std::collections::HashSet::with_capacity(now.len());
    for (labels, v) in now {
        app.append(labels, t, *v);
        seen.insert(labels.clone());
    }
    for ended in prev.difference(&seen) {
        app.append(ended, t, crate::store::stale_nan());
    }
    app.commit();
    *prev = seen;
}
