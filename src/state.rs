//! The state dir: everything that must survive a restart.
//!
//! Deploy markers, silences, alert state and the notification outbox live
//! in one SQLite file, `state.db`, in `storage.path`. Each module owns its
//! tables and creates them on open; this module only opens connections the
//! same way everywhere (WAL, so readers never block the writer; a busy
//! timeout, so two connections queue instead of failing). Without a
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
