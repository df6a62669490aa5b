//! Grouping and timing: when does which receiver hear about which alerts.
//!
//! Alerts arrive in batches from rule evaluation. Each is routed, then put
//! into an aggregation group (route + the `group_by` labels). A new group is
//! flushed after `group_wait`, then every `group_interval`. This module is
//! Alertmanager's dispatcher, in-process: it owns the groups, their timers
//! and the notification log, and a flush runs the stages of
//! [`pipeline`] over each due group in order (leave out
//! silenced and inhibited alerts, skip routes muted by a time interval,
//! notify each integration only when something changed since it last heard
//! or its repeat interval has passed, build the message). What each
//! integration was told (the log) and what is to be sent are committed to
//! the [`Outbox`] together, so restarts neither lose nor repeat
//! notifications. Time is passed into every method; only
//! [`Dispatcher::run`] reads the clock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;

use super::config::NotifySections;
use super::inhibit::InhibitRule;
use super::integration::{
    deliver_once, find_integration, integration_key, Integration, ReceiverMap, Receivers, SendContext,
};
use super::outbox::{LogChange, Outbox, OutboxError, WorkerOptions};
use super::pipeline::{self, BuildContext, Entry, LogEntry};
use super::route::Route;
use super::silence::Silences;
use super::time_interval::TimeInterval;
use super::Notification;
use crate::labels::Labels;
use crate::rules::manager::AlertBatch;
use crate::state::StateDir;

struct Group {
    route: Arc<Route>,
    labels: Labels,
    alerts: BTreeMap<u64, Entry>,
    next_flush: i64,
    /// By integration key.
    log: HashMap<String, LogEntry>,
}

impl Group {
    fn key(&self) -> String {
        format!("{}:{}", self.route.id, self.labels)
    }
}

/// Everything a reload can change.
pub struct Parts {
    pub root: Route,
    pub receivers: ReceiverMap,
    pub inhibit: Vec<InhibitRule>,
    pub intervals: HashMap<String, TimeInterval>,
}

/// Starts `forewarn_notifications_failed_total` at 0 for every receiver
/// and integration: a counter first seen at 1 has no `increase()`, so the
/// first dropped notification would go unnoticed by the built-in rules.
fn zero_failure_counters(receivers: &ReceiverMap) {
    for (name, list) in receivers {
        for i in list {
            metrics::counter!("forewarn_notifications_failed_total", "receiver" => name.clone(), "integration" => i.kind())
                .increment(0);
        }
    }
}

/// The notification pipeline's state.
pub struct Dispatcher {
    root: Arc<Route>,
    receivers: Receivers,
    inhibit: Vec<InhibitRule>,
    intervals: HashMap<String, TimeInterval>,
    silences: Arc<Silences>,
    groups: HashMap<(String, u64), Group>,
    external_url: String,
    /// The receivers' shared clients; kept across reloads (pooled connections).
    send_context: SendContext,
    /// The log as loaded from the outbox, claimed by groups as they reappear.
    restored: HashMap<String, HashMap<String, LogEntry>>,
    /// Log changes since the last [`Dispatcher::take_log_changes`].
    log_changes: Vec<LogChange>,
    outbox: Option<Arc<Outbox>>,
    /// Deploy markers, for "what changed" and the chart in each alert.
    deploys: Option<Arc<crate::deploys::DeployLog>>,
}

/// A notification ready to go out through one integration.
pub struct Outgoing {
    pub integration: Arc<dyn Integration>,
    /// See [`integration_key`].
    pub key: String,
    pub notification: Notification,
}

/// How long a log entry outlives its group's last flush (Alertmanager's
/// nflog retention, 120h): covers alerts that vanished while forewarn was down.
const LOG_RETENTION_MS: i64 = 120 * 3600 * 1000;

impl Dispatcher {
    pub fn new(root: Route, receivers: ReceiverMap, external_url: String) -> Self {
        zero_failure_counters(&receivers);
        Dispatcher {
            root: Arc::new(root),
            receivers: Arc::new(RwLock::new(receivers)),
            inhibit: Vec::new(),
            intervals: HashMap::new(),
            silences: Arc::new(Silences::in_memory()),
            groups: HashMap::new(),
            external_url,
            send_context: SendContext::default(),
            restored: HashMap::new(),
            log_changes: Vec::new(),
            outbox: None,
            deploys: None,
        }
    }

    /// Adds deploy notes (changes, verdict, chart) to every notified alert.
    pub fn set_deploys(&mut self, log: Arc<crate::deploys::DeployLog>) {
        self.deploys = Some(log);
    }

    /// Builds the dispatcher from the config's `route`, `receivers`,
    /// `inhibit_rules` and `time_intervals` ([`parts_of`]), to which the
    /// caller may have added (the daemon's `Watchdog` route).
    pub fn from_parts(parts: Parts, external_url: String) -> Self {
        let mut d = Dispatcher::new(parts.root, parts.receivers, external_url);
        d.inhibit = parts.inhibit;
        d.intervals = parts.intervals;
        d
    }

    /// Makes the pipeline durable: opens the outbox and the silences in the
    /// state dir, loads the notification log and starts the delivery worker
    /// (so this needs a tokio runtime). Returns the silences for the API.
    pub fn attach(&mut self, state: &StateDir, opts: WorkerOptions) -> Result<Arc<Silences>, OutboxError> {
        let outbox = Arc::new(Outbox::open(state)?);
        self.restored = outbox.load_log(Utc::now().timestamp_millis(), LOG_RETENTION_MS)?;
        self.silences = Arc::new(Silences::open(state)?);
        let worker = super::outbox::run_worker(outbox.clone(), self.receivers.clone(), self.send_context.clone(), opts);
        tokio::spawn(worker);
        self.outbox = Some(outbox);
        Ok(self.silences.clone())
    }

    /// Uses these silences (tests; [`Dispatcher::attach`] opens the persisted ones).
    pub fn set_silences(&mut self, s: Arc<Silences>) {
        self.silences = s;
    }

    /// The routing tree, receivers, inhibit rules and time intervals, for
    /// handing to a running dispatcher.
    pub fn into_parts(self) -> Parts {
        let receivers = self.receivers.read().unwrap_or_else(|p| p.into_inner()).clone();
        Parts { root: (*self.root).clone(), receivers, inhibit: self.inhibit, intervals: self.intervals }
    }

    /// Swaps routes and receivers on reload. Groups whose route still exists
    /// keep their alerts and notification log, so a reload re-sends nothing.
    pub fn reconfigure(&mut self, parts: Parts) {
        zero_failure_counters(&parts.receivers);
        let root = Arc::new(parts.root);
        let routes: HashMap<String, Route> = root.walk().into_iter().map(|r| (r.id.clone(), r.clone())).collect();
        self.groups.retain(|(id, _), g| match routes.get(id) {
            Some(r) if r.receiver == g.route.receiver => {
                g.route = Arc::new(r.clone());
                true
            }
            _ => false,
        });
        self.root = root;
        *self.receivers.write().unwrap_or_else(|p| p.into_inner()) = parts.receivers;
        self.inhibit = parts.inhibit;
        self.intervals = parts.intervals;
    }

    /// Adds an integration that is not in the config file to `receiver`
    /// (the demo's console printer), after the configured ones.
    pub fn add_integration(&mut self, receiver: &str, integration: Arc<dyn Integration>) {
        self.receivers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(receiver.to_string())
            .or_default()
            .push(integration);
    }

    /// Takes in a batch from rule evaluation.
    pub fn ingest(&mut self, batch: &AlertBatch, now: i64) {
        for a in &batch.alerts {
            let entry = Entry::of(a, batch);
            let routes: Vec<Route> = self.root.matching(&a.labels).into_iter().cloned().collect();
            for route in routes {
                let glabels = route.group_by.group_labels(&a.labels);
                let key = (route.id.clone(), glabels.fingerprint());
                let restored = &mut self.restored;
                let group = self.groups.entry(key).or_insert_with(|| {
                    let mut g = Group {
                        next_flush: now + route.group_wait.as_millis(),
                        route: Arc::new(route.clone()),
                        labels: glabels,
                        alerts: BTreeMap::new(),
                        log: HashMap::new(),
                    };
                    g.log = restored.remove(&g.key()).unwrap_or_default();
                    g
                });
                match group.alerts.get_mut(&entry.fingerprint) {
                    // A firing update must not reopen an alert that resolved
                    // with an older onset: it is a new alert (new starts_at).
                    Some(e) => *e = Entry { starts_at: e.starts_at.min(entry.starts_at), ..entry.clone() },
                    None => {
                        if entry.resolved(now) && group.alerts.is_empty() && group.log.is_empty() {
                            // A resolution for something nobody was told about.
                            continue;
                        }
                        group.alerts.insert(entry.fingerprint, entry.clone());
                    }
                }
            }
        }
        self.groups.retain(|_, g| !g.alerts.is_empty() || !g.log.is_empty());
    }

    /// When the next group is due, if any.
    pub fn next_due(&self) -> Option<i64> {
        self.groups.values().filter(|g| !g.alerts.is_empty()).map(|g| g.next_flush).min()
    }

    /// Log changes made by flushes since the last call, for the outbox.
    pub fn take_log_changes(&mut self) -> Vec<LogChange> {
        std::mem::take(&mut self.log_changes)
    }

    /// Flushes every group due at `now` and returns what must be sent:
    /// the stages of [`pipeline`] in Alertmanager's order (mute, inhibit,
    /// time interval, dedup, build) for each due group and integration.
    pub fn flush_due(&mut self, now: i64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut dead = Vec::new();
        let receivers = self.receivers.read().unwrap_or_else(|p| p.into_inner()).clone();
        // Inhibition looks at every firing alert, whatever its group.
        let firing_all: Vec<&Labels> = if self.inhibit.is_empty() {
            Vec::new()
        } else {
            pipeline::firing_labels(self.groups.values().flat_map(|g| g.alerts.values()), now)
        };
        let muted: HashSet<u64> = self
            .groups
            .values()
            .filter(|g| g.next_flush <= now)
            .flat_map(|g| g.alerts.values())
            .filter(|e| {
                pipeline::silenced(&self.silences, e, now) || pipeline::inhibited(&self.inhibit, e, &firing_all)
            })
            .map(|e| e.fingerprint)
            .collect();
        let cx = BuildContext { external_url: &self.external_url, deploys: self.deploys.as_deref(), now };
        for (key, g) in self.groups.iter_mut() {
            if g.next_flush > now || g.alerts.is_empty() {
                continue;
            }
            g.next_flush = now + g.route.group_interval.as_millis();
            let group_key = g.key();
            let route_muted = pipeline::time_muted(&g.route, &self.intervals, now);
            let visible: Vec<&Entry> = g.alerts.values().filter(|e| !muted.contains(&e.fingerprint)).collect();
            // Muted (time interval) or nothing left after silences and
            // inhibitions: Alertmanager stops the pipeline here, so the log
            // stays as it was and the alerts count as new once unmuted.
            if !route_muted && !visible.is_empty() {
                let integrations = receivers.get(&g.route.receiver).map(Vec::as_slice).unwrap_or_default();
                for (i, integ) in integrations.iter().enumerate() {
                    let ikey = integration_key(&g.route.receiver, integrations, i);
                    let Some(entry) = pipeline::dedup(g.log.get(&ikey), &visible, integ.as_ref(), &g.route, now) else {
                        continue;
                    };
                    g.log.insert(ikey.clone(), entry.clone());
                    self.log_changes.push(LogChange::Set {
                        group_key: group_key.clone(),
                        integration: ikey.clone(),
                        entry,
                    });
                    let alerts = pipeline::build(&visible, integ.as_ref(), cx);
                    if alerts.is_empty() {
                        continue;
                    }
                    out.push(Outgoing {
                        integration: integ.clone(),
                        key: ikey,
                        notification: Notification::new(
                            &g.route.receiver,
                            group_key.clone(),
                            g.labels.clone(),
                            alerts,
                            &self.external_url,
                        ),
                    });
                }
            }
            // Resolved alerts have been reported (or muted); forget them.
            g.alerts.retain(|_, e| !e.resolved(now));
            if g.alerts.is_empty() {
                dead.push(key.clone());
                self.log_changes.push(LogChange::DeleteGroup { group_key });
            }
        }
        for k in dead {
            self.groups.remove(&k);
        }
        out
    }

    /// Runs the dispatcher until the alert channel closes.
    pub async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<AlertBatch>,
        mut reconfigure: mpsc::UnboundedReceiver<Parts>,
    ) {
        // Log changes not yet committed (the state dir failed): committed
        // with the next flush, so once writes succeed again a restart does
        // not re-send what was delivered meanwhile.
        let mut uncommitted: Vec<LogChange> = Vec::new();
        loop {
            let now = Utc::now().timestamp_millis();
            let sleep_ms = self.next_due().map(|d| (d - now).max(0)).unwrap_or(3_600_000);
            tokio::select! {
                batch = rx.recv() => {
                    let Some(batch) = batch else { return };
                    self.ingest(&batch, Utc::now().timestamp_millis());
                }
                Some(parts) = reconfigure.recv() => self.reconfigure(parts),
                _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
            }
            let now = Utc::now().timestamp_millis();
            let out = self.flush_due(now);
            let mut changes = std::mem::take(&mut uncommitted);
            changes.extend(self.take_log_changes());
            let Some(outbox) = &self.outbox else {
                for o in out {
                    let ctx = self.send_context.clone();
                    tokio::spawn(async move {
                        if let Err(e) = deliver_once(&ctx, o.integration.as_ref(), &o.notification).await {
                            tracing::error!(receiver = %o.notification.receiver, integration = o.integration.kind(), error = %e, "notification failed (no outbox: not retried)");
                        }
                    });
                }
                continue;
            };
            let items: Vec<(String, Notification)> = out.into_iter().map(|o| (o.key, o.notification)).collect();
            let failed = match outbox.commit(&items, &changes, now) {
                Ok(()) => {
                    crate::state::faults().ok(crate::state::WriteKind::Sqlite, "outbox");
                    false
                }
                Err(e) => {
                    crate::state::faults().failed(crate::state::WriteKind::Sqlite, "outbox", &e);
                    uncommitted = latest_log_changes(changes);
                    true
                }
            };
            if failed {
                // Better sent once without a safety net than not at all.
                if !items.is_empty() {
                    tracing::warn!(notifications = items.len(), "outbox not writable: sending without retries");
                }
                let receivers = self.receivers.read().unwrap_or_else(|p| p.into_inner()).clone();
                for (key, n) in items {
                    let Some(integ) = find_integration(&receivers, &key) else { continue };
                    let ctx = self.send_context.clone();
                    tokio::spawn(async move {
                        if let Err(e) = deliver_once(&ctx, integ.as_ref(), &n).await {
                            tracing::error!(receiver = %n.receiver, integration = integ.kind(), error = %e, "notification failed");
                        }
                    });
                }
            }
        }
    }
}

/// `changes` with those a later one overrides left out (same group and
/// integration, or the group deleted later), in order: what a long
/// outage of the state dir keeps for its eventual commit stays small.
fn latest_log_changes(changes: Vec<LogChange>) -> Vec<LogChange> {
    let (mut seen, mut deleted) = (HashSet::new(), HashSet::new());
    let mut out: Vec<LogChange> = changes
        .into_iter()
        .rev()
        .filter(|c| match c {
            LogChange::Set { group_key, integration, .. } => {
                !deleted.contains(group_key) && seen.insert((group_key.clone(), integration.clone()))
            }
            LogChange::DeleteGroup { group_key } => deleted.insert(group_key.clone()),
        })
        .collect();
    out.reverse();
    out
}

/// Why the notification sections could not be assembled: the part that
/// failed, named as in the config file.
#[derive(Debug, thiserror::Error)]
pub enum PartsError {
    #[error(transparent)]
    Route(#[from] super::route::RouteError),
    #[error("inhibit_rules[{index}]: {source}")]
    Inhibit { index: usize, source: super::inhibit::InhibitError },
    #[error("time_intervals[{name}]: {source}")]
    TimeInterval { name: String, source: super::time_interval::TimeIntervalError },
}

/// The routing tree and its settings from the config.
pub fn parts_of(cfg: NotifySections<'_>) -> Result<Parts, PartsError> {
    let root = match cfg.route {
        Some(r) => Route::from_config(r)?,
        None => Route::from_config(&Default::default())?,
    };
    let mut receivers = HashMap::new();
    if cfg.route.is_some() {
        for r in cfg.receivers {
            receivers.insert(r.name.clone(), r.integrations().into_iter().map(|c| c.integration).collect());
        }
    }
    let mut inhibit = Vec::new();
    for (i, r) in cfg.inhibit_rules.iter().enumerate() {
        inhibit.push(InhibitRule::from_config(r).map_err(|source| PartsError::Inhibit { index: i, source })?);
    }
    let mut intervals = HashMap::new();
    for t in cfg.time_intervals {
        intervals.insert(
            t.name.clone(),
            TimeInterval::from_config(t).map_err(|source| PartsError::TimeInterval { name: t.name.clone(), source })?,
        );
    }
    Ok(Parts { root, receivers, inhibit, intervals })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{Alert, AlertState};
    use crate::config::RouteConfig;
    use crate::notify::console::ConsoleReceiver;
    use crate::notify::Status;

    fn alert(name: &str, job: &str, state: AlertState, at: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name), ("job", job)]),
            annotations: Labels::new(),
            state,
            value: 1.0,
            active_at: at,
            onset: at,
            fired_at: Some(at),
            resolved_at: (state == AlertState::Inactive).then_some(at),
            last_seen: at,
            keep_firing_since: None,
            overlay: None,
        }
    }

    fn dispatcher(y: &str) -> Dispatcher {
        let cfg: RouteConfig = crate::yaml::parse("r", y).unwrap();
        let mut receivers = HashMap::new();
        receivers.insert("team".to_string(), vec![Arc::new(ConsoleReceiver) as Arc<dyn Integration>]);
        Dispatcher::new(Route::from_config(&cfg).unwrap(), receivers, "http://fw".into())
    }

    fn batch(at: i64, alerts: Vec<Alert>) -> AlertBatch {
        AlertBatch { at, valid_for_ms: 240_000, alerts }
    }

    #[test]
    fn group_wait_then_interval_then_resolved_once() {
        let mut d = dispatcher("receiver: team\ngroup_by: [alertname]\ngroup_wait: 10s\ngroup_interval: 1m\n");
        d.ingest(&batch(0, vec![alert("A", "x", AlertState::Firing, 0)]), 0);
        assert!(d.flush_due(5_000).is_empty(), "still in group_wait");
        d.ingest(&batch(6_000, vec![alert("A", "y", AlertState::Firing, 6_000)]), 6_000);
        let out = d.flush_due(10_000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].notification.alerts.len(), 2, "both alerts of the group in one message");
        assert_eq!(out[0].notification.group_labels, Labels::from_pairs([("alertname", "A")]));
        // Nothing new: no message at the next interval.
        assert!(d.flush_due(70_000).is_empty());
        d.ingest(&batch(80_000, vec![alert("A", "x", AlertState::Inactive, 80_000)]), 80_000);
        assert!(d.flush_due(100_000).is_empty(), "waits for group_interval");
        let out = d.flush_due(130_000);
        assert_eq!(out.len(), 1);
        let n = &out[0].notification;
        assert_eq!(n.status, Status::Firing, "y still fires");
        assert_eq!(n.resolved().count(), 1);
        // The resolved alert is not repeated.
        assert!(d.flush_due(190_000).is_empty());
    }

    #[test]
    fn repeat_interval_resends_and_expiry_resolves() {
        let mut d = dispatcher("receiver: team\ngroup_wait: 0s\ngroup_interval: 1m\nrepeat_interval: 3m\n");
        d.ingest(&batch(0, vec![alert("A", "x", AlertState::Firing, 0)]), 0);
        assert_eq!(d.flush_due(0).len(), 1);
        for t in [60_000, 120_000] {
            d.ingest(&batch(t, vec![alert("A", "x", AlertState::Firing, 0)]), t);
            assert!(d.flush_due(t).is_empty());
        }
        d.ingest(&batch(180_000, vec![alert("A", "x", AlertState::Firing, 0)]), 180_000);
        assert_eq!(d.flush_due(180_000).len(), 1, "repeat");
        // No more updates: valid_for expires and the alert resolves by itself.
        let out = d.flush_due(180_000 + 240_000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].notification.status, Status::Resolved);
        assert!(d.next_due().is_none());
    }

    #[test]
    fn restored_log_stops_a_resend_after_restart() {
        let y = "receiver: team\ngroup_by: [alertname]\ngroup_wait: 0s\ngroup_interval: 1m\nrepeat_interval: 1h\n";
        let mut d = dispatcher(y);
        d.ingest(&batch(0, vec![alert("A", "x", AlertState::Firing, 0)]), 0);
        assert_eq!(d.flush_due(0).len(), 1);
        let changes = d.take_log_changes();
        assert!(matches!(&changes[..], [LogChange::Set { integration, .. }] if integration == "team/console/0"));
        // A new process: the log comes back from the outbox.
        let mut restored: HashMap<String, HashMap<String, LogEntry>> = HashMap::new();
        if let LogChange::Set { group_key, integration, entry } = &changes[0] {
            restored.entry(group_key.clone()).or_default().insert(integration.clone(), entry.clone());
        }
        let mut d2 = dispatcher(y);
        d2.restored = restored;
        d2.ingest(&batch(5_000, vec![alert("A", "x", AlertState::Firing, 5_000)]), 5_000);
        assert!(d2.flush_due(5_000).is_empty(), "already told before the restart");
        d2.ingest(&batch(6_000, vec![alert("A", "y", AlertState::Firing, 6_000)]), 6_000);
        assert_eq!(d2.flush_due(65_000).len(), 1, "a new alert in the group is news");
        // Everything resolved and reported: the group and its log go.
        d2.ingest(
            &batch(
                70_000,
                vec![alert("A", "x", AlertState::Inactive, 70_000), alert("A", "y", AlertState::Inactive, 70_000)],
            ),
            70_000,
        );
        assert_eq!(d2.flush_due(125_000).len(), 1);
        assert!(d2.take_log_changes().iter().any(|c| matches!(c, LogChange::DeleteGroup { .. })));
    }

    #[test]
    fn silences_and_inhibitions_mute_until_lifted() {
        let y = "receiver: team\ngroup_by: ['...']\ngroup_wait: 0s\ngroup_interval: 1m\n";
        let mut d = dispatcher(y);
        let sil = Arc::new(Silences::in_memory());
        d.set_silences(sil.clone());
        let now = chrono::Utc::now();
        let body = format!(
            r#"{{"matchers":["job=\"x\""],"endsAt":"{}","createdBy":"t","comment":"c"}}"#,
            (now + chrono::Duration::minutes(10)).to_rfc3339()
        );
        let id = sil.upsert(&serde_json::from_str(&body).unwrap(), now).unwrap();
        let t0 = now.timestamp_millis();
        d.ingest(
            &batch(t0, vec![alert("A", "x", AlertState::Firing, t0), alert("A", "y", AlertState::Firing, t0)]),
            t0,
        );
        let out = d.flush_due(t0);
        assert_eq!(out.len(), 1, "only the unsilenced group");
        assert_eq!(out[0].notification.alerts[0].labels.value("job"), "y");
        sil.expire(&id, now + chrono::Duration::seconds(30)).unwrap();
        let t1 = t0 + 60_000;
        d.ingest(
            &batch(t1, vec![alert("A", "x", AlertState::Firing, t0), alert("A", "y", AlertState::Firing, t0)]),
            t1,
        );
        let out = d.flush_due(t1);
        assert_eq!(out.len(), 1, "silence lifted: x is news, y is not");
        assert_eq!(out[0].notification.alerts[0].labels.value("job"), "x");

        let mut d = dispatcher(y);
        let rule: crate::notify::inhibit::InhibitRuleConfig = crate::yaml::parse(
            "i",
            "source_matchers: [alertname=Down]\ntarget_matchers: [alertname=Slow]\nequal: [job]\n",
        )
        .unwrap();
        d.inhibit = vec![InhibitRule::from_config(&rule).unwrap()];
        d.ingest(
            &batch(
                0,
                vec![
                    alert("Down", "x", AlertState::Firing, 0),
                    alert("Slow", "x", AlertState::Firing, 0),
                    alert("Slow", "z", AlertState::Firing, 0),
                ],
            ),
            0,
        );
        let mut names: Vec<String> =
            d.flush_due(0).iter().map(|o| o.notification.alerts[0].labels.to_string()).collect();
        names.sort();
        assert_eq!(names, vec![r#"{alertname="Down", job="x"}"#, r#"{alertname="Slow", job="z"}"#]);
    }

    #[test]
    fn mute_and_active_time_intervals() {
        let cfg: RouteConfig = crate::yaml::parse(
            "r",
            "receiver: team\ngroup_wait: 0s\ngroup_interval: 1m\nroutes:\n  - matchers: [job=x]\n    mute_time_intervals: [nights]\n  - matchers: [job=y]\n    active_time_intervals: [nights]\n",
        )
        .unwrap();
        let mut receivers = HashMap::new();
        receivers.insert("team".to_string(), vec![Arc::new(ConsoleReceiver) as Arc<dyn Integration>]);
        let mut d = Dispatcher::new(Route::from_config(&cfg).unwrap(), receivers, "http://fw".into());
        let ti: crate::notify::time_interval::TimeIntervalConfig = crate::yaml::parse(
            "t",
            "name: nights\ntime_intervals:\n  - times: [{start_time: '00:00', end_time: '06:00'}]\n",
        )
        .unwrap();
        d.intervals.insert("nights".into(), TimeInterval::from_config(&ti).unwrap());
        // 1970-01-01 01:00 UTC is night; 12:00 is day.
        let night = 3_600_000;
        d.ingest(
            &batch(night, vec![alert("A", "x", AlertState::Firing, night), alert("A", "y", AlertState::Firing, night)]),
            night,
        );
        let out = d.flush_due(night);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].notification.alerts[0].labels.value("job"), "y");
        let day = 12 * 3_600_000;
        d.ingest(
            &batch(day, vec![alert("A", "x", AlertState::Firing, night), alert("A", "y", AlertState::Firing, night)]),
            day,
        );
        let out = d.flush_due(day);
        assert_eq!(out.len(), 1, "x unmuted by day and news; y already told");
        assert_eq!(out[0].notification.alerts[0].labels.value("job"), "x");
    }
}
