//! Durability: opening a store on a directory (`storage.path`/`samples/`),
//! recovering it after a clean stop or a crash, and checkpointing it.
//!
//! Recovery loads the newest snapshot, then replays the WAL segments after
//! it. Anything damaged (a torn WAL tail after kill -9, a flipped bit, a
//! stray file) is logged, listed in the [`RecoveryReport`] and skipped: a
//! bad file never keeps the daemon from starting. A checkpoint rotates the
//! WAL, writes a snapshot covering the closed segments, then deletes them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::memory::{Entry, Store, StoreOptions};
use super::snapshot::{self, snapshot_name};
use super::wal::{self, Record, Wal};
use crate::state::{faults, WriteKind};

/// Why the store's directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {what}: {source} (check storage.path, its permissions and free space)")]
    Io { path: String, what: &'static str, source: std::io::Error },
    #[error("the store is not durable (opened without a directory)")]
    NotDurable,
}

/// The parts of a store opened on a directory.
pub(crate) struct Durable {
    pub dir: PathBuf,
    pub wal: Wal,
    checkpoint_lock: Mutex<()>,
    /// WAL segments readers still need (remote write), by reader: the
    /// oldest segment each has not fully sent. A checkpoint keeps them.
    holds: Mutex<HashMap<String, u64>>,
}

/// Held WAL segments beyond this many bytes are deleted anyway (oldest
/// first): a remote that is down for days must not fill the disk.
/// `storage.remote_write_wal_limit`.
pub(crate) static WAL_HOLD_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 30);

/// What [`Store::open`] found.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    pub snapshot: Option<String>,
    pub wal_segments: usize,
    pub series: usize,
    pub samples: usize,
    pub wal_samples_replayed: u64,
    /// Samples in the WAL for a series whose record was lost.
    pub wal_samples_unknown_series: u64,
    /// Each damaged or unreadable file, with where and why.
    pub problems: Vec<String>,
    /// Why new samples are kept in memory only (the WAL could not be
    /// started: a full or read-only disk).
    pub not_durable: Option<String>,
    pub elapsed: Duration,
}

impl RecoveryReport {
    fn problem(&mut self, p: String) {
        tracing::warn!(problem = %p, "store recovery: damaged data skipped");
        metrics::counter!("forewarn_store_recovery_problems_total").increment(1);
        self.problems.push(p);
    }
}

/// The number in `prefix-NNNNNNNN`, if `name` is one.
fn numbered(name: &str, prefix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.strip_prefix('-')?.parse().ok()
}

impl Store {
    /// Opens (or creates) a durable store in `dir`; see [`Store::open_with`].
    pub fn open(dir: &Path, retention_ms: i64) -> Result<(Store, RecoveryReport), StoreError> {
        Store::open_with(dir, StoreOptions::new(retention_ms))
    }

    /// Opens a durable store in `dir`: recovers snapshot + WAL, drops what
    /// is past retention, and starts a new WAL segment. Fails only when the
    /// directory itself cannot be used; damaged files are in the report.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<(Store, RecoveryReport), StoreError> {
        let started = Instant::now();
        let io = |what| move |source| StoreError::Io { path: dir.display().to_string(), what, source };
        std::fs::create_dir_all(dir).map_err(io("cannot create the samples directory"))?;
        let (mut snapshots, mut segments) = (Vec::new(), Vec::new());
        for item in std::fs::read_dir(dir).map_err(io("cannot list the samples directory"))? {
            let name =
                item.map_err(io("cannot list the samples directory"))?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(dir.join(&name)); // an interrupted snapshot
            } else if let Some(n) = numbered(&name, "snapshot") {
                snapshots.push(n);
            } else if let Some(n) = numbered(&name, "wal") {
                segments.push(n);
            }
        }
        snapshots.sort_unstable();
        segments.sort_unstable();

        let store = Store::with_options(options);
        let mut report = RecoveryReport::default();
        let mut refs: HashMap<u64, Arc<Entry>> = HashMap::new();
        let mut max_ref = 0u64;
        let downsample = options.downsample_retention_ms.is_some();
        let covered = snapshots.last().copied().unwrap_or(0);
        if let Some(&n) = snapshots.last() {
            let name = snapshot_name(n);
            match std::fs::read(dir.join(&name)) {
                Ok(bytes) => {
                    let problems = snapshot::read(&name, &bytes, downsample, &mut |l| {
                        max_ref = max_ref.max(l.r);
                        let e = store.get_or_create(&l.labels, Some(l.r));
                        *e.lock() = l.data;
                        refs.insert(l.r, e);
                    });
                    problems.into_iter().for_each(|p| report.problem(p));
                }
                Err(e) => report.problem(format!("{}: cannot read: {e}; skipped", dir.join(&name).display())),
            }
            report.snapshot = Some(name);
        }
        for &n in segments.iter().filter(|&&n| n > covered) {
            let name = wal::segment_name(n);
            let bytes = match std::fs::read(dir.join(&name)) {
                Ok(b) => b,
                Err(e) => {
                    report.problem(format!("{}: cannot read: {e}; skipped", dir.join(&name).display()));
                    continue;
                }
            };
            report.wal_segments += 1;
            let (mut replayed, mut unknown) = (0u64, 0u64);
            let problems = wal::replay(&name, &bytes, &mut |rec| match rec {
                Record::Series { r, labels } => {
                    max_ref = max_ref.max(r);
                    refs.insert(r, store.get_or_create(&labels, Some(r)));
                }
                Record::Sample { r, t, v } => {
                    max_ref = max_ref.max(r);
                    match refs.get(&r) {
                        Some(e) => {
                            e.lock().push(t, v);
                            replayed += 1;
                        }
                        None => unknown += 1,
                    }
                }
            });
            problems.into_iter().for_each(|p| report.problem(p));
            report.wal_samples_replayed += replayed;
            report.wal_samples_unknown_series += unknown;
        }
        if report.wal_samples_unknown_series > 0 {
            let n = report.wal_samples_unknown_series;
            report.problem(format!("{}: {n} WAL samples name a series whose record was lost; skipped", dir.display()));
        }
        drop(refs);
        store.next_ref.store(max_ref + 1, std::sync::atomic::Ordering::Relaxed);
        store.compact(chrono::Utc::now().timestamp_millis());

        let next_segment = segments.last().copied().unwrap_or(0).max(covered) + 1;
        let mut store = store;
        match Wal::create(dir, next_segment) {
            Ok(wal) => {
                store.durable = Some(Durable {
                    dir: dir.to_path_buf(),
                    wal,
                    checkpoint_lock: Mutex::new(()),
                    holds: Mutex::new(HashMap::new()),
                })
            }
            // A full or read-only disk: what was recovered is served, new
            // samples live in memory only (and /-/ready says so).
            Err(e) => report.not_durable = Some(e.to_string()),
        }
        let st = store.stats();
        (report.series, report.samples) = (st.series, st.samples);
        report.elapsed = started.elapsed();
        metrics::gauge!("forewarn_store_recovery_seconds").set(report.elapsed.as_secs_f64());
        Ok((store, report))
    }

    /// Writes buffered WAL records to disk and syncs them.
    pub fn flush_wal(&self) -> Result<(), StoreError> {
        self.durable.as_ref().ok_or(StoreError::NotDurable)?.wal.flush()
    }

    /// Whether WAL records wait to be written (false for an in-memory store).
    pub fn wal_pending(&self) -> bool {
        self.durable.as_ref().is_some_and(|d| d.wal.has_pending())
    }

    /// Bytes of WAL written since the last checkpoint (0 for an in-memory
    /// store).
    pub fn wal_bytes_since_checkpoint(&self) -> u64 {
        self.durable.as_ref().map_or(0, |d| d.wal.segment_bytes())
    }

    /// Snapshots every series and deletes the WAL segments the snapshot
    /// covers; returns the snapshot's size in bytes.
    pub fn checkpoint(&self) -> Result<u64, StoreError> {
        let d = self.durable.as_ref().ok_or(StoreError::NotDurable)?;
        let _one_at_a_time = d.checkpoint_lock.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let n = d.wal.rotate()?;
        // Listed after the rotation: every record in segments <= n is
        // already in memory, so the snapshot covers them.
        let size = snapshot::write(&d.dir, n, &self.entries())?;
        let held_from = d.holds.lock().unwrap_or_else(|e| e.into_inner()).values().copied().min().unwrap_or(u64::MAX);
        if let Ok(items) = std::fs::read_dir(&d.dir) {
            let mut held = Vec::new();
            for name in items.flatten().map(|i| i.file_name().to_string_lossy().into_owned()) {
                let wal_n = numbered(&name, "wal");
                if wal_n.is_some_and(|m| m <= n && m >= held_from) {
                    let size = std::fs::metadata(d.dir.join(&name)).map_or(0, |m| m.len());
                    held.push((wal_n.unwrap_or(0), name, size));
                    continue;
                }
                let old = numbered(&name, "snapshot").is_some_and(|m| m < n) || wal_n.is_some_and(|m| m <= n);
                if old {
                    remove_old(&d.dir, &name);
                }
            }
            // Segments a remote still needs stay, up to the limit.
            held.sort_unstable();
            let mut total: u64 = held.iter().map(|h| h.2).sum();
            let limit = WAL_HOLD_LIMIT.load(std::sync::atomic::Ordering::Relaxed);
            for (_, name, size) in held {
                if total <= limit {
                    break;
                }
                tracing::warn!(file = %name, limit, "store: WAL segment held for remote write deleted: over storage.remote_write_wal_limit; the remote misses its samples");
                metrics::counter!("forewarn_store_wal_held_segments_deleted_total").increment(1);
                remove_old(&d.dir, &name);
                total -= size;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        metrics::histogram!("forewarn_store_snapshot_duration_seconds").record(secs);
        metrics::gauge!("forewarn_store_snapshot_bytes").set(size as f64);
        metrics::gauge!("forewarn_store_last_snapshot_timestamp_seconds").set(chrono::Utc::now().timestamp() as f64);
        tracing::debug!(bytes = size, seconds = secs, "store: snapshot written");
        super::memory::return_free_memory();
        Ok(size)
    }

    /// The WAL's directory, for readers that follow it; `None` for an
    /// in-memory store.
    pub fn wal_dir(&self) -> Option<&Path> {
        self.durable.as_ref().map(|d| d.dir.as_path())
    }

    /// Keeps WAL segment `segment` and later ones from being deleted by
    /// checkpoints on behalf of `reader` (up to `storage.remote_write_wal_limit`).
    pub fn hold_wal(&self, reader: &str, segment: u64) {
        if let Some(d) = &self.durable {
            d.holds.lock().unwrap_or_else(|e| e.into_inner()).insert(reader.to_string(), segment);
        }
    }

    /// Clean shutdown: flush the WAL and write a final snapshot, so the
    /// next start reads one file. Errors are logged (the WAL still holds
    /// the data).
    pub fn shutdown(&self) {
        if self.durable.is_none() {
            return;
        }
        if let Err(e) = self.flush_wal().and_then(|()| self.checkpoint()) {
            tracing::error!(error = %e, "store: final snapshot failed; the WAL will be replayed on the next start");
        } else {
            tracing::info!("store: final snapshot written");
        }
    }
}

fn remove_old(dir: &Path, name: &str) {
    if let Err(e) = std::fs::remove_file(dir.join(name)) {
        tracing::warn!(file = %dir.join(name).display(), error = %e, "store: cannot delete old file");
    }
}

impl RecoveryReport {
    /// Logs the outcome at info (warn when something was skipped).
    pub fn log(&self, dir: &Path) {
        let dir = dir.display();
        let ms = self.elapsed.as_millis() as u64;
        if self.problems.is_empty() {
            tracing::info!(%dir, series = self.series, samples = self.samples, wal_samples = self.wal_samples_replayed, ms, "store recovered");
        } else {
            tracing::warn!(%dir, series = self.series, samples = self.samples, problems = self.problems.len(), ms, "store recovered with damaged data skipped");
        }
    }
}

/// Opens the store `storage` asks for: durable in `path/samples` when a
/// path is set, in memory otherwise.
pub fn open_configured(storage: &super::StorageConfig) -> Result<Store, StoreError> {
    let options = StoreOptions {
        retention_ms: storage.retention.as_millis(),
        downsample_retention_ms: storage.downsample_retention.map(|d| d.as_millis()),
        stale_series_retention_ms: Some(storage.stale_series_retention.as_millis()).filter(|&ms| ms > 0),
    };
    WAL_HOLD_LIMIT.store(storage.remote_write_wal_limit.0, std::sync::atomic::Ordering::Relaxed);
    let Some(path) = &storage.path else { return Ok(Store::with_options(options)) };
    let dir = path.join("samples");
    let (store, report) = match Store::open_with(&dir, options) {
        Ok(opened) => opened,
        // Alerting without durable history beats no alerting at all.
        Err(e) => {
            (Store::with_options(options), RecoveryReport { not_durable: Some(e.to_string()), ..Default::default() })
        }
    };
    report.log(&dir);
    if let Some(why) = &report.not_durable {
        tracing::error!(dir = %dir.display(), error = %why,
            "STORE NOT DURABLE: samples are kept in memory only and lost on restart; free space or fix permissions, then restart");
        crate::state::faults().failed(WriteKind::Wal, "store", why);
    }
    Ok(store)
}

/// A snapshot rewrites every sample in memory, so taking one every
/// `snapshot_interval` would cost in proportion to the data retained (days
/// of it), not to what arrived: at 8 days and 50,000 series that is GBs
/// every few minutes. Instead one is due when the WAL written since the last
/// one has reached a quarter of that snapshot's size (the samples in the
/// WAL take ~8x the bytes they take in chunks): snapshots then cost a
/// bounded multiple of the WAL writes, a restart replays about a quarter of
/// the snapshot's size in WAL (checked every `snapshot_interval`), and an
/// idle store writes none. The first
/// one after a start (size unknown) is due whenever the WAL holds anything.
fn checkpoint_due(wal_bytes: u64, last_snapshot: Option<u64>) -> bool {
    match last_snapshot {
        None => wal_bytes > 0,
        Some(size) => wal_bytes > 0 && wal_bytes >= size / 4,
    }
}

/// Starts the WAL flusher and the periodic snapshot of a durable store
/// (nothing for an in-memory one). Needs a tokio runtime.
pub fn spawn_persistence(store: &Arc<Store>, storage: &super::StorageConfig) {
    if store.durable.is_none() {
        return;
    }
    let every =
        |d: crate::duration::PromDuration, min: u64| Duration::from_millis(d.as_millis().max(min as i64) as u64);
    let (flush_every, snapshot_every) = (every(storage.wal_fsync_interval, 10), every(storage.snapshot_interval, 1000));
    let s = store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(flush_every);
        loop {
            tick.tick().await;
            // Nothing new (a quiet second between 15 s scrapes): no thread
            // hand-off and no fdatasync, which would cost an idle daemon
            // most of its CPU.
            if !s.wal_pending() {
                continue;
            }
            let s = s.clone();
            // Failures are counted, logged once a minute and turn /-/ready
            // to 503 (crate::state::Faults), not logged at every flush.
            match tokio::task::spawn_blocking(move || s.flush_wal()).await {
                Ok(Ok(())) => faults().ok(WriteKind::Wal, "store"),
                Ok(Err(e)) => faults().failed(WriteKind::Wal, "store", &e),
                Err(e) => faults().failed(WriteKind::Wal, "store", &e),
            }
        }
    });
    let s = store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(snapshot_every);
        tick.tick().await; // the first tick is immediate; recovery just ran
        let mut last_size: Option<u64> = None;
        loop {
            tick.tick().await;
            if !checkpoint_due(s.wal_bytes_since_checkpoint(), last_size) {
                continue;
            }
            let s = s.clone();
            // A failed snapshot leaves the WAL growing until one succeeds.
            match tokio::task::spawn_blocking(move || s.checkpoint()).await {
                Ok(Ok(size)) => {
                    last_size = Some(size);
                    faults().ok(WriteKind::Snapshot, "store")
                }
                Ok(Err(e)) => faults().failed(WriteKind::Snapshot, "store", &e),
                Err(e) => faults().failed(WriteKind::Snapshot, "store", &e),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::checkpoint_due;

    #[test]
    fn a_checkpoint_is_due_once_the_wal_reaches_a_quarter_of_the_snapshot() {
        // After a start: whenever anything was logged.
        assert!(!checkpoint_due(0, None));
        assert!(checkpoint_due(1, None));
        // Nothing new: never, however small the snapshot.
        assert!(!checkpoint_due(0, Some(0)));
        assert!(!checkpoint_due(0, Some(1000)));
        assert!(!checkpoint_due(249, Some(1000)));
        assert!(checkpoint_due(250, Some(1000)));
        assert!(checkpoint_due(1, Some(3)));
    }
}
