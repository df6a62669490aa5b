//! The `storage` section of `forewarn.yml`: the state dir, how long
//! samples are kept, and how often they reach the disk.

use std::path::PathBuf;

use serde::Deserialize;

use crate::byte_size::ByteSize;
use crate::duration::PromDuration;

/// Where state lives and how long samples are kept.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// The state dir; the systemd unit sets it to /var/lib/forewarn.
    pub path: Option<PathBuf>,
    #[serde(default = "default_retention")]
    pub retention: PromDuration,
    /// Keep 5-minute min/max/avg/count aggregates this long (off when unset).
    #[serde(default)]
    pub downsample_retention: Option<PromDuration>,
    /// How often the sample WAL is written and synced: a crash loses at most this much.
    #[serde(default = "default_wal_fsync_interval")]
    pub wal_fsync_interval: PromDuration,
    /// How often to check whether a snapshot is due: one is written (and the
    /// WAL truncated) when the WAL since the last one has reached a quarter
    /// of that snapshot's size, so snapshots cost in proportion to what
    /// arrives, not to what is retained (`durable::checkpoint_due`).
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval: PromDuration,
    /// A series that ended (went stale) this long ago leaves memory with
    /// its samples, as Prometheus's head GC (bounded memory under label
    /// churn); `0s` keeps every series for the whole retention.
    #[serde(default = "default_stale_series_retention")]
    pub stale_series_retention: PromDuration,
    /// WAL segments that a `remote_write` queue has not sent yet are kept
    /// past a snapshot, up to this many bytes (oldest deleted first).
    #[serde(default = "default_remote_write_wal_limit")]
    pub remote_write_wal_limit: ByteSize,
}

fn default_remote_write_wal_limit() -> ByteSize {
    ByteSize(1 << 30)
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: None,
            retention: default_retention(),
            downsample_retention: None,
            wal_fsync_interval: default_wal_fsync_interval(),
            snapshot_interval: default_snapshot_interval(),
            stale_series_retention: default_stale_series_retention(),
            remote_write_wal_limit: default_remote_write_wal_limit(),
        }
    }
}

fn default_wal_fsync_interval() -> PromDuration {
    PromDuration::from_secs(1)
}

fn default_stale_series_retention() -> PromDuration {
    PromDuration::from_secs(2 * 3600)
}

fn default_snapshot_interval() -> PromDuration {
    PromDuration::from_secs(300)
}

fn default_retention() -> PromDuration {
    PromDuration::from_secs(8 * 86_400)
}
