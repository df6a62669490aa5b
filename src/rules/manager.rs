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
    /// The `ALERTS`/`ALERTS_FOR_STATE` series its last evaluation wrote:
    /// they end (staleness markers) when the group goes, as in Prometheus.
    alert_series: Arc<Mutex<AlertSeries>>,
    task: JoinHandle<()>,
}

impl Drop for RunningGroup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type AlertSeries = std::collections::HashSet<crate::labels::Labels>;

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
            let mut written = AlertSeries::default();
            if let Some(prev) = old.iter().find(|o| {
                let og = o.group.lock().unwrap_or_else(|e| e.into_inner());
                og.file == g.file && og.name == g.name
            }) {
                let mut og = prev.group.lock().unwrap_or_else(|e| e.into_inner());
                g.inherit(&mut og);
                from_datasource = false;
                // The new task ends what the old one wrote and it does not.
                written = std::mem::take(&mut *prev.alert_series.lock().unwrap_or_else(|e| e.into_inner()));
            } else if let (Some(s), Some((_, opts))) = (saved.remove(&g.key()), &self.persist) {
                from_datasource = s.alerts.is_empty();
                g.restore(s, now, opts);
            }
            running.push(self.start(g, from_datasource, written));
        }
        // A group gone keeps no "slow" reading behind (the gauge cannot be removed).
        for o in &old {
            let name = o.group.lock().unwrap_or_else(|e| e.into_inner()).name.clone();
            if !keys_named(&keys, &name) {
                metrics::gauge!("forewarn_rule_group_last_duration_seconds", "group" => name).set(0.0);
            }
        }
        let gone: Vec<Arc<Mutex<AlertSeries>>> = old
            .iter()
            .filter(|o| !keys.contains(&o.group.lock().unwrap_or_else(|e| e.into_inner()).key()))
            .map(|o| o.alert_series.clone())
            .collect();
        // Abort the old tasks; then the alerts of groups gone end now (an
        // evaluation still finishing writes at its own, earlier time, which
        // the store drops).
        old.clear();
        let mut ended = AlertSeries::default();
        for series in gone {
            ended.extend(std::mem::take(&mut *series.lock().unwrap_or_else(|e| e.into_inner())));
        }
        if !ended.is_empty() {
            write_alert_series(&self.store, chrono::Utc::now().timestamp_millis(), &[], &mut ended);
        }
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

    fn start(&self, g: RuleGroup, restore_from_datasource: bool, written: AlertSeries) -> RunningGroup {
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
        let alert_series = Arc::new(Mutex::new(written));
        let a2 = alert_series.clone();
        let valid_for_ms = 4 * (interval.as_millis() as i64).max(60_000);
        let persist = self.persist.as_ref().map(|(p, _)| p.clone());
        // The group's own names: a scrape of other metrics does not wake it.
        let (watch, writes_mask) = {
            let g = group.lock().unwrap_or_else(|e| e.into_inner());
            (store.watch_ingest(g.reads_mask()), g.writes_mask())
        };
        let restore = self.persist.as_ref().map(|(_, o)| *o).unwrap_or_default();
        metrics::gauge!("forewarn_rule_group_interval_seconds", "group" => name.clone()).set(interval.as_secs_f64());
        let missed = metrics::counter!("forewarn_rule_group_iterations_missed_total", "group" => name.clone());
        missed.increment(0);
        let last_duration = metrics::gauge!("forewarn_rule_group_last_duration_seconds", "group" => name.clone());
        let last_evaluation =
            metrics::gauge!("forewarn_rule_group_last_evaluation_timestamp_seconds", "group" => name.clone());
        let task = tokio::spawn(async move {
            if let Some(src) = restore_from {
                restore_until_answered(&src, &g2, &h2, &ctx.external_labels, &restore).await;
            }
            let mut next = tokio::time::Instant::now();
            // ALERTS series written at the last evaluation (ended ones get a stale marker).
            let alert_series = a2;
            loop {
                let boundary = next;
                tokio::time::sleep_until(boundary).await;
                // Evaluate on fresh data: if none of the group's names came
                // in since the last evaluation, wait for them (at most three
                // quarters of an interval, so a slow scrape is waited for
                // too), then evaluate right after the batch that brings
                // them. The period stays the interval either way: the next
                // point is set from this one, not from when the wait ended.
                // (Data from a datasource arrives on no local signal.)
                let fresh = source.is_none() && watch.wait(interval * 3 / 4).await;
                let arrivals = watch.take();
                let now = tokio::time::Instant::now();
                let (after, skipped) =
                    next_evaluation(boundary, now, interval, fresh.then(|| (arrivals, watch.last_arrival().into())));
                next = after;
                missed.increment(skipped);
                let t = chrono::Utc::now().timestamp_millis();
                let started = std::time::Instant::now();
                let outcome = {
                    let mut g = g2.lock().unwrap_or_else(|e| e.into_inner());
                    tokio::task::block_in_place(|| {
                        let outcome = match &source {
                            Some(src) => g.eval_reading(&src.reader(), &store, t, &ctx),
                            None => g.eval(&store, t, &ctx),
                        };
                        let mut written = alert_series.lock().unwrap_or_else(|e| e.into_inner());
                        write_alert_series(&store, t, &g.alert_series(), &mut written);
                        if let Some(p) = &persist {
                            // Saved before the batch goes to the notifier: what a
                            // receiver hears about is on disk first.
                            let rules: Vec<_> = g
                                .alert_rules_keyed()
                                .into_iter()
                                .map(|(k, a)| (k, &a.alerting, a.kind.as_ref().and_then(|k| k.saved_state())))
                                .collect();
                            match p.save_group(&g.key(), t, &rules) {
                                Ok(_) => faults().ok(WriteKind::Sqlite, "alerts"),
                                Err(e) => faults().failed(WriteKind::Sqlite, "alerts", &e),
                            }
                        }
                        outcome
                    })
                };
                let took = started.elapsed();
                if writes_mask != 0 {
                    store.announce(writes_mask, &watch);
                }
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
                last_duration.set(took.as_secs_f64());
                last_evaluation.set(t as f64 / 1000.0);
                if tx.send(AlertBatch { at: t, valid_for_ms, alerts: outcome.alerts }).is_err() {
                    return;
                }
            }
        });
        RunningGroup { group, health, alert_series, task }
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

/// When a group evaluates next, after evaluating `now` for the schedule
/// point `boundary`, and how many schedule points after `boundary` passed
/// before `now` (skipped: `forewarn_rule_group_iterations_missed_total`). `data`: how many batches of the group's names arrived
/// since its last evaluation and when the latest did, if any did.
///
/// With one batch per interval (one scrape loop feeding the group at its
/// own interval) the next evaluation is anchored on the next batch's
/// expected arrival, a margin before it: the group then waits for that
/// batch and evaluates right after it, so it stays locked just behind the
/// scrapes instead of drifting against them. With data more often than the
/// group evaluates, or none, the group keeps its period. A missed schedule
/// point (an evaluation longer than the interval) is skipped, not caught up.
fn next_evaluation(
    boundary: tokio::time::Instant,
    now: tokio::time::Instant,
    interval: Duration,
    data: Option<(u64, tokio::time::Instant)>,
) -> (tokio::time::Instant, u64) {
    let margin = (interval / 4).min(Duration::from_millis(100));
    let skipped = (now.saturating_duration_since(boundary).as_nanos() / interval.as_nanos().max(1)) as u64;
    let next = match data {
        Some((1, arrived)) => (arrived + interval - margin).max(now + interval / 2),
        _ => {
            let mut next = boundary + interval;
            while next <= now {
                next += interval;
            }
            next
        }
    };
    (next, skipped)
}

/// Whether a group called `name` is among the group keys (file and name).
fn keys_named(keys: &std::collections::HashSet<String>, name: &str) -> bool {
    keys.iter().any(|k| k.rsplit('\u{1f}').next() == Some(name))
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
                let g = group.lock().unwrap_or_else(|e| e.into_inner()).name.clone();
                tracing::error!(group = %g, error = %e, "alert state restore task failed");
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

#[cfg(test)]
mod schedule_tests {
    use super::next_evaluation;
    use std::time::Duration;
    use tokio::time::Instant;

    const S: Duration = Duration::from_secs(1);

    /// One batch per interval: the next evaluation comes a margin before
    /// the next batch, whatever the phase the group started in, so the
    /// group waits for it and evaluates right after it.
    #[test]
    fn locks_on_just_before_the_next_batch() {
        let t0 = Instant::now();
        // Data arrived 700 ms into the interval; evaluated at once after it.
        let arrived = t0 + Duration::from_millis(700);
        let (next, skipped) = next_evaluation(t0, arrived + Duration::from_millis(2), S, Some((1, arrived)));
        assert_eq!(next, arrived + S - Duration::from_millis(100));
        assert_eq!(skipped, 0);
        // Data that arrived just after the last evaluation, found at the
        // boundary: not sooner than half an interval, then the wait for the
        // batch after it lands right on it.
        let arrived = t0 - Duration::from_millis(950);
        let (next, _) = next_evaluation(t0, t0, S, Some((1, arrived)));
        assert_eq!(next, t0 + S / 2);
    }

    /// Data more often than the group evaluates, or none at all: the
    /// period is kept, and a missed point is skipped rather than caught up.
    #[test]
    fn keeps_the_period_otherwise() {
        let t0 = Instant::now();
        assert_eq!(next_evaluation(t0, t0 + S / 2, S, None), (t0 + S, 0));
        assert_eq!(next_evaluation(t0, t0, S * 15, Some((15, t0))), (t0 + S * 15, 0));
        // Evaluating took 3.5 intervals: the points at 1, 2 and 3 s are
        // skipped and counted.
        assert_eq!(next_evaluation(t0, t0 + S * 3 + S / 2, S, None), (t0 + S * 4, 3));
        // An evaluation late after its data's batch counts too.
        let arrived = t0 + Duration::from_millis(200);
        assert_eq!(next_evaluation(t0, t0 + S * 2 + S / 2, S, Some((1, arrived))).1, 2);
    }
}

#[cfg(test)]
mod lock_on_tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::RuleManager;
    use crate::labels::Labels;
    use crate::store::Store;

    fn sample(name: &str) -> Labels {
        let mut l = Labels::new();
        l.set(crate::labels::METRIC_NAME.into(), name.into());
        l
    }

    /// A group evaluates right after each batch of its data (not up to an
    /// interval later, wherever its schedule started), while a batch of
    /// other metrics does not wake it, and a group with no data keeps its
    /// period.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn groups_evaluate_right_after_their_data_and_keep_their_period_otherwise() {
        let store = Arc::new(Store::new(3_600_000));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let rules = RuleManager::new(store.clone(), Default::default(), tx);
        let text = "groups:\n  - name: fed\n    interval: 400ms\n    rules:\n      - alert: Fed\n        expr: fed > 1000\n  - name: starved\n    interval: 400ms\n    rules:\n      - alert: Starved\n        expr: starved > 1 or vector(1)\n";
        let groups = crate::rules::file::parse_rules("t.yml", text, Default::default()).unwrap();
        let start = Instant::now();
        rules.replace(groups);
        // Batches of `fed` every 400 ms at a phase the group did not start
        // on, each followed 60 ms later by a batch of another metric; every
        // fourth one 120 ms late (a slow scrape), which must not leave the
        // group evaluating late on the batches after it.
        let s2 = store.clone();
        let commits = Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
        let c2 = commits.clone();
        let feeder = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_millis(170),
                Duration::from_millis(400),
            );
            for i in 0..16 {
                tick.tick().await;
                if i % 4 == 1 {
                    tokio::time::sleep(Duration::from_millis(120)).await;
                }
                let t = chrono::Utc::now().timestamp_millis();
                let mut app = s2.appender();
                app.append(&sample("fed"), t, i as f64);
                app.commit();
                c2.lock().unwrap().push(Instant::now());
                tokio::time::sleep(Duration::from_millis(60)).await;
                let mut app = s2.appender();
                app.append(&sample("other"), t, 1.0);
                app.commit();
            }
        });
        feeder.await.unwrap();
        drop(rules);
        // Which group an evaluation came from: only the starved group's
        // alert fires.
        let (mut evals, mut starved) = (Vec::new(), Vec::new());
        while let Ok(b) = rx.try_recv() {
            if b.alerts.is_empty() {
                evals.push(b.at);
            } else {
                starved.push(b.at);
            }
        }
        let commits = commits.lock().unwrap().clone();
        let wall = |i: &Instant| chrono::Utc::now().timestamp_millis() - i.elapsed().as_millis() as i64;
        let commit_ms: Vec<i64> = commits.iter().map(wall).collect();
        // Every commit after the first two (the lock-on) is followed within
        // 60 ms by an evaluation; before the change evaluations drifted
        // anywhere in the interval after it.
        let mut late = Vec::new();
        for c in &commit_ms[2..] {
            if !evals.iter().any(|e| *e >= *c - 5 && *e <= *c + 60) {
                late.push(c);
            }
        }
        assert!(late.len() <= 3, "evaluations not right after the data: commits {commit_ms:?}, evaluations {evals:?}");
        // The starved group kept evaluating every 400 ms meanwhile.
        let span = start.elapsed().as_millis() as f64;
        let expected = span / 400.0;
        assert!(
            (starved.len() as f64) > expected * 0.8 && (starved.len() as f64) < expected * 1.2,
            "{} evaluations in {span} ms (expected about {expected})",
            starved.len()
        );
        let gaps: Vec<i64> = starved.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| (250..=550).contains(g)), "starved group's periods: {gaps:?}");
    }
}
