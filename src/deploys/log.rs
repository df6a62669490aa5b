//! The durable marker log: one SQLite table in the state dir.
//!
//! Markers are few (a handful per service per day), so every read is a plain
//! indexed range query and nothing is cached. The log also carries the
//! current `deploys` settings (swapped on reload) and an optional chart hook,
//! so the notifier needs a single handle to add "what changed" and a chart
//! to each alert.

use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rusqlite::{params, Connection, OptionalExtension};

use super::correlate::{correlate, Correlation, MatchOptions};
use super::{DeploysConfig, DeploysError, Kind, Marker};
use crate::labels::Labels;
use crate::state::StateDir;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deploy_markers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    commit_id TEXT,
    url TEXT,
    by_whom TEXT,
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS deploy_markers_at ON deploy_markers(at_ms);
CREATE INDEX IF NOT EXISTS deploy_markers_service_at ON deploy_markers(service, at_ms);
";

/// Renders a PNG chart of an alert: (fingerprint, onset, resolution, now).
pub type ChartHook = Box<dyn Fn(u64, i64, Option<i64>, i64) -> Option<Vec<u8>> + Send + Sync>;

/// Markers in the state dir, plus what correlation needs to use them.
pub struct DeployLog {
    conn: Mutex<Connection>,
    path: String,
    settings: RwLock<DeploysConfig>,
    chart: OnceLock<ChartHook>,
    pub(crate) png_cache: Mutex<super::notes::PngCache>,
}

impl std::fmt::Debug for DeployLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployLog").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Which markers to list.
#[derive(Clone, Debug, Default)]
pub struct MarkerQuery {
    pub service: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    /// 0 = no limit. With a limit, the newest markers are kept.
    pub limit: usize,
}

impl DeployLog {
    /// Opens (and creates) the marker table in `dir`.
    pub fn open(dir: &StateDir, settings: DeploysConfig) -> Result<Arc<DeployLog>, DeploysError> {
        let conn = dir.open_db()?;
        let path = dir.path.join("state.db").display().to_string();
        conn.execute_batch(SCHEMA).map_err(|source| DeploysError::Sqlite { path: path.clone(), source })?;
        Ok(Arc::new(DeployLog {
            conn: Mutex::new(conn),
            path,
            settings: RwLock::new(settings),
            chart: OnceLock::new(),
            png_cache: Mutex::new(Default::default()),
        }))
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> DeploysError + '_ {
        |source| DeploysError::Sqlite { path: self.path.clone(), source }
    }

    pub fn settings(&self) -> DeploysConfig {
        self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swaps the settings (on config reload).
    pub fn set_settings(&self, s: DeploysConfig) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// Installs the chart renderer (once; later calls are ignored).
    pub fn set_chart_hook(&self, hook: ChartHook) {
        let _ = self.chart.set(hook);
    }

    /// A PNG chart of the alert with `fingerprint`, if a renderer is installed
    /// and the alert's series can be drawn.
    pub fn chart_png(&self, fingerprint: u64, onset: i64, resolved: Option<i64>, now: i64) -> Option<Vec<u8>> {
        self.chart.get().and_then(|f| f(fingerprint, onset, resolved, now))
    }

    /// Stores `m` and returns it with its id. Refuses a marker over
    /// `deploys.max_marker_bytes`; first drops markers past
    /// `deploys.retention` and, at `deploys.max_markers`, the oldest.
    pub fn insert(&self, m: &Marker) -> Result<Marker, DeploysError> {
        let labels = serde_json::to_string(&m.labels).unwrap_or_else(|_| "{}".into());
        let settings = self.settings();
        let size = serde_json::to_string(m).map(|s| s.len()).unwrap_or(usize::MAX);
        let max = settings.max_marker_bytes.0 as usize;
        if max > 0 && size > max {
            metrics::counter!("forewarn_deploy_markers_refused_total").increment(1);
            return Err(DeploysError::Field {
                field: "marker".into(),
                message: format!("{size} bytes, more than deploys.max_marker_bytes ({max})"),
            });
        }
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let cutoff = chrono::Utc::now().timestamp_millis() - settings.retention.as_millis();
        conn.execute("DELETE FROM deploy_markers WHERE at_ms < ?1", params![cutoff]).map_err(self.err())?;
        if settings.max_markers > 0 {
            conn.execute(
                "DELETE FROM deploy_markers WHERE id IN (SELECT id FROM deploy_markers ORDER BY at_ms, id \
                 LIMIT max(0, (SELECT count(*) FROM deploy_markers) - ?1 + 1))",
                params![settings.max_markers as i64],
            )
            .map_err(self.err())?;
        }
        let res = conn.execute(
            "INSERT INTO deploy_markers (service, version, kind, at_ms, commit_id, url, by_whom, labels)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![m.service, m.version, m.kind.as_str(), m.at, m.commit, m.url, m.by, labels],
        );
        // Counted and shown on /-/ready like every state-dir write.
        match &res {
            Ok(_) => crate::state::faults().ok(crate::state::WriteKind::Sqlite, "deploy_markers"),
            Err(e) => crate::state::faults().failed(crate::state::WriteKind::Sqlite, "deploy_markers", e),
        }
        res.map_err(self.err())?;
        let id = conn.last_insert_rowid();
        drop(conn);
        metrics::counter!("forewarn_deploy_markers_total", "kind" => m.kind.as_str()).increment(1);
        tracing::info!(service = %m.service, version = %m.version, kind = m.kind.as_str(), at = m.at, id, "deploy marker recorded");
        Ok(Marker { id, ..m.clone() })
    }

    /// Markers in `[from_ms, to_ms]`, oldest first.
    pub fn query(&self, q: &MarkerQuery) -> Result<Vec<Marker>, DeploysError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let limit = if q.limit == 0 { -1 } else { q.limit as i64 };
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, service, version, kind, at_ms, commit_id, url, by_whom, labels FROM deploy_markers
                 WHERE at_ms >= ?1 AND at_ms <= ?2 AND (?3 IS NULL OR service = ?3)
                 ORDER BY at_ms DESC, id DESC LIMIT ?4",
            )
            .map_err(self.err())?;
        let rows = stmt.query_map(params![q.from_ms, q.to_ms, q.service, limit], row_to_marker).map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(self.err())?);
        }
        out.reverse();
        Ok(out)
    }

    /// The newest deploy or rollback of `service`, and the distinct version
    /// that ran before it (for telling a rollback from a deploy).
    pub fn last_versions(&self, service: &str) -> Result<Option<(String, Option<String>)>, DeploysError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let last: Option<String> = conn
            .query_row(
                "SELECT version FROM deploy_markers WHERE service = ?1 AND kind IN ('deploy', 'rollback')
                 ORDER BY at_ms DESC, id DESC LIMIT 1",
                params![service],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        let Some(last) = last else { return Ok(None) };
        let prev: Option<String> = conn
            .query_row(
                "SELECT version FROM deploy_markers WHERE service = ?1 AND kind IN ('deploy', 'rollback')
                 AND version != ?2 ORDER BY at_ms DESC, id DESC LIMIT 1",
                params![service, last],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        Ok(Some((last, prev)))
    }

    /// When the process behind `labels` was replaced in `[from, to]`
    /// (deploy, rollback or restart markers), for trend rules' window cuts.
    pub fn restart_times(&self, labels: &Labels, from: i64, to: i64) -> Vec<i64> {
        let opts = MatchOptions::from(&self.settings());
        let q = MarkerQuery { service: None, from_ms: from, to_ms: to, limit: 10_000 };
        match self.query(&q) {
            Ok(markers) => super::correlate::restart_times(labels, &markers, &opts),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read deploy markers for trend window cuts");
                Vec::new()
            }
        }
    }

    /// Correlates one alert with the stored markers. A storage error is
    /// logged and yields `None`: a notification without notes beats none.
    pub fn correlate_alert(&self, labels: &Labels, onset: i64, resolved: Option<i64>, now: i64) -> Option<Correlation> {
        let opts = MatchOptions::from(&self.settings());
        let q = MarkerQuery {
            service: None,
            from_ms: onset - opts.lookback_ms,
            to_ms: resolved.unwrap_or(now),
            limit: 10_000,
        };
        match self.query(&q) {
            Ok(markers) => Some(correlate(labels, onset, resolved, now, &markers, &opts)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read deploy markers; notification goes out without recent changes");
                None
            }
        }
    }
}

fn row_to_marker(r: &rusqlite::Row<'_>) -> rusqlite::Result<Marker> {
    let kind: String = r.get(3)?;
    let labels: String = r.get(8)?;
    Ok(Marker {
        id: r.get(0)?,
        service: r.get(1)?,
        version: r.get(2)?,
        kind: Kind::parse(&kind).unwrap_or(Kind::Deploy),
        at: r.get(4)?,
        commit: r.get(5)?,
        url: r.get(6)?,
        by: r.get(7)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(service: &str, version: &str, kind: Kind, at: i64) -> Marker {
        Marker {
            id: 0,
            service: service.into(),
            version: version.into(),
            kind,
            at,
            commit: Some("abc".into()),
            url: None,
            by: None,
            labels: [("env".to_string(), "prod".to_string())].into(),
        }
    }

    /// Settings that keep the 1970 markers these tests use.
    fn forever() -> DeploysConfig {
        DeploysConfig { retention: crate::duration::PromDuration::from_secs(100 * 365 * 86_400), ..Default::default() }
    }

    #[test]
    fn retention_count_and_size_limits() {
        let dir = StateDir::ephemeral().unwrap();
        let log = DeployLog::open(&dir, DeploysConfig { max_markers: 2, ..forever() }).unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        for (i, v) in ["1", "2", "3"].iter().enumerate() {
            log.insert(&m("checkout", v, Kind::Deploy, now - 3_000 + i as i64 * 1000)).unwrap();
        }
        let q = MarkerQuery { from_ms: 0, to_ms: now + 1, ..Default::default() };
        let kept: Vec<String> = log.query(&q).unwrap().into_iter().map(|m| m.version).collect();
        assert_eq!(kept, vec!["2", "3"], "the oldest goes at max_markers");
        log.set_settings(DeploysConfig { retention: crate::duration::PromDuration::from_secs(3600), ..forever() });
        log.insert(&m("checkout", "4", Kind::Deploy, now)).unwrap();
        log.insert(&m("old", "0", Kind::Deploy, now - 7_200_000)).unwrap();
        log.insert(&m("checkout", "5", Kind::Deploy, now)).unwrap();
        assert!(log.query(&q).unwrap().iter().all(|m| m.service != "old"), "past retention is deleted");
        log.set_settings(DeploysConfig { max_marker_bytes: crate::byte_size::ByteSize(100), ..forever() });
        let mut big = m("checkout", "6", Kind::Deploy, now);
        big.url = Some(format!("https://x/{}", "y".repeat(200)));
        let e = log.insert(&big).unwrap_err().to_string();
        assert!(e.contains("deploys.max_marker_bytes"), "{e}");
        let _ = std::fs::remove_dir_all(&dir.path);
    }

    #[test]
    fn stores_queries_and_survives_reopen() {
        let dir = StateDir::ephemeral().unwrap();
        {
            let log = DeployLog::open(&dir, forever()).unwrap();
            log.insert(&m("checkout", "1", Kind::Deploy, 1_000)).unwrap();
            log.insert(&m("checkout", "2", Kind::Deploy, 2_000)).unwrap();
            log.insert(&m("payments", "7", Kind::Deploy, 3_000)).unwrap();
        }
        let log = DeployLog::open(&dir, forever()).unwrap();
        let all = log.query(&MarkerQuery { from_ms: 0, to_ms: 10_000, ..Default::default() }).unwrap();
        assert_eq!(all.iter().map(|m| m.at).collect::<Vec<_>>(), vec![1_000, 2_000, 3_000]);
        assert_eq!(all[0].labels.get("env").map(String::as_str), Some("prod"));
        let q = MarkerQuery { service: Some("checkout".into()), from_ms: 1_500, to_ms: 10_000, limit: 0 };
        let some = log.query(&q).unwrap();
        assert_eq!(some.len(), 1);
        assert_eq!(some[0].version, "2");
        assert_eq!(log.last_versions("checkout").unwrap(), Some(("2".into(), Some("1".into()))));
        assert_eq!(log.last_versions("nobody").unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir.path);
    }
}
