//! The in-memory sample store: every series the scrapers have seen, with its
//! samples for the retention window.
//!
//! Appends to a known series take only that series' lock (plus a shared read
//! lock on the index), so scrape tasks do not serialise on one global lock;
//! only a new series takes the index write lock. Selection goes through an
//! inverted index (label name -> value -> series ids), so `job="x"` does not
//! scan every series. The evaluator reads through the narrow [`Queryable`]
//! trait, which a remote Prometheus client can also implement.

mod memory;

pub use memory::{Store, StoreStats};

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
