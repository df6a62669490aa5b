//! Native histogram samples, kept beside the float series.
//!
//! The scrapers read the text formats, which cannot carry native
//! histograms, so these samples come only from rule unit tests, PromQL test
//! files and recording rules over them. They are held in memory, uncompressed
//! and unlogged, in one map scanned per query: sized for tests, not for
//! millions of series. What the store does add is what a query must see the
//! same way Prometheus's TSDB shows it: out-of-order samples dropped, and a
//! counter reset hint on each sample (unknown for a series' first sample,
//! then reset or not reset against the previous one; gauges stay gauges).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use crate::labels::{Labels, Matcher};
use crate::native_histogram::{CounterResetHint, FloatHistogram};

/// One native histogram observation.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSample {
    pub t: i64,
    pub h: FloatHistogram,
}

/// A series of native histogram samples in a time range, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSeries {
    pub labels: Labels,
    pub samples: Vec<HistogramSample>,
}

#[derive(Default)]
pub(crate) struct Histograms {
    series: RwLock<BTreeMap<Labels, Vec<HistogramSample>>>,
    /// Whether any sample was ever appended: queries skip the map (and its
    /// lock) entirely in the daemon, which never has any.
    any: AtomicBool,
}

impl Histograms {
    pub fn append(&self, labels: &Labels, t: i64, mut h: FloatHistogram) {
        let mut map = self.series.write().unwrap_or_else(|e| e.into_inner());
        let samples = map.entry(labels.clone()).or_default();
        // The sample it follows: the last one, or the one before it when
        // this replaces a sample at the same time.
        let prev = match samples.last() {
            Some(last) if t < last.t => return,
            Some(last) if t == last.t => samples.len().checked_sub(2).map(|i| &samples[i]),
            last => last,
        };
        h.hint = match (h.hint, prev) {
            (CounterResetHint::Gauge, _) => CounterResetHint::Gauge,
            (CounterResetHint::Reset, _) => CounterResetHint::Reset,
            (_, None) => CounterResetHint::Unknown,
            (_, Some(p)) if h.detect_reset(&p.h) => CounterResetHint::Reset,
            (_, Some(_)) => CounterResetHint::NotReset,
        };
        if samples.last().is_some_and(|last| last.t == t) {
            samples.pop();
        }
        samples.push(HistogramSample { t, h });
        self.any.store(true, Ordering::Relaxed);
    }

    /// Series matching all `matchers` with their samples in `[start, end]`.
    pub fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<HistogramSeries> {
        if !self.any.load(Ordering::Relaxed) {
            return Vec::new();
        }
        let map = self.series.read().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .filter(|(labels, _)| matchers.iter().all(|m| m.matches(labels)))
            .filter_map(|(labels, samples)| {
                let from = samples.partition_point(|s| s.t < start);
                let to = samples.partition_point(|s| s.t <= end);
                (from < to).then(|| HistogramSeries { labels: labels.clone(), samples: samples[from..to].to_vec() })
            })
            .collect()
    }

    /// Label sets of every series with a sample (for label name/value lookups).
    pub fn labels(&self) -> Vec<Labels> {
        if !self.any.load(Ordering::Relaxed) {
            return Vec::new();
        }
        self.series.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// Drops samples before `cutoff` and series left empty.
    pub fn compact(&self, cutoff: i64) {
        if !self.any.load(Ordering::Relaxed) {
            return;
        }
        let mut map = self.series.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, samples| {
            samples.retain(|s| s.t >= cutoff);
            !samples.is_empty()
        });
    }
}
