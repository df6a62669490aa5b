//! The sample store: every series the scrapers have seen, with its samples
//! for the retention window, compressed, indexed, and (with a state dir)
//! durable across restarts.
//!
//! - `codec`: Gorilla-style chunks (delta-of-delta timestamps, XOR floats),
//!   ~1–2 bytes per sample instead of 16.
//! - `series`: one series' sealed chunks, open head chunk and newest sample.
//! - `memory`: the [`Store`]: interned label sets, an inverted index
//!   (label name -> value -> series) sharded 16 ways so scrape tasks do not
//!   serialise on one lock, retention, and the [`Queryable`] implementation
//!   the evaluator reads through (a remote Prometheus client can implement
//!   it too).
//! - `downsample`: optional 5-minute min/max/sum/count aggregates kept past
//!   the raw retention ([`Store::select_downsampled`]).
//! - `wal`, `snapshot`, `frame`, `durable`: the write-ahead log, snapshots,
//!   their CRC-checked framing, and [`Store::open`]/recovery/checkpoints.

mod codec;
mod downsample;
mod durable;
mod frame;
mod memory;
mod series;
mod snapshot;
#[cfg(test)]
mod tests;
mod wal;

pub use downsample::{Aggregate, DOWNSAMPLE_MS};
pub use durable::{open_configured, spawn_persistence, RecoveryReport, StoreError};
pub use memory::{Appender, DownsampledSeries, Store, StoreOptions, StoreStats};

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

    /// Label names present on series matching `matchers` (all series when empty).
    fn label_names(&self, matchers: &[Matcher]) -> Vec<String>;

    /// Values of label `name` on series matching `matchers`.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String>;
}
