//! `datasource:`: the rules read their series from a Prometheus-compatible
//! query API (VictoriaMetrics, Prometheus, Thanos, Mimir) instead of the
//! local store: the design's one read interface, [`Queryable`], with its
//! second implementation. Nothing above it knows which one it has: every
//! rule kind, the PromQL evaluator, the charts and the query API read the
//! same way. With `datasource` set and no `scrape_configs`, forewarn is a
//! rule engine and notifier in front of an existing store, as vmalert is,
//! with its deploy markers, verdicts and charts.
//!
//! Why raw samples and not whole queries sent to the server (vmalert's
//! way): so every rule gives the same answer on the local store and on any
//! server (MetricsQL's `rate` differs from PromQL's, for one), and the rule
//! kinds, which read series history, work at all. [`mirror`] keeps what
//! was read so an evaluation fetches only what is new.
//!
//! What differs from the local store, by nature of the query APIs:
//! - The servers drop stale markers from their answers, so a series that
//!   vanished stays visible to instant selectors for the lookback delta
//!   (5 m), as it would after a failed scrape without staleness.
//! - A read that fails makes the whole rule fail for that evaluation (an
//!   error in `/api/v1/rules` and `forewarn_rule_evaluation_failures_total`),
//!   never an empty result: a datasource outage leaves alerts as they were
//!   instead of resolving them.
//! - Recording rules write into the local store (and so to `remote_write`);
//!   rules read them back through the datasource once they arrive there.

mod config;
mod fetch;
pub mod mirror;
pub mod restore;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use config::{ConfigError, DatasourceConfig};
pub use fetch::{parse_matrix, selector, FetchError};

use crate::labels::Matcher;
use crate::store::{Queryable, Series};
use mirror::{Mirror, Plan};

/// Mirrors not read for this long are dropped (a rule that was removed).
const UNUSED_FOR: Duration = Duration::from_secs(600);

/// One selector's mirror and when it was last read.
type Slot = Arc<Mutex<(Mirror, Instant)>>;

/// A remote query API and what has been read from it.
pub struct RemoteSource {
    cfg: DatasourceConfig,
    client: fetch::Client,
    mirrors: Mutex<HashMap<String, Slot>>,
    last_sweep: Mutex<Instant>,
}

impl std::fmt::Debug for RemoteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteSource({})", self.client.url_label())
    }
}

impl RemoteSource {
    pub fn new(cfg: &DatasourceConfig) -> Result<Arc<RemoteSource>, FetchError> {
        Ok(Arc::new(RemoteSource {
            cfg: cfg.clone(),
            client: fetch::Client::new(cfg)?,
            mirrors: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
        }))
    }

    pub fn config(&self) -> &DatasourceConfig {
        &self.cfg
    }

    /// A reader for one rule group evaluation: reads are kept in the
    /// mirrors, so the next evaluation fetches only what is new.
    pub fn reader(self: &Arc<Self>) -> Reader {
        Reader { src: self.clone(), cached: true, error: Mutex::new(None) }
    }

    /// A reader for one-off reads (API queries, charts): fetched every time,
    /// kept nowhere, so arbitrary ranges cost no memory afterwards.
    pub fn uncached(self: &Arc<Self>) -> Reader {
        Reader { src: self.clone(), cached: false, error: Mutex::new(None) }
    }

    /// Raw samples over `[start, end]`, in pieces the servers accept.
    pub fn fetch(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Series>, FetchError> {
        let started = Instant::now();
        let mut by_labels: std::collections::BTreeMap<crate::labels::Labels, Vec<crate::store::Sample>> =
            Default::default();
        for (lo, hi) in mirror::pieces(start, end) {
            let got = self.client.raw(matchers, lo, hi);
            let outcome = if got.is_ok() { "success" } else { "error" };
            metrics::counter!("forewarn_datasource_requests_total", "outcome" => outcome).increment(1);
            for s in got? {
                by_labels.entry(s.labels).or_default().extend(s.samples);
            }
        }
        metrics::histogram!("forewarn_datasource_read_duration_seconds").record(started.elapsed().as_secs_f64());
        Ok(by_labels.into_iter().map(|(labels, samples)| Series { labels, samples }).collect())
    }

    fn read_cached(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Series>, FetchError> {
        let key = selector(matchers);
        let slot = {
            let mut all = self.mirrors.lock().unwrap_or_else(|e| e.into_inner());
            self.sweep(&mut all);
            all.entry(key).or_insert_with(|| Arc::new(Mutex::new((Mirror::default(), Instant::now())))).clone()
        };
        // One fetch per selector at a time; other selectors go on.
        let mut m = slot.lock().unwrap_or_else(|e| e.into_inner());
        m.1 = Instant::now();
        if let Plan::Fetch { from, end: to } = m.0.plan(start, end) {
            let fetched = self.fetch(matchers, from, to)?;
            m.0.merge(from, to, fetched);
        }
        Ok(m.0.read(start, end))
    }

    /// Drops mirrors nobody read lately; updates the held-samples gauge.
    fn sweep(&self, all: &mut HashMap<String, Slot>) {
        let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() < Duration::from_secs(30) {
            return;
        }
        *last = Instant::now();
        let mut held = 0;
        all.retain(|_, slot| match slot.try_lock() {
            Ok(m) => {
                held += m.0.samples();
                m.1.elapsed() < UNUSED_FOR
            }
            Err(_) => true,
        });
        metrics::gauge!("forewarn_datasource_mirrored_samples").set(held as f64);
        metrics::gauge!("forewarn_datasource_mirrored_selectors").set(all.len() as f64);
    }

    /// The `ALERTS_FOR_STATE` series of the last `restore_lookback` before
    /// `now`, to restore the `for` state of alerts from (see [`restore`]).
    pub fn alerts_for_state(&self, now: i64) -> Result<Vec<Series>, FetchError> {
        let m = Matcher::equal(crate::labels::METRIC_NAME, "ALERTS_FOR_STATE");
        self.fetch(&[m], now - self.cfg.restore_lookback.as_millis(), now)
    }
}

/// [`Queryable`] over a [`RemoteSource`]. A failed read returns no series
/// and is kept for [`Queryable::take_error`], which the rule engine checks
/// before it acts on a result.
pub struct Reader {
    src: Arc<RemoteSource>,
    cached: bool,
    error: Mutex<Option<String>>,
}

impl Queryable for Reader {
    fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<Series> {
        let got =
            if self.cached { self.src.read_cached(matchers, start, end) } else { self.src.fetch(matchers, start, end) };
        match got {
            Ok(s) => s,
            Err(e) => {
                let mut slot = self.error.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert_with(|| e.to_string());
                Vec::new()
            }
        }
    }

    /// Label names and values are the local store's business (the API's
    /// metadata endpoints); the rule engine never asks.
    fn label_names(&self, _matchers: &[Matcher]) -> Vec<String> {
        Vec::new()
    }

    fn label_values(&self, _name: &str, _matchers: &[Matcher]) -> Vec<String> {
        Vec::new()
    }

    fn take_error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
