//! The sample store: every series the scrapers have seen, with its samples
//! for the retention window, compressed, indexed, and (with a state dir)
//! durable across restarts.
//!
//! - `codec`: compressed chunks (timestamps as lateness against the scrape
//!   grid, values as integer/decimal steps or XOR floats), ~1.3 bytes per
//!   sample instead of 16.
//! - `series`: one series' sealed chunks, open head chunk and newest sample.
//! - `packed`: a series' label set in one allocation.
//! - `memory`: the [`Store`]: packed label sets, an inverted index
//!   (label name -> value -> series) sharded 16 ways so scrape tasks do not
//!   serialise on one lock, retention, and the [`Queryable`] implementation
//!   the evaluator reads through (a remote Prometheus client can implement
//!   it too).
//! - `histograms`: native histogram samples (from tests and recording rules
//!   over them; never scraped), beside the float series.
//! - `ingest`: who hears that a batch of which metric names was committed
//!   (rule groups evaluating right after their data arrives).
//! - `downsample`: optional 5-minute min/max/sum/count aggregates kept past
//!   the raw retention ([`Store::select_downsampled`]).
//! - `wal`, `snapshot`, `frame`, `durable`: the write-ahead log, snapshots,
//!   their CRC-checked framing, and [`Store::open`]/recovery/checkpoints.
//! - `config`: the `storage` section of the config file ([`StorageConfig`]).

mod codec;
mod config;
mod downsample;
mod durable;
mod frame;
mod histograms;
mod ingest;
mod memory;
mod packed;
mod series;
mod shard;
mod snapshot;
#[cfg(test)]
mod tests;
pub mod wal;

pub use config::StorageConfig;
pub use downsample::{Aggregate, DOWNSAMPLE_MS};
pub use durable::{open_configured, spawn_persistence, RecoveryReport, StoreError};
pub use histograms::{HistogramSample, HistogramSeries};
pub use ingest::{name_bit, names_mask, IngestWatch};
pub use memory::{Appender, DownsampledSeries, SeriesRef, Store, StoreOptions, StoreStats};

use crate::labels::{Labels, Matcher};

/// Prometheus's staleness marker: a NaN with this exact bit pattern says "the
/// series ended here". Queries treat it as a gap, never as a value.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One observation: a millisecond Unix timestamp and a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// A series and its samples in a time range, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// What the evaluator needs from storage: series matching all `matchers`
/// with their samples in `[start, end]` (milliseconds, inclusive). Series
/// with no sample in range are left out.
pub trait Queryable: Send + Sync {
    fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<Series>;

    /// Like [`Queryable::select`], calling `more(n)` with each series'
    /// sample count as it is read and stopping (with what was read so far)
    /// when it returns false: queries account for their samples while they
    /// select, so a selection over their limit stops before it is all in
    /// memory.
    fn select_checked(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        more: &mut dyn FnMut(usize) -> bool,
    ) -> Vec<Series> {
        let mut out = self.select(matchers, start, end);
        let mut kept = 0;
        for s in &out {
            if !more(s.samples.len()) {
                break;
            }
            kept += 1;
        }
        out.truncate(kept);
        out
    }

    /// Like [`Queryable::select_checked`], with only each series' newest
    /// sample in `[start, end]`: what an instant selector keeps of its
    /// lookback window. A storage that can find that sample without
    /// reading the window should (the store does: a `count(up)` over 50,000
    /// series at a 1 s interval would otherwise copy out 300 samples a
    /// series to keep one).
    fn select_newest(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        more: &mut dyn FnMut(usize) -> bool,
    ) -> Vec<Series> {
        let mut out = self.select_checked(matchers, start, end, more);
        for s in &mut out {
            let newest = s.samples.pop();
            s.samples = newest.into_iter().collect();
        }
        out
    }

    /// Native histogram samples of matching series in `[start, end]`; none
    /// unless the storage holds them.
    fn select_histograms(&self, _matchers: &[Matcher], _start: i64, _end: i64) -> Vec<HistogramSeries> {
        Vec::new()
    }

    /// Label names present on series matching `matchers` (all series when empty).
    fn label_names(&self, matchers: &[Matcher]) -> Vec<String>;

    /// Values of label `name` on series matching `matchers`.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String>;

    /// A read that failed since the last call, if any (a remote source
    /// that could not be reached). The series read meanwhile are
    /// incomplete: the rule engine fails the rule instead of acting on them.
    /// The local store never fails a read.
    fn take_error(&self) -> Option<String> {
        None
    }

    /// The oldest time raw samples are kept for, seen at `now`
    /// (`i64::MIN`: no limit known).
    fn raw_since(&self, _now: i64) -> i64 {
        i64::MIN
    }

    /// 5-minute aggregates of matching series (see
    /// [`Store::select_downsampled`]); none unless the storage keeps them.
    fn select_downsampled(&self, _matchers: &[Matcher], _start: i64, _end: i64) -> Vec<DownsampledSeries> {
        Vec::new()
    }

    /// Like [`Queryable::select`], for windows that may reach past raw
    /// retention (baselines of days): before each series' oldest raw
    /// sample, its 5-minute averages stand in, one sample per bucket at the
    /// bucket's middle. Within raw retention this is `select`.
    fn select_long(&self, matchers: &[Matcher], start: i64, end: i64, now: i64) -> Vec<Series> {
        let mut raw = self.select(matchers, start, end);
        if start >= self.raw_since(now) {
            return raw;
        }
        // Series are matched by labels; `Store::select` sorts them already.
        raw.sort_by(|a, b| a.labels.cmp(&b.labels));
        for d in self.select_downsampled(matchers, start, end) {
            let pos = raw.binary_search_by(|s| s.labels.cmp(&d.labels));
            let first_raw = pos.ok().and_then(|i| raw[i].samples.first()).map_or(i64::MAX, |x| x.t);
            let old: Vec<Sample> = d
                .buckets
                .iter()
                .filter(|b| b.t.saturating_add(DOWNSAMPLE_MS) <= first_raw)
                .map(|b| Sample { t: b.t + DOWNSAMPLE_MS / 2, v: b.avg() })
                .filter(|x| x.t >= start && x.t <= end)
                .collect();
            match pos {
                _ if old.is_empty() => {}
                Ok(i) => {
                    raw[i].samples.splice(0..0, old);
                }
                Err(i) => {
                    raw.insert(i, Series { labels: d.labels, samples: old });
                }
            }
        }
        raw
    }
}
