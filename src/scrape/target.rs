//! One target: its identity, its limits, and one scrape of it.
//!
//! A scrape is all-or-nothing, as in Prometheus: a body that is too big,
//! unparsable or over `sample_limit` fails the whole scrape, `up` becomes 0,
//! the error is kept for `/api/v1/targets`, and the series of the last good
//! scrape are marked stale so that queries stop returning them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hashbrown::HashTable;

use std::sync::Arc;

use serde::Serialize;

use super::client::JobClient;
use super::config::{ScrapeConfig, ScrapeDefaults};
use super::discovery::Discovery;
use super::parse::{self, Format, Seen, SeriesKey};
use super::relabel::{self, Relabel};
use crate::labels::{Labels, METRIC_NAME};
use crate::store::{stale_nan, SeriesRef, Store};

/// Bodies larger than this fail unless `body_size_limit` says otherwise.
pub const DEFAULT_BODY_LIMIT: u64 = 64 * 1024 * 1024;

/// A scrape target, as resolved from config (see `discovery`).
#[derive(Clone, Debug)]
pub struct Target {
    pub job: String,
    pub url: String,
    /// `job`, `instance` and any static labels; added to every sample.
    pub labels: Labels,
    /// The labels before `relabel_configs` (with `__address__` etc.).
    pub discovered_labels: Labels,
    pub interval: Duration,
    pub timeout: Duration,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub body_size_limit: u64,
    pub sample_limit: usize,
    pub label_limit: usize,
    pub label_name_length_limit: usize,
    pub label_value_length_limit: usize,
    /// `metric_relabel_configs`, shared by the job's targets.
    pub metric_relabel: Arc<Vec<Relabel>>,
    /// TLS client, auth header, or why the job cannot be scraped.
    pub client: JobClient,
    /// Fingerprint of the job's config: a changed job restarts its targets.
    pub config_fp: u64,
}

impl Target {
    /// Every static target of a scrape config (file-SD targets come from
    /// `discovery::Discovery`, which the manager runs).
    pub fn from_config(sc: &ScrapeConfig, defaults: &ScrapeDefaults) -> Vec<Target> {
        let mut sc = sc.clone();
        sc.file_sd_configs.clear();
        Discovery::new(std::slice::from_ref(&sc), defaults).targets()
    }
}

/// What `/api/v1/targets` shows of a target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TargetHealth {
    /// "up", "down" or "unknown" (not scraped yet).
    pub health: &'static str,
    pub last_error: String,
    pub last_scrape_ms: i64,
    pub last_scrape_duration_s: f64,
    pub samples: usize,
}

/// The state a target keeps between scrapes: Prometheus's scrape cache.
///
/// Each series the target wrote is remembered by a hash of its raw form on
/// the wire (name and labels as written, [`parse::SeriesKey`]), with its
/// store handle. A series seen in the previous scrape costs one hash of
/// those bytes, one lookup and an append: its labels are not even lexed
/// ([`parse::parse_keyed`]), no label set is built, hashed, relabeled or
/// compared, and nothing is allocated. Only a new or changed series takes
/// the slow path (labels, target labels, `metric_relabel_configs`, limits,
/// the store's index); a series that relabeling drops is remembered as
/// dropped. Entries not seen in a scrape get their staleness marker and go.
#[derive(Default)]
pub struct ScrapeState {
    /// The series of the last good scrape.
    cached: Vec<Cached>,
    /// Indexes into `cached` by series key. The table holds the index
    /// only (the key is read from `cached`), which makes an entry 4 bytes
    /// instead of 24.
    index: HashTable<u32>,
    /// Scrapes so far; an entry's `epoch` says when it was last seen.
    epoch: u32,
    /// `up`, `scrape_duration_seconds`, ... of this target.
    synthetic: Vec<SeriesRef>,
    /// Sees every good scrape's samples to record deploys and restarts.
    pub detector: Option<std::sync::Arc<crate::deploys::Detector>>,
    /// After a restart: the series the target had in the store, by label
    /// fingerprint, until the first scrape says which still exist (see
    /// [`Store::last_scrape_series`]).
    seeded_series: HashMap<u64, SeriesRef>,
    seeded: bool,
}

struct Cached {
    key: SeriesKey,
    /// `None`: dropped by relabeling, or new in this scrape (not written yet).
    series: Option<SeriesRef>,
    epoch: u32,
    /// One of the few series the deploy detector reads (`*_build_info`,
    /// `process_start_time_seconds`); their labels come from the store.
    watched: bool,
    /// Where the series' next append writes (from the last one; 0 before
    /// it): loaded ahead with the series ([`SeriesRef::prefetch`]).
    tail: usize,
}

/// A sample of this scrape: to a cached series, or to a new one.
enum Pending {
    Known {
        slot: u32,
        t: i64,
        v: f64,
    },
    New {
        slot: u32,
        labels: Labels,
        t: i64,
        v: f64,
    },
    /// Already appended (taken out of the list).
    Done,
}

/// How many samples ahead the ingest loop touches a series' memory.
const PREFETCH_AHEAD: usize = 8;

/// Buffers a scrape works in, reused so that a scrape of a steady target
/// allocates nothing. They are pooled across targets instead of kept by
/// each: a target needs them only while it scrapes, and scrapes are spread
/// over the interval, so a daemon holds about one set instead of one per
/// target (at 10,000 series a set is about 1.5 MB: the body, the parsed
/// samples and the WAL batch).
struct Pool<T>(std::sync::Mutex<Vec<T>>);

impl<T: Default> Pool<T> {
    const fn new() -> Self {
        Pool(std::sync::Mutex::new(Vec::new()))
    }

    fn take(&self) -> T {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default()
    }

    fn give_back(&self, t: T) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(t);
    }
}

/// Response bodies (held across the fetch's awaits, so apart from `WORK`).
static BODIES: Pool<Vec<u8>> = Pool::new();
/// A scrape's samples, checked against the limits before any is written (a
/// scrape is all-or-nothing), and its WAL batch.
static WORK: Pool<(Vec<Pending>, crate::store::wal::SampleBatch)> = Pool::new();

/// Series older than this are invisible to queries anyway (the lookback
/// delta), so a restart longer than it needs no staleness markers.
const SEED_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: body exceeds body_size_limit of {limit} bytes (raise body_size_limit or reduce what the target exposes)")]
    BodyTooLarge { url: String, limit: u64 },
    #[error("{url}: {source}")]
    Parse { url: String, source: parse::ParseError },
    #[error("{url}: {count} samples exceed sample_limit of {limit}; the whole scrape is rejected")]
    SampleLimit { url: String, count: usize, limit: usize },
    #[error("{url}: {message}")]
    LabelLimit { url: String, message: String },
}

/// Fetches the target's body into `body`, honouring timeout and size limit
/// (cleared first; the buffer comes from [`BODIES`], so a steady-size body
/// costs no allocation or regrowth).
async fn fetch(client: &reqwest::Client, t: &Target, body: &mut Vec<u8>) -> Result<Format, ScrapeError> {
    let http = |message: String| ScrapeError::Http { url: t.url.clone(), message };
    if let Some(e) = &t.client.setup_error {
        return Err(http(e.clone()));
    }
    let client = t.client.client.as_ref().unwrap_or(client);
    let timeout_s = t.timeout.as_secs_f64();
    let fut = async {
        let mut req = client
            .get(&t.url)
            .header(reqwest::header::ACCEPT, parse::ACCEPT_HEADER)
            .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{timeout_s}"));
        if let Some(auth) = &t.client.auth {
            // Read now, not at config load: secret files get rotated.
            req = req.header(reqwest::header::AUTHORIZATION, auth.header().await.map_err(|e| http(e.to_string()))?);
        }
        let mut resp = req.send().await.map_err(|e| http(describe_reqwest(&e)))?;
        if !resp.status().is_success() {
            let hint = match resp.status().as_u16() {
                401 | 403 => " (check basic_auth / authorization)",
                404 => " (check metrics_path)",
                _ => "",
            };
            return Err(http(format!("server returned HTTP status {}{hint}", resp.status())));
        }
        let format = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(Format::from_content_type)
            .unwrap_or(Format::Prometheus);
        if resp.content_length().is_some_and(|l| l > t.body_size_limit) {
            return Err(ScrapeError::BodyTooLarge { url: t.url.clone(), limit: t.body_size_limit });
        }
        let expected = resp.content_length().map_or(body.len(), |l| l as usize);
        body.clear();
        body.reserve(expected);
        while let Some(chunk) = resp.chunk().await.map_err(|e| http(describe_reqwest(&e)))? {
            if body.len() as u64 + chunk.len() as u64 > t.body_size_limit {
                return Err(ScrapeError::BodyTooLarge { url: t.url.clone(), limit: t.body_size_limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(format)
    };
    // The whole exchange, trickling bodies included, must fit in the timeout.
    match tokio::time::timeout(t.timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(http(format!(
            "scrape timed out after {timeout_s}s (raise scrape_timeout, up to scrape_interval, or make the target answer faster)"
        ))),
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    // Say what to do next.
    let hint = if msg.contains("certificate") {
        " (set tls_config.ca_file to the CA that signed it, or tls_config.insecure_skip_verify: true)"
    } else if msg.contains("refused") {
        " (is the target running and listening on this host:port?)"
    } else if e.is_redirect() {
        " (the target redirects in a loop or more than 10 times; point metrics_path at the final URL)"
    } else if e.is_connect() {
        " (check the address, DNS and network path to the target)"
    } else {
        ""
    };
    msg.push_str(hint);
    msg
}

/// Whether the deploy detector reads series named `name`.
fn watched(name: &str) -> bool {
    name.ends_with("_build_info") || name == "process_start_time_seconds"
}

/// The labels of a new series: the body's, the target's (by
/// `honor_labels`), then `metric_relabel_configs`; `None` when dropped.
fn series_labels(t: &Target, s: &parse::ParsedSample<'_>) -> Option<Labels> {
    let mut labels = Labels::with_capacity(s.labels.len() + 1 + t.labels.len());
    for (k, v) in s.labels.iter() {
        labels.set(k.to_string(), v.to_string());
    }
    labels.set(METRIC_NAME.into(), s.name.to_string());
    for (k, v) in t.labels.iter() {
        match labels.get(k) {
            Some(_) if t.honor_labels => {}
            Some(existing) => {
                let existing = existing.to_string();
                labels.set(format!("exported_{k}"), existing);
                labels.set(k.to_string(), v.to_string());
            }
            None => labels.set(k.to_string(), v.to_string()),
        }
    }
    if t.metric_relabel.is_empty() {
        return Some(labels);
    }
    relabel::process(labels, &t.metric_relabel).filter(|l| l.name().is_some())
}

/// Why `labels` breaks the target's label limits, if they do.
fn over_label_limits(t: &Target, labels: &Labels) -> Option<String> {
    if t.label_limit > 0 && labels.len() - 1 > t.label_limit {
        return Some(format!("series {labels} has {} labels, over label_limit {}", labels.len() - 1, t.label_limit));
    }
    for (k, v) in labels.iter() {
        if t.label_name_length_limit > 0 && k.len() > t.label_name_length_limit {
            return Some(format!(
                "label name {k:?} is longer than label_name_length_limit {}",
                t.label_name_length_limit
            ));
        }
        if t.label_value_length_limit > 0 && v.len() > t.label_value_length_limit {
            return Some(format!(
                "label {k} value is longer than label_value_length_limit {}",
                t.label_value_length_limit
            ));
        }
    }
    None
}

/// A sample of cached series `slot`: the first one in this body goes to
/// `pending` (unless relabeling dropped the series); a repeat is ignored.
fn seen_again(cached: &mut [Cached], pending: &mut Vec<Pending>, epoch: u32, slot: u32, t: i64, v: f64) {
    let c = &mut cached[slot as usize];
    if c.epoch == epoch {
        return; // the same series twice in one body: the first one wins
    }
    c.epoch = epoch;
    if c.series.is_some() {
        pending.push(Pending::Known { slot, t, v });
    }
}

impl ScrapeState {
    /// Parses `body` into `pending`, through the cache. Returns how many
    /// samples the body held (before relabeling).
    fn parse(
        &mut self,
        t: &Target,
        body: &[u8],
        format: Format,
        now: i64,
        pending: &mut Vec<Pending>,
    ) -> Result<usize, ScrapeError> {
        let mut scraped = 0usize;
        let mut limit_err: Option<String> = None;
        let epoch = self.epoch;
        let (cached, index) = (&mut self.cached, &mut self.index);
        let mut next_slot = 0u32;
        // (`forewarn check metrics` stays strict.)
        let opts = parse::ParseOptions::scrape();
        let at = |ts: Option<i64>| match ts {
            Some(ts) if t.honor_timestamps => ts,
            _ => now,
        };
        let res = parse::parse_keyed(body, format, opts, |seen| {
            if limit_err.is_some() {
                return true;
            }
            let find =
                |key: SeriesKey| index.find(key.0, |&i| cached.get(i as usize).is_some_and(|c| c.key == key)).copied();
            let (key, s) = match seen {
                Seen::Key { key, value, timestamp_ms } => {
                    // A body lists its series in the same order scrape after
                    // scrape, and the cache holds them in the order first
                    // seen: the entry after the last one matched is nearly
                    // always this one, found without the index (whose lookup
                    // is a cache miss).
                    let predicted = cached.get(next_slot as usize).filter(|c| c.key == key).map(|_| next_slot);
                    let Some(slot) = predicted.or_else(|| find(key)) else {
                        return false; // new or changed: the parser lexes the labels
                    };
                    scraped += 1;
                    next_slot = slot + 1;
                    seen_again(cached, pending, epoch, slot, at(timestamp_ms), value);
                    return true;
                }
                Seen::Parsed { key, sample } => (key, sample),
            };
            scraped += 1;
            // A line the fast path does not take (a quoted name) may still
            // be known.
            if let Some(slot) = find(key) {
                next_slot = slot + 1;
                seen_again(cached, pending, epoch, slot, at(s.timestamp_ms), s.value);
                return true;
            }
            let ts = at(s.timestamp_ms);
            // New or changed: the slow path, once.
            let slot = cached.len() as u32;
            next_slot = slot + 1;
            index.insert_unique(key.0, slot, |&i| cached.get(i as usize).map_or(0, |c| c.key.0));
            let Some(labels) = series_labels(t, s) else {
                cached.push(Cached { key, series: None, epoch, watched: false, tail: 0 });
                return true;
            };
            if let Some(e) = over_label_limits(t, &labels) {
                limit_err = Some(e);
            }
            cached.push(Cached { key, series: None, epoch, watched: watched(s.name), tail: 0 });
            pending.push(Pending::New { slot, labels, t: ts, v: s.value });
            true
        });
        res.map_err(|e| ScrapeError::Parse { url: t.url.clone(), source: e })?;
        if let Some(message) = limit_err {
            return Err(ScrapeError::LabelLimit { url: t.url.clone(), message });
        }
        if t.sample_limit > 0 && pending.len() > t.sample_limit {
            return Err(ScrapeError::SampleLimit { url: t.url.clone(), count: pending.len(), limit: t.sample_limit });
        }
        Ok(scraped)
    }

    /// Ends every series of the target, `up` and the other synthetic
    /// series too (the target went away), in one commit.
    pub fn end(&mut self, store: &Store, now: i64) {
        let mut app = store.appender();
        self.end_all(&mut app, now);
        for r in self.synthetic.drain(..) {
            app.append_to(&r, now, stale_nan());
        }
        app.commit();
    }

    /// Ends every remembered series (a failed scrape) and forgets them.
    fn end_all(&mut self, app: &mut crate::store::Appender<'_>, now: i64) {
        for c in self.cached.drain(..) {
            if let Some(r) = &c.series {
                app.append_to(r, now, stale_nan());
            }
        }
        self.index.clear();
        for (_, gone) in self.seeded_series.drain() {
            app.append_to(&gone, now, stale_nan());
        }
    }

    /// Ends the series this scrape did not have and forgets them.
    fn end_unseen(&mut self, app: &mut crate::store::Appender<'_>, now: i64) {
        let mut i = 0;
        while i < self.cached.len() {
            if self.cached[i].epoch == self.epoch {
                i += 1;
                continue;
            }
            let last = self.cached.len() as u32 - 1;
            let gone = self.cached.swap_remove(i);
            if let Ok(entry) = self.index.find_entry(gone.key.0, |&x| x == i as u32) {
                entry.remove();
            }
            if let Some(r) = gone.series.as_ref().filter(|r| !r.shared()) {
                app.append_to(r, now, stale_nan());
            }
            if let Some(moved) = self.cached.get(i) {
                if let Some(x) = self.index.find_mut(moved.key.0, |&x| x == last) {
                    *x = i as u32;
                }
            }
        }
        for (_, gone) in self.seeded_series.drain() {
            app.append_to(&gone, now, stale_nan());
        }
    }
}

/// Scrapes the target once at `now` (ms), writes samples and the synthetic
/// series into the store, and returns the target's new health.
pub async fn scrape_once(
    client: &reqwest::Client,
    t: &Target,
    store: &Store,
    state: &mut ScrapeState,
    now: i64,
) -> TargetHealth {
    let started = Instant::now();
    let mut body = BODIES.take();
    let fetched = fetch(client, t, &mut body).await;
    let duration = started.elapsed().as_secs_f64();
    let health = ingest(
        t,
        fetched.as_ref().map(|f| (body.as_slice(), *f)).map_err(|e| e.to_string()),
        store,
        state,
        now,
        duration,
    );
    BODIES.give_back(body);
    health
}

/// Writes one scrape's outcome into the store: the body's samples (or
/// staleness markers when `body` is the scrape's error) and the synthetic
/// series. The part of a scrape that costs CPU per sample, without the
/// network (what `bench/scrape` measures).
pub fn ingest(
    t: &Target,
    body: Result<(&[u8], Format), String>,
    store: &Store,
    state: &mut ScrapeState,
    now: i64,
    duration: f64,
) -> TargetHealth {
    if !state.seeded {
        // After a restart: a series the target dropped while the daemon was
        // down must end now, as it would have had the daemon been running.
        state.seeded = true;
        if state.cached.is_empty() {
            state.seeded_series = store.last_scrape_series(&t.labels, now - SEED_LOOKBACK_MS).into_iter().collect();
        }
    }
    state.epoch = state.epoch.wrapping_add(1);
    let (mut pending, batch) = WORK.take();
    let result = match body {
        Ok((body, format)) => state.parse(t, body, format, now, &mut pending).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    // One batch per scrape: a single WAL record for all its samples.
    let mut app = store.appender_reusing(batch);
    let (up, scraped, kept, added, error) = match result {
        Ok(scraped) => {
            let (mut added, mut kept) = (0, 0);
            // What the deploy detector reads (a few series per target).
            let mut watched: Vec<(Labels, i64, f64)> = Vec::new();
            for i in 0..pending.len() {
                // Each series' memory is touched for the first time in this
                // scrape here (cache misses on its entry and chunk tail):
                // start the loads a few samples ahead so the misses overlap
                // instead of queueing.
                if let Some(Pending::Known { slot, .. }) = pending.get(i + PREFETCH_AHEAD) {
                    let c = &state.cached[*slot as usize];
                    if let Some(r) = &c.series {
                        r.prefetch(c.tail);
                    }
                }
                let p = std::mem::replace(&mut pending[i], Pending::Done);
                let (slot, t, v) = match p {
                    Pending::Done => continue,
                    Pending::Known { slot, t, v } => {
                        let c = &mut state.cached[slot as usize];
                        if let Some(r) = &mut c.series {
                            c.tail = app.append_live(r, t, v);
                            kept += 1;
                        }
                        (slot, t, v)
                    }
                    Pending::New { slot, labels, t, v } => {
                        // (Seeded series exist only after a restart: no fingerprint to take otherwise.)
                        if state.seeded_series.is_empty() || state.seeded_series.remove(&labels.fingerprint()).is_none()
                        {
                            added += 1;
                        }
                        state.cached[slot as usize].series = Some(app.append_ref(&labels, t, v));
                        kept += 1;
                        (slot, t, v)
                    }
                };
                let c = &state.cached[slot as usize];
                if let (true, Some(r), Some(_)) = (c.watched, &c.series, &state.detector) {
                    watched.push((r.labels(), t, v));
                }
            }
            // What is left of the last scrape is gone from this one.
            state.end_unseen(&mut app, now);
            // The cache grew by doubling while the scrapes that filled it
            // ran; a steady target keeps its size, so the slack (up to half
            // of ~40 bytes per series) goes back once instead of staying.
            let (len, cap) = (state.cached.len(), state.cached.capacity());
            if cap > len + len / 8 + 16 {
                state.cached.shrink_to_fit();
            }
            if let (Some(d), false) = (&state.detector, watched.is_empty()) {
                d.observe(&watched, now);
            }
            (1.0, scraped, kept, added, None)
        }
        Err(e) => {
            state.end_all(&mut app, now);
            (0.0, 0, 0, 0, Some(e))
        }
    };
    if state.synthetic.is_empty() {
        for name in [
            "up",
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling",
            "scrape_series_added",
        ] {
            let mut l = t.labels.clone();
            l.set(METRIC_NAME.into(), name.into());
            state.synthetic.push(app.series_ref(&l));
        }
    }
    let values = [up, duration, scraped as f64, kept as f64, added as f64];
    for (r, v) in state.synthetic.iter_mut().zip(values) {
        app.append_live(r, now, v);
    }
    pending.clear();
    WORK.give_back((pending, app.into_batch()));
    metrics::counter!("forewarn_scrapes_total", "scrape_job" => t.job.clone()).increment(1);
    metrics::histogram!("forewarn_scrape_duration_seconds", "scrape_job" => t.job.clone()).record(duration);
    if let Some(e) = &error {
        metrics::counter!("forewarn_scrape_failures_total", "scrape_job" => t.job.clone()).increment(1);
        tracing::warn!(target = %t.url, job = %t.job, error = %e, "scrape failed");
    }
    TargetHealth {
        health: if error.is_none() { "up" } else { "down" },
        last_error: error.unwrap_or_default(),
        last_scrape_ms: now,
        last_scrape_duration_s: duration,
        samples: kept,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::{header, HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    use super::*;

    fn cached_target(relabel: &str) -> Target {
        let yaml =
            format!("scrape_configs:\n  - job_name: j\n    static_configs: [ {{ targets: ['h:1'] }} ]\n{relabel}");
        let cfg = crate::config::Config::parse("t.yml", &yaml, None).unwrap();
        Target::from_config(&cfg.scrape_configs[0], &cfg.global.scrape_defaults()).remove(0)
    }

    /// `name{labels}` -> the values in the store at `t`, stale markers as "stale".
    fn at(store: &Store, name: &str, t: i64) -> Vec<(String, String)> {
        use crate::store::Queryable;
        let m = [crate::labels::Matcher::equal(METRIC_NAME, name)];
        let mut out: Vec<(String, String)> = store
            .select(&m, t, t)
            .into_iter()
            .map(|s| {
                let v = s.samples[0].v;
                let v = if crate::store::is_stale(v) { "stale".into() } else { v.to_string() };
                (s.labels.get("k").unwrap_or("").to_string(), v)
            })
            .collect();
        out.sort();
        out
    }

    /// The scrape cache keeps Prometheus's semantics: a series that leaves
    /// the body ends, one relabeling drops stays dropped, the first of two
    /// copies in a body wins, a failed scrape ends everything and the next
    /// good one starts over, and `scrape_series_added` counts new series.
    #[test]
    fn the_scrape_cache_keeps_staleness_relabeling_and_limits() {
        let t = cached_target(
            "    metric_relabel_configs: [ { source_labels: [k], regex: drop, action: drop } ]\n    sample_limit: 3\n",
        );
        let store = Store::new(i64::MAX / 4);
        let mut st = ScrapeState::default();
        let mut scrape =
            |body: &str, now: i64| ingest(&t, Ok((body.as_bytes(), Format::Prometheus)), &store, &mut st, now, 0.0);
        let h = scrape("m{k=\"a\"} 1\nm{k=\"b\"} 2\nm{k=\"drop\"} 3\n", 1000);
        assert_eq!((h.health, h.samples), ("up", 2));
        // Same series, new values; `a` twice: the first copy wins.
        scrape("m{k=\"a\"} 10\nm{k=\"a\"} 99\nm{k=\"b\"} 20\nm{k=\"drop\"} 30\n", 2000);
        assert_eq!(at(&store, "m", 2000), vec![("a".into(), "10".into()), ("b".into(), "20".into())]);
        assert_eq!(at(&store, "scrape_series_added", 2000), vec![("".into(), "0".into())]);
        // `b` left the body: it ends; `c` is new.
        scrape("m{k=\"a\"} 11\nm{k=\"c\"} 5\n", 3000);
        assert_eq!(
            at(&store, "m", 3000),
            vec![("a".into(), "11".into()), ("b".into(), "stale".into()), ("c".into(), "5".into())]
        );
        assert_eq!(at(&store, "scrape_series_added", 3000), vec![("".into(), "1".into())]);
        // Over sample_limit: the whole scrape fails and every series ends.
        let h = scrape("m{k=\"a\"} 1\nm{k=\"c\"} 1\nm{k=\"d\"} 1\nm{k=\"e\"} 1\n", 4000);
        assert_eq!(h.health, "down");
        assert_eq!(at(&store, "m", 4000), vec![("a".into(), "stale".into()), ("c".into(), "stale".into())]);
        assert_eq!(at(&store, "up", 4000), vec![("".into(), "0".into())]);
        // The next good scrape writes again.
        scrape("m{k=\"a\"} 7\n", 5000);
        assert_eq!(at(&store, "m", 5000), vec![("a".into(), "7".into())]);
        assert_eq!(at(&store, "up", 5000), vec![("".into(), "1".into())]);
    }

    /// The cache's index finds a series by key wherever it sits: after
    /// series leave (the cache fills their places with its last entries) and
    /// when the body lists the rest in another order (nothing predicted),
    /// every series keeps its identity and no series counts as added.
    #[test]
    fn the_scrape_cache_finds_moved_and_reordered_series() {
        use crate::store::Queryable;
        let t = cached_target("");
        let store = Store::new(i64::MAX / 4);
        let mut st = ScrapeState::default();
        let body = |ks: &mut dyn Iterator<Item = u32>, v: u32| -> String {
            ks.map(|k| format!("m{{k=\"{k:02}\"}} {}\n", k * 100 + v)).collect()
        };
        let mut scrape = |body: String, now: i64| {
            ingest(&t, Ok((body.as_bytes(), Format::Prometheus)), &store, &mut st, now, 0.0);
        };
        scrape(body(&mut (0..60), 1), 1000);
        scrape(body(&mut (0..60).filter(|k| k % 3 != 0), 2), 2000);
        scrape(body(&mut (0..60).filter(|k| k % 3 != 0).rev(), 3), 3000);
        assert_eq!(at(&store, "scrape_series_added", 3000), vec![("".into(), "0".into())]);
        let want: Vec<(String, String)> = (0..60u32)
            .map(|k| (format!("{k:02}"), if k % 3 == 0 { "stale".into() } else { (k * 100 + 3).to_string() }))
            .collect();
        let got: Vec<(String, String)> = (0..60u32)
            .map(|k| {
                let m = [
                    crate::labels::Matcher::equal(METRIC_NAME, "m"),
                    crate::labels::Matcher::equal("k", format!("{k:02}")),
                ];
                let s = store.select(&m, 0, 3000);
                let last = s[0].samples.last().map(|x| x.v).unwrap_or_default();
                let v = if crate::store::is_stale(last) { "stale".to_string() } else { last.to_string() };
                (format!("{k:02}"), v)
            })
            .collect();
        assert_eq!(got, want);
        // Each kept series has one sample per scrape: none was recreated.
        let m = [crate::labels::Matcher::equal(METRIC_NAME, "m"), crate::labels::Matcher::equal("k", "59")];
        assert_eq!(store.select(&m, 0, 3000)[0].samples.len(), 3);
    }

    /// A rotated credentials file is used at the very next scrape, and a
    /// missing one fails the scrape naming the file — against a real server
    /// on 127.0.0.1 that accepts only the current token.
    #[tokio::test]
    async fn credentials_file_is_reread_at_every_scrape() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = std::env::temp_dir().join(format!("forewarn-rotate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let token_file = dir.join("token");
        std::fs::write(&token_file, "tok-1\n").expect("write token");

        let current = Arc::new(Mutex::new(String::from("Bearer tok-1")));
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let (cur, log) = (current.clone(), seen.clone());
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move |h: HeaderMap| {
                let (cur, log) = (cur.clone(), log.clone());
                async move {
                    let got = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    log.lock().expect("log").push(got.clone());
                    if got == *cur.lock().expect("token") {
                        "up_metric 1\n".into_response()
                    } else {
                        StatusCode::UNAUTHORIZED.into_response()
                    }
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(l, app).await });

        let yaml = format!(
            "job_name: j\nstatic_configs: [{{targets: ['{addr}']}}]\nauthorization: {{credentials_file: '{}'}}\n",
            token_file.display()
        );
        let sc: ScrapeConfig = serde_saphyr::from_str(&yaml).expect("yaml");
        let t = Target::from_config(&sc, &crate::config::GlobalConfig::default().scrape_defaults()).remove(0);
        let client = reqwest::Client::new();

        let mut body = Vec::new();
        fetch(&client, &t, &mut body).await.expect("first scrape with tok-1");
        assert_eq!(body, b"up_metric 1\n");
        // Rotate the secret on both sides; no reload of the target.
        std::fs::write(&token_file, "tok-2\n").expect("rotate token");
        *current.lock().expect("token") = "Bearer tok-2".into();
        fetch(&client, &t, &mut body).await.expect("second scrape uses the rotated tok-2");
        assert_eq!(*seen.lock().expect("log"), ["Bearer tok-1", "Bearer tok-2"]);

        std::fs::remove_file(&token_file).expect("remove token");
        let err = fetch(&client, &t, &mut body).await.expect_err("missing file fails the scrape").to_string();
        assert!(err.contains(&token_file.display().to_string()) && err.contains("credentials_file"), "{err}");
        assert_eq!(seen.lock().expect("log").len(), 2, "no request is sent without the secret");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A series the target dropped while the daemon was down ends at the
    /// first scrape after the restart (a fresh `ScrapeState` on a store that
    /// still holds the last scrape), as it would have with no restart; a
    /// recording rule's series with the same labels is left alone.
    #[tokio::test]
    async fn series_gone_during_a_restart_end_at_the_first_scrape() {
        use crate::store::Queryable;
        let body = Arc::new(Mutex::new(String::from("kept 1\ngone{x=\"1\"} 1\n")));
        let b = body.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let b = b.clone();
                async move { b.lock().expect("body").clone() }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(l, app).await });
        let sc: ScrapeConfig =
            serde_saphyr::from_str(&format!("job_name: j\nstatic_configs: [{{targets: ['{addr}']}}]\n")).expect("yaml");
        let t = Target::from_config(&sc, &crate::config::GlobalConfig::default().scrape_defaults()).remove(0);
        let client = reqwest::Client::new();
        let store = Store::new(i64::MAX);
        let mut before = ScrapeState::default();
        scrape_once(&client, &t, &store, &mut before, 10_000).await;
        // A recording rule output carrying the target's labels, written later.
        let mut rec = t.labels.clone();
        rec.set(METRIC_NAME.into(), "job:kept:sum".into());
        store.append(&rec, 12_000, 1.0);

        // "Restart": the old state is gone; the target no longer has `gone`.
        drop(before);
        *body.lock().expect("body") = "kept 2\n".into();
        let mut after = ScrapeState::default();
        scrape_once(&client, &t, &store, &mut after, 40_000).await;

        let last = |name: &str| {
            let m = [crate::labels::Matcher::equal(METRIC_NAME, name)];
            store.select(&m, 0, i64::MAX).into_iter().next().and_then(|s| s.samples.last().copied())
        };
        let gone = last("gone").expect("gone series");
        assert_eq!(gone.t, 40_000);
        assert!(crate::store::is_stale(gone.v), "the vanished series ends at the first scrape after the restart");
        assert_eq!(last("kept").map(|s| (s.t, s.v)), Some((40_000, 2.0)));
        let r = last("job:kept:sum").expect("recorded series");
        assert_eq!((r.t, r.v), (12_000, 1.0), "a series the scrape did not write is not ended");

        // A restart longer than the lookback delta finds nothing to end.
        let mut late = ScrapeState::default();
        *body.lock().expect("body") = "other 1\n".into();
        scrape_once(&client, &t, &store, &mut late, 40_000 + SEED_LOOKBACK_MS + 20_000).await;
        let kept = last("kept").expect("kept");
        assert_eq!(kept.t, 40_000, "no marker after the lookback delta: the series is invisible already");
    }
}
