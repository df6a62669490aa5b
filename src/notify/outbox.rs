//! The durable outbox and the notification log, in SQLite in the state dir.
//!
//! A flush of the dispatcher commits, in one transaction, the notifications
//! it decided to send and what each integration of each group is now told
//! (Alertmanager's nflog). Only then does anything go on the wire, from
//! [`run_worker`], which retries with exponential backoff and jitter until a
//! notification is delivered, fails permanently, or is older than `max_age`.
//! So a crash (even `kill -9`) at any point loses nothing queued, and after a
//! restart the loaded log stops the dispatcher from re-sending what was
//! already queued or delivered. The one window left is a crash between a
//! receiver's 2xx and the row's deletion, which re-sends that one message.
//!
//! A newer notification for the same group and integration carries the
//! group's whole current state, so it supersedes older queued ones: after an
//! outage a receiver gets one up-to-date message per group, not a backlog,
//! and never an old state after a newer one (one delivery per key at a time).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use tokio::sync::{mpsc, Notify};

use super::integration::{deliver_once, find_integration, Receivers, SendContext};
use super::pipeline::LogEntry;
use super::{DeliveryError, Notification};
use crate::labels::Labels;
use crate::state::{StateDir, StateError};

/// Why the outbox could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Silences(#[from] super::silence::SilenceError),
    #[error("outbox in {path}: {source} (check the state dir's disk space and permissions)")]
    Sqlite { path: String, source: rusqlite::Error },
}

/// A change to the notification log, committed with the notifications.
#[derive(Clone, Debug, PartialEq)]
pub enum LogChange {
    Set {
        group_key: String,
        integration: String,
        entry: LogEntry,
    },
    /// The group is gone (everything resolved and reported).
    DeleteGroup {
        group_key: String,
    },
}

/// One notification waiting to go out.
#[derive(Clone, Debug)]
pub struct Queued {
    pub id: i64,
    pub group_key: String,
    /// `receiver/kind/index`, see [`integration_key`](crate::notify::integration::integration_key).
    pub integration: String,
    pub notification: Notification,
    pub created_ms: i64,
    pub attempts: u32,
}

/// The outbox tables behind one connection.
pub struct Outbox {
    conn: Mutex<Connection>,
    path: String,
    /// Wakes the worker when something was queued.
    pub wake: Notify,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_key TEXT NOT NULL,
    integration TEXT NOT NULL,
    notification TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_key ON outbox (group_key, integration, id);
CREATE TABLE IF NOT EXISTS nflog (
    group_key TEXT NOT NULL,
    integration TEXT NOT NULL,
    firing TEXT NOT NULL,
    resolved TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (group_key, integration)
);
";

impl Outbox {
    /// Opens (and creates) the outbox tables in the state dir.
    pub fn open(dir: &StateDir) -> Result<Outbox, OutboxError> {
        let conn = dir.open_db()?;
        let path = dir.path.join("state.db").display().to_string();
        conn.execute_batch(SCHEMA).map_err(|source| OutboxError::Sqlite { path: path.clone(), source })?;
        let ob = Outbox { conn: Mutex::new(conn), path, wake: Notify::new() };
        ob.update_gauge();
        Ok(ob)
    }

    fn err(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError::Sqlite { path: self.path.clone(), source }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a flush: new notifications (superseding older queued ones of
    /// the same group and integration) and the log changes, atomically.
    pub fn commit(&self, items: &[(String, Notification)], log: &[LogChange], now: i64) -> Result<(), OutboxError> {
        if items.is_empty() && log.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for (integration, n) in items {
            let json =
                serde_json::to_string(n).map_err(|e| self.err(rusqlite::Error::ToSqlConversionFailure(e.into())))?;
            let superseded = tx
                .execute(
                    "DELETE FROM outbox WHERE group_key = ?1 AND integration = ?2",
                    params![n.group_key, integration],
                )
                .map_err(|e| self.err(e))?;
            if superseded > 0 {
                tracing::debug!(group_key = %n.group_key, integration = %integration, superseded, "newer notification replaces queued ones");
            }
            tx.execute(
                "INSERT INTO outbox (group_key, integration, notification, created_ms, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![n.group_key, integration, json, now],
            )
            .map_err(|e| self.err(e))?;
        }
        for c in log {
            match c {
                LogChange::Set { group_key, integration, entry } => {
                    tx.execute(
                        "INSERT OR REPLACE INTO nflog (group_key, integration, firing, resolved, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![group_key, integration, fps(&entry.firing), fps(&entry.resolved), entry.at],
                    )
                    .map_err(|e| self.err(e))?;
                }
                LogChange::DeleteGroup { group_key } => {
                    tx.execute("DELETE FROM nflog WHERE group_key = ?1", params![group_key])
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        drop(conn);
        self.update_gauge();
        if !items.is_empty() {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The notification log as last committed, without entries older than
    /// `retention_ms` (groups whose alerts vanished while forewarn was down).
    pub fn load_log(
        &self,
        now: i64,
        retention_ms: i64,
    ) -> Result<HashMap<String, HashMap<String, LogEntry>>, OutboxError> {
        let conn = self.conn();
        conn.execute("DELETE FROM nflog WHERE at_ms < ?1", params![now - retention_ms]).map_err(|e| self.err(e))?;
        let mut stmt = conn
            .prepare("SELECT group_key, integration, firing, resolved, at_ms FROM nflog")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out: HashMap<String, HashMap<String, LogEntry>> = HashMap::new();
        for row in rows {
            let (g, i, firing, resolved, at) = row.map_err(|e| self.err(e))?;
            let entry = LogEntry { firing: parse_fps(&firing), resolved: parse_fps(&resolved), at };
            out.entry(g).or_default().insert(i, entry);
        }
        Ok(out)
    }

    /// The oldest queued notification of each group and integration that is
    /// due at `now`, skipping the keys in `busy` (being delivered).
    pub fn due(&self, now: i64, busy: &HashSet<(String, String)>, limit: usize) -> Result<Vec<Queued>, OutboxError> {
        let conn = self.conn();
        // Cached: the worker asks on every wake-up, and parsing the query
        // again each time cost more than running it on an empty table.
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, group_key, integration, notification, created_ms, attempts FROM outbox o
                 WHERE next_attempt_ms <= ?1
                   AND id = (SELECT MIN(id) FROM outbox p WHERE p.group_key = o.group_key AND p.integration = o.integration)
                 ORDER BY next_attempt_ms, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![now], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, u32>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        let mut broken = Vec::new();
        for row in rows {
            let (id, group_key, integration, json, created_ms, attempts) = row.map_err(|e| self.err(e))?;
            if busy.contains(&(group_key.clone(), integration.clone())) {
                continue;
            }
            match serde_json::from_str::<Notification>(&json) {
                Ok(notification) => out.push(Queued { id, group_key, integration, notification, created_ms, attempts }),
                Err(e) => {
                    tracing::error!(id, group_key = %group_key, error = %e, "outbox: unreadable notification dropped (written by another version?)");
                    broken.push(id);
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        drop(stmt);
        for id in broken {
            conn.execute("DELETE FROM outbox WHERE id = ?1", params![id]).map_err(|e| self.err(e))?;
        }
        Ok(out)
    }

    /// When the earliest queued notification is due, if any.
    pub fn next_attempt(&self) -> Result<Option<i64>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT MIN(next_attempt_ms) FROM outbox").map_err(|e| self.err(e))?;
        stmt.query_row([], |r| r.get::<_, Option<i64>>(0)).optional().map(Option::flatten).map_err(|e| self.err(e))
    }

    /// Removes a notification (delivered, failed for good, or expired).
    pub fn remove(&self, id: i64) -> Result<(), OutboxError> {
        self.conn().execute("DELETE FROM outbox WHERE id = ?1", params![id]).map_err(|e| self.err(e))?;
        self.update_gauge();
        Ok(())
    }

    /// Schedules another attempt.
    pub fn retry_at(&self, id: i64, at: i64, attempts: u32, error: &str) -> Result<(), OutboxError> {
        self.conn()
            .execute(
                "UPDATE outbox SET next_attempt_ms = ?2, attempts = ?3, last_error = ?4 WHERE id = ?1",
                params![id, at, attempts, error],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// How many notifications are queued.
    pub fn len(&self) -> usize {
        self.conn().query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0)).unwrap_or(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The queue's length and when its oldest notification was queued
    /// (seconds; 0 when empty), read in one query.
    fn update_gauge(&self) {
        let (len, oldest_ms) = self
            .conn()
            .query_row("SELECT COUNT(*), MIN(created_ms) FROM outbox", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .unwrap_or((0, None));
        metrics::gauge!("forewarn_notifications_queued").set(len as f64);
        let oldest = oldest_ms.map_or(0.0, |ms| ms as f64 / 1000.0);
        metrics::gauge!("forewarn_notifications_oldest_queued_timestamp_seconds").set(oldest);
    }
}

fn fps(s: &HashSet<u64>) -> String {
    let mut v: Vec<String> = s.iter().map(|f| format!("{f:016x}")).collect();
    v.sort();
    v.join(",")
}

fn parse_fps(s: &str) -> HashSet<u64> {
    s.split(',').filter(|x| !x.is_empty()).filter_map(|x| u64::from_str_radix(x, 16).ok()).collect()
}

/// How long to wait before attempt `attempts + 1`: exponential from 500 ms,
/// capped at `max`, with jitter over the upper half so that many
/// notifications failing together do not retry in lockstep.
pub fn backoff_ms(attempts: u32, max_ms: u64) -> u64 {
    let base = 500u64.saturating_mul(1u64 << attempts.min(20)).min(max_ms.max(1));
    base / 2 + fastrand::u64(0..=base / 2)
}

/// Delivery settings.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// A notification not delivered within this long is dropped.
    pub max_age_ms: i64,
    /// The longest wait between two attempts.
    pub max_backoff_ms: u64,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions { max_age_ms: 24 * 3600 * 1000, max_backoff_ms: 60_000 }
    }
}

type Done = (Queued, &'static str, Result<(), DeliveryError>);

/// Delivers what the outbox holds until the process ends. Reads the clock:
/// this is the edge of the pipeline, where time is real.
pub async fn run_worker(outbox: Arc<Outbox>, receivers: Receivers, ctx: SendContext, opts: WorkerOptions) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut busy: HashSet<(String, String)> = HashSet::new();
    let mut unrecorded = Unrecorded::default();
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        unrecorded.record(&outbox);
        match outbox.due(now, &busy, 256) {
            Ok(due) => {
                for q in due {
                    if unrecorded.holds(q.id, now) {
                        continue;
                    }
                    let integ = {
                        let r = receivers.read().unwrap_or_else(|p| p.into_inner());
                        find_integration(&r, &q.integration)
                    };
                    let Some(integ) = integ else {
                        tracing::error!(integration = %q.integration, group_key = %q.group_key, "outbox: the receiver or integration is no longer configured; notification dropped");
                        metrics::counter!("forewarn_notifications_failed_total", "integration" => "unknown")
                            .increment(1);
                        let _ = unrecorded.remove(&outbox, q.id);
                        continue;
                    };
                    if now - q.created_ms > opts.max_age_ms {
                        expire(&outbox, &q, integ.kind(), "not delivered within max_age", &mut unrecorded);
                        continue;
                    }
                    busy.insert((q.group_key.clone(), q.integration.clone()));
                    let tx = done_tx.clone();
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        let r = deliver_once(&ctx, integ.as_ref(), &q.notification).await;
                        let _ = tx.send((q, integ.kind(), r));
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "outbox: cannot read queued notifications; retrying in 1s"),
        }
        let now = chrono::Utc::now().timestamp_millis();
        // Every commit wakes the worker (`outbox.wake`), so it need not poll
        // an empty outbox each second; it sleeps until the next attempt is
        // due, at most 30 s (a safety net should the wall clock jump).
        let next = outbox.next_attempt().ok().flatten().map_or(30_000, |t| (t - now).clamp(0, 30_000));
        // A due row whose key is busy, or whose outcome waits to be
        // recorded, must not spin the loop.
        let waiting = !busy.is_empty() || !unrecorded.is_empty();
        let sleep = if next == 0 && waiting { 1000 } else { next.max(5) };
        tokio::select! {
            _ = outbox.wake.notified() => {}
            Some(done) = done_rx.recv() => {
                busy.remove(&(done.0.group_key.clone(), done.0.integration.clone()));
                finish(&outbox, done, &opts, &mut unrecorded);
                while let Ok(d) = done_rx.try_recv() {
                    busy.remove(&(d.0.group_key.clone(), d.0.integration.clone()));
                    finish(&outbox, d, &opts, &mut unrecorded);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(sleep as u64)) => {}
        }
    }
}

fn expire(outbox: &Outbox, q: &Queued, kind: &'static str, why: &str, unrecorded: &mut Unrecorded) {
    tracing::error!(receiver = %q.notification.receiver, integration = kind, group_key = %q.group_key, attempts = q.attempts, reason = why, "notification dropped");
    metrics::counter!("forewarn_notifications_failed_total", "receiver" => q.notification.receiver.clone(), "integration" => kind)
        .increment(1);
    if let Err(e) = unrecorded.remove(outbox, q.id) {
        tracing::error!(id = q.id, receiver = %q.notification.receiver, error = %e, "outbox: cannot remove a dropped notification; held in memory until it can");
    }
}

/// Outcomes the outbox could not write down (state.db failing, e.g. a
/// full disk), kept by the worker until a write succeeds: a delivered (or
/// dropped) row must not be sent again while it is still queued, and a
/// failed one not before its backoff. Without this, such a row is due
/// again at once and is sent in a tight loop.
#[derive(Default)]
struct Unrecorded {
    /// Rows to remove: delivered or dropped.
    removals: HashSet<i64>,
    /// Row id -> (next attempt ms, attempts, last error).
    retries: HashMap<i64, (i64, u32, String)>,
}

impl Unrecorded {
    fn is_empty(&self) -> bool {
        self.removals.is_empty() && self.retries.is_empty()
    }

    /// Whether row `id` must not be sent at `now`.
    fn holds(&self, id: i64, now: i64) -> bool {
        self.removals.contains(&id) || self.retries.get(&id).is_some_and(|(at, _, _)| *at > now)
    }

    /// Removes row `id` (delivered or dropped), or holds it here if the
    /// removal fails.
    fn remove(&mut self, outbox: &Outbox, id: i64) -> Result<(), OutboxError> {
        outbox.remove(id).inspect_err(|_| {
            self.removals.insert(id);
        })
    }

    /// Tries the writes again; what succeeds is forgotten here.
    fn record(&mut self, outbox: &Outbox) {
        self.removals.retain(|id| outbox.remove(*id).is_err());
        self.retries.retain(|id, (at, attempts, err)| outbox.retry_at(*id, *at, *attempts, err).is_err());
    }
}

fn finish(outbox: &Outbox, (q, kind, result): Done, opts: &WorkerOptions, unrecorded: &mut Unrecorded) {
    let now = chrono::Utc::now().timestamp_millis();
    let receiver = q.notification.receiver.clone();
    match result {
        Ok(()) => {
            metrics::counter!("forewarn_notifications_sent_total", "receiver" => receiver.clone(), "integration" => kind).increment(1);
            let latency = (now - q.created_ms).max(0) as f64 / 1000.0;
            metrics::histogram!("forewarn_notification_delivery_latency_seconds", "integration" => kind)
                .record(latency);
            tracing::info!(receiver = %receiver, integration = kind, status = q.notification.status.as_str(), alerts = q.notification.alerts.len(), attempts = q.attempts + 1, latency_s = latency, "notification delivered");
            if let Err(e) = unrecorded.remove(outbox, q.id) {
                tracing::error!(id = q.id, receiver = %receiver, integration = kind, error = %e, "outbox: delivered but cannot remove; not sent again unless forewarn restarts before the removal succeeds");
            }
        }
        Err(e) if !e.is_retryable() => expire(outbox, &q, kind, &e.to_string(), unrecorded),
        Err(e) if now - q.created_ms > opts.max_age_ms => {
            expire(outbox, &q, kind, &format!("not delivered within max_age: {e}"), unrecorded)
        }
        Err(e) => {
            let attempts = q.attempts + 1;
            let wait = backoff_ms(q.attempts, opts.max_backoff_ms);
            metrics::counter!("forewarn_notifications_retried_total", "receiver" => receiver.clone(), "integration" => kind).increment(1);
            tracing::warn!(receiver = %receiver, integration = kind, error = %e, attempts, retry_in_ms = wait, "notification failed; will retry");
            let (at, err) = (now + wait as i64, e.to_string());
            if let Err(e) = outbox.retry_at(q.id, at, attempts, &err) {
                tracing::error!(id = q.id, receiver = %receiver, integration = kind, error = %e, "outbox: cannot schedule a retry; held in memory until it can");
                unrecorded.retries.insert(q.id, (at, attempts, err));
            }
        }
    }
}

/// Labels come back from the outbox's JSON as the map they were written as.
impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        Ok(Labels::from_pairs(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{NotifiedAlert, Status};

    fn note(group: &str, alertname: &str) -> Notification {
        let a = NotifiedAlert {
            status: Status::Firing,
            labels: Labels::from_pairs([("alertname", alertname)]),
            annotations: Labels::from_pairs([("summary", "s")]),
            starts_at: chrono::Utc::now(),
            ends_at: None,
            generator_url: "http://x".into(),
            fingerprint: "00".into(),
            notes: None,
        };
        Notification::new("team", group.into(), Labels::new(), vec![a], "http://fw")
    }

    #[test]
    fn queued_survives_reopen_and_newer_supersedes() {
        let dir = StateDir::ephemeral().unwrap();
        {
            let ob = Outbox::open(&dir).unwrap();
            ob.commit(&[("team/webhook/0".into(), note("g1", "A"))], &[], 0).unwrap();
            ob.commit(
                &[("team/webhook/0".into(), note("g1", "B")), ("team/webhook/0".into(), note("g2", "C"))],
                &[],
                10,
            )
            .unwrap();
            let entry = LogEntry { firing: [1u64, 2].into_iter().collect(), resolved: HashSet::new(), at: 10 };
            ob.commit(
                &[],
                &[LogChange::Set { group_key: "g1".into(), integration: "team/webhook/0".into(), entry }],
                10,
            )
            .unwrap();
        }
        let ob = Outbox::open(&dir).unwrap();
        let due = ob.due(10, &HashSet::new(), 10).unwrap();
        let names: Vec<&str> = due.iter().map(|q| q.notification.alerts[0].labels.value("alertname")).collect();
        assert_eq!(names, vec!["B", "C"], "A was superseded by B");
        assert_eq!(due[0].notification, note_eq(&due[0].notification));
        let log = ob.load_log(10, 1000).unwrap();
        assert_eq!(log["g1"]["team/webhook/0"].firing.len(), 2);
        // A busy key is skipped; a retry moves a row into the future.
        let busy: HashSet<_> = [("g1".to_string(), "team/webhook/0".to_string())].into_iter().collect();
        assert_eq!(ob.due(10, &busy, 10).unwrap().len(), 1);
        ob.retry_at(due[1].id, 5_000, 1, "boom").unwrap();
        assert_eq!(ob.due(10, &HashSet::new(), 10).unwrap().len(), 1);
        assert_eq!(ob.next_attempt().unwrap(), Some(10));
        ob.remove(due[0].id).unwrap();
        assert_eq!(ob.next_attempt().unwrap(), Some(5_000));
        // Old log entries are dropped on load.
        assert!(ob.load_log(10_000, 1000).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir.path);
    }

    /// state.db refusing writes (a full disk) while the worker finishes
    /// sends: a delivered row stays queued and due, so without the worker
    /// holding it, it went out again at once, thousands of times a second.
    #[test]
    fn outcomes_that_cannot_be_written_hold_their_rows_until_they_can() {
        let dir = StateDir::ephemeral().unwrap();
        let ob = Outbox::open(&dir).unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        let notes = [("team/webhook/0".into(), note("g1", "A")), ("team/webhook/0".into(), note("g2", "B"))];
        ob.commit(&notes, &[], now).unwrap();
        let due = ob.due(now, &HashSet::new(), 10).unwrap();
        assert_eq!(due.len(), 2);
        let opts = WorkerOptions { max_age_ms: 3_600_000, max_backoff_ms: 60_000 };
        let failed = DeliveryError::Retryable { receiver: "team".into(), message: "503".into() };
        ob.conn().execute_batch("PRAGMA query_only = 1").unwrap();
        let mut held = Unrecorded::default();
        finish(&ob, (due[0].clone(), "webhook", Ok(())), &opts, &mut held);
        finish(&ob, (due[1].clone(), "webhook", Err(failed)), &opts, &mut held);
        // Both rows are still queued and due; the worker holds them.
        assert_eq!(ob.due(now, &HashSet::new(), 10).unwrap().len(), 2);
        assert!(held.holds(due[0].id, now) && held.holds(due[1].id, now));
        assert!(!held.holds(due[1].id, now + 3_600_000), "a held retry is due after its backoff");
        held.record(&ob);
        assert!(!held.is_empty(), "writes still fail: still held");
        ob.conn().execute_batch("PRAGMA query_only = 0").unwrap();
        held.record(&ob);
        assert!(held.is_empty());
        assert!(ob.due(now, &HashSet::new(), 10).unwrap().is_empty(), "delivered removed, failed rescheduled");
        assert_eq!(ob.next_attempt().unwrap().map(|t| t > now), Some(true));
        let _ = std::fs::remove_dir_all(&dir.path);
    }

    fn note_eq(n: &Notification) -> Notification {
        serde_json::from_str(&serde_json::to_string(n).unwrap()).unwrap()
    }

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        for a in 0..30 {
            let b = backoff_ms(a, 60_000);
            let base = (500u64 << a.min(20)).min(60_000);
            assert!(b >= base / 2 && b <= base, "attempt {a}: {b}");
        }
        assert!(backoff_ms(0, 60_000) <= 500);
    }
}
