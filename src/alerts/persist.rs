//! Alert state that survives a restart: the `alert_state`, `alert_groups`
//! and `rule_kind_state` tables of `state.db`.
//!
//! After each group evaluation the rule manager hands the group's alerts
//! here. Only what a restart must know is written (state, `activeAt`,
//! onset, `for` progress, firing and resolution times, the
//! `keep_firing_for` clock, plus the rule kinds' memory such as a
//! threshold's hysteresis), and only when it changed, in one transaction
//! per evaluation together with the group's evaluation time, the "last
//! seen alive" an outage is measured from. So a steady firing alert costs
//! one tiny row update per evaluation of its group, not a row per alert.
//!
//! At start the saved alerts go back into their rules before the first
//! evaluation, with Prometheus's semantics (`--rules.alert.for-outage-tolerance`,
//! `--rules.alert.for-grace-period`), made stricter where Prometheus lets a
//! restart show:
//! - an outage longer than `for_outage_tolerance` (1h) restores nothing;
//! - firing and resolved alerts come back as they were (same `activeAt`,
//!   onset and firing time), so neither `/api/v1/alerts` nor a receiver
//!   sees the restart;
//! - pending alerts keep `activeAt` and onset; the time they had been
//!   pending before the outage counts toward `for`, the outage does not,
//!   and they fire no sooner than `for_grace_period` (10m, or their `for`
//!   if shorter) after the restart, so the rule first sees fresh data.
//!
//! Rules are matched by file, group, name, label templates and position
//! among equal rules; the state of a rule that no longer exists (or whose
//! labels changed) is dropped with a log line.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use rusqlite::{params, Connection};
use serde::Deserialize;

use super::state::{Alert, AlertState, AlertingRule};
use crate::duration::PromDuration;
use crate::labels::Labels;
use crate::state::{StateDir, StateError};

/// How saved alert state is restored at start (`rules.alert` in the config).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RestoreOptions {
    /// Longest outage after which alert state is still restored
    /// (Prometheus's `--rules.alert.for-outage-tolerance`).
    #[serde(default = "default_outage_tolerance")]
    pub for_outage_tolerance: PromDuration,
    /// Least time between a start and the firing of a restored pending
    /// alert (Prometheus's `--rules.alert.for-grace-period`).
    #[serde(default = "default_grace_period")]
    pub for_grace_period: PromDuration,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions { for_outage_tolerance: default_outage_tolerance(), for_grace_period: default_grace_period() }
    }
}

fn default_outage_tolerance() -> PromDuration {
    PromDuration::from_secs(3600)
}

fn default_grace_period() -> PromDuration {
    PromDuration::from_secs(600)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_groups (
    group_key TEXT PRIMARY KEY,
    last_eval_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_state (
    group_key TEXT NOT NULL,
    rule_key TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    state TEXT NOT NULL,
    value REAL,
    active_at_ms INTEGER NOT NULL,
    hold_from_ms INTEGER NOT NULL,
    onset_ms INTEGER NOT NULL,
    fired_at_ms INTEGER,
    resolved_at_ms INTEGER,
    last_seen_ms INTEGER NOT NULL,
    keep_firing_since_ms INTEGER,
    PRIMARY KEY (rule_key, fingerprint)
);
CREATE INDEX IF NOT EXISTS alert_state_group ON alert_state (group_key);
CREATE TABLE IF NOT EXISTS rule_kind_state (
    group_key TEXT NOT NULL,
    rule_key TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
";

/// An alert as saved: the alert and the start of its `for` clock.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedAlert {
    pub alert: Alert,
    pub hold_from: i64,
}

/// What was saved for one group.
#[derive(Debug, Default)]
pub struct SavedGroup {
    pub last_eval: i64,
    /// Alerts by rule key.
    pub alerts: HashMap<String, Vec<SavedAlert>>,
    /// Rule kinds' memory by rule key.
    pub kinds: HashMap<String, serde_json::Value>,
}

/// The fields whose change is worth a write (value and annotations follow
/// at the next evaluation after a restart).
#[derive(Clone, Debug, PartialEq)]
struct Written {
    state: AlertState,
    active_at: i64,
    hold_from: i64,
    onset: i64,
    fired_at: Option<i64>,
    resolved_at: Option<i64>,
    keep_firing_since: Option<i64>,
}

impl Written {
    fn of(a: &Alert, hold_from: i64) -> Self {
        Written {
            state: a.state,
            active_at: a.active_at,
            hold_from,
            onset: a.onset,
            fired_at: a.fired_at,
            resolved_at: a.resolved_at,
            keep_firing_since: a.keep_firing_since,
        }
    }
}

#[derive(Default)]
struct GroupWritten {
    alerts: HashMap<(String, u64), Written>,
    kinds: HashMap<String, String>,
}

/// The alert state tables behind one connection.
pub struct AlertStateStore {
    conn: Mutex<Connection>,
    path: String,
    /// What the database holds, per group key, so only changes are written.
    written: Mutex<HashMap<String, GroupWritten>>,
}

fn state_name(s: AlertState) -> &'static str {
    s.as_str()
}

fn parse_state(s: &str) -> Option<AlertState> {
    match s {
        "pending" => Some(AlertState::Pending),
        "firing" => Some(AlertState::Firing),
        "inactive" => Some(AlertState::Inactive),
        _ => None,
    }
}

fn labels_json(l: &Labels) -> String {
    serde_json::to_string(l).unwrap_or_else(|_| "{}".into())
}

fn labels_from_json(s: &str) -> Option<Labels> {
    let m: BTreeMap<String, String> = serde_json::from_str(s).ok()?;
    Some(Labels::from_pairs(m))
}

impl AlertStateStore {
    /// Opens (and creates) the alert state tables in the state dir.
    pub fn open(dir: &StateDir) -> Result<AlertStateStore, StateError> {
        let conn = dir.open_db()?;
        let path = dir.path.join("state.db").display().to_string();
        conn.execute_batch(SCHEMA).map_err(|source| StateError::Sqlite { path: path.clone(), source })?;
        Ok(AlertStateStore { conn: Mutex::new(conn), path, written: Mutex::new(HashMap::new()) })
    }

    fn err(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite { path: self.path.clone(), source }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything saved, by group key. Rows that cannot be read are logged
    /// and skipped. What is loaded counts as written: rows no rule claims
    /// are deleted by the next [`AlertStateStore::save_group`] or
    /// [`AlertStateStore::forget_groups_except`].
    pub fn load(&self) -> Result<HashMap<String, SavedGroup>, StateError> {
        let conn = self.conn();
        let mut out: HashMap<String, SavedGroup> = HashMap::new();
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.clear();
        {
            let mut st = conn.prepare("SELECT group_key, last_eval_ms FROM alert_groups").map_err(|e| self.err(e))?;
            let rows =
                st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(|e| self.err(e))?;
            for row in rows {
                let (g, t) = row.map_err(|e| self.err(e))?;
                out.entry(g.clone()).or_default().last_eval = t;
                written.entry(g).or_default();
            }
        }
        let mut st = conn
            .prepare(
                "SELECT group_key, rule_key, fingerprint, labels, annotations, state, value, active_at_ms, \
                 hold_from_ms, onset_ms, fired_at_ms, resolved_at_ms, last_seen_ms, keep_firing_since_ms FROM alert_state",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)? as u64,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<f64>>(6)?,
                    [r.get::<_, i64>(7)?, r.get::<_, i64>(8)?, r.get::<_, i64>(9)?, r.get::<_, i64>(12)?],
                    [r.get::<_, Option<i64>>(10)?, r.get::<_, Option<i64>>(11)?, r.get::<_, Option<i64>>(13)?],
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (g, rule, fp, labels, annotations, state, value, [active_at, hold_from, onset, last_seen], opt) =
                row.map_err(|e| self.err(e))?;
            let parsed = (labels_from_json(&labels), labels_from_json(&annotations), parse_state(&state));
            let (Some(labels), Some(annotations), Some(state)) = parsed else {
                tracing::warn!(rule = %rule, "saved alert state unreadable; skipped");
                continue;
            };
            let alert = Alert {
                labels,
                annotations,
                state,
                value: value.unwrap_or(f64::NAN),
                active_at,
                onset,
                fired_at: opt[0],
                resolved_at: opt[1],
                last_seen,
                keep_firing_since: opt[2],
                // Redrawn by the rule kind at its next evaluation.
                overlay: None,
            };
            written.entry(g.clone()).or_default().alerts.insert((rule.clone(), fp), Written::of(&alert, hold_from));
            out.entry(g).or_default().alerts.entry(rule).or_default().push(SavedAlert { alert, hold_from });
        }
        drop(st);
        let mut st = conn.prepare("SELECT group_key, rule_key, state FROM rule_kind_state").map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (g, rule, json) = row.map_err(|e| self.err(e))?;
            let Ok(v) = serde_json::from_str(&json) else { continue };
            written.entry(g.clone()).or_default().kinds.insert(rule.clone(), json);
            out.entry(g).or_default().kinds.insert(rule, v);
        }
        Ok(out)
    }

    /// Writes what changed in one group's alerts since the last call, and
    /// the group's evaluation time `t` while it holds any alert. Returns
    /// the number of rows written or deleted. On error nothing is assumed
    /// written: the next call tries the whole group again. Each rule comes
    /// with its key and its rule kind's memory (`rule_kind_state`), if any.
    pub fn save_group(
        &self,
        group_key: &str,
        t: i64,
        rules: &[(String, &AlertingRule, Option<serde_json::Value>)],
    ) -> Result<usize, StateError> {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let before = written.remove(group_key).unwrap_or_default();
        let mut now = GroupWritten::default();
        let mut upserts = Vec::new();
        for (key, rule, kind_state) in rules {
            for (a, hold_from) in rule.saved_alerts() {
                let w = Written::of(a, hold_from);
                let k = (key.clone(), a.fingerprint());
                if before.alerts.get(&k) != Some(&w) {
                    upserts.push((key.as_str(), a, hold_from));
                }
                now.alerts.insert(k, w);
            }
            if let Some(v) = kind_state {
                now.kinds.insert(key.clone(), v.to_string());
            }
        }
        let deletes: Vec<&(String, u64)> = before.alerts.keys().filter(|k| !now.alerts.contains_key(*k)).collect();
        let kind_changes: Vec<(&String, &String)> =
            now.kinds.iter().filter(|(k, v)| before.kinds.get(*k) != Some(*v)).collect();
        let kind_deletes: Vec<&String> = before.kinds.keys().filter(|k| !now.kinds.contains_key(*k)).collect();
        let has_alerts = !now.alerts.is_empty();
        let had_alerts = !before.alerts.is_empty();
        let n = upserts.len() + deletes.len() + kind_changes.len() + kind_deletes.len();
        if n == 0 && !has_alerts && !had_alerts {
            written.insert(group_key.to_string(), now);
            return Ok(0);
        }
        let result = (|| -> Result<(), rusqlite::Error> {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            // Cached statements: the group of the always-firing Watchdog
            // writes at every evaluation, and preparing the statements
            // each time was over a third of its cost.
            for (rule_key, a, hold_from) in &upserts {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO alert_state (group_key, rule_key, fingerprint, labels, annotations, state, \
                     value, active_at_ms, hold_from_ms, onset_ms, fired_at_ms, resolved_at_ms, last_seen_ms, keep_firing_since_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )?
                .execute(
                    params![
                        group_key,
                        rule_key,
                        a.fingerprint() as i64,
                        labels_json(&a.labels),
                        labels_json(&a.annotations),
                        state_name(a.state),
                        a.value.is_finite().then_some(a.value),
                        a.active_at,
                        hold_from,
                        a.onset,
                        a.fired_at,
                        a.resolved_at,
                        a.last_seen,
                        a.keep_firing_since,
                    ],
                )?;
            }
            for (rule_key, fp) in &deletes {
                tx.prepare_cached("DELETE FROM alert_state WHERE rule_key = ?1 AND fingerprint = ?2")?
                    .execute(params![rule_key, *fp as i64])?;
            }
            for (rule_key, json) in &kind_changes {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO rule_kind_state (group_key, rule_key, state) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![group_key, rule_key, json])?;
            }
            for rule_key in &kind_deletes {
                tx.prepare_cached("DELETE FROM rule_kind_state WHERE rule_key = ?1")?.execute(params![rule_key])?;
            }
            if has_alerts {
                tx.prepare_cached("INSERT OR REPLACE INTO alert_groups (group_key, last_eval_ms) VALUES (?1, ?2)")?
                    .execute(params![group_key, t])?;
            } else {
                tx.prepare_cached("DELETE FROM alert_groups WHERE group_key = ?1")?.execute(params![group_key])?;
            }
            tx.commit()
        })();
        match result {
            Ok(()) => {
                written.insert(group_key.to_string(), now);
                metrics::counter!("forewarn_alert_state_writes_total").increment(n as u64);
                Ok(n)
            }
            Err(e) => {
                // Unknown what reached the disk: rewrite the whole group next time
                // (rows already absent are harmless to delete again).
                let mut all = before;
                all.alerts.extend(now.alerts.into_iter().map(|(k, mut w)| {
                    w.active_at = i64::MIN;
                    (k, w)
                }));
                all.kinds.clear();
                written.insert(group_key.to_string(), all);
                Err(self.err(e))
            }
        }
    }

    /// Deletes the state of every group not in `keep` (removed by a reload
    /// or gone from the rule files while forewarn was down).
    pub fn forget_groups_except(&self, keep: &std::collections::HashSet<String>) -> Result<usize, StateError> {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = written.keys().filter(|g| !keep.contains(*g)).cloned().collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for g in &gone {
            for table in ["alert_groups", "alert_state", "rule_kind_state"] {
                tx.execute(&format!("DELETE FROM {table} WHERE group_key = ?1"), params![g])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        for g in &gone {
            written.remove(g);
        }
        Ok(gone.len())
    }
}

/// When a restored pending alert may fire: the start of its `for` clock
/// moved so that the outage does not count, and no sooner than the grace
/// period (or its `for`, if shorter) after `now`.
pub fn restored_hold_from(hold_from: i64, hold_ms: i64, down_at: i64, now: i64, grace_ms: i64) -> i64 {
    let spent = (down_at - hold_from).max(0);
    let remaining = hold_ms - spent;
    let wait = remaining.max(grace_ms.min(hold_ms));
    now + wait - hold_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_keeps_its_progress_and_waits_out_the_grace_period() {
        let (min, grace) = (60_000, 600_000);
        // 20 of 30 minutes pending, down 5 minutes: 10 minutes left, more than the grace.
        let from = restored_hold_from(0, 30 * min, 20 * min, 25 * min, grace);
        assert_eq!(from + 30 * min, 35 * min, "fires 10 minutes after the restart");
        // 28 of 30 minutes: the grace period (10m) wins over the 2 minutes left.
        let from = restored_hold_from(0, 30 * min, 28 * min, 29 * min, grace);
        assert_eq!(from + 30 * min, 39 * min);
        // A `for` shorter than the grace period waits its `for` at most.
        let from = restored_hold_from(0, 2 * min, min, 90 * 1000, grace);
        assert_eq!(from + 2 * min, 90 * 1000 + 2 * min);
    }
}
