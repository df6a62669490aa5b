//! Remote write: every sample that reaches the store (scraped, recorded by
//! rules, `ALERTS`/`ALERTS_FOR_STATE`) is sent to Prometheus-compatible
//! receivers (`remote_write:` in the config) with the remote write 1.0
//! protocol, so many forewarn scrapers can feed one VictoriaMetrics,
//! Prometheus, Mimir or Thanos Receive.
//!
//! Queues are fed from the WAL, not from the append path: a receiver that
//! is down for a while, or a `kill -9` of forewarn, loses nothing that the
//! WAL still holds (segments a queue has not sent are kept past snapshots,
//! up to `storage.remote_write_wal_limit`). The cost is latency: a sample
//! leaves after the WAL's next flush (`storage.wal_fsync_interval`).
//!
//! - `config`: the `remote_write` entries, Prometheus's keys.
//! - `proto`: the `WriteRequest` protobuf and snappy encoding.
//! - `tail`: reading the WAL from a saved position.
//! - `queue`: batching, sharding, retries and the `forewarn_remote_storage_*` metrics.

mod config;
pub mod proto;
mod queue;
mod tail;

use std::sync::{Arc, Mutex};

pub use config::{ConfigError, QueueConfig, RemoteWriteConfig};

use crate::labels::Labels;
use crate::store::Store;

/// The config the queues run with, and their tasks.
type Running = (Vec<RemoteWriteConfig>, Labels, Vec<tokio::task::JoinHandle<()>>);

/// The running queues, restarted when a reload changes their config.
#[derive(Default)]
pub struct RemoteWrite {
    running: Mutex<Option<Running>>,
}

impl Drop for RemoteWrite {
    fn drop(&mut self) {
        if let Some((_, _, tasks)) = self.running.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            tasks.iter().for_each(|t| t.abort());
        }
    }
}

impl RemoteWrite {
    /// Starts (or, if changed, restarts) one queue per entry. Needs a tokio
    /// runtime and a durable store; an entry that cannot start is logged
    /// and skipped (its config was validated at load).
    pub fn apply(&self, cfgs: &[RemoteWriteConfig], external: &Labels, store: &Arc<Store>) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.as_ref().is_some_and(|(c, e, _)| c == cfgs && e == external) {
            return;
        }
        if let Some((_, _, tasks)) = running.take() {
            // The saved positions make a restart resend, not skip.
            tasks.iter().for_each(|t| t.abort());
        }
        let mut tasks = Vec::new();
        if !cfgs.is_empty() {
            match store.wal_dir() {
                None => tracing::error!(
                    "remote_write: the store has no write-ahead log (storage.path unset or unwritable); nothing is sent"
                ),
                Some(wal_dir) => {
                    let pos_dir = wal_dir.parent().unwrap_or(wal_dir).join("remote_write");
                    if let Err(e) = std::fs::create_dir_all(&pos_dir) {
                        tracing::error!(dir = %pos_dir.display(), error = %e, "remote_write: cannot create the directory for read positions; nothing is sent");
                    } else {
                        for cfg in cfgs {
                            let pos_file = pos_dir.join(format!("{}.pos", cfg.queue_name()));
                            match queue::Queue::new(cfg.clone(), store.clone(), wal_dir, pos_file, external.clone()) {
                                Ok(q) => tasks.push(tokio::spawn(q.run())),
                                Err(e) => {
                                    tracing::error!(remote = %cfg.queue_name(), url = %cfg.url_label(), error = %e, "remote_write: queue not started")
                                }
                            }
                        }
                    }
                }
            }
        }
        *running = Some((cfgs.to_vec(), external.clone(), tasks));
    }
}
