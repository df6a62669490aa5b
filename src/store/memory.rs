//! The local implementation of [`Queryable`]: series in memory, sharded by
//! label fingerprint, each shard with its own inverted index.
//!
//! A series' label set is stored once (interned in its [`Entry`]) and its
//! samples live in compressed chunks ([`SeriesData`]). Sharding keeps scrape
//! tasks from serialising: an append to a known series takes a read lock on
//! one of 16 shards plus the series' own mutex; creating a series takes one
//! shard's write lock. When the store is durable every append is also
//! logged to the WAL through an [`Appender`], once per batch.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::downsample::Aggregate;
use super::packed::{PackedLabels, SetHasher};
use super::series::{Pushed, SeriesData};
use super::shard::{Shard, SlotId};
use super::wal::{SampleBatch, Wal};
use super::{Queryable, Series};
use crate::labels::{Labels, Matcher};

const SHARDS: usize = 16;

/// One series: its packed labels, WAL reference and samples.
pub(crate) struct Entry {
    pub labels: PackedLabels,
    /// The low half of the label set's [`SetHasher`] hash (the high half
    /// picked the shard), kept so that the shard's table grows and forgets
    /// the series without hashing its labels again. (32 bits sit in the
    /// padding beside `name_bit`: the entry stays in its allocation class.)
    pub hash: u32,
    /// The id that names this series in the WAL and snapshots.
    pub r: u64,
    /// The metric name's bit in an ingest mask ([`super::ingest`]).
    pub name_bit: u8,
    pub data: Mutex<SeriesData>,
}

impl Entry {
    pub fn new(labels: &Labels, hash: u32, r: u64, name_bit: u8, data: Mutex<SeriesData>) -> Entry {
        Entry { labels: PackedLabels::new(labels), hash, r, name_bit, data }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, SeriesData> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Counts for `/metrics` and `/api/v1/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreStats {
    pub series: usize,
    pub samples: usize,
}

/// How long to keep what.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    pub retention_ms: i64,
    /// Keep 5-minute min/max/avg/count aggregates this long; `None` = off.
    pub downsample_retention_ms: Option<i64>,
    /// Series that ended (staleness marker) longer ago than this leave
    /// memory at the next compaction, samples and all (Prometheus's head
    /// garbage collection); `None` = only retention removes them.
    pub stale_series_retention_ms: Option<i64>,
}

impl StoreOptions {
    pub fn new(retention_ms: i64) -> Self {
        StoreOptions { retention_ms, downsample_retention_ms: None, stale_series_retention_ms: None }
    }
}

/// A series' downsampled aggregates in a time range (see
/// [`Store::select_downsampled`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DownsampledSeries {
    pub labels: Labels,
    pub buckets: Vec<Aggregate>,
}

/// The series store.
pub struct Store {
    shards: Box<[RwLock<Shard>]>,
    pub(crate) options: StoreOptions,
    pub(crate) next_ref: AtomicU64,
    /// Set for a store opened on a directory ([`Store::open`]).
    pub(crate) durable: Option<super::durable::Durable>,
    /// Told of every committed scrape batch, so rule groups can evaluate
    /// on fresh data instead of up to an interval later.
    ingest: super::ingest::IngestBus,
    histograms: super::histograms::Histograms,
    /// Picks a label set's shard and keys the shards' label-set tables.
    hasher: SetHasher,
}

impl Store {
    pub fn new(retention_ms: i64) -> Self {
        Store::with_options(StoreOptions::new(retention_ms))
    }

    pub fn with_options(options: StoreOptions) -> Self {
        Store {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            options,
            next_ref: AtomicU64::new(1),
            durable: None,
            ingest: Default::default(),
            histograms: Default::default(),
            hasher: SetHasher::default(),
        }
    }

    /// Hears each committed batch from [`Store::appender`] (one per scrape)
    /// with a series whose metric name is in `mask`
    /// ([`super::ingest::names_mask`]); single appends do not signal.
    pub fn watch_ingest(&self, mask: u64) -> Arc<super::ingest::IngestWatch> {
        self.ingest.watch(mask)
    }

    /// Tells the watchers of `mask` (but `from`, the writer's own) that
    /// samples of those names were written: a rule group after writing its
    /// recordings, so groups that read them evaluate next.
    pub fn announce(&self, mask: u64, from: &super::ingest::IngestWatch) {
        self.ingest.publish(mask, Some(from));
    }

    pub fn retention_ms(&self) -> i64 {
        self.options.retention_ms
    }

    /// The shard of a label set, by the high half of its hash (the low
    /// half keys the shard's own table).
    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        &self.shards[((hash >> 32) % SHARDS as u64) as usize]
    }

    fn wal(&self) -> Option<&Wal> {
        self.durable.as_ref().map(|d| &d.wal)
    }

    /// A batch appender: appends go to memory at once and to the WAL (if
    /// any) in one piece on [`Appender::commit`] or drop. One per scrape.
    pub fn appender(&self) -> Appender<'_> {
        Appender { store: self, batch: SampleBatch::default(), appended: 0, names: 0, signal: true }
    }

    /// Like [`Store::appender`], encoding into `batch`'s buffer (taken back
    /// with [`Appender::into_batch`]): a scraper reuses one buffer for every
    /// scrape instead of growing a new one each time.
    pub fn appender_reusing(&self, batch: SampleBatch) -> Appender<'_> {
        Appender { store: self, batch, appended: 0, names: 0, signal: true }
    }

    /// Like [`Store::appender`], but a commit does not wake the rule groups
    /// (samples written by rules themselves, such as `ALERTS`).
    pub fn appender_quiet(&self) -> Appender<'_> {
        Appender { store: self, batch: SampleBatch::default(), appended: 0, names: 0, signal: false }
    }

    /// Appends one sample. Samples older than the series' newest one are
    /// dropped (out-of-order), a sample at the same timestamp replaces it.
    pub fn append(&self, labels: &Labels, t: i64, v: f64) {
        Appender { store: self, batch: SampleBatch::default(), appended: 0, names: 0, signal: false }
            .append(labels, t, v);
    }

    /// Appends a native histogram sample (kept in memory only, see
    /// `store::histograms`). A stale marker for such a series is a float
    /// [`Store::append`] of the stale NaN, as for any series.
    pub fn append_histogram(&self, labels: &Labels, t: i64, h: crate::native_histogram::FloatHistogram) {
        self.histograms.append(labels, t, h);
    }

    /// Appends many samples, logging them to the WAL as one record.
    pub fn append_batch(&self, samples: &[(Labels, i64, f64)]) {
        let mut a = self.appender();
        for (labels, t, v) in samples {
            a.append(labels, *t, *v);
        }
    }

    /// The series with these labels, created (and logged) if new; `r` is
    /// its WAL reference when replaying, `None` to assign a fresh one.
    pub(crate) fn get_or_create(&self, labels: &Labels, r: Option<u64>) -> Arc<Entry> {
        let full = self.hasher.labels(labels);
        let (lock, hash) = (self.shard(full), full as u32);
        if let Some(e) = lock.read().unwrap_or_else(|e| e.into_inner()).find(hash, labels) {
            return e.clone();
        }
        let mut shard = lock.write().unwrap_or_else(|e| e.into_inner());
        // Another task may have created it between our read and write lock.
        if let Some(e) = shard.find(hash, labels) {
            return e.clone();
        }
        let r = r.unwrap_or_else(|| self.next_ref.fetch_add(1, Ordering::Relaxed));
        let data = SeriesData::new(self.options.downsample_retention_ms.is_some());
        let name_bit = super::ingest::name_bit(labels.value(crate::labels::METRIC_NAME));
        let entry = Arc::new(Entry::new(labels, hash, r, name_bit, Mutex::new(data)));
        metrics::counter!("forewarn_store_series_created_total").increment(1);
        // Logged under the shard lock: no other task can log a sample of
        // this series before the series record.
        if let Some(w) = self.wal() {
            w.log_series(r, labels);
        }
        shard.insert(entry.clone());
        entry
    }

    /// Every series, shard by shard (no lock is held while `f` runs).
    pub(crate) fn entries(&self) -> Vec<Arc<Entry>> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.extend(s.read().unwrap_or_else(|e| e.into_inner()).series.iter().flatten().cloned());
        }
        out
    }

    /// The labels of every series by WAL reference (remote write resolves
    /// references whose series record is in a deleted segment).
    pub fn labels_by_ref(&self) -> HashMap<u64, Labels> {
        self.entries().into_iter().map(|e| (e.r, e.labels.to_labels())).collect()
    }

    /// Drops samples older than the retention window relative to `now`,
    /// aggregates older than the downsample retention, and series left
    /// with neither.
    /// Returns what is left, counted on the way ([`Store::stats`] would walk
    /// every series again).
    pub fn compact(&self, now: i64) -> StoreStats {
        let cutoff = now.saturating_sub(self.options.retention_ms);
        let down_cutoff = now.saturating_sub(self.options.downsample_retention_ms.unwrap_or(0));
        let ended_cutoff = self.options.stale_series_retention_ms.map(|r| now.saturating_sub(r));
        let ended = |d: &super::series::SeriesData| ended_cutoff.is_some_and(|c| d.ended_before(c));
        self.histograms.compact(cutoff);
        let (mut expired, mut stale) = (0u64, 0u64);
        let mut left = StoreStats::default();
        for lock in self.shards.iter() {
            let mut empty = Vec::new();
            {
                let shard = lock.read().unwrap_or_else(|e| e.into_inner());
                for (id, e) in shard.series.iter().enumerate() {
                    // Every entry is a cache miss a minute after the last
                    // pass: start loading a few ahead so the misses overlap.
                    if let Some(Some(ahead)) = shard.series.get(id + PREFETCH_AHEAD) {
                        prefetch_entry(ahead);
                    }
                    if let Some(e) = e {
                        let mut d = e.lock();
                        if d.compact(cutoff, down_cutoff) || ended(&d) {
                            empty.push(id as SlotId);
                        } else {
                            left.series += 1;
                            left.samples += d.samples();
                        }
                    }
                }
            }
            if empty.is_empty() {
                continue;
            }
            let mut shard = lock.write().unwrap_or_else(|e| e.into_inner());
            for id in empty {
                // It may have received a sample since we looked.
                let why = shard.series[id as usize].as_ref().and_then(|e| {
                    let d = e.lock();
                    if d.last_t().is_none() {
                        Some(false)
                    } else if ended(&d) {
                        Some(true)
                    } else {
                        left.series += 1;
                        left.samples += d.samples();
                        None
                    }
                });
                if let Some(was_stale) = why {
                    shard.remove(id);
                    if was_stale {
                        stale += 1;
                    } else {
                        expired += 1;
                    }
                }
            }
        }
        metrics::counter!("forewarn_store_series_removed_total", "reason" => "retention").increment(expired);
        metrics::counter!("forewarn_store_series_removed_total", "reason" => "stale").increment(stale);
        return_free_memory();
        left
    }

    pub fn stats(&self) -> StoreStats {
        // Walks the shards in place: no handle per series is cloned (this
        // runs every minute and on every /metrics request).
        let mut st = StoreStats::default();
        for s in self.shards.iter() {
            for e in s.read().unwrap_or_else(|e| e.into_inner()).series.iter().flatten() {
                st.series += 1;
                st.samples += e.lock().samples();
            }
        }
        st
    }

    /// Bytes held by compressed chunks (sealed and head), for benchmarks.
    pub fn chunk_bytes(&self) -> usize {
        self.entries()
            .iter()
            .map(|e| {
                let d = e.lock();
                d.chunks.iter().map(|c| c.data.len()).sum::<usize>() + d.head.bytes().len()
            })
            .sum()
    }

    fn matching(&self, matchers: &[Matcher]) -> Vec<Arc<Entry>> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.extend(s.read().unwrap_or_else(|e| e.into_inner()).matching(matchers));
        }
        out
    }

    /// The series a target's last scrape wrote, as far as the store can
    /// tell after a restart: series carrying all of the target's labels
    /// whose newest sample, not a staleness marker, was written at the
    /// same instant as the target's last `up` (every sample of a scrape
    /// shares its timestamp; a recording rule's output almost never does).
    /// Empty if that scrape is older than `since`. The scraper seeds its
    /// staleness tracking with these, so a series that vanished while the
    /// daemon was down ends at the first scrape instead of lingering for
    /// the lookback delta.
    pub fn last_scrape_series(&self, target: &Labels, since: i64) -> Vec<(u64, SeriesRef)> {
        let matchers: Vec<Matcher> = target.iter().map(|(k, v)| Matcher::equal(k, v)).collect();
        if matchers.is_empty() {
            return Vec::new();
        }
        let entries = self.matching(&matchers);
        let mut up = target.clone();
        up.set(crate::labels::METRIC_NAME.into(), "up".into());
        let Some(last) = entries.iter().find(|e| e.labels.to_labels() == up).and_then(|e| e.lock().last_t()) else {
            return Vec::new();
        };
        if last < since {
            return Vec::new();
        }
        const SYNTHETIC: [&str; 5] = [
            "up",
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling",
            "scrape_series_added",
        ];
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for e in entries {
            if SYNTHETIC.contains(&e.labels.value(crate::labels::METRIC_NAME)) {
                continue;
            }
            {
                let d = e.lock();
                if d.last_t() != Some(last) {
                    continue;
                }
                buf.clear();
                d.read(last, last, &mut buf);
            }
            if buf.last().is_some_and(|s| !super::is_stale(s.v)) {
                out.push((e.labels.fingerprint(), SeriesRef(e)));
            }
        }
        out
    }

    /// The 5-minute aggregates (bucket start in `[start, end]`) of series
    /// matching `matchers`, sorted by labels; series without buckets in
    /// range are left out. Only filled when the store was built with
    /// `downsample_retention_ms` (`storage.downsample_retention`); rules
    /// with windows longer than the raw retention read these instead of
    /// raw samples (avg = sum / count).
    pub fn select_downsampled(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<DownsampledSeries> {
        let mut out: Vec<DownsampledSeries> = self
            .matching(matchers)
            .into_iter()
            .filter_map(|e| {
                let buckets = e.lock().down.as_ref().map(|d| d.range(start, end).to_vec()).unwrap_or_default();
                (!buckets.is_empty()).then(|| DownsampledSeries { labels: e.labels.to_labels(), buckets })
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

/// Appends a batch of samples: memory at once, the WAL once at the end.
pub struct Appender<'a> {
    store: &'a Store,
    batch: SampleBatch,
    appended: u64,
    /// The ingest mask of the series appended since the last commit.
    names: u64,
    /// Whether a commit tells subscribers that fresh data arrived.
    signal: bool,
}

/// How many series ahead a walk over the store prefetches: enough for
/// the misses to overlap, few enough that the lines are still there.
const PREFETCH_AHEAD: usize = 8;

/// Starts loading an entry's cache lines, the Arc's counts (just before
/// it) included.
fn prefetch_entry(e: &Arc<Entry>) {
    let start = Arc::as_ptr(e) as usize - 2 * std::mem::size_of::<usize>();
    let end = Arc::as_ptr(e) as usize + std::mem::size_of::<Entry>();
    let mut line = start & !63;
    while line < end {
        prefetch_line(line);
        line += 64;
    }
}

/// Asks the CPU to start loading the cache line holding `addr`. A hint: it
/// never faults, whatever the address, and does nothing off x86-64.
#[inline(always)]
fn prefetch_line(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 reads nothing architecturally and cannot fault,
    // even on an unmapped address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// A handle on a series in the store, returned by [`Appender::append_ref`].
///
/// The scraper keeps one per series of a target's last scrape (to write
/// staleness markers when a series disappears) instead of a copy of its
/// labels: 8 bytes instead of a few hundred per active series.
#[derive(Clone)]
pub struct SeriesRef(Arc<Entry>);

impl SeriesRef {
    /// Starts loading, without waiting, every cache line an append to this
    /// series reads: the entry (handle counts, lock, head chunk state) and
    /// the end of its head chunk's buffer at `tail`, the address the last
    /// [`Appender::append_live`] returned (0: unknown). Between scrapes 15 s
    /// apart all of it has left the caches; issued a few series ahead, the
    /// misses overlap instead of stalling the append one after another. A
    /// stale `tail` (the buffer has moved since) costs one useless load.
    #[inline]
    pub fn prefetch(&self, tail: usize) {
        prefetch_entry(&self.0);
        if tail != 0 {
            prefetch_line(tail);
        }
    }

    /// The series' labels (decoded: for the few series that need them).
    pub fn labels(&self) -> Labels {
        self.0.labels.to_labels()
    }

    /// Whether another handle besides this one and the store's is held
    /// (two raw series a scraper's relabeling turned into one).
    pub fn shared(&self) -> bool {
        Arc::strong_count(&self.0) > 2
    }
}

/// Hands memory the allocator holds free back to the system. glibc keeps
/// freed memory in each thread's arena for reuse and gives back only the top
/// of a heap, so the transient buffers of a snapshot or of a retention pass
/// (megabytes at 50,000 series) would stay in the daemon's RSS until the
/// next one; `malloc_trim` releases free pages anywhere in the arenas. Called
/// after those passes only (a minute or more apart): it walks every arena.
pub fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only returns free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Appender<'_> {
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        let e = self.store.get_or_create(labels, None);
        self.push(&e, t, v);
    }

    /// Appends like [`Appender::append`] and returns the series' handle.
    pub fn append_ref(&mut self, labels: &Labels, t: i64, v: f64) -> SeriesRef {
        let e = self.store.get_or_create(labels, None);
        self.push(&e, t, v);
        SeriesRef(e)
    }

    /// Appends to a live series by handle: no label is looked at. A series
    /// that the store removed meanwhile (it had ended and come back) is put
    /// back from the handle's labels first, so nothing is lost.
    ///
    /// Returns where the series' next append will write (the hint
    /// [`SeriesRef::prefetch`] takes before the next scrape).
    pub fn append_live(&mut self, series: &mut SeriesRef, t: i64, v: f64) -> usize {
        if Arc::strong_count(&series.0) == 1 {
            *series = SeriesRef(self.store.get_or_create(&series.0.labels.to_labels(), None));
        }
        self.push(&series.0, t, v)
    }

    /// The handle of the series `labels` (created if new), without a sample.
    pub fn series_ref(&self, labels: &Labels) -> SeriesRef {
        SeriesRef(self.store.get_or_create(labels, None))
    }

    /// Commits and hands back the batch buffer for the next appender.
    pub fn into_batch(mut self) -> SampleBatch {
        self.commit();
        std::mem::take(&mut self.batch)
    }

    /// Appends to a series by handle. A series that retention has removed
    /// from the store since the handle was taken (only the handle still
    /// holds it) has no samples left to end, so nothing is written.
    pub fn append_to(&mut self, series: &SeriesRef, t: i64, v: f64) {
        if Arc::strong_count(&series.0) > 1 {
            self.push(&series.0, t, v);
        }
    }

    /// Returns the address the series' next append writes first.
    fn push(&mut self, e: &Entry, t: i64, v: f64) -> usize {
        let (pushed, tail) = {
            let mut data = e.lock();
            (data.push(t, v), data.head.tail_addr())
        };
        if pushed == Pushed::OutOfOrder {
            metrics::counter!("forewarn_store_out_of_order_samples_total").increment(1);
            return tail;
        }
        self.appended += 1;
        self.names |= 1u64 << e.name_bit;
        if self.store.durable.is_some() {
            self.batch.add(e.r, t, v);
        }
        tail
    }

    /// Hands the batch to the WAL (also done on drop).
    pub fn commit(&mut self) {
        if let Some(w) = self.store.wal() {
            w.log_samples(&mut self.batch);
        }
        if self.appended > 0 {
            metrics::counter!("forewarn_store_samples_appended_total").increment(self.appended);
            self.appended = 0;
            if self.signal {
                self.store.ingest.publish(self.names, None);
            }
            self.names = 0;
        }
    }
}

impl Drop for Appender<'_> {
    fn drop(&mut self) {
        self.commit();
    }
}

impl Store {
    /// Label sets of series matching `matchers` that may hold a sample in
    /// `[start, end]`, sorted; no sample is decoded, so listing every
    /// series over all time costs memory for the labels only.
    pub fn series_labels(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<Labels> {
        let mut out: Vec<Labels> = self
            .matching(matchers)
            .into_iter()
            .filter(|e| e.lock().overlaps(start, end))
            .map(|e| e.labels.to_labels())
            .collect();
        // Native histograms are few; reading them is fine.
        out.extend(self.histograms.select(matchers, start, end).into_iter().map(|h| h.labels));
        out.sort();
        out.dedup();
        out
    }
}

impl Store {
    /// The matching series with what `read` takes of each, sorted by
    /// labels; `more` hears each series' sample count and stops the
    /// selection when it says no (see [`Queryable::select_checked`]).
    fn select_each(
        &self,
        matchers: &[Matcher],
        more: &mut dyn FnMut(usize) -> bool,
        read: impl Fn(&SeriesData) -> Vec<super::Sample>,
    ) -> Vec<Series> {
        let mut out: Vec<Series> = Vec::new();
        for e in self.matching(matchers) {
            let samples = read(&e.lock());
            if !more(samples.len()) {
                break;
            }
            if !samples.is_empty() {
                out.push(Series { labels: e.labels.to_labels(), samples });
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

impl Queryable for Store {
    fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<Series> {
        let mut out: Vec<Series> = self
            .matching(matchers)
            .into_iter()
            .filter_map(|e| {
                let mut samples = Vec::new();
                e.lock().read(start, end, &mut samples);
                (!samples.is_empty()).then(|| Series { labels: e.labels.to_labels(), samples })
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    fn select_checked(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        more: &mut dyn FnMut(usize) -> bool,
    ) -> Vec<Series> {
        self.select_each(matchers, more, |d| {
            let mut samples = Vec::new();
            d.read(start, end, &mut samples);
            samples
        })
    }

    fn select_newest(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        more: &mut dyn FnMut(usize) -> bool,
    ) -> Vec<Series> {
        self.select_each(matchers, more, |d| d.newest_in(start, end).into_iter().collect())
    }

    fn select_histograms(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<super::HistogramSeries> {
        self.histograms.select(matchers, start, end)
    }

    fn raw_since(&self, now: i64) -> i64 {
        now.saturating_sub(self.options.retention_ms)
    }

    fn select_downsampled(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<DownsampledSeries> {
        Store::select_downsampled(self, matchers, start, end)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let mut set = BTreeSet::new();
        if matchers.is_empty() {
            for s in self.shards.iter() {
                set.extend(s.read().unwrap_or_else(|e| e.into_inner()).label_names().map(str::to_string));
            }
        }
        for l in self.histograms.labels().iter().filter(|l| matchers.iter().all(|m| m.matches(l))) {
            set.extend(l.iter().map(|(n, _)| n.to_string()));
        }
        if !matchers.is_empty() {
            for e in self.matching(matchers) {
                set.extend(e.labels.iter().map(|(n, _)| n.to_string()));
            }
        }
        set.into_iter().collect()
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let mut set = BTreeSet::new();
        if matchers.is_empty() {
            for s in self.shards.iter() {
                set.extend(s.read().unwrap_or_else(|e| e.into_inner()).label_values(name).map(str::to_string));
            }
        }
        for l in self.histograms.labels().iter().filter(|l| matchers.iter().all(|m| m.matches(l))) {
            if let Some(v) = l.get(name) {
                set.insert(v.to_string());
            }
        }
        if !matchers.is_empty() {
            for e in self.matching(matchers) {
                if let Some(v) = e.labels.get(name) {
                    set.insert(v.to_string());
                }
            }
        }
        set.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::MatchOp;
    use crate::store::Sample;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn select_by_all_matcher_kinds() {
        let s = Store::new(3_600_000);
        s.append(&l(&[("__name__", "up"), ("job", "a")]), 1000, 1.0);
        s.append(&l(&[("__name__", "up"), ("job", "b")]), 1000, 0.0);
        s.append(&l(&[("__name__", "up")]), 1000, 5.0);
        let sel = |ms: Vec<Matcher>| s.select(&ms, 0, 2000).len();
        assert_eq!(sel(vec![Matcher::equal("__name__", "up")]), 3);
        assert_eq!(sel(vec![Matcher::equal("__name__", "up"), Matcher::equal("job", "a")]), 1);
        assert_eq!(
            sel(vec![
                Matcher::equal("__name__", "up"),
                Matcher { name: "job".into(), op: MatchOp::NotEqual("a".into()) }
            ]),
            2
        );
        assert_eq!(sel(vec![Matcher::regex("job", "a|b", false).unwrap()]), 2);
        assert_eq!(sel(vec![Matcher::equal("__name__", "up"), Matcher::regex("job", "a", true).unwrap()]), 2);
        assert_eq!(sel(vec![Matcher::equal("__name__", "up"), Matcher::equal("job", "")]), 1);
        assert_eq!(s.label_names(&[]), vec!["__name__", "job"]);
        assert_eq!(s.label_values("job", &[]), vec!["a", "b"]);
    }

    #[test]
    fn time_range_out_of_order_and_retention() {
        let s = Store::new(10_000);
        let a = l(&[("__name__", "x")]);
        for t in [1000, 2000, 1500, 2000, 3000] {
            s.append(&a, t, t as f64);
        }
        let got = s.select(&[Matcher::equal("__name__", "x")], 1500, 2500);
        assert_eq!(got[0].samples, vec![Sample { t: 2000, v: 2000.0 }]);
        s.compact(12_500);
        let got = s.select(&[Matcher::equal("__name__", "x")], 0, 99_999);
        assert_eq!(got[0].samples, vec![Sample { t: 3000, v: 3000.0 }]);
        s.compact(20_000);
        assert_eq!(s.stats().series, 0);
        assert!(s.select(&[Matcher::equal("__name__", "x")], 0, 99_999).is_empty());
        // The slot is reused by the next new series and the index follows.
        s.append(&l(&[("__name__", "y")]), 30_000, 1.0);
        assert_eq!(s.label_values("__name__", &[]), vec!["y"]);
    }

    #[test]
    fn concurrent_batches_from_many_threads_all_land() {
        let s = Store::new(i64::MAX / 4);
        std::thread::scope(|scope| {
            for th in 0..4 {
                let s = &s;
                scope.spawn(move || {
                    for t in 0..300i64 {
                        let batch: Vec<(Labels, i64, f64)> = (0..50)
                            .map(|i| (l(&[("__name__", "m"), ("i", &format!("{th}-{i}"))]), t * 1000, t as f64))
                            .collect();
                        s.append_batch(&batch);
                    }
                });
            }
        });
        let st = s.stats();
        assert_eq!((st.series, st.samples), (200, 200 * 300));
        let sel = s.select(&[Matcher::equal("i", "3-7")], 0, i64::MAX);
        assert_eq!(sel[0].samples.len(), 300);
        assert_eq!(sel[0].samples[299], Sample { t: 299_000, v: 299.0 });
    }

    /// Every series costs one `Arc<Entry>` allocation; glibc serves
    /// requests of up to 184 bytes (the entry plus the two reference
    /// counts) from its 192-byte class and anything larger from 208 or
    /// more, so a field added here costs 16 bytes a series, not 8.
    #[test]
    fn a_series_entry_fits_the_192_byte_allocation_class() {
        assert!(std::mem::size_of::<Entry>() + 16 <= 184, "{} bytes", std::mem::size_of::<Entry>());
    }

    #[test]
    fn downsampled_aggregates_outlive_raw_samples() {
        let s = Store::with_options(StoreOptions {
            retention_ms: 600_000,
            downsample_retention_ms: Some(86_400_000),
            stale_series_retention_ms: None,
        });
        let a = l(&[("__name__", "g")]);
        for i in 0..240i64 {
            s.append(&a, i * 15_000, (i % 20) as f64); // one hour
        }
        s.compact(3_600_000 + 600_000);
        assert!(s.select(&[Matcher::equal("__name__", "g")], 0, 3_000_000).is_empty());
        let d = s.select_downsampled(&[Matcher::equal("__name__", "g")], 0, i64::MAX);
        assert_eq!(d.len(), 1);
        // 12 buckets of 20 samples; the newest sample is not yet committed.
        assert_eq!(d[0].buckets.len(), 12);
        let b = d[0].buckets[0];
        assert_eq!((b.t, b.min, b.max, b.count, b.avg()), (0, 0.0, 19.0, 20, 9.5));
    }
}
