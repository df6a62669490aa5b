//! Grouping and timing: when does which receiver hear about which alerts.
//!
//! Alerts arrive in batches from rule evaluation. Each is routed, then put
//! into an aggregation group (route + the `group_by` labels). A new group is
//! flushed after `group_wait`, then every `group_interval`; a flush sends a
//! notification to each of the receiver's integrations only when something
//! changed since that integration last heard (a new firing alert, a newly
//! resolved one if it wants resolutions) or `repeat_interval` has passed.
//! This is Alertmanager's dispatcher and dedup stage, in-process. Time is
//! passed into every method; only [`Dispatcher::run`] reads the clock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use tokio::sync::mpsc;

use super::route::Route;
use super::{DeliveryError, NotifiedAlert, Notification, Status};
use crate::alerts::{Alert, AlertState};
use crate::config::Config;
use crate::labels::Labels;
use crate::rules::manager::AlertBatch;

/// One way to reach a receiver.
#[derive(Clone, Debug)]
pub enum Integration {
    Webhook(super::webhook::WebhookConfig),
    Email(super::email::EmailConfig),
    /// Prints to the terminal (`forewarn demo`).
    Console,
}

impl Integration {
    fn kind(&self) -> &'static str {
        match self {
            Integration::Webhook(_) => "webhook",
            Integration::Email(_) => "email",
            Integration::Console => "console",
        }
    }

    fn send_resolved(&self) -> bool {
        match self {
            Integration::Webhook(w) => w.send_resolved,
            Integration::Email(e) => e.send_resolved,
            Integration::Console => true,
        }
    }
}

/// What the dispatcher knows of one alert.
#[derive(Clone, Debug)]
struct Entry {
    labels: Labels,
    annotations: Labels,
    starts_at: i64,
    /// Resolved at this time, or valid until it if still firing.
    ends_at: i64,
    fingerprint: u64,
}

impl Entry {
    fn resolved(&self, now: i64) -> bool {
        self.ends_at <= now
    }
}

/// What an integration was last told about a group (Alertmanager's nflog).
#[derive(Clone, Debug, Default)]
struct LogEntry {
    firing: HashSet<u64>,
    resolved: HashSet<u64>,
    at: i64,
}

struct Group {
    route: Arc<Route>,
    labels: Labels,
    alerts: BTreeMap<u64, Entry>,
    next_flush: i64,
    log: Vec<Option<LogEntry>>,
}

/// The notification pipeline's state.
pub struct Dispatcher {
    root: Arc<Route>,
    receivers: HashMap<String, Vec<Integration>>,
    groups: HashMap<(String, u64), Group>,
    external_url: String,
    webhook: super::webhook::WebhookSender,
}

/// A notification ready to go out through one integration.
pub struct Outgoing {
    pub integration: Integration,
    pub notification: Notification,
}

impl Dispatcher {
    pub fn new(root: Route, receivers: HashMap<String, Vec<Integration>>, external_url: String) -> Self {
        Dispatcher {
            root: Arc::new(root),
            receivers,
            groups: HashMap::new(),
            external_url,
            webhook: super::webhook::WebhookSender::new(),
        }
    }

    /// Builds the dispatcher from the config's `route` and `receivers`.
    pub fn from_config(cfg: &Config) -> Result<Self, String> {
        let Some(route_cfg) = &cfg.route else {
            return Ok(Dispatcher::new(
                Route::from_config(&Default::default())?,
                HashMap::new(),
                cfg.external_url(),
            ));
        };
        let root = Route::from_config(route_cfg)?;
        let mut receivers = HashMap::new();
        for r in &cfg.receivers {
            let mut list: Vec<Integration> = r.webhook_configs.iter().cloned().map(Integration::Webhook).collect();
            list.extend(r.email_configs.iter().cloned().map(Integration::Email));
            receivers.insert(r.name.clone(), list);
        }
        Ok(Dispatcher::new(root, receivers, cfg.external_url()))
    }

    /// The routing tree and receivers, for handing to a running dispatcher.
    pub fn into_parts(self) -> (Route, HashMap<String, Vec<Integration>>) {
        ((*self.root).clone(), self.receivers)
    }

    /// Swaps routes and receivers on reload. Groups whose route still exists
    /// keep their alerts and notification log, so a reload re-sends nothing.
    pub fn reconfigure(&mut self, root: Route, receivers: HashMap<String, Vec<Integration>>) {
        let root = Arc::new(root);
        let routes: HashMap<String, Route> = root.walk().into_iter().map(|r| (r.id.clone(), r.clone())).collect();
        self.groups.retain(|(id, _), g| match routes.get(id) {
            Some(r) if r.receiver == g.route.receiver => {
                g.route = Arc::new(r.clone());
                true
            }
            _ => false,
        });
        self.root = root;
        self.receivers = receivers;
    }

    /// Adds a receiver that prints to the terminal (used by the demo).
    pub fn add_console(&mut self, receiver: &str) {
        self.receivers.entry(receiver.to_string()).or_default().push(Integration::Console);
    }

    /// Takes in a batch from rule evaluation.
    pub fn ingest(&mut self, batch: &AlertBatch, now: i64) {
        for a in &batch.alerts {
            let entry = entry_for(a, batch);
            let routes: Vec<Route> = self.root.matching(&a.labels).into_iter().cloned().collect();
            for route in routes {
                let glabels = route.group_by.group_labels(&a.labels);
                let key = (route.id.clone(), glabels.fingerprint());
                let n_integrations = self.receivers.get(&route.receiver).map_or(0, Vec::len);
                let group = self.groups.entry(key).or_insert_with(|| Group {
                    next_flush: now + route.group_wait.as_millis(),
                    route: Arc::new(route.clone()),
                    labels: glabels,
                    alerts: BTreeMap::new(),
                    log: vec![None; n_integrations],
                });
                match group.alerts.get_mut(&entry.fingerprint) {
                    // A firing update must not reopen an alert that resolved
                    // with an older onset: it is a new alert (new starts_at).
                    Some(e) => *e = Entry { starts_at: e.starts_at.min(entry.starts_at), ..entry.clone() },
                    None => {
                        if entry.resolved(now) && group.alerts.is_empty() && group.log.iter().all(Option::is_none) {
                            // A resolution for something nobody was told about.
                            continue;
                        }
                        group.alerts.insert(entry.fingerprint, entry.clone());
                    }
                }
            }
        }
        self.groups.retain(|_, g| !g.alerts.is_empty() || g.log.iter().any(Option::is_some));
    }

    /// When the next group is due, if any.
    pub fn next_due(&self) -> Option<i64> {
        self.groups.values().filter(|g| !g.alerts.is_empty()).map(|g| g.next_flush).min()
    }

    /// Flushes every group due at `now` and returns what must be sent.
    pub fn flush_due(&mut self, now: i64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for (key, g) in self.groups.iter_mut() {
            if g.next_flush > now || g.alerts.is_empty() {
                continue;
            }
            g.next_flush = now + g.route.group_interval.as_millis();
            let integrations = self.receivers.get(&g.route.receiver).cloned().unwrap_or_default();
            let firing: HashSet<u64> = g.alerts.values().filter(|e| !e.resolved(now)).map(|e| e.fingerprint).collect();
            let resolved: HashSet<u64> = g.alerts.values().filter(|e| e.resolved(now)).map(|e| e.fingerprint).collect();
            let group_key = format!("{}:{}", g.route.id, g.labels);
            for (i, integ) in integrations.iter().enumerate() {
                if g.log.len() <= i {
                    g.log.resize(i + 1, None);
                }
                let send_resolved = integ.send_resolved();
                let resolved_seen: HashSet<u64> = if send_resolved { resolved.clone() } else { HashSet::new() };
                if !needs_update(g.log[i].as_ref(), &firing, &resolved_seen, send_resolved, g.route.repeat_interval.as_millis(), now) {
                    continue;
                }
                g.log[i] = Some(LogEntry { firing: firing.clone(), resolved: resolved_seen.clone(), at: now });
                let alerts: Vec<NotifiedAlert> = g
                    .alerts
                    .values()
                    .filter(|e| !e.resolved(now) || send_resolved)
                    .map(|e| notified(e, now, &self.external_url))
                    .collect();
                if alerts.is_empty() {
                    continue;
                }
                out.push(Outgoing {
                    integration: integ.clone(),
                    notification: Notification::new(&g.route.receiver, group_key.clone(), g.labels.clone(), alerts, &self.external_url),
                });
            }
            // Resolved alerts have been reported; forget them.
            g.alerts.retain(|_, e| !e.resolved(now));
            if g.alerts.is_empty() {
                dead.push(key.clone());
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
        mut reconfigure: mpsc::UnboundedReceiver<(Route, HashMap<String, Vec<Integration>>)>,
    ) {
        loop {
            let now = Utc::now().timestamp_millis();
            let sleep_ms = self.next_due().map(|d| (d - now).max(0)).unwrap_or(3_600_000);
            tokio::select! {
                batch = rx.recv() => {
                    let Some(batch) = batch else { return };
                    self.ingest(&batch, Utc::now().timestamp_millis());
                }
                Some((root, receivers)) = reconfigure.recv() => self.reconfigure(root, receivers),
                _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
            }
            for o in self.flush_due(Utc::now().timestamp_millis()) {
                let sender = self.webhook.clone();
                tokio::spawn(deliver(sender, o));
            }
        }
    }
}

/// Alertmanager's dedup rule: notify when a firing alert is new to this
/// integration, when everything resolved (to clear its log), when a new
/// resolution is wanted, or when the repeat interval has passed.
fn needs_update(
    entry: Option<&LogEntry>,
    firing: &HashSet<u64>,
    resolved: &HashSet<u64>,
    send_resolved: bool,
    repeat_ms: i64,
    now: i64,
) -> bool {
    let Some(e) = entry else { return !firing.is_empty() };
    if !firing.is_subset(&e.firing) {
        return true;
    }
    if firing.is_empty() {
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return true;
    }
    now - e.at >= repeat_ms
}

fn entry_for(a: &Alert, batch: &AlertBatch) -> Entry {
    let ends_at = match (a.state, a.resolved_at) {
        (AlertState::Inactive, Some(r)) => r,
        _ => batch.at + batch.valid_for_ms,
    };
    Entry {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: a.fired_at.unwrap_or(a.active_at),
        ends_at,
        fingerprint: a.labels.fingerprint(),
    }
}

fn ts(ms: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn notified(e: &Entry, now: i64, external_url: &str) -> NotifiedAlert {
    let resolved = e.resolved(now);
    NotifiedAlert {
        status: if resolved { Status::Resolved } else { Status::Firing },
        labels: e.labels.clone(),
        annotations: e.annotations.clone(),
        starts_at: ts(e.starts_at),
        ends_at: resolved.then(|| ts(e.ends_at)),
        generator_url: format!("{}/api/v1/alerts?alertname={}", external_url, e.labels.value("alertname")),
        fingerprint: format!("{:016x}", e.fingerprint),
    }
}

/// Sends one notification, retrying transient failures with exponential
/// backoff and jitter for up to an hour.
pub async fn deliver(webhook: super::webhook::WebhookSender, o: Outgoing) {
    let kind = o.integration.kind();
    let receiver = o.notification.receiver.clone();
    let started = std::time::Instant::now();
    let max_age = Duration::from_secs(3600);
    let mut attempt: u32 = 0;
    loop {
        let result: Result<(), DeliveryError> = match &o.integration {
            Integration::Webhook(cfg) => webhook.send(cfg, &o.notification).await,
            Integration::Email(cfg) => super::email::send(cfg, &o.notification).await,
            Integration::Console => {
                super::console::ConsoleReceiver.print(&o.notification);
                Ok(())
            }
        };
        match result {
            Ok(()) => {
                metrics::counter!("forewarn_notifications_sent_total", "receiver" => receiver.clone(), "integration" => kind).increment(1);
                metrics::histogram!("forewarn_notification_latency_seconds", "integration" => kind)
                    .record(started.elapsed().as_secs_f64());
                tracing::info!(receiver = %receiver, integration = kind, status = o.notification.status.as_str(), alerts = o.notification.alerts.len(), "notification delivered");
                return;
            }
            Err(e) => {
                metrics::counter!("forewarn_notifications_failed_total", "receiver" => receiver.clone(), "integration" => kind).increment(1);
                if !e.is_retryable() || started.elapsed() > max_age {
                    tracing::error!(receiver = %receiver, integration = kind, error = %e, "notification dropped");
                    return;
                }
                attempt += 1;
                let base = 500u64.saturating_mul(1 << attempt.min(7)).min(60_000);
                let wait = base / 2 + fastrand::u64(0..=base / 2);
                tracing::warn!(receiver = %receiver, integration = kind, error = %e, attempt, retry_in_ms = wait, "notification failed");
                metrics::counter!("forewarn_notifications_retried_total", "integration" => kind).increment(1);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;

    fn alert(name: &str, job: &str, state: AlertState, at: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name), ("job", job)]),
            annotations: Labels::new(),
            state,
            value: 1.0,
            active_at: at,
            fired_at: Some(at),
            resolved_at: (state == AlertState::Inactive).then_some(at),
            last_seen: at,
            keep_firing_since: None,
        }
    }

    fn dispatcher(y: &str) -> Dispatcher {
        let cfg: RouteConfig = crate::config::yaml::parse("r", y).unwrap();
        let mut receivers = HashMap::new();
        receivers.insert("team".to_string(), vec![Integration::Console]);
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
}
