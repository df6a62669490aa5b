//! Downsampled aggregates: per series, one min/max/sum/count point per
//! 5-minute bucket, kept for `storage.downsample_retention` (longer than raw
//! samples), so baseline rules over weeks need neither weeks of raw samples
//! nor their memory.
//!
//! A bucket costs 40 bytes whatever the scrape interval, i.e. about
//! 11.5 KiB per series per day. NaN values (including staleness markers) are
//! left out of the aggregates: they mark gaps, not observations.

use super::Sample;

/// Width of a bucket.
pub const DOWNSAMPLE_MS: i64 = 300_000;

/// One bucket: `t` is its start (a multiple of [`DOWNSAMPLE_MS`]); the
/// average is `sum / count`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregate {
    pub t: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u32,
}

impl Aggregate {
    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// A series' buckets, oldest first; the last one may still be filling.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Downsample {
    pub buckets: Vec<Aggregate>,
}

impl Downsample {
    pub fn add(&mut self, s: Sample) {
        if s.v.is_nan() {
            return;
        }
        let t = s.t.div_euclid(DOWNSAMPLE_MS) * DOWNSAMPLE_MS;
        match self.buckets.last_mut() {
            Some(b) if b.t == t => {
                b.min = b.min.min(s.v);
                b.max = b.max.max(s.v);
                b.sum += s.v;
                b.count += 1;
            }
            // Samples arrive in order; an older bucket cannot reopen.
            Some(b) if b.t > t => {}
            _ => self.buckets.push(Aggregate { t, min: s.v, max: s.v, sum: s.v, count: 1 }),
        }
    }

    /// Drops buckets that ended before `cutoff`.
    pub fn compact(&mut self, cutoff: i64) {
        let keep_from = self.buckets.partition_point(|b| b.t + DOWNSAMPLE_MS <= cutoff);
        if keep_from > 0 {
            self.buckets.drain(..keep_from);
            self.buckets.shrink_to_fit();
        }
    }

    /// Buckets whose start lies in `[start, end]`.
    pub fn range(&self, start: i64, end: i64) -> &[Aggregate] {
        let from = self.buckets.partition_point(|b| b.t < start);
        let to = self.buckets.partition_point(|b| b.t <= end);
        &self.buckets[from..to.max(from)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::stale_nan;

    #[test]
    fn buckets_aggregate_and_skip_nan() {
        let mut d = Downsample::default();
        for (t, v) in [(0, 5.0), (60_000, 1.0), (120_000, stale_nan()), (299_999, 9.0), (300_000, 2.0), (900_000, 4.0)]
        {
            d.add(Sample { t, v });
        }
        assert_eq!(d.buckets.len(), 3);
        let b = d.buckets[0];
        assert_eq!((b.min, b.max, b.sum, b.count, b.avg()), (1.0, 9.0, 15.0, 3, 5.0));
        assert_eq!(d.range(300_000, 900_000).len(), 2);
        d.compact(600_000);
        assert_eq!(d.buckets.iter().map(|b| b.t).collect::<Vec<_>>(), vec![900_000]);
    }
}
