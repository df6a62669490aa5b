//! The state dir: everything that must survive a restart.
//!
//! Deploy markers, silences, alert state (`alerts::persist`) and the
//! notification outbox live in one SQLite file, `state.db`, in
//! `storage.path`; samples live beside it in `samples/` (`store`). Each
//! module owns its tables and creates them on open; this module opens
//! connections the same way everywhere (WAL, so readers never block the
//! writer; a busy timeout, so two connections queue instead of failing),
//! keeps the format version of `state.db` and migrates older ones at start
//! ([`MIGRATIONS`]), and keeps the registry of write faults ([`faults`])
//! behind `/-/ready` and `forewarn_storage_write_failures_total`.
//!
//! A state dir that cannot be written at start (full, read-only, a file in
//! its place) does not stop the daemon: [`StateDir::open_or_fallback`]
//! logs a loud error, sets the fault, and continues on a private copy in
//! memory (`/dev/shm`), so alerting goes on and what the old state knew
//! (the notification log, saved alerts, silences) still holds. Without a
//! `storage.path` (tests, the demo) state goes to a fresh private temp dir
//! ([`StateDir::ephemeral`]) and so lasts only as long as the process.

use std::path::{Path, PathBuf};

/// Why the state dir could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state dir {path}: {source} (check storage.path and its permissions)")]
    Io { path: String, source: std::io::Error },
    #[error("state database {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("state database {path} has format {found}, newer than the {supported} this forewarn reads (written by a newer release: run that one, or move the state dir away)")]
    TooNew { path: String, found: i64, supported: i64 },
}

/// The format versions of `state.db` (its `PRAGMA user_version`) and how to
/// reach each from the one before, applied in order in one transaction.
/// Version 0 is every state dir written before versions were kept (up to
/// commit be55a76): outbox, nflog, silences and deploy markers, each table
/// created by its module. Tables a module adds with `CREATE TABLE IF NOT
/// EXISTS` need no migration; a change to an existing table does.
pub const MIGRATIONS: &[(i64, &str)] = &[
    // 1: alert state (`alerts::persist`) is kept. Rows of an alert_state
    // table from a pre-release build without `hold_from_ms` cannot exist
    // (the table is new), so this step only records the version.
    (1, ""),
];

/// The newest format this build writes.
pub fn state_format() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Where state is kept.
#[derive(Clone, Debug)]
pub struct StateDir {
    pub path: PathBuf,
}

impl StateDir {
    /// Uses (and creates) `path`.
    pub fn new(path: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(path).map_err(|source| StateError::Io { path: path.display().to_string(), source })?;
        Ok(StateDir { path: path.to_path_buf() })
    }

    /// A fresh private directory under the system temp dir, for runs
    /// without `storage.path`: state then lasts as long as the process.
    pub fn ephemeral() -> Result<Self, StateError> {
        let n = fastrand::u64(..);
        let path = std::env::temp_dir().join(format!("forewarn-state-{}-{n:016x}", std::process::id()));
        StateDir::new(&path)
    }

    /// The configured state dir when `state.db` can be migrated and
    /// written there; otherwise a private copy in memory (see the module
    /// doc), with a loud error and a fault that keeps `/-/ready` at 503.
    pub fn open_or_fallback(path: Option<&Path>) -> Result<StateDir, StateError> {
        let Some(path) = path else { return StateDir::ephemeral() };
        let checked = StateDir::new(path).and_then(|d| d.migrate().map(|()| d));
        let err = match checked {
            Ok(d) => return Ok(d),
            Err(e) => e,
        };
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        remove_dead_copies(&base);
        let n = fastrand::u64(..);
        let fallback = StateDir::new(&base.join(format!("forewarn-state-{}-{n:016x}", std::process::id())))?;
        let mut copied = Vec::new();
        for f in ["state.db", "state.db-wal"] {
            if std::fs::copy(path.join(f), fallback.path.join(f)).is_ok() {
                copied.push(f);
            }
        }
        tracing::error!(dir = %path.display(), error = %err, fallback = %fallback.path.display(), copied = ?copied,
            "STATE DIR NOT WRITABLE: notification log, alert state, silences and deploy markers are kept in memory \
             only (a copy of what was there) and lost on restart; free space or fix permissions, then restart");
        faults().failed(WriteKind::Sqlite, "state dir", &err);
        if let Err(e) = fallback.migrate() {
            tracing::error!(error = %e, "the copied state.db cannot be used either; starting with empty state");
            for f in ["state.db", "state.db-wal", "state.db-shm"] {
                let _ = std::fs::remove_file(fallback.path.join(f));
            }
        }
        Ok(fallback)
    }

    /// Brings `state.db` to [`state_format`] and proves it writable (a
    /// full disk fails here, not at the first notification).
    pub fn migrate(&self) -> Result<(), StateError> {
        let path = self.path.join("state.db").display().to_string();
        let err = |source| StateError::Sqlite { path: path.clone(), source };
        let mut conn = self.open_db()?;
        let tx = conn.transaction().map_err(err)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
        let supported = state_format();
        if found > supported {
            return Err(StateError::TooNew { path, found, supported });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", version).map_err(err)?;
            tracing::info!(path = %path, from = found, to = version, "state.db migrated");
        }
        // The write probe: cheap, and it fails on a full or read-only disk.
        tx.execute_batch("CREATE TABLE IF NOT EXISTS state_probe (x INTEGER); INSERT INTO state_probe VALUES (1); DELETE FROM state_probe;")
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Opens a connection to `state.db` with the settings every module uses.
    pub fn open_db(&self) -> Result<rusqlite::Connection, StateError> {
        let path = self.path.join("state.db");
        let err = |source| StateError::Sqlite { path: path.display().to_string(), source };
        let conn = rusqlite::Connection::open(&path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        // NORMAL is durable against process crashes (kill -9) in WAL mode;
        // only an OS crash may lose the last transactions.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        Ok(conn)
    }
}

/// Removes in-memory state copies left by processes that are gone (a
/// daemon restarted again and again on a full disk must not fill RAM).
fn remove_dead_copies(base: &Path) {
    let Ok(items) = std::fs::read_dir(base) else { return };
    for item in items.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("forewarn-state-").and_then(|r| r.split('-').next()) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(item.path());
        }
    }
}

/// The kinds of state-dir writes whose failures are counted
/// (`forewarn_storage_write_failures_total{what}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteKind {
    /// The sample WAL.
    Wal,
    /// Sample snapshots (checkpoints).
    Snapshot,
    /// `state.db`: alert state, outbox, silences, deploy markers.
    Sqlite,
}

impl WriteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteKind::Wal => "wal",
            WriteKind::Snapshot => "snapshot",
            WriteKind::Sqlite => "sqlite",
        }
    }
}

/// How often a persisting fault is logged again (not at every flush).
const FAULT_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug)]
struct Fault {
    since: std::time::Instant,
    last_log: std::time::Instant,
    failures_since_log: u64,
    error: String,
}

/// Write faults of the state dir, one per (kind, writer): the failing ones
/// make `/-/ready` answer 503, each is counted in
/// `forewarn_storage_write_failures_total{what}` and logged at most once a
/// minute while it lasts, and once more when it clears.
#[derive(Debug, Default)]
pub struct Faults {
    open: std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str), Fault>>,
}

/// The process's fault registry (one state dir per process, like the
/// metrics recorder): writers deep in the store and notifier report here
/// without threading a handle through every constructor.
pub fn faults() -> &'static Faults {
    static FAULTS: std::sync::OnceLock<Faults> = std::sync::OnceLock::new();
    FAULTS.get_or_init(Faults::default)
}

impl Faults {
    /// Records a failed write by `writer` (e.g. "alerts", "outbox").
    pub fn failed(&self, kind: WriteKind, writer: &'static str, error: &dyn std::fmt::Display) {
        let what = kind.as_str();
        metrics::counter!("forewarn_storage_write_failures_total", "what" => what).increment(1);
        let now = std::time::Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.len();
        match open.get_mut(&(what, writer)) {
            Some(f) => {
                f.failures_since_log += 1;
                f.error = error.to_string();
                if now.duration_since(f.last_log) >= FAULT_LOG_EVERY {
                    tracing::error!(what, writer, error = %f.error, failures = f.failures_since_log,
                        failing_for_s = now.duration_since(f.since).as_secs(), "state dir: writes still failing");
                    f.last_log = now;
                    f.failures_since_log = 0;
                }
            }
            None => {
                tracing::error!(what, writer, error = %error, "state dir: write failed; /-/ready answers 503 until writes succeed again");
                let fault = Fault { since: now, last_log: now, failures_since_log: 0, error: error.to_string() };
                open.insert((what, writer), fault);
            }
        }
        if n != open.len() {
            metrics::gauge!("forewarn_storage_faults").set(open.len() as f64);
        }
    }

    /// Records a successful write by `writer`: clears its fault, if any.
    pub fn ok(&self, kind: WriteKind, writer: &'static str) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.is_empty() {
            return;
        }
        if let Some(f) = open.remove(&(kind.as_str(), writer)) {
            tracing::warn!(
                what = kind.as_str(),
                writer,
                failing_for_s = f.since.elapsed().as_secs(),
                "state dir: writes succeed again"
            );
            metrics::gauge!("forewarn_storage_faults").set(open.len() as f64);
        }
    }

    /// The failing writes, as "what/writer: error", for `/-/ready`.
    pub fn failing(&self) -> Vec<String> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.iter().map(|((what, writer), f)| format!("{what}/{writer}: {}", f.error)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_and_persists() {
        let dir = StateDir::ephemeral().unwrap();
        {
            let c = dir.open_db().unwrap();
            c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (42);").unwrap();
        }
        let c = dir.open_db().unwrap();
        let x: i64 = c.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 42);
        let _ = std::fs::remove_dir_all(&dir.path);
    }
}
