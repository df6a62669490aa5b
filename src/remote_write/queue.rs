//! One remote's queue: reads the WAL through a [`Tail`], turns references
//! into label sets (external labels added, `write_relabel_configs`
//! applied), spreads series over shards by hash so each series' samples
//! stay in order, and sends each shard's batches with retries.
//!
//! A chunk of samples is sent completely (every shard acknowledged or its
//! batch dropped for good) before the read position is saved and the next
//! chunk is read, so a restart resends at most the chunk in flight.
//! 5xx, 429 (with `retry_on_http_429`) and network errors are retried with
//! exponential backoff from `min_backoff` to `max_backoff`, forever: the
//! samples are safe in the WAL meanwhile. Other 4xx answers say the data
//! will never be accepted: the batch is dropped and counted as failed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::proto::{self, Label, Sample, TimeSeries, WriteRequest};
use super::tail::{save_position, RefSample, Tail};
use super::RemoteWriteConfig;
use crate::http_client::Auth;
use crate::labels::Labels;
use crate::scrape::relabel::{self, Relabel};
use crate::store::Store;

/// Most samples read into one chunk (the shards' combined capacity).
const MAX_CHUNK: usize = 1_000_000;

pub struct Queue {
    pub name: String,
    url_label: String,
    cfg: RemoteWriteConfig,
    client: reqwest::Client,
    auth: Option<Auth>,
    relabel: Vec<Relabel>,
    external: Labels,
    store: Arc<Store>,
    tail: Tail,
    pos_file: PathBuf,
    /// Final label set per reference (`None`: dropped by relabeling).
    out_labels: HashMap<u64, Option<Arc<Vec<Label>>>>,
}

impl Queue {
    pub fn new(
        cfg: RemoteWriteConfig,
        store: Arc<Store>,
        wal_dir: &std::path::Path,
        pos_file: PathBuf,
        external: Labels,
    ) -> Result<Queue, super::config::ConfigError> {
        let client = match cfg.tls_config.as_ref().filter(|t| **t != Default::default()) {
            Some(tls) => crate::http_client::build(tls)?,
            None => crate::http_client::build(&Default::default())?,
        };
        let auth = crate::http_client::auth(cfg.basic_auth.as_ref(), cfg.authorization.as_ref())?;
        let relabel = Relabel::compile(&cfg.write_relabel_configs)?;
        let saved = super::tail::load_position(&pos_file);
        let tail = Tail::new(wal_dir, saved);
        let name = cfg.queue_name();
        store.hold_wal(&format!("remote_write/{name}"), tail.pos.segment);
        Ok(Queue {
            url_label: cfg.url_label(),
            name,
            cfg,
            client,
            auth,
            relabel,
            external,
            store,
            tail,
            pos_file,
            out_labels: HashMap::new(),
        })
    }

    fn labels_of(&mut self, r: u64, refreshed: &mut bool) -> Option<Arc<Vec<Label>>> {
        if let Some(l) = self.out_labels.get(&r) {
            return l.clone();
        }
        let raw = self.tail.labels(r, &self.store, refreshed)?.clone();
        let mut labels = raw;
        // External labels go on written series, unless the series has its own.
        for (k, v) in self.external.iter() {
            if labels.get(k).is_none() {
                labels.set(k.to_string(), v.to_string());
            }
        }
        let out = relabel::process(labels, &self.relabel)
            .map(|l| Arc::new(l.iter().map(|(n, v)| Label { name: n.to_string(), value: v.to_string() }).collect()));
        self.out_labels.insert(r, out.clone());
        out
    }

    pub async fn run(mut self) {
        let q = self.cfg.queue_config.clone();
        let chunk_limit = q.capacity.saturating_mul(q.max_shards).clamp(q.max_samples_per_send, MAX_CHUNK);
        let deadline = q.batch_send_deadline.0;
        let poll = deadline.min(Duration::from_millis(200));
        let (name, url) = (self.name.clone(), self.url_label.clone());
        let pending_gauge = metrics::gauge!("forewarn_remote_storage_samples_pending", "remote_name" => name.clone(), "url" => url.clone());
        let highest = metrics::gauge!("forewarn_remote_storage_highest_timestamp_in_seconds", "remote_name" => name.clone(), "url" => url.clone());
        tracing::info!(remote = %name, url = %url, segment = self.tail.pos.segment, offset = self.tail.pos.offset, "remote write: queue started");
        let mut pending: Vec<RefSample> = Vec::new();
        let mut first_at: Option<Instant> = None;
        loop {
            let want = chunk_limit.saturating_sub(pending.len());
            let got = tokio::task::block_in_place(|| self.tail.read(want, &mut pending));
            if got > 0 {
                first_at.get_or_insert_with(Instant::now);
                if let Some(t) = pending.iter().rev().take(got).map(|s| s.t).max() {
                    highest.set(highest_seen(t));
                }
            }
            pending_gauge.set(pending.len() as f64);
            let full = pending.len() >= q.max_samples_per_send;
            let due = first_at.is_some_and(|at| at.elapsed() >= deadline);
            if pending.is_empty() || !(full || due) {
                tokio::time::sleep(poll).await;
                continue;
            }
            let chunk = std::mem::take(&mut pending);
            first_at = None;
            self.send_chunk(chunk).await;
            pending_gauge.set(0.0);
            let pos = self.tail.pos;
            let saved = tokio::task::block_in_place(|| save_position(&self.pos_file, pos));
            if let Err(e) = saved {
                tracing::warn!(remote = %name, file = %self.pos_file.display(), error = %e, "remote write: cannot save the read position; a restart resends from the previous one");
            }
            self.store.hold_wal(&format!("remote_write/{name}"), pos.segment);
            self.tail.trim(self.store.stats().series);
            if self.out_labels.len() > 2 * self.store.stats().series + 10_000 {
                self.out_labels.clear();
            }
        }
    }

    /// Sends `chunk`: series spread over shards, shards in parallel, each
    /// shard's batches in order.
    async fn send_chunk(&mut self, chunk: Vec<RefSample>) {
        let q = self.cfg.queue_config.clone();
        let (name, url) = (self.name.clone(), self.url_label.clone());
        let mut refreshed = false;
        let mut dropped = 0u64;
        // Per series, its samples in WAL order; a repeated timestamp keeps the last value.
        let mut by_ref: HashMap<u64, (Arc<Vec<Label>>, Vec<Sample>)> = HashMap::new();
        let mut order: Vec<u64> = Vec::new();
        for s in &chunk {
            let Some(labels) = self.labels_of(s.r, &mut refreshed) else {
                dropped += 1;
                continue;
            };
            let e = by_ref.entry(s.r).or_insert_with(|| {
                order.push(s.r);
                (labels, Vec::new())
            });
            match e.1.last_mut() {
                Some(last) if last.timestamp == s.t => last.value = s.v,
                Some(last) if last.timestamp > s.t => {}
                _ => e.1.push(Sample { value: s.v, timestamp: s.t }),
            }
        }
        if dropped > 0 {
            metrics::counter!("forewarn_remote_storage_samples_dropped_total", "remote_name" => name.clone(), "url" => url.clone()).increment(dropped);
        }
        let total: usize = by_ref.values().map(|(_, s)| s.len()).sum();
        let n_shards = total.div_ceil(q.max_samples_per_send).clamp(1, q.max_shards);
        let mut shards: Vec<Vec<TimeSeries>> = vec![Vec::new(); n_shards];
        for r in order {
            if let Some((labels, samples)) = by_ref.remove(&r) {
                let shard = (r.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % n_shards;
                shards[shard].push(TimeSeries { labels: (*labels).clone(), samples });
            }
        }
        let this = &*self;
        let sends = shards.into_iter().filter(|s| !s.is_empty()).map(|series| async move {
            for batch in batches(series, q.max_samples_per_send) {
                this.send_batch(batch).await;
            }
        });
        futures_util::future::join_all(sends).await;
    }

    /// Sends one request, retrying until it is accepted or refused for good.
    async fn send_batch(&self, req: WriteRequest) {
        let q = &self.cfg.queue_config;
        let (name, url) = (self.name.clone(), self.url_label.clone());
        let n: u64 = req.timeseries.iter().map(|t| t.samples.len() as u64).sum();
        let newest = req.timeseries.iter().flat_map(|t| t.samples.iter().map(|s| s.timestamp)).max().unwrap_or(0);
        let body = match proto::encode(&req) {
            Ok(b) => bytes::Bytes::from(b),
            Err(e) => {
                tracing::error!(remote = %name, error = %e, "remote write: cannot compress a batch; dropped");
                metrics::counter!("forewarn_remote_storage_samples_failed_total", "remote_name" => name, "url" => url)
                    .increment(n);
                return;
            }
        };
        let mut backoff = q.min_backoff.0;
        loop {
            let outcome = self.post(body.clone()).await;
            let retry_reason = match outcome {
                Ok(status) if status.is_success() => {
                    metrics::counter!("forewarn_remote_storage_samples_total", "remote_name" => name.clone(), "url" => url.clone()).increment(n);
                    let g = metrics::gauge!("forewarn_remote_storage_queue_highest_sent_timestamp_seconds", "remote_name" => name, "url" => url);
                    g.set(highest_sent(&self.name, newest));
                    return;
                }
                Ok(status) if status.is_server_error() || (status.as_u16() == 429 && q.retry_on_http_429) => {
                    format!("HTTP {status}")
                }
                Ok(status) => {
                    tracing::error!(remote = %name, url = %url, %status, samples = n,
                        "remote write: the receiver refused a batch (not retried: a 4xx will not change); check write_relabel_configs and the receiver's limits");
                    metrics::counter!("forewarn_remote_storage_samples_failed_total", "remote_name" => name, "url" => url).increment(n);
                    return;
                }
                Err(e) => e,
            };
            tracing::warn!(remote = %name, url = %url, error = %retry_reason, retry_in_ms = backoff.as_millis() as u64, samples = n, "remote write: send failed; retrying");
            metrics::counter!("forewarn_remote_storage_samples_retried_total", "remote_name" => name.clone(), "url" => url.clone()).increment(n);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(q.max_backoff.0);
        }
    }

    async fn post(&self, body: bytes::Bytes) -> Result<reqwest::StatusCode, String> {
        let mut req = self
            .client
            .post(self.cfg.url.expose())
            .timeout(self.cfg.remote_timeout.0)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header("User-Agent", concat!("forewarn/", env!("CARGO_PKG_VERSION")));
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.expose());
        }
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a.header().await.map_err(|e| e.to_string())?);
        }
        let resp = req.body(body).send().await.map_err(|e| {
            let e = e.without_url();
            format!("{e}{}", std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default())
        })?;
        Ok(resp.status())
    }
}

/// Splits a shard's series into requests of at most `max` samples, in order.
fn batches(series: Vec<TimeSeries>, max: usize) -> Vec<WriteRequest> {
    let mut out = Vec::new();
    let mut cur = WriteRequest::default();
    let mut n = 0;
    for mut ts in series {
        while !ts.samples.is_empty() {
            let room = max - n;
            let rest = if ts.samples.len() > room { ts.samples.split_off(room) } else { Vec::new() };
            n += ts.samples.len();
            cur.timeseries
                .push(TimeSeries { labels: ts.labels.clone(), samples: std::mem::replace(&mut ts.samples, rest) });
            if n >= max {
                out.push(std::mem::take(&mut cur));
                n = 0;
            }
        }
    }
    if !cur.timeseries.is_empty() {
        out.push(cur);
    }
    out
}

/// Highest timestamps kept per queue, so the gauges never go backwards.
fn highest_seen(t: i64) -> f64 {
    t as f64 / 1000.0
}

fn highest_sent(name: &str, t: i64) -> f64 {
    static SENT: std::sync::Mutex<Option<HashMap<String, i64>>> = std::sync::Mutex::new(None);
    let mut m = SENT.lock().unwrap_or_else(|e| e.into_inner());
    let e = m.get_or_insert_with(HashMap::new).entry(name.to_string()).or_insert(i64::MIN);
    *e = (*e).max(t);
    *e as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_series_in_order_and_respect_the_limit() {
        let ts = |name: &str, n: i64| TimeSeries {
            labels: vec![Label { name: "__name__".into(), value: name.into() }],
            samples: (0..n).map(|t| Sample { value: t as f64, timestamp: t }).collect(),
        };
        let out = batches(vec![ts("a", 3), ts("b", 4)], 3);
        let sizes: Vec<usize> = out.iter().map(|r| r.timeseries.iter().map(|t| t.samples.len()).sum()).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        let b: Vec<i64> = out[1..]
            .iter()
            .flat_map(|r| r.timeseries.iter())
            .flat_map(|t| t.samples.iter().map(|s| s.timestamp))
            .collect();
        assert_eq!(b, vec![0, 1, 2, 3]);
    }
}
